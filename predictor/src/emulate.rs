//! GPU emulation: answer with the model's real outputs (computed on CPU) but hold
//! each batch for the service time a calibration profile gives for the emulated
//! GPU and batch size, slowed as the workspace's sharing arithmetic
//! (`lab_gpu::tenant_speed`, `MigProfile::speed_fraction`) says.
//!
//! Several predictor processes emulating one GPU see each other through a small
//! shared file, `/dev/shm/lab-gpu-<id>`: 64 slots of (pid: u32, busy: u32),
//! little-endian, read and written under `flock`. A tenant is busy while its slot
//! has busy > 0; slots of dead processes are ignored and reused, so a crashed
//! predictor cannot leave the GPU looking busy.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab_gpu::{
    gpu_type, gpu_type_names, sample_service_seconds, tenant_speed, CalibrationProfile,
    ContentionParams, LatencyProfile, ServiceDistribution, Sharing, CALIBRATION_FORMAT,
};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::bad_input;

const SLOTS: u64 = 64;
const SLOT_BYTES: u64 = 8;
/// How often a holding execution re-reads the co-tenants' state.
const STEP: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct EmulateConfig {
    pub profile: PathBuf,
    /// GPU type the profile stands for, overriding the profile's own `gpu`.
    pub gpu_type: Option<String>,
    pub sharing: Sharing,
    /// Name of the emulated physical GPU; processes with the same id share it.
    pub gpu_id: String,
    pub seed: u64,
}

/// Parses `none`, `time-slicing:N`, `mps:N` or `mig:PROFILE` (e.g. `mig:1g.10gb`).
pub fn parse_sharing(s: &str) -> Result<Sharing, String> {
    let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
    let replicas = || {
        arg.parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("--sharing {s}: expected {kind}:N with N >= 1"))
    };
    match kind {
        "none" => Ok(Sharing::None),
        "time-slicing" => Ok(Sharing::TimeSlicing {
            replicas: replicas()?,
        }),
        "mps" => Ok(Sharing::Mps {
            replicas: replicas()?,
        }),
        "mig" if !arg.is_empty() => Ok(Sharing::Mig {
            layout: vec![arg.to_string()],
        }),
        _ => Err(format!(
            "--sharing {s}: expected none, time-slicing:N, mps:N or mig:PROFILE (e.g. mig:1g.10gb)"
        )),
    }
}

pub struct Emulator {
    latency: LatencyProfile,
    sharing: Sharing,
    params: ContentionParams,
    /// MIG instance speed relative to the whole GPU (1 otherwise).
    slice_speed: f64,
    gpu: Option<Coordinator>,
    rng: Mutex<Pcg64>,
    /// Executions of this process holding the emulated GPU now.
    local_busy: Arc<AtomicU32>,
    pub description: String,
}

