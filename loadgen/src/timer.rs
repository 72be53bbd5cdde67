//! Wake-ups to the microsecond inside a tokio runtime.
//!
//! tokio's own timer has a 1 ms resolution and rounds up. On Linux a timerfd
//! (CLOCK_MONOTONIC, the clock behind `Instant`) registered with the runtime's
//! epoll wakes the thread when the deadline passes, however idle it was, and
//! the kernel applies no timer slack to it. Elsewhere `Timer::new` gives `None`
//! and the pacer spins instead.

#[cfg(target_os = "linux")]
mod imp {
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    };
    use std::os::fd::OwnedFd;
    use std::time::Instant;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    pub struct Timer {
        fd: AsyncFd<OwnedFd>,
    }

    impl Timer {
        /// A timer on the current runtime, or `None` if the system refuses one.
        pub fn new() -> Option<Timer> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .ok()?;
            // SAFETY: tokio asks that the descriptor stay open while registered:
            // the OwnedFd moves into the AsyncFd, which owns it (and so keeps
            // it open) until the AsyncFd is dropped.
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .ok()
                .map(|fd| Timer { fd })
        }

        /// Completes once `deadline` has passed. Re-arming replaces a deadline
        /// left over from a sleep that was dropped before it completed.
        pub async fn sleep_until(&self, deadline: Instant) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos().into(),
                },
            };
            let fd = self.fd.get_ref();
            if timerfd_settime(fd, TimerfdTimerFlags::empty(), &spec).is_err() {
                tokio::time::sleep_until(deadline.into()).await;
                return;
            }
            loop {
                let Ok(mut ready) = self.fd.readable().await else {
                    tokio::time::sleep_until(deadline.into()).await;
                    return;
                };
                // The expiration count, 8 bytes; EAGAIN when none yet.
                let mut expirations = [0u8; 8];
                if let Ok(8) = rustix::io::read(fd, &mut expirations) {
                    return;
                }
                // Readiness left from an earlier, replaced deadline: not yet.
                ready.clear_ready();
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::time::Instant;

    pub struct Timer;

    impl Timer {
        pub fn new() -> Option<Timer> {
            None
        }

        pub async fn sleep_until(&self, deadline: Instant) {
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

pub use imp::Timer;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn never_wakes_before_the_deadline_and_survives_a_dropped_sleep() {
        let timer = Timer::new().expect("a timerfd");
        // A sleep dropped before its deadline leaves the timer armed; the next
        // one re-arms it and must still wait for its own deadline.
        tokio::select! {
            _ = timer.sleep_until(Instant::now() + Duration::from_secs(60)) => unreachable!(),
            _ = tokio::task::yield_now() => {}
        }
        for ms in [3, 1, 2] {
            let deadline = Instant::now() + Duration::from_millis(ms);
            timer.sleep_until(deadline).await;
            assert!(Instant::now() >= deadline);
        }
        // A deadline in the past completes at once.
        timer.sleep_until(Instant::now()).await;
    }
}
