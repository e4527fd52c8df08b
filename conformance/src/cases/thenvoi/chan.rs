//! `thenvoi.chan.*` and `thenvoi.deliver.*`: who may join which topic
//! (docs/THENVOI.md T15–T16, T23), the membership events (T20–T22), and who
//! gets `message_created` (T17–T19).

use serde_json::{Value, json};

use super::super::kit::{Step, ensure, run, short};
use super::kit::{
    Phx, QUIET, add, agent, api, expect, expect_error, is_message, is_push, other, owner, remove,
    room, say, tv,
};
use crate::case::{Case, CaseFuture, Ctx, Level, Level::*, Outcome};

const T15: &str = "T15/T16: chat_room: and room_participants: are joinable by the room's participants, agent_rooms:/agent_contacts: by that agent's own socket, user_rooms:/user_contacts:/tasks: by that user's own socket; any other join is refused {\"reason\": \"unauthorized\"} (STATED)";
const T8: &str = "T8: a topic of no known family is refused {\"status\": \"error\", \"response\": {\"reason\": \"unmatched topic\"}} (CHOSEN)";
const T16: &str = "T16: ids in topics are lowercase uuids; a topic whose id is not one is refused unauthorized (CHOSEN)";
const T20: &str = "T20: room_participants:{id} events go to every subscriber; after room_deleted nothing more is sent, joins are refused and the room's REST routes answer 404 (STATED, CHOSEN)";
const T21: &str = "T21: room_added reaches a participant on agent_rooms/user_rooms when it becomes one, room_removed when it stops; then no more events from that room, no phx_close, and a new join is refused (STATED, CHOSEN)";
const T22: &str = "T22: removing P: participant_removed on room_participants:R (P's own subscription included), then room_removed to P (CHOSEN)";
const T17: &str = "T17: an agent receives message_created only for text messages that mention it and that it did not send (STATED)";
const T18: &str = "T18: a user joined to chat_room:{id} receives every text message_created of the room, its own included; non-text messages are pushed to nobody (STATED, CHOSEN)";
const T19: &str = "T19: mentions route a message whoever sent it: every mentioned agent gets it, others do not; a mentioned agent not joined gets no push and finds it in /messages/next (STATED)";
const T25: &str = "T25: message_created carries id, content, sender_id, sender_type, message_type text, metadata.mentions[{id, name}], inserted_at, updated_at (STATED)";

fn c(
    id: &'static str,
    level: Level,
    desc: &'static str,
    requirement: &'static str,
    run: fn(Ctx) -> CaseFuture,
) -> Case {
    Case {
        id,
        level,
        desc,
        requirement,
        run,
    }
}

