//! Knative Pod Autoscaler: the metric buckets (1 s unless `metric-bucket` says
//! otherwise) and their window averages
//! ([`WindowBuckets`]), the decider's per-tick calculation ([`Scaler`], upstream
//! `autoscaler.go`), and the PodAutoscaler reconciler around it ([`Kpa`]: bounds,
//! initial scale, scale-to-zero and whether the activator sits in the request path).

use crate::hpa::Problems;
use crate::spec::{KpaMetric, KpaSpec, PlaySpeed};
use crate::{Bounds, Decision, Observation, SignalValues, Time};
use std::collections::VecDeque;

/// Knative's defaults (config-autoscaler).
pub mod defaults {
    use crate::Time;
    pub const CONTAINER_CONCURRENCY_TARGET: f64 = 100.0;
    pub const RPS_TARGET: f64 = 200.0;
    pub const TARGET_UTILIZATION: f64 = 0.7;
    pub const TARGET_BURST_CAPACITY: f64 = 211.0;
    pub const STABLE_WINDOW: Time = Time::from_secs(60);
    pub const PANIC_WINDOW_PERCENTAGE: f64 = 10.0;
    pub const PANIC_THRESHOLD_PERCENTAGE: f64 = 200.0;
    pub const MAX_SCALE_UP_RATE: f64 = 1000.0;
    pub const MAX_SCALE_DOWN_RATE: f64 = 2.0;
    pub const ACTIVATOR_CAPACITY: f64 = 100.0;
    pub const SCALE_TO_ZERO_GRACE_PERIOD: Time = Time::from_secs(30);
    pub const INITIAL_SCALE: u32 = 1;
    /// The decider runs this often (`tick-interval`, used by `multiscaler.go`).
    pub const TICK_INTERVAL: Time = Time::from_secs(2);
    /// The width of the buckets scraped stats are aggregated into (Knative's
    /// `BucketSize`, fixed upstream; the lab's `metric-bucket`).
    pub const METRIC_BUCKET: Time = Time::from_secs(1);
    /// The smallest per-pod target.
    pub const TARGET_MIN: f64 = 0.01;
    /// Deployment progress deadline plus the activation buffer.
    pub const ACTIVATION_TIMEOUT: Time = Time::from_secs(600 + 30);
}

/// A validated KPA configuration with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct KpaConfig {
    pub metric: KpaMetric,
    /// Per-pod target after utilization (`TargetValue`).
    pub target_value: f64,
    /// Per-pod capacity before utilization (`TotalValue`).
    pub total_value: f64,
    pub stable_window: Time,
    /// A whole number of metric buckets, at least one.
    pub panic_window: Time,
    /// How often the decider runs.
    pub tick_interval: Time,
    /// The width of the buckets the stable and panic windows are counted in.
    pub metric_bucket: Time,
    /// Ratio, e.g. 2.0 for 200%.
    pub panic_threshold: f64,
    pub max_scale_up_rate: f64,
    pub max_scale_down_rate: f64,
    pub activation_scale: u32,
    pub scale_down_delay: Time,
    /// -1 = activator always in path, 0 = only at zero.
    pub target_burst_capacity: f64,
    pub grace_period: Time,
    pub pod_retention: Time,
    pub initial_scale: u32,
    pub enable_scale_to_zero: bool,
    pub activator_capacity: f64,
    pub min: u32,
    /// 0 = unbounded.
    pub max: u32,
    /// The revision receives traffic (false while another revision takes over): only
    /// then are scale-down rate and scale-down delay applied.
    pub reachable: bool,
}

/// `x >= lim`, false for NaN.
fn at_least(x: f64, lim: f64) -> bool {
    x >= lim
}

/// `x > lim`, false for NaN.
fn above(x: f64, lim: f64) -> bool {
    x > lim
}

fn whole_secs(d: Time) -> bool {
    d.subsec_nanos() == 0
}

