//! Spawning children that cannot outlive `lab`.
//!
//! Three layers, because each one alone has a hole:
//! - a process group per owner (`setpgid` in the child), so one `killpg` reaches
//!   every child and grandchild, and a terminal's Ctrl-C (sent to the foreground
//!   group) does not reach them before `lab` has read its final figures;
//! - `kill_on_drop` on every child and `killpg` when the owner is dropped, which
//!   covers errors and panics that unwind;
//! - on Linux, `PR_SET_PDEATHSIG = SIGKILL`, which covers a parent killed by
//!   SIGKILL (no destructor runs). The kernel fires it when the *thread* that
//!   forked the child exits, not the process, so every fork happens on one
//!   dedicated thread that lives exactly as long as its owner: a tokio blocking
//!   thread retiring after its idle timeout would otherwise kill healthy pods.

use std::io;
use std::process::Command as StdCommand;
use std::sync::mpsc as std_mpsc;
use std::thread;

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Where a new child goes: a new process group it leads, or an existing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    New,
    Join(i32),
}

type Reply = oneshot::Sender<io::Result<Child>>;

/// The one thread that forks a given owner's children (see the module docs).
pub struct Spawner {
    tx: Option<std_mpsc::Sender<(StdCommand, Group, Reply)>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Spawner {
    /// Must be called inside a tokio runtime: children are reaped by its driver.
    pub fn new(name: &str) -> io::Result<Spawner> {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| {
            io::Error::other(format!(
                "the {name} must be created inside a tokio runtime: {e}"
            ))
        })?;
        let (tx, rx) = std_mpsc::channel::<(StdCommand, Group, Reply)>();
        let thread = thread::Builder::new()
            .name(format!("lab-{name}-spawner"))
            .spawn(move || {
                let _runtime = handle.enter();
                // Ends when the owner drops the sender.
                for (cmd, group, reply) in rx {
                    let _ = reply.send(spawn_guarded(cmd, group));
                }
            })?;
        Ok(Spawner {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Spawns `cmd` on the spawner thread, in `group`, guarded as the module says.
    pub async fn spawn(&self, cmd: StdCommand, group: Group) -> io::Result<Child> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| io::Error::other("spawner stopped"))?
            .send((cmd, group, reply))
            .map_err(|_| io::Error::other("spawner thread exited"))?;
        answer
            .await
            .map_err(|_| io::Error::other("spawner thread exited"))?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn spawn_guarded(cmd: StdCommand, group: Group) -> io::Result<Child> {
    let mut cmd = Command::from(cmd);
    cmd.kill_on_drop(true);
    cmd.process_group(match group {
        Group::New => 0,
        Group::Join(pgid) => pgid,
    });
    #[cfg(target_os = "linux")]
    {
        // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() != parent {
                    return Err(io::Error::other("parent exited during spawn"));
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// Sends `signal` to one process. ESRCH (already gone) is not an error.
pub fn signal(pid: u32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) with a pid we spawned and have not yet reaped.
    unless_gone(unsafe { libc::kill(pid as libc::pid_t, signal) })
}

/// Sends `signal` to a whole process group. ESRCH (group empty) is not an error.
pub fn signal_group(pgid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: killpg(2) on a group whose leader we spawned.
    unless_gone(unsafe { libc::killpg(pgid, signal) })
}

/// A kill(2)-style return code as a result; ESRCH (nobody left to signal) is fine.
fn unless_gone(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(e)
    }
}

/// A free TCP port on 127.0.0.1, found by binding port 0 and letting it go.
/// Another process may take it before our child binds it; callers that can
/// tell (Prometheus' log says so) retry with a fresh one.
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}
