//! The gateway in front of one pod, for measuring its added latency
//! (BENCHMARKS.md, "Gateway"): one service `m`, one ready endpoint, the
//! activator out of the path (Serve mode), `containerConcurrency` 0.
//!
//! Usage: gateway_bench LISTEN POD [THREADS]
//!   e.g. gateway_bench 127.0.0.1:8098 127.0.0.1:8099 1

use lab_gateway::{ActivatorMode, Gateway, GatewayConfig, ServiceConfig, VersionConfig};
use std::net::SocketAddr;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(pod)) = (args.next(), args.next()) else {
        return Err("usage: gateway_bench LISTEN POD [THREADS]".into());
    };
    let listen: SocketAddr = listen.parse()?;
    let pod: SocketAddr = pod.parse()?;
    let threads: usize = args.next().map(|t| t.parse()).transpose()?.unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?
        .block_on(async {
            let mut cfg = GatewayConfig::new(vec![ServiceConfig {
                name: "m".into(),
                model: "m".into(),
                versions: vec![VersionConfig {
                    name: "default".into(),
                    traffic_percent: 100.0,
                }],
                container_concurrency: 0,
                activator_queue_limit: 10_000,
                timeout: Duration::from_secs(300),
            }]);
            cfg.listen = listen;
            let gw = Gateway::start(cfg).await?;
            let h = gw.handle();
            let id = h.add_endpoint("m", "default", "m-0", pod)?;
            h.set_ready(id, true)?;
            h.set_activator_mode("m", "default", ActivatorMode::Serve)?;
            eprintln!(
                "gateway on http://{} -> {pod} ({threads} threads)",
                gw.local_addr()
            );
            tokio::signal::ctrl_c().await?;
            Ok(())
        })
}