/// Says, after a limit in scenario time, that the value shown is played faster.
fn played_note(speed: PlaySpeed) -> String {
    if speed == PlaySpeed::AT_PACE {
        String::new()
    } else {
        format!(
            " in scenario time, and it is played {} times faster, so the limits are divided by {}",
            speed.factor(),
            speed.factor()
        )
    }
}

impl KpaConfig {
    /// Validates a KPA spec, in scenario time, against the service's bounds and
    /// containerConcurrency.
    pub fn compile(
        spec: &KpaSpec,
        bounds: Bounds,
        container_concurrency: u32,
    ) -> Result<KpaConfig, Problems> {
        KpaConfig::compile_played(spec, bounds, container_concurrency, PlaySpeed::AT_PACE)
    }

    /// [`KpaConfig::compile`] for a spec whose durations are already divided by
    /// `speed` (`time_scaled`'s copy): upstream's limits are divided too, so
    /// whatever is valid in scenario time plays. Knative's "whole seconds" is
    /// checked at pace only: the scenario-time value was checked, and its played
    /// copy, divided by K and rounded to the nanosecond, cannot be whole
    /// multiples of 1 s / K for every K (K = 7, say); the buckets the windows are
    /// counted in are rounded to the nearest whole one.
    pub fn compile_played(
        spec: &KpaSpec,
        bounds: Bounds,
        container_concurrency: u32,
        speed: PlaySpeed,
    ) -> Result<KpaConfig, Problems> {
        let at_pace = speed == PlaySpeed::AT_PACE;
        let lim = |secs: u64| speed.played(Time::from_secs(secs));
        let whole = |d: Time| !at_pace || whole_secs(d);
        let mut out = Problems::new();
        let mut bad = |k: &str, m: String| out.push((format!("kpa.{k}"), m));
        let metric = spec.metric.unwrap_or(KpaMetric::Concurrency);
        let cc = container_concurrency as f64;
        let (mut total, mut utilization) = match metric {
            KpaMetric::Rps => (defaults::RPS_TARGET, defaults::TARGET_UTILIZATION),
            KpaMetric::Concurrency if cc > 0.0 => (cc, defaults::TARGET_UTILIZATION),
            KpaMetric::Concurrency => (
                defaults::CONTAINER_CONCURRENCY_TARGET,
                defaults::TARGET_UTILIZATION,
            ),
        };
        if let Some(t) = spec.target {
            if !at_least(t, defaults::TARGET_MIN) {
                bad(
                    "target",
                    format!("{t} is below the minimum of 0.01; give a per-pod target such as 10"),
                );
            }
            total = if metric == KpaMetric::Concurrency && cc > 0.0 {
                t.min(cc)
            } else {
                t
            };
        }
        if let Some(p) = spec.target_utilization_percentage {
            if !(1.0..=100.0).contains(&p) {
                bad(
                    "target-utilization-percentage",
                    format!("{p} is outside 1..=100 (default 70)"),
                );
            }
            utilization = p / 100.0;
        }
        let stable_window = spec.window.map_or(defaults::STABLE_WINDOW, |d| d.as_std());
        if stable_window < lim(6) || stable_window > lim(3600) || !whole(stable_window) {
            bad(
                "window",
                format!(
                    "{:?} must be whole seconds between 6s and 1h (default 60s){}",
                    stable_window,
                    played_note(speed)
                ),
            );
        }
        let pwp = spec
            .panic_window_percentage
            .unwrap_or(defaults::PANIC_WINDOW_PERCENTAGE);
        if !(1.0..=100.0).contains(&pwp) {
            bad(
                "panic-window-percentage",
                format!("{pwp} is outside 1..=100 (default 10)"),
            );
        }
        let tick = spec
            .tick_interval
            .map_or(defaults::TICK_INTERVAL, |d| d.as_std());
        if tick.is_zero() {
            bad("tick-interval", "must be above 0 (default 2s)".into());
        }
        let bucket = spec
            .metric_bucket
            .map_or(defaults::METRIC_BUCKET, |d| d.as_std());
        if bucket.is_zero() {
            bad("metric-bucket", "must be above 0 (default 1s)".into());
        } else if bucket > tick && !tick.is_zero() {
            bad(
                "metric-bucket",
                format!(
                    "{bucket:?} is longer than the tick-interval ({tick:?}); the decider would \
                     read the same bucket twice: shorten it (default 1s)"
                ),
            );
        } else if bucket > stable_window {
            bad(
                "metric-bucket",
                format!(
                    "{bucket:?} is longer than the stable window ({stable_window:?}); shorten it \
                     (default 1s)"
                ),
            );
        }
        // Rounded to whole buckets, at least one (`MakeMetric` rounds to its 1 s
        // BucketSize). With 1 s buckets this is exactly upstream's arithmetic.
        let panic_buckets = if bucket.is_zero() {
            1
        } else {
            ((stable_window.as_secs_f64() / bucket.as_secs_f64() * pwp / 100.0).round() as u64)
                .max(1)
        };
        let bucket_ns = u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX);
        let panic_window = Time::from_nanos(bucket_ns.saturating_mul(panic_buckets));
        let ptp = spec
            .panic_threshold_percentage
            .unwrap_or(defaults::PANIC_THRESHOLD_PERCENTAGE);
        if !(110.0..=1000.0).contains(&ptp) {
            bad(
                "panic-threshold-percentage",
                format!("{ptp} is outside 110..=1000 (default 200)"),
            );
        }
        let up = spec
            .max_scale_up_rate
            .unwrap_or(defaults::MAX_SCALE_UP_RATE);
        if !above(up, 1.0) {
            bad(
                "max-scale-up-rate",
                format!("{up} must be above 1 (default 1000)"),
            );
        }
        let down = spec
            .max_scale_down_rate
            .unwrap_or(defaults::MAX_SCALE_DOWN_RATE);
        if !above(down, 1.0) {
            bad(
                "max-scale-down-rate",
                format!("{down} must be above 1 (default 2)"),
            );
        }
        let grace = spec
            .scale_to_zero_grace_period
            .map_or(defaults::SCALE_TO_ZERO_GRACE_PERIOD, |d| d.as_std());
        if grace < lim(6) {
            bad(
                "scale-to-zero-grace-period",
                format!(
                    "{grace:?} is below 6s; use at least 6s (default 30s){}",
                    played_note(speed)
                ),
            );
        }
        let delay = spec.scale_down_delay.map_or(Time::ZERO, |d| d.as_std());
        if delay > lim(3600) || !whole(delay) {
            bad(
                "scale-down-delay",
                format!(
                    "{delay:?} must be whole seconds up to 1h (default 0s){}",
                    played_note(speed)
                ),
            );
        }
        let tbc = spec
            .target_burst_capacity
            .unwrap_or(defaults::TARGET_BURST_CAPACITY);
        if tbc < 0.0 && tbc != -1.0 {
            bad(
                "target-burst-capacity",
                format!("{tbc} must be -1 (always in path), 0 or positive (default 211)"),
            );
        }
        let initial = spec.initial_scale.unwrap_or(defaults::INITIAL_SCALE);
        if initial == 0 && !spec.allow_zero_initial_scale.unwrap_or(false) {
            bad(
                "initial-scale",
                "0 needs allow-zero-initial-scale = true".into(),
            );
        }
        let activation = spec.activation_scale.unwrap_or(1);
        if activation == 0 {
            bad("activation-scale", "must be at least 1 (default 1)".into());
        }
        if bounds.max > 0 && activation > bounds.max {
            bad(
                "activation-scale",
                format!(
                    "{activation} exceeds the service's maxReplicas ({}); lower it",
                    bounds.max
                ),
            );
        }
        let activator_capacity = spec
            .activator_capacity
            .unwrap_or(defaults::ACTIVATOR_CAPACITY);
        if !at_least(activator_capacity, 1.0) {
            bad(
                "activator-capacity",
                format!("{activator_capacity} must be at least 1 (default 100)"),
            );
        }
        if !out.is_empty() {
            return Err(out);
        }
        Ok(KpaConfig {
            metric,
            // The floor is per second on rps, so played K times faster it is K times higher.
            target_value: (total * utilization).max(match metric {
                KpaMetric::Rps => defaults::TARGET_MIN * speed.factor(),
                KpaMetric::Concurrency => defaults::TARGET_MIN,
            }),
            total_value: total,
            stable_window,
            panic_window,
            tick_interval: tick,
            metric_bucket: bucket,
            panic_threshold: ptp / 100.0,
            max_scale_up_rate: up,
            max_scale_down_rate: down,
            activation_scale: activation,
            scale_down_delay: delay,
            target_burst_capacity: tbc,
            grace_period: grace,
            pod_retention: spec
                .scale_to_zero_pod_retention_period
                .map_or(Time::ZERO, |d| d.as_std()),
            initial_scale: initial,
            enable_scale_to_zero: spec.enable_scale_to_zero.unwrap_or(true),
            activator_capacity,
            min: bounds.min,
            max: bounds.max,
            reachable: true,
        })
    }
}

