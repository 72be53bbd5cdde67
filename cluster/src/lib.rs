//! The cluster level's driver: what `lab deploy` renders, applied through the
//! Kubernetes API with server-side apply under one field manager, watched
//! until every InferenceService is Ready (or reported with the reasons the
//! cluster gives: conditions, pod phases, scheduling failures, image pulls,
//! failing probes), and deleted again.
//!
//! Everything goes through a [`kube::Client`], so the tests run it against an
//! API server double at the HTTP level and assert the requests it sent.

pub mod assemble;
mod diagnose;
#[cfg(feature = "fake")]
pub mod fake;
mod load;
pub mod observe;
mod resources;

use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams,
};
use kube::Client;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use diagnose::NotReady;
pub use load::{ShardJob, Shards};
pub use resources::{api_resource, is_namespaced};

/// The pause before listing again after a watch ended.
const RELIST_PAUSE: Duration = Duration::from_millis(250);

/// The field manager of every apply: one owner for every field lab sets.
pub const FIELD_MANAGER: &str = "lab";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    BadInput(String),
    #[error("the Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    NotReady(NotReady),
    #[error("stopped before the services were ready")]
    Interrupted,
}

/// One applied object, enough to find it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What a teardown could not delete.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftover {
    pub object: Applied,
    pub error: String,
}

#[derive(Clone)]
pub struct Cluster {
    client: Client,
}

impl Cluster {
    pub fn new(client: Client) -> Cluster {
        Cluster { client }
    }

    /// The cluster of the kubeconfig's current context, or of `context`.
    pub async fn connect(context: Option<&str>) -> Result<Cluster, ClusterError> {
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let config = kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| ClusterError::BadInput(format!("kubeconfig: {e}")))?;
        Ok(Cluster::new(Client::try_from(config)?))
    }

    fn api(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
    ) -> Result<Api<DynamicObject>, ClusterError> {
        let ar = api_resource(api_version, kind).ok_or_else(|| {
            ClusterError::BadInput(format!("lab does not apply {kind} ({api_version})"))
        })?;
        Ok(match (is_namespaced(kind), ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (true, None) => {
                return Err(ClusterError::BadInput(format!(
                    "{kind} is namespaced but names no namespace"
                )))
            }
            (false, _) => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// Server-side apply of `objects`, in order (namespaces and what others
    /// refer to first, as `lab deploy` orders them), each under
    /// [`FIELD_MANAGER`] with conflicts forced: the scenario is the source of
    /// truth for every field it sets. Stops at the first refusal, returning
    /// what was applied so far with the error.
    pub async fn apply(
        &self,
        objects: &[Value],
    ) -> Result<Vec<Applied>, (Vec<Applied>, ClusterError)> {
        let mut done = Vec::new();
        for v in objects {
            match self.apply_one(v).await {
                Ok(a) => done.push(a),
                Err(e) => return Err((done, e)),
            }
        }
        Ok(done)
    }

    async fn apply_one(&self, v: &Value) -> Result<Applied, ClusterError> {
        let api_version = v["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = v["kind"].as_str().unwrap_or_default().to_string();
        let name = v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = v["metadata"]["namespace"].as_str().map(str::to_string);
        if name.is_empty() || kind.is_empty() {
            return Err(ClusterError::BadInput(format!(
                "an object without kind or name: {v}"
            )));
        }
        let api = self.api(&api_version, &kind, namespace.as_deref())?;
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(v),
        )
        .await?;
        Ok(Applied {
            api_version,
            kind,
            namespace,
            name,
        })
    }

    /// Waits until every InferenceService named in `names` (in namespace `ns`)
    /// has condition Ready=True, watching them; `progress` hears each change of
    /// how many are ready. After `timeout`, or when `stop` completes, says
    /// which are not ready and why.
    pub async fn wait_ready(
        &self,
        ns: &str,
        names: &[String],
        timeout: Duration,
        mut progress: impl FnMut(usize, usize),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), ClusterError> {
        let api = self.api("serving.kserve.io/v1beta1", "InferenceService", Some(ns))?;
        let deadline = Instant::now() + timeout;
        let mut ready: BTreeMap<String, bool> = names.iter().map(|n| (n.clone(), false)).collect();
        let mut last = usize::MAX;
        tokio::pin!(stop);
        loop {
            // List, then watch from the list's version; a watch the server ends
            // (its own timeout) is picked up by listing again.
            let list = api.list(&ListParams::default()).await?;
            for o in &list.items {
                if let Some(n) = &o.metadata.name {
                    if let Some(r) = ready.get_mut(n) {
                        *r = is_ready(o);
                    }
                }
            }
            if report(&ready, &mut last, &mut progress) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let version = list.metadata.resource_version.clone().unwrap_or_default();
            let wp = WatchParams::default().timeout(left.as_secs().clamp(1, 290) as u32);
            let mut events = Box::pin(api.watch(&wp, &version).await?);
            loop {
                let next = tokio::select! {
                    e = futures_next(&mut events) => e,
                    _ = tokio::time::sleep(left) => None,
                    _ = &mut stop => return Err(ClusterError::Interrupted),
                };
                let Some(event) = next else { break };
                match event? {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                        if let Some(r) = o.metadata.name.as_ref().and_then(|n| ready.get_mut(n)) {
                            *r = is_ready(&o);
                        }
                    }
                    WatchEvent::Deleted(o) => {
                        if let Some(r) = o.metadata.name.as_ref().and_then(|n| ready.get_mut(n)) {
                            *r = false;
                        }
                    }
                    WatchEvent::Bookmark(_) => {}
                    // Too old a version (410): list again.
                    WatchEvent::Error(_) => break,
                }
                if report(&ready, &mut last, &mut progress) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
            // A watch the server ended at once (an error it does not explain)
            // must not turn into a busy loop of lists.
            tokio::select! {
                _ = tokio::time::sleep(RELIST_PAUSE) => {}
                _ = &mut stop => return Err(ClusterError::Interrupted),
            }
        }
        let waiting: Vec<String> = ready
            .iter()
            .filter(|(_, r)| !**r)
            .map(|(n, _)| n.clone())
            .collect();
        let report = diagnose::not_ready(&self.client, &api, ns, &waiting, timeout).await;
        Err(ClusterError::NotReady(report))
    }

    /// Deletes what `apply` applied, last first (the namespace last, which
    /// takes whatever is left in it); says what could not be deleted. Objects
    /// already gone count as deleted.
    pub async fn teardown(&self, applied: &[Applied]) -> Vec<Leftover> {
        let mut left = Vec::new();
        for a in applied.iter().rev() {
            let result = match self.api(&a.api_version, &a.kind, a.namespace.as_deref()) {
                Ok(api) => match api.delete(&a.name, &DeleteParams::background()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = result {
                left.push(Leftover {
                    object: a.clone(),
                    error,
                });
            }
        }
        left
    }
}

/// Tells `progress` when the count of ready services changed; true once all are.
fn report(
    ready: &BTreeMap<String, bool>,
    last: &mut usize,
    progress: &mut impl FnMut(usize, usize),
) -> bool {
    let n = ready.values().filter(|r| **r).count();
    if n != *last {
        progress(n, ready.len());
        *last = n;
    }
    n == ready.len()
}

/// Condition Ready=True.
pub fn is_ready(o: &DynamicObject) -> bool {
    o.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

async fn futures_next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}
