//! `thenvoi.ws.*` and `thenvoi.auth.*`: the Phoenix V2 socket itself
//! (docs/THENVOI.md T1–T14): the URL, `vsn`, frames and refs, join, leave,
//! heartbeat, the idle close, and the four ways to authenticate.

use std::time::Duration;

use serde_json::json;

use super::super::kit::{Step, ensure, short};
use super::kit::{
    Phx, QUIET, Refused, agent, api, expect, key_query, owner, room, say, socket_url, tv,
};
use crate::case::{Case, Ctx, Level, Level::*, Outcome};

const T1: &str = "T1: the socket is /api/v1/socket/websocket, parameters in the query string; the REST API is on the same host under /api/v1 (STATED)";
const T2: &str = "T2: vsn=2.0.0 is required; without vsn the first frame closes the socket with 1011; a vsn not served refuses the upgrade with 403 (STATED 1011, CHOSEN when)";
const T3: &str = "T3: token={jwt}, api_key={user_key}, api_key={agent_key} (with its own agent_id too), api_key={owner_key}&agent_id={uuid} all authenticate (STATED, SDK)";
const T4: &str = "T4: a connection that cannot be authenticated is refused at the upgrade with HTTP 403 (CHOSEN)";
const T6: &str = "T6 (as amended for the Band SDK): a push has a null ref and, as join_ref, the join's ref (Phoenix; the SDK drops others) or null";
const T7: &str =
    "T7: a frame the server cannot read closes the socket with code 1011 and no reply (CHOSEN)";
const T8: &str = "T8: an accepted join is answered [join_ref, ref, topic, \"phx_reply\", {\"status\": \"ok\", \"response\": {}}] with the client's refs (STATED)";
const T9: &str = "T9: joining a joined topic sends [old_join_ref, old_join_ref, topic, \"phx_close\", {}], then answers the new join (CHOSEN)";
const T10: &str = "T10: phx_leave is answered with an ok phx_reply, then [join_ref, join_ref, topic, \"phx_close\", {}]; nothing more arrives on that topic (SDK)";
const T11: &str = "T11: channels are push-only: any other client event changes nothing and the socket stays open (STATED)";
const T12: &str = "T12: [null, ref, \"phoenix\", \"heartbeat\", {}] is answered [null, ref, \"phoenix\", \"phx_reply\", {\"status\": \"ok\", \"response\": {}}] (STATED)";
const T13: &str = "T13: the server closes a socket that has received no frame for 45 s (the profile's idleTimeoutMs); any frame counts (STATED, CHOSEN)";
const T14: &str = "T14: one live socket per agent id: a new connection succeeds and the older socket is closed without a Phoenix frame, a normal close 1000 (STATED, CHOSEN)";

/// Idle timeouts above this make the idle cases unsupported (too slow for CI).
const MAX_IDLE_MS: u64 = 5000;

fn c(
    id: &'static str,
    level: Level,
    desc: &'static str,
    requirement: &'static str,
    run: fn(Ctx) -> crate::case::CaseFuture,
) -> Case {
    Case {
        id,
        level,
        desc,
        requirement,
        run,
    }
}

use super::super::kit::run;

