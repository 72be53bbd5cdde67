//! Reading the cluster while the load runs: one [`Snapshot`] per interval
//! (the InferenceServices' pods and Deployments, the nodes), kept by
//! [`Observation`] as the same samples, pod lifecycles and node lifetimes the
//! local level's controller keeps, so results.json is laid out alike.
//!
//! Everything but [`Cluster::snapshot`] and [`Cluster::events`] is pure: the
//! snapshots are passed in with the instant they were taken.

use crate::{Cluster, ClusterError};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;

/// The label KServe puts on an InferenceService's Deployments and pods
/// (Knative copies it onto revision Deployments too).
pub const ISVC_LABEL: &str = "serving.kserve.io/inferenceservice";
/// The node label naming a scenario's pool (as `lab deploy` prints it).
pub const POOL_LABEL: &str = "lab.dev/node-pool";

/// What the cluster looked like at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When it was taken, in nanoseconds since the Unix epoch.
    pub at_unix_ns: i128,
    pub pods: Vec<Pod>,
    pub deployments: Vec<Deployment>,
    pub nodes: Vec<Node>,
    /// GPU busy fraction (0..1) per node name, where DCGM reports it.
    pub gpu_busy: BTreeMap<String, f64>,
}

impl Cluster {
    /// The pods and Deployments of every InferenceService in `ns`, and the
    /// nodes, taken at `at_unix_ns`.
    pub async fn snapshot(&self, ns: &str, at_unix_ns: i128) -> Result<Snapshot, ClusterError> {
        let lp = ListParams::default().labels(ISVC_LABEL);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let nodes: Api<Node> = Api::all(self.client.clone());
        Ok(Snapshot {
            at_unix_ns,
            pods: pods.list(&lp).await?.items,
            deployments: deployments.list(&lp).await?.items,
            nodes: nodes.list(&ListParams::default()).await?.items,
            gpu_busy: BTreeMap::new(),
        })
    }

    /// The events of namespace `ns` (image pulls, scheduling), as the API
    /// server still holds them (an hour by default).
    pub async fn events(&self, ns: &str) -> Result<Vec<Event>, ClusterError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        Ok(api.list(&ListParams::default()).await?.items)
    }

    /// `GET` through the API server's service proxy (the cluster's Prometheus
    /// without a port-forward): `path` includes its query string.
    pub async fn service_get(
        &self,
        ns: &str,
        service: &str,
        port: u16,
        path: &str,
    ) -> Result<String, ClusterError> {
        let req = http::Request::get(format!(
            "/api/v1/namespaces/{ns}/services/{service}:{port}/proxy{path}"
        ))
        .body(Vec::new())
        .map_err(|e| ClusterError::BadInput(e.to_string()))?;
        Ok(self.client.request_text(req).await?)
    }
}

/// One InferenceService the run watches, and what it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The InferenceService's name.
    pub isvc: String,
    /// Index of its service in the scenario.
    pub service: usize,
    /// `service`, or `service/version` for a canary's version.
    pub name: String,
    /// `hpa`, `kpa`, `keda` or `fixed`: who scales it.
    pub autoscaler: String,
}

/// One sample: per scenario service (desired, ready) replicas, per pool
/// (nodes, ready nodes), and the GPU busy fraction where it was reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Since the start of the load, nanoseconds (0 for samples before it).
    pub t_ns: u64,
    pub services: Vec<(u32, u32)>,
    pub pools: Vec<(u32, u32)>,
    /// Mean over the reporting GPUs, overall and per pool.
    pub gpu_busy: Option<f64>,
    pub pool_gpu_busy: Vec<Option<f64>>,
}

/// One pod of a watched InferenceService through its life, in nanoseconds
/// relative to the start of the load (negative before it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodLife {
    pub name: String,
    pub target: usize,
    pub created: i64,
    pub scheduled: Option<i64>,
    /// The container's `state.running.startedAt`.
    pub started: Option<i64>,
    pub ready: Option<i64>,
    /// Deletion asked for, or the pod gone from the listing.
    pub ended: Option<i64>,
    pub node: Option<String>,
    pub restarts: u32,
    /// The scheduler's last word while it could not place the pod.
    pub unschedulable: Option<String>,
}

/// One node through its life (relative nanoseconds as above).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLife {
    pub name: String,
    /// Index in the scenario's pools; none for a node no pool claims.
    pub pool: Option<usize>,
    pub created: i64,
    pub ready: bool,
    pub gone: Option<i64>,
}

/// A scaling decision seen as a change of the Deployments' `spec.replicas`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    pub t_ns: u64,
    pub target: usize,
    pub from: u32,
    pub to: u32,
    pub deployments: Vec<String>,
}

