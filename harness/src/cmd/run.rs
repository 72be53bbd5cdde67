//! `lab run`: one scenario at one level, results.json (and report.html) out.

use crate::exit;
use crate::summary;
use anyhow::Context;
use clap::ValueEnum;
use lab_results::rfc3339;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// Discrete-event simulation, seconds for a simulated day (built).
    Sim,
    /// Real `lab serve` pods (GPUs emulated from the latency profiles), a
    /// gateway doing the activator's and queue-proxy's work, Prometheus, the
    /// live controller and the load generator, on this machine.
    Local,
    /// kind or a real cluster with KServe, KEDA and Prometheus, through the
    /// kubeconfig: what `lab deploy` renders is applied, load comes from an
    /// Indexed Job of `lab load` shards inside the cluster, and everything
    /// applied is deleted afterwards.
    Cluster,
}

#[derive(clap::Args)]
#[command(after_help = exit::RUN_HELP)]
pub struct Args {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Level of truth to run at.
    #[arg(long, value_enum, default_value = "sim")]
    pub level: LevelArg,
    /// Local level: run K times faster. Every duration of the scenario is
    /// divided by K (service times, periods, windows, lifecycle phases,
    /// traffic phases) and every rate multiplied by K, which leaves queueing
    /// unchanged; results are reported back in scenario time. A run whose
    /// load generator could not keep up fails with exit 3.
    #[arg(long, value_name = "K", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Local level: also simulate the same file and seed, write `sim.json`,
    /// `comparison.json` and `comparison.html` beside results.json (`lab
    /// compare sim.json results.json`), and exit 1 when a `[fidelity]` bound
    /// of the scenario is broken.
    #[arg(long)]
    pub compare_sim: bool,
    /// Local level: the load generator keeps up while its p99 send lag (wall
    /// time) stays under this [default: 5ms, or a tenth of the median latency
    /// when that is larger]; past it the run carries a `load_fell_behind`
    /// warning and exits 3, since its latencies would describe this machine.
    #[arg(long, value_name = "DUR", value_parser = parse_dur)]
    pub max_send_lag: Option<lab_units::Dur>,
    /// Local and cluster levels: how long the initial pods (local) or every
    /// InferenceService (cluster) may take to become ready before the run
    /// fails with exit 3, saying which are not and why [default: 2m local,
    /// 10m cluster].
    #[arg(long, value_name = "DUR", value_parser = parse_dur)]
    pub ready_timeout: Option<lab_units::Dur>,
    /// Local level: use this running Prometheus (`http://host:9090`) instead
    /// of starting Debian's `prometheus` on a free loopback port. Cluster
    /// level: where to read DCGM's GPU use [default: the cluster's
    /// kube-prometheus-stack Prometheus through the API server's service proxy].
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Cluster level: the kubeconfig context [default: its current context].
    #[arg(long, value_name = "NAME", help_heading = "Cluster level")]
    pub context: Option<String>,
    /// Cluster level: namespace of the scenario's objects [default: lab-<scenario name>].
    #[arg(long, value_name = "NS", help_heading = "Cluster level")]
    pub namespace: Option<String>,
    /// Cluster level: the lab image the pods and load shards run
    /// (`deploy/image/build.sh` prints its tag; `kind load docker-image` it first).
    #[arg(long, value_name = "REF", default_value_t = super::deploy::default_image(), help_heading = "Cluster level")]
    pub image: String,
    /// Cluster level: serverless (Knative, KPA, scale to zero) or raw
    /// (RawDeployment with an HPA or KEDA) [default: what the autoscalers need].
    #[arg(long, value_parser = ["serverless", "raw"], help_heading = "Cluster level")]
    pub mode: Option<String>,
    /// Cluster level: serve a service's real model from storage instead of
    /// emulating its GPU (see `lab deploy --help`). Repeatable.
    #[arg(
        long = "storage-uri",
        value_name = "SERVICE=URI",
        help_heading = "Cluster level"
    )]
    pub storage_uris: Vec<String>,
    /// Cluster level: load shards in the Job [default: one per 1,000 req/s of
    /// the scenario's peak offered rate, at least 1].
    #[arg(long, value_name = "N", help_heading = "Cluster level")]
    pub shards: Option<u32>,
    /// Cluster level: leave everything applied in place after the run
    /// (delete it later with `kubectl delete namespace NS`).
    #[arg(long, help_heading = "Cluster level")]
    pub keep: bool,
    /// Cluster level: also apply `cluster-config/` (Knative's config-autoscaler
    /// keys, device plugin and MIG configuration). These are shared with the
    /// whole cluster and are never torn down.
    #[arg(long, help_heading = "Cluster level")]
    pub apply_cluster_config: bool,
    /// Seed for arrivals, service times and routing; defaults to the scenario's `run.seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder [default: runs/<scenario-name>-<timestamp>/, with -2, -3, ...
    /// added when that is taken]. A folder that already holds a results.json is
    /// refused unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite the results in an existing --out DIR.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Override a scenario value by key path, e.g. `--set services.0.maxReplicas=8`
    /// or `--set 'node_pools.a100.sharing={ strategy = "mig", layout = ["3g.20gb", "3g.20gb"] }'`.
    /// Repeatable; applied in order.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Let an SLO pass whose service has a warning (pods that could never be
    /// scheduled, no ready replica, traffic ending before the run, too few
    /// requests for a percentile). Warnings are still recorded and printed.
    #[arg(long)]
    pub allow_warnings: bool,
    /// Print results.json to stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Do not write report.html beside results.json.
    #[arg(long)]
    pub no_report: bool,
    /// Progress line on stderr for runs longer than a second: `auto` shows it
    /// only when stderr is a terminal.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
}

