//! Why an InferenceService is not ready, in the cluster's own words: its
//! conditions that are not True, its pods' phases, scheduling failures and
//! waiting containers, and the warning events about them (FailedScheduling
//! for want of GPUs, image pull errors, failing probes).

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::Client;
use std::fmt;
use std::time::Duration;

/// The services still not ready when the wait ended, each with its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct NotReady {
    pub waited: Duration,
    /// (InferenceService, reasons).
    pub services: Vec<(String, Vec<String>)>,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.services.iter().map(|(n, _)| n.as_str()).collect();
        write!(
            f,
            "not ready after {:.0} s: {}",
            self.waited.as_secs_f64(),
            names.join(", ")
        )?;
        for (name, reasons) in &self.services {
            for r in reasons {
                write!(f, "\n  {name}: {r}")?;
            }
            if reasons.is_empty() {
                write!(f, "\n  {name}: no condition, pod or event says why yet")?;
            }
        }
        Ok(())
    }
}

/// KServe's label on an InferenceService's pods.
const ISVC_LABEL: &str = "serving.kserve.io/inferenceservice";

pub async fn not_ready(
    client: &Client,
    isvcs: &Api<DynamicObject>,
    ns: &str,
    names: &[String],
    waited: Duration,
) -> NotReady {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut services = Vec::new();
    for name in names {
        let mut reasons = Vec::new();
        match isvcs.get_opt(name).await {
            Ok(None) => reasons.push("the InferenceService does not exist".to_string()),
            Ok(Some(o)) => {
                for c in o.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if c["status"] != "True" {
                        reasons.push(format!(
                            "condition {}={}{}{}",
                            c["type"].as_str().unwrap_or("?"),
                            c["status"].as_str().unwrap_or("?"),
                            c["reason"]
                                .as_str()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default(),
                            c["message"]
                                .as_str()
                                .map(|m| format!(": {m}"))
                                .unwrap_or_default(),
                        ));
                    }
                }
            }
            Err(e) => reasons.push(format!("reading it failed: {e}")),
        }
        let selector = ListParams::default().labels(&format!("{ISVC_LABEL}={name}"));
        match pods.list(&selector).await {
            Ok(list) if list.items.is_empty() => reasons.push("no pod has been created".into()),
            Ok(list) => {
                for p in &list.items {
                    let pod = p.metadata.name.clone().unwrap_or_default();
                    reasons.extend(pod_reasons(&pod, p));
                    let about = ListParams::default().fields(&format!("involvedObject.name={pod}"));
                    if let Ok(evs) = events.list(&about).await {
                        for e in evs
                            .items
                            .iter()
                            .filter(|e| e.type_.as_deref() == Some("Warning"))
                        {
                            reasons.push(format!(
                                "pod {pod}: event {}: {}",
                                e.reason.as_deref().unwrap_or("?"),
                                e.message.as_deref().unwrap_or("").trim()
                            ));
                        }
                    }
                }
            }
            Err(e) => reasons.push(format!("listing its pods failed: {e}")),
        }
        services.push((name.clone(), reasons));
    }
    NotReady { waited, services }
}

/// A pod's phase, scheduling and container states that keep it from Ready.
fn pod_reasons(name: &str, p: &Pod) -> Vec<String> {
    let mut out = Vec::new();
    let Some(status) = &p.status else {
        return out;
    };
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled" && c.status == "False" {
            out.push(format!(
                "pod {name}: {phase}, not scheduled ({}): {}",
                c.reason.as_deref().unwrap_or("?"),
                c.message.as_deref().unwrap_or("")
            ));
        }
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in containers {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            out.push(format!(
                "pod {name}: container {} waiting ({}){}",
                cs.name,
                w.reason.as_deref().unwrap_or("?"),
                w.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        } else if !cs.ready {
            out.push(format!(
                "pod {name}: container {} running but not ready (restarts: {})",
                cs.name, cs.restart_count
            ));
        }
    }
    if out.is_empty() && phase != "Running" {
        out.push(format!("pod {name}: {phase}"));
    }
    out
}
