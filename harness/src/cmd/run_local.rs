//! `lab run --level local`: the scenario's stack on this machine through
//! `lab-controller`, with `--time-scale` applied on the way in and undone on
//! the way out, then the same results.json, report and exit codes as the
//! simulator's.

use crate::exit;
use crate::summary;
use anyhow::Context;
use lab_scenario::Scenario;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use super::run::Args;

/// The load generator kept up when its p99 send lag stays under this, or
/// under a tenth of the median latency when that is larger (run time).
const KEEP_UP_SECONDS: f64 = 0.005;

pub fn run(args: Args, scenario: Scenario) -> anyhow::Result<i32> {
    let k = args.time_scale;
    if !(k.is_finite() && k > 0.0) {
        return Err(exit::bad_input(format!(
            "--time-scale {k}: expected a number above 0, e.g. 10 to run ten times faster"
        )));
    }
    let seed = args.seed.unwrap_or(scenario.run.seed);
    let scaled = lab_scenario::time_scaled(&scenario, k).map_err(exit::bad_input)?;
    let started = SystemTime::now();
    let dir = match &args.out {
        Some(dir) => super::named_dir(dir, "results.json", args.force)?,
        None => super::fresh_dir(&PathBuf::from("runs").join(format!(
            "{}-local-{}",
            scenario.name,
            super::run::compact_stamp(started)
        )))?,
    };
    let lab = std::env::current_exe().context("finding the lab binary for the pods")?;
    let show_progress = args.progress.shown();
    let (line_start, line_end) = super::run::progress_line_ends();
    let progress: Option<lab_controller::ProgressFn> = if show_progress {
        Some(Box::new(move |p: &lab_controller::Progress| {
            let replicas: Vec<String> = p
                .replicas
                .iter()
                .map(|(s, ready, desired)| format!("{s} {ready}/{desired}"))
                .collect();
            eprint!(
                "{line_start}  {} {} / {} (scenario time), replicas ready/desired: {}, {:.0} req/s   {line_end}",
                p.phase,
                lab_units::Dur::from_secs_f64(p.t_seconds * k),
                lab_units::Dur::from_secs_f64(p.end_seconds * k),
                replicas.join(", "),
                p.achieved_rps / k
            );
        }))
    } else {
        None
    };
    let options = lab_controller::Options {
        lab,
        run_dir: dir.clone(),
        seed,
        time_scale: k,
        prometheus: match &args.prometheus {
            Some(url) => lab_controller::PrometheusChoice::External(url.clone()),
            None => lab_controller::PrometheusChoice::Start { binary: None },
        },
        progress,
        ready_timeout: std::time::Duration::from_secs_f64(
            args.ready_timeout.map_or(120.0, |d| d.secs_f64()),
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let interrupt = crate::interrupt::Interrupt::install(
        "stopping the load and every pod, partial results will be written",
    )?;
    let wall = Instant::now();
    let out = runtime.block_on(lab_controller::run(&scaled, options, interrupt.stopped()));
    if show_progress && line_end.is_empty() {
        eprintln!();
    }
    let out = match out {
        Ok(o) => o,
        Err(lab_controller::LocalError::BadInput(m)) => return Err(exit::bad_input(m)),
        Err(lab_controller::LocalError::Failed(m)) if m.contains("os error 24") => anyhow::bail!(
            "the local run failed: {m}\n  every request in flight holds a file descriptor at the load generator and one or two at the gateway, and this process reached its limit; the simulator's `queue_depth` (`lab run {}`) shows how many requests wait at once in this scenario: raise `ulimit -n` (soft and hard) above three times that, or run a lighter scenario",
            args.scenario.display()
        ),
        Err(lab_controller::LocalError::Failed(m)) => anyhow::bail!("the local run failed: {m}"),
        Err(e @ lab_controller::LocalError::Interrupted) => {
            eprintln!("lab: {e}");
            return Ok(interrupt.exit_code());
        }
    };
    let mut results = out.results;
    let kept_up = kept_up(&results, args.max_send_lag.map(|d| d.secs_f64()));
    lab_results::to_scenario_time(&mut results, k)
        .map_err(|e| anyhow::anyhow!("reading the run back in scenario time: {e}"))?;
    results.scenario = lab_results::ScenarioInfo {
        name: scenario.name.clone(),
        file: args.scenario.display().to_string(),
        overrides: args.overrides.clone(),
        config: serde_json::to_value(&scenario).context("echoing the scenario")?,
    };
    results.run.notes = out.notes;
    results.run.notes.push(out.overhead.note(k));
    results
        .run
        .notes
        .extend(lab_scenario::time_scale_caveats(&scenario, k));
    judge(&mut results, &scenario, &kept_up, args.allow_warnings);
    let elapsed = wall.elapsed().as_secs_f64();
    results.wall_clock = lab_results::WallClock {
        started_at: lab_results::rfc3339(started),
        elapsed_seconds: elapsed,
        events: 0,
        events_per_second: 0.0,
        tool: format!("lab {}", env!("CARGO_PKG_VERSION")),
        host: std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };
    let path = dir.join("results.json");
    let text = serde_json::to_string_pretty(&results)?;
    super::write_atomically(&path, &text)?;
    if !args.no_report {
        super::run::write_report(&results, &dir)?;
    }
    if args.json {
        println!("{text}");
    } else {
        print!("{}", summary::human(&results, &dir));
    }
    // The comparison is written even for a run that fell behind: it shows
    // how far off such a run is; the exit code says the run failed.
    let fidelity_held = if args.compare_sim && results.complete {
        compare_with_sim(&scenario, &args, seed, &results, &out.overhead, &dir)?
    } else {
        true
    };
    if let Err(why) = &kept_up {
        eprintln!("lab: {why}");
    }
    Ok(if !results.complete {
        interrupt.exit_code()
    } else if kept_up.is_err() {
        exit::RUN_FAILED
    } else if results.passed() && fidelity_held {
        exit::PASS
    } else {
        exit::SLO_FAILED
    })
}

/// A real level's verdict: a load generator that fell behind its schedule
/// is a warning (which fails the SLOs unless warnings are allowed), then the
/// scenario's SLOs are judged.
pub(super) fn judge(
    results: &mut lab_results::Results,
    scenario: &Scenario,
    kept_up: &Result<(), String>,
    allow_warnings: bool,
) {
    if let Err(why) = kept_up {
        results.warnings.push(lab_results::Warning {
            kind: lab_results::WarningKind::LoadFellBehind,
            service: None,
            message: why.clone(),
        });
    }
    lab_results::evaluate_slos(
        &scenario.slo,
        results,
        lab_results::Judging { allow_warnings },
    );
}

/// `--compare-sim`: the simulator on the same file and seed, `sim.json`, and
/// the comparison of this run against it, judged by the scenario's
/// `[fidelity]` bounds. Returns whether every bound held.
///
/// The simulator plays what was played: the scenario's `[gateway]` overheads
/// plus the local stack's own as this run measured it, which is wall-clock
/// and so `--time-scale` times larger in scenario time.
fn compare_with_sim(
    scenario: &Scenario,
    args: &Args,
    seed: u64,
    local: &lab_results::Results,
    overhead: &lab_controller::MeasuredOverhead,
    dir: &std::path::Path,
) -> anyhow::Result<bool> {
    let wall = Instant::now();
    let started = SystemTime::now();
    let k = args.time_scale;
    let given = overhead.added_to(scenario, k);
    let out = lab_sim::simulate(&given, seed, &mut |_| lab_sim::Control::Continue);
    let mut sim = out.results;
    // The echo is the file as written, so the two runs compare as one scenario.
    sim.scenario = local.scenario.clone();
    let overhead_doc = serde_json::json!({
        "measured": overhead.to_json(k),
        "scenario": gateway_overheads_ms(scenario),
        "simulator_given": gateway_overheads_ms(&given),
    });
    sim.run.notes.push(format!(
        "simulated with the local run's measured overhead added to [gateway]: ingress_overhead {}, queue_proxy_overhead {} (scenario time)",
        given.gateway.ingress_overhead, given.gateway.queue_proxy_overhead
    ));
    lab_results::evaluate_slos(
        &scenario.slo,
        &mut sim,
        lab_results::Judging {
            allow_warnings: args.allow_warnings,
        },
    );
    let elapsed = wall.elapsed().as_secs_f64();
    sim.wall_clock = lab_results::WallClock {
        started_at: lab_results::rfc3339(started),
        elapsed_seconds: elapsed,
        events: out.events,
        events_per_second: out.events as f64 / elapsed.max(1e-9),
        tool: format!("lab {}", env!("CARGO_PKG_VERSION")),
        host: local.wall_clock.host.clone(),
    };
    super::write_atomically(&dir.join("sim.json"), &serde_json::to_string_pretty(&sim)?)?;
    let comparison = lab_compare::compare(&sim, local)
        .map_err(|e| anyhow::anyhow!("comparing the run with the simulator: {e}"))?;
    let bounds = match lab_compare::declared_fidelity(&sim, local).map_err(exit::bad_input)? {
        Some(spec) => comparison.judge(&spec),
        None => Vec::new(),
    };
    let held = lab_compare::all_hold(&bounds);
    let doc = serde_json::json!({
        "a": "sim.json",
        "b": "results.json",
        "comparison": comparison,
        "bounds": bounds,
        "passed": held,
        "overhead": overhead_doc,
    });
    super::write_atomically(
        &dir.join("comparison.json"),
        &(serde_json::to_string_pretty(&doc)? + "\n"),
    )?;
    let runs = [("a · sim", &sim), ("b · local", local)];
    let page =
        lab_reports::render_comparison(&runs, &super::compare::sections(&comparison, &bounds))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let html = dir.join("comparison.html");
    std::fs::write(&html, page).with_context(|| format!("writing {}", html.display()))?;
    if !args.json {
        println!(
            "  the simulator was given the measured overhead: ingress {}, queue-proxy {} per request (scenario time)",
            given.gateway.ingress_overhead, given.gateway.queue_proxy_overhead
        );
        print!("{}", comparison.to_text(&bounds));
        println!("  comparison   {}", dir.join("comparison.json").display());
    }
    Ok(held)
}

/// A scenario's `[gateway]` overheads in milliseconds, for comparison.json.
fn gateway_overheads_ms(sc: &Scenario) -> serde_json::Value {
    serde_json::json!({
        "ingress": sc.gateway.ingress_overhead.secs_f64() * 1e3,
        "queue_proxy": sc.gateway.queue_proxy_overhead.secs_f64() * 1e3,
    })
}

/// Whether the load generator sent on time (run time, before the results are
/// converted): a machine that cannot keep up makes latency figures about
/// itself, so the run fails rather than answer.
pub(super) fn kept_up(r: &lab_results::Results, max_lag: Option<f64>) -> Result<(), String> {
    let Some(load) = &r.load else {
        return Ok(());
    };
    let lag = load.send_lag_seconds.p99;
    let allowed =
        max_lag.unwrap_or_else(|| KEEP_UP_SECONDS.max(0.1 * r.summary.latency_seconds.p50));
    if lag > allowed {
        return Err(format!(
            "the load generator fell behind its schedule (p99 send lag {:.1} ms of run time, over the {:.1} ms allowed): \
             this machine could not keep up; lower --time-scale or the offered rate, or allow more with --max-send-lag",
            lag * 1e3,
            allowed * 1e3
        ));
    }
    if load.refused_in_flight_cap > 0 {
        return Err(format!(
            "{} arrivals were refused at the load generator's in-flight cap: this machine could not keep up",
            load.refused_in_flight_cap
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_reports::fixtures::{spike_run, Spike};

    fn with_lag(p99: f64, refused: u64) -> lab_results::Results {
        let mut r = spike_run(&Spike::default());
        let lag = lab_results::LatencySummary {
            count: 1000,
            mean: p99 / 2.0,
            p50: p99 / 3.0,
            p90: p99 / 1.5,
            p95: p99 / 1.2,
            p99,
            p999: p99,
            max: p99,
        };
        r.load = Some(lab_results::LoadFigures {
            send_lag_seconds: lag,
            service_seconds: lag,
            late_over_1ms: 0,
            refused_in_flight_cap: refused,
            histograms: lab_results::LoadHistograms {
                send_lag: String::new(),
                service: String::new(),
            },
            shards: Vec::new(),
        });
        r
    }

    #[test]
    fn a_generator_that_fell_behind_fails_the_run() {
        let p50 = spike_run(&Spike::default()).summary.latency_seconds.p50;
        let allowed = KEEP_UP_SECONDS.max(0.1 * p50);
        assert!(kept_up(&with_lag(allowed * 0.9, 0), None).is_ok());
        let e = kept_up(&with_lag(allowed * 1.5, 0), None).unwrap_err();
        assert!(e.contains("could not keep up"), "{e}");
        assert!(
            kept_up(&with_lag(allowed * 1.5, 0), Some(allowed * 2.0)).is_ok(),
            "--max-send-lag allows more"
        );
        assert!(kept_up(&with_lag(0.0, 3), None)
            .unwrap_err()
            .contains("3 arrivals"));
        let mut none = with_lag(1.0, 0);
        none.load = None;
        assert!(
            kept_up(&none, None).is_ok(),
            "no load section: nothing to judge"
        );
    }
}