pub fn cases() -> Vec<Case> {
    vec![
        c(
            "thenvoi.chan.1",
            Must,
            "chat_room:{room}: a participant agent joins, a non-participant agent is refused unauthorized",
            T15,
            |cx| run(chan_room(cx, "chat_room")),
        ),
        c(
            "thenvoi.chan.2",
            Must,
            "room_participants:{room}: a participant agent joins, a non-participant agent is refused unauthorized",
            T15,
            |cx| run(chan_room(cx, "room_participants")),
        ),
        c(
            "thenvoi.chan.3",
            Must,
            "agent_rooms: the agent's own joins; another agent's and a user socket's are refused",
            T15,
            |cx| run(chan_own(cx, "agent_rooms", true)),
        ),
        c(
            "thenvoi.chan.4",
            Must,
            "user_rooms: the user's own joins; another user's and an agent socket's are refused",
            T15,
            |cx| run(chan_own(cx, "user_rooms", false)),
        ),
        c(
            "thenvoi.chan.5",
            Should,
            "A topic of no known family is refused with reason unmatched topic",
            T8,
            |cx| run(chan5(cx)),
        ),
        c(
            "thenvoi.chan.6",
            Should,
            "A chat_room topic whose id is not a lowercase uuid is refused unauthorized",
            T16,
            |cx| run(chan6(cx)),
        ),
        c(
            "thenvoi.chan.7",
            Must,
            "agent_contacts:/user_contacts: join for their own entity only",
            T15,
            |cx| run(chan7(cx)),
        ),
        c(
            "thenvoi.chan.8",
            Must,
            "tasks:{user} joins for that user only; an agent socket is refused",
            T15,
            |cx| run(chan_own(cx, "tasks", false)),
        ),
        c(
            "thenvoi.chan.9",
            Must,
            "Adding and removing a participant pushes participant_added and participant_removed to room_participants subscribers",
            T20,
            |cx| run(chan9(cx)),
        ),
        c(
            "thenvoi.chan.10",
            Must,
            "Deleting a room pushes room_deleted {id} to room_participants subscribers",
            T20,
            |cx| run(chan10(cx, false)),
        ),
        c(
            "thenvoi.chan.11",
            Must,
            "Adding an agent pushes room_added on agent_rooms, removing it room_removed",
            T21,
            |cx| run(chan11(cx)),
        ),
        c(
            "thenvoi.chan.12",
            Should,
            "After room_removed the agent gets nothing more from the room, no phx_close, and cannot rejoin",
            T21,
            |cx| run(chan12(cx)),
        ),
        c(
            "thenvoi.chan.13",
            Should,
            "On one socket, participant_removed arrives before room_removed",
            T22,
            |cx| run(chan13(cx)),
        ),
        c(
            "thenvoi.chan.14",
            Should,
            "After room_deleted, joins of the room's topics are refused and its REST routes answer 404",
            T20,
            |cx| run(chan10(cx, true)),
        ),
        c(
            "thenvoi.deliver.1",
            Must,
            "A mentioned agent joined to chat_room gets message_created with the documented fields",
            T25,
            |cx| run(deliver1(cx)),
        ),
        c(
            "thenvoi.deliver.2",
            Must,
            "An agent that is not mentioned gets no message_created",
            T17,
            |cx| run(deliver2(cx)),
        ),
        c(
            "thenvoi.deliver.3",
            Must,
            "An agent does not get its own message pushed back",
            T17,
            |cx| run(deliver3(cx)),
        ),
        c(
            "thenvoi.deliver.4",
            Must,
            "A non-text event is pushed to no agent",
            T17,
            |cx| run(deliver_event(cx, false)),
        ),
        c(
            "thenvoi.deliver.5",
            Must,
            "A user joined to chat_room gets a text message that does not mention it",
            T18,
            |cx| run(deliver5(cx, false)),
        ),
        c(
            "thenvoi.deliver.6",
            Should,
            "A non-text event is pushed to no user",
            T18,
            |cx| run(deliver_event(cx, true)),
        ),
        c(
            "thenvoi.deliver.7",
            Must,
            "An agent's message mentioning two agents reaches both and not a third",
            T19,
            |cx| run(deliver7(cx)),
        ),
        c(
            "thenvoi.deliver.8",
            Must,
            "A mentioned agent that has not joined gets no push and finds the message in /messages/next",
            T19,
            |cx| run(deliver8(cx)),
        ),
        c(
            "thenvoi.deliver.9",
            Should,
            "A user joined to chat_room gets its own text message",
            T18,
            |cx| run(deliver5(cx, true)),
        ),
    ]
}

async fn chan_room(cx: Ctx, family: &str) -> Step<()> {
    let t = tv(&cx)?;
    let (a, b) = (agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a]).await?;
    let topic = format!("{family}:{rid}");
    let mut s = Phx::with_key(&cx, &a.api_key, "member").await?;
    s.join_ok(&topic).await?;
    let mut o = Phx::with_key(&cx, &b.api_key, "outsider").await?;
    o.join_refused(&topic, "unauthorized").await
}

