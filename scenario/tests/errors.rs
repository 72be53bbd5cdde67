//! What a user reads when a scenario is wrong: every structural and semantic
//! problem at once, each at its place in the file as written or named by the
//! `--set` it came from, in words rather than Rust types.

use lab_scenario::{load_checked, parse, ScenarioError};
use std::path::Path;

const MIG_EXAMPLE: &str = include_str!("../../scenarios/timeslice-vs-mig.toml");
const EXAMPLES: &[&str] = &[
    "spike.toml",
    "steady-10k.toml",
    "scale-to-zero.toml",
    "timeslice-vs-mig.toml",
    "keda-queue.toml",
    "diurnal-cost.toml",
    "plan-10k.toml",
    "oracles/mmc.toml",
];

fn base() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn errors(text: &str, overrides: &[&str]) -> ScenarioError {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match parse(text, "f.toml", &base(), &o) {
        Ok(_) => panic!("expected problems with {overrides:?}"),
        Err(e) => e,
    }
}

/// 1-based line of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines().position(|l| l.starts_with(prefix)).unwrap() + 1
}

#[test]
fn an_override_error_names_the_override_not_a_line_of_the_file() {
    let e = errors(MIG_EXAMPLE, &["services.0.maxReplicas=lots"]);
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    assert_eq!(e.diagnostics[0].line, None);
    insta::assert_snapshot!("set_wrong_type", e.to_string());
    let e = errors(MIG_EXAMPLE, &[r#"gateway.routing="random""#]);
    assert_eq!(e.diagnostics[0].line, None, "{e}");
    insta::assert_snapshot!("set_unknown_variant", e.to_string());
}

#[test]
fn file_positions_stay_exact_next_to_overrides() {
    // A typo in the file, overrides before it that add lines when re-rendered.
    let text = MIG_EXAMPLE.replace("modelMemory = \"8Gi\"", "modelMemroy = \"8Gi\"");
    let e = errors(
        &text,
        &[
            r#"node_pools.a100.sharing={ strategy = "mig", layout = ["3g.20gb", "3g.20gb"] }"#,
            "gateway.activator_queue_limit=5",
            "services.0.autoscaler.fixed.replicas=1",
        ],
    );
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    let d = &e.diagnostics[0];
    assert_eq!(d.line, Some(line_of(&text, "modelMemroy")), "{e}");
    assert_eq!(d.column, Some(1), "{e}");
    insta::assert_snapshot!("file_typo_with_overrides", e.to_string());
}

#[test]
fn helm_brackets_select_by_index_and_by_name() {
    let o = [
        "services[0].maxReplicas=3".to_string(),
        "services[ranker].minReplicas=1".to_string(),
        r#"services[ranker].resources."nvidia.com/gpu"=1"#.to_string(),
        r#"node_pools[a100].sharing.replicas=3"#.to_string(),
    ];
    let s = parse(MIG_EXAMPLE, "f.toml", &base(), &o).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.services[0].max_replicas, 3);
    assert_eq!(s.node_pools[0].sharing.slots_per_gpu(), 3);
    let e = errors(MIG_EXAMPLE, &["services[ranker].maxReplicas=many"]);
    insta::assert_snapshot!("helm_path_wrong_type", e.to_string());
}

#[test]
fn three_bad_overrides_are_all_reported() {
    let e = errors(
        MIG_EXAMPLE,
        &[
            "services.0.maxReplicas=lots",
            r#"gateway.routing="random""#,
            "services[ranker].minReplica=2",
        ],
    );
    assert_eq!(e.diagnostics.len(), 3, "{e}");
    insta::assert_snapshot!("three_bad_overrides", e.to_string());
}

#[test]
fn four_mistakes_in_a_file_are_all_reported() {
    let text = MIG_EXAMPLE
        .replace("seed = 11", "seed = \"eleven\"")
        .replace("maxReplicas = 1\nresources = { cpu = \"4\", memory = \"16Gi\", \"nvidia.com/gpu\" = 1 }\nmodelMemory = \"6Gi\"",
                 "maxReplica = 1\nresources = { cpu = \"4\", memory = \"16Gi\", \"nvidia.com/gpu\" = 1 }\nmodelMemory = \"6Gi\"")
        .replace("[[slo]]\nmetric = \"p99\"\nservice = \"ranker\"", "[[slo]]\nmetric = \"p99\"\nservise = \"ranker\"")
        .replace("rate = 400", "rate = -400");
    let e = errors(&text, &[]);
    assert_eq!(e.diagnostics.len(), 4, "{e}");
    let mut lines: Vec<_> = e.diagnostics.iter().map(|d| d.line.unwrap()).collect();
    lines.sort();
    let mut want = vec![
        line_of(&text, "seed"),
        line_of(&text, "maxReplica "),
        line_of(&text, "phases = [{ kind = \"constant\", rate = -400"),
        line_of(&text, "servise"),
    ];
    want.sort();
    assert_eq!(lines, want, "{e}");
    insta::assert_snapshot!("four_mistakes", e.to_string());
}

#[test]
fn missing_sections_say_what_to_add() {
    let no_traffic = &MIG_EXAMPLE[..MIG_EXAMPLE.find("[[traffic]]").unwrap()];
    insta::assert_snapshot!("missing_traffic", errors(no_traffic, &[]).to_string());
    let no_latency = MIG_EXAMPLE.replacen(
        "[[services.latency]]\ngpu = \"A100-40GB\"\nbatch_latency = { \"1\" = \"2ms\", \"8\" = \"5ms\" }\ndistribution = { kind = \"lognormal\", cv = 0.1 }\n",
        "",
        1,
    );
    insta::assert_snapshot!("missing_latency", errors(&no_latency, &[]).to_string());
}

/// Words that name Rust types, not what the file holds.
const RUST_TYPES: &[&str] = &[
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "String",
    "str",
    "Vec",
    "Option",
    "BTreeMap",
    "HashMap",
    "struct",
    "enum",
    "Dur",
    "Quantity",
    "Phase",
    "Sharing",
    "Arrivals",
    "BoundValue",
    "Scalar",
    "Scenario",
    "RunSpec",
    "ServiceSpec",
    "NodePoolSpec",
    "TrafficSpec",
    "SloSpec",
    "AutoscalerSpec",
    "BatchingSpec",
    "LatencySpec",
    "Routing",
    "CapacityType",
    "ServiceDistribution",
];

/// The words of a message outside backquotes (quoted text is the user's own).
fn words_outside_quotes(m: &str) -> Vec<String> {
    m.split('`')
        .step_by(2)
        .flat_map(|part| {
            part.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn no_message_names_a_rust_type() {
    let file_edits: &[(&str, &str)] = &[
        ("seed = 11", "seed = \"x\""),
        ("seed = 11", "seed = -3"),
        ("seed = 11", "seed = 1.5"),
        ("gpus_per_node = 1", "gpus_per_node = 99999999999"),
        ("gpus_per_node = 1", "gpus_per_node = \"one\""),
        ("price_per_hour = 3.67", "price_per_hour = \"cheap\""),
        ("name = \"timeslice-vs-mig\"", "name = 3"),
        ("name = \"timeslice-vs-mig\"", "name = []"),
        ("[run]", "run = 5\n[unused]"),
        ("duration = \"20m\"", "duration = true"),
        ("cpu = \"12\"", "cpu = [12]"),
        (
            "sharing = { strategy = \"time-slicing\", replicas = 2 }",
            "sharing = \"mig\"",
        ),
        (
            "sharing = { strategy = \"time-slicing\", replicas = 2 }",
            "sharing = { strategy = 5 }",
        ),
        (
            "sharing = { strategy = \"time-slicing\", replicas = 2 }",
            "sharing = { strategy = \"time-slicing\", replicas = \"2\" }",
        ),
        ("minReplicas = 1", "minReplicas = -1"),
        ("minReplicas = 1", "minReplicas = {}"),
        ("resources = { cpu = \"4\"", "resources = { cpu = true"),
        ("modelMemory = \"6Gi\"", "modelMemory = \"lots\""),
        (
            "batching = { max_batch_size = 8",
            "batching = { max_batch_size = \"8\"",
        ),
        ("autoscaler.fixed = {}", "autoscaler = \"fixed\""),
        ("autoscaler.fixed = {}", "autoscaler.hpa = 3"),
        (
            "distribution = { kind = \"lognormal\", cv = 0.1 }",
            "distribution = { kind = \"lognormal\", cv = \"x\" }",
        ),
        (
            "distribution = { kind = \"lognormal\", cv = 0.1 }",
            "distribution = \"lognormal\"",
        ),
        (
            "batch_latency = { \"1\" = \"2ms\"",
            "batch_latency = { \"1\" = [2]",
        ),
        (
            "arrivals = { process = \"poisson\" }",
            "arrivals = { process = \"poison\" }",
        ),
        (
            "arrivals = { process = \"gamma\", cv = 2.0 }",
            "arrivals = { process = \"gamma\", cv = \"2\" }",
        ),
        ("rate = 600", "rate = \"600\""),
        ("rate = 600", "rate = [600]"),
        (
            "phases = [{ kind = \"constant\", rate = 600, duration = \"20m\" }]",
            "phases = { kind = \"constant\" }",
        ),
        (
            "phases = [{ kind = \"constant\", rate = 600, duration = \"20m\" }]",
            "phases = [5]",
        ),
        ("max = \"50ms\"", "max = true"),
        ("max = \"50ms\"", "max = [1]"),
        ("metric = \"p99\"", "metric = 99"),
        ("[[slo]]", "slo = 5\n[[unused]]"),
        ("[[node_pools]]", "[node_pools]"),
        (
            "[[services]]\nname = \"classifier\"",
            "[[services]]\nname = \"classifier\"\nversions = [1]",
        ),
        (
            "[[services]]\nname = \"classifier\"",
            "[[services]]\nname = \"classifier\"\ncapacity_type = 1",
        ),
        (
            "price_per_hour = 3.67",
            "price_per_hour = 3.67\ncapacity_type = 5",
        ),
        (
            "price_per_hour = 3.67",
            "price_per_hour = 3.67\ninitial_nodes = \"two\"",
        ),
    ];
    let set_edits: &[&str] = &[
        "services.0.maxReplicas=lots",
        "services.0.timeout=[1]",
        "services.0.coldStart.model_load=fast",
        "services.0.batching.preferred_batch_size=[\"a\"]",
        "services.0.batching.instances=1.5",
        "services.0.autoscaler={ kpa = { target = \"x\" } }",
        "services.0.autoscaler={ keda = { triggers = [{ type = \"prometheus\", metadata = { threshold = [1] } }] } }",
        "services.0.autoscaler={ hpa = { metrics = 5 } }",
        "services.0.containerConcurrency=-5",
        "node_pools.0.contention=5",
        "node_pools.0.min_nodes=0.5",
        "node_pools.0.spot_interruptions_per_hour=often",
        "cluster_autoscaler.enabled=yes",
        "cluster_autoscaler=1",
        "metrics.scrape_interval=[]",
        "traffic.0.rows_per_request=-1",
        "traffic.0.service=7",
        "slo.0.threshold=5",
        "gateway=true",
        "run.warmup={}",
    ];
    let mut all = Vec::new();
    for (from, to) in file_edits {
        assert!(MIG_EXAMPLE.contains(from), "{from}");
        let text = MIG_EXAMPLE.replacen(from, to, 1);
        let o: Vec<String> = Vec::new();
        match parse(&text, "f.toml", &base(), &o) {
            Ok(_) => panic!("{to} was accepted"),
            Err(e) => all.extend(e.diagnostics.into_iter().map(|d| (to.to_string(), d))),
        }
    }
    for set in set_edits {
        let e = errors(MIG_EXAMPLE, &[set]);
        all.extend(e.diagnostics.into_iter().map(|d| (set.to_string(), d)));
    }
    for (input, d) in &all {
        let words = words_outside_quotes(&d.message);
        let found: Vec<_> = words
            .iter()
            .filter(|w| RUST_TYPES.contains(&w.as_str()))
            .collect();
        assert!(found.is_empty(), "{input}: {found:?} in: {d}");
    }
    let text: Vec<String> = all.iter().map(|(i, d)| format!("{i}\n  {d}")).collect();
    insta::assert_snapshot!("plain_words", text.join("\n"));
}

#[test]
fn a_mig_layout_without_room_for_every_min_replica_is_refused() {
    let file = base().join("timeslice-vs-mig.toml");
    let o = [r#"node_pools.a100.sharing={ strategy = "mig", layout = ["7g.40gb"] }"#.to_string()];
    let e = load_checked(&file, &o).expect_err("one 7g.40gb instance cannot hold two pods");
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    let m = &e.diagnostics[0].message;
    for part in [
        "`ranker`",
        "pool `a100`",
        "nvidia.com/mig-7g.40gb",
        "max_nodes = 1",
        "`classifier`",
    ] {
        assert!(m.contains(part), "{part}: {m}");
    }
    // The minReplicas it concerns is the file's: its line there (the second service's).
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("minReplicas"))
        .nth(1)
        .map(|(i, _)| i + 1);
    assert_eq!(e.diagnostics[0].line, line, "{e}");
    assert_eq!(line, Some(44));
    // `lab run` goes on (and warns); only the check `lab validate` makes refuses.
    assert!(lab_scenario::load(&file, &o).is_ok());
    let text = e
        .to_string()
        .replace(&base().display().to_string(), "scenarios");
    insta::assert_snapshot!("mig_no_room", text);
}

#[test]
fn pools_too_small_for_min_replicas_are_all_refused_at_once() {
    let file = base().join("timeslice-vs-mig.toml");
    let o: Vec<String> = [
        // Three ranker pods where two slots are left, and two of its models on
        // one time-sliced GPU.
        "services.classifier.minReplicas=2",
        "services.classifier.maxReplicas=2",
        "node_pools.a100.max_nodes=2",
        "services.ranker.minReplicas=3",
        "services.ranker.maxReplicas=3",
        "services.ranker.modelMemory=36Gi",
    ]
    .map(String::from)
    .to_vec();
    let e = load_checked(&file, &o).expect_err("three ranker pods do not fit");
    let text = e
        .to_string()
        .replace(&base().display().to_string(), "scenarios");
    insta::assert_snapshot!("pools_too_small", text);
}

#[test]
fn every_example_passes_the_placement_check() {
    for f in EXAMPLES {
        if let Err(e) = load_checked(&base().join(f), &[]) {
            panic!("{f}: {e}");
        }
    }
}

#[test]
fn a_cv_only_gamma_uses_is_refused_elsewhere_and_required_there() {
    let e = errors(
        MIG_EXAMPLE,
        &[r#"traffic.0.arrivals={ process = "poisson", cv = 1 }"#],
    );
    let text = e.to_string();
    assert!(
        text.contains("`cv` applies only to process = \"gamma\""),
        "{text}"
    );
    let e = errors(
        MIG_EXAMPLE,
        &[r#"traffic.1.arrivals={ process = "gamma" }"#],
    );
    assert!(
        e.to_string()
            .contains("missing `cv`: process = \"gamma\" needs"),
        "{e}"
    );
    // A misspelt process is read as the closest one, so `cv` is not blamed too.
    let e = errors(
        MIG_EXAMPLE,
        &[r#"traffic.1.arrivals={ process = "gama", cv = 2 }"#],
    );
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    assert!(e.to_string().contains("did you mean `gamma`?"), "{e}");
}