/// Fixed-width buckets over a window (1 s wide unless built [`with_bucket`]),
/// averaged the way Knative's `TimedFloat64Buckets` does: a partial window averages
/// only the buckets since the first write, trailing buckets without data are left out,
/// gaps inside count as zero, and nothing for a whole window reads as 0. Windows and
/// positions are counted in buckets.
///
/// [`with_bucket`]: WindowBuckets::with_bucket
#[derive(Debug, Clone, PartialEq)]
pub struct WindowBuckets {
    /// The bucket width in nanoseconds, at least 1.
    bucket_ns: u64,
    /// The window's length in buckets, at least 1.
    window: u64,
    /// (bucket index, value), oldest first.
    buckets: VecDeque<(u64, f64)>,
    first: Option<u64>,
    last: Option<u64>,
}

impl WindowBuckets {
    /// A window of 1 s buckets.
    pub fn new(window: Time) -> WindowBuckets {
        WindowBuckets::with_bucket(window, defaults::METRIC_BUCKET)
    }

    /// A window of `bucket`-wide buckets; the window is rounded to the nearest whole
    /// number of buckets, at least one (a zero `bucket` is taken as 1 ns).
    pub fn with_bucket(window: Time, bucket: Time) -> WindowBuckets {
        let bucket_ns = u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX).max(1);
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        // Nearest, not floor: a window divided by K and rounded to the nanosecond
        // still spans the same count of (equally scaled) buckets.
        let rest = window_ns % bucket_ns;
        let whole = window_ns / bucket_ns + u64::from(rest >= bucket_ns - bucket_ns / 2);
        WindowBuckets {
            bucket_ns,
            window: whole.max(1),
            buckets: VecDeque::new(),
            first: None,
            last: None,
        }
    }

    /// The index of the bucket `now` falls in (whole seconds with 1 s buckets).
    fn index(&self, now: Time) -> u64 {
        u64::try_from(now.as_nanos() / u128::from(self.bucket_ns)).unwrap_or(u64::MAX)
    }

    /// Sets the value of the bucket `now` falls in. Values are service-wide totals, so
    /// the latest sample of a bucket replaces earlier ones.
    pub fn record(&mut self, now: Time, value: f64) {
        let s = self.index(now);
        if let Some(last) = self.last {
            if s.saturating_add(self.window) <= last {
                return; // older than a window
            }
            if s >= last.saturating_add(self.window) {
                self.buckets.clear();
                self.first = Some(s);
            }
        }
        if self.first.is_none_or(|f| s < f) {
            self.first = Some(s);
        }
        self.last = Some(self.last.map_or(s, |l| l.max(s)));
        match self.buckets.iter_mut().find(|(t, _)| *t == s) {
            Some(b) => b.1 = value,
            None => {
                let at = self.buckets.partition_point(|(t, _)| *t < s);
                self.buckets.insert(at, (s, value));
            }
        }
        let newest = self.last.unwrap_or(s);
        while self
            .buckets
            .front()
            .is_some_and(|(t, _)| t.saturating_add(self.window) <= newest)
        {
            self.buckets.pop_front();
        }
    }

    /// Raises the value of the bucket `now` falls in to at least `value`.
    pub fn record_at_least(&mut self, now: Time, value: f64) {
        let s = self.index(now);
        match self.buckets.iter().find(|(t, _)| *t == s) {
            Some(&(_, v)) if v >= value => {}
            _ => self.record(now, value),
        }
    }

    /// True when the bucket `now` falls in already has a value.
    pub fn has(&self, now: Time) -> bool {
        let s = self.index(now);
        self.buckets.iter().any(|(t, _)| *t == s)
    }

    /// True when nothing was ever recorded.
    pub fn never_written(&self) -> bool {
        self.last.is_none()
    }

    pub fn average(&self, now: Time) -> f64 {
        let now = self.index(now);
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return 0.0;
        };
        if now >= last.saturating_add(self.window) {
            return 0.0;
        }
        // Asked about a bucket before the last write, the window ending at that write counts.
        let end = now.max(last);
        let start = end.saturating_add(1).saturating_sub(self.window);
        let sum: f64 = self
            .buckets
            .iter()
            .filter(|(t, _)| *t >= start && *t <= end)
            .map(|(_, v)| v)
            .sum();
        let idle = now.saturating_sub(last);
        let n = (last - first + 1).min(self.window - idle);
        if n == 0 {
            return 0.0;
        }
        // Knative keeps six decimal digits.
        ((sum / n as f64) * 1e6).floor() / 1e6
    }
}