/// What the run saw of the cluster.
#[derive(Debug, Clone)]
pub struct Observation {
    pub start_unix_ns: i128,
    pub targets: Vec<Target>,
    pub services: usize,
    pub pools: Vec<String>,
    pub samples: Vec<Sample>,
    pub pods: BTreeMap<String, PodLife>,
    pub nodes: BTreeMap<String, NodeLife>,
    pub scalings: Vec<Scaling>,
    /// Nodes no pool label claimed while the scenario has several pools.
    pub unpooled_nodes: usize,
    desired: Vec<Option<u32>>,
}

impl Observation {
    /// `start_unix_ns` is the load's start instant; `pools` the scenario's
    /// pool names in order; `services` how many services the scenario has.
    pub fn new(
        start_unix_ns: i128,
        targets: Vec<Target>,
        services: usize,
        pools: Vec<String>,
    ) -> Observation {
        let desired = vec![None; targets.len()];
        Observation {
            start_unix_ns,
            targets,
            services,
            pools,
            samples: Vec::new(),
            pods: BTreeMap::new(),
            nodes: BTreeMap::new(),
            scalings: Vec::new(),
            unpooled_nodes: 0,
            desired,
        }
    }

    fn rel(&self, unix_ns: i128) -> i64 {
        (unix_ns - self.start_unix_ns).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    fn rel_time(&self, t: &Time) -> i64 {
        self.rel(t.0.as_nanosecond())
    }

    fn target_of(&self, labels: Option<&BTreeMap<String, String>>) -> Option<usize> {
        let isvc = labels?.get(ISVC_LABEL)?;
        self.targets.iter().position(|t| &t.isvc == isvc)
    }

    /// A node's pool: the one its `lab.dev/node-pool` label names. Where the
    /// scenario has one pool and no node carries the label (kind, a cluster
    /// not labelled for lab), the nodes that ran the scenario's pods are the
    /// pool; the control plane and system nodes are not.
    fn pool_of(&self, n: &Node, any_labelled: bool) -> Option<usize> {
        match n.metadata.labels.as_ref().and_then(|l| l.get(POOL_LABEL)) {
            Some(name) => self.pools.iter().position(|p| p == name),
            None if self.pools.len() == 1 && !any_labelled => {
                let name = n.metadata.name.as_deref().unwrap_or_default();
                self.pods
                    .values()
                    .any(|p| p.node.as_deref() == Some(name))
                    .then_some(0)
            }
            None => None,
        }
    }

    /// Takes in one snapshot (in the order they were taken).
    pub fn record(&mut self, snap: &Snapshot) {
        let now = self.rel(snap.at_unix_ns);
        let t_ns = now.max(0) as u64;

        // Pods: their lifecycle from conditions and container state.
        let mut seen = Vec::new();
        let mut ready_by_target = vec![0u32; self.targets.len()];
        for p in &snap.pods {
            let Some(target) = self.target_of(p.metadata.labels.as_ref()) else {
                continue;
            };
            let Some(uid) = p.metadata.uid.clone().or_else(|| p.metadata.name.clone()) else {
                continue;
            };
            seen.push(uid.clone());
            let life = self.pod_life(p, target, now);
            if life.ready.is_some() && life.ended.is_none() && pod_ready(p) {
                ready_by_target[target] += 1;
            }
            let entry = self.pods.entry(uid).or_insert_with(|| life.clone());
            // Keep the first time each phase was reached.
            entry.scheduled = entry.scheduled.or(life.scheduled);
            entry.started = entry.started.or(life.started);
            entry.ready = entry.ready.or(life.ready);
            entry.ended = entry.ended.or(life.ended);
            entry.node = entry.node.clone().or(life.node);
            entry.restarts = entry.restarts.max(life.restarts);
            entry.unschedulable = if entry.scheduled.is_some() {
                None
            } else {
                life.unschedulable
            };
        }
        for (uid, life) in &mut self.pods {
            if life.ended.is_none() && !seen.contains(uid) {
                life.ended = Some(now);
            }
        }

        // Desired replicas: what the autoscaler last asked of the Deployments.
        let mut desired_by_target = vec![0u32; self.targets.len()];
        let mut deployments_by_target: Vec<Vec<String>> = vec![Vec::new(); self.targets.len()];
        for d in &snap.deployments {
            let Some(target) = self.target_of(d.metadata.labels.as_ref()) else {
                continue;
            };
            let replicas = d.spec.replicas.unwrap_or(1);
            desired_by_target[target] += replicas.max(0) as u32;
            deployments_by_target[target].push(d.metadata.name.clone().unwrap_or_default());
        }
        for (i, &to) in desired_by_target.iter().enumerate() {
            match self.desired[i] {
                Some(from) if from != to => self.scalings.push(Scaling {
                    t_ns,
                    target: i,
                    from,
                    to,
                    deployments: deployments_by_target[i].clone(),
                }),
                _ => {}
            }
            self.desired[i] = Some(to);
        }

        // Nodes.
        let mut present = Vec::new();
        self.unpooled_nodes = 0;
        let any_labelled = snap.nodes.iter().any(|n| {
            n.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(POOL_LABEL))
        });
        for n in &snap.nodes {
            let Some(name) = n.metadata.name.clone() else {
                continue;
            };
            present.push(name.clone());
            let pool = self.pool_of(n, any_labelled);
            let created = n
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(now, |t| self.rel_time(t));
            let ready = node_ready(n);
            let life = self.nodes.entry(name.clone()).or_insert(NodeLife {
                name,
                pool,
                created,
                ready,
                gone: None,
            });
            life.ready = ready;
            life.gone = None;
            // A node that ran the scenario's pods once stays in its pool.
            life.pool = pool.or(life.pool);
            if life.pool.is_none() {
                self.unpooled_nodes += 1;
            }
        }
        for life in self.nodes.values_mut() {
            if life.gone.is_none() && !present.contains(&life.name) {
                life.gone = Some(now);
            }
        }

        let mut services = vec![(0u32, 0u32); self.services];
        for (i, t) in self.targets.iter().enumerate() {
            if let Some(s) = services.get_mut(t.service) {
                s.0 += desired_by_target[i];
                s.1 += ready_by_target[i];
            }
        }
        let mut pools = vec![(0u32, 0u32); self.pools.len()];
        let mut busy: Vec<Vec<f64>> = vec![Vec::new(); self.pools.len()];
        for n in self.nodes.values().filter(|n| n.gone.is_none()) {
            if let Some(p) = n.pool {
                pools[p].0 += 1;
                pools[p].1 += u32::from(n.ready);
                if let Some(b) = snap.gpu_busy.get(&n.name) {
                    busy[p].push(*b);
                }
            }
        }
        let all: Vec<f64> = snap.gpu_busy.values().copied().collect();
        self.samples.push(Sample {
            t_ns,
            services,
            pools,
            gpu_busy: mean(&all),
            pool_gpu_busy: busy.iter().map(|b| mean(b)).collect(),
        });
    }