impl ProgressArg {
    /// Whether to draw the progress line: `auto` only on a terminal.
    pub(super) fn shown(self) -> bool {
        match self {
            ProgressArg::Auto => std::io::stderr().is_terminal(),
            ProgressArg::Always => true,
            ProgressArg::Never => false,
        }
    }
}

/// What starts and ends a progress line: on a terminal it rewrites itself,
/// in a log each update is its own line.
pub(super) fn progress_line_ends() -> (&'static str, &'static str) {
    if std::io::stderr().is_terminal() {
        ("\r", "")
    } else {
        ("", "\n")
    }
}

fn parse_dur(text: &str) -> Result<lab_units::Dur, String> {
    lab_units::parse_duration(text)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Always,
    Never,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let scenario = lab_scenario::load(&args.scenario, &args.overrides)
        .map_err(|e| exit::bad_input(e.to_string()))?;
    if args.level != LevelArg::Cluster {
        let cluster_only = [
            (args.context.is_some(), "--context"),
            (args.namespace.is_some(), "--namespace"),
            (args.mode.is_some(), "--mode"),
            (!args.storage_uris.is_empty(), "--storage-uri"),
            (args.shards.is_some(), "--shards"),
            (args.keep, "--keep"),
            (args.apply_cluster_config, "--apply-cluster-config"),
        ];
        if let Some((_, flag)) = cluster_only.iter().find(|(given, _)| *given) {
            return Err(exit::bad_input(format!(
                "{flag} belongs to --level cluster"
            )));
        }
    }
    if args.level == LevelArg::Cluster {
        return super::run_cluster::run(args, scenario);
    }
    if args.level == LevelArg::Local {
        return super::run_local::run(args, scenario);
    }
    if args.time_scale != 1.0
        || args.prometheus.is_some()
        || args.compare_sim
        || args.ready_timeout.is_some()
    {
        return Err(exit::bad_input(
            "--time-scale, --prometheus, --compare-sim and --ready-timeout belong to the real levels: the simulator's clock is virtual",
        ));
    }
    let seed = args.seed.unwrap_or(scenario.run.seed);

    let started = std::time::SystemTime::now();
    // A named folder is checked before the run, not after it.
    let named = match &args.out {
        Some(dir) => Some(super::named_dir(dir, "results.json", args.force)?),
        None => None,
    };
    let interrupt =
        crate::interrupt::Interrupt::install("stopping, partial results will be written")?;
    let wall = Instant::now();
    let show_progress = args.progress.shown();
    let (line_start, line_end) = progress_line_ends();
    let mut last_line = Instant::now();
    let mut progress = |p: lab_sim::Progress| {
        if show_progress
            && wall.elapsed().as_secs_f64() > 1.0
            && last_line.elapsed().as_millis() >= 200
        {
            last_line = Instant::now();
            let rate = p.events as f64 / wall.elapsed().as_secs_f64();
            eprint!(
                "{line_start}  simulated {} / {} ({:.0}%), {:.1}M events/s   {line_end}",
                lab_units::Dur(p.sim_ns / 1_000_000_000 * 1_000_000_000),
                lab_units::Dur(p.end_ns),
                100.0 * p.sim_ns as f64 / p.end_ns.max(1) as f64,
                rate / 1e6
            );
        }
        if interrupt.requested() {
            lab_sim::Control::Stop
        } else {
            lab_sim::Control::Continue
        }
    };
    let out = lab_sim::simulate(&scenario, seed, &mut progress);
    if show_progress && line_end.is_empty() && wall.elapsed().as_secs_f64() > 1.0 {
        eprintln!();
    }
    let elapsed = wall.elapsed().as_secs_f64();
    let mut results = out.results;
    if args.allow_warnings {
        lab_results::evaluate_slos(
            &scenario.slo,
            &mut results,
            lab_results::Judging {
                allow_warnings: true,
            },
        );
    }
    results.scenario = lab_results::ScenarioInfo {
        name: scenario.name.clone(),
        file: args.scenario.display().to_string(),
        overrides: args.overrides.clone(),
        config: serde_json::to_value(&scenario).context("echoing the scenario")?,
    };
    results.wall_clock = lab_results::WallClock {
        started_at: rfc3339(started),
        elapsed_seconds: elapsed,
        events: out.events,
        events_per_second: out.events as f64 / elapsed.max(1e-9),
        tool: format!("lab {}", env!("CARGO_PKG_VERSION")),
        host: std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };

    let dir = match named {
        Some(dir) => dir,
        None => super::fresh_dir(&PathBuf::from("runs").join(format!(
            "{}-{}",
            scenario.name,
            compact_stamp(started)
        )))?,
    };
    let path = dir.join("results.json");
    let text = serde_json::to_string_pretty(&results)?;
    super::write_atomically(&path, &text)?;
    if !args.no_report {
        write_report(&results, &dir)?;
    }

    if args.json {
        println!("{text}");
    } else {
        print!("{}", summary::human(&results, &dir));
    }
    Ok(if !results.complete {
        interrupt.exit_code()
    } else if results.passed() {
        exit::PASS
    } else {
        exit::SLO_FAILED
    })
}

/// report.html beside results.json.
pub(super) fn write_report(
    results: &lab_results::Results,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let path = dir.join("report.html");
    lab_reports::write_report(&path, results).with_context(|| format!("writing {}", path.display()))
}

/// `20261124-153136` for directory names.
pub(super) fn compact_stamp(t: std::time::SystemTime) -> String {
    rfc3339(t)
        .split('.')
        .next()
        .unwrap_or_default()
        .replace([':', '-'], "")
        .replace('T', "-")
}
