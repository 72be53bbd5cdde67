//! Kubernetes HorizontalPodAutoscaler (autoscaling/v2): the replica calculator
//! ([`calc`]), stabilization and scaling policies ([`normalize`]), and the controller's
//! reconcile step ([`Hpa`]).

pub mod calc;
pub mod normalize;

use crate::signal::{reading_for, Reading};
use crate::spec::{
    Behavior, HpaControllerFlags, HpaSpec, MetricSourceType, MetricTarget, PlaySpeed, TargetType,
};
use crate::{Bounds, Decision, Observation, Time};
use calc::{milli, CalcContext, Tolerances};
use normalize::{History, Limit, Rules};

pub type Problems = Vec<(String, String)>;

/// kube-controller-manager's HPA flags, with upstream's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerFlags {
    pub sync_period: Time,
    pub tolerance: f64,
    pub downscale_stabilization: Time,
    pub cpu_initialization_period: Time,
    pub initial_readiness_delay: Time,
    pub metric_window: Time,
}

impl Default for ControllerFlags {
    fn default() -> Self {
        ControllerFlags {
            sync_period: Time::from_secs(15),
            tolerance: 0.1,
            downscale_stabilization: Time::from_secs(300),
            cpu_initialization_period: Time::from_secs(300),
            initial_readiness_delay: Time::from_secs(30),
            metric_window: Time::from_secs(15),
        }
    }
}

/// What one metric measures and its target, in milli-units.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricKind {
    /// Resource metric, Utilization target (percent of request).
    Utilization { cpu: bool, percent: i32 },
    /// Resource metric, AverageValue target (per pod).
    ResourceAverage { cpu: bool, target: i64 },
    /// Pods metric, AverageValue target.
    Pods { reading: Reading, target: i64 },
    /// Object or External metric read as a service-wide total, Value target.
    TotalValue { reading: Reading, target: i64 },
    /// Object or External metric read as a service-wide total, AverageValue target.
    TotalAverage { reading: Reading, target: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// How the metric is named in reasons, e.g. `cpu` or `external lab_predictor_queue_depth`.
    pub label: String,
    pub kind: MetricKind,
}

/// A validated HPA.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaConfig {
    pub metrics: Vec<Metric>,
    /// None = the legacy path (no `behavior` in the spec).
    pub behavior: Option<(Rules, Rules)>,
    pub min: u32,
    pub max: u32,
    pub flags: ControllerFlags,
    pub tolerances: Tolerances,
}

fn target_milli(t: &MetricTarget, path: &str, out: &mut Problems) -> Option<(TargetType, i64)> {
    let (q, key) = match t.type_ {
        TargetType::Utilization => {
            return match t.average_utilization {
                Some(p) if p > 0 && p <= i32::MAX as u32 => {
                    Some((TargetType::Utilization, p as i64))
                }
                _ => {
                    out.push((
                        format!("{path}.averageUtilization"),
                        "a Utilization target needs averageUtilization, a percent above 0".into(),
                    ));
                    None
                }
            };
        }
        TargetType::Value => (t.value, "value"),
        TargetType::AverageValue => (t.average_value, "averageValue"),
    };
    match q {
        Some(q) if q.0 > 0.0 => Some((t.type_, milli(q.0))),
        _ => {
            out.push((
                format!("{path}.{key}"),
                format!("a {:?} target needs `{key}`, a quantity above 0", t.type_),
            ));
            None
        }
    }
}

/// The controller flags a scenario gives (None = all defaults), checked; `path`
/// prefixes the key paths of problems (e.g. `hpa.controller`).
pub fn compile_flags(
    given: Option<&HpaControllerFlags>,
    path: &str,
    out: &mut Problems,
) -> ControllerFlags {
    let mut flags = ControllerFlags::default();
    let Some(c) = given else {
        return flags;
    };
    if let Some(s) = c.sync_period {
        if s.nanos() == 0 {
            out.push((
                format!("{path}.syncPeriod"),
                "must be above 0 (upstream default 15s)".into(),
            ));
        }
        flags.sync_period = s.as_std();
    }
    if let Some(t) = c.tolerance {
        if !(0.0..1.0).contains(&t) {
            out.push((
                format!("{path}.tolerance"),
                format!("{t} is outside [0, 1); upstream default 0.1"),
            ));
        }
        flags.tolerance = t;
    }
    for (v, slot) in [
        (
            c.downscale_stabilization,
            &mut flags.downscale_stabilization,
        ),
        (
            c.cpu_initialization_period,
            &mut flags.cpu_initialization_period,
        ),
        (
            c.initial_readiness_delay,
            &mut flags.initial_readiness_delay,
        ),
        (c.metric_window, &mut flags.metric_window),
    ] {
        if let Some(v) = v {
            *slot = v.as_std();
        }
    }
    flags
}