/// What the decider concluded at one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleResult {
    pub desired: u32,
    /// Excess burst capacity: negative means the activator should stay in path.
    pub excess_burst_capacity: i64,
}

/// The decider's per-tick state (panic mode and the scale-down delay window).
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    panic_since: Option<Time>,
    max_panic_pods: u32,
    delay_window: VecDeque<(Time, u32)>,
}

impl Scaler {
    /// A fresh decider; with more than one ready pod it starts in panic mode holding
    /// that many pods, so a restart cannot scale down on empty history.
    pub fn new(ready_pods: u32, now: Time) -> Scaler {
        let panic_since = (ready_pods > 1).then_some(now);
        Scaler {
            panic_since,
            max_panic_pods: ready_pods,
            delay_window: VecDeque::new(),
        }
    }

    /// A decider already panicking since `since` and holding `max_pods`.
    pub fn panicking(since: Time, max_pods: u32) -> Scaler {
        Scaler {
            panic_since: Some(since),
            max_panic_pods: max_pods,
            delay_window: VecDeque::new(),
        }
    }

    pub fn in_panic(&self) -> bool {
        self.panic_since.is_some()
    }

    pub fn panic_since(&self) -> Option<Time> {
        self.panic_since
    }

    pub fn max_panic_pods(&self) -> u32 {
        self.max_panic_pods
    }

