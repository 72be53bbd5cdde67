//! Open loop: the pacer thread hands each arrival over at its instant, whatever
//! the server is doing: over HTTP/1.1 to the connection workers' queue
//! (`workers`), otherwise (HTTP/2, gRPC) to a new task per request.

use crate::client::Client;
use crate::config::LoadConfig;
use crate::error::LoadError;
use crate::pacer::{pace, PaceEnd};
use crate::plan::{self, Planned};
use crate::workers::{self, Queue};
use crate::Shared;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Replays the plan; returns the instant (ns from start) at which `stop` cut it
/// short, or `None` when it ran to the end.
pub async fn run(
    config: &LoadConfig,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()>,
) -> Result<Option<u64>, LoadError> {
    let cap = config.max_in_flight;
    let slots = Arc::new(Semaphore::new(cap as usize));
    let halt = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    let arrivals = plan::arrivals(config);
    let h1 = match &shared.client {
        Client::Http { h1: Some(pool), .. } => Some((pool.clone(), Queue::new(cap as usize))),
        _ => None,
    };
    let queue = h1.as_ref().map(|(_, q)| q.clone());
    let pacer = {
        let (shared, slots, halt) = (shared.clone(), slots.clone(), halt.clone());
        tokio::task::spawn_blocking(move || {
            pace(arrivals, shared.start, &halt, |due: &mut Vec<Planned>| {
                let mut batch = Vec::with_capacity(due.len());
                {
                    let mut rec = shared.recorder();
                    for p in due.iter() {
                        match slots.clone().try_acquire_owned() {
                            Ok(permit) => {
                                rec.dispatched(p.stream, p.arrival.at_ns);
                                batch.push((*p, permit));
                            }
                            Err(_) => rec.refused(p.stream, p.arrival.at_ns),
                        }
                    }
                }
                if batch.is_empty() {
                    return;
                }
                if let Some((pool, queue)) = &h1 {
                    // HTTP/1.1: long-lived workers, one per connection, take the
                    // batch from the queue; start more only when none is free.
                    for _ in 0..queue.push(batch.into_iter()) {
                        let w = workers::work(shared.clone(), pool.clone(), queue.clone());
                        runtime.spawn(w);
                    }
                    return;
                }
                // One hand-over to the runtime per batch; the requests are then
                // spawned from inside it, which is cheaper than from this thread.
                let shared = shared.clone();
                runtime.spawn(async move {
                    for (p, permit) in batch {
                        tokio::spawn(send_one(shared.clone(), p, permit));
                    }
                });
            })
        })
    };
    tokio::pin!(pacer);
    tokio::pin!(stop);
    let stopped_at = tokio::select! {
        _ = &mut stop => {
            let at = shared.since_start(Instant::now());
            halt.store(true, Ordering::Relaxed);
            let _ = (&mut pacer).await;
            Some(at)
        }
        end = &mut pacer => {
            match end {
                Ok(PaceEnd::Finished) | Ok(PaceEnd::Stopped) => None,
                Err(e) => return Err(LoadError::Run(format!("the pacer thread failed: {e}"))),
            }
        }
    };
    if let Some(q) = &queue {
        q.close();
    }
    // Every permit back means every request has ended; each has its own timeout,
    // so this wait is bounded by it (plus a little for the last answers to land).
    let _ = tokio::time::timeout(
        config.timeout + Duration::from_millis(100),
        slots.acquire_many(cap),
    )
    .await;
    Ok(stopped_at)
}

async fn send_one(shared: Arc<Shared>, p: Planned, permit: OwnedSemaphorePermit) {
    let sent = Instant::now();
    let result = shared
        .client
        .send(&shared.templates[p.stream], p.arrival.seq, shared.timeout)
        .await;
    shared.record(&p, sent, result);
    drop(permit);
}