/// Fills `behavior` with upstream's defaults and checks it. `downscale_default`
/// (the controller's flag) is already in played time; the behavior's own
/// whole-second fields and upstream's 15 s default periods are in scenario time
/// and are divided by `speed` here, after the limits (which upstream states in
/// whole seconds) are checked on them.
pub fn compile_behavior(
    b: &Behavior,
    downscale_default: Time,
    speed: PlaySpeed,
    path: &str,
    out: &mut Problems,
) -> (Rules, Rules) {
    let played_policies = |mut r: Rules| {
        for p in &mut r.policies {
            p.period = speed.played(p.period);
        }
        r
    };
    let mut up = played_policies(Rules::default_up());
    let mut down = played_policies(Rules::default_down(downscale_default));
    for (rules, given, dir) in [
        (&mut up, &b.scale_up, "scaleUp"),
        (&mut down, &b.scale_down, "scaleDown"),
    ] {
        let Some(g) = given else { continue };
        let p = format!("{path}.{dir}");
        if let Some(w) = g.stabilization_window_seconds {
            if w > 3600 {
                out.push((
                    format!("{p}.stabilizationWindowSeconds"),
                    format!("{w} is above 3600; use at most one hour"),
                ));
            }
            rules.window = speed.played(Time::from_secs(w as u64));
        }
        if let Some(s) = g.select_policy {
            rules.select = s;
        }
        if let Some(ps) = &g.policies {
            if ps.is_empty() && rules.select != crate::spec::SelectPolicy::Disabled {
                out.push((
                    format!("{p}.policies"),
                    "give at least one policy, or set selectPolicy = \"Disabled\"".into(),
                ));
            }
            rules.policies = ps
                .iter()
                .enumerate()
                .map(|(i, pol)| {
                    if pol.value == 0 {
                        out.push((format!("{p}.policies[{i}].value"), "must be above 0".into()));
                    }
                    if pol.period_seconds == 0 || pol.period_seconds > 1800 {
                        out.push((
                            format!("{p}.policies[{i}].periodSeconds"),
                            format!("{} is outside 1..=1800", pol.period_seconds),
                        ));
                    }
                    normalize::Policy {
                        kind: pol.type_,
                        value: pol.value,
                        period: speed.played(Time::from_secs(pol.period_seconds as u64)),
                    }
                })
                .collect();
        }
    }
    (up, down)
}

impl HpaConfig {
    /// Validates an HPA spec in scenario time; `path` prefixes the key paths of
    /// problems.
    pub fn compile(spec: &HpaSpec, bounds: Bounds, path: &str) -> Result<HpaConfig, Problems> {
        HpaConfig::compile_played(spec, bounds, path, PlaySpeed::AT_PACE)
    }

    /// [`HpaConfig::compile`] for a spec played `speed` times faster (see
    /// [`compile_behavior`] for the behavior's whole seconds).
    pub fn compile_played(
        spec: &HpaSpec,
        bounds: Bounds,
        path: &str,
        speed: PlaySpeed,
    ) -> Result<HpaConfig, Problems> {
        let mut out = Problems::new();
        let flags = compile_flags(
            spec.controller.as_ref(),
            &format!("{path}.controller"),
            &mut out,
        );
        let mut metrics = Vec::new();
        for (i, m) in spec.metrics.iter().enumerate() {
            if let Some(m) = compile_metric(m, &format!("{path}.metrics[{i}]"), &mut out) {
                metrics.push(m);
            }
        }
        if spec.metrics.is_empty() {
            // Upstream's default: CPU at 80% utilization.
            metrics.push(Metric {
                label: "cpu".into(),
                kind: MetricKind::Utilization {
                    cpu: true,
                    percent: 80,
                },
            });
        }
        let mut tolerances = Tolerances::both(flags.tolerance);
        let behavior = spec.behavior.as_ref().map(|b| {
            if let Some(t) = b.scale_up.as_ref().and_then(|r| r.tolerance) {
                tolerances.up = t.0;
            }
            if let Some(t) = b.scale_down.as_ref().and_then(|r| r.tolerance) {
                tolerances.down = t.0;
            }
            compile_behavior(
                b,
                flags.downscale_stabilization,
                speed,
                &format!("{path}.behavior"),
                &mut out,
            )
        });
        if bounds.min == 0
            && !metrics.iter().any(|m| {
                matches!(
                    m.kind,
                    MetricKind::TotalValue { .. } | MetricKind::TotalAverage { .. }
                )
            })
        {
            out.push((
                path.to_string(),
                "minReplicas 0 needs an Object or External metric (HPAScaleToZero); raise minReplicas to 1 or use kpa or keda to scale to zero".into(),
            ));
        }
        if bounds.max == 0 {
            out.push((
                path.to_string(),
                "maxReplicas is 0; set the service's maxReplicas to at least 1".into(),
            ));
        }
        if out.is_empty() {
            Ok(HpaConfig {
                metrics,
                behavior,
                min: bounds.min,
                max: bounds.max,
                flags,
                tolerances,
            })
        } else {
            Err(out)
        }
    }
}

