//! Cost accounting against the simulator's arithmetic before it called
//! `lab_decide::cost` (bit for bit), and the share rule's sums: the shares of
//! a node's pods never add up to more than its price, and to all of it when
//! the pods take the whole node.

use lab_decide::binding::{choose_slots, node_fit, GpuRequest, NodeShape, PodRequest};
use lab_decide::cost::{
    gpu_hours, hours, idle_usd, monthly, node_ns, node_share, pod_usd, pool_usage, Requested,
    MONTH_HOURS,
};
use lab_gpu::{check_mig_layout, gpu_type, Sharing};

const NS: f64 = 1e9;
const HOUR_NS: u64 = 3_600_000_000_000;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// SplitMix64: a dependency-free stream of random 64-bit numbers.
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

fn shape(sharing: &Sharing, gpus_per_node: u32) -> NodeShape<'_> {
    NodeShape {
        cpu: 16.0,
        memory_bytes: 64.0 * GIB,
        gpus_per_node,
        sharing,
    }
}

fn gpu_pod(gpu: &GpuRequest) -> Requested<'_> {
    Requested {
        cpu: 4.0,
        memory_bytes: 16.0 * GIB,
        gpu,
    }
}

#[test]
fn pool_figures_are_the_engines_bit_for_bit() {
    let mut r = Mix(1);
    for _ in 0..10_000 {
        let now = r.below(40 * 24 * HOUR_NS);
        let closed = u128::from(r.below(500 * HOUR_NS));
        let created: Vec<u64> = (0..r.below(12)).map(|_| r.below(now + 1)).collect();
        let price = r.unit() * 40.0;
        let gpus = r.below(9) as u32;
        // output.rs's node_cost before the move.
        let live: u128 = created.iter().map(|c| (now - c) as u128).sum();
        let old_hours = (closed + live) as f64 / NS / 3600.0;
        let old_usd = old_hours * price;
        let usage = pool_usage(node_ns(closed, created.iter().copied(), now), price);
        assert_eq!(usage.node_hours.to_bits(), old_hours.to_bits());
        assert_eq!(usage.usd.to_bits(), old_usd.to_bits());
        assert_eq!(
            gpu_hours(usage.node_hours, gpus).to_bits(),
            (old_hours * f64::from(gpus)).to_bits()
        );
        // The run's hours and the monthly projection.
        let run_hours = now as f64 / NS / 3600.0;
        assert_eq!(hours(u128::from(now)).to_bits(), run_hours.to_bits());
        let old_monthly = if run_hours > 0.0 {
            old_usd / run_hours * 730.0
        } else {
            0.0
        };
        assert_eq!(monthly(old_usd, run_hours).to_bits(), old_monthly.to_bits());
        // A pod's charge.
        let bound = r.below(now + 1);
        let end = bound + r.below(now - bound + 1);
        let share = r.unit();
        let h = end.saturating_sub(bound) as f64 / NS / 3600.0;
        assert_eq!(
            pod_usd(bound, end, share, price).to_bits(),
            (h * share * price).to_bits()
        );
    }
}

#[test]
fn worked_figures() {
    // Two nodes, one removed after 1 h, one live for 2 h, at $2.50 an hour.
    let ns = node_ns(u128::from(HOUR_NS), [HOUR_NS], 3 * HOUR_NS);
    let usage = pool_usage(ns, 2.5);
    assert_eq!(usage.node_hours, 3.0);
    assert_eq!(usage.usd, 7.5);
    assert_eq!(gpu_hours(3.0, 4), 12.0);
    // $7.50 over 3 h is $2.50 an hour, 730 hours a month.
    assert_eq!(monthly(7.5, 3.0), 2.5 * MONTH_HOURS);
    assert_eq!(monthly(7.5, 0.0), 0.0);
    // Half a node for 2 h at $3.
    assert_eq!(pod_usd(HOUR_NS, 3 * HOUR_NS, 0.5, 3.0), 3.0);
    assert_eq!(pod_usd(3 * HOUR_NS, HOUR_NS, 0.5, 3.0), 0.0);
    assert_eq!(idle_usd(10.0, 7.5), 2.5);
    assert_eq!(idle_usd(10.0, 10.000_000_1), 0.0);
    // A node created after `now` (never, but not a panic) counts no time.
    assert_eq!(node_ns(5, [10], 3), 5);
}

