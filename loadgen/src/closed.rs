//! Closed loop: N virtual users, each sending, waiting for the answer, then
//! thinking. Kept for comparison with user-journey tools: it measures from the
//! actual send, so a stalled server slows the users down instead of showing in
//! the tail (coordinated omission). The open loop is the default for that reason.

use crate::recorder::Outcome;
use crate::Shared;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Runs `users` users for `end_ns`; returns the stop instant if `stop` fired first.
pub async fn run(
    users: u32,
    think: Duration,
    end_ns: u64,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()>,
) -> Option<u64> {
    let deadline = shared.start + Duration::from_nanos(end_ns);
    let (halt_tx, halt_rx) = watch::channel(false);
    let streams = shared.templates.len().max(1);
    let mut set = JoinSet::new();
    for user in 0..users {
        let shared = shared.clone();
        let mut halt = halt_rx.clone();
        set.spawn(async move {
            tokio::time::sleep_until(shared.start.into()).await;
            let stream = user as usize % streams;
            let mut seq = u64::from(user);
            loop {
                let now = Instant::now();
                if now >= deadline || *halt.borrow() {
                    break;
                }
                let t = shared.since_start(now);
                shared.recorder().dispatched(stream, t);
                let result = shared
                    .client
                    .send(&shared.templates[stream], seq, shared.timeout)
                    .await;
                let done = shared.since_start(Instant::now());
                shared.recorder().finished(&Outcome {
                    stream,
                    intended_ns: t,
                    sent_ns: t,
                    done_ns: done,
                    result,
                });
                seq += u64::from(users);
                if !think.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(think) => {}
                        _ = halt.changed() => {}
                    }
                }
            }
        });
    }
    tokio::pin!(stop);
    let all_done = async { while set.join_next().await.is_some() {} };
    tokio::select! {
        _ = &mut stop => {
            let at = shared.since_start(Instant::now());
            let _ = halt_tx.send(true);
            let _ = tokio::time::timeout(shared.timeout + Duration::from_millis(100), async {
                while set.join_next().await.is_some() {}
            }).await;
            Some(at)
        }
        _ = all_done => None,
    }
}
