//! `lab import MANIFEST.yaml` (or `-f FILE`, `-f -` for standard input): an HPA
//! (autoscaling/v2), KEDA ScaledObject or KServe InferenceService manifest to a
//! scenario's `[services.autoscaler]` table.

use anyhow::Context;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = crate::exit::IMPORT_HELP)]
pub struct Args {
    /// The manifest: a HorizontalPodAutoscaler, ScaledObject or InferenceService (YAML,
    /// several documents allowed; the first autoscaling object is used). `-` reads
    /// standard input.
    #[arg(required_unless_present = "filename", conflicts_with = "filename")]
    pub manifest: Option<PathBuf>,
    /// The manifest, as kubectl spells it: `kubectl get hpa web -o yaml | lab import -f -`.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: Option<PathBuf>,
    /// Write the TOML here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let Some(path) = args.filename.or(args.manifest) else {
        return Err(crate::exit::bad_input(
            "give a manifest: lab import FILE (or -f -)",
        ));
    };
    let (name, text) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| crate::exit::bad_input(format!("cannot read standard input: {e}")))?;
        ("<stdin>".to_string(), text)
    } else {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| crate::exit::bad_input(format!("cannot read {}: {e}", path.display())))?;
        (path.display().to_string(), text)
    };
    let imported =
        lab_import::import_yaml(&text).map_err(|e| crate::exit::bad_input(e.in_file(&name)))?;
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
