//! `--replay FILE`: a world and recorded replies from a capture.
//!
//! The conformance proxy's `--capture` writes every exchange between a real
//! client and a real server as JSON lines: REST answers with their bodies,
//! socket.io events with their payloads, each with `conn`, `dir` and `tMs`.
//! From those this reads what the server showed: the users and agents that
//! authenticated or spoke, the chats with their participants, the messages,
//! and each agent reply delta by delta with its timing. The world the mock
//! starts on is its own (tokens included: captured tokens are redacted)
//! plus what the capture showed, so a client recorded against a real server
//! runs offline against the mock with the same chats and the same replies.
//! A user the world does not have gets a token derived from its id
//! (printed at start and in `/__admin/profile`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{Value, json};

use crate::core::replay::{Recorded, Replay};
use crate::world::World;

/// What a capture gave.
#[derive(Debug)]
pub struct Loaded {
    pub world: World,
    pub replay: Replay,
    /// One line for the log: what was read.
    pub summary: String,
}

#[derive(Default)]
struct Seen {
    /// Entities by id: (type, name).
    entities: BTreeMap<String, (String, String)>,
    chats: BTreeMap<String, Value>,
    participants: BTreeMap<String, BTreeSet<(String, String)>>,
    messages: BTreeMap<String, Value>,
    /// When each message was first seen (ms into the capture).
    first_seen: HashMap<String, u64>,
    /// Each stream's deltas: (contentDelta, ms).
    streams: HashMap<String, Vec<(String, u64)>>,
    /// The entity each connection authenticated as.
    conn_entity: HashMap<u64, String>,
}

impl Seen {
    fn entity(&mut self, v: &Value) {
        if let (Some(id), Some(kind @ ("USER" | "AGENT")), Some(name)) =
            (v["id"].as_str(), v["type"].as_str(), v["name"].as_str())
        {
            self.entities
                .insert(id.to_string(), (kind.to_string(), name.to_string()));
        }
    }

    /// A REST or event object: a message, a chat, or an entity.
    fn object(&mut self, v: &Value, ms: u64) {
        let has = |k: &str| v.get(k).is_some();
        if has("chatId") && has("content") && has("createdAt") && has("senderId") {
            if v["isStreaming"] == true {
                return;
            }
            if let Some(id) = v["id"].as_str() {
                self.first_seen.entry(id.to_string()).or_insert(ms);
                self.messages.insert(id.to_string(), v.clone());
            }
        } else if has("systemMessages") && has("createdAt") && !has("chatId") {
            if let Some(id) = v["id"].as_str() {
                self.chats.insert(id.to_string(), v.clone());
            }
        } else {
            self.entity(v);
        }
    }

