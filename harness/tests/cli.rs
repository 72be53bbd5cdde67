//! The `lab` binary as users meet it: exit codes, error messages, files written.

mod common;
use common::{lab, repo, stderr};

use std::path::Path;
use std::process::Command;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const GOOD: &str = include_str!("../../scenarios/oracles/mmc.toml");

#[test]
fn misspelled_key_names_file_line_key_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "typo.toml",
        &GOOD.replace("maxReplicas = 1", "maxReplica = 1"),
    );
    let o = lab(&["validate", &f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    let line = GOOD
        .lines()
        .position(|l| l.starts_with("maxReplicas"))
        .unwrap()
        + 1;
    assert!(e.contains(&format!("typo.toml:{line}:")), "{e}");
    assert!(e.contains("services[0].maxReplica"), "{e}");
    assert!(e.contains("did you mean `maxReplicas`?"), "{e}");
}

#[test]
fn wrong_value_type_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "t.toml",
        &GOOD.replace(
            "duration = \"10m\"\nwarmup",
            "duration = \"ten minutes\"\nwarmup",
        ),
    );
    let o = lab(&["validate", &f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("t.toml:11:12") && e.contains("run.duration") && e.contains("is not a duration"),
        "{e}"
    );
}

#[test]
fn semantic_problems_are_reported_together() {
    let text = r#"
name = "bad"
[[node_pools]]
name = "a100"
gpu = "A100-40GB"
gpus_per_node = 1
price_per_hour = 3
max_nodes = 2
sharing = { strategy = "mig", layout = ["4g.20gb", "4g.20gb"] }
[[services]]
name = "m"
minReplicas = 5
maxReplicas = 2
resources = { "nvidia.com/mig-1g.5gb" = 1 }
batching = { max_batch_size = 64 }
versions = [{ name = "v1", trafficPercent = 80 }, { name = "v2", trafficPercent = 30 }]
[[services.latency]]
gpu = "A100-40GB"
batch_latency = { "1" = "2ms", "8" = "6ms" }
[[traffic]]
phases = [{ kind = "constant", rate = 10, duration = "1m" }]
"#;
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "bad.toml", text);
    let o = lab(&["validate", &f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    for expected in [
        "maxReplicas 2 is below minReplicas 5",
        "holds at most 1 instance(s) of 4g.20gb",
        "sums to 110, not 100",
        "no node pool offers nvidia.com/mig-1g.5gb",
    ] {
        assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
    }
    assert!(e.contains("problems in the scenario"), "{e}");
}

#[test]
fn batch_larger_than_the_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "b.toml",
        &GOOD.replace("max_batch_size = 1", "max_batch_size = 4"),
    );
    let o = lab(&["validate", &f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exceed the profile"), "{}", stderr(&o));
}

#[test]
fn missing_file_and_bad_set_are_bad_input() {
    let o = lab(&["run", "no/such.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no/such.toml"), "{}", stderr(&o));
    let o = lab(&[
        "validate",
        "scenarios/oracles/mmc.toml",
        "--set",
        "services.9.minReplicas=1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("none is `9`"), "{}", stderr(&o));
    let o = lab(&["run", "scenarios/oracles/mmc.toml", "--frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn run_writes_results_and_exit_code_follows_the_slos() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pass");
    let shorter = [
        "--set",
        "run.duration=\"1m\"",
        "--set",
        "traffic.0.phases.0.duration=\"1m\"",
    ];
    let mut args = vec![
        "run",
        "scenarios/oracles/mmc.toml",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
    ];
    args.extend(shorter);
    args.extend(["--set", "slo=[{ metric = \"p99\", max = \"1s\" }]"]);
    let o = lab(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["level"], "sim");
    assert_eq!(v["complete"], true);
    assert_eq!(v["slo"][0]["passed"], true);
    assert!(String::from_utf8_lossy(&o.stdout).contains("PASS p99 latency <= 1s"));

    let fail = dir.path().join("fail");
    let mut args = vec![
        "run",
        "scenarios/oracles/mmc.toml",
        "--out",
        fail.to_str().unwrap(),
        "--json",
        "--no-report",
    ];
    args.extend(shorter);
    args.extend(["--set", "slo=[{ metric = \"p99\", max = \"1ms\" }]"]);
    let o = lab(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    assert_eq!(v["slo"][0]["passed"], false);
}

#[test]
fn results_validate_against_the_committed_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("results/results.schema.json")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = lab(&[
        "run",
        "scenarios/scale-to-zero.toml",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
    ]);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn run_writes_a_report_beside_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("with-report");
    let o = lab(&[
        "run",
        "scenarios/oracles/mmc.toml",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "run.duration=\"30s\"",
        "--set",
        "traffic.0.phases.0.duration=\"30s\"",
        "--set",
        "run.warmup=\"5s\"",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html written");
    assert!(
        html.contains("<svg") && html.contains("mmc"),
        "report lacks charts"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("report.html"));
}

/// `lab run` in `cwd` (the folder `runs/` goes under) with the README's
/// comparison scenario, shortened; `extra` adds overrides.
fn comparison_run(cwd: &Path, extra: &[&str]) -> std::process::Output {
    let scenario = repo().join("scenarios/timeslice-vs-mig.toml");
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .arg("run")
        .arg(&scenario)
        .args([
            "--no-report",
            "--set",
            "run.duration=\"30s\"",
            "--set",
            "run.warmup=\"5s\"",
        ])
        .args(extra)
        .current_dir(cwd)
        .output()
        .expect("lab runs")
}

#[test]
fn two_runs_within_one_second_get_their_own_folders() {
    // The README's comparison: time-slicing, then MIG, back to back. Both
    // default folders are named after the second the run started; retried
    // until a pair lands in one second, which is the case being tested.
    let mig = "node_pools.a100.sharing={ strategy = \"mig\", layout = [\"3g.20gb\", \"3g.20gb\"] }";
    for attempt in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let a = comparison_run(dir.path(), &[]);
        let b = comparison_run(dir.path(), &["--set", mig]);
        for o in [&a, &b] {
            assert!(
                matches!(o.status.code(), Some(0) | Some(1)),
                "{}",
                stderr(o)
            );
        }
        let mut folders: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        folders.sort();
        let results: Vec<serde_json::Value> = folders
            .iter()
            .filter(|f| f.join("results.json").is_file())
            .map(|f| {
                serde_json::from_str(&std::fs::read_to_string(f.join("results.json")).unwrap())
                    .unwrap()
            })
            .collect();
        let second = |v: &serde_json::Value| {
            let t = v["wall_clock"]["started_at"].as_str().unwrap().to_string();
            t.split('.').next().unwrap().to_string()
        };
        if results.len() == 2 && second(&results[0]) != second(&results[1]) {
            eprintln!("attempt {attempt}: the runs started in different seconds; again");
            continue;
        }
        assert_eq!(
            results.len(),
            2,
            "two runs in one second, one folder: {folders:?}"
        );
        let name = folders[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            folders[1].file_name().unwrap().to_str().unwrap(),
            format!("{name}-2")
        );
        assert!(results[0]["scenario"]["overrides"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| !o.as_str().unwrap().contains("mig")));
        assert_eq!(
            results[1]["scenario"]["overrides"]
                .as_array()
                .unwrap()
                .last()
                .unwrap(),
            mig
        );
        // Each summary names its own folder.
        for (o, f) in [(&a, &folders[0]), (&b, &folders[1])] {
            let stdout = String::from_utf8_lossy(&o.stdout);
            let shown = format!(
                "{}/results.json",
                f.strip_prefix(dir.path()).unwrap().display()
            );
            assert!(stdout.contains(&shown), "{shown} not in:\n{stdout}");
        }
        // The README's next step compares the two.
        let report = Command::new(env!("CARGO_BIN_EXE_lab"))
            .arg("report")
            .args(folders.iter().map(|f| f.join("results.json")))
            .args(["-o", "compare.html"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
        assert!(stderr(&report).contains("2 runs"), "{}", stderr(&report));
        return;
    }
    panic!("no two runs started within one second in 10 attempts");
}

#[test]
fn a_named_out_folder_with_results_is_refused_unless_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let out = out.to_str().unwrap();
    let first = comparison_run(dir.path(), &["--out", out]);
    assert!(
        matches!(first.status.code(), Some(0) | Some(1)),
        "{}",
        stderr(&first)
    );
    let before = std::fs::read_to_string(dir.path().join("r/results.json")).unwrap();
    let again = comparison_run(dir.path(), &["--out", out, "--seed", "2"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already holds results.json") && stderr(&again).contains("--force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("r/results.json")).unwrap(),
        before,
        "untouched"
    );
    let forced = comparison_run(dir.path(), &["--out", out, "--seed", "2", "--force"]);
    assert!(
        matches!(forced.status.code(), Some(0) | Some(1)),
        "{}",
        stderr(&forced)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r/results.json")).unwrap())
            .unwrap();
    assert_eq!(v["seed"], 2);
}

#[test]
fn file_outputs_are_dash_o_output_and_the_old_out_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    // Nothing listens on port 9 here: every request fails at once, which is
    // enough for a results file.
    let load = |shard: &str, flag: &str, file: &str| {
        let o = lab(&[
            "load",
            "--target",
            "http://127.0.0.1:9/",
            "--protocol",
            "http",
            "--rate",
            "20",
            "--duration",
            "1s",
            "--shard",
            shard,
            flag,
            file,
        ]);
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "{flag}: {}",
            stderr(&o)
        );
        assert!(Path::new(file).is_file(), "lab load {flag} wrote no file");
    };
    load("0/3", "--output", &p("s0.json"));
    load("1/3", "-o", &p("s1.json"));
    load("2/3", "--out", &p("s2.json"));
    for flag in ["--output", "-o", "--out"] {
        let merged = p(&format!("merged{flag}.json"));
        let o = lab(&[
            "merge",
            &p("s0.json"),
            &p("s1.json"),
            &p("s2.json"),
            flag,
            &merged,
        ]);
        assert_eq!(o.status.code(), Some(0), "merge {flag}: {}", stderr(&o));
        assert!(Path::new(&merged).is_file(), "merge {flag}");
    }
    // The old spellings stay out of the help.
    for sub in ["load", "merge"] {
        let help = String::from_utf8_lossy(&lab(&[sub, "--help"]).stdout).to_string();
        assert!(help.contains("-o, --output <FILE>"), "{sub}: {help}");
        assert!(!help.contains("--out "), "{sub}: {help}");
    }
    let help = String::from_utf8_lossy(&lab(&["calibrate", "--help"]).stdout).to_string();
    assert!(help.contains("-o, --output <PROFILE.json>"), "{help}");
}

#[test]
fn calibrate_writes_with_output_and_the_old_out() {
    // Needs ONNX Runtime (scripts/install-test-deps.sh), as the predictor's tests do.
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--output", "--out"] {
        let file = dir.path().join(format!("p{flag}.json"));
        let o = lab(&[
            "calibrate",
            "--model",
            "predictor/models/iris.onnx",
            "--batch-sizes",
            "1",
            "--warmup",
            "1",
            "--repetitions",
            "2",
            flag,
            file.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(v["format"], "lab-calibration/v1");
    }
}

const SUBCOMMANDS: [&str; 11] = [
    "run",
    "compare",
    "validate",
    "check",
    "import",
    "serve",
    "calibrate",
    "load",
    "merge",
    "report",
    "plan",
];

#[test]
fn help_works_everywhere_and_lists_exit_codes() {
    let o = lab(&["help", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: lab help [COMMAND]"));
    let o = lab(&["help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Exit codes:"));
    let o = lab(&["help", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no subcommand `nope`"),
        "{}",
        stderr(&o)
    );
    for sub in SUBCOMMANDS.iter().chain(&["help"]) {
        for args in [vec![*sub, "--help"], vec![*sub, "-h"], vec!["help", *sub]] {
            let o = lab(&args);
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                text.contains(&format!("Usage: lab {sub}")),
                "{args:?}:\n{text}"
            );
            assert!(text.contains("Exit codes:\n  0 "), "{args:?}:\n{text}");
        }
    }
    let run = String::from_utf8_lossy(&lab(&["run", "--help"]).stdout).to_string();
    for said in [
        "Level of truth to run at",
        "sim:",
        "local:",
        "cluster:",
        "143",
        "Cluster level:",
        "--shards <N>",
        "--keep",
    ] {
        assert!(run.contains(said), "`{said}` missing:\n{run}");
    }
}

#[test]
fn readme_installs_lab_then_uses_flags_that_exist() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).expect("a first sh block");
    let commands: Vec<&str> = block
        .lines()
        .take(2)
        .map(|l| l.split('#').next().unwrap().trim())
        .collect();
    assert_eq!(
        commands,
        [
            "cargo install --path harness --locked",
            "lab run scenarios/spike.toml"
        ]
    );
    // Every flag the commands table shows is one the subcommand takes.
    let mut checked = 0;
    for row in readme.lines().filter(|l| l.starts_with("| `lab ")) {
        let cell = row.split(" | ").next().unwrap();
        for usage in cell.split("`, `") {
            let sub = usage
                .trim_start_matches("| `lab ")
                .trim_start_matches("lab ");
            // The subcommand's words (`cluster up`), up to the first
            // placeholder or flag.
            let words: Vec<&str> = sub
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .collect();
            let sub = words.join(" ");
            let mut args = words.clone();
            args.push("--help");
            let help = String::from_utf8_lossy(&lab(&args).stdout).to_string();
            for flag in usage
                .split(|c: char| c.is_whitespace() || "[]|`".contains(c))
                .filter(|w| w.starts_with('-'))
            {
                let flag = flag.split('=').next().unwrap();
                // The flag as a whole word, not the start of a longer one.
                let listed = help.match_indices(flag).any(|(i, _)| {
                    !help[i + flag.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '-')
                });
                assert!(
                    listed,
                    "README shows `lab {sub} {flag}`, which its help does not list"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} flags found in the README table"
    );
    for (code, _) in [("130", ""), ("143", "")] {
        assert!(readme.contains(&format!("| {code} |")), "exit code {code}");
    }
}

#[test]
fn plan_refuses_a_named_out_folder_that_holds_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.json"), "{}").unwrap();
    let out = dir.path().to_str().unwrap();
    let vary = "services.0.maxReplicas=1,2";
    let o = lab(&[
        "plan",
        "scenarios/oracles/mmc.toml",
        "--vary",
        vary,
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already holds plan.json") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("plan.json")).unwrap(),
        "{}"
    );
}
