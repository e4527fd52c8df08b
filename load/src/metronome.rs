//! The open-model schedule, kept on time by a thread of its own.
//!
//! tokio's timer has millisecond resolution and rounds every deadline up, so
//! a send due at `t` went out between `t` and `t + 1 ms`, and time to first
//! delta is measured from `t`: every figure carried up to a millisecond of
//! the generator's own lateness (measured on an idle mock: time to first
//! delta p50 1.4 ms against an ack p50 of 0.37 ms). A plain thread sleeping
//! on the kernel's high-resolution timer, with its timer slack at 1 µs, hands
//! each arrival to the task that sends it tens of microseconds after its
//! time, and costs one thread that sleeps between arrivals.

use std::thread::JoinHandle;

use tokio::time::Instant;

/// Calls `deliver(i, at)` at each arrival's time `at`, in order, on a new
/// thread; stops early when `deliver` returns false. The thread ends (and
/// drops `deliver`, closing whatever channels it holds) after the last one.
pub fn start<A, F>(arrivals: A, mut deliver: F) -> std::io::Result<JoinHandle<()>>
where
    A: Iterator<Item = (u64, Instant)> + Send + 'static,
    F: FnMut(u64, Instant) -> bool + Send + 'static,
{
    std::thread::Builder::new()
        .name("proteus-metronome".into())
        .spawn(move || {
            fine_timer_slack();
            for (i, at) in arrivals {
                let wait = at
                    .into_std()
                    .saturating_duration_since(std::time::Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                if !deliver(i, at) {
                    break;
                }
            }
        })
}

/// Linux lets a sleeping thread wake up to 50 µs late by default (its timer
/// slack); the metronome asks for 1 µs. A no-op elsewhere.
fn fine_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and affects only
    // the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Every arrival is delivered, in order, not before its time and well
    /// within a millisecond after it (tokio's timer would add up to 1 ms).
    #[test]
    fn delivers_each_arrival_on_time_and_in_order() {
        let start = Instant::now() + Duration::from_millis(5);
        let arrivals = (0..50u64).map(move |i| (i, start + Duration::from_micros(1_300 * i)));
        let (tx, rx) = std::sync::mpsc::channel();
        start_and_join(arrivals, move |i, at| {
            tx.send((i, at, Instant::now())).is_ok()
        });
        let got: Vec<_> = rx.iter().collect();
        assert_eq!(got.len(), 50);
        let mut late: Vec<Duration> = Vec::new();
        for (n, (i, at, when)) in got.iter().enumerate() {
            assert_eq!(*i, n as u64, "in order");
            assert!(*when >= *at, "arrival {i} delivered before its time");
            late.push(*when - *at);
        }
        late.sort();
        // The median, not the max: a loaded test machine may preempt the
        // thread now and then.
        assert!(
            late[25] < Duration::from_micros(500),
            "median lateness {:?}",
            late[25]
        );
    }

    /// Returning false stops the schedule.
    #[test]
    fn stops_when_delivery_fails() {
        let now = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        start_and_join((0..10u64).map(move |i| (i, now)), move |i, _| {
            tx.send(i).is_ok() && i < 3
        });
        assert_eq!(rx.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }

    fn start_and_join<A, F>(arrivals: A, deliver: F)
    where
        A: Iterator<Item = (u64, Instant)> + Send + 'static,
        F: FnMut(u64, Instant) -> bool + Send + 'static,
    {
        start(arrivals, deliver)
            .expect("a thread")
            .join()
            .expect("no panic");
    }
}
