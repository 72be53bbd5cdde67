//! Kubernetes' CrashLoopBackOff for a restarted container, as the kubelet does it
//! (`restartPolicy: Always`): the first restart after a crash is immediate, the
//! next ones wait 10 s, 20 s, 40 s, ... capped at 5 min, and a container that ran
//! for 10 min before it crashed starts the sequence again. Pure: durations in,
//! durations out.

use std::time::Duration;

/// The kubelet's constants, scalable for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackOffPolicy {
    /// First non-zero delay (kubelet: 10 s).
    pub initial: Duration,
    /// Cap (kubelet: 300 s).
    pub max: Duration,
    /// Running this long before a crash resets the back-off (kubelet: 10 min).
    pub reset_after: Duration,
}

impl Default for BackOffPolicy {
    fn default() -> Self {
        BackOffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl BackOffPolicy {
    /// Every duration divided by `k` (tests, and `--time-scale`).
    pub fn scaled(self, k: f64) -> BackOffPolicy {
        let div = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() / k);
        BackOffPolicy {
            initial: div(self.initial),
            max: div(self.max),
            reset_after: div(self.reset_after),
        }
    }
}

/// One pod's back-off state.
#[derive(Clone, Debug)]
pub struct CrashLoop {
    policy: BackOffPolicy,
    /// Delay before the next restart, once the first (immediate) one is spent.
    next: Option<Duration>,
}

impl CrashLoop {
    pub fn new(policy: BackOffPolicy) -> CrashLoop {
        CrashLoop { policy, next: None }
    }

    /// The container exited after running for `ran_for`: how long to wait
    /// before starting it again.
    pub fn on_crash(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.policy.reset_after {
            self.next = None;
        }
        match self.next {
            None => {
                self.next = Some(self.policy.initial.min(self.policy.max));
                Duration::ZERO
            }
            Some(d) => {
                self.next = Some((d * 2).min(self.policy.max));
                d
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn immediate_then_doubling_to_the_cap() {
        let mut c = CrashLoop::new(BackOffPolicy::default());
        let delays: Vec<u64> = (0..9).map(|_| c.on_crash(secs(1)).as_secs()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn ten_minutes_of_running_resets() {
        let mut c = CrashLoop::new(BackOffPolicy::default());
        for _ in 0..4 {
            c.on_crash(secs(1));
        }
        assert_eq!(c.on_crash(secs(599)), secs(80));
        assert_eq!(c.on_crash(secs(600)), Duration::ZERO);
        assert_eq!(c.on_crash(secs(1)), secs(10));
    }

    #[test]
    fn scaled_divides_every_constant() {
        let p = BackOffPolicy::default().scaled(100.0);
        assert_eq!(p.initial, Duration::from_millis(100));
        assert_eq!(p.max, secs(3));
        assert_eq!(p.reset_after, secs(6));
    }
}