    /// `autoscaler.Scale` given the observed stable and panic values.
    pub fn scale(
        &mut self,
        cfg: &KpaConfig,
        now: Time,
        ready_pods: u32,
        stable: f64,
        panic: f64,
    ) -> ScaleResult {
        let ready = ready_pods.max(1) as f64;
        let max_up = (cfg.max_scale_up_rate * ready).ceil();
        let max_down = if cfg.reachable {
            (ready / cfg.max_scale_down_rate).floor()
        } else {
            0.0
        };
        let dspc = (stable / cfg.target_value).ceil();
        let dppc = (panic / cfg.target_value).ceil();
        let mut stable_pods = dspc.max(max_down).min(max_up) as u32;
        let mut panic_pods = dppc.max(max_down).min(max_up) as u32;
        if cfg.activation_scale > 1 {
            if dspc > 0.0 && cfg.activation_scale > stable_pods {
                stable_pods = cfg.activation_scale;
            }
            if dppc > 0.0 && cfg.activation_scale > panic_pods {
                panic_pods = cfg.activation_scale;
            }
        }
        let over = dppc / ready >= cfg.panic_threshold;
        if over {
            self.panic_since = Some(now);
        } else if self
            .panic_since
            .is_some_and(|t| t + cfg.stable_window < now)
        {
            // The surge has had a whole stable window to reach the stable average.
            self.panic_since = None;
            self.max_panic_pods = 0;
        }
        let mut desired = stable_pods;
        if self.panic_since.is_some() {
            // Never scale down while panicking: hold the highest count seen.
            desired = desired.max(panic_pods);
            self.max_panic_pods = self.max_panic_pods.max(desired);
            desired = self.max_panic_pods;
        }
        if cfg.reachable && cfg.scale_down_delay > Time::ZERO {
            self.delay_window
                .retain(|&(t, _)| t + cfg.scale_down_delay > now);
            self.delay_window.push_back((now, desired));
            desired = self
                .delay_window
                .iter()
                .map(|&(_, d)| d)
                .max()
                .unwrap_or(desired);
        }
        let ebc = if cfg.target_burst_capacity == 0.0 {
            0
        } else if cfg.target_burst_capacity < 0.0 {
            -1
        } else {
            (ready_pods as f64 * cfg.total_value - cfg.target_burst_capacity - panic).floor() as i64
        };
        ScaleResult {
            desired,
            excess_burst_capacity: ebc,
        }
    }
}

