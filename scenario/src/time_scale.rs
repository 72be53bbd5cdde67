//! A scenario played K times faster: every duration divided by K, every rate
//! multiplied by K. Queueing is unchanged by the change of clock (Little's law:
//! concurrency, queue lengths and utilizations are invariant), so the local level
//! can replay an hour in six minutes and report the run back in scenario time with
//! `lab_results::to_scenario_time`.
//!
//! What scales:
//! - durations: run, traffic phases, latency points (inline and resolved),
//!   cold-start phases, the service timeout, Triton's queue delay, node pools,
//!   the cluster autoscaler, metrics, and every autoscaler period and window,
//!   the KPA's decision tick and metric bucket and the controller flags of the
//!   HPA that KEDA generates among them (defaults written out, so a default is
//!   scaled too);
//! - rates × K: phase rates, a trace's speedup, spot interruptions per hour,
//!   image pull bandwidth, autoscaler targets and thresholds that read requests
//!   per second (a KPA on `rps`, HPA metrics and KEDA triggers whose signal is
//!   `rps`), and the goodput SLO;
//! - latency SLO bounds ÷ K, so the goodput the run counts is the one the
//!   scenario asks for; a nameless SLO gets its scenario-time name.
//!
//! The played copy carries its speed (`AutoscalerSpec::played_faster`, never in a
//! file), so lab-autoscale divides upstream's limits on durations by K (the KPA's
//! 6 s minimum window is 0.6 s at K = 10) and divides the HPA behavior's
//! whole-second fields, which stay in scenario time, as it compiles.
//!
//! What does not: counts, concurrency, queue and utilization targets, prices.
//! Prices stay per hour of the scaled run, so the run's accumulated USD is 1/K of
//! the scenario's and its monthly projection (a cost *rate*) is already right;
//! `to_scenario_time` multiplies accumulated USD and node-hours by K.
//!
//! Not reachable from the scenario, so left at wall-clock values (see
//! [`UNSCALED_CONSTANTS`]): the KPA's 630 s activation timeout. Under
//! `--time-scale K` it runs K times slower in scenario time.

use crate::spec::*;
use lab_autoscale::hpa::{ControllerFlags, HpaConfig, MetricKind};
use lab_autoscale::keda::KedaConfig;
use lab_autoscale::kpa::{defaults as kpa_defaults, KpaConfig};
use lab_autoscale::spec::{
    ContainerResourceMetricSource, ExternalMetricSource, HpaControllerFlags, KpaMetric, MetricSpec,
    MetricTarget, ObjectMetricSource, PlaySpeed, PodsMetricSource, ResourceMetricSource,
};
use lab_autoscale::{AutoscalerSpec, Bounds, HpaSpec, KedaSpec, KpaSpec, Signal};
use lab_gpu::{BatchPoint, LatencyProfile};
use lab_results::{BoundValue, SloMetric, SloSpec};
use lab_traffic::{Phase, TrafficSpec};
use lab_units::{Dur, Quantity};

/// Autoscaler constants that are fixed in `lab-autoscale` rather than set by the
/// scenario, so [`time_scaled`] cannot shorten them.
pub const UNSCALED_CONSTANTS: &[&str] = &["KPA activation timeout (630s)"];

/// `sc` played `k` times faster. `k` must be finite and positive; `k = 1` returns
/// the scenario unchanged. Expects a validated scenario (autoscalers that
/// compile). Every autoscaler spec is marked as played `k` times faster
/// (`AutoscalerSpec::played_faster`), so lab-autoscale judges its durations
/// against upstream's limits divided by `k`: what is valid in scenario time
/// plays at any `k`. The HPA behavior's whole seconds
/// (`stabilizationWindowSeconds`, `periodSeconds`) are left in scenario time and
/// divided when the spec compiles. Fails, naming each field, when a scaled
/// autoscaler still does not compile.
pub fn time_scaled(sc: &Scenario, k: f64) -> Result<Scenario, String> {
    if !(k.is_finite() && k > 0.0) {
        return Err(format!(
            "the time scale must be a positive finite number, got {k}"
        ));
    }
    if k == 1.0 {
        return Ok(sc.clone());
    }
    let mut s = Scaler {
        k,
        problems: Vec::new(),
    };
    let mut out = sc.clone();
    // Destructured without `..`: a new field fails to compile until it is handled here.
    let Scenario {
        name: _,
        description: _,
        run,
        services,
        node_pools,
        cluster_autoscaler,
        gateway,
        metrics,
        traffic,
        slo,
        // Relative bounds and counts: nothing to scale.
        fidelity: _,
    } = &mut out;
    s.run(run);
    for svc in services.iter_mut() {
        s.service(svc);
    }
    for pool in node_pools.iter_mut() {
        s.pool(pool);
    }
    let ClusterAutoscalerSpec {
        enabled: _,
        scan_interval,
        scale_down_unneeded_time,
    } = cluster_autoscaler;
    s.dur(scan_interval);
    s.dur(scale_down_unneeded_time);
    let GatewaySpec {
        routing: _,
        activator_queue_limit: _,
        ingress_overhead,
        queue_proxy_overhead,
    } = gateway;
    // A duration of the scenario like any other; the local stack's own
    // overhead is wall-clock and is not (the caveats say so).
    s.dur(ingress_overhead);
    s.dur(queue_proxy_overhead);
    let MetricsSpec {
        scrape_interval,
        rate_window,
        delay,
    } = metrics;
    s.dur(scrape_interval);
    s.dur(rate_window);
    s.dur(delay);
    for t in traffic.iter_mut() {
        s.traffic(t);
    }
    for spec in slo.iter_mut() {
        s.slo(spec);
    }
    if s.problems.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "cannot play the scenario {k} times faster: {}",
            s.problems.join("; ")
        ))
    }
}