    fn pod_life(&self, p: &Pod, target: usize, now: i64) -> PodLife {
        let status = p.status.as_ref();
        let condition = |kind: &str| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
        };
        let true_since = |kind: &str| {
            condition(kind).filter(|c| c.status == "True").map(|c| {
                c.last_transition_time
                    .as_ref()
                    .map_or(now, |t| self.rel_time(t))
            })
        };
        let container = status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first());
        let started = container
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .map(|t| self.rel_time(t));
        let unschedulable = condition("PodScheduled")
            .filter(|c| c.status == "False")
            .map(|c| c.message.clone().or(c.reason.clone()).unwrap_or_default());
        PodLife {
            name: p.metadata.name.clone().unwrap_or_default(),
            target,
            created: p
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(now, |t| self.rel_time(t)),
            scheduled: true_since("PodScheduled"),
            started,
            ready: true_since("Ready"),
            ended: p
                .metadata
                .deletion_timestamp
                .as_ref()
                .map(|t| self.rel_time(t)),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            restarts: container.map_or(0, |c| c.restart_count.max(0) as u32),
            unschedulable,
        }
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Image pull time per pod name, from the kubelet's `Pulled` events: the
/// duration in `Successfully pulled image "x" in 1.2s (1.2s including
/// waiting)`, 0 for `already present on machine`.
pub fn image_pulls(events: &[Event]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for e in events {
        if e.reason.as_deref() != Some("Pulled") {
            continue;
        }
        let Some(pod) = e.involved_object.name.clone() else {
            continue;
        };
        let message = e.message.as_deref().unwrap_or_default();
        let secs = if message.contains("already present") {
            Some(0.0)
        } else {
            message
                .split(" in ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(go_duration)
        };
        if let Some(s) = secs {
            *out.entry(pod).or_insert(0.0) += s;
        }
    }
    out
}

/// A Go duration as the kubelet prints one (`1m2.5s`, `532ms`, `1.2s`): the
/// units and their order are lab's own duration syntax.
pub fn go_duration(text: &str) -> Option<f64> {
    lab_units::parse_duration(text).ok().map(|d| d.secs_f64())
}
