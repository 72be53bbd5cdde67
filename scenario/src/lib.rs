//! The scenario file: what a user writes to ask a capacity question. Types,
//! parsing with errors that name the file, line, column and key (with a "did
//! you mean"), `--set` overrides, and semantic validation that reports every
//! problem at once.
//!
//! Architecture invariant: the only I/O is reading the scenario and the files it
//! names (traces, calibration profiles) in [`load`].

mod diagnostic;
mod load;
mod overrides;
pub mod schema;
mod serve_flags;
mod spec;
mod time_scale;
mod typed;
mod validate;

pub use diagnostic::{Diagnostic, ScenarioError};
pub use load::{load, load_checked, parse};
pub use overrides::apply_all as apply_overrides;
pub use spec::*;
pub use time_scale::{time_scale_caveats, time_scaled, UNSCALED_CONSTANTS};
pub use validate::{profile_for, GpuRequest, KeyPath, Seg, GPU_RESOURCE, MIG_RESOURCE_PREFIX};