fn compile_metric(m: &crate::spec::MetricSpec, path: &str, out: &mut Problems) -> Option<Metric> {
    let field = match m.type_ {
        MetricSourceType::Resource => "resource",
        MetricSourceType::ContainerResource => "containerResource",
        MetricSourceType::Pods => "pods",
        MetricSourceType::Object => "object",
        MetricSourceType::External => "external",
    };
    let present = [
        (m.resource.is_some(), "resource"),
        (m.container_resource.is_some(), "containerResource"),
        (m.pods.is_some(), "pods"),
        (m.object.is_some(), "object"),
        (m.external.is_some(), "external"),
    ];
    for (set, name) in present {
        if set && name != field {
            out.push((
                format!("{path}.{name}"),
                format!(
                    "type is {:?}; move the settings to `{field}` or change `type`",
                    m.type_
                ),
            ));
        }
    }
    let missing = || {
        (
            format!("{path}.{field}"),
            format!("type {:?} needs a `{field}` table", m.type_),
        )
    };
    let resource =
        |name: &str, target: &MetricTarget, p: &str, out: &mut Problems| -> Option<Metric> {
            let cpu = match name {
                "cpu" => true,
                "memory" => false,
                other => {
                    out.push((
                        format!("{p}.name"),
                        format!("`{other}` is not a resource we simulate; use cpu or memory"),
                    ));
                    return None;
                }
            };
            let (tt, v) = target_milli(target, &format!("{p}.target"), out)?;
            let kind = match tt {
                TargetType::Utilization => MetricKind::Utilization {
                    cpu,
                    percent: v as i32,
                },
                TargetType::AverageValue => MetricKind::ResourceAverage { cpu, target: v },
                TargetType::Value => {
                    out.push((
                        format!("{p}.target.type"),
                        "resource metrics take Utilization or AverageValue".into(),
                    ));
                    return None;
                }
            };
            Some(Metric {
                label: name.to_string(),
                kind,
            })
        };
    match m.type_ {
        MetricSourceType::Resource => {
            let Some(r) = &m.resource else {
                out.push(missing());
                return None;
            };
            resource(&r.name, &r.target, &format!("{path}.resource"), out)
        }
        MetricSourceType::ContainerResource => {
            // We model one container per pod, so this is the Resource metric.
            let Some(r) = &m.container_resource else {
                out.push(missing());
                return None;
            };
            resource(
                &r.name,
                &r.target,
                &format!("{path}.containerResource"),
                out,
            )
        }
        MetricSourceType::Pods => {
            let Some(p) = &m.pods else {
                out.push(missing());
                return None;
            };
            let pp = format!("{path}.pods");
            // Check both so that every problem is reported at once.
            let reading = resolve(&p.metric.name, p.metric.signal, &pp, out);
            let target = target_milli(&p.target, &format!("{pp}.target"), out);
            let (Some(reading), Some((tt, v))) = (reading, target) else {
                return None;
            };
            if tt != TargetType::AverageValue {
                out.push((
                    format!("{pp}.target.type"),
                    "Pods metrics take an AverageValue target".into(),
                ));
                return None;
            }
            Some(Metric {
                label: format!("pods {}", p.metric.name),
                kind: MetricKind::Pods { reading, target: v },
            })
        }
        MetricSourceType::Object | MetricSourceType::External => {
            let (ident, target) = match (&m.object, &m.external, m.type_) {
                (Some(o), _, MetricSourceType::Object) => (&o.metric, &o.target),
                (_, Some(e), MetricSourceType::External) => (&e.metric, &e.target),
                _ => {
                    out.push(missing());
                    return None;
                }
            };
            let pp = format!("{path}.{field}");
            let reading = resolve(&ident.name, ident.signal, &pp, out);
            let target = target_milli(target, &format!("{pp}.target"), out);
            let (Some(reading), Some((tt, v))) = (reading, target) else {
                return None;
            };
            let kind = match tt {
                TargetType::Value => MetricKind::TotalValue { reading, target: v },
                TargetType::AverageValue => MetricKind::TotalAverage { reading, target: v },
                TargetType::Utilization => {
                    out.push((
                        format!("{pp}.target.type"),
                        format!("{field} metrics take Value or AverageValue"),
                    ));
                    return None;
                }
            };
            Some(Metric {
                label: format!("{field} {}", ident.name),
                kind,
            })
        }
    }
}

