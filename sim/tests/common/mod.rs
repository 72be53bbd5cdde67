#![allow(dead_code)] // each test file uses a different subset
use lab_results::Results;
use std::path::Path;

pub fn scenario(text: &str) -> lab_scenario::Scenario {
    lab_scenario::parse(text, "test.toml", Path::new("."), &[]).unwrap_or_else(|e| panic!("{e}"))
}

pub fn run(text: &str, seed: u64) -> Results {
    let s = scenario(text);
    lab_sim::simulate(&s, seed, &mut |_| lab_sim::Control::Continue).results
}

/// One fixed node with room for any test's CPU pods.
pub const CPU_POOL: &str = r#"[[node_pools]]
name = "cpu"
cpu = "64"
memory = "64Gi"
price_per_hour = 1
min_nodes = 1
max_nodes = 1"#;

/// A single CPU pod with `servers` execution instances: one queue, c servers.
pub fn queue_scenario(rate: f64, mean_ms: f64, servers: u32, dist: &str, minutes: u32) -> String {
    format!(
        r#"
name = "q"
[run]
duration = "{minutes}m"
warmup = "1m"
interval = "1s"
{CPU_POOL}
[[services]]
name = "q"
resources = {{ cpu = "1" }}
batching = {{ max_batch_size = 1, instances = {servers} }}
timeout = "1h"
autoscaler.fixed = {{}}
[[services.latency]]
gpu = "cpu"
batch_latency = {{ "1" = "{mean_ms}ms" }}
distribution = {{ kind = "{dist}" }}
[[traffic]]
phases = [{{ kind = "constant", rate = {rate}, duration = "{minutes}m" }}]
"#
    )
}

/// Mean and standard error of independent replications.
pub fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}
