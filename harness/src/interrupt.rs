//! Ctrl-C (SIGINT) and SIGTERM for the commands that stop gracefully: the first
//! signal asks for a stop (partial results, a drain), a second one exits at once.
//!
//! The signals are served on a thread of their own, so a second one is answered
//! even while the command's own thread is busy simulating or writing.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// The first stop request, once one has come.
#[derive(Clone)]
pub struct Interrupt {
    first: Arc<AtomicI32>,
    seen: watch::Receiver<i32>,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM; `stopping` says what the first
    /// signal does, e.g. "writing partial results". Returns once the handlers are
    /// in place, so a signal sent after it is never lost to the default action.
    pub fn install(stopping: &'static str) -> anyhow::Result<Self> {
        let first = Arc::new(AtomicI32::new(0));
        let (tx, seen) = watch::channel(0);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let flag = first.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let (mut int, mut term) = match (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                    ) {
                        (Ok(i), Ok(t)) => (i, t),
                        (Err(e), _) | (_, Err(e)) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let sig = next(&mut int, &mut term).await;
                    flag.store(sig, Ordering::SeqCst);
                    let _ = tx.send(sig);
                    eprintln!(
                        "\nlab: {}: {stopping}; a second Ctrl-C or SIGTERM exits at once",
                        name(sig)
                    );
                    let again = next(&mut int, &mut term).await;
                    eprintln!("lab: second signal ({}): exiting at once", name(again));
                    std::process::exit(128 + again);
                });
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { first, seen }),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("installing the signal handlers")),
            Err(_) => Err(anyhow::anyhow!(
                "installing the signal handlers: the signal thread ended"
            )),
        }
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.first.load(Ordering::SeqCst) != 0
    }

    /// The exit code of an interrupted command: 130 after SIGINT, 143 after
    /// SIGTERM (128 plus the signal number, as shells report them).
    pub fn exit_code(&self) -> i32 {
        match self.first.load(Ordering::SeqCst) {
            SIGTERM => crate::exit::INTERRUPTED_TERM,
            _ => crate::exit::INTERRUPTED,
        }
    }

    /// Resolves when the first signal comes (for async commands).
    pub async fn stopped(&self) {
        let mut seen = self.seen.clone();
        if seen.wait_for(|s| *s != 0).await.is_err() {
            // The signal thread lives as long as the process; should it end,
            // nothing can ask for a stop any more.
            std::future::pending::<()>().await;
        }
    }
}

async fn next(
    int: &mut tokio::signal::unix::Signal,
    term: &mut tokio::signal::unix::Signal,
) -> i32 {
    tokio::select! {
        _ = int.recv() => SIGINT,
        _ = term.recv() => SIGTERM,
    }
}

fn name(sig: i32) -> &'static str {
    if sig == SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT (Ctrl-C)"
    }
}
