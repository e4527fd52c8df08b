//! Benchmark consumer for the mock's two workloads (docs/BENCHMARKS.md), used
//! until `proteus-load` has its scenarios. The conformance crate's client
//! (its login, join and borrowed frame classification); parses only what it
//! times.
//!
//!   cargo run --release -p proteus-load --example bench -- fanout URL [SOCKETS] [SECS] [SERVER_PID]
//!   cargo run --release -p proteus-load --example bench -- many-chats URL [SOCKETS] [SERVER_PID]
//!
//! Talks only to the URL given (use 127.0.0.1) and stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use proteus_conformance::client::{Client, Login, Packet, encode_event, event};
use serde_json::json;

const ADA: &str = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
const WELCOME: &str = "682f4b313981b5f54e96ea4b";
const STREAMER: &str = "6819a0e484df0fc342cea506";

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn status_kb(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Connects, waits for `success`.
async fn open(url: &str) -> anyhow::Result<Client> {
    Ok(Login::new(url, ADA).open().await?)
}

async fn join(c: &mut Client, chat: &str) -> anyhow::Result<()> {
    c.join(chat, Duration::from_secs(10), drop).await?;
    Ok(())
}

/// Which of a stream's events a frame is, by name only.
fn kind(text: &str) -> Option<&'static str> {
    match Packet::parse(text) {
        Packet::Event {
            name: event::MESSAGE_DELTA,
            ..
        } => Some(event::MESSAGE_DELTA),
        Packet::Event {
            name: event::MESSAGE_DONE,
            ..
        } => Some(event::MESSAGE_DONE),
        _ => None,
    }
}

/// A chat of Ada's with the Streamer agent, made before the timed part.
async fn create_chat(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let answer: serde_json::Value = http
        .post(format!("{url}/api/chats"))
        .bearer_auth(ADA)
        .json(&json!({ "participants": [{ "id": STREAMER, "type": "AGENT" }] }))
        .send()
        .await?
        .json()
        .await?;
    answer["data"]["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("POST /api/chats answered {answer}"))
}

#[derive(Default)]
struct Counts {
    deltas: AtomicU64,
    dones: AtomicU64,
    bytes: AtomicU64,
}

async fn fanout(
    url: &str,
    sockets: usize,
    secs: u64,
    server_pid: Option<&str>,
) -> anyhow::Result<()> {
    const CHUNKS: u64 = 50;
    let text = "x".repeat(CHUNKS as usize * 8);
    let mut clients = Vec::new();
    for _ in 0..sockets {
        let mut c = open(url).await?;
        join(&mut c, WELCOME).await?;
        clients.push(c);
    }
    let counts: Arc<Vec<Counts>> = Arc::new((0..sockets).map(|_| Counts::default()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut driver = clients.remove(0);
    let mut readers = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let (counts, stop) = (counts.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let me = &counts[i + 1];
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), c.next_text()).await {
                    Ok(Ok(t)) => {
                        me.bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                        match kind(&t) {
                            Some(event::MESSAGE_DELTA) => {
                                me.deltas.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(event::MESSAGE_DONE) => {
                                me.dones.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {}
                        }
                    }
                    Ok(Err(e)) => return Err(anyhow::anyhow!("reader {i}: {e}")),
                    Err(_) => {}
                }
            }
            Ok(())
        }));
    }
    let send = json!({ "chatId": WELCOME, "content": "bench", "streamResponse": true,
        "state": { "mock": { "chunks": CHUNKS, "text": text, "chunkDelayMs": 0, "firstChunkDelayMs": 0 } } });
    let (cpu0, srv0) = (cpu_seconds("self"), server_pid.and_then(cpu_seconds));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut sent = 0u64;
    const INFLIGHT: u64 = 2;
    let me = &counts[0];
    for _ in 0..INFLIGHT {
        driver.emit(event::MESSAGE_SEND, &send).await?;
        sent += 1;
    }
    loop {
        let t = driver.next_text().await?;
        me.bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
        let k = kind(&t);
        if k == Some(event::MESSAGE_DELTA) {
            me.deltas.fetch_add(1, Ordering::Relaxed);
        } else if k == Some(event::MESSAGE_DONE) {
            let done = me.dones.fetch_add(1, Ordering::Relaxed) + 1;
            if Instant::now() < deadline {
                driver.emit(event::MESSAGE_SEND, &send).await?;
                sent += 1;
            } else if done == sent {
                break;
            }
        }
    }
    // Let the other sockets drain the last stream.
    let drain_until = Instant::now() + Duration::from_secs(10);
    while counts
        .iter()
        .any(|c| c.dones.load(Ordering::Relaxed) < sent)
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await??;
    }
    let (cpu1, srv1) = (cpu_seconds("self"), server_pid.and_then(cpu_seconds));
    let delivered: u64 = counts
        .iter()
        .map(|c| c.deltas.load(Ordering::Relaxed))
        .sum();
    let bytes: u64 = counts.iter().map(|c| c.bytes.load(Ordering::Relaxed)).sum();
    let expected = sent * CHUNKS * sockets as u64;
    let report = json!({
        "workload": "fanout", "sockets": sockets, "streams": sent, "deltasPerStream": CHUNKS, "chunkBytes": 8,
        "seconds": elapsed, "deltasDelivered": delivered, "deltasExpected": expected, "lost": expected.saturating_sub(delivered),
        "deltasPerSecond": delivered as f64 / elapsed, "megabytesPerSecond": bytes as f64 / elapsed / 1e6,
        "consumerCpuSeconds": cpu1.zip(cpu0).map(|(a, b)| a - b),
        "serverCpuSeconds": srv1.zip(srv0).map(|(a, b)| a - b),
        "serverMaxRssKb": server_pid.and_then(|p| status_kb(p, "VmHWM:")),
    });
    println!("{report}");
    Ok(())
}

