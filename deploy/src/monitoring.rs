//! What Prometheus and Grafana need: a PodMonitor over the predictor pods, a
//! PrometheusRule with alerts from the scenario's SLOs, and a dashboard.

use crate::serving::{isvc_names, HTTP_PORT};
use crate::Ctx;
use lab_results::{SloMetric, SloSpec};
use serde_json::{json, Value};

/// kube-prometheus-stack selects PodMonitors and rules carrying its release label.
const RELEASE_LABEL: (&str, &str) = ("release", "kube-prometheus-stack");
/// The pod label KServe sets, kept on every scraped series by the PodMonitor.
const ISVC_LABEL: &str = "serving.kserve.io/inferenceservice";
/// How that label reads in Prometheus.
const ISVC_SERIES_LABEL: &str = "serving_kserve_io_inferenceservice";
/// The window alerts judge over.
const ALERT_WINDOW: &str = "5m";

fn monitoring_labels(cx: &Ctx, component: &str) -> Value {
    let mut l = cx.labels(component);
    l[RELEASE_LABEL.0] = json!(RELEASE_LABEL.1);
    l
}

fn all_isvcs(cx: &Ctx) -> Vec<String> {
    cx.sc.services.iter().flat_map(isvc_names).collect()
}

pub fn pod_monitor(cx: &mut Ctx) {
    let interval = cx.sc.metrics.scrape_interval;
    let v = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": { "name": "lab-predictor", "namespace": cx.ns, "labels": monitoring_labels(cx, "monitoring") },
        "spec": {
            "selector": { "matchExpressions": [{ "key": ISVC_LABEL, "operator": "In", "values": all_isvcs(cx) }] },
            "podTargetLabels": [ISVC_LABEL],
            "podMetricsEndpoints": [{
                // By number: Knative renames the user container's port.
                "portNumber": HTTP_PORT,
                "path": "/metrics",
                "interval": interval.to_string(),
            }],
        },
    });
    cx.push(v);
}

/// The series selector of an SLO: the namespace, and the service's model.
fn selector(cx: &Ctx, slo: &SloSpec) -> String {
    let mut s = format!("namespace=\"{}\"", cx.ns);
    if let Some(svc) = slo
        .service
        .as_ref()
        .and_then(|n| cx.sc.services.iter().find(|s| &s.name == n))
    {
        s += &format!(",model=\"{}\"", svc.model_name());
    }
    s
}

fn quantile(m: SloMetric) -> Option<f64> {
    Some(match m {
        SloMetric::P50 => 0.5,
        SloMetric::P90 => 0.9,
        SloMetric::P95 => 0.95,
        SloMetric::P99 => 0.99,
        SloMetric::P999 => 0.999,
        _ => return None,
    })
}

pub fn rules(cx: &mut Ctx) {
    let mut rules = Vec::new();
    let mut judged_elsewhere = Vec::new();
    for (i, slo) in cx.sc.slo.iter().enumerate() {
        let Ok((kind, bound)) = slo.bound() else {
            continue;
        };
        if kind != lab_results::SloThreshold::Max {
            judged_elsewhere.push(metric_name(slo.metric));
            continue;
        }
        let sel = selector(cx, slo);
        let scope = slo.service.clone().unwrap_or_else(|| "all services".into());
        let name = slo.name.clone().unwrap_or_else(|| {
            format!(
                "{}{}",
                metric_name(slo.metric),
                slo.service
                    .as_ref()
                    .map(|s| format!("-{s}"))
                    .unwrap_or_default()
            )
        });
        let alert = format!("LabSlo{}", camel(&name));
        let (expr, what) = if let Some(q) = quantile(slo.metric) {
            (
                format!(
                    "histogram_quantile({q}, sum by (le) (rate(lab_predictor_request_duration_seconds_bucket{{{sel}}}[{ALERT_WINDOW}]))) > {bound}"
                ),
                format!("{} latency above {bound} s", metric_name(slo.metric)),
            )
        } else {
            match slo.metric {
                SloMetric::MeanLatency => (
                    format!(
                        "sum(rate(lab_predictor_request_duration_seconds_sum{{{sel}}}[{ALERT_WINDOW}])) / sum(rate(lab_predictor_request_duration_seconds_count{{{sel}}}[{ALERT_WINDOW}])) > {bound}"
                    ),
                    format!("mean latency above {bound} s"),
                ),
                SloMetric::ErrorRate => (
                    format!(
                        "sum(rate(lab_predictor_requests_total{{{sel},code=~\"5..\"}}[{ALERT_WINDOW}])) / sum(rate(lab_predictor_requests_total{{{sel}}}[{ALERT_WINDOW}])) > {bound}"
                    ),
                    format!("error rate above {bound}"),
                ),
                _ => {
                    judged_elsewhere.push(metric_name(slo.metric));
                    continue;
                }
            }
        };
        rules.push(json!({
            "alert": alert,
            "expr": expr,
            "for": ALERT_WINDOW,
            "labels": { "severity": "warning", "lab_scenario": cx.sc.name, "lab_slo": i.to_string() },
            "annotations": {
                "summary": format!("{scope}: {what} (scenario {})", cx.sc.name),
                "description": "Measured in lab serve (server side): the time clients see adds the network and the \
                    serving gateway, so this alert fires later than the SLO breaks; lab check on the run's results \
                    judges the SLO end to end.",
            },
        }));
    }
    if !judged_elsewhere.is_empty() {
        cx.notes.push(format!(
            "SLOs on {} have no alert (no series measures them in the cluster); lab check judges them on results.json",
            judged_elsewhere.join(", ")
        ));
    }
    if rules.is_empty() {
        return;
    }
    let v = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": { "name": "lab-slo", "namespace": cx.ns, "labels": monitoring_labels(cx, "monitoring") },
        "spec": { "groups": [{ "name": format!("lab-slo-{}", cx.ns), "rules": rules }] },
    });
    cx.push(v);
}