impl Emulator {
    pub fn load(cfg: &EmulateConfig) -> anyhow::Result<Emulator> {
        let text = std::fs::read_to_string(&cfg.profile)
            .map_err(|e| bad_input(format!("--emulate {}: {e}", cfg.profile.display())))?;
        let profile: CalibrationProfile = serde_json::from_str(&text).map_err(|e| {
            bad_input(format!(
                "--emulate {}: not a calibration profile: {e}",
                cfg.profile.display()
            ))
        })?;
        if profile.format != CALIBRATION_FORMAT || profile.points.is_empty() {
            return Err(bad_input(format!(
                "--emulate {}: expected format {CALIBRATION_FORMAT} with at least one point",
                cfg.profile.display()
            )));
        }
        if let Some(ServiceDistribution::Lognormal { cv }) = profile.distribution {
            if !(cv.is_finite() && cv >= 0.0) {
                return Err(bad_input(format!(
                    "--emulate {}: a lognormal distribution needs a cv of 0 or more, not {cv}",
                    cfg.profile.display()
                )));
            }
        }
        let gpu_name = cfg.gpu_type.clone().unwrap_or_else(|| profile.gpu.clone());
        let slice_speed = match &cfg.sharing {
            Sharing::Mig { layout } => {
                let gpu = gpu_type(&gpu_name).ok_or_else(|| {
                    bad_input(format!(
                        "MIG needs a GPU type: '{gpu_name}' is not one of {} (set --gpu-type)",
                        gpu_type_names().join(", ")
                    ))
                })?;
                let p = gpu.mig_profile(&layout[0]).ok_or_else(|| {
                    let names: Vec<&str> = gpu.mig_profiles.iter().map(|p| p.name).collect();
                    bad_input(format!(
                        "{} has no MIG profile '{}'; it has: {}",
                        gpu.name,
                        layout[0],
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ))
                })?;
                p.speed_fraction(gpu)
            }
            _ => 1.0,
        };
        // Only time-slicing and MPS tenants slow each other down.
        let gpu = match cfg.sharing {
            Sharing::TimeSlicing { .. } | Sharing::Mps { .. } => Some(
                Coordinator::open(&shm_path(&cfg.gpu_id)?)
                    .map_err(|e| anyhow::anyhow!("emulated GPU '{}': {e}", cfg.gpu_id))?,
            ),
            _ => None,
        };
        let description = format!(
            "emulating {gpu_name} ({}, speed {:.3}) from {}",
            cfg.sharing.label(),
            slice_speed,
            cfg.profile.display()
        );
        Ok(Emulator {
            latency: profile.to_latency_profile(None),
            sharing: cfg.sharing.clone(),
            params: ContentionParams::default(),
            slice_speed,
            gpu,
            rng: Mutex::new(Pcg64::seed_from_u64(cfg.seed)),
            local_busy: Arc::new(AtomicU32::new(0)),
            description,
        })
    }

    /// The largest batch the profile covers: batching past it would be a guess.
    pub fn max_batch_size(&self) -> u32 {
        self.latency.max_batch_size()
    }

    /// One service time at full speed for a batch of `rows`.
    pub fn sample_seconds(&self, rows: u32) -> f64 {
        let mean = self.latency.mean_seconds(rows).unwrap_or_else(|| {
            // Refused at start-up; scale linearly if it ever happens.
            let last = self
                .latency
                .points
                .last()
                .map_or((1, 0.0), |p| (p.batch_size, p.seconds));
            last.1 * f64::from(rows) / f64::from(last.0.max(1))
        });
        let (u1, u2) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (1.0 - rng.random::<f64>(), rng.random::<f64>())
        };
        sample_service_seconds(mean, self.latency.distribution, u1, u2)
    }

    /// Holds the emulated GPU for one batch's service time, progressing at the
    /// speed the current number of busy co-tenants allows. The hold is counted
    /// from `since`, the batch's start: the hand-off to the blocking thread is
    /// part of the emulated execution, not added to it (on two busy cores it
    /// is a tenth of a millisecond, which `--time-scale 10` makes a millisecond
    /// of scenario time on every batch).
    pub async fn hold(self: &Arc<Self>, rows: u32, since: Instant) {
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.hold_blocking(rows, since)).await;
    }

    fn hold_blocking(&self, rows: u32, since: Instant) {
        precise_sleeps();
        let mut remaining = self.sample_seconds(rows);
        let _busy = BusyGuard::new(self);
        let shared = self.gpu.is_some();
        let mut from = since;
        let (mut speed, _) = self.speed();
        loop {
            let now = Instant::now();
            remaining -= now.saturating_duration_since(from).as_secs_f64() * speed;
            from = now;
            if remaining <= 1e-7 {
                return;
            }
            let local;
            (speed, local) = self.speed();
            let wall = remaining / speed;
            let step = if shared || local > 1 {
                wall.min(STEP.as_secs_f64())
            } else {
                wall
            };
            std::thread::sleep(Duration::from_secs_f64(step));
        }
    }

    /// The speed this tenant runs at now, and how many of this process's own
    /// executions share its turn.
    fn speed(&self) -> (f64, u32) {
        let tenants = self.gpu.as_ref().map_or(1, |g| g.busy_tenants()).max(1);
        let local = self.local_busy.load(Ordering::Relaxed).max(1);
        let speed = tenant_speed(&self.sharing, tenants, &self.params) * self.slice_speed
            / f64::from(local);
        (speed, local)
    }
}