pub fn cases() -> Vec<Case> {
    vec![
        c(
            "thenvoi.ws.1",
            Must,
            "An agent key upgrades at /api/v1/socket/websocket and the same host answers /api/v1/agent/me",
            T1,
            |cx| run(ws1(cx)),
        ),
        c(
            "thenvoi.ws.2",
            Must,
            "Without vsn no join succeeds and the socket ends at the first frame",
            T2,
            |cx| run(ws2(cx)),
        ),
        c(
            "thenvoi.ws.3",
            Should,
            "vsn=1.0.0 is refused at the upgrade with HTTP 403",
            T2,
            |cx| run(ws3(cx)),
        ),
        c(
            "thenvoi.ws.4",
            Must,
            "A message_created push carries a null ref and, as join_ref, the join's ref or null",
            T6,
            |cx| run(ws4(cx)),
        ),
        c(
            "thenvoi.ws.5",
            Should,
            "A frame that is not a five-element array closes the socket with 1011",
            T7,
            |cx| run(ws5(cx)),
        ),
        c(
            "thenvoi.ws.6",
            Must,
            "A join reply echoes the client's join_ref and ref with {status: ok, response: {}}",
            T8,
            |cx| run(ws6(cx)),
        ),
        c(
            "thenvoi.ws.7",
            Should,
            "A second join of a joined topic closes the old join (phx_close with its join_ref), then replies ok",
            T9,
            |cx| run(ws7(cx)),
        ),
        c(
            "thenvoi.ws.8",
            Must,
            "phx_leave gets an ok reply and phx_close, and nothing more arrives on the topic",
            T10,
            |cx| run(ws8(cx)),
        ),
        c(
            "thenvoi.ws.9",
            Must,
            "A client event on a joined push-only topic leaves the socket open and working",
            T11,
            |cx| run(ws9(cx)),
        ),
        c(
            "thenvoi.ws.10",
            Must,
            "A heartbeat is answered on topic phoenix with its ref and status ok",
            T12,
            |cx| run(ws10(cx)),
        ),
        c(
            "thenvoi.ws.11",
            Must,
            "A silent socket is closed once idleTimeoutMs has passed",
            T13,
            |cx| run(ws11(cx)),
        ),
        c(
            "thenvoi.ws.12",
            Should,
            "Without vsn the first frame closes the socket with code 1011",
            T2,
            |cx| run(ws12(cx)),
        ),
        c(
            "thenvoi.ws.13",
            Should,
            "A socket that sends heartbeats more often than idleTimeoutMs stays open past it",
            T13,
            |cx| run(ws13(cx)),
        ),
        c(
            "thenvoi.auth.1",
            Must,
            "api_key=<user key> authenticates the user: user_rooms:{its id} joins",
            T3,
            |cx| run(auth1(cx)),
        ),
        c(
            "thenvoi.auth.2",
            Must,
            "token=<user jwt> authenticates the user: user_rooms:{its id} joins",
            T3,
            |cx| run(auth2(cx)),
        ),
        c(
            "thenvoi.auth.3",
            Must,
            "api_key=<agent key>, alone or with its own agent_id, authenticates the agent",
            T3,
            |cx| run(auth3(cx)),
        ),
        c(
            "thenvoi.auth.4",
            Must,
            "api_key=<owner key>&agent_id=<its agent> acts for the agent: agent_rooms:{agent} joins",
            T3,
            |cx| run(auth4(cx)),
        ),
        c(
            "thenvoi.auth.5",
            Must,
            "No key, an unknown key, a foreign or malformed agent_id, token and api_key together: the upgrade is refused",
            T4,
            |cx| run(auth5(cx)),
        ),
        c(
            "thenvoi.auth.6",
            Must,
            "A second socket for an agent closes the first with 1000 and no Phoenix frame; the new one works",
            T14,
            |cx| run(auth6(cx)),
        ),
        c(
            "thenvoi.auth.7",
            Should,
            "A refused upgrade answers HTTP 403",
            T4,
            |cx| run(auth7(cx)),
        ),
    ]
}

async fn ws1(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let mut s = Phx::with_key(&cx, &a.api_key, "agent").await?;
    s.join_ok(&format!("agent_rooms:{}", a.id)).await?;
    let r = api(&cx, "GET", "/agent/me", Some(&a.api_key), None).await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/agent-me"))?;
    ensure(
        r.body["data"]["id"] == a.id.as_str(),
        &[&format!("data.id {}", a.id)],
        short(&r.body),
        &r.curl,
    )?;
    s.close().await;
    Ok(())
}