async fn many_chats(url: &str, sockets: usize, server_pid: Option<&str>) -> anyhow::Result<()> {
    // BENCH_CHUNKS shortens the streams and BENCH_PAUSE_MS waits before the
    // burst, to profile the burst of sends alone.
    let chunks: u64 = std::env::var("BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    const PACE_MS: u64 = 20;
    let mut clients = Vec::new();
    let http = reqwest::Client::new();
    for _ in 0..sockets {
        // Each socket's own chat exists before the burst (as in
        // proteus-load's chat scenario): the burst is the sends alone.
        clients.push((open(url).await?, create_chat(&http, url).await?));
    }
    if let Some(pause) = std::env::var("BENCH_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // Lets a profiler attach to the server for the burst alone.
        eprintln!("burst in {pause} ms");
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(sockets));
    let (cpu0, srv0) = (cpu_seconds("self"), server_pid.and_then(cpu_seconds));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut c, chat) in clients {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            // Raw samples (µs): one histogram per task would cost ~0.5 MB each.
            let mut ttfd: Vec<u64> = Vec::with_capacity(1);
            let mut gaps: Vec<u64> = Vec::with_capacity(chunks as usize);
            // Encoded before the barrier: after it, a send is one write.
            let send = json!({ "chatId": chat, "content": "go", "streamResponse": true,
                "state": { "mock": { "chunks": chunks, "chunkDelayMs": PACE_MS, "firstChunkDelayMs": 0 } } });
            let packet = encode_event(None, event::MESSAGE_SEND, &send);
            barrier.wait().await;
            let t0 = Instant::now();
            c.send_raw_packet(&packet).await?;
            let mut last: Option<Instant> = None;
            let mut deltas = 0u64;
            loop {
                let t = c.next_text().await?;
                let now = Instant::now();
                let k = kind(&t);
                if k == Some(event::MESSAGE_DELTA) {
                    deltas += 1;
                    match last {
                        None => ttfd.push((now - t0).as_micros() as u64),
                        Some(prev) => gaps.push((now - prev).as_micros() as u64),
                    }
                    last = Some(now);
                } else if k == Some(event::MESSAGE_DONE) {
                    break;
                }
            }
            c.close().await;
            Ok::<_, anyhow::Error>((ttfd, gaps, deltas))
        }));
    }
    let mut ttfd = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut gaps = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut delivered = 0;
    for t in tasks {
        let (a, b, d) = t.await.context("task")??;
        for v in a {
            ttfd.record(v.max(1))?;
        }
        for v in b {
            gaps.record(v.max(1))?;
        }
        delivered += d;
    }
    let (cpu1, srv1) = (cpu_seconds("self"), server_pid.and_then(cpu_seconds));
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let expected = chunks * sockets as u64;
    let report = json!({
        "workload": "many-chats", "sockets": sockets, "deltasPerStream": chunks, "paceMs": PACE_MS,
        "deltasDelivered": delivered, "lost": expected.saturating_sub(delivered),
        "ttfdMs": { "p50": ms(&ttfd, 0.5), "p99": ms(&ttfd, 0.99), "max": ttfd.max() as f64 / 1000.0 },
        "gapMs": { "p50": ms(&gaps, 0.5), "p99": ms(&gaps, 0.99), "max": gaps.max() as f64 / 1000.0 },
        "seconds": elapsed,
        "consumerCpuSeconds": cpu1.zip(cpu0).map(|(a, b)| a - b),
        "serverCpuSeconds": srv1.zip(srv0).map(|(a, b)| a - b),
        "serverMaxRssKb": server_pid.and_then(|p| status_kb(p, "VmHWM:")),
    });
    println!("{report}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1)) {
        (Some("fanout"), Some(url)) => {
            let sockets = arg(2).map_or(Ok(100), str::parse).context("SOCKETS")?;
            let secs = arg(3).map_or(Ok(3), str::parse).context("SECS")?;
            fanout(url, sockets, secs, arg(4)).await
        }
        (Some("many-chats"), Some(url)) => {
            let sockets = arg(2).map_or(Ok(1000), str::parse).context("SOCKETS")?;
            many_chats(url, sockets, arg(3)).await
        }
        _ => bail!(
            "usage: bench fanout URL [SOCKETS] [SECS] [SERVER_PID] | bench many-chats URL [SOCKETS] [SERVER_PID]"
        ),
    }
}
