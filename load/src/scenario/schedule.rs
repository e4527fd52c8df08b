//! When streams are due: the open-model schedule, and the run's time zero.
//!
//! Arrival *i* is due at a fixed time whatever the server does, so a server
//! that falls behind shows up as latency, not as a lower rate. The
//! schedule's clock starts after setup (sockets connected and joined, user
//! tasks running): neither is the server's answer to a send.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Plan, RunError};
use crate::metronome;

/// The open-model schedule: (stream number, intended time) until the
/// duration or the stream count runs out.
pub fn schedule(
    plan: &Plan,
    start: Instant,
) -> impl Iterator<Item = (u64, Instant)> + Send + 'static {
    let (rate, ramp_up, max_streams, end) = (
        plan.rate,
        plan.ramp_up,
        plan.max_streams,
        start + plan.duration,
    );
    (0u64..)
        .map(move |i| (i, start + offset(rate, ramp_up, i)))
        .take_while(move |(i, at)| max_streams.is_none_or(|n| *i < n) && *at < end)
}

/// Starts `arrivals` on the metronome, calling `deliver` at each one's time.
pub fn start_metronome<A, F>(arrivals: A, deliver: F) -> Result<(), RunError>
where
    A: Iterator<Item = (u64, Instant)> + Send + 'static,
    F: FnMut(u64, Instant) -> bool + Send + 'static,
{
    crate::cpu::clock_started();
    metronome::start(arrivals, deliver)
        .map(drop)
        .map_err(|e| RunError::Setup(format!("cannot start the schedule's thread: {e}")))
}

/// Starts [`schedule`] on the metronome; the arrivals come out of the
/// returned channel on time, and it closes after the last.
pub fn arrivals(
    plan: &Plan,
    start: Instant,
) -> Result<mpsc::UnboundedReceiver<(u64, Instant)>, RunError> {
    let (tx, rx) = mpsc::unbounded_channel();
    start_metronome(schedule(plan, start), move |i, at| tx.send((i, at)).is_ok())?;
    Ok(rx)
}

/// When arrival `i` is due, for `rate` per second reached linearly over
/// `ramp` (the rate at time t < ramp is rate·t/ramp, so the count due by t is
/// rate·t²/(2·ramp); after the ramp, a steady rate).
pub fn offset(rate: f64, ramp: Duration, i: u64) -> Duration {
    let rate = rate.max(0.001);
    let ramp_s = ramp.as_secs_f64();
    let during_ramp = rate * ramp_s / 2.0;
    let t = if (i as f64) < during_ramp {
        (2.0 * ramp_s * i as f64 / rate).sqrt()
    } else {
        ramp_s + (i as f64 - during_ramp) / rate
    };
    Duration::from_secs_f64(t)
}

/// The run's time zero: the first intended send. Tasks set up before it is
/// known (subscribers, users) share it, and the schedule starts only once
/// they are ready, so neither their setup nor their first polls are counted
/// as the server's latency.
#[derive(Clone, Default)]
pub struct Zero(Arc<OnceLock<Instant>>);

impl Zero {
    /// Starts the clock now; returns the instant.
    pub fn start_now(&self) -> Instant {
        *self.0.get_or_init(Instant::now)
    }

    pub fn get(&self) -> Option<Instant> {
        self.0.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::offset;
    use std::time::Duration;

    #[test]
    fn the_schedule_ramps_linearly_then_holds_the_rate() {
        let none = Duration::ZERO;
        assert_eq!(offset(10.0, none, 0), Duration::ZERO);
        assert_eq!(offset(10.0, none, 25), Duration::from_millis(2500));
        // 100/s reached over 10 s: 500 arrivals during the ramp, 125 in its first half.
        let ramp = Duration::from_secs(10);
        let at = |i| offset(100.0, ramp, i).as_secs_f64();
        assert!(
            (at(500) - 10.0).abs() < 1e-9,
            "the ramp ends with arrival 500"
        );
        assert!(
            (at(125) - 5.0).abs() < 1e-9,
            "a quarter of them by half-time"
        );
        assert!((at(600) - 11.0).abs() < 1e-9, "then 100 a second");
        assert!((1..600).all(|i| at(i) > at(i - 1)), "in order");
    }
}
