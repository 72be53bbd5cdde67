//! Finding and loading the ONNX Runtime shared library at run time (`load-dynamic`),
//! so the predictor builds without downloading ONNX Runtime and runs against a
//! library that is already on the machine: one shipped beside the binary (the
//! container image), one in the system's library paths, or, last, the one the
//! `onnxruntime` (or `onnxruntime-gpu`) Python package installs. Python is never
//! needed when the library is anywhere else.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::error::bad_input;

const HOW_TO: &str = "set ORT_DYLIB_PATH to a libonnxruntime.so, put the library next to \
the `lab` binary (or in ../lib, ../lib/lab) or in a system library folder, or install the \
Python package (`pip install onnxruntime==1.32.0`, or `onnxruntime-gpu` for CUDA)";

/// Where `libonnxruntime.so` is, looked for in this order:
/// 1. `ORT_DYLIB_PATH` (a file; when set it is the only answer);
/// 2. the executable's folder, then `../lib` and `../lib/lab` beside it;
/// 3. the system's library search path: `LD_LIBRARY_PATH`, the folders named in
///    `/etc/ld.so.conf` (and the files it includes), then the standard folders;
/// 4. the `capi` folder of the `onnxruntime` Python package (asked of `python3`,
///    or `$PYTHON`, then searched in the usual site-packages folders).
pub fn find_library() -> anyhow::Result<PathBuf> {
    Locator::from_process().find()
}

/// The inputs of the search, so that tests can point every step at folders of
/// their own; `from_process` reads them from this process and machine.
#[derive(Debug, Clone, Default)]
struct Locator {
    ort_dylib_path: Option<PathBuf>,
    exe: Option<PathBuf>,
    ld_library_path: Option<OsString>,
    ld_so_conf: PathBuf,
    standard_dirs: Vec<PathBuf>,
    /// The interpreter to ask where its `onnxruntime` package is; `None` skips it.
    python: Option<OsString>,
    /// Folders whose `python3.*/{site,dist}-packages/onnxruntime/capi` are searched.
    site_roots: Vec<PathBuf>,
}

impl Locator {
    fn from_process() -> Self {
        let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
        Locator {
            ort_dylib_path: std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
            exe: std::env::current_exe().ok(),
            ld_library_path: std::env::var_os("LD_LIBRARY_PATH"),
            ld_so_conf: PathBuf::from("/etc/ld.so.conf"),
            standard_dirs: [
                format!("/usr/lib/{multiarch}"),
                format!("/lib/{multiarch}"),
                "/usr/local/lib".into(),
                "/usr/lib".into(),
                "/lib".into(),
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
            python: Some(std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into())),
            site_roots: ["/usr/lib", "/usr/local/lib", "/opt/conda/lib"]
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        }
    }

    fn find(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.ort_dylib_path {
            // An explicit setting that is wrong is reported, not silently replaced
            // by another library found elsewhere.
            if p.is_file() {
                return Ok(p.clone());
            }
            return Err(bad_input(format!(
                "ORT_DYLIB_PATH={} is not a file; {HOW_TO}",
                p.display()
            )));
        }
        let mut looked = Vec::new();
        if let Some(lib) = first_library(&self.native_dirs(), &mut looked) {
            return Ok(lib);
        }
        if let Some(lib) = first_library(&self.python_dirs(), &mut looked) {
            return Ok(lib);
        }
        let list = looked
            .iter()
            .map(|d| format!("  {}", d.display()))
            .collect::<Vec<_>>()
            .join("\n");
        Err(bad_input(format!(
            "ONNX Runtime shared library (libonnxruntime.so*) not found; looked in:\n{list}\n{HOW_TO}"
        )))
    }

    /// Steps 2 and 3: beside the executable, then the system's library path.
    fn native_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(bin) = self.exe.as_deref().and_then(Path::parent) {
            dirs.push(bin.to_path_buf());
            // `../lib` spelled lexically, so a missing `bin` folder does not hide it
            // and the error message reads plainly.
            let prefix = bin.parent().unwrap_or(bin);
            dirs.push(prefix.join("lib"));
            dirs.push(prefix.join("lib/lab"));
        }
        if let Some(ld) = &self.ld_library_path {
            dirs.extend(std::env::split_paths(ld).filter(|p| !p.as_os_str().is_empty()));
        }
        ld_so_conf_dirs(&self.ld_so_conf, 0, &mut dirs);
        dirs.extend(self.standard_dirs.iter().cloned());
        dedup(dirs)
    }

    /// Step 4, only reached when nothing native was found: Python is asked
    /// only then, so a machine without it pays nothing.
    fn python_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(python) = &self.python {
            if let Ok(out) = Command::new(python)
                .args([
                    "-c",
                    "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
                ])
                .output()
            {
                if out.status.success() {
                    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    if !dir.is_empty() {
                        dirs.push(PathBuf::from(dir).join("capi"));
                    }
                }
            }
        }
        for root in &self.site_roots {
            let Ok(entries) = std::fs::read_dir(root) else {
                continue;
            };
            let mut pythons: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("python"))
                })
                .collect();
            pythons.sort();
            for site in pythons {
                for sub in ["site-packages", "dist-packages"] {
                    dirs.push(site.join(sub).join("onnxruntime/capi"));
                }
            }
        }
        dedup(dirs)
    }
}

