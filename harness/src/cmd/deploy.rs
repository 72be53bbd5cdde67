//! `lab deploy SCENARIO --render DIR`: the manifests a cluster runs, rendered
//! from the scenario by lab-deploy and written one file per object kind.

use crate::exit;
use anyhow::Context;
use lab_deploy::{Mode, Options};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(after_help = crate::exit::DEPLOY_HELP)]
pub struct Args {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Write the manifests into this folder (created if missing; files an
    /// earlier render wrote there are replaced, other files are left alone).
    #[arg(long, value_name = "DIR")]
    pub render: PathBuf,
    /// serverless: Knative Serving under KServe (KPA, scale to zero);
    /// raw: KServe RawDeployment with an HPA or KEDA ScaledObject. Default: the
    /// mode the scenario's autoscalers need (raw for KEDA and HPA custom metrics).
    #[arg(long, value_parser = ["serverless", "raw"])]
    pub mode: Option<String>,
    /// The lab image pods run (`deploy/image/build.sh` prints its tag).
    #[arg(long, value_name = "REF", default_value_t = default_image())]
    pub image: String,
    /// Namespace for the scenario's objects [default: lab-<scenario name>].
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Serve a service's real ONNX model from storage (KServe storageUri
    /// holding model.onnx) instead of emulating its GPU from the scenario's
    /// latency profile; the pods then ask for the scenario's GPUs. Repeatable.
    #[arg(long = "storage-uri", value_name = "SERVICE=URI")]
    pub storage_uris: Vec<String>,
    /// The cluster's Prometheus as KEDA's prometheus triggers reach it.
    #[arg(long, value_name = "URL", default_value = lab_deploy::DEFAULT_PROMETHEUS_URL)]
    pub prometheus_url: String,
    /// Namespace Prometheus runs in (allowed to scrape the pods).
    #[arg(long, value_name = "NS", default_value = "monitoring")]
    pub prometheus_namespace: String,
    /// Address block of model storage, the only egress the pods get.
    #[arg(long, value_name = "CIDR", default_value = "0.0.0.0/0")]
    pub storage_cidr: String,
    /// Overrides applied to the scenario first (see `lab run --set`).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Print what was written as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The tag `deploy/image/build.sh` gives the CPU image of this build.
pub fn default_image() -> String {
    format!(
        "lab:{}-{}-cpu",
        env!("CARGO_PKG_VERSION"),
        env!("LAB_GIT_COMMIT")
    )
}

/// The render options `lab deploy` and `lab run --level cluster` share:
/// the mode (the scenario's natural one unless given), a versioned image,
/// the namespace, and `SERVICE=URI` model storage.
pub(super) fn options(
    sc: &lab_scenario::Scenario,
    mode: Option<&str>,
    image: &str,
    namespace: Option<String>,
    storage_uris: &[String],
) -> anyhow::Result<(Mode, Options)> {
    let mode = match mode {
        Some("raw") => Mode::Raw,
        Some(_) => Mode::Serverless,
        None => Mode::natural_for(sc),
    };
    if image.ends_with(":latest") || !image.contains(':') {
        return Err(exit::bad_input(format!(
            "--image {image}: name a version tag (lab:0.1.0-<commit>-cpu); `latest` is not reproducible"
        )));
    }
    let mut uris = BTreeMap::new();
    for s in storage_uris {
        let Some((svc, uri)) = s.split_once('=') else {
            return Err(exit::bad_input(format!(
                "--storage-uri {s}: write SERVICE=URI, e.g. resnet=s3://models/resnet50"
            )));
        };
        uris.insert(svc.to_string(), uri.to_string());
    }
    let opts = Options {
        namespace,
        storage_uris: uris,
        ..Options::new(mode, image.to_string())
    };
    Ok((mode, opts))
}

/// Every setting the mode cannot express, one line each, then exit 2.
pub(super) fn refused(
    scenario: &Path,
    mode: Mode,
    mode_chosen: bool,
    refusals: &[lab_deploy::Refusal],
) -> anyhow::Error {
    for r in refusals {
        eprintln!("error: {}: {r}", scenario.display());
    }
    exit::bad_input(format!(
        "{} setting(s) of {} cannot be expressed in {} mode{}",
        refusals.len(),
        scenario.display(),
        mode.as_str(),
        if mode_chosen {
            " (chosen for its autoscalers; --mode picks the other)"
        } else {
            ""
        }
    ))
}

/// The first line of every file lab deploy writes; a file without it is not ours.
const RENDERED_MARK: &str = "# Rendered by `lab deploy`";

pub fn run(args: Args) -> anyhow::Result<i32> {
    let sc = lab_scenario::load_checked(&args.scenario, &args.overrides)
        .map_err(|e| exit::bad_input(e.to_string()))?;
    let (mode, mut opts) = options(
        &sc,
        args.mode.as_deref(),
        &args.image,
        args.namespace.clone(),
        &args.storage_uris,
    )?;
    opts.prometheus_url = args.prometheus_url.clone();
    opts.prometheus_namespace = args.prometheus_namespace.clone();
    opts.storage_cidr = args.storage_cidr.clone();
    let rendered = lab_deploy::render(&sc, &opts)
        .map_err(|r| refused(&args.scenario, mode, args.mode.is_none(), &r))?;
    write_files(&args.render, &rendered.files)?;
    if args.json {
        let out = serde_json::json!({
            "dir": args.render,
            "mode": mode.as_str(),
            "namespace": rendered.namespace,
            "image": args.image,
            "files": rendered.files.keys().collect::<Vec<_>>(),
            "notes": rendered.notes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::PASS);
    }
    println!(
        "rendered {} ({} mode, namespace {}) into {}:",
        args.scenario.display(),
        mode.as_str(),
        rendered.namespace,
        args.render.display()
    );
    for (file, text) in &rendered.files {
        let objects = text.matches("\n---\n").count();
        println!(
            "  {file} ({objects} object{})",
            if objects == 1 { "" } else { "s" }
        );
    }
    for n in &rendered.notes {
        println!("note: {n}");
    }
    println!("apply: kubectl apply -k {}", args.render.display());
    if rendered
        .files
        .keys()
        .any(|f| f.starts_with("cluster-config/"))
    {
        println!(
            "cluster-wide settings (shared with everything on the cluster, never removed by lab): kubectl apply -k {}",
            args.render.join("cluster-config").display()
        );
    }
    Ok(exit::PASS)
}

/// Writes the files, removing those an earlier render left that this one no
/// longer has, and never a file lab deploy did not write.
fn write_files(dir: &Path, files: &BTreeMap<String, String>) -> anyhow::Result<()> {
    for sub in [dir.to_path_buf(), dir.join("cluster-config")] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = path
                .strip_prefix(dir)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ours = std::fs::read_to_string(&path).is_ok_and(|t| t.starts_with(RENDERED_MARK));
            if ours && !files.contains_key(&name) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing stale {}", path.display()))?;
            }
        }
    }
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        if path.exists() {
            let ours = std::fs::read_to_string(&path).is_ok_and(|t| t.starts_with(RENDERED_MARK));
            if !ours {
                return Err(exit::bad_input(format!(
                    "{} exists and was not written by lab deploy; render into another folder or remove it",
                    path.display()
                )));
            }
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
