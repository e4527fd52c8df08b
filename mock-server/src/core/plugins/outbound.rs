//! Where the mock may send a request on a user's behalf.
//!
//! Webhooks (`webhookUrl`, `responseUrl`) are URLs a caller chose, and the
//! mock POSTs to them from its own address: without a policy any user could
//! make it reach what only the machine itself may reach, its own control
//! plane first (`/__admin/reset` answers loopback). The policy, checked
//! before every request and when a URL is given:
//!
//! - never the mock's own listener (its port, on loopback, its own address
//!   or any address when it listens on all of them);
//! - only allowed hosts: `--webhook-allow HOST,…` (`*` for any); without
//!   the flag, loopback hosts when the mock itself listens on loopback, and
//!   none otherwise, so a mock opened to a network never becomes a proxy
//!   into it by default;
//! - no redirects (the HTTP client follows none: a 3xx is a failed
//!   delivery).
//!
//! Names are resolved when checked; the client resolves again when it
//! connects, so a name that changes in between (DNS rebinding) is not
//! caught: the mock is for development and CI, not a boundary facing the
//! internet (docs/ADMIN.md says so).

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

/// Which hosts webhooks may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// Loopback addresses and names that resolve to them only.
    Loopback,
    /// These host names or addresses (compared without case), or any with `*`.
    Hosts(Vec<String>),
}

/// The outbound policy of one mock.
#[derive(Debug, Default)]
pub struct Policy {
    /// `--webhook-allow`; `None` picks the default when the mock starts.
    configured: Option<Allow>,
    /// The address the mock listens on, once it does.
    own: OnceLock<SocketAddr>,
}

impl Policy {
    pub fn new(configured: Option<Allow>) -> Self {
        Policy {
            configured,
            own: OnceLock::new(),
        }
    }

    /// Records the listening address (outbound requests never go there).
    pub fn listening_on(&self, addr: SocketAddr) {
        let _ = self.own.set(addr);
    }

    fn allow(&self) -> Allow {
        match (&self.configured, self.own.get()) {
            (Some(a), _) => a.clone(),
            (None, Some(own)) if !own.ip().to_canonical().is_loopback() => Allow::Hosts(Vec::new()),
            (None, _) => Allow::Loopback,
        }
    }

    /// Whether the mock may POST to `url`; the error says why not and what
    /// to change.
    pub async fn check(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(format!("{url:?} must be an http(s) URL"));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("{url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
                .map(|a| a.ip())
                .collect(),
        };
        if let Some(own) = self.own.get()
            && port == own.port()
            && addrs.iter().any(|ip| {
                let ip = ip.to_canonical();
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip == own.ip()
                    || own.ip().is_unspecified()
            })
        {
            return Err(format!(
                "{url:?} is this mock's own listener: the mock never sends a request to itself"
            ));
        }
        match self.allow() {
            Allow::Loopback => {
                if addrs.is_empty() || !addrs.iter().all(|ip| ip.to_canonical().is_loopback()) {
                    return Err(format!(
                        "{host:?} is not a loopback host: webhooks may reach only this machine unless the mock starts with --webhook-allow {host}"
                    ));
                }
            }
            Allow::Hosts(hosts) => {
                let listed = hosts
                    .iter()
                    .any(|h| h == "*" || h.eq_ignore_ascii_case(&host));
                if !listed {
                    return Err(format!(
                        "{host:?} is not an allowed webhook host: start the mock with --webhook-allow {host} (now: {})",
                        if hosts.is_empty() {
                            "none, because the mock listens beyond loopback".to_string()
                        } else {
                            hosts.join(",")
                        }
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Parses `--webhook-allow`: `loopback`, `*`, or host names and addresses
/// separated by commas.
pub fn parse_allow(text: &str) -> Allow {
    if text.trim().eq_ignore_ascii_case("loopback") {
        return Allow::Loopback;
    }
    Allow::Hosts(
        text.split(',')
            .map(|h| {
                h.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            })
            .filter(|h| !h.is_empty())
            .collect(),
    )
}