async fn chan_own(cx: Ctx, family: &str, agent_family: bool) -> Step<()> {
    let t = tv(&cx)?;
    let (u, v, a, b) = (owner(&t), other(&t), agent(&t, 0), agent(&t, 1));
    if agent_family {
        let mut s = Phx::with_key(&cx, &a.api_key, "agent").await?;
        s.join_ok(&format!("{family}:{}", a.id)).await?;
        s.join_refused(&format!("{family}:{}", b.id), "unauthorized")
            .await?;
        let mut us = Phx::with_key(&cx, &u.api_key, "user").await?;
        us.join_refused(&format!("{family}:{}", a.id), "unauthorized")
            .await
    } else {
        let mut s = Phx::with_key(&cx, &u.api_key, "user").await?;
        s.join_ok(&format!("{family}:{}", u.id)).await?;
        s.join_refused(&format!("{family}:{}", v.id), "unauthorized")
            .await?;
        let mut ag = Phx::with_key(&cx, &a.api_key, "agent").await?;
        ag.join_refused(&format!("{family}:{}", u.id), "unauthorized")
            .await
    }
}

async fn chan5(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let mut s = Phx::with_key(&cx, &agent(&t, 0).api_key, "agent").await?;
    s.join_refused("no_such_family:1", "unmatched topic").await
}

async fn chan6(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let rid = room(&cx, &t, &[&a]).await?;
    let mut s = Phx::with_key(&cx, &a.api_key, "agent").await?;
    s.join_refused("chat_room:not-a-uuid", "unauthorized")
        .await?;
    s.join_refused(&format!("chat_room:{}", rid.to_uppercase()), "unauthorized")
        .await
}

async fn chan7(cx: Ctx) -> Step<()> {
    chan_own(cx.clone(), "agent_contacts", true).await?;
    chan_own(cx, "user_contacts", false).await
}

async fn chan9(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a]).await?;
    let topic = format!("room_participants:{rid}");
    let mut s = Phx::with_key(&cx, &a.api_key, "member").await?;
    s.join_ok(&topic).await?;
    add(&cx, &u.api_key, "me", &rid, &b.id).await?;
    let p = s.push(&topic, "participant_added").await?;
    ensure(
        p["id"] == b.id.as_str() && p["type"] == "Agent",
        &[&format!(
            "participant_added {{id: {}, type: Agent, …}}",
            b.id
        )],
        short(&p),
        &s.frames(),
    )?;
    remove(&cx, &u.api_key, &rid, &b.id).await?;
    let p = s.push(&topic, "participant_removed").await?;
    ensure(
        p["id"] == b.id.as_str(),
        &[&format!(
            "participant_removed {{id: {}, type: Agent}}",
            b.id
        )],
        short(&p),
        &s.frames(),
    )
}

/// `after`: also check what T20 chooses for a deleted room (chan.14).
async fn chan10(cx: Ctx, after: bool) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 0));
    let path = t.delete_room.clone().ok_or_else(|| {
        Outcome::Unsupported("the profile's thenvoi object has no deleteRoom".into())
    })?;
    let rid = room(&cx, &t, &[&a]).await?;
    let topic = format!("room_participants:{rid}");
    let mut s = Phx::with_key(&cx, &a.api_key, "member").await?;
    s.join_ok(&topic).await?;
    s.join_ok(&format!("chat_room:{rid}")).await?;
    let r = api(
        &cx,
        "DELETE",
        &path.replace("{id}", &rid),
        Some(&u.api_key),
        None,
    )
    .await?;
    ensure(
        (200..300).contains(&r.status),
        &["2xx deleting the room"],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )?;
    let p = s.push(&topic, "room_deleted").await?;
    ensure(
        p["id"] == rid.as_str(),
        &[&format!("room_deleted {{id: {rid}}}")],
        short(&p),
        &s.frames(),
    )?;
    if !after {
        return Ok(());
    }
    s.join_refused(&format!("chat_room:{rid}"), "unauthorized")
        .await?;
    let r = api(
        &cx,
        "GET",
        &format!("/agent/chats/{rid}"),
        Some(&a.api_key),
        None,
    )
    .await?;
    expect_error(&cx, &r, &[404])
}