/// Lets this thread's sleeps end on time: Linux lets a sleep overrun by the
/// thread's timer slack (50 µs by default) to batch wake-ups, a few percent of
/// a millisecond-long hold.
/// Once per thread: the blocking pool reuses its threads.
fn precise_sleeps() {
    thread_local! {
        static SET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    SET.with(|set| {
        if !set.replace(true) {
            // SAFETY: PR_SET_TIMERSLACK takes one integer and changes only the
            // calling thread's timer slack; it cannot touch memory.
            unsafe {
                libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
            }
        }
    });
}

/// Marks this process busy on the shared GPU for as long as it lives.
struct BusyGuard<'a>(&'a Emulator);

impl<'a> BusyGuard<'a> {
    fn new(em: &'a Emulator) -> Self {
        let n = em.local_busy.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(g) = &em.gpu {
            g.set_busy(n);
        }
        BusyGuard(em)
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let n = self
            .0
            .local_busy
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        if let Some(g) = &self.0.gpu {
            g.set_busy(n);
        }
    }
}

fn shm_path(gpu_id: &str) -> anyhow::Result<PathBuf> {
    if gpu_id.is_empty()
        || !gpu_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(bad_input(format!(
            "--gpu-id '{gpu_id}': use letters, digits, '-', '_' or '.'"
        )));
    }
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    Ok(dir.join(format!("lab-gpu-{gpu_id}")))
}

/// This process's slot in the shared busy table of one emulated GPU.
pub struct Coordinator {
    file: File,
    slot: u64,
    pid: u32,
}

impl Coordinator {
    pub fn open(path: &Path) -> std::io::Result<Coordinator> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let pid = std::process::id();
        let slot = {
            let _lock = Flock::exclusive(&file)?;
            if file.metadata()?.len() < SLOTS * SLOT_BYTES {
                file.set_len(SLOTS * SLOT_BYTES)?;
            }
            let table = read_table(&file)?;
            let slot = table
                .iter()
                .position(|(p, _)| *p == pid || *p == 0 || !alive(*p))
                .ok_or_else(|| std::io::Error::other("all 64 tenant slots are taken"))?
                as u64;
            file.write_all_at(&pack(pid, 0), slot * SLOT_BYTES)?;
            slot
        };
        Ok(Coordinator { file, slot, pid })
    }

    fn set_busy(&self, busy: u32) {
        // Best effort: a failed write only makes contention less accurate.
        if let Ok(_lock) = Flock::exclusive(&self.file) {
            let _ = self
                .file
                .write_all_at(&pack(self.pid, busy), self.slot * SLOT_BYTES);
        }
    }

    /// Live tenants (processes) with at least one execution holding the GPU.
    pub fn busy_tenants(&self) -> u32 {
        let Ok(_lock) = Flock::shared(&self.file) else {
            return 1;
        };
        read_table(&self.file)
            .map(|t| {
                t.iter()
                    .filter(|(p, b)| *p != 0 && *b > 0 && (*p == self.pid || alive(*p)))
                    .count() as u32
            })
            .unwrap_or(1)
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if let Ok(_lock) = Flock::exclusive(&self.file) {
            let _ = self.file.write_all_at(&pack(0, 0), self.slot * SLOT_BYTES);
        }
    }
}

fn pack(pid: u32, busy: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&pid.to_le_bytes());
    b[4..].copy_from_slice(&busy.to_le_bytes());
    b
}

