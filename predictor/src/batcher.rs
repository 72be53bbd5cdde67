//! Dynamic batching as Triton does it: requests queue per model; a batch goes out
//! when it reaches the max batch size or a preferred size, or when its oldest
//! request has waited the max queue delay. Rows count, not requests. The queue is
//! bounded in rows; a full queue refuses new requests (503).
//!
//! The decision itself is the pure [`plan`]; [`Batcher`] carries it out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify, Semaphore};

use crate::emulate::Emulator;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model::{Model, Tensors};
use crate::tensor::TensorData;

#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// Most rows one execution takes (1 = no batching).
    pub max_batch_size: u32,
    /// Batch sizes to dispatch at once when reached (Triton's `preferred_batch_size`).
    pub preferred: Vec<u32>,
    /// How long the oldest request may wait for a batch to fill.
    pub max_queue_delay: Duration,
    /// Most rows waiting; past it requests are refused with 503.
    pub max_queue_rows: u32,
    /// Executions that may run at once (sessions).
    pub instances: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Send the first `n` queued requests as one batch.
    Dispatch(usize),
    /// Nothing to send yet; look again after this long (or when a request arrives).
    Wait(Duration),
}

/// Decides what to do with a non-empty queue whose requests have `rows` rows each
/// (front first, all compatible), the oldest having waited `oldest_waited`.
pub fn plan(rows: &[u32], oldest_waited: Duration, cfg: &BatchConfig) -> Plan {
    let max = cfg.max_batch_size.max(1);
    let mut total = 0u32;
    let mut n = 0;
    for r in rows {
        if n > 0 && total + r > max {
            break;
        }
        total += r;
        n += 1;
    }
    // The batch cannot grow: full, or the next request would not fit.
    if total >= max || n < rows.len() {
        return Plan::Dispatch(n);
    }
    if cfg.preferred.contains(&total) {
        return Plan::Dispatch(n);
    }
    if oldest_waited >= cfg.max_queue_delay {
        return Plan::Dispatch(n);
    }
    Plan::Wait(cfg.max_queue_delay - oldest_waited)
}

/// A validated request waiting for its batch.
struct Job {
    rows: u32,
    /// Non-batch dimensions of every input: only equal keys can share a batch.
    key: Vec<Vec<i64>>,
    inputs: Tensors,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Tensors, ApiError>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    rows: u32,
}

pub struct Batcher {
    pub model: Arc<Model>,
    cfg: BatchConfig,
    queue: Mutex<Queue>,
    arrived: Notify,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    emulator: Option<Arc<Emulator>>,
}

pub type Reply = oneshot::Receiver<Result<Tensors, ApiError>>;

impl Batcher {
    /// Creates the batcher and starts its scheduling task on the current runtime.
    pub fn start(
        model: Arc<Model>,
        mut cfg: BatchConfig,
        metrics: Arc<Metrics>,
        emulator: Option<Arc<Emulator>>,
    ) -> Arc<Batcher> {
        if !model.batchable {
            cfg.max_batch_size = 1;
        }
        let b = Arc::new(Batcher {
            model,
            slots: Arc::new(Semaphore::new(cfg.instances.max(1))),
            cfg,
            queue: Mutex::new(Queue::default()),
            arrived: Notify::new(),
            metrics,
            emulator,
        });
        tokio::spawn(b.clone().schedule());
        b
    }

    pub fn max_batch_size(&self) -> u32 {
        self.cfg.max_batch_size
    }

    pub fn queued_requests(&self) -> usize {
        self.lock().jobs.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a request of `rows` rows; refuses it when the queue is full.
    pub fn submit(&self, rows: u32, inputs: Tensors) -> Result<Reply, ApiError> {
        let key = inputs
            .iter()
            .map(|(_, shape)| shape.iter().skip(1).copied().collect())
            .collect();
        let (tx, rx) = oneshot::channel();
        {
            let mut q = self.lock();
            if q.rows + rows > self.cfg.max_queue_rows {
                return Err(ApiError::unavailable(format!(
                    "model {}: queue full ({} rows waiting, limit {})",
                    self.model.name, q.rows, self.cfg.max_queue_rows
                )));
            }
            q.rows += rows;
            q.jobs.push_back(Job {
                rows,
                key,
                inputs,
                enqueued: Instant::now(),
                reply: tx,
            });
        }
        self.arrived.notify_one();
        Ok(rx)
    }

    /// Forever: wait for a free execution slot, then for a batch worth sending.
    async fn schedule(self: Arc<Self>) {
        loop {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return;
            };
            let jobs = self.next_batch().await;
            tokio::spawn(self.clone().execute(jobs, permit));
        }
    }

