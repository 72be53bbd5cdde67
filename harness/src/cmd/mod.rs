//! One module per subcommand, each a thin layer over a library crate.

pub mod calibrate;
pub mod check;
pub mod cluster;
pub mod compare;
pub mod deploy;
pub mod import;
pub mod load;
pub mod merge;
pub mod plan;
pub mod report;
pub mod run;
pub mod run_cluster;
pub mod run_local;
pub mod serve;
pub mod validate;

use std::path::{Path, PathBuf};

/// A new output folder at `base`, or `base-2`, `base-3`, ... when it is taken
/// (two runs of one scenario within the same second). Each is made with one
/// `create_dir`, so runs started together never share, or overwrite, a folder.
pub fn fresh_dir(base: &Path) -> anyhow::Result<PathBuf> {
    if let Some(parent) = base.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", parent.display()))?;
    }
    for n in 1..=1000 {
        let dir = if n == 1 {
            base.to_path_buf()
        } else {
            let mut name = base.as_os_str().to_owned();
            name.push(format!("-{n}"));
            PathBuf::from(name)
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => anyhow::bail!("creating {}: {e}", dir.display()),
        }
    }
    anyhow::bail!(
        "{} and 999 numbered variants of it already exist; clear them out or give --out DIR",
        base.display()
    )
}

/// A folder named with `--out DIR`: made if missing, refused (exit 2) when it
/// already holds `marker` from an earlier run, unless `force` says to overwrite.
pub fn named_dir(dir: &Path, marker: &str, force: bool) -> anyhow::Result<PathBuf> {
    if !force && dir.join(marker).exists() {
        return Err(crate::exit::bad_input(format!(
            "--out {}: the folder already holds {marker} from an earlier run; give a new \
             folder, or add --force to overwrite it",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// Writes `text` to `path` through a temporary file beside it and a rename, so
/// a reader (or a second Ctrl-C mid-write) never sees half a results file.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("moving {} to {}: {e}", tmp.display(), path.display()))
}
