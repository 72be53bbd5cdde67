//! Node fit on the example scenarios' pools, as the simulator and the
//! cluster autoscaler use it.

use lab_decide::binding::{node_fit, PodRequest};
use lab_scenario::{GpuRequest, Scenario};
use std::path::Path;

fn scenario(overrides: &[&str]) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    lab_scenario::load(&root.join("scenarios/timeslice-vs-mig.toml"), &o)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn pod(gpu: GpuRequest) -> PodRequest {
    PodRequest {
        cpu_milli: 4000,
        memory_bytes: 16 << 30,
        gpu,
    }
}

#[test]
fn time_slice_replicas_are_devices() {
    let s = scenario(&[]);
    let fit = node_fit(&s.node_pools[0], &pod(GpuRequest::Devices(1)));
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
    let s = scenario(&[r#"node_pools.a100.sharing={ strategy = "mig", layout = ["7g.40gb"] }"#]);
    let pool = &s.node_pools[0];
    let fit = node_fit(pool, &pod(GpuRequest::Devices(1)));
    assert_eq!(fit.per_node, 1);
    assert!(
        fit.limit
            .contains(r#"the MIG layout ["7g.40gb"] exposes 1 device(s)"#),
        "{}",
        fit.limit
    );
    let fit = node_fit(pool, &pod(GpuRequest::Mig("3g.20gb".into())));
    assert_eq!(fit.per_node, 0, "no such instance in the layout");
    assert!(
        fit.limit.contains("has 0 such instance(s)"),
        "{}",
        fit.limit
    );
}

#[test]
fn cpu_or_memory_limit_when_they_run_out_first() {
    let s = scenario(&[]);
    let pool = &s.node_pools[0];
    let cpu_bound = PodRequest {
        cpu_milli: 5000,
        memory_bytes: 1 << 30,
        gpu: GpuRequest::None,
    };
    let fit = node_fit(pool, &cpu_bound);
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
    let fit = node_fit(pool, &mem_bound);
    assert_eq!(fit.per_node, 2, "85Gi / 40Gi");
    assert!(
        fit.limit.starts_with("memory: 40.0 GiB per pod"),
        "{}",
        fit.limit
    );
}
