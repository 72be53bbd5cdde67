//! A pod's start-up timeline: container start, image pull (once per node),
//! model load, and readiness seen at the next probe.

/// The lengths of a pod's start-up phases, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartupTimes {
    /// From binding to the container starting (sandbox, runtime).
    pub pod_start_ns: u64,
    /// Pulling the image onto a node that does not have it.
    pub image_pull_ns: u64,
    /// Loading the model once the container runs.
    pub model_load_ns: u64,
    /// The readiness probe's period: readiness is seen at the first probe
    /// after the model is loaded, counted from the container's start.
    pub probe_period_ns: u64,
}

/// When each phase of one pod's start-up ends, in nanoseconds of the
/// caller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Startup {
    pub container_started: u64,
    pub image_pulled: u64,
    pub model_loaded: u64,
    pub ready: u64,
    /// Set when this pod pulls the image: the instant the node has it.
    pub node_image_ready: Option<u64>,
    /// Durations reported as a cold start's breakdown: waiting for a node
    /// (creation to binding), image pull, model load, readiness (probe wait
    /// plus container start).
    pub phases_ns: [u64; 4],
}

/// The timeline of a pod created at `created` and bound to a node at `bound`;
/// `node_image_ready` is when the node got (or will get) the image, `None`
/// when it has never pulled it.
pub fn startup(
    created: u64,
    bound: u64,
    node_image_ready: Option<u64>,
    times: StartupTimes,
) -> Startup {
    let start = bound + times.pod_start_ns;
    let (pulled, pulls) = match node_image_ready {
        // Another pod's pull may still be running: wait for it, do not pull twice.
        Some(done) => (done.max(start), None),
        None => (
            start + times.image_pull_ns,
            Some(start + times.image_pull_ns),
        ),
    };
    let loaded = pulled + times.model_load_ns;
    let probe = times.probe_period_ns.max(1);
    let ready = start + (loaded - start).div_ceil(probe) * probe;
    Startup {
        container_started: start,
        image_pulled: pulled,
        model_loaded: loaded,
        ready,
        node_image_ready: pulls,
        phases_ns: [
            bound - created,
            pulled - start,
            loaded - pulled,
            ready - loaded + (start - bound),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn times() -> StartupTimes {
        StartupTimes {
            pod_start_ns: 2 * S,
            image_pull_ns: 25 * S,
            model_load_ns: 12 * S,
            probe_period_ns: 5 * S,
        }
    }

    #[test]
    fn a_first_pod_on_a_node_pulls_and_is_seen_ready_at_a_probe() {
        let s = startup(0, 10 * S, None, times());
        assert_eq!(s.container_started, 12 * S);
        assert_eq!(s.image_pulled, 37 * S);
        assert_eq!(s.model_loaded, 49 * S);
        // 37 s after the container started, probes come every 5 s: at 40 s.
        assert_eq!(s.ready, 52 * S);
        assert_eq!(s.node_image_ready, Some(37 * S));
        assert_eq!(s.phases_ns, [10 * S, 25 * S, 12 * S, 5 * S]);
        assert_eq!(s.phases_ns.iter().sum::<u64>(), s.ready);
    }

    #[test]
    fn a_node_with_the_image_skips_the_pull_and_one_pulling_is_waited_for() {
        let cached = startup(0, 0, Some(0), times());
        assert_eq!(cached.image_pulled, cached.container_started);
        assert_eq!(cached.node_image_ready, None);
        let pulling = startup(0, 0, Some(20 * S), times());
        assert_eq!(pulling.image_pulled, 20 * S);
    }

    #[test]
    fn phases_always_add_up_to_the_ready_instant() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..10_000 {
            let created = next(100 * S);
            let bound = created + next(300 * S);
            let image = match next(3) {
                0 => None,
                _ => Some(next(400 * S)),
            };
            let t = StartupTimes {
                pod_start_ns: next(5 * S),
                image_pull_ns: next(60 * S),
                model_load_ns: next(60 * S),
                probe_period_ns: next(10 * S),
            };
            let s = startup(created, bound, image, t);
            assert_eq!(created + s.phases_ns.iter().sum::<u64>(), s.ready);
            assert!(s.ready >= s.model_loaded && s.model_loaded >= s.image_pulled);
            assert!(s.ready - s.model_loaded < t.probe_period_ns.max(1));
        }
    }
}
