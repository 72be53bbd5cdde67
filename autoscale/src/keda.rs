//! KEDA ScaledObject: the scale executor that owns 0 <-> 1 (activation, cooldown, idle
//! replicas) composed with the HPA that KEDA generates for 1 <-> N, one External
//! metric per trigger, plus the metrics server's fallback on failing triggers.

use crate::hpa::calc::milli;
use crate::hpa::calc::Tolerances;
use crate::hpa::{compile_behavior, compile_flags, Hpa, HpaConfig, Metric, MetricKind, Problems};
use crate::signal::{reading_for, Reading};
use crate::spec::{FallbackBehavior, KedaSpec, KedaTrigger, PlaySpeed, TargetType};
use crate::{Bounds, Decision, Observation, Signal, Time};

/// KEDA's defaults.
pub mod defaults {
    use crate::Time;
    pub const POLLING_INTERVAL: Time = Time::from_secs(30);
    pub const COOLDOWN_PERIOD: Time = Time::from_secs(300);
    pub const INITIAL_COOLDOWN_PERIOD: Time = Time::ZERO;
    pub const MAX_REPLICA_COUNT: u32 = 100;
}

/// How a trigger type names its scaling and activation thresholds.
struct TriggerKind {
    name: &'static str,
    threshold_key: &'static str,
    threshold_default: Option<f64>,
    activation_key: &'static str,
    /// None = the trigger reads `query` (prometheus) or CPU/memory.
    signal: Option<Signal>,
    /// Metadata keys accepted besides the two thresholds.
    other_keys: &'static [&'static str],
}

const TRIGGER_KINDS: &[TriggerKind] = &[
    TriggerKind {
        name: "prometheus",
        threshold_key: "threshold",
        threshold_default: None,
        activation_key: "activationThreshold",
        signal: None,
        other_keys: &[
            "serverAddress",
            "query",
            "namespace",
            "customHeaders",
            "ignoreNullValues",
            "unsafeSsl",
            "queryParameters",
            "authModes",
            "timeout",
            "metricName",
        ],
    },
    TriggerKind {
        name: "rabbitmq",
        threshold_key: "value",
        threshold_default: Some(20.0),
        activation_key: "activationValue",
        signal: Some(Signal::QueueDepth),
        other_keys: &[
            "host",
            "hostFromEnv",
            "protocol",
            "mode",
            "queueName",
            "vhostName",
            "useRegex",
            "operation",
            "timeout",
            "unsafeSsl",
        ],
    },
    TriggerKind {
        name: "redis",
        threshold_key: "listLength",
        threshold_default: Some(5.0),
        activation_key: "activationListLength",
        signal: Some(Signal::QueueDepth),
        other_keys: &[
            "address",
            "addressFromEnv",
            "host",
            "hostFromEnv",
            "port",
            "portFromEnv",
            "listName",
            "databaseIndex",
            "enableTLS",
            "unsafeSsl",
            "username",
            "passwordFromEnv",
        ],
    },
    TriggerKind {
        name: "aws-sqs-queue",
        threshold_key: "queueLength",
        threshold_default: Some(5.0),
        activation_key: "activationQueueLength",
        signal: Some(Signal::QueueDepth),
        other_keys: &[
            "queueURL",
            "queueURLFromEnv",
            "awsRegion",
            "awsEndpoint",
            "identityOwner",
            "scaleOnInFlight",
            "scaleOnDelayed",
        ],
    },
    TriggerKind {
        name: "kafka",
        threshold_key: "lagThreshold",
        threshold_default: Some(10.0),
        activation_key: "activationLagThreshold",
        signal: Some(Signal::QueueDepth),
        other_keys: &[
            "bootstrapServers",
            "consumerGroup",
            "topic",
            "offsetResetPolicy",
            "allowIdleConsumers",
            "scaleToZeroOnInvalidOffset",
            "excludePersistentLag",
            "limitToPartitionsWithLag",
            "version",
            "tls",
            "sasl",
        ],
    },
    TriggerKind {
        name: "cpu",
        threshold_key: "value",
        threshold_default: None,
        activation_key: "",
        signal: Some(Signal::Cpu),
        other_keys: &["type", "containerName"],
    },
    TriggerKind {
        name: "memory",
        threshold_key: "value",
        threshold_default: None,
        activation_key: "",
        signal: Some(Signal::Memory),
        other_keys: &["type", "containerName"],
    },
];

