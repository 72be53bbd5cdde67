//! The decisions a cluster makes around the request path, written once and
//! called by every level: the simulator in virtual time, the local level's
//! controller in wall time.
//!
//! - [`reconcile`]: a Deployment's ReplicaSet creating or deleting pods.
//! - [`lifecycle`]: a pod's start-up phases (container start, image pull once
//!   per node, model load, readiness at the probe period).
//! - [`binding`]: how many pods of a kind a node holds, and what runs out.
//! - [`cluster_autoscaler`]: nodes to add for unschedulable pods, empty nodes
//!   to remove.
//! - [`metrics`]: observations from scraped metrics (`rate()` windows, CPU
//!   use, the replicas an autoscaler's recommendation becomes).
//! - [`routing`]: the request path's choices (canary version by
//!   `trafficPercent`, least-request pod of two random picks, the activator's
//!   Proxy/Serve mode), shared by the simulator's engine and the local gateway.
//! - [`drain`]: a deleted pod finishing its work within its grace period, and
//!   what fails when the period runs out.
//! - [`spot`]: when a spot node gets its interruption notice (from a uniform
//!   draw the caller makes) and when it is reclaimed.
//! - [`cost`]: node-hours, USD, the OpenCost-style share of a node's price a
//!   pod is charged, idle cost and the 730-hour monthly projection.
//!
//! Architecture invariant: no I/O, no threads, no clock. Instants and
//! durations are integer nanoseconds the caller passes in; the same inputs
//! give the same decision on any machine.

pub mod binding;
pub mod cluster_autoscaler;
pub mod cost;
pub mod drain;
pub mod lifecycle;
pub mod metrics;
pub mod reconcile;
pub mod routing;
pub mod spot;