    fn line(&mut self, line: &Value) {
        let ms = line["tMs"].as_u64().unwrap_or(0);
        let conn = line["conn"].as_u64().unwrap_or(0);
        match line["kind"].as_str() {
            Some("rest") => match &line["body"]["data"] {
                Value::Array(items) => items.iter().for_each(|v| self.object(v, ms)),
                v @ Value::Object(_) => self.object(v, ms),
                _ => {}
            },
            Some("socket.io") => {
                let (Some(event), payload) = (line["event"].as_str(), &line["payload"]) else {
                    return;
                };
                if line["dir"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("client"))
                {
                    // A chat the connection's entity is in.
                    if let (Some(chat), Some(who)) =
                        (payload["chatId"].as_str(), self.conn_entity.get(&conn))
                    {
                        let kind = self.entities.get(who).map_or("USER", |e| e.0.as_str());
                        self.participants
                            .entry(chat.to_string())
                            .or_default()
                            .insert((who.clone(), kind.to_string()));
                    }
                    return;
                }
                match event {
                    "success" => {
                        self.entity(&payload["entity"]);
                        if let Some(id) = payload["entity"]["id"].as_str() {
                            self.conn_entity.insert(conn, id.to_string());
                        }
                    }
                    "message" | "message:done" => self.object(payload, ms),
                    "message:delta" => {
                        if let (Some(stream), Some(delta)) = (
                            payload["streamId"].as_str(),
                            payload["contentDelta"].as_str(),
                        ) {
                            self.streams
                                .entry(stream.to_string())
                                .or_default()
                                .push((delta.to_string(), ms));
                        }
                    }
                    _ => {
                        for key in ["chat", "message"] {
                            if payload[key].is_object() {
                                self.object(&payload[key], ms);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Every agent reply that answers a message seen in the capture, in the
    /// order the capture saw the messages they answer.
    fn replies(&self, replay: &mut Replay) {
        let mut found: Vec<(u64, String, Recorded)> = Vec::new();
        for m in self.messages.values() {
            let (Some(sender), Some(trigger)) =
                (m["senderId"].as_str(), m["respondedToId"].as_str())
            else {
                continue;
            };
            let is_agent = self.entities.get(sender).is_some_and(|e| e.0 == "AGENT");
            let Some(asked) = self.messages.get(trigger) else {
                continue;
            };
            if !is_agent || asked["content"].as_str().is_none() {
                continue;
            }
            let t0 = self.first_seen.get(trigger).copied().unwrap_or(0);
            let after = |ms: u64| Duration::from_millis(ms.saturating_sub(t0));
            let streamed = m["streamId"]
                .as_str()
                .and_then(|s| self.streams.get(s))
                .filter(|d| !d.is_empty());
            let (chunks, offsets) = match streamed {
                Some(deltas) => deltas
                    .iter()
                    .map(|(text, ms)| (text.clone(), after(*ms)))
                    .unzip(),
                None => {
                    let at = self.first_seen.get(m["id"].as_str().unwrap_or("")).copied();
                    (
                        vec![m["content"].as_str().unwrap_or("").to_string()],
                        vec![after(at.unwrap_or(t0))],
                    )
                }
            };
            found.push((
                t0,
                asked["content"].as_str().unwrap_or("").to_string(),
                Recorded {
                    chat_id: m["chatId"].as_str().unwrap_or("").to_string(),
                    agent_id: sender.to_string(),
                    chunks,
                    offsets,
                },
            ));
        }
        found.sort_by_key(|(t0, _, _)| *t0);
        for (_, content, reply) in found {
            replay.add(content, reply);
        }
    }
}

/// A user token derived from the user's id: the same id always maps to the
/// same token, in the `user-<24>.<32>.<32>.<48>` hex format.
pub fn token_for(user_id: &str) -> String {
    let mut rng = crate::seeded::SplitMix::new(crate::seeded::fnv1a(user_id));
    let mut hex = |n: usize| -> String {
        let mut s = String::new();
        while s.len() < n {
            s.push_str(&format!("{:016x}", rng.next_u64()));
        }
        s.truncate(n);
        s
    };
    format!("user-{user_id}.{}.{}.{}", hex(32), hex(32), hex(48))
}

/// Reads capture `text` (from `file`) over `base`.
pub fn load(base: &World, file: &str, text: &str, pace: bool) -> Result<Loaded, String> {
    let mut seen = Seen::default();
    // The world's own entities: a captured id may be one of them.
    for u in &base.users {
        seen.entities
            .insert(u.id.clone(), ("USER".into(), u.name.clone()));
    }
    for a in &base.agents {
        seen.entities
            .insert(a.id.clone(), ("AGENT".into(), a.name.clone()));
    }
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Value = serde_json::from_str(raw).map_err(|e| {
            format!(
                "{file}: line {}: not a JSON line ({e}); a capture comes from `proteus-conformance proxy --capture`",
                i + 1
            )
        })?;
        seen.line(&line);
    }
    // A reply's sender no connection authenticated as is an agent the
    // capture never described (the agents' list was not fetched).
    let unnamed: Vec<String> = seen
        .messages
        .values()
        .filter(|m| m["respondedToId"].is_string())
        .filter_map(|m| m["senderId"].as_str())
        .filter(|id| !seen.entities.contains_key(*id))
        .map(str::to_string)
        .collect();
    for id in unnamed {
        let name = format!("Replayed agent {}", &id[id.len().saturating_sub(6)..]);
        seen.entities.insert(id, ("AGENT".into(), name));
    }
    // Whoever sent a message is in its chat.
    for m in seen.messages.values() {
        if let (Some(chat), Some(sender)) = (m["chatId"].as_str(), m["senderId"].as_str()) {
            let kind = seen.entities.get(sender).map_or("USER", |e| e.0.as_str());
            seen.participants
                .entry(chat.to_string())
                .or_default()
                .insert((sender.to_string(), kind.to_string()));
        }
    }
    let mut replay = Replay::new(pace);
    seen.replies(&mut replay);
    let world = merge(base, &seen, file)?;
    let summary = format!(
        "{} chats, {} messages and {} recorded replies from {file}",
        seen.chats.len(),
        seen.messages.len(),
        replay.len()
    );
    Ok(Loaded {
        world,
        replay,
        summary,
    })
}

/// `base` plus what `seen` showed, checked as any world file is.
fn merge(base: &World, seen: &Seen, file: &str) -> Result<World, String> {
    let mut w = base.to_json();
    let org = base
        .orgs
        .first()
        .map(|o| o.id.clone())
        .ok_or("--replay needs a world with at least one org (the default world has one)")?;
    let known: BTreeSet<String> = base
        .users
        .iter()
        .map(|u| u.id.clone())
        .chain(base.agents.iter().map(|a| a.id.clone()))
        .collect();
    let mut chat_ids: BTreeSet<String> = base.chats.iter().map(|c| c.chat.id.clone()).collect();
    let stamp = "2026-01-01T00:00:00.000Z";
    let list =
        |w: &mut Value, key: &str| -> Vec<Value> { w[key].as_array().cloned().unwrap_or_default() };
    let (mut users, mut agents, mut tokens) = (
        list(&mut w, "users"),
        list(&mut w, "agents"),
        list(&mut w, "tokens"),
    );
    for (id, (kind, name)) in &seen.entities {
        if known.contains(id) {
            continue;
        }
        if kind == "AGENT" {
            agents.push(json!({
                "id": id, "name": name, "createdAt": stamp, "updatedAt": stamp, "orgId": org,
                "description": "Replayed from a capture",
                "script": { "text": "(replayed agent: the capture holds no reply to \"{{content}}\")" },
            }));
        } else {
            users.push(json!({ "id": id, "name": name, "orgIds": [org] }));
            tokens.push(json!({
                "token": token_for(id), "entityType": "USER", "entityId": id,
                "name": format!("{name} (replayed; the captured token was redacted)"),
            }));
        }
    }
    let mut chats = list(&mut w, "chats");
    for (id, chat) in &seen.chats {
        let participants: Vec<Value> = seen
            .participants
            .get(id)
            .into_iter()
            .flatten()
            .map(|(pid, kind)| json!({ "id": pid, "type": kind }))
            .collect();
        if chat_ids.contains(id) {
            if let Some(c) = chats.iter_mut().find(|c| c["id"] == id.as_str()) {
                let mut have = c["participants"].as_array().cloned().unwrap_or_default();
                for p in participants {
                    if !have.iter().any(|h| h["id"] == p["id"]) {
                        have.push(p);
                    }
                }
                c["participants"] = Value::Array(have);
            }
            continue;
        }
        let mut c = chat.clone();
        c["latestMessageId"] = Value::Null;
        c["participants"] = Value::Array(participants);
        chats.push(c);
        chat_ids.insert(id.clone());
    }
    let mut messages = list(&mut w, "messages");
    let have: BTreeSet<String> = messages
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    let mut added: Vec<Value> = seen
        .messages
        .values()
        .filter(|m| m["id"].as_str().is_some_and(|id| !have.contains(id)))
        .filter(|m| m["chatId"].as_str().is_some_and(|c| chat_ids.contains(c)))
        .cloned()
        .collect();
    added.sort_by(|a, b| {
        (a["createdAt"].as_str(), a["id"].as_str())
            .cmp(&(b["createdAt"].as_str(), b["id"].as_str()))
    });
    messages.extend(added);
    w["users"] = Value::Array(users);
    w["agents"] = Value::Array(agents);
    w["tokens"] = Value::Array(tokens);
    w["chats"] = Value::Array(chats);
    w["messages"] = Value::Array(messages);
    World::parse(&format!("{file} (replayed over the world)"), &w.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "5f0000000000000000000001";
    const AGENT: &str = "5f00000000000000000000a1";
    const CHAT: &str = "5f00000000000000000000c1";

    fn message(
        id: &str,
        sender: &str,
        content: &str,
        answers: Option<&str>,
        stream: Option<&str>,
    ) -> Value {
        json!({ "id": id, "chatId": CHAT, "senderId": sender, "content": content,
                "respondedToId": answers, "streamId": stream, "isStreaming": false,
                "createdAt": "2026-11-30T10:00:00.000Z", "updatedAt": "2026-11-30T10:00:00.000Z" })
    }

    /// A capture from a server the mock's world knows nothing of.
    fn capture() -> String {
        let sio = |dir: &str, event: &str, payload: Value, ms: u64| {
            json!({ "kind": "socket.io", "conn": 2, "dir": dir, "event": event, "payload": payload, "tMs": ms }).to_string()
        };
        let down = "server→client";
        [
            json!({ "kind": "rest", "conn": 1, "method": "GET", "path": "/api/chats", "status": 200, "tMs": 1,
                    "body": { "ok": true, "data": [{ "id": CHAT, "systemMessages": [], "title": "Elsewhere",
                              "createdAt": "2026-11-30T09:00:00.000Z", "updatedAt": "2026-11-30T09:00:00.000Z" }] } }).to_string(),
            sio(down, "success", json!({ "entity": { "id": USER, "type": "USER", "name": "Remote Rita" } }), 2),
            sio("client→server", "chat:join", json!({ "chatId": CHAT }), 3),
            sio(down, "message", message("5f00000000000000000000e1", USER, "hi there", None, None), 10),
            sio(down, "message:delta", json!({ "streamId": "s1", "contentDelta": "Hel" }), 30),
            sio(down, "message:delta", json!({ "streamId": "s1", "contentDelta": "lo!" }), 70),
            sio(down, "message:done", message("5f00000000000000000000e2", AGENT, "Hello!", Some("5f00000000000000000000e1"), Some("s1")), 71),
        ]
        .join("\n")
    }

    #[test]
    fn a_foreign_capture_adds_its_user_chat_and_messages_and_records_the_reply() {
        let base = World::default_world();
        let loaded = load(&base, "t.jsonl", &capture(), true).expect("loads");
        let w = &loaded.world;
        let token = w
            .tokens
            .iter()
            .find(|t| t.entity_id == USER)
            .expect("a token for Rita");
        assert_eq!(token.token, token_for(USER));
        assert!(crate::model::is_object_id(USER));
        let chat = w
            .chats
            .iter()
            .find(|c| c.chat.id == CHAT)
            .expect("the chat");
        let ids: Vec<&str> = chat.participants.iter().map(|p| p.id.as_str()).collect();
        assert!(ids.contains(&USER) && ids.contains(&AGENT), "{ids:?}");
        assert_eq!(w.messages.iter().filter(|m| m.chat_id == CHAT).count(), 2);
        let reply = loaded.replay.peek(CHAT, "hi there").expect("recorded");
        assert_eq!(reply.chunks, ["Hel", "lo!"]);
        assert_eq!(
            reply.offsets,
            [Duration::from_millis(20), Duration::from_millis(60)]
        );
        assert_eq!(reply.agent_id, AGENT);
        let agent = w
            .agents
            .iter()
            .find(|a| a.id == AGENT)
            .expect("the replied agent");
        assert!(agent.name.starts_with("Replayed agent"), "{}", agent.name);
    }

    #[test]
    fn a_line_that_is_not_json_is_refused_with_its_number() {
        let e = load(&World::default_world(), "t.jsonl", "{}\nnot json", false).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