fn read_table(file: &File) -> std::io::Result<Vec<(u32, u32)>> {
    let mut buf = vec![0u8; (SLOTS * SLOT_BYTES) as usize];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf
        .chunks_exact(8)
        .map(|c| {
            (
                u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect())
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// An advisory lock on the whole file, held until dropped. std takes it with
/// `flock` on Linux, so every process sharing the slots file sees one lock.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    /// Blocks until granted.
    fn exclusive(file: &'a File) -> std::io::Result<Self> {
        file.lock()?;
        Ok(Flock(file))
    }
    fn shared(file: &'a File) -> std::io::Result<Self> {
        file.lock_shared()?;
        Ok(Flock(file))
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too; this lets go at once.
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_flags_parse_and_explain_mistakes() {
        assert_eq!(parse_sharing("none").unwrap(), Sharing::None);
        assert_eq!(
            parse_sharing("time-slicing:4").unwrap(),
            Sharing::TimeSlicing { replicas: 4 }
        );
        assert_eq!(
            parse_sharing("mig:1g.10gb").unwrap(),
            Sharing::Mig {
                layout: vec!["1g.10gb".into()]
            }
        );
        assert!(parse_sharing("time-slicing:0")
            .unwrap_err()
            .contains("N >= 1"));
        assert!(parse_sharing("mig").is_err());
    }

    fn config(profile: PathBuf) -> EmulateConfig {
        EmulateConfig {
            profile,
            gpu_type: None,
            sharing: Sharing::None,
            gpu_id: "0".into(),
            seed: 1,
        }
    }

    fn write_profile(dir: &Path, distribution: &str) -> PathBuf {
        let path = dir.join("p.json");
        let text = format!(
            r#"{{"format":"lab-calibration/v1","model":"m","device":"cpu","gpu":"T4",
            "points":[{{"batch_size":1,"mean_seconds":0.01,"p50_seconds":0.009,
            "p99_seconds":0.02,"samples":10}}]{distribution}}}"#
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_profile_distribution_reaches_the_draws() {
        let dir = tempfile::tempdir().unwrap();
        let exact = write_profile(dir.path(), r#","distribution":{"kind":"deterministic"}"#);
        let em = Emulator::load(&config(exact)).unwrap();
        assert!((0..20).all(|_| em.sample_seconds(1) == 0.01));
        // Without one, the p50/p99 fit spreads the draws.
        let fitted = Emulator::load(&config(write_profile(dir.path(), ""))).unwrap();
        assert!((0..20).any(|_| fitted.sample_seconds(1) != 0.01));
        let bad = write_profile(
            dir.path(),
            r#","distribution":{"kind":"lognormal","cv":-1}"#,
        );
        let e = Emulator::load(&config(bad)).err().unwrap().to_string();
        assert!(e.contains("cv of 0 or more"), "{e}");
    }

    #[test]
    fn a_hold_counts_from_the_batchs_start_not_from_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let exact = write_profile(dir.path(), r#","distribution":{"kind":"deterministic"}"#);
        let em = Emulator::load(&config(exact)).unwrap();
        // The batch began 10 ms ago: its 10 ms are spent, and the hold ends
        // without sleeping.
        let since = Instant::now() - Duration::from_millis(10);
        let t0 = Instant::now();
        em.hold_blocking(1, since);
        assert!(
            t0.elapsed() < Duration::from_millis(9),
            "{:?}",
            t0.elapsed()
        );
        // Begun 4 ms ago, it holds what is left: at least 6 ms more.
        let since = Instant::now() - Duration::from_millis(4);
        em.hold_blocking(1, since);
        assert!(since.elapsed() >= Duration::from_millis(10));
    }

    #[test]
    fn two_coordinators_on_one_file_see_each_other_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gpu");
        let a = Coordinator::open(&path).unwrap();
        // A second slot for the same process: stand in for another tenant.
        let b = Coordinator {
            file: OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap(),
            slot: (a.slot + 1) % SLOTS,
            pid: a.pid,
        };
        assert_eq!(a.busy_tenants(), 0);
        a.set_busy(1);
        assert_eq!(b.busy_tenants(), 1);
        b.set_busy(2);
        assert_eq!(a.busy_tenants(), 2);
        a.set_busy(0);
        assert_eq!(b.busy_tenants(), 1);
        drop(b);
        assert_eq!(a.busy_tenants(), 0);
    }
}