fn resolve(
    name: &str,
    signal: Option<crate::Signal>,
    path: &str,
    out: &mut Problems,
) -> Option<Reading> {
    match reading_for(name, signal) {
        Ok(r) => Some(r),
        Err(e) => {
            out.push((format!("{path}.metric.name"), e));
            None
        }
    }
}

/// An HPA controller for one target: configuration plus the history it keeps.
#[derive(Debug, Clone)]
pub struct Hpa {
    pub config: HpaConfig,
    history: History,
    next: Time,
}

impl Hpa {
    pub fn new(config: HpaConfig, now: Time) -> Hpa {
        Hpa {
            config,
            history: History::default(),
            next: now,
        }
    }

    pub fn next_decision(&self) -> Time {
        self.next
    }

    /// Each total-based metric's current value in milli-units, read from the totals.
    pub fn total_values(&self, obs: &Observation) -> Vec<Result<i64, String>> {
        self.config
            .metrics
            .iter()
            .map(|m| match (&m.kind, &obs.totals) {
                (
                    MetricKind::TotalValue { reading, .. }
                    | MetricKind::TotalAverage { reading, .. },
                    Ok(t),
                ) => Ok(milli(reading.read(t))),
                (_, Err(e)) => Err(e.0.clone()),
                _ => Ok(0),
            })
            .collect()
    }

    /// One reconcile, reading Object/External values from the observation's totals.
    pub fn decide(&mut self, now: Time, obs: &Observation) -> Decision {
        let totals = self.total_values(obs);
        self.reconcile(now, obs, &totals)
    }

    fn context(&self, now: Time) -> CalcContext {
        let f = &self.config.flags;
        CalcContext {
            now,
            tolerances: self.config.tolerances,
            cpu_initialization_period: f.cpu_initialization_period,
            initial_readiness_delay: f.initial_readiness_delay,
            sample_time: now,
            metric_window: f.metric_window,
        }
    }

    /// One metric's proposal (`computeReplicasForMetric`).
    fn propose(
        &self,
        now: Time,
        m: &Metric,
        obs: &Observation,
        total: &Result<i64, String>,
    ) -> Result<(u32, String), String> {
        let ctx = self.context(now);
        let current = obs.spec_replicas;
        let per_pod = |f: &dyn Fn(&crate::SignalValues) -> f64| -> Vec<Option<i64>> {
            obs.pods
                .iter()
                .map(|p| p.metrics.as_ref().map(|v| milli(f(v))))
                .collect()
        };
        match &m.kind {
            MetricKind::Utilization { cpu, percent } => {
                let (vals, reqs): (Vec<Option<i64>>, Vec<i64>) = if *cpu {
                    (
                        obs.pods
                            .iter()
                            .map(|p| p.metrics.as_ref().map(|v| v.cpu_milli.round() as i64))
                            .collect(),
                        obs.pods
                            .iter()
                            .map(|p| p.cpu_request_milli as i64)
                            .collect(),
                    )
                } else {
                    (
                        per_pod(&|v| v.memory_bytes),
                        obs.pods
                            .iter()
                            .map(|p| p.memory_request_bytes as i64 * 1000)
                            .collect(),
                    )
                };
                let p = calc::resource_utilization_replicas(
                    &ctx, current, *percent, *cpu, obs.pods, &vals, &reqs,
                )?;
                Ok((
                    p.replicas,
                    format!("{} utilization {}% (target {}%)", m.label, p.usage, percent),
                ))
            }
            MetricKind::ResourceAverage { cpu, target } => {
                let vals = if *cpu {
                    per_pod(&|v| v.cpu_milli / 1000.0)
                } else {
                    per_pod(&|v| v.memory_bytes)
                };
                let p = calc::plain_metric_replicas(&ctx, current, *target, *cpu, obs.pods, &vals)?;
                Ok((
                    p.replicas,
                    format!(
                        "{} average {} (target {})",
                        m.label,
                        show(p.usage),
                        show(*target)
                    ),
                ))
            }
            MetricKind::Pods { reading, target } => {
                let vals = per_pod(&|v| reading.read(v));
                let p =
                    calc::plain_metric_replicas(&ctx, current, *target, false, obs.pods, &vals)?;
                Ok((
                    p.replicas,
                    format!(
                        "{} average {} (target {})",
                        m.label,
                        show(p.usage),
                        show(*target)
                    ),
                ))
            }
            MetricKind::TotalValue { target, .. } => {
                let v = total.clone()?;
                let p = calc::value_replicas(ctx.tolerances, current, v, *target, obs.pods)?;
                Ok((
                    p.replicas,
                    format!("{} {} (target {})", m.label, show(v), show(*target)),
                ))
            }
            MetricKind::TotalAverage { target, .. } => {
                let v = total.clone()?;
                let p = calc::per_pod_replicas(ctx.tolerances, obs.status_replicas, v, *target)?;
                Ok((
                    p.replicas,
                    format!(
                        "{} {} over {} pods (target {} per pod)",
                        m.label,
                        show(v),
                        obs.status_replicas,
                        show(*target)
                    ),
                ))
            }
        }
    }

