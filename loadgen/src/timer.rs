//! Wake-ups to the microsecond inside a tokio runtime.
//!
//! tokio's own timer has a 1 ms resolution and rounds up. On Linux a timerfd
//! (CLOCK_MONOTONIC, the clock behind `Instant`) registered with the runtime's
//! epoll wakes the thread when the deadline passes, however idle it was, and
//! the kernel applies no timer slack to it. Elsewhere `Timer::new` gives `None`
//! and the pacer spins instead.

#[cfg(target_os = "linux")]
mod imp {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Instant;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    pub struct Timer {
        fd: AsyncFd<OwnedFd>,
    }

    impl Timer {
        /// A timer on the current runtime, or `None` if the system refuses one.
        pub fn new() -> Option<Timer> {
            // SAFETY: plain system call; the descriptor is checked and owned below.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return None;
            }
            // SAFETY: `raw` is a descriptor we just opened and nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: the OwnedFd is open and moves into the AsyncFd, which
            // owns it (and so keeps it open) until the AsyncFd is dropped.
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
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                },
            };
            let fd = self.fd.get_ref().as_raw_fd();
            // SAFETY: `fd` is our open timerfd and `spec` a valid itimerspec.
            if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } != 0 {
                tokio::time::sleep_until(deadline.into()).await;
                return;
            }
            loop {
                let Ok(mut ready) = self.fd.readable().await else {
                    tokio::time::sleep_until(deadline.into()).await;
                    return;
                };
                let mut expirations = 0u64;
                // SAFETY: reads 8 bytes into a u64 we own.
                let n = unsafe {
                    libc::read(
                        fd,
                        (&mut expirations as *mut u64).cast::<libc::c_void>(),
                        std::mem::size_of::<u64>(),
                    )
                };
                if n == std::mem::size_of::<u64>() as isize {
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
