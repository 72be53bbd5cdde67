//! The rendered text itself, for review: a change to any manifest shows up
//! as a snapshot diff (`INSTA_UPDATE=always cargo test -p lab-deploy` accepts it).

mod common;

use common::render_example;
use lab_deploy::Mode;

fn all_files(r: &lab_deploy::Rendered) -> String {
    let mut out = String::new();
    for (name, text) in &r.files {
        out.push_str(&format!("=== {name}\n{text}"));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

#[test]
fn spike_in_raw_mode() {
    insta::assert_snapshot!(all_files(&render_example("spike", Mode::Raw, &[], &[])));
}

#[test]
fn scale_to_zero_in_serverless_mode() {
    insta::assert_snapshot!(all_files(&render_example(
        "scale-to-zero",
        Mode::Serverless,
        &[],
        &[]
    )));
}

#[test]
fn timeslicing_with_real_models_on_gpus() {
    insta::assert_snapshot!(all_files(&render_example(
        "timeslice-vs-mig",
        Mode::Raw,
        &[],
        &[
            ("classifier", "s3://models/classifier"),
            ("ranker", "s3://models/ranker")
        ]
    )));
}

#[test]
fn keda_on_a_prometheus_query() {
    insta::assert_snapshot!(all_files(&render_example(
        "keda-queue",
        Mode::Raw,
        &[common::KEDA_PROMETHEUS],
        &[]
    )));
}