async fn chan11(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a]).await?;
    let topic = format!("agent_rooms:{}", b.id);
    let mut s = Phx::with_key(&cx, &b.api_key, "added").await?;
    s.join_ok(&topic).await?;
    add(&cx, &u.api_key, "me", &rid, &b.id).await?;
    let p = s.push(&topic, "room_added").await?;
    ensure(
        p["id"] == rid.as_str(),
        &[&format!("room_added {{id: {rid}, …}}")],
        short(&p),
        &s.frames(),
    )?;
    remove(&cx, &u.api_key, &rid, &b.id).await?;
    let p = s.push(&topic, "room_removed").await?;
    ensure(
        p["id"] == rid.as_str(),
        &[&format!("room_removed {{id: {rid}, …}}")],
        short(&p),
        &s.frames(),
    )
}

async fn chan12(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let mut s = Phx::with_key(&cx, &b.api_key, "removed").await?;
    let own = format!("agent_rooms:{}", b.id);
    let chat = format!("chat_room:{rid}");
    s.join_ok(&own).await?;
    s.join_ok(&chat).await?;
    remove(&cx, &u.api_key, &rid, &b.id).await?;
    s.push(&own, "room_removed").await?;
    say(&cx, &u.api_key, "me", &rid, "after removal", &[&a.id]).await?;
    s.none(QUIET, "frame on the room's topic after room_removed", |f| {
        f[2] == chat.as_str()
    })
    .await?;
    s.join_refused(&chat, "unauthorized").await
}

async fn chan13(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let mut s = Phx::with_key(&cx, &b.api_key, "removed").await?;
    let own = format!("agent_rooms:{}", b.id);
    let parts = format!("room_participants:{rid}");
    s.join_ok(&own).await?;
    s.join_ok(&parts).await?;
    remove(&cx, &u.api_key, &rid, &b.id).await?;
    s.push(&own, "room_removed").await?;
    let before = s.queued(|f| is_push(f, &parts, "participant_removed"));
    ensure(
        before,
        &["participant_removed on room_participants, then room_removed"],
        "room_removed came first (or participant_removed never came)",
        &s.frames(),
    )
}

/// A room with agents 0 and 1 where both and the user are joined to
/// `chat_room:`; returns (room id, user socket, socket of agent 0, of agent 1).
async fn watched(cx: &Ctx) -> Step<(String, Phx, Phx, Phx)> {
    let t = tv(cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(cx, &t, &[&a, &b]).await?;
    let topic = format!("chat_room:{rid}");
    let mut us = Phx::with_key(cx, &u.api_key, "user").await?;
    us.join_ok(&topic).await?;
    let mut sa = Phx::with_key(cx, &a.api_key, "agent0").await?;
    sa.join_ok(&topic).await?;
    let mut sb = Phx::with_key(cx, &b.api_key, "agent1").await?;
    sb.join_ok(&topic).await?;
    Ok((rid, us, sa, sb))
}

async fn got_message(s: &mut Phx, rid: &str, mid: &str) -> Step<Value> {
    let within = s.timeout();
    s.wait(within, |f| is_message(f, rid, mid))
        .await?
        .map(|f| f[4].clone())
        .ok_or_else(|| {
            Outcome::fail(
                [format!("message_created {mid} on chat_room:{rid}")],
                "no such push",
                s.frames(),
            )
        })
}

async fn deliver1(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 0));
    let (rid, _us, mut sa, _sb) = watched(&cx).await?;
    let mid = say(&cx, &u.api_key, "me", &rid, "hello agent", &[&a.id]).await?;
    let p = got_message(&mut sa, &rid, &mid).await?;
    let mentioned = p["metadata"]["mentions"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x["id"] == a.id.as_str()));
    ensure(
        p["content"] == "hello agent"
            && p["sender_id"] == u.id.as_str()
            && p["sender_type"] == "User"
            && p["message_type"] == "text"
            && mentioned,
        &[
            "content, sender_id of users[0], sender_type User, message_type text, the agent in metadata.mentions",
        ],
        short(&p),
        &sa.frames(),
    )
}

