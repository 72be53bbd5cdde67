//! The gateway's services from a scenario file's keys.

use lab_gateway::{ServiceConfig, VersionConfig, DEFAULT_VERSION};
use std::time::Duration;

const CANARY: &str = r#"
name = "canary"
[run]
duration = "5m"
[gateway]
activator_queue_limit = 7
[[node_pools]]
name = "cpu"
cpu = "64"
memory = "64Gi"
price_per_hour = 1
min_nodes = 1
max_nodes = 1
[[services]]
name = "m"
model = "resnet"
minReplicas = 2
maxReplicas = 2
containerConcurrency = 4
timeout = "45s"
resources = { cpu = "1" }
autoscaler.fixed = {}
versions = [
  { name = "stable", trafficPercent = 80 },
  { name = "canary", trafficPercent = 20 },
]
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "1ms" }
[[services]]
name = "plain"
resources = { cpu = "1" }
autoscaler.fixed = {}
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "1ms" }
[[traffic]]
service = "m"
phases = [{ kind = "constant", rate = 200, duration = "5m" }]
[[traffic]]
service = "plain"
phases = [{ kind = "constant", rate = 10, duration = "5m" }]
"#;

#[test]
fn services_versions_and_limits_come_from_the_scenario() {
    let sc = lab_scenario::parse(CANARY, "canary.toml", std::path::Path::new("."), &[]).unwrap();
    let services = ServiceConfig::from_scenario(&sc);
    assert_eq!(
        services[0],
        ServiceConfig {
            name: "m".into(),
            model: "resnet".into(),
            versions: vec![
                VersionConfig {
                    name: "stable".into(),
                    traffic_percent: 80.0
                },
                VersionConfig {
                    name: "canary".into(),
                    traffic_percent: 20.0
                },
            ],
            container_concurrency: 4,
            activator_queue_limit: 7,
            timeout: Duration::from_secs(45),
        }
    );
    // No canary: one version at 100 %, the model named as the service, and
    // KServe's defaults (unlimited concurrency, 60 s timeout).
    assert_eq!(services[1].model, "plain");
    assert_eq!(
        services[1].versions,
        vec![VersionConfig {
            name: DEFAULT_VERSION.into(),
            traffic_percent: 100.0
        }]
    );
    assert_eq!(services[1].container_concurrency, 0);
    assert_eq!(services[1].timeout, Duration::from_secs(60));
}
