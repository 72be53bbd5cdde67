//! Open loop: `config.threads` OS threads, each running a single-threaded tokio
//! runtime that paces its own part of the schedule (`plan::part`) and sends
//! every arrival at its instant, whatever the server is doing: over HTTP/1.1
//! through the thread's connection workers (`workers`), otherwise (HTTP/2,
//! gRPC) as a task per request. The pacing loop, the requests and their
//! connections of one part all live on one thread, so a due request reaches its
//! socket without a hand-over between threads.

use crate::client::Client;
use crate::config::LoadConfig;
use crate::error::LoadError;
use crate::pacer::{pace, Halt};
use crate::plan::{self, Planned};
use crate::slots::{Slot, Slots};
use crate::workers::{self, Queue};
use crate::Shared;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Replays the plan; returns the instant (ns from start) at which `stop` cut it
/// short, or `None` when it ran to the end.
pub async fn run(
    config: &LoadConfig,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()>,
) -> Result<Option<u64>, LoadError> {
    // Each thread gets an equal share of the cap (so at most one thread per slot).
    let threads = config.threads.clamp(1, config.max_in_flight.max(1));
    let halt = Arc::new(Halt::default());
    let mut ends = Vec::with_capacity(threads as usize);
    for index in 0..threads {
        let (tx, rx) = oneshot::channel();
        let arrivals = plan::part(config, index, threads);
        let share =
            config.max_in_flight / threads + u32::from(index < config.max_in_flight % threads);
        let (config, shared, part_halt) = (config.clone(), shared.clone(), halt.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("lab-load-{index}"))
            .spawn(move || {
                let end = part_thread(&config, &shared, arrivals, &part_halt, share);
                if end.is_err() {
                    // The other parts stop too: the run has failed.
                    part_halt.raise();
                }
                let _ = tx.send(end);
            });
        match spawned {
            Ok(_) => ends.push(rx),
            Err(e) => {
                halt.raise();
                let _ = join(ends).await;
                return Err(LoadError::Run(format!("starting a load thread: {e}")));
            }
        }
    }
    let all = join(ends);
    tokio::pin!(all);
    tokio::pin!(stop);
    let (stopped_at, end) = tokio::select! {
        _ = &mut stop => {
            let at = shared.since_start(Instant::now());
            halt.raise();
            (Some(at), (&mut all).await)
        }
        end = &mut all => (None, end),
    };
    end.map(|()| stopped_at)
}

/// Waits for every thread; the first error, if any.
async fn join(ends: Vec<oneshot::Receiver<Result<(), LoadError>>>) -> Result<(), LoadError> {
    let mut first = Ok(());
    for rx in ends {
        let end = rx
            .await
            .unwrap_or_else(|_| Err(LoadError::Run("a load thread panicked".into())));
        if first.is_ok() {
            first = end;
        }
    }
    first
}

/// One thread: its own runtime and client (connections belong to the runtime
/// that drives them), pacing its part until the end or the halt, then waiting
/// for its requests up to the timeout.
fn part_thread(
    config: &LoadConfig,
    base: &Shared,
    arrivals: impl Iterator<Item = Planned>,
    halt: &Halt,
    share: u32,
) -> Result<(), LoadError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadError::Run(format!("starting a load thread's runtime: {e}")))?;
    let end = runtime.block_on(async {
        let shared = Arc::new(Shared {
            client: Client::new(config)?,
            templates: base.templates.clone(),
            recorder: base.recorder.clone(),
            start: base.start,
            timeout: base.timeout,
        });
        send_part(config, shared, arrivals, halt, share).await;
        Ok(())
    });
    // Requests still pending after the drain are left behind (reported as in
    // flight) instead of being waited on.
    runtime.shutdown_background();
    end
}

async fn send_part(
    config: &LoadConfig,
    shared: Arc<Shared>,
    arrivals: impl Iterator<Item = Planned>,
    halt: &Halt,
    share: u32,
) {
    let slots = Slots::new(share as usize, shared.start);
    let h1 = match &shared.client {
        Client::Http { h1: Some(pool), .. } => Some((pool.clone(), Queue::new(share as usize))),
        _ => None,
    };
    pace(
        arrivals,
        shared.start,
        halt,
        &slots,
        |due: &mut Vec<Planned>| {
            let mut batch = Vec::with_capacity(due.len());
            {
                // Admitted or refused as of the due instant (`Slots`).
                let mut rec = shared.recorder();
                for p in due.iter() {
                    match slots.take(p.arrival.at_ns) {
                        Some(slot) => {
                            rec.dispatched(p.stream, p.arrival.at_ns);
                            batch.push((*p, slot));
                        }
                        None => rec.refused(p.stream, p.arrival.at_ns),
                    }
                }
            }
            if batch.is_empty() {
                return;
            }
            if let Some((pool, queue)) = &h1 {
                // HTTP/1.1: long-lived workers, one per connection, take the batch
                // from the queue; start more only when none is free.
                for _ in 0..queue.push(batch.into_iter()) {
                    tokio::spawn(workers::work(shared.clone(), pool.clone(), queue.clone()));
                }
                return;
            }
            for (p, slot) in batch {
                tokio::spawn(send_one(shared.clone(), p, slot));
            }
        },
    )
    .await;
    if let Some((_, queue)) = &h1 {
        queue.close();
    }
    // Every slot back means every request of this thread has ended; each has
    // its own timeout, so this wait is bounded by it (plus a little for the
    // last answers to land).
    slots
        .drained(config.timeout + Duration::from_millis(100))
        .await;
}

async fn send_one(shared: Arc<Shared>, p: Planned, slot: Slot) {
    let sent = Instant::now();
    let result = shared
        .client
        .send(&shared.templates[p.stream], p.arrival.seq, shared.timeout)
        .await;
    shared.record(&p, sent, result);
    drop(slot);
}