/// Opens without `vsn`; `None` when the upgrade is refused (also fine for T2's MUST).
async fn no_vsn(cx: &Ctx) -> Step<Option<(Phx, Option<Option<u16>>, bool)>> {
    let t = tv(cx)?;
    let a = agent(&t, 0);
    let mut s = match Phx::try_open(cx, &format!("api_key={}", a.api_key), "no-vsn").await {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    let r = s.next_ref();
    let topic = format!("agent_rooms:{}", a.id);
    s.send(json!(["1", r, topic, "phx_join", {}])).await?;
    let frames = s.drain(cx.timeout).await?;
    let joined = frames
        .iter()
        .any(|f| f[3] == "phx_reply" && f[4]["status"] == "ok");
    let closed = s.closed_within(Duration::ZERO).await?;
    Ok(Some((s, closed, joined)))
}

async fn ws2(cx: Ctx) -> Step<()> {
    let Some((s, closed, joined)) = no_vsn(&cx).await? else {
        return Ok(());
    };
    ensure(
        !joined && closed.is_some(),
        &["no ok join reply, and the socket ends after the first frame"],
        format!("joined: {joined}, closed: {closed:?}"),
        &s.frames(),
    )
}

async fn ws12(cx: Ctx) -> Step<()> {
    let Some((s, closed, _)) = no_vsn(&cx).await? else {
        return Err(Outcome::fail(
            ["the upgrade to succeed, then close 1011 at the first frame"],
            "the upgrade was refused",
            socket_url(&cx, "api_key=…"),
        ));
    };
    ensure(
        closed == Some(Some(1011)),
        &["close code 1011"],
        format!("{closed:?}"),
        &s.frames(),
    )
}

async fn ws3(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let q = format!("vsn=1.0.0&api_key={}", a.api_key);
    match Phx::try_open(&cx, &q, "vsn1").await {
        Err(Refused::Http(403)) => Ok(()),
        other => Err(Outcome::fail(
            ["HTTP 403 at the upgrade"],
            match other {
                Ok(_) => "the upgrade succeeded".to_string(),
                Err(e) => format!("{e:?}"),
            },
            format!("websocat '{}'", socket_url(&cx, &q)),
        )),
    }
}

async fn ws4(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 0));
    let rid = room(&cx, &t, &[&a]).await?;
    let mut s = Phx::with_key(&cx, &u.api_key, "user").await?;
    let topic = format!("chat_room:{rid}");
    let join_ref = s.join_ok(&topic).await?;
    say(&cx, &u.api_key, "me", &rid, "refs", &[&a.id]).await?;
    let within = cx.timeout;
    let f = s
        .wait(within, |f| {
            f[2] == topic.as_str() && f[3] == "message_created"
        })
        .await?
        .ok_or_else(|| Outcome::fail(["a message_created push"], "none", s.frames()))?;
    ensure(
        (f[0].is_null() || f[0] == join_ref.as_str()) && f[1].is_null(),
        &["ref null; join_ref null or the join's ref (the Band SDK needs the latter)"],
        short(&f),
        &s.frames(),
    )?;
    s.close().await;
    Ok(())
}

async fn ws5(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let mut s = Phx::with_key(&cx, &agent(&t, 0).api_key, "agent").await?;
    s.send_text("[\"1\", \"1\", \"phoenix\"]".into()).await?;
    let closed = s.closed_within(cx.timeout).await?;
    ensure(
        closed == Some(Some(1011)),
        &["the socket closed with 1011"],
        format!("{closed:?}"),
        &s.frames(),
    )
}

async fn ws6(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let mut s = Phx::with_key(&cx, &a.api_key, "agent").await?;
    let topic = format!("agent_rooms:{}", a.id);
    s.send(json!(["7", "8", topic, "phx_join", {}])).await?;
    let f = s
        .wait(cx.timeout, |f| f[3] == "phx_reply")
        .await?
        .ok_or_else(|| Outcome::fail(["a phx_reply"], "none", s.frames()))?;
    ensure(
        f == json!(["7", "8", topic, "phx_reply", {"status": "ok", "response": {}}]),
        &[&format!(
            r#"["7","8","{topic}","phx_reply",{{"status":"ok","response":{{}}}}]"#
        )],
        short(&f),
        &s.frames(),
    )?;
    s.close().await;
    Ok(())
}

async fn ws7(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let mut s = Phx::with_key(&cx, &a.api_key, "agent").await?;
    let topic = format!("agent_rooms:{}", a.id);
    s.send(json!(["1", "1", topic, "phx_join", {}])).await?;
    s.wait(cx.timeout, |f| f[1] == "1").await?;
    s.send(json!(["2", "2", topic, "phx_join", {}])).await?;
    let frames = s.drain(QUIET).await?;
    let close = frames
        .iter()
        .position(|f| f[3] == "phx_close" && f[0] == "1" && f[1] == "1" && f[2] == topic.as_str());
    let reply = frames
        .iter()
        .position(|f| f[3] == "phx_reply" && f[1] == "2" && f[4]["status"] == "ok");
    ensure(
        matches!((close, reply), (Some(c), Some(r)) if c < r),
        &["phx_close [\"1\",\"1\",topic] then the ok reply to the new join"],
        format!("close at {close:?}, reply at {reply:?}"),
        &s.frames(),
    )
}