/// The PodAutoscaler's Active condition and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activity {
    Active(Time),
    Inactive(Time),
    Activating(Time),
}

/// A KPA for one revision: metric windows, decider and PA reconciler.
#[derive(Debug, Clone)]
pub struct Kpa {
    pub config: KpaConfig,
    stable: WindowBuckets,
    panic: WindowBuckets,
    scaler: Scaler,
    /// The decider's DesiredScale; -1 until metrics arrive.
    desired_scale: i64,
    excess_burst_capacity: i64,
    activity: Activity,
    initialized: bool,
    /// Since when the activator has been in the request path.
    proxy_since: Option<Time>,
    next: Time,
    poked: bool,
}

impl Kpa {
    pub fn new(config: KpaConfig, now: Time) -> Kpa {
        let initial = Self::initial_for(&config);
        let activity = if initial > 0 {
            Activity::Activating(now)
        } else {
            Activity::Inactive(now)
        };
        Kpa {
            stable: WindowBuckets::with_bucket(config.stable_window, config.metric_bucket),
            panic: WindowBuckets::with_bucket(config.panic_window, config.metric_bucket),
            scaler: Scaler::new(0, now),
            desired_scale: -1,
            excess_burst_capacity: 0,
            activity,
            initialized: false,
            // The activator fronts a revision until it is known to have capacity.
            proxy_since: Some(now),
            next: now,
            poked: false,
            config,
        }
    }

    fn initial_for(c: &KpaConfig) -> u32 {
        let n = c.initial_scale.max(c.min);
        if c.max > 0 {
            n.min(c.max)
        } else {
            n
        }
    }

    pub fn initial_replicas(&self) -> u32 {
        Self::initial_for(&self.config)
    }

    pub fn in_panic(&self) -> bool {
        self.scaler.in_panic()
    }

    fn value_of(&self, totals: &SignalValues) -> f64 {
        match self.config.metric {
            KpaMetric::Concurrency => totals.concurrency,
            KpaMetric::Rps => totals.rps,
        }
    }