/// One trigger after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub label: String,
    /// None for cpu/memory triggers, which are always active and read pods directly.
    pub reading: Option<Reading>,
    pub threshold: f64,
    pub activation_threshold: f64,
    pub metric_type: TargetType,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fallback {
    pub failure_threshold: u32,
    pub replicas: u32,
    pub behavior: FallbackBehavior,
}

/// A validated ScaledObject and the HPA it generates.
#[derive(Debug, Clone, PartialEq)]
pub struct KedaConfig {
    pub triggers: Vec<Trigger>,
    pub polling_interval: Time,
    pub cooldown_period: Time,
    pub initial_cooldown_period: Time,
    pub idle_replica_count: Option<u32>,
    pub min: u32,
    pub max: u32,
    pub fallback: Option<Fallback>,
    pub hpa: HpaConfig,
}

fn number(
    meta: &std::collections::BTreeMap<String, String>,
    key: &str,
    path: &str,
    out: &mut Problems,
) -> Option<f64> {
    let text = meta.get(key)?;
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
        _ => {
            out.push((
                format!("{path}.metadata.{key}"),
                format!("`{text}` is not a non-negative number"),
            ));
            None
        }
    }
}

fn compile_trigger(t: &KedaTrigger, path: &str, out: &mut Problems) -> Option<(Trigger, Metric)> {
    let Some(kind) = TRIGGER_KINDS.iter().find(|k| k.name == t.type_) else {
        out.push((
            format!("{path}.type"),
            format!(
                "trigger type `{}` is not simulated; use one of {}",
                t.type_,
                TRIGGER_KINDS
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        return None;
    };
    let before = out.len();
    for key in t.metadata.keys() {
        if key != kind.threshold_key
            && key != kind.activation_key
            && !kind.other_keys.contains(&key.as_str())
        {
            let mut known: Vec<&str> = vec![kind.threshold_key];
            if !kind.activation_key.is_empty() {
                known.push(kind.activation_key);
            }
            known.extend(kind.other_keys);
            out.push((
                format!("{path}.metadata.{key}"),
                format!(
                    "not a `{}` metadata key; known keys: {}",
                    kind.name,
                    known.join(", ")
                ),
            ));
        }
    }
    let threshold = match (
        number(&t.metadata, kind.threshold_key, path, out),
        kind.threshold_default,
    ) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => {
            if !t.metadata.contains_key(kind.threshold_key) {
                out.push((
                    format!("{path}.metadata.{}", kind.threshold_key),
                    format!("a `{}` trigger needs `{}`", kind.name, kind.threshold_key),
                ));
            }
            0.0
        }
    };
    if threshold <= 0.0 && out.len() == before {
        out.push((
            format!("{path}.metadata.{}", kind.threshold_key),
            "must be above 0".into(),
        ));
    }
    let activation = if kind.activation_key.is_empty() {
        0.0
    } else {
        number(&t.metadata, kind.activation_key, path, out).unwrap_or(0.0)
    };
    let resource = matches!(kind.name, "cpu" | "memory");
    // cpu/memory name their target type in `metricType` (or the deprecated metadata `type`).
    let metric_type = match (t.metric_type, t.metadata.get("type").map(String::as_str)) {
        (Some(m), _) => m,
        (None, Some("Utilization")) => TargetType::Utilization,
        (None, Some("AverageValue")) => TargetType::AverageValue,
        (None, Some(other)) => {
            out.push((
                format!("{path}.metadata.type"),
                format!("`{other}` is not Utilization or AverageValue"),
            ));
            TargetType::Utilization
        }
        (None, None) if resource => TargetType::Utilization,
        (None, None) => TargetType::AverageValue,
    };
    if !resource && metric_type == TargetType::Utilization {
        out.push((
            format!("{path}.metricType"),
            "Utilization is only for cpu and memory triggers; use AverageValue or Value".into(),
        ));
    }
    let reading = if resource {
        None
    } else {
        // RabbitMQ in MessageRate mode scales on the publish rate, not the queue length.
        let message_rate = t.metadata.get("mode").map(String::as_str) == Some("MessageRate");
        let r = match (kind.signal, t.metadata.get("query")) {
            (_, _) if t.signal.is_some() => reading_for("", t.signal),
            (Some(_), _) if kind.name == "rabbitmq" && message_rate => {
                Ok(Reading::of(Signal::RequestsPerSecond))
            }
            (Some(s), _) => Ok(Reading::of(s)),
            (None, Some(q)) => reading_for(q, None),
            (None, None) => {
                out.push((
                    format!("{path}.metadata.query"),
                    "a prometheus trigger needs `query`".into(),
                ));
                return None;
            }
        };
        match r {
            Ok(r) => Some(r),
            Err(e) => {
                out.push((format!("{path}.metadata.query"), e));
                return None;
            }
        }
    };
    if out.len() > before {
        return None;
    }
    let label = t
        .name
        .clone()
        .unwrap_or_else(|| format!("{} trigger", kind.name));
    let metric_kind = match (reading, metric_type) {
        (None, TargetType::Utilization) => MetricKind::Utilization {
            cpu: kind.name == "cpu",
            percent: threshold as i32,
        },
        (None, _) => MetricKind::ResourceAverage {
            cpu: kind.name == "cpu",
            target: milli(threshold),
        },
        (Some(r), TargetType::Value) => MetricKind::TotalValue {
            reading: r,
            target: milli(threshold),
        },
        (Some(r), _) => MetricKind::TotalAverage {
            reading: r,
            target: milli(threshold),
        },
    };
    Some((
        Trigger {
            label: label.clone(),
            reading,
            threshold,
            activation_threshold: activation,
            metric_type,
        },
        Metric {
            label: format!("external {label}"),
            kind: metric_kind,
        },
    ))
}

impl KedaConfig {
    /// Validates a ScaledObject spec in scenario time; the service's bounds are its
    /// min/maxReplicaCount.
    pub fn compile(spec: &KedaSpec, bounds: Bounds) -> Result<KedaConfig, Problems> {
        KedaConfig::compile_played(spec, bounds, PlaySpeed::AT_PACE)
    }

    /// [`KedaConfig::compile`] for a spec played `speed` times faster: KEDA's own
    /// durations have no limit but "above 0", so only the generated HPA's
    /// behavior depends on it.
    pub fn compile_played(
        spec: &KedaSpec,
        bounds: Bounds,
        speed: PlaySpeed,
    ) -> Result<KedaConfig, Problems> {
        let mut out = Problems::new();
        if spec.triggers.is_empty() {
            out.push(("keda.triggers".into(), "give at least one trigger, e.g. { type = \"prometheus\", metadata = { query = \"...\", threshold = \"10\" } }".into()));
        }
        let mut triggers = Vec::new();
        let mut metrics = Vec::new();
        for (i, t) in spec.triggers.iter().enumerate() {
            if let Some((t, m)) = compile_trigger(t, &format!("keda.triggers[{i}]"), &mut out) {
                triggers.push(t);
                metrics.push(m);
            }
        }
        let polling = spec
            .polling_interval
            .map_or(defaults::POLLING_INTERVAL, |d| d.as_std());
        if polling.is_zero() {
            out.push((
                "keda.pollingInterval".into(),
                "must be above 0 (default 30)".into(),
            ));
        }
        if let Some(idle) = spec.idle_replica_count {
            if idle >= bounds.min {
                out.push((
                    "keda.idleReplicaCount".into(),
                    format!("{idle} must be below minReplicaCount ({}); lower it or raise the service's minReplicas", bounds.min),
                ));
            }
        }
        let fallback = spec.fallback.as_ref().map(|f| {
            if triggers.iter().all(|t| t.reading.is_none()) && !triggers.is_empty() {
                out.push((
                    "keda.fallback".into(),
                    "fallback does not apply to cpu/memory triggers; remove it".into(),
                ));
            }
            Fallback {
                failure_threshold: f.failure_threshold,
                replicas: f.replicas,
                behavior: f.behavior.unwrap_or(FallbackBehavior::Static),
            }
        });
        // The controller flags of the cluster the generated HPA runs in.
        let flags = compile_flags(spec.controller.as_ref(), "keda.controller", &mut out);
        let behavior = spec
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|h| h.behavior.as_ref())
            .map(|b| {
                compile_behavior(
                    b,
                    flags.downscale_stabilization,
                    speed,
                    "keda.advanced.horizontalPodAutoscalerConfig.behavior",
                    &mut out,
                )
            });
        if bounds.max == 0 {
            out.push((
                "keda".into(),
                "maxReplicaCount is 0; set the service's maxReplicas to at least 1".into(),
            ));
        }
        if !out.is_empty() {
            return Err(out);
        }
        // The generated HPA cannot have minReplicas 0: KEDA owns the step to and from 0.
        let hpa = HpaConfig {
            metrics,
            behavior,
            min: bounds.min.max(1),
            max: bounds.max,
            flags,
            tolerances: Tolerances::both(flags.tolerance),
        };
        Ok(KedaConfig {
            triggers,
            polling_interval: polling,
            cooldown_period: spec
                .cooldown_period
                .map_or(defaults::COOLDOWN_PERIOD, |d| d.as_std()),
            initial_cooldown_period: spec
                .initial_cooldown_period
                .map_or(defaults::INITIAL_COOLDOWN_PERIOD, |d| d.as_std()),
            idle_replica_count: spec.idle_replica_count,
            min: bounds.min,
            max: bounds.max,
            fallback,
            hpa,
        })
    }
}

/// A running ScaledObject: KEDA's executor state plus its HPA.
#[derive(Debug, Clone)]
pub struct Keda {
    pub config: KedaConfig,
    hpa: Hpa,
    created: Time,
    last_active: Option<Time>,
    next_poll: Time,
    /// Consecutive failures per trigger, as the metrics server counts them.
    failures: Vec<u32>,
}

impl Keda {
    pub fn new(config: KedaConfig, now: Time) -> Keda {
        let n = config.triggers.len();
        Keda {
            hpa: Hpa::new(config.hpa.clone(), now),
            config,
            created: now,
            last_active: None,
            next_poll: now,
            failures: vec![0; n],
        }
    }

    /// The Deployment starts with its default single replica (or minReplicaCount); with
    /// no activity KEDA's first poll takes it to 0 (initialCooldownPeriod is 0 by default).
    pub fn initial_replicas(&self) -> u32 {
        self.config.min.max(1).min(self.config.max)
    }

    pub fn next_decision(&self) -> Time {
        self.next_poll.min(self.hpa.next_decision())
    }

    pub fn last_active(&self) -> Option<Time> {
        self.last_active
    }

    /// Each trigger's value in its own units, or the metric source's error.
    fn trigger_values(&self, obs: &Observation) -> Vec<Result<f64, String>> {
        self.config
            .triggers
            .iter()
            .map(|t| match (&t.reading, &obs.totals) {
                (None, _) => Ok(0.0),
                (Some(r), Ok(v)) => Ok(r.read(v)),
                (Some(_), Err(e)) => Err(e.0.clone()),
            })
            .collect()
    }

    /// `RequestScale`: KEDA's own step every pollingInterval. Returns the new replica
    /// count, if it sets one, and what it did.
    pub fn poll(
        &mut self,
        now: Time,
        current: u32,
        values: &[Result<f64, String>],
    ) -> (Option<u32>, String) {
        let c = &self.config;
        let mut active = false;
        let mut error = false;
        for (t, v) in c.triggers.iter().zip(values) {
            match v {
                // CPU and memory triggers cannot activate from zero and count as active.
                _ if t.reading.is_none() => active = true,
                // Activation is a strict comparison.
                Ok(v) => active |= *v > t.activation_threshold,
                Err(_) => error = true,
            }
        }
        let shown: Vec<String> = c
            .triggers
            .iter()
            .zip(values)
            .filter(|(t, _)| t.reading.is_some())
            .map(|(t, v)| match v {
                Ok(v) => format!(
                    "{} {} (activation > {})",
                    t.label,
                    trim(*v),
                    trim(t.activation_threshold)
                ),
                Err(e) => format!("{} failed: {e}", t.label),
            })
            .collect();
        let shown = shown.join(", ");
        let min = c.min;
        if active {
            if (c.idle_replica_count.is_some() && current < min) || current == 0 {
                let to = min.max(1);
                self.last_active = Some(now);
                return (
                    Some(to),
                    format!("keda: active ({shown}), activating {current} -> {to}"),
                );
            }
            if !error {
                self.last_active = Some(now);
            }
            return (None, format!("keda: active ({shown})"));
        }
        if error && c.fallback.is_some_and(|f| f.replicas != 0) {
            return (
                None,
                format!("keda: inactive with failing triggers ({shown}); the HPA falls back"),
            );
        }
        if error && c.fallback.is_none() {
            return (None, format!("keda: triggers failing ({shown}); no change"));
        }
        if c.idle_replica_count.is_some_and(|idle| current > idle) || (current > 0 && min == 0) {
            let passed = match self.last_active {
                None => self.created + c.initial_cooldown_period < now,
                Some(t) => t + c.cooldown_period < now,
            };
            if passed {
                let to = c.idle_replica_count.unwrap_or(min);
                return (
                    Some(to),
                    format!("keda: inactive ({shown}) past the cooldown, {current} -> {to}"),
                );
            }
            return (None, format!("keda: inactive ({shown}), cooling down"));
        }
        if c.idle_replica_count.is_none() && current < min {
            return (
                Some(min),
                format!("keda: inactive, raising {current} to minReplicaCount {min}"),
            );
        }
        (None, format!("keda: inactive ({shown})"))
    }

    /// What the metrics server hands the HPA for each trigger: the value in milli-units,
    /// or after more than failureThreshold consecutive failures a synthetic value that
    /// makes the HPA land on the fallback replicas.
    fn hpa_values(
        &mut self,
        values: &[Result<f64, String>],
        current: u32,
        ready: u32,
    ) -> (Vec<Result<i64, String>>, bool) {
        let mut fell_back = false;
        let out = self
            .config
            .triggers
            .iter()
            .zip(values)
            .enumerate()
            .map(|(i, (t, v))| match v {
                Ok(v) => {
                    self.failures[i] = 0;
                    Ok(milli(*v))
                }
                Err(e) => {
                    self.failures[i] += 1;
                    match self.config.fallback {
                        Some(f) if self.failures[i] > f.failure_threshold => {
                            fell_back = true;
                            let replicas = match f.behavior {
                                FallbackBehavior::Static => f.replicas,
                                FallbackBehavior::CurrentReplicas => current,
                                FallbackBehavior::CurrentReplicasIfHigher => {
                                    current.max(f.replicas)
                                }
                                FallbackBehavior::CurrentReplicasIfLower => current.min(f.replicas),
                            };
                            let target = milli(t.threshold) as f64;
                            let value = match t.metric_type {
                                TargetType::Value => target * replicas as f64 / ready.max(1) as f64,
                                _ => target * replicas as f64,
                            };
                            Ok(value.round() as i64)
                        }
                        _ => Err(e.clone()),
                    }
                }
            })
            .collect();
        (out, fell_back)
    }

    pub fn decide(&mut self, now: Time, obs: &Observation) -> Decision {
        let values = self.trigger_values(obs);
        let mut current = obs.spec_replicas;
        let mut reasons = Vec::new();
        if now >= self.next_poll {
            self.next_poll = now + self.config.polling_interval;
            let (set, why) = self.poll(now, current, &values);
            if let Some(n) = set {
                current = n;
            }
            reasons.push(why);
        }
        if now >= self.hpa.next_decision() {
            let (hv, fell_back) =
                self.hpa_values(&values, current, crate::hpa::calc::running_ready(obs.pods));
            let view = Observation {
                spec_replicas: current,
                ..obs.clone()
            };
            let d = self.hpa.reconcile(now, &view, &hv);
            current = d.desired;
            reasons.push(if fell_back {
                format!("{} (fallback)", d.reason)
            } else {
                d.reason
            });
        }
        if reasons.is_empty() {
            reasons.push(format!(
                "keda: no change, next step at {:.1}s",
                self.next_decision().as_secs_f64()
            ));
        }
        Decision {
            desired: current,
            reason: reasons.join("; "),
            activator_in_path: false,
        }
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
