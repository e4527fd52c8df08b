//! `proteus-conformance proxy` (part of the binary): its flags, start-up,
//! live summary and reports. The relay itself and what it checks live in
//! the library (`proteus_conformance::proxy`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proteus_conformance::profile::exit;
use proteus_conformance::runner;

use crate::{Outputs, fail, parse_duration};

/// The proxy's flags.
#[derive(clap::Args, Debug)]
pub struct ProxyArgs {
    /// Where the client connects instead of the server.
    #[arg(long, default_value = "127.0.0.1:4001", value_name = "ADDR")]
    listen: std::net::SocketAddr,
    /// The server: http://HOST:PORT or https://HOST.
    #[arg(long, value_name = "URL")]
    upstream: String,
    /// Trust these PEM CA certificates for an https upstream instead of the system's.
    #[arg(long, value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
    /// Write every exchange as JSON lines (validate reads them back).
    #[arg(long, value_name = "FILE")]
    capture: Option<PathBuf>,
    /// Keep tokens in the capture (they are redacted by default).
    #[arg(long)]
    keep_tokens: bool,
    /// Check every delta against its schema in full, not only each stream's first
    /// (slower; with --capture every frame is checked in full anyway).
    #[arg(long)]
    full_schema: bool,
    /// Stop after this long (e.g. 30s, 5m); default: until Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Write the summary (exchanges, violations) as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here (a test case per violation).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    report_html: Option<PathBuf>,
}
/// `proteus-conformance proxy`.
pub async fn proxy(args: ProxyArgs) -> i32 {
    let ProxyArgs {
        listen,
        upstream,
        upstream_ca,
        capture,
        keep_tokens,
        full_schema,
        duration,
        json,
        junit,
        report_html,
    } = args;
    let upstream = upstream.as_str();
    let reports = Outputs {
        json: None,
        junit,
        report_html,
    };
    use proteus_conformance::proxy::{self, Proxy, watch::Watch};
    let started = Instant::now();
    if !upstream.starts_with("http://") && !upstream.starts_with("https://") {
        fail(
            exit::USAGE,
            &format!("--upstream {upstream:?}: give http://HOST:PORT or https://HOST"),
        );
    }
    let ca = upstream_ca.as_ref().map(|p| {
        std::fs::read(p)
            .unwrap_or_else(|e| fail(exit::USAGE, &format!("cannot read {}: {e}", p.display())))
    });
    let file = capture.as_ref().map(|p| {
        std::fs::File::create(p)
            .unwrap_or_else(|e| fail(exit::USAGE, &format!("cannot write {}: {e}", p.display())))
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| fail(exit::USAGE, &format!("cannot listen on {listen}: {e}")));
    let watch = Arc::new(Watch::with_full_schema(
        file,
        keep_tokens,
        false,
        full_schema,
    ));
    let relay = Arc::new(
        Proxy::new(upstream, watch.clone(), ca.as_deref()).unwrap_or_else(|e| {
            fail(
                exit::USAGE,
                &format!(
                    "--upstream-ca {}: {e}",
                    upstream_ca
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string())
                ),
            )
        }),
    );
    println!(
        "proteus-conformance proxy: listening on http://{}, relaying to {upstream}{}",
        listener.local_addr().unwrap_or(listen),
        duration.map_or_else(|| " until Ctrl-C".to_string(), |d| format!(" for {d:?}"))
    );
    let stop = async move {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    if let Err(e) = proxy::serve(listener, relay, stop).await {
        fail(exit::UNREACHABLE, &format!("the proxy stopped: {e}"));
    }
    let (exchanges, violations) = watch.finish();
    println!(
        "\n{exchanges} exchanges relayed, {} violations",
        violations.len()
    );
    if let Some(path) = json {
        let doc = serde_json::json!({
            "tool": "proteus-conformance proxy",
            "toolVersion": env!("CARGO_PKG_VERSION"),
            "upstream": upstream,
            "exchanges": exchanges,
            "violations": violations.iter().map(|v| serde_json::json!({
                "what": v.what, "expected": v.expected, "actual": v.actual, "context": v.context,
            })).collect::<Vec<_>>(),
        });
        if let Err(e) = std::fs::write(
            &path,
            serde_json::to_string_pretty(&doc).unwrap_or_default(),
        ) {
            fail(
                exit::UNREACHABLE,
                &format!("cannot write {}: {e}", path.display()),
            );
        }
    }
    let code = i32::from(!violations.is_empty());
    if reports.junit.is_some() || reports.report_html.is_some() {
        // A row per violation, in the runner's form, for JUnit and HTML.
        let rows: Vec<runner::CaseResult> = if violations.is_empty() {
            vec![proxy_row(
                "proxy.clean",
                "no violation in the relayed traffic",
                None,
            )]
        } else {
            violations
                .iter()
                .enumerate()
                .map(|(i, v)| proxy_row(&format!("proxy.{}", i + 1), &v.what, Some(v)))
                .collect()
        };
        reports.write(&rows, upstream, "proxy", started, code, false, false);
    }
    code
}

/// A proxy violation (or the clean run) as a report row.
fn proxy_row(
    id: &str,
    what: &str,
    v: Option<&proteus_conformance::proxy::watch::Violation>,
) -> runner::CaseResult {
    let outcome = match v {
        None => proteus_conformance::case::Outcome::Pass,
        Some(v) => proteus_conformance::case::Outcome::Fail(proteus_conformance::case::Failure {
            expected: vec![v.expected.clone()],
            actual: v.actual.clone(),
            reproducer: v.context.join("\n"),
        }),
    };
    runner::judge(
        id,
        proteus_conformance::case::Level::Must,
        what,
        "Live traffic follows docs/PROTOCOL.md (envelopes, event schemas, streams).",
        outcome,
        Duration::ZERO,
        v.map(|v| v.context.join("\n")).unwrap_or_default(),
        &[],
    )
}
