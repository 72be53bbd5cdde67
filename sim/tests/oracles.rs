//! The simulator against queueing theory, each within a confidence interval
//! computed from independent replications.

mod common;
use common::*;

/// Student t quantile for 99% two-sided with 9 degrees of freedom.
const T99_9DF: f64 = 3.25;
const SEEDS: u64 = 10;

fn erlang_c(c: u32, a: f64) -> f64 {
    // Erlang B by recursion, then C = B / (1 - rho (1 - B)).
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    let rho = a / f64::from(c);
    b / (1.0 - rho * (1.0 - b))
}

/// Asserts that `figure` over independent seeds of `text` matches `theory`
/// within a 99% confidence interval plus `slack` (relative) for model bias.
fn assert_matches(
    text: &str,
    figure: fn(&lab_results::Results) -> f64,
    theory: f64,
    slack: f64,
    what: &str,
) {
    let xs: Vec<f64> = (0..SEEDS).map(|s| figure(&run(text, s))).collect();
    let (m, se) = mean_se(&xs);
    assert!(
        (m - theory).abs() < T99_9DF * se + slack * theory,
        "simulated {m:.6} +- {se:.6}, {what} {theory:.6}"
    );
}

fn mean_wait(r: &lab_results::Results) -> f64 {
    r.summary.queue_seconds.mean
}

#[test]
fn mmc_mean_wait_matches_erlang_c() {
    let (lambda, mu, c) = (800.0, 100.0, 10);
    let wq = erlang_c(c, lambda / mu) / (f64::from(c) * mu - lambda);
    assert!((wq - 0.002046).abs() < 2e-5, "formula check {wq}");
    let text = queue_scenario(lambda, 10.0, c, "exponential", 6);
    assert_matches(&text, mean_wait, wq, 0.02, "Erlang C W_q");
}

#[test]
fn md1_mean_wait_matches_pollaczek_khinchine() {
    let (lambda, d) = (80.0, 0.010);
    let rho = lambda * d;
    let wq = rho * d / (2.0 * (1.0 - rho));
    let text = queue_scenario(lambda, 10.0, 1, "deterministic", 20);
    assert_matches(&text, mean_wait, wq, 0.02, "Pollaczek-Khinchine W_q");
}

#[test]
fn mm1_sojourn_p99_matches_the_exponential_tail() {
    // M/M/1 sojourn is Exp(mu - lambda): p99 = ln(100) / (mu - lambda).
    let (lambda, mu) = (70.0, 100.0);
    let p99 = libm::log(100.0) / (mu - lambda);
    let text = queue_scenario(lambda, 10.0, 1, "exponential", 20);
    // HdrHistogram adds at most 0.1% quantisation.
    assert_matches(
        &text,
        |r| r.summary.latency_seconds.p99,
        p99,
        0.01,
        "exponential-tail p99",
    );
}

#[test]
fn littles_law_holds_for_the_queue() {
    let lambda = 800.0;
    let text = queue_scenario(lambda, 10.0, 10, "exponential", 10);
    let mut ratios = Vec::new();
    for seed in 0..SEEDS {
        let r = run(&text, seed);
        let after_warmup: Vec<f64> = r
            .timeseries
            .iter()
            .filter(|p| p.t_seconds >= r.run.warmup_seconds)
            .map(|p| p.queue_depth as f64)
            .collect();
        let lq = after_warmup.iter().sum::<f64>() / after_warmup.len() as f64;
        ratios.push(lq / (lambda * r.summary.queue_seconds.mean));
    }
    let (m, se) = mean_se(&ratios);
    assert!(
        (m - 1.0).abs() < T99_9DF * se + 0.03,
        "L_q / (lambda W_q) = {m:.4} +- {se:.4}"
    );
}