    pub fn record(&mut self, now: Time, totals: &SignalValues, _ready_pods: u32) {
        let v = self.value_of(totals);
        self.stable.record(now, v);
        self.panic.record(now, v);
    }

    pub fn next_decision(&self) -> Time {
        self.next
    }

    /// The activator pokes the decider when the revision is at zero and requests wait.
    pub fn wants_poke(&self, obs: &Observation) -> bool {
        obs.spec_replicas == 0 && obs.activator_queue > 0 && self.desired_scale <= 0 && !self.poked
    }

    pub fn decide(&mut self, now: Time, obs: &Observation) -> Decision {
        self.next = now + self.config.tick_interval;
        self.poked = obs.spec_replicas == 0 && obs.activator_queue > 0;
        // The caller's per-bucket samples (`record`) are the measurement; the totals seen
        // here only fill a bucket that has none yet. Requests held at the activator are
        // demand even if the totals omit them (that is what a poke carries).
        let waiting = if self.config.metric == KpaMetric::Concurrency {
            obs.activator_queue as f64
        } else {
            0.0
        };
        if let Ok(t) = &obs.totals {
            if !self.stable.has(now) {
                let v = self.value_of(t).max(waiting);
                self.stable.record(now, v);
                self.panic.record(now, v);
            }
        }
        if waiting > 0.0 {
            self.stable.record_at_least(now, waiting);
            self.panic.record_at_least(now, waiting);
        }
        let ready = obs.ready_pods();
        let mut why = String::from("no metrics yet");
        if !self.stable.never_written() {
            let (s, p) = (self.stable.average(now), self.panic.average(now));
            let r = self.scaler.scale(&self.config, now, ready, s, p);
            self.desired_scale = r.desired as i64;
            self.excess_burst_capacity = r.excess_burst_capacity;
            let unit = match self.config.metric {
                KpaMetric::Concurrency => "concurrency",
                KpaMetric::Rps => "rps",
            };
            why = format!(
                "stable {unit} {s:.2}, panic {p:.2}, target {:.2}/pod, {ready} ready{} -> {}",
                self.config.target_value,
                if self.scaler.in_panic() {
                    ", panicking"
                } else {
                    ""
                },
                r.desired
            );
        }
        let (want, apply, note) = self.pa_scale(now);
        let inactive = matches!(self.activity, Activity::Inactive(_));
        let proxy = want == 0 || self.excess_burst_capacity < 0 || (want < 0 && inactive);
        if proxy {
            self.proxy_since.get_or_insert(now);
        } else {
            self.proxy_since = None;
        }
        self.update_activity(now, want, ready);
        let desired = apply.unwrap_or(obs.spec_replicas);
        let mut reason = format!("kpa: {why}");
        if !note.is_empty() {
            reason += &format!("; {note}");
        }
        reason += &format!(
            "; ebc {}, activator {}",
            self.excess_burst_capacity,
            if proxy { "in path" } else { "out of path" }
        );
        Decision {
            desired,
            reason,
            activator_in_path: proxy,
        }
    }

    /// `scaler.scale`: bounds, initial scale and scale-to-zero. Returns (want, replicas to
    /// apply if any, a note for the reason).
    fn pa_scale(&self, now: Time) -> (i64, Option<u32>, String) {
        self.apply_scale(now, self.desired_scale)
    }

    /// The PodAutoscaler's status: its Active condition, since when the activator has
    /// been in the request path, and whether the target has reached its initial scale.
    pub fn status(&self) -> (Activity, Option<Time>, bool) {
        (self.activity, self.proxy_since, self.initialized)
    }

    /// Replaces the PodAutoscaler's status, e.g. to resume from a live cluster's state.
    pub fn set_status(&mut self, activity: Activity, proxy_since: Option<Time>, initialized: bool) {
        self.activity = activity;
        self.proxy_since = proxy_since;
        self.initialized = initialized;
    }

