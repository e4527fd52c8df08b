//! The generator watches its own CPU, thread by thread, to say when it may be
//! the bottleneck it is measuring.
//!
//! The process's CPU time alone says little. 150% on a four-thread runtime is
//! not a bottleneck, while one worker at 100% is, even with the process at
//! 50%: every frame of the connections that worker owns waits for it, and the
//! wait is reported as the server's latency. So a plain thread (not a task:
//! a saturated runtime would delay the very task that should notice) reads
//! every thread's CPU time from `/proc/self/task` once a second and keeps
//! the busiest thread per interval. The same watch on `--server-pid` tells
//! whether the server is bound by one thread (a Node server at 100% of one
//! core falls behind with the machine's other cores idle).

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

/// CPU seconds (user + system) a process has used: `self` or a pid.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// The server watched in this run (`--server-pid`), and its CPU seconds
/// when the scenario's clock started: setup (registrations, connections,
/// joins) is not the workload, and a server whose setup is costly would
/// otherwise look slower per delivery than it is (or a cheap one faster).
static SERVER: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
static AT_CLOCK: std::sync::Mutex<Option<f64>> = std::sync::Mutex::new(None);

/// A run starts: the server to read at the clock's start (none: nothing).
pub fn watch_server(pid: Option<String>) {
    *SERVER.lock().unwrap_or_else(|p| p.into_inner()) = pid;
    *AT_CLOCK.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// The scenario's clock starts (its setup is done): note the server's CPU.
pub fn clock_started() {
    let pid = SERVER.lock().unwrap_or_else(|p| p.into_inner()).clone();
    *AT_CLOCK.lock().unwrap_or_else(|p| p.into_inner()) = pid.as_deref().and_then(cpu_seconds);
}

/// The server's CPU seconds when the clock started, if it was read.
pub fn server_at_clock() -> Option<f64> {
    *AT_CLOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A thread busy this share of an interval is saturated.
pub const SATURATED: f64 = 0.9;

/// CPU ticks per thread at one instant: thread id → (name, user + system ticks).
pub type Sample = HashMap<u32, (String, u64)>;

/// What the watch saw over a run; serialized as the report's
/// `cpu.generator` and `cpu.server` (`$defs/threadWatch` in
/// schemas/report/load.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Cores this process may run on.
    pub cores: usize,
    /// Whole intervals sampled.
    #[serde(rename = "sampledSeconds")]
    pub intervals: u32,
    /// Intervals in which at least one thread was saturated.
    #[serde(rename = "saturatedSeconds")]
    pub saturated_intervals: u32,
    /// The busiest thread of any one interval.
    #[serde(rename = "busiestThread")]
    pub busiest: Option<Busiest>,
    /// The highest share of the available cores the process used in one interval.
    #[serde(rename = "peakCoresUsed")]
    pub process_peak_cores: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Busiest {
    #[serde(rename = "name")]
    pub thread: String,
    /// Share of the interval (0-1).
    pub share: f64,
    /// When, in seconds since the watch started (end of the interval).
    pub at_second: f64,
}

/// Running watch; `stop` ends it and returns the verdict.
pub struct Watch {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<Verdict>,
}

impl Watch {
    /// Starts sampling process `pid` ("self" for this one) every `every`
    /// on a thread of its own.
    pub fn start(pid: String, every: Duration) -> Watch {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            let sample = || sample(&pid);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut verdict = Verdict {
                cores,
                ..Verdict::default()
            };
            let started = Instant::now();
            let (mut before, mut since) = (sample(), Instant::now());
            loop {
                let done = !matches!(
                    stopped.recv_timeout(every),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                let seconds = since.elapsed().as_secs_f64();
                // A last partial interval under a quarter second is too coarse
                // for 10 ms ticks.
                if !done || seconds >= every.as_secs_f64() / 4.0 {
                    let after = sample();
                    let shares = shares(&before, &after, seconds, ticks_per_second());
                    verdict.record(&shares, started.elapsed().as_secs_f64());
                    (before, since) = (after, Instant::now());
                }
                if done {
                    return verdict;
                }
            }
        });
        Watch { stop, handle }
    }

    pub fn stop(self) -> Verdict {
        let _ = self.stop.send(());
        self.handle.join().unwrap_or_default()
    }
}

impl Verdict {
    /// Adds one interval's per-thread shares.
    pub fn record(&mut self, shares: &[(String, f64)], at_second: f64) {
        self.intervals += 1;
        let total: f64 = shares.iter().map(|(_, s)| s).sum();
        self.process_peak_cores = self.process_peak_cores.max(total);
        let Some((thread, share)) = shares.iter().max_by(|a, b| a.1.total_cmp(&b.1)).cloned()
        else {
            return;
        };
        if share >= SATURATED {
            self.saturated_intervals += 1;
        }
        if self.busiest.as_ref().is_none_or(|b| share > b.share) {
            self.busiest = Some(Busiest {
                thread,
                share,
                at_second,
            });
        }
    }

    /// `thread "NAME" was P% busy (at S s); a thread was over 90% in N of M
    /// seconds`, when some thread was saturated.
    fn saturation(&self) -> Option<String> {
        let b = self
            .busiest
            .as_ref()
            .filter(|_| self.saturated_intervals > 0)?;
        Some(format!(
            "thread {:?} was {:.0}% busy (at {:.0} s); a thread was over {:.0}% in {} of {} seconds",
            b.thread,
            b.share * 100.0,
            b.at_second,
            SATURATED * 100.0,
            self.saturated_intervals,
            self.intervals
        ))
    }

    /// For a watched server: a note when one of its threads was saturated.
    pub fn server_note(&self) -> Option<String> {
        self.saturation().map(|s| {
            format!(
                "server {s}: the server is bound by one thread there, whatever its other cores do"
            )
        })
    }

    /// The warnings a user should read, if any.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = self.saturation() {
            out.push(format!(
                "generator {s}: the connections on it wait for it, so latency and throughput may be the generator's. \
                 Give --threads more workers, or spread the run over several processes and `proteus-load merge` their --hlog files"
            ));
        }
        if self.process_peak_cores >= SATURATED * self.cores as f64 {
            out.push(format!(
                "the generator used {:.1} of the {} cores it may run on: it competes with the server for CPU",
                self.process_peak_cores, self.cores
            ));
        }
        out
    }
}