struct Scaler {
    k: f64,
    problems: Vec<String>,
}

/// An autoscaler's play speed as `time_scaled` finds it and as it leaves it.
#[derive(Clone, Copy)]
struct Speeds {
    given: PlaySpeed,
    played: PlaySpeed,
}

impl Scaler {
    fn dur(&self, d: &mut Dur) {
        *d = self.of(*d);
    }

    fn of(&self, d: Dur) -> Dur {
        Dur((d.0 as f64 / self.k).round() as u64)
    }

    fn opt(&self, d: &mut Option<Dur>) {
        if let Some(d) = d {
            self.dur(d);
        }
    }

    fn rate(&self, r: &mut f64) {
        *r *= self.k;
    }

    fn run(&self, r: &mut RunSpec) {
        let RunSpec {
            duration,
            warmup,
            seed: _,
            interval,
        } = r;
        self.opt(duration);
        self.dur(warmup);
        self.dur(interval);
    }

    fn service(&mut self, svc: &mut ServiceSpec) {
        let ServiceSpec {
            name,
            model: _,
            model_file: _,
            model_path: _,
            min_replicas,
            max_replicas,
            container_concurrency,
            timeout,
            resources: _,
            node_pool: _,
            batching,
            latency,
            model_memory: _,
            cold_start,
            autoscaler,
            versions,
        } = svc;
        self.dur(timeout);
        if let Some(BatchingSpec {
            max_batch_size: _,
            max_queue_delay_microseconds,
            preferred_batch_size: _,
            max_queue_size: _,
            instances: _,
        }) = batching
        {
            // Whole microseconds, as Triton takes it: rounding costs at most 0.5 µs.
            *max_queue_delay_microseconds =
                (*max_queue_delay_microseconds as f64 / self.k).round() as u64;
        }
        self.latency(latency);
        let ColdStartSpec {
            image_size: _,
            image_pull_bandwidth,
            image_pull,
            model_load,
            readiness_probe_period,
            pod_start,
            termination_grace_period,
        } = cold_start;
        *image_pull_bandwidth = Quantity(image_pull_bandwidth.0 * self.k);
        self.opt(image_pull);
        self.dur(model_load);
        self.dur(readiness_probe_period);
        self.dur(pod_start);
        self.dur(termination_grace_period);
        for v in versions.iter_mut() {
            let VersionSpec {
                name: _,
                traffic_percent: _,
                latency,
                model_memory: _,
            } = v;
            if let Some(l) = latency {
                self.latency(l);
            }
        }
        let bounds = Bounds {
            min: *min_replicas,
            max: *max_replicas,
        };
        self.autoscaler(autoscaler, bounds, *container_concurrency, name);
    }

    fn latency(&self, specs: &mut [LatencySpec]) {
        for l in specs {
            let LatencySpec {
                gpu: _,
                batch_latency,
                profile: _,
                distribution: _,
                resolved,
            } = l;
            for d in batch_latency.values_mut() {
                self.dur(d);
            }
            if let Some(LatencyProfile {
                gpu: _,
                points,
                distribution: _,
            }) = resolved
            {
                for BatchPoint {
                    batch_size: _,
                    seconds,
                } in points
                {
                    *seconds /= self.k;
                }
            }
        }
    }

    fn pool(&self, p: &mut NodePoolSpec) {
        let NodePoolSpec {
            name: _,
            gpu: _,
            gpus_per_node: _,
            cpu: _,
            memory: _,
            sharing: _,
            contention: _,
            capacity_type: _,
            spot_interruptions_per_hour,
            interruption_notice,
            // Per hour of the run that is played: see the module's notes on cost.
            price_per_hour: _,
            min_nodes: _,
            max_nodes: _,
            initial_nodes: _,
            provisioning_time,
        } = p;
        self.rate(spot_interruptions_per_hour);
        self.dur(interruption_notice);
        self.dur(provisioning_time);
    }

    fn traffic(&self, t: &mut TrafficSpec) {
        let TrafficSpec {
            service: _,
            arrivals: _,
            rows_per_request: _,
            phases,
        } = t;
        for p in phases.iter_mut() {
            match p {
                Phase::Constant { rate, duration } => {
                    self.rate(rate);
                    self.dur(duration);
                }
                Phase::Ramp { from, to, duration } => {
                    self.rate(from);
                    self.rate(to);
                    self.dur(duration);
                }
                Phase::Spike {
                    base,
                    multiplier: _,
                    at,
                    rise,
                    hold,
                    decay,
                    duration,
                } => {
                    self.rate(base);
                    for d in [at, rise, hold, decay, duration] {
                        self.dur(d);
                    }
                }
                Phase::Diurnal {
                    peak,
                    trough,
                    period,
                    peak_at,
                    duration,
                } => {
                    self.rate(peak);
                    self.rate(trough);
                    self.dur(period);
                    self.dur(peak_at);
                    self.dur(duration);
                }
                Phase::Idle { duration } => self.dur(duration),
                // Offsets are the trace's own, before `speedup`: played K times faster.
                Phase::Trace {
                    file: _,
                    speedup,
                    duration,
                    offsets: _,
                } => {
                    self.rate(speedup);
                    self.opt(duration);
                }
                // Played K times faster: the recording's requests in 1/K of the
                // time (rates times K); `time_shift` is in the recording's time.
                Phase::Series {
                    points: _,
                    file: _,
                    scale: _,
                    speedup,
                    time_shift: _,
                    repeat: _,
                    loaded: _,
                } => self.rate(speedup),
            }
        }
    }

