//! A draining pod's steps: it exits as soon as it holds nothing, waits while
//! it holds work before its deadline, and is killed at the deadline.

use lab_decide::drain::{deadline, deadline_reached, step, DrainStep, Held, KILLED_REASON};

const S: u64 = 1_000_000_000;

#[test]
fn each_case_of_a_drain() {
    let idle = Held::default();
    let busy = Held {
        queued: 3,
        executing: 1,
    };
    let running = Held {
        queued: 0,
        executing: 2,
    };
    assert_eq!(step(idle, false), DrainStep::Exit);
    assert_eq!(step(idle, true), DrainStep::Exit);
    assert_eq!(step(busy, false), DrainStep::Wait);
    assert_eq!(step(running, false), DrainStep::Wait);
    assert_eq!(
        step(busy, true),
        DrainStep::Kill {
            reason: "pod_killed"
        }
    );
    assert_eq!(KILLED_REASON, "pod_killed");
}

#[test]
fn the_deadline_is_the_grace_period_after_deletion() {
    assert_eq!(deadline(10 * S, 30 * S), 40 * S);
    assert_eq!(deadline(u64::MAX - 1, 30 * S), u64::MAX);
    assert!(!deadline_reached(40 * S - 1, 40 * S));
    assert!(deadline_reached(40 * S, 40 * S));
    assert!(deadline_reached(41 * S, 40 * S));
}

/// Random drains: work finishes at random instants; the pod is asked what to
/// do after each. It never leaves work behind before its deadline, never
/// lingers with nothing to do, and never outlives the deadline.
#[test]
fn a_drain_never_exits_with_work_before_its_deadline() {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m.max(1)
    };
    for _ in 0..5_000 {
        let deleted = next(1_000 * S);
        let grace = next(60 * S);
        let end = deadline(deleted, grace);
        let mut held = Held {
            queued: next(20),
            executing: next(4),
        };
        let mut now = deleted;
        loop {
            let outcome = step(held, deadline_reached(now, end));
            match outcome {
                DrainStep::Exit => {
                    assert!(held.is_empty(), "exited holding {held:?}");
                    break;
                }
                DrainStep::Kill { reason } => {
                    assert!(now >= end, "killed at {now} before the deadline {end}");
                    assert!(!held.is_empty());
                    assert_eq!(reason, KILLED_REASON);
                    break;
                }
                DrainStep::Wait => {
                    assert!(now < end, "still waiting at {now}, deadline {end}");
                    assert!(!held.is_empty());
                }
            }
            // The next thing to happen: some work finishes, or the deadline.
            now = (now + next(5 * S)).min(end);
            if now < end || next(2) == 0 {
                if held.executing > 0 {
                    held.executing -= 1;
                    // The executor takes the next batch from the queue.
                    if held.queued > 0 {
                        let take = 1 + next(held.queued);
                        held.queued -= take;
                        held.executing += 1;
                    }
                } else if held.queued > 0 {
                    held.queued -= 1;
                }
            }
        }
    }
}