/// The library in the first folder that has one; every folder tried goes in `looked`.
fn first_library(dirs: &[PathBuf], looked: &mut Vec<PathBuf>) -> Option<PathBuf> {
    for dir in dirs {
        looked.push(dir.clone());
        if let Some(lib) = library_in(dir) {
            return Some(lib);
        }
    }
    None
}

fn dedup(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for d in dirs {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// The folders an `ld.so.conf` names, in order, following `include` lines (glob
/// `*` in the file name, relative to the including file's folder) as the dynamic
/// linker's cache builder does. Unreadable files add nothing.
fn ld_so_conf_dirs(conf: &Path, depth: usize, dirs: &mut Vec<PathBuf>) {
    // Include loops would otherwise recurse for ever.
    if depth > 8 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(conf) else {
        return;
    };
    let here = conf.parent().unwrap_or(Path::new("/"));
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(pattern) = line.strip_prefix("include") {
            if !pattern.starts_with(char::is_whitespace) {
                continue;
            }
            for pattern in pattern.split_whitespace() {
                for file in glob_files(&here.join(pattern)) {
                    ld_so_conf_dirs(&file, depth + 1, dirs);
                }
            }
        } else if line.starts_with('/') {
            // Old-style `dir=type` entries carry a hardware type after `=`.
            let dir = line.split('=').next().unwrap_or(line).trim();
            dirs.push(PathBuf::from(dir));
        }
    }
}

/// Files matching a path whose last component may hold `*`, sorted by name (the
/// order glob(3) gives `include`).
fn glob_files(pattern: &Path) -> Vec<PathBuf> {
    let Some(name) = pattern.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.contains('*') {
        return if pattern.is_file() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| wildcard_match(name, n))
        })
        .collect();
    files.sort();
    files
}

