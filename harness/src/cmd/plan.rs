//! `lab plan`: the cheapest configuration that holds a scenario's SLOs, found by
//! simulating a search space of overrides.

use crate::exit;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
#[command(after_help = "\
The scenario's SLOs are the constraint and its monthly cost the objective.

Search file (TOML):
  [plan]                      # all optional
  seeds = 3                   # seeds every finalist must pass
  finalists = 3               # cheapest passing candidates re-run with all seeds
  budget = 60                 # most simulations in all
  round = 4                   # candidates simulated together per round

  [[knobs]]                   # a knob: one key and its values
  name = \"replicas\"
  key = \"services.0.autoscaler.fixed.replicas\"
  values = [4, 6, 8, 12, 16]
  monotone = true             # ascending capacity and cost: bisected
                              # (fixed counts only; under an autoscaler
                              # cost need not rise with minReplicas)

  [[knobs]]                   # an autoscaler's target is a knob like any other
  name = \"target\"
  key = \"services.0.autoscaler.hpa.metrics.0.pods.target.averageValue\"
  values = [\"4\", \"8\", \"16\"]

  [[knobs]]                   # or labelled options, each a set of overrides
  name = \"gpu\"
  options = [
    { label = \"l4\", set = { \"services.0.nodePool\" = \"l4\" } },
    { label = \"a100-mig\", set = { \"services.0.nodePool\" = \"a100\",
      \"node_pools.a100.sharing\" = { strategy = \"mig\", layout = [\"3g.20gb\", \"3g.20gb\"] } } },
  ]

Writes DIR/plan.json, DIR/plan.html (the cost/p99 front) and DIR/winner.toml
(the scenario with the winning overrides applied).

Exit codes:
  0    a configuration passed every SLO
  1    nothing in the space passed
  2    bad input (scenario, search file, flags, an --out DIR that holds a plan)
  3    the search itself failed (I/O)
  130  interrupted (Ctrl-C) after the round under way; the best so far was written
  143  stopped by SIGTERM after the round under way; the best so far was written
A second Ctrl-C or SIGTERM exits at once (130 or 143), writing nothing.")]
pub struct Args {
    /// Scenario file (TOML) whose SLOs the plan must hold.
    pub scenario: PathBuf,
    /// Search file (TOML) declaring the knobs; see below.
    #[arg(long, value_name = "FILE", conflicts_with = "vary")]
    pub search: Option<PathBuf>,
    /// A quick grid knob: a key path and its values, e.g.
    /// `--vary services.0.autoscaler.fixed.replicas=4,8,12,16` or
    /// `--vary 'services.0.nodePool="t4","l4"'`. Repeatable; the grid is the
    /// product. A `...fixed.replicas` or `...instances` knob with ascending values
    /// is bisected.
    #[arg(long, value_name = "KEY.PATH=V1,V2,...")]
    pub vary: Vec<String>,
    /// Most simulations in all, finalists' extra seeds included (overrides the
    /// search file's `budget`). The best found so far is reported when it runs out.
    #[arg(long, value_name = "N")]
    pub budget: Option<usize>,
    /// Seeds every finalist must pass with (overrides the search file's `seeds`).
    #[arg(long, value_name = "N")]
    pub seeds: Option<u32>,
    /// Simulate every candidate with one seed instead of searching (slow; for
    /// checking the search against the full grid).
    #[arg(long)]
    pub exhaustive: bool,
    /// Output folder [default: plans/<scenario-name>-<timestamp>/, with -2, -3,
    /// ... added when that is taken]. A folder that already holds a plan.json is
    /// refused unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite the plan in an existing --out DIR.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Primary seed; finalists also run seed+1, seed+2, ... Defaults to the
    /// scenario's `run.seed`.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Print plan.json to stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let base =
        lab_scenario::load(&args.scenario, &[]).map_err(|e| exit::bad_input(e.to_string()))?;
    let text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| exit::bad_input(format!("cannot read {}: {e}", args.scenario.display())))?;
    let mut space = match (&args.search, args.vary.is_empty()) {
        (Some(file), _) => {
            let t = std::fs::read_to_string(file)
                .map_err(|e| exit::bad_input(format!("cannot read {}: {e}", file.display())))?;
            lab_plan::parse_search_file(&t, &file.display().to_string()).map_err(exit::bad_input)?
        }
        (None, false) => lab_plan::from_vary(&args.vary, lab_plan::Settings::default())
            .map_err(exit::bad_input)?,
        (None, true) => {
            return Err(exit::bad_input(
                "give a search space: --search FILE, or --vary KEY.PATH=V1,V2,... (repeatable)",
            ))
        }
    };
    if let Some(b) = args.budget {
        if b == 0 {
            return Err(exit::bad_input(
                "--budget 0 allows no simulation; use 1 or more",
            ));
        }
        space.settings.budget = Some(b);
    }
    if let Some(s) = args.seeds {
        space.settings.seeds = s;
    }
    lab_plan::space::check_settings(&space.settings, "--seeds / search file")
        .map_err(exit::bad_input)?;
    // Every choice's overrides must reach into the scenario (array entries
    // that exist); unknown keys surface per candidate when it is parsed.
    for knob in &space.knobs {
        for choice in &knob.choices {
            if let Err(e) = lab_plan::apply_overrides(&text, &choice.sets) {
                return Err(exit::bad_input(format!("knob `{}`: {e}", knob.name)));
            }
        }
    }
    if base.slo.is_empty() {
        eprintln!(
            "note: {} states no [[slo]]: every configuration passes and the plan is simply \
             the cheapest (then the lowest p99); add SLOs to constrain it",
            args.scenario.display()
        );
    }
    let problem = lab_plan::Problem {
        text,
        file: args.scenario.display().to_string(),
        base_dir: args
            .scenario
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
        seed: args.seed.unwrap_or(base.run.seed),
    };

    // A named folder is checked before the search, not after it.
    let named = match &args.out {
        Some(dir) => Some(super::named_dir(dir, "plan.json", args.force)?),
        None => None,
    };
    let stamp = super::run::compact_stamp(std::time::SystemTime::now());
    // The round under way finishes, then the best so far is written.
    let interrupt = crate::interrupt::Interrupt::install("stopping after the round under way")?;
    let show = std::io::stderr().is_terminal();
    let wall = Instant::now();
    let mut progress = |p: &lab_plan::Progress| {
        if show {
            let best = p
                .best
                .as_ref()
                .map_or("none passing yet".to_string(), |(l, c)| {
                    format!("best {}/month: {l}", lab_plan::output::usd(*c))
                });
            eprint!(
                "\r\x1b[K  {} simulations ({} candidates in the grid), {:.0}s; {best}",
                p.simulations,
                p.grid_size,
                wall.elapsed().as_secs_f64()
            );
        }
        !interrupt.requested()
    };
    let outcome = if args.exhaustive {
        lab_plan::exhaustive(&problem, &space, &mut progress)
    } else {
        lab_plan::search(&problem, &space, &mut progress)
    };
    if show {
        eprintln!();
    }
    if outcome.evaluated.is_empty() && !outcome.invalid.is_empty() && outcome.overloaded.is_empty()
    {
        let (id, e) = &outcome.invalid[0];
        return Err(exit::bad_input(format!(
            "every candidate is rejected by the scenario; the first ({}) with: {e}",
            space.label(&space.candidate(*id))
        )));
    }
    let ranking = lab_plan::rank(&outcome, space.settings.nearest_failures);
    let dir = match named {
        Some(dir) => dir,
        None => super::fresh_dir(&PathBuf::from("plans").join(format!("{}-{stamp}", base.name)))?,
    };
    lab_plan::write_outputs(
        &dir,
        &problem,
        &outcome,
        &ranking,
        lab_plan::p99_bound(&base),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    if args.json {
        let v = lab_plan::output::json(&outcome, &ranking, &problem);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!(
            "{}",
            lab_plan::output::table(&outcome, &ranking, Some(&dir))
        );
        if show {
            eprintln!("  took {:.1}s", wall.elapsed().as_secs_f64());
        }
    }
    Ok(if outcome.interrupted {
        interrupt.exit_code()
    } else if outcome.winner.is_some() {
        exit::PASS
    } else {
        exit::SLO_FAILED
    })
}