/// Each thread's share of `seconds` between two samples (threads that ended
/// in between are gone; threads that started count from zero).
pub fn shares(
    before: &Sample,
    after: &Sample,
    seconds: f64,
    ticks_per_second: f64,
) -> Vec<(String, f64)> {
    if seconds <= 0.0 {
        return Vec::new();
    }
    after
        .iter()
        .map(|(tid, (name, ticks))| {
            let was = before.get(tid).map_or(0, |(_, t)| *t);
            let used = ticks.saturating_sub(was) as f64 / ticks_per_second;
            (format!("{name} ({tid})"), (used / seconds).min(1.0))
        })
        .collect()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Every thread of process `pid` ("self" for this one), from
/// /proc/PID/task (empty elsewhere, or once the process is gone).
pub fn sample(pid: &str) -> Sample {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Sample::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_string();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
            let ticks =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some((tid, (name, ticks)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watch of `cores` cores after one interval of `seconds` from `before` to `after`.
    fn watched(cores: usize, before: &Sample, after: &Sample, seconds: f64) -> Verdict {
        let mut v = Verdict {
            cores,
            ..Verdict::default()
        };
        v.record(&shares(before, after, seconds, 100.0), seconds);
        v
    }

    fn at(threads: &[(u32, &str, u64)]) -> Sample {
        threads
            .iter()
            .map(|(tid, name, ticks)| (*tid, (name.to_string(), *ticks)))
            .collect()
    }

    #[test]
    fn one_hot_thread_is_a_bottleneck_even_when_the_process_is_not() {
        // Four workers: one at 95%, three idle. The process uses under one of four cores.
        let before = at(&[(1, "w", 0), (2, "w", 0), (3, "w", 0), (4, "w", 0)]);
        let after = at(&[(1, "w", 95), (2, "w", 2), (3, "w", 1), (4, "w", 0)]);
        let v = watched(4, &before, &after, 1.0);
        assert_eq!(v.saturated_intervals, 1);
        assert_eq!(v.busiest.as_ref().map(|b| b.thread.as_str()), Some("w (1)"));
        let warnings = v.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("95% busy"), "{warnings:?}");
    }

    #[test]
    fn many_busy_threads_below_saturation_are_not_a_bottleneck() {
        // Four workers at 60% each: 2.4 cores of 4, none saturated.
        let before = at(&[(1, "w", 0), (2, "w", 0), (3, "w", 0), (4, "w", 0)]);
        let after = at(&[(1, "w", 60), (2, "w", 60), (3, "w", 60), (4, "w", 60)]);
        let v = watched(4, &before, &after, 1.0);
        assert!(v.warnings().is_empty(), "{:?}", v.warnings());
        assert!((v.process_peak_cores - 2.4).abs() < 1e-9);
    }

    #[test]
    fn a_process_using_all_its_cores_is_reported() {
        let before = at(&[(1, "w", 0), (2, "w", 0)]);
        let after = at(&[(1, "w", 170), (2, "w", 170)]);
        let mut v = Verdict {
            cores: 2,
            ..Verdict::default()
        };
        // Two seconds: 85% each, 1.7 of 2 cores: under saturation.
        v.record(&shares(&before, &after, 2.0, 100.0), 2.0);
        assert!(v.warnings().is_empty(), "{:?}", v.warnings());
        let after = at(&[(1, "w", 190), (2, "w", 190)]);
        v.record(&shares(&before, &after, 2.0, 100.0), 4.0);
        let warnings = v.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[1].contains("1.9 of the 2 cores"), "{warnings:?}");
    }

    #[test]
    fn a_thread_that_started_between_samples_counts_from_zero() {
        let before = at(&[(1, "main", 500)]);
        let after = at(&[(1, "main", 510), (7, "new", 40)]);
        let s = shares(&before, &after, 1.0, 100.0);
        let new = s.iter().find(|(n, _)| n == "new (7)").map(|(_, v)| *v);
        assert_eq!(new, Some(0.4));
    }

    #[test]
    fn this_process_is_sampled_with_names() {
        let s = sample("self");
        assert!(!s.is_empty(), "no threads read from /proc/self/task");
        assert!(s.values().all(|(name, _)| !name.is_empty()));
    }
}
