//! Binding as the simulator and `lab validate` use it: slots on a node's
//! GPUs, and what an empty node holds.

use lab_decide::binding::{choose_slots, has_room, node_fit, GpuRequest, NodeShape, PodRequest};
use lab_gpu::Sharing;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One A100-40GB node as in `scenarios/timeslice-vs-mig.toml`.
fn a100(sharing: &Sharing) -> NodeShape<'_> {
    NodeShape {
        cpu: 12.0,
        memory_bytes: 85.0 * GIB,
        gpus_per_node: 1,
        sharing,
    }
}

fn pod(gpu: GpuRequest) -> PodRequest {
    PodRequest {
        cpu_milli: 4000,
        memory_bytes: 16 << 30,
        gpu,
    }
}

fn mig(layout: &[&str]) -> Sharing {
    Sharing::Mig {
        layout: layout.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn time_slice_replicas_are_devices() {
    let ts = Sharing::TimeSlicing { replicas: 2 };
    let fit = node_fit(a100(&ts), &pod(GpuRequest::Devices(1)));
    assert_eq!(fit.per_node, 2, "{}", fit.limit);
    assert!(
        fit.limit
            .contains("time-slicing exposes 2 device(s) per GPU"),
        "{}",
        fit.limit
    );
}

#[test]
fn a_mig_layout_exposes_its_instances() {
    let layout = mig(&["7g.40gb"]);
    let fit = node_fit(a100(&layout), &pod(GpuRequest::Devices(1)));
    assert_eq!(fit.per_node, 1);
    assert!(
        fit.limit
            .contains(r#"the MIG layout ["7g.40gb"] exposes 1 device(s)"#),
        "{}",
        fit.limit
    );
    let fit = node_fit(a100(&layout), &pod(GpuRequest::Mig("3g.20gb".into())));
    assert_eq!(fit.per_node, 0, "no such instance in the layout");
    assert!(
        fit.limit.contains("has 0 such instance(s)"),
        "{}",
        fit.limit
    );
}

#[test]
fn cpu_or_memory_limit_when_they_run_out_first() {
    let none = Sharing::None;
    let cpu_bound = PodRequest {
        cpu_milli: 5000,
        memory_bytes: 1 << 30,
        gpu: GpuRequest::None,
    };
    let fit = node_fit(a100(&none), &cpu_bound);
    assert_eq!(fit.per_node, 2, "12 CPUs / 5");
    assert!(
        fit.limit.starts_with("cpu: 5 per pod, 12 per node"),
        "{}",
        fit.limit
    );
    let mem_bound = PodRequest {
        cpu_milli: 100,
        memory_bytes: 40 << 30,
        gpu: GpuRequest::None,
    };
    let fit = node_fit(a100(&none), &mem_bound);
    assert_eq!(fit.per_node, 2, "85Gi / 40Gi");
    assert!(
        fit.limit.starts_with("memory: 40.0 GiB per pod"),
        "{}",
        fit.limit
    );
    assert!(has_room(4.0, 16.0 * GIB, 4.0, 16.0 * GIB));
    assert!(!has_room(3.9, 16.0 * GIB, 4.0, 16.0 * GIB));
}

type Gpu = Vec<(String, Option<u32>)>;

fn gpu(profiles: &[&str], tenants: &[Option<u32>]) -> Gpu {
    profiles
        .iter()
        .zip(tenants)
        .map(|(p, t)| (p.to_string(), *t))
        .collect()
}

#[test]
fn devices_spread_over_the_least_used_gpus_one_slot_each() {
    // Two GPUs time-sliced twice; the first already has a tenant.
    let gpus = [
        gpu(&["", ""], &[Some(7), None]),
        gpu(&["", ""], &[None, None]),
    ];
    assert_eq!(
        choose_slots(&gpus, &GpuRequest::Devices(1)),
        Some(vec![(1, 0)])
    );
    assert_eq!(
        choose_slots(&gpus, &GpuRequest::Devices(2)),
        Some(vec![(1, 0), (0, 1)])
    );
    // Two devices need two GPUs with a free slot each, not two slots of one.
    let one_free_gpu = [
        gpu(&["", ""], &[None, None]),
        gpu(&["", ""], &[Some(1), Some(2)]),
    ];
    assert_eq!(choose_slots(&one_free_gpu, &GpuRequest::Devices(2)), None);
    assert_eq!(choose_slots(&one_free_gpu, &GpuRequest::None), Some(vec![]));
}

#[test]
fn a_mig_request_takes_the_first_free_instance_of_its_profile() {
    let gpus = [gpu(
        &["3g.20gb", "2g.10gb", "2g.10gb"],
        &[None, Some(1), None],
    )];
    assert_eq!(
        choose_slots(&gpus, &GpuRequest::Mig("2g.10gb".into())),
        Some(vec![(0, 2)])
    );
    assert_eq!(choose_slots(&gpus, &GpuRequest::Mig("1g.5gb".into())), None);
}