#[test]
fn a_pod_pays_for_the_devices_or_slices_it_takes() {
    let slicing = Sharing::TimeSlicing { replicas: 4 };
    let one = GpuRequest::Devices(1);
    assert_eq!(node_share(gpu_pod(&one), shape(&slicing, 2), None), 0.125);
    let whole = Sharing::None;
    let two = GpuRequest::Devices(2);
    assert_eq!(node_share(gpu_pod(&two), shape(&whole, 8), None), 0.25);
    let a100 = gpu_type("A100-40GB");
    let mig = Sharing::Mig {
        layout: vec!["3g.20gb".into(), "2g.10gb".into(), "2g.10gb".into()],
    };
    let three = GpuRequest::Mig("3g.20gb".into());
    let share = node_share(gpu_pod(&three), shape(&mig, 1), a100);
    assert_eq!(share, 3.0 / 7.0);
    // Two GPUs per node halve it; an unknown profile counts one slice.
    assert_eq!(
        node_share(gpu_pod(&three), shape(&mig, 2), a100),
        3.0 / 7.0 / 2.0
    );
    let odd = GpuRequest::Mig("5g.30gb".into());
    assert_eq!(node_share(gpu_pod(&odd), shape(&mig, 1), a100), 1.0 / 7.0);
}

#[test]
fn a_cpu_pod_pays_its_larger_fraction_of_the_node_at_most_all_of_it() {
    let none = GpuRequest::None;
    let sharing = Sharing::None;
    let node = shape(&sharing, 0);
    let cpu_bound = Requested {
        cpu: 8.0,
        memory_bytes: 8.0 * GIB,
        gpu: &none,
    };
    assert_eq!(node_share(cpu_bound, node, None), 0.5);
    let memory_bound = Requested {
        cpu: 1.0,
        memory_bytes: 48.0 * GIB,
        gpu: &none,
    };
    assert_eq!(node_share(memory_bound, node, None), 0.75);
    let too_big = Requested {
        cpu: 64.0,
        memory_bytes: 0.0,
        gpu: &none,
    };
    assert_eq!(node_share(too_big, node, None), 1.0);
}

/// The engine's `add_deployment` share before the move.
fn old_share(cpu: f64, memory: f64, gpu: &GpuRequest, node: NodeShape<'_>, gpu_name: &str) -> f64 {
    match gpu {
        GpuRequest::None => (cpu / node.cpu.max(1e-9))
            .max(memory / node.memory_bytes.max(1e-9))
            .min(1.0),
        GpuRequest::Devices(n) => {
            f64::from(*n)
                / f64::from(node.sharing.slots_per_gpu().max(1))
                / f64::from(node.gpus_per_node.max(1))
        }
        GpuRequest::Mig(p) => {
            let slices = gpu_type(gpu_name)
                .and_then(|g| g.mig_profile(p))
                .map_or(1, |m| m.compute_slices);
            f64::from(slices) / 7.0 / f64::from(node.gpus_per_node.max(1))
        }
    }
}

/// A random MIG layout one GPU of `gpu` accepts.
fn random_layout(r: &mut Mix, gpu: &lab_gpu::GpuType) -> Vec<String> {
    let mut layout: Vec<String> = Vec::new();
    for _ in 0..20 {
        let p = &gpu.mig_profiles[r.below(gpu.mig_profiles.len() as u64) as usize];
        layout.push(p.name.to_string());
        if check_mig_layout(gpu, &layout).is_err() {
            layout.pop();
        }
    }
    layout
}

fn random_sharing(r: &mut Mix, gpu: &lab_gpu::GpuType) -> Sharing {
    match r.below(4) {
        0 => Sharing::None,
        1 => Sharing::TimeSlicing {
            replicas: 1 + r.below(8) as u32,
        },
        2 => Sharing::Mps {
            replicas: 1 + r.below(8) as u32,
        },
        _ => Sharing::Mig {
            layout: random_layout(r, gpu),
        },
    }
}

#[test]
fn the_share_rule_is_the_engines_bit_for_bit() {
    let mut r = Mix(2);
    let gpu = gpu_type("A100-40GB").unwrap();
    for _ in 0..10_000 {
        let sharing = random_sharing(&mut r, gpu);
        let node = NodeShape {
            cpu: r.unit() * 96.0,
            memory_bytes: r.unit() * 512.0 * GIB,
            gpus_per_node: r.below(9) as u32,
            sharing: &sharing,
        };
        let request = match r.below(3) {
            0 => GpuRequest::None,
            1 => GpuRequest::Devices(r.below(4) as u32),
            _ => GpuRequest::Mig(gpu.mig_profiles[r.below(6) as usize].name.to_string()),
        };
        let (cpu, memory) = (r.unit() * 32.0, r.unit() * 128.0 * GIB);
        let pod = Requested {
            cpu,
            memory_bytes: memory,
            gpu: &request,
        };
        let new = node_share(pod, node, Some(gpu));
        let old = old_share(cpu, memory, &request, node, "A100-40GB");
        assert_eq!(new.to_bits(), old.to_bits(), "{request:?} on {sharing:?}");
    }
}

