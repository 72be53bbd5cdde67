//! `lab cluster up --kind` and `lab cluster down`: a kind cluster with the
//! stack the cluster level runs on (deploy/install-stack.sh, with its pinned
//! versions, and deploy/kind/cluster.yaml, both built into the binary so
//! `lab` needs no checkout), and its removal.

use crate::exit::{self, bad_input};
use anyhow::Context;
use std::path::Path;
use std::process::Command;

const INSTALL_STACK: &str = include_str!("../../../deploy/install-stack.sh");
const KIND_CONFIG: &str = include_str!("../../../deploy/kind/cluster.yaml");

#[derive(clap::Args)]
#[command(after_help = exit::CLUSTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand)]
pub enum Sub {
    /// Create a kind cluster and install the stack: cert-manager, Knative
    /// Serving with Kourier (serverless mode), KServe, KEDA, the Prometheus
    /// Operator with Prometheus and Grafana; optionally load the lab image.
    Up(UpArgs),
    /// Delete the kind cluster `lab cluster up` made.
    Down(DownArgs),
}

#[derive(clap::Args)]
pub struct UpArgs {
    /// Make the cluster with kind (the only kind of cluster lab creates; an
    /// existing cluster gets the stack with deploy/install-stack.sh --context).
    #[arg(long)]
    pub kind: bool,
    /// The kind cluster's name.
    #[arg(long, default_value = "lab")]
    pub name: String,
    /// serverless installs Knative and Kourier; raw leaves them out.
    #[arg(long, value_parser = ["serverless", "raw"], default_value = "serverless")]
    pub mode: String,
    /// Load this lab image into the cluster's nodes (deploy/image/build.sh prints its tag).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Print every command, run none.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args)]
pub struct DownArgs {
    /// The kind cluster's name.
    #[arg(long, default_value = "lab")]
    pub name: String,
    /// Print the command, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        Sub::Up(a) => up(a),
        Sub::Down(a) => down(a),
    }
}

fn up(a: UpArgs) -> anyhow::Result<i32> {
    if !a.kind {
        return Err(bad_input(
            "lab creates kind clusters only: give --kind, or install the stack into an existing \
             cluster with deploy/install-stack.sh --context CONTEXT",
        ));
    }
    // The script finds the kind config beside it, as in the repository.
    let dir = tempfile_dir()?;
    let deploy = dir.join("deploy");
    std::fs::create_dir_all(deploy.join("kind")).context("writing the install script")?;
    std::fs::write(deploy.join("install-stack.sh"), INSTALL_STACK)
        .context("writing the install script")?;
    std::fs::write(deploy.join("kind/cluster.yaml"), KIND_CONFIG)
        .context("writing the kind config")?;
    let mut cmd = Command::new("bash");
    cmd.arg(deploy.join("install-stack.sh")).args([
        "--create-cluster",
        "--cluster",
        &a.name,
        "--mode",
        &a.mode,
    ]);
    if let Some(image) = &a.image {
        cmd.args(["--image", image]);
    }
    if a.dry_run {
        cmd.arg("--dry-run");
    }
    let status = cmd.status().context("running bash")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(match status.code() {
        Some(0) => exit::PASS,
        Some(2) => exit::BAD_INPUT,
        _ => exit::RUN_FAILED,
    })
}

fn down(a: DownArgs) -> anyhow::Result<i32> {
    println!("+ kind delete cluster --name {}", a.name);
    if a.dry_run {
        return Ok(exit::PASS);
    }
    let status = Command::new("kind")
        .args(["delete", "cluster", "--name", &a.name])
        .status()
        .map_err(|e| bad_input(format!("kind: {e}; install kind (deploy/README.md)")))?;
    Ok(if status.success() {
        exit::PASS
    } else {
        exit::RUN_FAILED
    })
}

/// A fresh private folder for the script.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..1000u32 {
        let dir = base.join(format!("lab-cluster-up-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).context(format!("creating {}", Path::new(&dir).display())),
        }
    }
    anyhow::bail!("no free temporary folder for the install script")
}
