//! One run split over several processes (`--workers N --worker-index I
//! --start-at T`), on one machine or many.
//!
//! Each worker takes its share of the users, the rate and the stream cap,
//! and starts its schedule at the shared instant `T`, shifted by `I / rate`
//! so that the workers' arrivals interleave into the one open schedule a
//! single process would have run. Each writes `--hlog`; `proteus-load merge`
//! adds the histograms and counters and evaluates gates and SLO attainment
//! on the merged run, not per worker. Only `chat` splits: a fan-out
//! worker's subscribers would also see the other workers' streams.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Plan;

/// `n` split into `workers` shares as even as can be; share `index`.
fn share(n: u64, workers: u64, index: u64) -> u64 {
    n / workers + u64::from(index < n % workers)
}

impl Plan {
    /// This worker's part of the plan (the plan itself for one worker).
    pub fn slice(&self, scenario: &str) -> Result<Plan, String> {
        if self.workers == 0 || self.worker_index >= self.workers {
            return Err(format!(
                "--worker-index {} is not one of 0..{} (--workers {})",
                self.worker_index,
                self.workers.max(1),
                self.workers
            ));
        }
        if self.workers == 1 {
            return Ok(self.clone());
        }
        if scenario != "chat" {
            return Err(format!(
                "--workers: only the chat scenario splits ({scenario}'s subscribers would see \
                 every worker's streams); run one {scenario} process"
            ));
        }
        let (n, i) = (self.workers as u64, self.worker_index as u64);
        let users = share(self.users as u64, n, i);
        if users == 0 {
            return Err(format!(
                "--users {} over --workers {}: worker {i} would have no user",
                self.users, self.workers
            ));
        }
        Ok(Plan {
            users: users as usize,
            rate: self.rate / n as f64,
            max_streams: self.max_streams.map(|m| share(m, n, i)),
            ..self.clone()
        })
    }

    /// Waits for the shared start (and this worker's place in the
    /// interleaved schedule); at once without `--start-at`. A worker that
    /// is ready late starts at once and says by how much.
    pub async fn wait_for_start(&self) {
        let Some(at) = self.start_at else { return };
        let total_rate = self.rate * self.workers as f64;
        let offset = if total_rate > 0.0 {
            self.worker_index as f64 / total_rate
        } else {
            0.0
        };
        let due = UNIX_EPOCH + Duration::from_secs_f64(at.max(0.0) + offset);
        match due.duration_since(SystemTime::now()) {
            Ok(wait) => tokio::time::sleep(wait).await,
            Err(late) => eprintln!(
                "proteus-load: worker {} was ready {:.3} s after --start-at; started at once",
                self.worker_index,
                late.duration().as_secs_f64()
            ),
        }
    }
}

/// `--start-at`: Unix seconds (fractions allowed).
pub fn parse_start_at(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| format!("--start-at {s:?}: give Unix seconds, e.g. $(( $(date +%s) + 30 ))"))
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for (n, w) in [(10, 4), (3, 4), (100, 7), (0, 2)] {
            let shares: Vec<u64> = (0..w).map(|i| share(n, w, i)).collect();
            assert_eq!(shares.iter().sum::<u64>(), n, "{n} over {w}: {shares:?}");
            let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(hi - lo <= 1, "{shares:?}");
        }
    }
}
