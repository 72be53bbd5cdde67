//! The exit codes `lab` promises, documented in `--help` and the README.

/// Every SLO passed (or the command has no SLOs to judge).
pub const PASS: i32 = 0;
/// At least one SLO failed.
pub const SLO_FAILED: i32 = 1;
/// Bad input: scenario, flags, manifest or results file.
pub const BAD_INPUT: i32 = 2;
/// Something outside the input failed (I/O, a child process, the network).
pub const RUN_FAILED: i32 = 3;
/// Interrupted by Ctrl-C; partial results were written.
pub const INTERRUPTED: i32 = 130;

pub const HELP: &str = "\
Exit codes:
  0    all SLOs passed
  1    an SLO failed
  2    bad input (scenario, flags, manifest, results file)
  3    the run itself failed (I/O, a child process)
  130  interrupted (Ctrl-C); partial results were written";

/// Marks an error as the user's input being wrong (exit code 2).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Shorthand: `return Err(bad_input(format!(...)))`.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}