/// Fills one node with pods of one kind of GPU request, by the binder's
/// rules, and sums what they are charged.
#[test]
fn the_shares_of_a_full_node_add_up_to_its_price() {
    let mut r = Mix(3);
    let gpu = gpu_type("A100-40GB").unwrap();
    for _ in 0..3_000 {
        let sharing = random_sharing(&mut r, gpu);
        let gpus_per_node = 1 + r.below(8) as u32;
        let node = shape(&sharing, gpus_per_node);
        let price = 1.0 + r.unit() * 30.0;
        let mut gpus: Vec<Vec<(String, Option<u32>)>> = (0..gpus_per_node)
            .map(|_| match &sharing {
                Sharing::Mig { layout } => layout.iter().map(|p| (p.clone(), None)).collect(),
                other => (0..other.slots_per_gpu())
                    .map(|_| (String::new(), None))
                    .collect(),
            })
            .collect();
        let by_profile = matches!(sharing, Sharing::Mig { .. }) && r.below(2) == 0;
        let mut charged = 0.0;
        let mut pods = 0;
        // Random requests until none fits, then single ones to fill the rest.
        for filling in [false, true] {
            loop {
                let request = if by_profile {
                    let free: Vec<String> = gpus
                        .iter()
                        .flatten()
                        .filter(|(_, t)| t.is_none())
                        .map(|(p, _)| p.clone())
                        .collect();
                    if free.is_empty() {
                        break;
                    }
                    GpuRequest::Mig(free[r.below(free.len() as u64) as usize].clone())
                } else if filling {
                    GpuRequest::Devices(1)
                } else {
                    GpuRequest::Devices(1 + r.below(3) as u32)
                };
                let Some(slots) = choose_slots(&gpus, &request) else {
                    break;
                };
                for (g, s) in slots {
                    gpus[g][s].1 = Some(pods);
                }
                pods += 1;
                charged += price * node_share(gpu_pod(&request), node, Some(gpu));
            }
        }
        assert!(gpus.iter().flatten().all(|(_, t)| t.is_some()));
        let whole = match &sharing {
            // MIG pods pay by compute slice: a layout that leaves slices
            // unused leaves that part of the price idle.
            Sharing::Mig { layout } if by_profile => {
                let slices: u32 = layout
                    .iter()
                    .map(|p| gpu.mig_profile(p).unwrap().compute_slices)
                    .sum();
                price * f64::from(slices) / 7.0
            }
            Sharing::Mig { layout } if layout.is_empty() => 0.0,
            _ => price,
        };
        assert!(
            (charged - whole).abs() <= 1e-9 * price,
            "{pods} pod(s) on {sharing:?} x{gpus_per_node}: charged {charged}, node {whole} of {price}"
        );
        assert!(charged <= price * (1.0 + 1e-12));
    }
}

/// CPU-only pods, as many as fit by the binder's count: never more than the
/// node's price, all of it when the binding resource divides evenly.
#[test]
fn cpu_pods_on_a_full_node_pay_at_most_its_price() {
    let mut r = Mix(4);
    let none = GpuRequest::None;
    let sharing = Sharing::None;
    let mut exact = 0;
    for _ in 0..10_000 {
        let per_node = 1 + r.below(16);
        let node = NodeShape {
            cpu: (1 + r.below(64)) as f64,
            memory_bytes: (1 + r.below(256)) as f64 * GIB,
            gpus_per_node: 0,
            sharing: &sharing,
        };
        // Requests that divide the cpu evenly, memory anything smaller.
        let cpu_milli = (node.cpu * 1000.0) as u64 / per_node;
        let memory_bytes = (r.unit() * node.memory_bytes / per_node as f64) as u64;
        if cpu_milli == 0 {
            continue;
        }
        let fit = node_fit(
            node,
            &PodRequest {
                cpu_milli,
                memory_bytes,
                gpu: none.clone(),
            },
        );
        let share = node_share(
            Requested {
                cpu: cpu_milli as f64 / 1000.0,
                memory_bytes: memory_bytes as f64,
                gpu: &none,
            },
            node,
            None,
        );
        let total = f64::from(fit.per_node) * share;
        assert!(total <= 1.0 + 1e-9, "{} pods x {share}", fit.per_node);
        let even = ((node.cpu * 1000.0) as u64).is_multiple_of(per_node);
        if even && u64::from(fit.per_node) == per_node {
            assert!((total - 1.0).abs() < 1e-9, "{per_node} pods x {share}");
            exact += 1;
        }
    }
    // The equality above was checked, not skipped.
    assert!(exact > 1_000, "{exact}");
}
