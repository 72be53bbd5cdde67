//! Writes sample results and reports: a spike run and a time-slicing vs MIG
//! comparison (the screenshots in docs/ come from these).
//!
//!     cargo run -p lab-reports --features fixtures --example sample -- OUT_DIR

use lab_reports::fixtures::{spike_run, Spike};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/report-samples".into()),
    );
    std::fs::create_dir_all(&out)?;
    let spike = spike_run(&Spike::default());
    std::fs::write(
        out.join("spike.json"),
        serde_json::to_string_pretty(&spike)?,
    )?;
    lab_reports::write_report(&out.join("report-spike.html"), &spike)?;

    let sliced = spike_run(&Spike {
        name: "resnet-gpu-sharing".into(),
        overrides: vec!["gpu.sharing=time-slicing".into()],
        replicas_per_node: 7,
        replica_rps: 48.0,
        ..Spike::default()
    });
    let mig = spike_run(&Spike {
        name: "resnet-gpu-sharing".into(),
        overrides: vec!["gpu.sharing=mig-3g.40gb".into()],
        replicas_per_node: 2,
        replica_rps: 70.0,
        cold_start_seconds: 75.0,
        ..Spike::default()
    });
    std::fs::write(
        out.join("time-slicing.json"),
        serde_json::to_string_pretty(&sliced)?,
    )?;
    std::fs::write(out.join("mig.json"), serde_json::to_string_pretty(&mig)?)?;
    let page =
        lab_reports::render_html_labeled(&[("time-slicing", &sliced), ("MIG 3g.40gb", &mig)])?;
    std::fs::write(out.join("report-compare.html"), page)?;
    println!("wrote samples to {}", out.display());
    Ok(())
}
