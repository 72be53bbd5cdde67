//! Errors of a load run: the caller's input, or the target and the machine.

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Flags, files or scenario values that cannot work (exit code 2 in `lab`).
    #[error("{0}")]
    BadInput(String),
    /// The target's model metadata could not be read or understood.
    #[error("model metadata: {0}")]
    Metadata(String),
    /// Anything else: runtime, I/O.
    #[error("{0}")]
    Run(String),
}