    /// Upstream's `scaler.scale`: what the reconciler makes of a desired scale (-1 =
    /// unknown) given the current status: (want, replicas to set if any, a note).
    pub fn apply_scale(&self, now: Time, desired: i64) -> (i64, Option<u32>, String) {
        let activating = matches!(self.activity, Activity::Activating(_));
        if desired < 0 && !activating {
            return (desired, None, String::new());
        }
        let c = &self.config;
        // min-scale only binds a revision that receives traffic.
        let mut min = if c.reachable { c.min as i64 } else { 0 };
        if c.initial_scale > 1 && !self.initialized {
            min = min.max(c.initial_scale as i64);
        }
        let mut d = desired.max(min);
        if c.max > 0 {
            d = d.min(c.max as i64);
        }
        let mut note = String::new();
        if d != desired {
            note = format!("bounded to {d}");
        }
        if d != 0 {
            return (d, Some(d as u32), note);
        }
        if !c.enable_scale_to_zero {
            return (1, Some(1), "scale to zero disabled, holding 1".into());
        }
        match self.activity {
            Activity::Activating(since) => {
                if now >= since + defaults::ACTIVATION_TIMEOUT {
                    (0, Some(0), "activation timed out, scaling to 0".into())
                } else {
                    (-1, None, "activating".into())
                }
            }
            Activity::Active(since) => {
                if now >= since + c.stable_window {
                    (
                        0,
                        None,
                        "idle for the stable window, marking inactive".into(),
                    )
                } else {
                    (
                        1,
                        Some(1),
                        "idle, holding 1 until active for a stable window".into(),
                    )
                }
            }
            Activity::Inactive(since) => {
                let in_path = c.target_burst_capacity == -1.0 || self.proxy_since.is_some();
                if !in_path {
                    return (
                        0,
                        None,
                        "waiting for the activator to take the traffic".into(),
                    );
                }
                let inactive_for = now.saturating_sub(since);
                if inactive_for >= c.grace_period.max(c.pod_retention) {
                    return (
                        0,
                        Some(0),
                        format!("inactive for {inactive_for:?}, scaling to 0"),
                    );
                }
                if inactive_for < c.pod_retention {
                    return (
                        0,
                        None,
                        "keeping the last pod for the retention period".into(),
                    );
                }
                let proxy_for = self
                    .proxy_since
                    .map_or(Time::ZERO, |t| now.saturating_sub(t));
                if proxy_for >= c.grace_period {
                    (
                        0,
                        Some(0),
                        format!("activator in path for {proxy_for:?}, scaling to 0"),
                    )
                } else {
                    (
                        0,
                        None,
                        format!(
                            "activator in path for {proxy_for:?}, waiting out the grace period"
                        ),
                    )
                }
            }
        }
    }

    /// `computeActiveCondition`.
    fn update_activity(&mut self, now: Time, want: i64, ready: u32) {
        let c = &self.config;
        let min_ready = if self.initialized {
            c.min.max(1)
        } else {
            c.min.max(c.initial_scale)
        };
        if ready >= min_ready {
            self.initialized = true;
        }
        let is_inactive = matches!(self.activity, Activity::Inactive(_));
        let next = if want == 0 || min_ready == 0 {
            match self.activity {
                Activity::Inactive(t) => Activity::Inactive(t),
                _ => Activity::Inactive(now),
            }
        } else if ready < min_ready {
            if want > 0 || !is_inactive {
                match self.activity {
                    Activity::Activating(t) => Activity::Activating(t),
                    _ => Activity::Activating(now),
                }
            } else {
                self.activity
            }
        } else if want > 0 || !is_inactive {
            match self.activity {
                Activity::Active(t) => Activity::Active(t),
                _ => Activity::Active(now),
            }
        } else {
            self.activity
        };
        self.activity = next;
    }
}