async fn ws8(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 0));
    let rid = room(&cx, &t, &[&a]).await?;
    let mut s = Phx::with_key(&cx, &u.api_key, "user").await?;
    let topic = format!("chat_room:{rid}");
    let jr = s.join_ok(&topic).await?;
    let reply = s.request(Some(&jr), &topic, "phx_leave", json!({})).await?;
    ensure(
        reply[4]["status"] == "ok",
        &["an ok reply to phx_leave"],
        short(&reply),
        &s.frames(),
    )?;
    let close = s
        .wait(cx.timeout, |f| {
            f[3] == "phx_close" && f[2] == topic.as_str()
        })
        .await?;
    ensure(
        close
            .as_ref()
            .is_some_and(|f| f[0] == jr.as_str() && f[1] == jr.as_str()),
        &[&format!(
            "[\"{jr}\", \"{jr}\", \"{topic}\", \"phx_close\", {{}}]"
        )],
        format!("{close:?}"),
        &s.frames(),
    )?;
    say(&cx, &u.api_key, "me", &rid, "after leave", &[&a.id]).await?;
    s.none(QUIET, "frame on the left topic", |f| f[2] == topic.as_str())
        .await
}

async fn ws9(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let mut s = Phx::with_key(&cx, &a.api_key, "agent").await?;
    let topic = format!("agent_rooms:{}", a.id);
    let jr = s.join_ok(&topic).await?;
    let r = s.next_ref();
    s.send(json!([jr, r, topic, "shout", {"body": "hello"}]))
        .await?;
    s.drain(QUIET).await?;
    let hb = s.heartbeat().await?;
    ensure(
        hb.is_some_and(|f| f[4]["status"] == "ok"),
        &["the socket open after the client event: a heartbeat still answered"],
        "no heartbeat reply (the socket closed or went silent)",
        &s.frames(),
    )
}

async fn ws10(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let mut s = Phx::with_key(&cx, &agent(&t, 0).api_key, "agent").await?;
    s.send(json!([null, "42", "phoenix", "heartbeat", {}]))
        .await?;
    let f = s.wait(cx.timeout, |f| f[2] == "phoenix").await?;
    let want = json!([null, "42", "phoenix", "phx_reply", {"status": "ok", "response": {}}]);
    ensure(
        f.as_ref() == Some(&want),
        &[&want.to_string()],
        format!("{f:?}"),
        &s.frames(),
    )
}

fn idle_ms(cx: &Ctx) -> Step<u64> {
    let t = tv(cx)?;
    match t.idle_timeout_ms {
        Some(ms) if ms <= MAX_IDLE_MS => Ok(ms),
        Some(ms) => Err(Outcome::Unsupported(format!(
            "idleTimeoutMs is {ms}: above {MAX_IDLE_MS} ms the idle case is too slow to run"
        ))),
        None => Err(Outcome::Unsupported(
            "the profile's thenvoi object has no idleTimeoutMs".into(),
        )),
    }
}

async fn ws11(cx: Ctx) -> Step<()> {
    let ms = idle_ms(&cx)?;
    let t = tv(&cx)?;
    let mut s = Phx::with_key(&cx, &agent(&t, 0).api_key, "agent").await?;
    let closed = s
        .closed_within(Duration::from_millis(ms + ms / 2 + 500))
        .await?;
    ensure(
        closed.is_some(),
        &[&format!(
            "the socket closed (1000 chosen) about {ms} ms after the last frame"
        )],
        format!("{closed:?}"),
        &s.frames(),
    )
}

async fn ws13(cx: Ctx) -> Step<()> {
    let ms = idle_ms(&cx)?;
    let t = tv(&cx)?;
    let mut s = Phx::with_key(&cx, &agent(&t, 0).api_key, "agent").await?;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(ms / 2)).await;
        let hb = s.heartbeat().await?;
        ensure(
            hb.is_some(),
            &["the socket open while the client sends heartbeats"],
            "no heartbeat reply",
            &s.frames(),
        )?;
    }
    s.close().await;
    Ok(())
}

