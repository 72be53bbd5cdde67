//! The open loop's HTTP/1.1 hot path: long-lived workers, one per keep-alive
//! connection, pull due requests from their thread's queue. Compared with a
//! task per request this saves a spawn, a pool checkout and a check-in per
//! request.
//!
//! The pacing loop pushes every arrival it admitted (its in-flight slot travels
//! with it) and wakes as many idle workers as it pushed; when fewer are idle it
//! starts new ones, never more than the in-flight cap, so the number of
//! connections follows the peak concurrency as the per-request pool did. The
//! loop, the queue and the workers share one single-threaded runtime, so a
//! wake-up is a task scheduled on the same thread.

use crate::client::{Failure, Template};
use crate::plan::Planned;
use crate::pool::H1Pool;
use crate::Shared;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Notify;

/// A due request and its slot under the in-flight cap.
pub type Job = (Planned, crate::slots::Slot);

struct State {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job and not yet woken.
    idle: usize,
    /// Workers started.
    workers: usize,
    /// Queued jobs a woken or newly started worker is on its way to.
    claimed: usize,
    closed: bool,
}

pub struct Queue {
    state: Mutex<State>,
    wake: Notify,
    cap: usize,
}

impl Queue {
    pub fn new(cap: usize) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(State {
                jobs: VecDeque::with_capacity(cap),
                idle: 0,
                workers: 0,
                claimed: 0,
                closed: false,
            }),
            wake: Notify::new(),
            cap,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `jobs`, wakes idle workers for them and returns how many new
    /// workers the caller must start: one for each job no worker is on its way
    /// to, as far as the cap allows.
    pub fn push(&self, jobs: impl Iterator<Item = Job>) -> usize {
        let (wake, start) = {
            let mut s = self.lock();
            s.jobs.extend(jobs);
            let unclaimed = s.jobs.len().saturating_sub(s.claimed);
            let wake = unclaimed.min(s.idle);
            s.idle -= wake;
            let start = (unclaimed - wake).min(self.cap.saturating_sub(s.workers));
            s.workers += start;
            s.claimed += wake + start;
            (wake, start)
        };
        for _ in 0..wake {
            self.wake.notify_one();
        }
        start
    }

    /// No more jobs will come: workers end once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
    }

    /// The next job, or `None` once the queue is closed and empty.
    async fn next(&self) -> Option<Job> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            {
                let mut s = self.lock();
                if let Some(job) = s.jobs.pop_front() {
                    s.claimed = s.claimed.saturating_sub(1).min(s.jobs.len());
                    return Some(job);
                }
                if s.closed {
                    return None;
                }
                s.idle += 1;
                // Registered before the lock is released, so a wake-up sent
                // between here and the await below is not lost.
                notified.as_mut().enable();
            }
            notified.await;
        }
    }
}

/// One worker: one keep-alive connection, opened on its first request and
/// again after a failure, a timeout or a close by the server.
pub async fn work(shared: Arc<Shared>, pool: Arc<H1Pool>, queue: Arc<Queue>) {
    let mut conn = None;
    while let Some((p, permit)) = queue.next().await {
        let sent = Instant::now();
        let template = &shared.templates[p.stream];
        let result = match tokio::time::timeout(
            shared.timeout,
            send(&pool, &mut conn, template, p.arrival.seq),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                // Cut mid-request: the connection's state is unknown.
                conn = None;
                Err(Failure::Timeout)
            }
        };
        shared.record(&p, sent, result);
        drop(permit);
    }
}

async fn send(
    pool: &H1Pool,
    conn: &mut Option<crate::pool::H1Conn>,
    template: &Template,
    seq: u64,
) -> Result<(), Failure> {
    let mut c = match conn.take() {
        // A connection the server closed while idle is replaced, not reused.
        Some(mut c) if !c.is_closed() => match c.ready().await {
            Ok(()) => c,
            Err(_) => pool.connect().await?,
        },
        _ => pool.connect().await?,
    };
    let (result, reusable) = crate::client::send_h1(&mut c, template, seq).await;
    if reusable {
        *conn = Some(c);
    }
    result
}
