//! Finding and loading the ONNX Runtime shared library at run time (`load-dynamic`),
//! so the predictor builds without downloading ONNX Runtime and runs against the
//! library the `onnxruntime` (or `onnxruntime-gpu`) Python package installs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::error::bad_input;

const HOW_TO: &str = "set ORT_DYLIB_PATH to a libonnxruntime.so, or install the Python package \
(`pip install onnxruntime==1.32.0`, or `onnxruntime-gpu` for CUDA) so it can be found";

/// Where `libonnxruntime.so` is: `ORT_DYLIB_PATH` if set, else the `capi` folder of
/// the `onnxruntime` Python package (asked of `python3`, then searched in the usual
/// site-packages folders).
pub fn find_library() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(bad_input(format!(
            "ORT_DYLIB_PATH={} is not a file; {HOW_TO}",
            p.display()
        )));
    }
    let mut dirs = Vec::new();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if let Ok(out) = Command::new(&python)
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
    {
        if out.status.success() {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            dirs.push(PathBuf::from(dir).join("capi"));
        }
    }
    for root in ["/usr/lib", "/usr/local/lib", "/opt/conda/lib"] {
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let site = e.path();
                for sub in ["site-packages", "dist-packages"] {
                    dirs.push(site.join(sub).join("onnxruntime/capi"));
                }
            }
        }
    }
    for dir in &dirs {
        if let Some(lib) = library_in(dir) {
            return Ok(lib);
        }
    }
    Err(bad_input(format!(
        "ONNX Runtime shared library not found: {HOW_TO}"
    )))
}

/// `libonnxruntime.so*` in a folder, preferring the versioned file the wheel ships.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.pop()
}

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loaded once.
pub fn environment() -> anyhow::Result<Environment> {
    let result = ENV.get_or_init(|| {
        let lib = find_library().map_err(|e| e.to_string())?;
        let builder = ort::environment::init_from(&lib)
            .map_err(|e| format!("loading ONNX Runtime from {}: {e}", lib.display()))?;
        builder
            .with_name("lab-predictor")
            .build()
            .map_err(|e| format!("starting ONNX Runtime from {}: {e}", lib.display()))
    });
    match result {
        Ok(env) => Ok(env.clone()),
        Err(msg) if msg.contains("not found") || msg.contains("ORT_DYLIB_PATH") => {
            Err(bad_input(msg.clone()))
        }
        Err(msg) => Err(anyhow::anyhow!(msg.clone())),
    }
}