    fn slo(&self, spec: &mut SloSpec) {
        let scale = match spec.metric {
            m if m.is_latency() => 1.0 / self.k,
            SloMetric::GoodputRps => self.k,
            // Ratios, counts and the monthly cost (a rate at an unchanged price).
            _ => return,
        };
        // A bound that does not parse is left for validation to report.
        let Ok((bound, value)) = spec.bound() else {
            return;
        };
        if spec.name.is_none() {
            spec.name = Some(spec.display_name(value, bound));
        }
        let slot = if spec.max.is_some() {
            &mut spec.max
        } else {
            &mut spec.min
        };
        *slot = Some(BoundValue::Number(value * scale));
    }

    fn autoscaler(&mut self, a: &mut AutoscalerSpec, bounds: Bounds, cc: u32, service: &str) {
        let AutoscalerSpec {
            hpa,
            kpa,
            keda,
            fixed: _,
            played_faster,
        } = a;
        let before = self.problems.len();
        // A copy already played faster is played faster again: the factors multiply.
        let given = *played_faster;
        let Some(played) = PlaySpeed::new(given.factor() * self.k) else {
            self.problems.push(format!(
                "the time scale {} overflows",
                given.factor() * self.k
            ));
            return;
        };
        *played_faster = played;
        let speeds = Speeds { given, played };
        if let Some(h) = hpa {
            self.hpa(h, bounds, speeds);
        }
        if let Some(k) = kpa {
            self.kpa(k, bounds, cc, speeds);
        }
        if let Some(k) = keda {
            self.keda(k, bounds, speeds);
        }
        for p in &mut self.problems[before..] {
            *p = format!("service `{service}`: {p}");
        }
    }

    fn hpa(&mut self, h: &mut HpaSpec, bounds: Bounds, speeds: Speeds) {
        let compiled = match HpaConfig::compile_played(h, bounds, "hpa", speeds.given) {
            Ok(c) => c,
            Err(p) => return self.invalid("hpa", p),
        };
        let HpaSpec {
            metrics,
            // Its whole seconds stay in scenario time (a played 1.5 s does not fit a
            // u32 of seconds): the spec's play speed divides them as it compiles,
            // upstream's 15 s default periods with them.
            behavior: _,
            controller,
        } = h;
        // An empty list compiles to the CPU default, which does not scale.
        if !metrics.is_empty() {
            for (m, c) in metrics.iter_mut().zip(&compiled.metrics) {
                if reads_rps(&c.kind) {
                    scale_target(metric_target(m), self.k);
                }
            }
        }
        self.controller_flags(controller);
        if let Err(p) = HpaConfig::compile_played(h, bounds, "hpa", speeds.played) {
            self.scaled_out_of_range(p);
        }
    }

    /// Every controller flag written out, so upstream's defaults are scaled too.
    fn controller_flags(&self, controller: &mut Option<HpaControllerFlags>) {
        let HpaControllerFlags {
            sync_period,
            tolerance,
            downscale_stabilization,
            cpu_initialization_period,
            initial_readiness_delay,
            metric_window,
        } = controller.take().unwrap_or_default();
        let d = ControllerFlags::default();
        let flag = |v: Option<Dur>, default: std::time::Duration| {
            Some(self.of(v.unwrap_or(Dur::from(default))))
        };
        *controller = Some(HpaControllerFlags {
            sync_period: flag(sync_period, d.sync_period),
            tolerance,
            downscale_stabilization: flag(downscale_stabilization, d.downscale_stabilization),
            cpu_initialization_period: flag(cpu_initialization_period, d.cpu_initialization_period),
            initial_readiness_delay: flag(initial_readiness_delay, d.initial_readiness_delay),
            metric_window: flag(metric_window, d.metric_window),
        });
    }

    fn kpa(&mut self, spec: &mut KpaSpec, bounds: Bounds, cc: u32, speeds: Speeds) {
        if let Err(p) = KpaConfig::compile_played(spec, bounds, cc, speeds.given) {
            return self.invalid("kpa", p);
        }
        let KpaSpec {
            metric,
            target,
            target_utilization_percentage: _,
            window,
            panic_window_percentage: _,
            panic_threshold_percentage: _,
            max_scale_up_rate: _,
            max_scale_down_rate: _,
            scale_to_zero_grace_period,
            scale_to_zero_pod_retention_period,
            initial_scale: _,
            allow_zero_initial_scale: _,
            activation_scale: _,
            scale_down_delay,
            // Concurrency, whatever the metric.
            target_burst_capacity: _,
            enable_scale_to_zero: _,
            activator_capacity: _,
            tick_interval,
            metric_bucket,
        } = spec;
        if *metric == Some(KpaMetric::Rps) {
            *target = Some(target.unwrap_or(kpa_defaults::RPS_TARGET) * self.k);
        }
        *window = Some(self.of(window.unwrap_or(Dur::from(kpa_defaults::STABLE_WINDOW))));
        *scale_to_zero_grace_period = Some(
            self.of(scale_to_zero_grace_period
                .unwrap_or(Dur::from(kpa_defaults::SCALE_TO_ZERO_GRACE_PERIOD))),
        );
        self.opt(scale_to_zero_pod_retention_period);
        self.opt(scale_down_delay);
        *tick_interval =
            Some(self.of(tick_interval.unwrap_or(Dur::from(kpa_defaults::TICK_INTERVAL))));
        *metric_bucket =
            Some(self.of(metric_bucket.unwrap_or(Dur::from(kpa_defaults::METRIC_BUCKET))));
        if let Err(p) = KpaConfig::compile_played(spec, bounds, cc, speeds.played) {
            self.scaled_out_of_range(p);
        }
    }