async fn auth1(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let u = owner(&t);
    let mut s = Phx::with_key(&cx, &u.api_key, "user").await?;
    s.join_ok(&format!("user_rooms:{}", u.id)).await?;
    Ok(())
}

async fn auth2(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let u = owner(&t);
    let token = u
        .token
        .clone()
        .ok_or_else(|| Outcome::Unsupported("users[0] has no token".into()))?;
    let mut s = Phx::open(&cx, &format!("vsn=2.0.0&token={token}"), "user-jwt").await?;
    s.join_ok(&format!("user_rooms:{}", u.id)).await?;
    Ok(())
}

async fn auth3(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let mut s = Phx::with_key(&cx, &a.api_key, "agent").await?;
    s.join_ok(&format!("agent_rooms:{}", a.id)).await?;
    s.close().await;
    let q = format!("{}&agent_id={}", key_query(&a.api_key), a.id);
    let mut s = Phx::open(&cx, &q, "agent+id").await?;
    s.join_ok(&format!("agent_rooms:{}", a.id)).await?;
    Ok(())
}

async fn auth4(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 1));
    let q = format!("{}&agent_id={}", key_query(&u.api_key), a.id);
    let mut s = Phx::open(&cx, &q, "owner-for-agent").await?;
    s.join_ok(&format!("agent_rooms:{}", a.id)).await?;
    Ok(())
}

/// Queries that must not authenticate (T4).
fn bad_queries(cx: &Ctx) -> Step<Vec<String>> {
    let t = tv(cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let foreign = t
        .agents
        .iter()
        .find(|x| x.owner_id != u.id)
        .map(|x| x.id.clone())
        .unwrap_or_else(|| "00000000-0000-4000-8000-000000000000".into());
    let mut v = vec![
        "vsn=2.0.0".to_string(),
        "vsn=2.0.0&api_key=not-a-key".into(),
        format!("{}&agent_id={foreign}", key_query(&u.api_key)),
        format!("{}&agent_id={}", key_query(&a.api_key), b.id),
        format!("{}&agent_id=not-a-uuid", key_query(&u.api_key)),
    ];
    if let Some(tok) = &u.token {
        v.push(format!("{}&token={tok}", key_query(&u.api_key)));
    }
    Ok(v)
}

async fn auth5(cx: Ctx) -> Step<()> {
    for q in bad_queries(&cx)? {
        if let Ok(s) = Phx::try_open(&cx, &q, "bad").await {
            return Err(Outcome::fail(
                ["the upgrade refused"],
                "the upgrade succeeded",
                format!("{}\n{}", socket_url(&cx, &q), s.frames()),
            ));
        }
    }
    Ok(())
}

async fn auth7(cx: Ctx) -> Step<()> {
    for q in bad_queries(&cx)? {
        match Phx::try_open(&cx, &q, "bad").await {
            Err(Refused::Http(403)) => {}
            other => {
                return Err(Outcome::fail(
                    ["HTTP 403 at the upgrade"],
                    match other {
                        Ok(_) => "the upgrade succeeded".to_string(),
                        Err(e) => format!("{e:?}"),
                    },
                    socket_url(&cx, &q),
                ));
            }
        }
    }
    Ok(())
}

async fn auth6(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 2);
    let topic = format!("agent_rooms:{}", a.id);
    let mut first = Phx::with_key(&cx, &a.api_key, "first").await?;
    first.join_ok(&topic).await?;
    // Shorter than the idle timeout, so an idle close is not taken for T14's.
    let window = t
        .idle_timeout_ms
        .map_or(cx.timeout, |ms| Duration::from_millis(ms / 2))
        .min(cx.timeout);
    let mut second = Phx::with_key(&cx, &a.api_key, "second").await?;
    second.join_ok(&topic).await?;
    let closed = first.closed_within(window).await?;
    let frames = first.drain(Duration::ZERO).await?;
    ensure(
        closed.is_some() && frames.is_empty(),
        &["the first socket closed (1000 chosen) with no Phoenix frame before"],
        format!("closed: {closed:?}, frames before: {}", frames.len()),
        &format!("{}\n{}", first.frames(), second.frames()),
    )?;
    let hb = second.heartbeat().await?;
    ensure(
        hb.is_some(),
        &["the second socket working"],
        "no heartbeat reply",
        &second.frames(),
    )
}
