//! Clean-up of the emulated GPUs' shared files.

/// Removes the emulated GPUs' shared files of this run (`/dev/shm/lab-gpu-PREFIX-*`).
pub fn remove_shm(prefix: &str) {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    let start = format!("lab-gpu-{prefix}-");
    for e in dir.flatten() {
        if e.file_name().to_string_lossy().starts_with(&start) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
