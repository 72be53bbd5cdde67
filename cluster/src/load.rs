//! Driving the load Job's shards: wait until every shard listens (its pod is
//! Ready), give them all one start instant through the API server's pod
//! proxy (the shards have no API rights of their own), then wait for the Job
//! to finish and read each shard's results from its log.

use crate::{Cluster, ClusterError};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the shards' pods are listed while waiting on them.
const POLL: Duration = Duration::from_millis(500);

/// Which Job's shards, and the port they wait for their start on.
#[derive(Debug, Clone, Copy)]
pub struct ShardJob<'a> {
    pub namespace: &'a str,
    pub job: &'a str,
    pub count: u32,
    pub port: u16,
}

/// The pods of a load Job, by completion index.
#[derive(Debug, Clone, PartialEq)]
pub struct Shards {
    pub pods: Vec<String>,
    /// The instant every shard was given.
    pub start: SystemTime,
}

impl Cluster {
    /// Waits (up to `timeout`) until the `count` pods of the Job are Ready,
    /// then posts one start instant, `lead` from now, to each through the pod
    /// proxy on the Job's start port.
    pub async fn start_shards(
        &self,
        job: ShardJob<'_>,
        timeout: Duration,
        lead: Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<Shards, ClusterError> {
        let ShardJob {
            namespace: ns,
            job,
            count,
            port,
        } = job;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let deadline = Instant::now() + timeout;
        tokio::pin!(stop);
        let by_index = loop {
            let list = pods
                .list(&ListParams::default().labels(&format!("job-name={job}")))
                .await?;
            let mut ready: Vec<Option<String>> = vec![None; count as usize];
            for p in &list.items {
                let Some(i) = completion_index(p).filter(|i| (*i as usize) < ready.len()) else {
                    continue;
                };
                // A shard that ended before its start (bad arguments, an
                // unreadable scenario) will never listen: say why now.
                if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    let log = self.log(&pods, &name, 64 << 10).await.unwrap_or_default();
                    return Err(ClusterError::BadInput(format!(
                        "load shard {name} failed before its start:\n{}",
                        tail(&log, 5)
                    )));
                }
                if pod_ready(p) {
                    ready[i as usize] = p.metadata.name.clone();
                }
            }
            if ready.iter().all(Option::is_some) {
                break ready.into_iter().flatten().collect::<Vec<_>>();
            }
            if Instant::now() >= deadline {
                let waiting = ready.iter().filter(|r| r.is_none()).count();
                return Err(ClusterError::BadInput(format!(
                    "{waiting} of {count} load shards of Job {ns}/{job} were not listening after {:.0} s",
                    timeout.as_secs_f64()
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = &mut stop => return Err(ClusterError::Interrupted),
            }
        };
        let start = SystemTime::now() + lead;
        let secs = start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        for pod in &by_index {
            let req = http::Request::post(format!(
                "/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/start"
            ))
            .header("content-type", "text/plain")
            .body(format!("{secs:.3}").into_bytes())
            .map_err(|e| ClusterError::BadInput(e.to_string()))?;
            self.client.request_text(req).await?;
        }
        Ok(Shards {
            pods: by_index,
            start,
        })
    }

    /// Waits until every shard's pod has ended and returns their logs (each
    /// shard's results), by index. A shard that failed is an error with the
    /// end of its log.
    pub async fn collect_shards(
        &self,
        ns: &str,
        shards: &Shards,
        limit_bytes: u64,
        timeout: Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<Vec<String>, ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let deadline = Instant::now() + timeout;
        tokio::pin!(stop);
        loop {
            let mut running = 0;
            for name in &shards.pods {
                let p = pods.get(name).await?;
                match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
                    Some("Succeeded") => {}
                    Some("Failed") => {
                        let log = self.log(&pods, name, limit_bytes).await.unwrap_or_default();
                        return Err(ClusterError::BadInput(format!(
                            "load shard {name} failed:\n{}",
                            tail(&log, 5)
                        )));
                    }
                    _ => running += 1,
                }
            }
            if running == 0 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::BadInput(format!(
                    "{running} load shard(s) still running after {:.0} s",
                    timeout.as_secs_f64()
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = &mut stop => return Err(ClusterError::Interrupted),
            }
        }
        let mut logs = Vec::new();
        for name in &shards.pods {
            logs.push(self.log(&pods, name, limit_bytes).await?);
        }
        Ok(logs)
    }

    async fn log(
        &self,
        pods: &Api<Pod>,
        name: &str,
        limit_bytes: u64,
    ) -> Result<String, ClusterError> {
        let lp = LogParams {
            container: Some("load".into()),
            limit_bytes: Some(limit_bytes as i64),
            ..LogParams::default()
        };
        Ok(pods.logs(name, &lp).await?)
    }
}

/// The last `n` lines of a log.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The Job's completion index of a pod.
fn completion_index(p: &Pod) -> Option<u32> {
    p.metadata
        .annotations
        .as_ref()?
        .get("batch.kubernetes.io/job-completion-index")?
        .parse()
        .ok()
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