/// The metric as scenario files spell it (`p99`, `error_rate`).
fn metric_name(m: SloMetric) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn camel(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A Grafana dashboard over the predictor's series, for Grafana's sidecar,
/// which loads ConfigMaps labelled `grafana_dashboard`.
pub fn dashboard(cx: &mut Ctx) {
    let ns = &cx.ns;
    let panel = |id: u32, title: &str, expr: String, unit: &str, y: u32, x: u32| {
        json!({
            "id": id,
            "type": "timeseries",
            "title": title,
            "datasource": { "type": "prometheus", "uid": "${datasource}" },
            "gridPos": { "h": 8, "w": 12, "x": x, "y": y },
            "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
            "targets": [{ "expr": expr, "legendFormat": "{{model}}", "refId": "A" }],
        })
    };
    let sel = format!("namespace=\"{ns}\"");
    let panels = vec![
        panel(1, "Requests per second", format!("sum by (model) (rate(lab_predictor_requests_total{{{sel}}}[1m]))"), "reqps", 0, 0),
        panel(2, "Errors (5xx) per second", format!("sum by (model) (rate(lab_predictor_requests_total{{{sel},code=~\"5..\"}}[1m]))"), "reqps", 0, 12),
        panel(3, "p50 latency (server)", format!("histogram_quantile(0.5, sum by (model, le) (rate(lab_predictor_request_duration_seconds_bucket{{{sel}}}[1m])))"), "s", 8, 0),
        panel(4, "p99 latency (server)", format!("histogram_quantile(0.99, sum by (model, le) (rate(lab_predictor_request_duration_seconds_bucket{{{sel}}}[1m])))"), "s", 8, 12),
        panel(5, "In-flight requests", format!("sum by (model) (lab_predictor_inflight_requests{{{sel}}})"), "short", 16, 0),
        panel(6, "Batching queue depth", format!("sum by (model) (lab_predictor_queue_depth{{{sel}}})"), "short", 16, 12),
        panel(7, "GPU busy (share of time)", format!("avg by (model) (rate(lab_predictor_gpu_busy_seconds_total{{{sel}}}[1m]))"), "percentunit", 24, 0),
        json!({
            "id": 8,
            "type": "timeseries",
            "title": "Ready predictor pods",
            "datasource": { "type": "prometheus", "uid": "${datasource}" },
            "gridPos": { "h": 8, "w": 12, "x": 12, "y": 24 },
            "fieldConfig": { "defaults": { "unit": "short" }, "overrides": [] },
            "targets": [{
                "expr": format!("count by ({ISVC_SERIES_LABEL}) (up{{{sel}}} == 1)"),
                "legendFormat": format!("{{{{{ISVC_SERIES_LABEL}}}}}"),
                "refId": "A",
            }],
        }),
    ];
    let dash = json!({
        "title": format!("lab: {}", cx.sc.name),
        "uid": format!("lab-{}", crate::dns_label(ns)).chars().take(40).collect::<String>(),
        "schemaVersion": 39,
        "time": { "from": "now-1h", "to": "now" },
        "refresh": "10s",
        "tags": ["lab", "kserve"],
        "templating": { "list": [{
            "name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus",
        }] },
        "panels": panels,
    });
    let mut labels = cx.labels("dashboard");
    labels["grafana_dashboard"] = json!("1");
    let v = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "lab-dashboard", "namespace": cx.ns, "labels": labels },
        "data": { "lab-dashboard.json": serde_json::to_string_pretty(&dash).expect("dashboard serializes") },
    });
    cx.push(v);
}