    async fn next_batch(&self) -> Vec<Job> {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Register interest before looking, so an arrival in between is not lost.
            arrived.as_mut().enable();
            let decision = {
                let mut q = self.lock();
                match q.jobs.front() {
                    None => None,
                    Some(front) => {
                        let rows: Vec<u32> = q
                            .jobs
                            .iter()
                            .take_while(|j| j.key == front.key)
                            .map(|j| j.rows)
                            .collect();
                        match plan(&rows, front.enqueued.elapsed(), &self.cfg) {
                            Plan::Dispatch(n) => {
                                let jobs: Vec<Job> = q.jobs.drain(..n).collect();
                                q.rows -= jobs.iter().map(|j| j.rows).sum::<u32>();
                                return jobs;
                            }
                            Plan::Wait(d) => Some(d),
                        }
                    }
                }
            };
            match decision {
                None => arrived.await,
                Some(d) => {
                    tokio::select! {
                        _ = &mut arrived => {}
                        _ = tokio::time::sleep(d) => {}
                    }
                }
            }
        }
    }

    async fn execute(self: Arc<Self>, jobs: Vec<Job>, permit: tokio::sync::OwnedSemaphorePermit) {
        let started = Instant::now();
        let name = &self.model.name;
        for j in &jobs {
            self.metrics.queued(
                name,
                started.saturating_duration_since(j.enqueued).as_secs_f64(),
            );
        }
        let rows: u32 = jobs.iter().map(|j| j.rows).sum();
        let (inputs, replies) = stack(jobs, self.model.batchable);
        self.metrics.busy_begin(name);
        let model = self.model.clone();
        let compute = tokio::task::spawn_blocking(move || model.run(inputs));
        let result = match &self.emulator {
            Some(em) => tokio::join!(compute, em.hold(rows, started)).0,
            None => compute.await,
        };
        self.metrics.busy_end(name);
        self.metrics
            .executed(name, rows, started.elapsed().as_secs_f64());
        drop(permit);
        let outputs = match result {
            Ok(Ok(outputs)) => outputs,
            Ok(Err(msg)) => return fail(replies, &format!("model {name}: {msg}")),
            Err(e) => return fail(replies, &format!("model {name}: execution failed: {e}")),
        };
        if replies.len() == 1 {
            let (_, reply) = replies.into_iter().next().expect("one reply");
            let _ = reply.send(Ok(outputs));
            return;
        }
        // Split every output along the batch dimension, request by request.
        let mut per_request: Vec<Tensors> = replies.iter().map(|_| Vec::new()).collect();
        for (data, shape) in outputs {
            if shape.first().copied() != Some(i64::from(rows)) {
                let msg = format!(
                    "model {name}: an output has shape {shape:?}, not {rows} rows; cannot split the batch"
                );
                return fail(replies, &msg);
            }
            let per_row = data.len() / rows as usize;
            let mut start = 0;
            for ((r, _), out) in replies.iter().zip(per_request.iter_mut()) {
                let end = start + *r as usize * per_row;
                let mut s = shape.clone();
                s[0] = i64::from(*r);
                out.push((data.slice(start, end), s));
                start = end;
            }
        }
        for ((_, reply), out) in replies.into_iter().zip(per_request) {
            let _ = reply.send(Ok(out));
        }
    }
}

type Replies = Vec<(u32, oneshot::Sender<Result<Tensors, ApiError>>)>;

/// Stacks the jobs' inputs along the first dimension.
fn stack(mut jobs: Vec<Job>, batchable: bool) -> (Tensors, Replies) {
    if jobs.len() == 1 || !batchable {
        let j = jobs.remove(0);
        return (j.inputs, vec![(j.rows, j.reply)]);
    }
    let rows: u32 = jobs.iter().map(|j| j.rows).sum();
    let n_inputs = jobs[0].inputs.len();
    let mut inputs = Vec::with_capacity(n_inputs);
    for i in 0..n_inputs {
        let parts: Vec<&TensorData> = jobs.iter().map(|j| &j.inputs[i].0).collect();
        // Types were checked against the model on arrival, so they agree.
        let data = TensorData::concat(&parts).expect("inputs of one type");
        let mut shape = jobs[0].inputs[i].1.clone();
        shape[0] = i64::from(rows);
        inputs.push((data, shape));
    }
    let replies = jobs.into_iter().map(|j| (j.rows, j.reply)).collect();
    (inputs, replies)
}

fn fail(replies: Replies, msg: &str) {
    for (_, reply) in replies {
        let _ = reply.send(Err(ApiError::internal(msg)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max: u32, preferred: &[u32], delay_ms: u64) -> BatchConfig {
        BatchConfig {
            max_batch_size: max,
            preferred: preferred.to_vec(),
            max_queue_delay: Duration::from_millis(delay_ms),
            max_queue_rows: 1000,
            instances: 1,
        }
    }

    #[test]
    fn without_delay_whatever_is_queued_goes_at_once() {
        let c = cfg(8, &[], 0);
        assert_eq!(plan(&[1], Duration::ZERO, &c), Plan::Dispatch(1));
        assert_eq!(plan(&[1, 2, 3], Duration::ZERO, &c), Plan::Dispatch(3));
    }

    #[test]
    fn rows_count_against_the_max_batch_size() {
        let c = cfg(8, &[], 100);
        // 5 + 3 fills 8 exactly; the third request waits for the next batch.
        assert_eq!(plan(&[5, 3, 1], Duration::ZERO, &c), Plan::Dispatch(2));
        // 5 + 4 would overflow: the batch cannot grow, so 5 goes alone.
        assert_eq!(plan(&[5, 4], Duration::ZERO, &c), Plan::Dispatch(1));
    }

    #[test]
    fn waits_for_the_delay_unless_a_preferred_size_is_reached() {
        let c = cfg(8, &[4], 10);
        assert_eq!(
            plan(&[1, 1], Duration::from_millis(3), &c),
            Plan::Wait(Duration::from_millis(7))
        );
        assert_eq!(plan(&[1, 1, 2], Duration::ZERO, &c), Plan::Dispatch(3));
        assert_eq!(
            plan(&[1, 1], Duration::from_millis(10), &c),
            Plan::Dispatch(2)
        );
    }

    #[test]
    fn an_oversized_first_request_still_goes_alone() {
        // Requests over the max are refused on arrival; this only guards the planner.
        let c = cfg(2, &[], 0);
        assert_eq!(plan(&[3, 1], Duration::ZERO, &c), Plan::Dispatch(1));
    }
}