    fn keda(&mut self, spec: &mut KedaSpec, bounds: Bounds, speeds: Speeds) {
        let compiled = match KedaConfig::compile_played(spec, bounds, speeds.given) {
            Ok(c) => c,
            Err(p) => return self.invalid("keda", p),
        };
        let KedaSpec {
            polling_interval,
            cooldown_period,
            initial_cooldown_period,
            idle_replica_count: _,
            fallback: _,
            // The generated HPA's `behavior` stays in scenario time, as under `hpa`.
            advanced: _,
            triggers,
            controller,
        } = spec;
        self.controller_flags(controller);
        *polling_interval = Some(self.of(compiled.polling_interval.into()));
        *cooldown_period = Some(self.of(compiled.cooldown_period.into()));
        *initial_cooldown_period = Some(self.of(compiled.initial_cooldown_period.into()));
        let mut rps_triggers = Vec::new();
        for (i, (t, c)) in triggers.iter_mut().zip(&compiled.triggers).enumerate() {
            if c.reading
                .is_some_and(|r| r.signal == Signal::RequestsPerSecond)
            {
                let Some((threshold_key, activation_key)) = keda_threshold_keys(&t.type_) else {
                    self.problems.push(format!(
                        "keda.triggers[{i}]: a `{}` trigger reading rps has no threshold key known to the time scale",
                        t.type_
                    ));
                    continue;
                };
                // Written out, so a default threshold is scaled too.
                t.metadata
                    .insert(threshold_key.into(), number(c.threshold * self.k));
                if c.activation_threshold > 0.0 {
                    t.metadata.insert(
                        activation_key.into(),
                        number(c.activation_threshold * self.k),
                    );
                }
                rps_triggers.push(i);
            }
        }
        match KedaConfig::compile_played(spec, bounds, speeds.played) {
            Err(p) => self.scaled_out_of_range(p),
            Ok(scaled) => {
                // The table of threshold keys must match lab-autoscale's.
                for i in rps_triggers {
                    let want = compiled.triggers[i].threshold * self.k;
                    if (scaled.triggers[i].threshold - want).abs() > 1e-9 * want.max(1.0) {
                        self.problems.push(format!(
                            "keda.triggers[{i}]: its threshold did not scale ({} for {want})",
                            scaled.triggers[i].threshold
                        ));
                    }
                }
            }
        }
    }

    fn invalid(&mut self, kind: &str, p: Vec<(String, String)>) {
        self.problems.push(format!(
            "the {kind} autoscaler does not validate (check the scenario first): {}",
            join(&p)
        ));
    }

    fn scaled_out_of_range(&mut self, p: Vec<(String, String)>) {
        self.problems.push(format!(
            "scaled, its autoscaler is out of range: {}",
            join(&p)
        ));
    }
}

