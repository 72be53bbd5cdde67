//! The exit codes `lab` promises, documented in `--help` and the README.

/// Every SLO passed (or the command has no SLOs to judge).
pub const PASS: i32 = 0;
/// At least one SLO failed.
pub const SLO_FAILED: i32 = 1;
/// Bad input: scenario, flags, manifest or results file.
pub const BAD_INPUT: i32 = 2;
/// Something outside the input failed (I/O, a child process, the network).
pub const RUN_FAILED: i32 = 3;
/// Interrupted by Ctrl-C (SIGINT); partial results were written.
pub const INTERRUPTED: i32 = 130;
/// Stopped by SIGTERM (e.g. a Kubernetes Job or CI step being cancelled);
/// partial results were written.
pub const INTERRUPTED_TERM: i32 = 143;

pub const HELP: &str = "\
Exit codes:
  0    all SLOs passed
  1    an SLO failed
  2    bad input (scenario, flags, manifest, results file)
  3    the run itself failed (I/O, a child process)
  130  interrupted (Ctrl-C); partial results were written
  143  stopped by SIGTERM; partial results were written
A second Ctrl-C or SIGTERM exits at once (130 or 143) without waiting for
the partial results or the drain.";

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

// The exit codes each subcommand can return, for its `--help`.

pub const RUN_HELP: &str = "\
Exit codes:
  0    every SLO passed (or the scenario has none)
  1    an SLO failed, or had no data to judge
  2    bad input (scenario, --set, flags, an --out DIR that holds results)
  3    the run itself failed (I/O; at --level local a pod, Prometheus, or a
       load generator that fell behind its schedule: results are still written;
       at --level cluster the API, services not Ready in time, a failed load
       shard, or objects the teardown could not delete)
  130  interrupted (Ctrl-C): partial results written, \"complete\": false
  143  stopped by SIGTERM: partial results written, \"complete\": false
A second Ctrl-C or SIGTERM exits at once (130 or 143), writing nothing more.";

pub const VALIDATE_HELP: &str = "\
Exit codes:
  0    the scenario (with its --set overrides) is valid
  2    it is not: every problem found is printed (with --json, as JSON on standard output)";

pub const CHECK_HELP: &str = "\
Exit codes:
  0    every SLO of every file passed
  1    an SLO failed or had no data, a warning failed it, or a run is incomplete
  2    a file is missing, unreadable or not a lab results file
  3    an output file (--junit, --summary-md) could not be written";

pub const CLUSTER_HELP: &str = "\
Exit codes:
  0    done (or, with --dry-run, printed)
  2    bad flags, or a tool (kind, kubectl, helm) is missing
  3    a command of the install failed";

pub const DEPLOY_HELP: &str = "\
Exit codes:
  0    rendered (notes say what lives outside the objects: node labels, controller flags)
  2    the scenario is invalid, or holds settings the mode cannot express (each is printed
       with its key), or a file in the folder was not written by lab deploy
  3    a file could not be written";

pub const IMPORT_HELP: &str = "\
Exit codes:
  0    imported (notes and warnings about what could not be carried over are printed;
       with --prometheus, gaps and counter resets in the series)
  2    the manifest is unreadable or holds no HPA, ScaledObject or InferenceService;
       with --prometheus, Prometheus refused the query (its own message is shown),
       it returned no data, or several series not grouped by a service label
  3    the output file could not be written, or Prometheus could not be reached";

pub const SERVE_HELP: &str = "\
Exit codes:
  0    stopped by SIGTERM or Ctrl-C after the drain (or when the grace period ran out)
  2    bad input (flags, a model file, a calibration profile)
  3    the server could not start (a port in use, a model ONNX Runtime cannot load)
  130  a second Ctrl-C during the drain: exited at once
  143  a second SIGTERM during the drain: exited at once";

pub const CALIBRATE_HELP: &str = "\
Exit codes:
  0    the profile was written
  2    bad input (flags, the model file)
  3    the measurement failed (ONNX Runtime, the output file)";

pub const REPORT_HELP: &str = "\
Exit codes:
  0    the report was written
  2    a results file is missing, unreadable or not a lab results file; bad --label count
  3    the HTML file could not be written";
