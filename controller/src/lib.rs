//! The local level: `lab run --level local` as a library. The scenario's
//! stack stands up for real on this machine and the same `results.json`
//! comes out:
//!
//! - pods are `lab serve` processes (GPU timing emulated from the
//!   scenario's latency profile) under `lab-local`'s supervisor;
//! - `lab-gateway` in front of them does the activator's and queue-proxy's
//!   work;
//! - a real Prometheus (Debian's package) scrapes the pods and the gateway,
//!   and KEDA's `prometheus` triggers query it;
//! - the controller ([`controller`]) runs each autoscaler of `lab-autoscale`
//!   at its own period on what it reads, and hands the result to
//!   `lab-decide` (reconcile, binding, start-up, cluster autoscaler) exactly
//!   as the simulator does, on emulated node pools ([`nodes`]);
//! - `lab-loadgen` replays the scenario's arrivals against the gateway.
//!
//! Time is wall time here. A caller that wants `--time-scale K` passes the
//! scenario through `lab_scenario::time_scaled` first and the results through
//! `lab_results::to_scenario_time` after, so this crate only ever sees one
//! clock.

mod assemble;
pub mod controller;
pub mod nodes;
pub mod overhead;
mod profile;
pub mod promql;

pub use controller::{run, LocalOutput, Options, Progress, ProgressFn, PrometheusChoice};
pub use overhead::MeasuredOverhead;

/// Why a local run could not be carried out (bad input is reported as such).
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The scenario cannot run at the local level as written.
    #[error("{0}")]
    BadInput(String),
    /// Something on this machine failed: a process, a port, Prometheus.
    #[error("{0}")]
    Failed(String),
    /// Stopped (Ctrl-C, SIGTERM) before the load started: nothing was measured.
    #[error("interrupted while the initial pods were starting; nothing was measured")]
    Interrupted,
}