fn join(p: &[(String, String)]) -> String {
    p.iter()
        .map(|(k, m)| format!("{k}: {m}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when a compiled HPA metric reads requests per second.
fn reads_rps(kind: &MetricKind) -> bool {
    match kind {
        MetricKind::Pods { reading, .. }
        | MetricKind::TotalValue { reading, .. }
        | MetricKind::TotalAverage { reading, .. } => reading.signal == Signal::RequestsPerSecond,
        MetricKind::Utilization { .. } | MetricKind::ResourceAverage { .. } => false,
    }
}

fn metric_target(m: &mut MetricSpec) -> Option<&mut MetricTarget> {
    let MetricSpec {
        type_: _,
        resource,
        container_resource,
        pods,
        object,
        external,
    } = m;
    resource
        .as_mut()
        .map(|ResourceMetricSource { target, .. }| target)
        .or(container_resource
            .as_mut()
            .map(|ContainerResourceMetricSource { target, .. }| target))
        .or(pods.as_mut().map(|PodsMetricSource { target, .. }| target))
        .or(object
            .as_mut()
            .map(|ObjectMetricSource { target, .. }| target))
        .or(external
            .as_mut()
            .map(|ExternalMetricSource { target, .. }| target))
}

fn scale_target(t: Option<&mut MetricTarget>, k: f64) {
    let Some(MetricTarget {
        type_: _,
        value,
        average_value,
        // A percent of the request: CPU and memory only, never a rate.
        average_utilization: _,
    }) = t
    else {
        return;
    };
    for q in [value, average_value].into_iter().flatten() {
        q.0 *= k;
    }
}

/// Metadata keys of a KEDA trigger's scaling and activation thresholds, for the
/// trigger types that can read requests per second (`signal = "rps"`, or
/// RabbitMQ's MessageRate mode). The K-fold threshold is checked against
/// `KedaConfig::compile`, so a key that drifts from lab-autoscale's fails loudly.
fn keda_threshold_keys(type_: &str) -> Option<(&'static str, &'static str)> {
    Some(match type_ {
        "prometheus" => ("threshold", "activationThreshold"),
        "rabbitmq" => ("value", "activationValue"),
        "redis" => ("listLength", "activationListLength"),
        "aws-sqs-queue" => ("queueLength", "activationQueueLength"),
        "kafka" => ("lagThreshold", "activationLagThreshold"),
        _ => return None,
    })
}

fn number(v: f64) -> String {
    format!("{v}")
}

/// What [`time_scaled`] cannot shorten in `sc` (see [`UNSCALED_CONSTANTS`]), in
/// words, for the caller to warn about: the KPA's activation timeout. Empty at
/// `k = 1`.
pub fn time_scale_caveats(sc: &Scenario, k: f64) -> Vec<String> {
    if k == 1.0 {
        return Vec::new();
    }
    let timeout = kpa_defaults::ACTIVATION_TIMEOUT.as_secs_f64();
    sc.services
        .iter()
        .filter(|svc| svc.autoscaler.kpa.is_some())
        .map(|svc| {
            format!(
                "service `{}`: the KPA gives up activating a revision after {timeout}s of the \
                 played run, i.e. {}s of scenario time",
                svc.name,
                timeout * k
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_units::parse_duration;
    use std::path::Path;

    /// Every duration field set, each to a value that halves exactly.
    const ALL: &str = r#"
name = "all"
[run]
duration = "20m"
warmup = "2m"
interval = "10s"
[metrics]
scrape_interval = "16s"
rate_window = "62s"
delay = "4s"
[gateway]
ingress_overhead = "2ms"
queue_proxy_overhead = "4ms"
[cluster_autoscaler]
scan_interval = "12s"
scale_down_unneeded_time = "8m"
[[node_pools]]
name = "cpu"
cpu = "64"
memory = "64Gi"
price_per_hour = 2
min_nodes = 1
max_nodes = 4
capacity_type = "spot"
spot_interruptions_per_hour = 0.5
interruption_notice = "2m"
provisioning_time = "4m"
[[services]]
name = "h"
minReplicas = 1
maxReplicas = 8
timeout = "30s"
resources = { cpu = "1" }
batching = { max_batch_size = 4, max_queue_delay_microseconds = 2000 }
coldStart = { image_pull = "10s", model_load = "20s", pod_start = "2s", readiness_probe_period = "6s", termination_grace_period = "30s" }
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "20ms", "4" = "50ms" }
[services.autoscaler.hpa]
metrics = [
  { type = "Pods", pods = { metric = { name = "requests_per_second" }, target = { type = "AverageValue", averageValue = "30" } } },
  { type = "External", external = { metric = { name = "q", signal = "concurrency" }, target = { type = "Value", value = "5" } } },
]
behavior = { scaleUp = { stabilizationWindowSeconds = 10, policies = [{ type = "Pods", value = 2, periodSeconds = 30 }] }, scaleDown = { stabilizationWindowSeconds = 120, policies = [{ type = "Percent", value = 50, periodSeconds = 60 }] } }
controller = { syncPeriod = "14s", tolerance = 0.2, downscaleStabilization = "4m", cpuInitializationPeriod = "2m", initialReadinessDelay = "20s", metricWindow = "30s" }
[[services.versions]]
name = "a"
trafficPercent = 50
[[services.versions]]
name = "b"
trafficPercent = 50
latency = [{ gpu = "cpu", batch_latency = { "1" = "30ms", "4" = "60ms" } }]
[[services]]
name = "k"
minReplicas = 1
maxReplicas = 8
resources = { cpu = "1" }
coldStart = { image_size = "1Gi", image_pull_bandwidth = "100Mi" }
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "10ms" }
[services.autoscaler.kpa]
metric = "rps"
window = "120s"
scale-to-zero-grace-period = "60s"
scale-to-zero-pod-retention-period = "30s"
scale-down-delay = "20s"
tick-interval = "4s"
metric-bucket = "2s"
[[services]]
name = "e"
minReplicas = 1
maxReplicas = 8
resources = { cpu = "1" }
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "10ms" }
[services.autoscaler.keda]
pollingInterval = "20s"
cooldownPeriod = "4m"
initialCooldownPeriod = "30s"
triggers = [
  { type = "prometheus", metadata = { query = "sum(rate(lab_predictor_requests_total[1m]))", threshold = "50", activationThreshold = "4" } },
  { type = "prometheus", metadata = { query = "sum(lab_predictor_queue_depth)", threshold = "10" } },
  { type = "rabbitmq", metadata = { mode = "MessageRate" } },
]
controller = { syncPeriod = "10s", tolerance = 0.2, downscaleStabilization = "2m", cpuInitializationPeriod = "4m", initialReadinessDelay = "20s", metricWindow = "30s" }
advanced = { horizontalPodAutoscalerConfig = { behavior = { scaleDown = { policies = [{ type = "Pods", value = 1, periodSeconds = 60 }] }, scaleUp = { stabilizationWindowSeconds = 0, policies = [{ type = "Pods", value = 4, periodSeconds = 30 }] } } } }
[[traffic]]
service = "h"
phases = [
  { kind = "constant", rate = 10, duration = "2m" },
  { kind = "ramp", from = 10, to = 20, duration = "2m" },
  { kind = "spike", base = 5, multiplier = 3, at = "20s", rise = "10s", hold = "30s", decay = "10s", duration = "2m" },
  { kind = "diurnal", peak = 8, trough = 2, period = "4m", peak_at = "1m", duration = "4m" },
  { kind = "idle", duration = "2m" },
]
[[traffic]]
service = "k"
phases = [{ kind = "constant", rate = 4, duration = "20m" }]
[[traffic]]
service = "e"
phases = [{ kind = "constant", rate = 4, duration = "20m" }]
[[slo]]
metric = "p99"
max = "200ms"
[[slo]]
name = "enough"
metric = "goodput_rps"
min = 8
[[slo]]
metric = "error_rate"
max = "1%"
[[slo]]
metric = "monthly_cost_usd"
max = 5000
"#;

    fn all() -> Scenario {
        let mut sc =
            crate::parse(ALL, "all.toml", Path::new("."), &[]).unwrap_or_else(|e| panic!("{e}"));
        // A trace needs a file; its offsets are what the loader would fill in.
        sc.traffic[1].phases.push(Phase::Trace {
            file: "t.csv".into(),
            speedup: 3.0,
            duration: Some(Dur::from_secs(40)),
            offsets: lab_traffic::TraceOffsets(std::sync::Arc::new(vec![0, 5, 9])),
        });
        sc
    }

    /// Every duration-looking leaf of `a` (a string with a unit that parses, or
    /// a number under a `...Seconds` key), with its path.
    fn durations(v: &serde_json::Value, path: String, out: &mut Vec<(String, f64)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{path}.{k}");
                    if k.ends_with("Seconds") {
                        if let Some(n) = x.as_f64() {
                            out.push((p.clone(), n));
                        }
                    }
                    durations(x, p, out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    durations(x, format!("{path}[{i}]"), out);
                }
            }
            serde_json::Value::String(s) if s.ends_with(['s', 'm', 'h']) => {
                if let Ok(d) = parse_duration(s) {
                    out.push((path, d.secs_f64()));
                }
            }
            _ => {}
        }
    }

    fn at<'a>(v: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
        let mut cur = v;
        for part in path.trim_start_matches('.').split('.') {
            let (key, index) = match part.split_once('[') {
                Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            cur = &cur[key];
            if let Some(i) = index {
                cur = &cur[i];
            }
        }
        cur
    }

    #[test]
    fn every_duration_is_halved_at_k_2() {
        let sc = all();
        let scaled = time_scaled(&sc, 2.0).unwrap();
        let (a, b) = (
            serde_json::to_value(&sc).unwrap(),
            serde_json::to_value(&scaled).unwrap(),
        );
        let mut found = Vec::new();
        durations(&a, String::new(), &mut found);
        // Forty-odd fields; a lower count means the walk lost its way.
        assert!(found.len() > 40, "{found:?}");
        for (path, secs) in found {
            let v = at(&b, &path);
            let got = v
                .as_str()
                .map(|s| parse_duration(s).unwrap().secs_f64())
                .or(v.as_f64())
                .unwrap_or_else(|| panic!("{path} is gone: {v}"));
            if path.ends_with("Seconds") {
                // The behavior's whole seconds: divided as the spec compiles (below).
                assert_eq!(got, secs, "{path} stays in scenario time");
            } else if secs == 0.0 {
                assert_eq!(got, 0.0, "{path}");
            } else {
                assert!(
                    (got - secs / 2.0).abs() < 1e-9,
                    "{path}: {secs} s became {got} s"
                );
            }
        }
        // The behaviors' seconds, halved by the play speed as they compile.
        let hpa = |s: &Scenario| {
            let a = &s.services[0].autoscaler;
            HpaConfig::compile_played(a.hpa.as_ref().unwrap(), bounds(), "hpa", a.played_faster)
                .unwrap()
                .behavior
                .unwrap()
        };
        let keda = |s: &Scenario| {
            let a = &s.services[2].autoscaler;
            KedaConfig::compile_played(a.keda.as_ref().unwrap(), bounds(), a.played_faster)
                .unwrap()
                .hpa
                .behavior
                .unwrap()
        };
        for (pace, played) in [(hpa(&sc), hpa(&scaled)), (keda(&sc), keda(&scaled))] {
            for (p, q) in [(&pace.0, &played.0), (&pace.1, &played.1)] {
                assert_eq!(q.window, p.window / 2);
                assert_eq!(q.policies.len(), p.policies.len());
                for (a, b) in p.policies.iter().zip(&q.policies) {
                    assert_eq!(b.period, a.period / 2);
                }
            }
        }
        // Fields serde leaves out of the text.
        let resolved = |s: &Scenario| s.services[0].latency[0].resolved.clone().unwrap();
        assert_eq!(
            resolved(&scaled).points[1].seconds,
            resolved(&sc).points[1].seconds / 2.0
        );
        assert!(matches!(
            scaled.traffic[1].phases[1],
            Phase::Trace { speedup, duration: Some(d), ref offsets, .. }
                if speedup == 6.0 && d == Dur::from_secs(20) && offsets.0[2] == 9
        ));
        assert_eq!(
            scaled.services[0]
                .batching
                .as_ref()
                .unwrap()
                .max_queue_delay_microseconds,
            1000
        );
    }

    #[test]
    fn rates_double_and_the_rest_stays_at_k_2() {
        let sc = all();
        let s = time_scaled(&sc, 2.0).unwrap();
        assert!(matches!(s.traffic[0].phases[0], Phase::Constant { rate, .. } if rate == 20.0));
        assert!(
            matches!(s.traffic[0].phases[1], Phase::Ramp { from, to, .. } if from == 20.0 && to == 40.0)
        );
        assert!(
            matches!(s.traffic[0].phases[2], Phase::Spike { base, multiplier, .. } if base == 10.0 && multiplier == 3.0)
        );
        assert!(
            matches!(s.traffic[0].phases[3], Phase::Diurnal { peak, trough, .. } if peak == 16.0 && trough == 4.0)
        );
        assert_eq!(s.node_pools[0].spot_interruptions_per_hour, 1.0);
        assert_eq!(s.node_pools[0].price_per_hour, 2.0, "prices stay");
        assert_eq!(
            s.services[1].cold_start.image_pull_bandwidth.0,
            2.0 * sc.services[1].cold_start.image_pull_bandwidth.0
        );
        assert_eq!(
            s.services[1].cold_start.image_size,
            sc.services[1].cold_start.image_size
        );
        // HPA: the rps target doubles, the concurrency one stays.
        let hpa = s.services[0].autoscaler.hpa.as_ref().unwrap();
        let pods = hpa.metrics[0].pods.as_ref().unwrap();
        assert_eq!(pods.target.average_value.unwrap().0, 60.0);
        let ext = hpa.metrics[1].external.as_ref().unwrap();
        assert_eq!(ext.target.value.unwrap().0, 5.0);
        assert_eq!(hpa.controller.as_ref().unwrap().tolerance, Some(0.2));
        // KPA on rps: Knative's default 200 written out and doubled.
        let kpa = s.services[1].autoscaler.kpa.as_ref().unwrap();
        assert_eq!(kpa.target, Some(400.0));
        // KEDA: the rps trigger's thresholds double (the MessageRate default of
        // 20 written out), the queue trigger's stays.
        let keda = s.services[2].autoscaler.keda.as_ref().unwrap();
        assert_eq!(keda.triggers[0].metadata["threshold"], "100");
        assert_eq!(keda.triggers[0].metadata["activationThreshold"], "8");
        assert_eq!(keda.triggers[1].metadata["threshold"], "10");
        assert_eq!(keda.triggers[2].metadata["value"], "40");
        // SLOs: the latency bound halves under its scenario-time name, goodput doubles.
        assert_eq!(s.slo[0].name.as_deref(), Some("p99 latency <= 200ms"));
        assert_eq!(s.slo[0].bound().unwrap().1, 0.1);
        assert_eq!(s.slo[1].name.as_deref(), Some("enough"));
        assert_eq!(s.slo[1].bound().unwrap().1, 16.0);
        assert_eq!(s.slo[2], sc.slo[2]);
        assert_eq!(s.slo[3], sc.slo[3]);
        // Counts stay.
        assert_eq!(s.services[0].max_replicas, 8);
        assert_eq!(s.gateway.routing, sc.gateway.routing);
        assert_eq!(
            s.gateway.activator_queue_limit,
            sc.gateway.activator_queue_limit
        );
    }

    #[test]
    fn defaults_are_written_out_and_scaled() {
        let mut sc = all();
        sc.services[0].autoscaler.hpa.as_mut().unwrap().controller = None;
        sc.services[2]
            .autoscaler
            .keda
            .as_mut()
            .unwrap()
            .polling_interval = None;
        let kpa = sc.services[1].autoscaler.kpa.as_mut().unwrap();
        kpa.window = None;
        kpa.tick_interval = None;
        kpa.metric_bucket = None;
        sc.services[2].autoscaler.keda.as_mut().unwrap().controller = None;
        let s = time_scaled(&sc, 2.0).unwrap();
        let flags = s.services[0]
            .autoscaler
            .hpa
            .as_ref()
            .unwrap()
            .controller
            .clone()
            .unwrap();
        assert_eq!(flags.sync_period, Some(Dur::from_millis(7_500)));
        assert_eq!(flags.downscale_stabilization, Some(Dur::from_secs(150)));
        assert_eq!(flags.tolerance, None);
        let keda = s.services[2].autoscaler.keda.as_ref().unwrap();
        assert_eq!(keda.polling_interval, Some(Dur::from_secs(15)));
        let kpa = s.services[1].autoscaler.kpa.as_ref().unwrap();
        assert_eq!(kpa.window, Some(Dur::from_secs(30)));
        assert_eq!(kpa.tick_interval, Some(Dur::from_secs(1)));
        assert_eq!(kpa.metric_bucket, Some(Dur::from_millis(500)));
        let flags = keda.controller.clone().unwrap();
        assert_eq!(flags.sync_period, Some(Dur::from_millis(7_500)));
        assert_eq!(flags.downscale_stabilization, Some(Dur::from_secs(150)));
        assert_eq!(flags.metric_window, Some(Dur::from_millis(7_500)));
        assert_eq!(flags.tolerance, None);
        // The scaled scenario still validates.
        assert!(
            crate::validate::validate(&s).is_empty(),
            "{:?}",
            crate::validate::validate(&s)
        );
    }

    #[test]
    fn k_1_is_the_identity_and_bad_factors_are_refused() {
        let sc = all();
        assert_eq!(time_scaled(&sc, 1.0).unwrap(), sc);
        for k in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = time_scaled(&sc, k).unwrap_err();
            assert!(e.contains("positive finite"), "{e}");
        }
        assert!(time_scale_caveats(&sc, 1.0).is_empty());
        // The KPA's tick and buckets and KEDA's HPA flags scale now; the activation
        // timeout is what is left.
        let caveats = time_scale_caveats(&sc, 10.0);
        assert_eq!(caveats.len(), 1, "{caveats:?}");
        assert!(caveats[0].contains("`k`") && caveats[0].contains("6300s"));
    }

    fn bounds() -> Bounds {
        Bounds { min: 1, max: 8 }
    }

    #[test]
    fn limits_are_judged_in_scenario_time() {
        // 30 s policies at K = 4 (7.5 s), and the KPA's 120 s window and 60 s grace
        // period at K = 20 (6 s and 3 s played) are within upstream's limits
        // divided by K.
        for k in [4.0, 20.0] {
            let s = time_scaled(&all(), k).unwrap_or_else(|e| panic!("K = {k}: {e}"));
            assert_eq!(s.services[1].autoscaler.played_faster.factor(), k);
            assert!(
                crate::validate::validate(&s).is_empty(),
                "K = {k}: {:?}",
                crate::validate::validate(&s)
            );
        }
        // What the scenario itself gets wrong is refused at every K.
        let mut sc = all();
        sc.services[1].autoscaler.kpa.as_mut().unwrap().window = Some(Dur::from_secs(5));
        let e = time_scaled(&sc, 10.0).unwrap_err();
        assert!(
            e.contains("service `k`: the kpa autoscaler does not validate")
                && e.contains("kpa.window"),
            "{e}"
        );
        // A played value rounded to nothing is still caught: the 1 s metric
        // bucket at K = 1e10 is 0.1 ns.
        let e = time_scaled(&all(), 1e10).unwrap_err();
        assert!(
            e.contains("service `k`: scaled, its autoscaler is out of range")
                && e.contains("kpa.metric-bucket: must be above 0"),
            "{e}"
        );
    }

    #[test]
    fn knative_defaults_play_at_k_10_and_20() {
        let mut sc = all();
        sc.services[1].autoscaler.kpa = Some(KpaSpec::default());
        for k in [10.0, 20.0] {
            let s = time_scaled(&sc, k).unwrap_or_else(|e| panic!("K = {k}: {e}"));
            let a = &s.services[1].autoscaler;
            let kpa = a.kpa.as_ref().unwrap();
            assert_eq!(kpa.window, Some(Dur((60e9 / k) as u64)));
            assert_eq!(kpa.scale_to_zero_grace_period, Some(Dur((30e9 / k) as u64)));
            lab_autoscale::Autoscaler::new(a, bounds(), 0, std::time::Duration::ZERO)
                .unwrap_or_else(|e| panic!("K = {k}: {e:?}"));
            // The same played values without the mark are refused, as they should be
            // in a scenario file.
            let mut unmarked = a.clone();
            unmarked.played_faster = PlaySpeed::AT_PACE;
            let e =
                lab_autoscale::Autoscaler::new(&unmarked, bounds(), 0, std::time::Duration::ZERO)
                    .unwrap_err();
            assert!(
                e.iter()
                    .any(|p| p.starts_with("kpa.scale-to-zero-grace-period")),
                "{e:?}"
            );
        }
    }

    #[test]
    fn the_default_hpa_behavior_plays_at_k_10() {
        // Upstream's 15 s default policies (1.5 s played) and a 5 s window (0.5 s).
        let mut sc = all();
        let hpa = sc.services[0].autoscaler.hpa.as_mut().unwrap();
        hpa.behavior = Some(lab_autoscale::spec::Behavior {
            scale_up: None,
            scale_down: Some(lab_autoscale::spec::ScalingRules {
                stabilization_window_seconds: Some(5),
                ..Default::default()
            }),
        });
        let s = time_scaled(&sc, 10.0).unwrap_or_else(|e| panic!("{e}"));
        let a = &s.services[0].autoscaler;
        assert_eq!(
            a.hpa.as_ref().unwrap().behavior,
            sc.services[0].autoscaler.hpa.as_ref().unwrap().behavior,
            "the behavior's seconds stay in scenario time"
        );
        let (up, down) =
            HpaConfig::compile_played(a.hpa.as_ref().unwrap(), bounds(), "hpa", a.played_faster)
                .unwrap()
                .behavior
                .unwrap();
        let ms = std::time::Duration::from_millis;
        assert_eq!(up.window, ms(0));
        assert!(up.policies.iter().all(|p| p.period == ms(1_500)), "{up:?}");
        assert_eq!(down.window, ms(500));
        assert!(
            down.policies.iter().all(|p| p.period == ms(1_500)),
            "{down:?}"
        );
        // Played twice, the speeds multiply.
        let twice = time_scaled(&time_scaled(&sc, 2.0).unwrap(), 5.0).unwrap();
        assert_eq!(twice.services[0].autoscaler.played_faster.factor(), 10.0);
        assert_eq!(twice.services[0].autoscaler, s.services[0].autoscaler);
    }
}
