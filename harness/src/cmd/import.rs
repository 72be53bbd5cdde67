//! `lab import MANIFEST.yaml`: an HPA (autoscaling/v2), KEDA ScaledObject or KServe
//! InferenceService manifest to a scenario's `[services.autoscaler]` table.

use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = crate::exit::IMPORT_HELP)]
pub struct Args {
    /// The manifest: a HorizontalPodAutoscaler, ScaledObject or InferenceService (YAML,
    /// several documents allowed; the first autoscaling object is used).
    pub manifest: PathBuf,
    /// Write the TOML here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.manifest).map_err(|e| {
        crate::exit::bad_input(format!("cannot read {}: {e}", args.manifest.display()))
    })?;
    let imported = lab_import::import_yaml(&text)
        .map_err(|e| crate::exit::bad_input(format!("{}: {e}", args.manifest.display())))?;
    for n in &imported.notes {
        eprintln!("note: {n}");
    }
    for (key, msg) in &imported.problems {
        eprintln!("warning: autoscaler.{key}: {msg}");
    }
    let toml = imported.to_toml();
    match &args.output {
        Some(path) => {
            std::fs::write(path, toml).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{toml}"),
    }
    Ok(crate::exit::PASS)
}
