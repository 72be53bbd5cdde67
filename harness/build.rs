//! Stamps the binary with the commit it was built from, for the image tag
//! `lab deploy` defaults to (the tag `deploy/image/build.sh` gives).

use std::process::Command;

fn main() {
    let commit = std::env::var("LAB_GIT_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=LAB_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rerun-if-env-changed=LAB_GIT_COMMIT");
    for f in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