/// `*` matches any run of characters; everything else matches itself.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// `libonnxruntime.so*` in a folder, preferring the highest versioned file (the
/// wheel ships `libonnxruntime.so.1.32.0`, a system install adds links to it).
fn library_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let version = name.strip_prefix("libonnxruntime.so")?;
            let version: Option<Vec<u64>> = version
                .split('.')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().ok())
                .collect();
            Some((version?, p))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, p)| p)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A locator that looks only inside `root`: no environment, no system folders,
    /// no Python.
    fn locator(root: &Path) -> Locator {
        Locator {
            exe: Some(root.join("bin/lab")),
            ld_so_conf: root.join("etc/ld.so.conf"),
            ..Locator::default()
        }
    }

    fn touch(path: &Path) -> PathBuf {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"not really a library").unwrap();
        path.to_path_buf()
    }

    fn err_text(l: &Locator) -> String {
        format!("{:#}", l.find().unwrap_err())
    }

    #[test]
    fn ort_dylib_path_wins_and_a_wrong_one_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        touch(&t.path().join("bin/libonnxruntime.so.1.32.0"));
        let mine = touch(&t.path().join("elsewhere/custom-ort.so"));
        let mut l = locator(t.path());
        l.ort_dylib_path = Some(mine.clone());
        assert_eq!(l.find().unwrap(), mine);
        l.ort_dylib_path = Some(t.path().join("missing.so"));
        let msg = err_text(&l);
        assert!(
            msg.contains("ORT_DYLIB_PATH=") && msg.contains("missing.so"),
            "{msg}"
        );
        let bad = l.find().unwrap_err();
        assert!(bad.downcast_ref::<crate::error::BadInput>().is_some());
    }

    #[test]
    fn beside_the_executable_then_lib_then_lib_lab() {
        let t = tempfile::tempdir().unwrap();
        let l = locator(t.path());
        let in_lib_lab = touch(&t.path().join("lib/lab/libonnxruntime.so.1.32.0"));
        assert_eq!(l.find().unwrap(), in_lib_lab);
        let in_lib = touch(&t.path().join("lib/libonnxruntime.so"));
        assert_eq!(l.find().unwrap(), in_lib);
        let beside = touch(&t.path().join("bin/libonnxruntime.so.1"));
        assert_eq!(l.find().unwrap(), beside);
    }

    #[test]
    fn system_path_order_ld_library_path_then_ld_so_conf_then_standard() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let standard = touch(&root.join("usr/lib/libonnxruntime.so.1.32.0"));
        let mut l = locator(root);
        l.standard_dirs = vec![root.join("usr/lib")];
        assert_eq!(l.find().unwrap(), standard);

        // ld.so.conf: a plain folder, a comment, and a relative include glob
        // whose files are read in name order.
        fs::create_dir_all(root.join("etc/ld.so.conf.d")).unwrap();
        fs::write(
            root.join("etc/ld.so.conf"),
            format!(
                "# comment\ninclude ld.so.conf.d/*.conf\n{}\n",
                root.join("conf-plain").display()
            ),
        )
        .unwrap();
        fs::write(
            root.join("etc/ld.so.conf.d/b.conf"),
            format!("{}\n", root.join("conf-b").display()),
        )
        .unwrap();
        fs::write(
            root.join("etc/ld.so.conf.d/a.conf"),
            format!("{}  # the first\n", root.join("conf-a").display()),
        )
        .unwrap();
        fs::write(root.join("etc/ld.so.conf.d/ignored.txt"), "/nowhere\n").unwrap();
        let plain = touch(&root.join("conf-plain/libonnxruntime.so"));
        assert_eq!(l.find().unwrap(), plain);
        let b = touch(&root.join("conf-b/libonnxruntime.so"));
        assert_eq!(l.find().unwrap(), b);
        let a = touch(&root.join("conf-a/libonnxruntime.so"));
        assert_eq!(l.find().unwrap(), a);

        let ld = touch(&root.join("ld-path/libonnxruntime.so"));
        l.ld_library_path =
            Some(std::env::join_paths([root.join("empty"), root.join("ld-path")]).unwrap());
        assert_eq!(l.find().unwrap(), ld);
    }

    #[test]
    fn python_is_the_fallback_and_is_not_asked_when_a_library_is_elsewhere() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let pkg = root.join("site/onnxruntime");
        let wheel_lib = touch(&pkg.join("capi/libonnxruntime.so.1.32.0"));
        // A stand-in interpreter: prints the package folder and leaves a mark
        // that it was asked.
        let python = root.join("python");
        let mark = root.join("asked");
        fs::write(
            &python,
            format!(
                "#!/bin/sh\ntouch '{}'\necho '{}'\n",
                mark.display(),
                pkg.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&python, fs::Permissions::from_mode(0o755)).unwrap();
        let mut l = locator(root);
        l.python = Some(python.into_os_string());
        assert_eq!(l.find().unwrap(), wheel_lib);
        assert!(mark.exists());

        fs::remove_file(&mark).unwrap();
        let beside = touch(&root.join("bin/libonnxruntime.so"));
        assert_eq!(l.find().unwrap(), beside);
        assert!(
            !mark.exists(),
            "Python was asked although the library is beside the binary"
        );
    }

    #[test]
    fn site_packages_are_searched_without_an_interpreter() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let lib = touch(
            &root.join("py/python3.11/dist-packages/onnxruntime/capi/libonnxruntime.so.1.32.0"),
        );
        let mut l = locator(root);
        l.site_roots = vec![root.join("py")];
        assert_eq!(l.find().unwrap(), lib);
    }

    #[test]
    fn not_found_lists_every_folder_it_looked_in() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let mut l = locator(root);
        l.standard_dirs = vec![root.join("std")];
        l.ld_library_path = Some(root.join("ldp").into_os_string());
        l.site_roots = vec![root.join("py")];
        fs::create_dir_all(root.join("py/python3.12")).unwrap();
        let err = l.find().unwrap_err();
        assert!(err.downcast_ref::<crate::error::BadInput>().is_some());
        let msg = format!("{err:#}");
        for dir in [
            root.join("bin"),
            root.join("lib"),
            root.join("lib/lab"),
            root.join("ldp"),
            root.join("std"),
            root.join("py/python3.12/site-packages/onnxruntime/capi"),
        ] {
            assert!(
                msg.contains(&dir.display().to_string()),
                "{dir:?} missing from: {msg}"
            );
        }
        assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
    }

    #[test]
    fn the_highest_version_in_a_folder_is_chosen() {
        let t = tempfile::tempdir().unwrap();
        touch(&t.path().join("libonnxruntime.so"));
        touch(&t.path().join("libonnxruntime.so.1.9.0"));
        let newest = touch(&t.path().join("libonnxruntime.so.1.32.0"));
        touch(&t.path().join("libonnxruntime_providers_shared.so"));
        touch(&t.path().join("libonnxruntime.so.1.32.0.bak-x"));
        assert_eq!(library_in(t.path()).unwrap(), newest);
        assert_eq!(library_in(&t.path().join("nowhere")), None);
    }

    #[test]
    fn wildcards_and_include_loops() {
        assert!(wildcard_match("*.conf", "libc.conf"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("*.conf", "libc.conf.bak"));
        assert!(!wildcard_match("a*a", "a"));
        assert!(wildcard_match("exact", "exact"));
        let t = tempfile::tempdir().unwrap();
        let conf = t.path().join("ld.so.conf");
        fs::write(&conf, "include ld.so.conf\n/somewhere\n").unwrap();
        let mut dirs = Vec::new();
        ld_so_conf_dirs(&conf, 0, &mut dirs);
        assert!(dirs.iter().all(|d| d == Path::new("/somewhere")));
        assert!(!dirs.is_empty());
    }
}