    /// `computeReplicasForMetrics`: the largest proposal; a failing metric may block a
    /// scale-down but never a scale-up.
    fn propose_all(
        &self,
        now: Time,
        obs: &Observation,
        totals: &[Result<i64, String>],
    ) -> Result<(u32, String), String> {
        let mut best: Option<(u32, String)> = None;
        let mut errors = Vec::new();
        for (m, t) in self.config.metrics.iter().zip(totals) {
            match self.propose(now, m, obs, t) {
                Ok((r, why)) => {
                    if best.as_ref().is_none_or(|(b, _)| r > *b) {
                        best = Some((r, why));
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", m.label)),
            }
        }
        match best {
            Some((r, why)) if errors.is_empty() || r >= obs.spec_replicas => Ok((r, why)),
            _ => Err(errors.join("; ")),
        }
    }

    /// One reconcile with the given Object/External values (KEDA passes its own).
    pub fn reconcile(
        &mut self,
        now: Time,
        obs: &Observation,
        totals: &[Result<i64, String>],
    ) -> Decision {
        self.next = now + self.config.flags.sync_period;
        let current = obs.spec_replicas;
        let (min, max) = (self.config.min, self.config.max);
        self.history.seed(current, now);
        let keep = |reason: String| Decision {
            desired: current,
            reason,
            activator_in_path: false,
        };
        if current == 0 && min != 0 {
            return keep("hpa: scaling disabled while spec.replicas is 0".into());
        }
        if current > max {
            return self.finish(
                now,
                current,
                max,
                format!("hpa: {current} replicas above maxReplicas {max}"),
            );
        }
        if current < min {
            return self.finish(
                now,
                current,
                min,
                format!("hpa: {current} replicas below minReplicas {min}"),
            );
        }
        let (proposal, why) = match self.propose_all(now, obs, totals) {
            Ok(p) => p,
            Err(e) => return keep(format!("hpa: no change, metrics invalid ({e})")),
        };
        let (desired, stabilized, limit) = match &self.config.behavior {
            None => {
                let s = self.history.stabilize_legacy(
                    proposal,
                    now,
                    self.config.flags.downscale_stabilization,
                );
                let (d, l) = normalize::apply_legacy(current, s, min, max);
                (d, s, l)
            }
            Some((up, down)) => {
                let s = self.history.stabilize(current, proposal, now, up, down);
                let (d, l) =
                    normalize::apply_rate(&self.history, current, s, (min, max), now, (up, down));
                (d, s, l)
            }
        };
        let mut reason = format!("hpa: {why} -> {proposal}");
        if stabilized != proposal {
            reason += &format!(", stabilized to {stabilized}");
        }
        match limit {
            Limit::None => {}
            Limit::TooFewReplicas => reason += &format!(", raised to minReplicas {desired}"),
            Limit::TooManyReplicas => reason += &format!(", capped at maxReplicas {desired}"),
            Limit::ScaleUpLimit => reason += &format!(", scale-up limited to {desired}"),
            Limit::ScaleDownLimit => reason += &format!(", scale-down limited to {desired}"),
        }
        self.finish(now, current, desired, reason)
    }

    fn finish(&mut self, now: Time, current: u32, desired: u32, reason: String) -> Decision {
        if desired != current {
            if let Some((up, down)) = &self.config.behavior {
                self.history.store_event(current, desired, now, up, down);
            }
        }
        Decision {
            desired,
            reason,
            activator_in_path: false,
        }
    }

    /// Past recommendations and scale events, for inspection in tests.
    pub fn history(&self) -> &History {
        &self.history
    }
}

/// A milli-value in plain units for reasons: 1500 -> "1.5".
fn show(m: i64) -> String {
    let s = format!("{:.3}", m as f64 / 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
