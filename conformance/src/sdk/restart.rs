//! The `rejoin` task's director: while the adapter runs, restart the mock's
//! realtime side once the SDK has joined its chat, wait for the SDK to join
//! again, then post a message it must receive.
//!
//! A restart is `POST /__admin/restart` (every realtime connection ends
//! without a goodbye, the rooms are forgotten, the world stays), so the
//! only way the SDK gets the later message is to reconnect *and* join
//! again: socket.io clients reconnect by themselves, but rooms live on the
//! server, and rejoining them is the SDK's job.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::Prepared;
use super::mock::Mock;

/// How long the director waits for the SDK to join again after a restart
/// (documented in docs/CLIENTS.md): socket.io's default first reconnection
/// comes within 1.5 s, its longest default back-off is 5 s.
pub const REJOIN_WITHIN: Duration = Duration::from_secs(5);

/// What the director did and saw, read by the judge.
#[derive(Debug, Clone, Default)]
pub struct Directed {
    /// The SDK joined the chat and the mock was restarted.
    pub restarted: bool,
    /// The chat was joined again after the restart, within [`REJOIN_WITHIN`].
    pub rejoined: bool,
    /// The id of the message posted after the restart.
    pub posted: Option<String>,
    /// A control-plane problem (the judge reports it).
    pub problem: Option<String>,
}

/// Directs a restart; records progress in `into` as it goes, so what was
/// done is known even when the adapter exits first and this is dropped.
pub async fn direct(mock: &Mock<'_>, p: &Prepared, limit: Duration, into: &Mutex<Directed>) {
    if let Err(e) = steps(mock, p, limit, into).await {
        note(into, |d| d.problem = Some(e));
    }
}

fn note(into: &Mutex<Directed>, f: impl FnOnce(&mut Directed)) {
    f(&mut into.lock().unwrap_or_else(|e| e.into_inner()));
}

async fn steps(
    mock: &Mock<'_>,
    p: &Prepared,
    limit: Duration,
    into: &Mutex<Directed>,
) -> Result<(), String> {
    let until = |within: Duration| {
        let deadline = Instant::now() + within;
        move || Instant::now() < deadline
    };
    let pause = || tokio::time::sleep(Duration::from_millis(50));
    let waiting = until(limit);
    let before = loop {
        let n = mock.joins(&p.chat_id).await?;
        if n > 0 {
            break n;
        }
        if !waiting() {
            return Ok(());
        }
        pause().await;
    };
    mock.admin(reqwest::Method::POST, "/__admin/restart", None)
        .await?;
    note(into, |d| d.restarted = true);
    let waiting = until(REJOIN_WITHIN);
    while waiting() {
        if mock.joins(&p.chat_id).await? > before {
            note(into, |d| d.rejoined = true);
            break;
        }
        pause().await;
    }
    // Posted whether or not the SDK came back: its report must not show it
    // when it did not.
    let (status, v) = mock
        .call(
            reqwest::Method::POST,
            "/api/messages",
            Some(&p.token),
            Some(json!({ "chatId": p.chat_id, "content": p.content })),
        )
        .await?;
    let id = v["data"]["id"]
        .as_str()
        .filter(|_| status < 300)
        .ok_or(format!(
            "posting the message after the restart answered {status}: {v}"
        ))?
        .to_string();
    note(into, |d| d.posted = Some(id));
    Ok(())
}
