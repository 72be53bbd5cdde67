//! The kinds lab applies, with their plural and scope: known up front, so
//! applying needs no discovery round trips and an unknown kind is refused.

use kube::api::{ApiResource, GroupVersionKind};

/// (kind, plural, namespaced).
const KINDS: &[(&str, &str, bool)] = &[
    ("Namespace", "namespaces", false),
    ("PriorityClass", "priorityclasses", false),
    ("ServiceAccount", "serviceaccounts", true),
    ("ConfigMap", "configmaps", true),
    ("Pod", "pods", true),
    ("Job", "jobs", true),
    ("ServingRuntime", "servingruntimes", true),
    ("InferenceService", "inferenceservices", true),
    ("InferenceGraph", "inferencegraphs", true),
    ("HorizontalPodAutoscaler", "horizontalpodautoscalers", true),
    ("ScaledObject", "scaledobjects", true),
    ("PodDisruptionBudget", "poddisruptionbudgets", true),
    ("NetworkPolicy", "networkpolicies", true),
    ("PodMonitor", "podmonitors", true),
    ("PrometheusRule", "prometheusrules", true),
];

/// The API resource of `kind` in `api_version` (`group/version` or `v1`).
pub fn api_resource(api_version: &str, kind: &str) -> Option<ApiResource> {
    let (_, plural, _) = KINDS.iter().find(|(k, _, _)| *k == kind)?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if version.is_empty() {
        return None;
    }
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}

/// Whether objects of `kind` live in a namespace.
pub fn is_namespaced(kind: &str) -> bool {
    KINDS.iter().any(|(k, _, ns)| *k == kind && *ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_grouped_kinds_resolve_to_their_paths() {
        let cm = api_resource("v1", "ConfigMap").unwrap();
        assert_eq!(
            (cm.group.as_str(), cm.version.as_str(), cm.plural.as_str()),
            ("", "v1", "configmaps")
        );
        let isvc = api_resource("serving.kserve.io/v1beta1", "InferenceService").unwrap();
        assert_eq!(isvc.group, "serving.kserve.io");
        assert_eq!(isvc.plural, "inferenceservices");
        assert!(
            api_resource("v1", "Secret").is_none(),
            "lab applies no Secret"
        );
        assert!(!is_namespaced("PriorityClass") && is_namespaced("ScaledObject"));
    }
}
