//! The `plan-10k` figures of `scenarios/README.md`, from the same search as
//! `lab plan scenarios/plan-10k.toml --search scenarios/plan-10k.search.toml`.
//! After a deliberate change: `UPDATE_README=1 cargo test -p lab-plan --test readme_figures`,
//! then review the README's prose around the figures.

// The marker format and its checker are shared with sim/tests/examples.rs.
#[path = "../../sim/tests/readme/mod.rs"]
mod readme;

use lab_plan::{Evaluation, Outcome, Problem, Ranking};
use readme::{Figure, Format};
use std::collections::BTreeMap;
use std::path::Path;

/// `gpu=l4 batch=16 delay_us=2000 replicas=14` as knob name to choice label.
fn knobs(e: &Evaluation) -> BTreeMap<&str, &str> {
    label_knobs(&e.label)
}

fn label_knobs(label: &str) -> BTreeMap<&str, &str> {
    label
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn number(e: &Evaluation, knob: &str) -> f64 {
    knobs(e)[knob]
        .parse()
        .unwrap_or_else(|_| panic!("{}: {knob} is not a number", e.label))
}

/// The evaluated candidates on one `gpu` choice, in grid order.
fn on<'a>(o: &'a Outcome, gpu: &str) -> Vec<&'a Evaluation> {
    o.evaluated
        .iter()
        .filter(|e| knobs(e)["gpu"] == gpu)
        .collect()
}

/// The failing candidate on `gpu` with the most replicas (the first in the grid
/// of those tied).
fn largest_failing<'a>(o: &'a Outcome, gpu: &str) -> &'a Evaluation {
    let failing: Vec<&Evaluation> = on(o, gpu).into_iter().filter(|e| !e.passed()).collect();
    let most = failing
        .iter()
        .map(|e| number(e, "replicas"))
        .fold(f64::NEG_INFINITY, f64::max);
    failing
        .into_iter()
        .find(|e| number(e, "replicas") == most)
        .unwrap_or_else(|| panic!("no failing {gpu} candidate was simulated"))
}

fn figures(
    problem: &Problem,
    o: &Outcome,
    ranking: &Ranking,
    space: &lab_plan::Space,
) -> Vec<Figure> {
    use Format::*;
    let fig = Figure::new;
    let winner = ranking.passing[0];
    let second = ranking.passing[1];
    let pool = problem
        .parse(&winner.overrides)
        .unwrap_or_else(|e| panic!("{e}"));
    let pool = pool
        .node_pools
        .iter()
        .find(|p| Some(&p.name) == pool.services[0].node_pool.as_ref())
        .and_then(|p| p.gpu.clone())
        .expect("the winner's node pool names a GPU");
    let l4_failing = largest_failing(o, "l4");
    // The most L4 replicas below the load at the failing candidate's batch size.
    let l4_overloaded = o
        .overloaded
        .iter()
        .map(|(id, _)| space.label(&space.candidate(*id)))
        .filter(|l| {
            let k = label_knobs(l);
            k["gpu"] == "l4" && k["batch"] == knobs(l4_failing)["batch"]
        })
        .filter_map(|l| label_knobs(&l)["replicas"].parse::<u32>().ok())
        .max()
        .expect("no L4 candidate is below the load");
    let l4_passing = *ranking
        .passing
        .iter()
        .find(|e| knobs(e)["gpu"] == "l4")
        .expect("no L4 candidate passes");
    let a10g_failing = largest_failing(o, "a10g");
    let delay = |e: &Evaluation| number(e, "delay_us") / 1e6;
    vec![
        fig("plan-10k.grid", o.grid_size as f64, Count),
        Figure::word("plan-10k.winner.gpu", &pool),
        fig(
            "plan-10k.winner.replicas",
            number(winner, "replicas"),
            Count,
        ),
        fig("plan-10k.winner.batch", number(winner, "batch"), Count),
        fig("plan-10k.winner.delay", delay(winner), Millis(0)),
        fig(
            "plan-10k.winner.monthly",
            winner.monthly_cost_usd(),
            UsdPerMonth,
        ),
        fig("plan-10k.winner.p99", winner.p99_seconds(), Millis(1)),
        fig("plan-10k.seed_first", o.seeds[0] as f64, Count),
        fig(
            "plan-10k.seed_last",
            o.seeds[o.seeds.len() - 1] as f64,
            Count,
        ),
        fig("plan-10k.second.delay", delay(second), Millis(0)),
        fig(
            "plan-10k.second.monthly",
            second.monthly_cost_usd(),
            UsdPerMonth,
        ),
        fig("plan-10k.second.p99", second.p99_seconds(), Millis(1)),
        fig("plan-10k.l4.overloaded", l4_overloaded.into(), Count),
        fig(
            "plan-10k.l4.failing.replicas",
            number(l4_failing, "replicas"),
            Count,
        ),
        fig(
            "plan-10k.l4.failing.p99",
            l4_failing.p99_seconds(),
            Millis(0),
        ),
        fig(
            "plan-10k.l4.failing.batch",
            number(l4_failing, "batch"),
            Count,
        ),
        fig(
            "plan-10k.l4.passing.replicas",
            number(l4_passing, "replicas"),
            Count,
        ),
        fig(
            "plan-10k.l4.passing.batch",
            number(l4_passing, "batch"),
            Count,
        ),
        fig(
            "plan-10k.l4.passing.monthly",
            l4_passing.monthly_cost_usd(),
            UsdPerMonth,
        ),
        fig(
            "plan-10k.a10g.failing.replicas",
            number(a10g_failing, "replicas"),
            Count,
        ),
        fig(
            "plan-10k.a10g.failing.gpu_busy",
            a10g_failing.gpu_utilization(),
            Percent(0),
        ),
        fig(
            "plan-10k.a10g.failing.p99",
            a10g_failing.p99_seconds(),
            Millis(0),
        ),
        fig("plan-10k.evaluated", o.evaluated.len() as f64, Count),
        fig("plan-10k.overloaded", o.overloaded.len() as f64, Count),
        fig("plan-10k.simulations", o.simulations as f64, Count),
    ]
}

#[test]
fn readme_figures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let read = |p: &str| {
        std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("reading {p}: {e}"))
    };
    let file = root.join("scenarios/plan-10k.toml");
    let base = lab_scenario::load(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
    let space = lab_plan::parse_search_file(
        &read("scenarios/plan-10k.search.toml"),
        "scenarios/plan-10k.search.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // As `lab plan` builds it, with the scenario's own seed.
    let problem = Problem {
        text: read("scenarios/plan-10k.toml"),
        file: file.display().to_string(),
        base_dir: root.join("scenarios"),
        seed: base.run.seed,
    };
    let outcome = lab_plan::search(&problem, &space, &mut |_| true);
    let ranking = lab_plan::rank(&outcome, space.settings.nearest_failures);
    readme::check(&figures(&problem, &outcome, &ranking, &space), |key| {
        key.starts_with("plan-10k.")
    });
}