async fn deliver2(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 0));
    let (rid, _us, mut sa, mut sb) = watched(&cx).await?;
    let mid = say(&cx, &u.api_key, "me", &rid, "for agent 0", &[&a.id]).await?;
    got_message(&mut sa, &rid, &mid).await?;
    sb.none(QUIET, "message_created for an unmentioned agent", |f| {
        f[3] == "message_created"
    })
    .await
}

async fn deliver3(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (a, b) = (agent(&t, 0), agent(&t, 1));
    let (rid, _us, mut sa, mut sb) = watched(&cx).await?;
    let mid = say(&cx, &a.api_key, "agent", &rid, "from agent 0", &[&b.id]).await?;
    got_message(&mut sb, &rid, &mid).await?;
    sa.none(QUIET, "message_created of the agent's own message", |f| {
        f[3] == "message_created"
    })
    .await
}

async fn deliver_event(cx: Ctx, user: bool) -> Step<()> {
    let t = tv(&cx)?;
    let b = agent(&t, 1);
    let (rid, mut us, mut sa, _sb) = watched(&cx).await?;
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/events"),
        Some(&b.api_key),
        Some(&json!({ "event": { "content": "thinking", "message_type": "thought" } })),
    )
    .await?;
    expect(&cx, &r, 201, Some("thenvoi/responses/event-created"))?;
    let s = if user { &mut us } else { &mut sa };
    s.none(QUIET, "push of a non-text event", |f| {
        f[3] == "message_created"
    })
    .await
}

/// `own`: the user's own message (CHOSEN, deliver.9), else an agent's
/// message to another agent (STATED, deliver.5).
async fn deliver5(cx: Ctx, own: bool) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let (rid, mut us, _sa, _sb) = watched(&cx).await?;
    let mid = if own {
        say(&cx, &u.api_key, "me", &rid, "mine", &[&a.id]).await?
    } else {
        say(&cx, &a.api_key, "agent", &rid, "agent to agent", &[&b.id]).await?
    };
    got_message(&mut us, &rid, &mid).await?;
    Ok(())
}

async fn deliver7(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (a, b, c) = (agent(&t, 0), agent(&t, 1), agent(&t, 2));
    let rid = room(&cx, &t, &[&a, &b, &c]).await?;
    let topic = format!("chat_room:{rid}");
    let mut sa = Phx::with_key(&cx, &a.api_key, "agent0").await?;
    let mut sb = Phx::with_key(&cx, &b.api_key, "agent1").await?;
    let mut sc = Phx::with_key(&cx, &c.api_key, "agent2").await?;
    for s in [&mut sa, &mut sb, &mut sc] {
        s.join_ok(&topic).await?;
    }
    let mid = say(
        &cx,
        &c.api_key,
        "agent",
        &rid,
        "both of you",
        &[&a.id, &b.id],
    )
    .await?;
    got_message(&mut sa, &rid, &mid).await?;
    got_message(&mut sb, &rid, &mid).await?;
    sc.none(QUIET, "message_created for the sender", |f| {
        f[3] == "message_created"
    })
    .await?;
    Ok(())
}

async fn deliver8(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 0));
    let rid = room(&cx, &t, &[&a]).await?;
    let mut s = Phx::with_key(&cx, &a.api_key, "not-joined").await?;
    s.join_ok(&format!("agent_rooms:{}", a.id)).await?;
    let mid = say(&cx, &u.api_key, "me", &rid, "waiting for you", &[&a.id]).await?;
    s.none(
        QUIET,
        "message_created to an agent not joined to the room",
        |f| f[3] == "message_created",
    )
    .await?;
    let r = api(
        &cx,
        "GET",
        &format!("/agent/chats/{rid}/messages/next"),
        Some(&a.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/next-message"))?;
    ensure(
        r.body["data"]["id"] == mid.as_str(),
        &[&format!("data.id {mid}")],
        short(&r.body),
        &r.curl,
    )?;
    Ok(())
}
