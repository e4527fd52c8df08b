//! "A message enters a chat": validate the body, resolve where it goes,
//! persist it, announce it, start the replies.
//!
//! REST (`POST /api/messages`) and socket.io (`message:send`) take the same
//! body and follow the same steps; only how they answer differs. Both call
//! these functions, so a rule about sending lives here once.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::store::{Caller, Destination, NewMessage};
use super::{Core, Refusal, events, replies};

use crate::model::{Chat, Message, Participant, is_message_type, is_object_id};

/// How a JSON value is named in an error message ("a number", "an array").
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validates a `message:send` (or `POST /api/messages`) body.
/// One attachment (MessageAttachment): a `url`, a `pageUrl` (absolute
/// http(s) URLs), a `repositoryId`, or the legacy `{content, type}`.
fn check_attachment(a: &Value) -> Result<(), String> {
    let Some(m) = a.as_object() else {
        return Err(format!("must be an object, not {}", kind(a)));
    };
    for k in ["url", "pageUrl"] {
        match m.get(k) {
            None => {}
            Some(Value::String(u)) if u.starts_with("http://") || u.starts_with("https://") => {}
            Some(v) => return Err(format!("{k} must be an absolute http(s) URL, not {v}")),
        }
    }
    match m.get("repositoryId") {
        None => {}
        Some(Value::String(id)) if is_object_id(id) => {}
        Some(v) => return Err(format!("repositoryId {v} is not an id")),
    }
    match m.get("content") {
        None | Some(Value::String(_)) => {}
        Some(v) => return Err(format!("content must be a string, not {}", kind(v))),
    }
    match m.get("type") {
        None => {}
        Some(Value::String(t)) if is_message_type(t) => {}
        Some(v) => return Err(format!("type {v} is not a MessageType")),
    }
    let legacy = m.contains_key("content") && m.contains_key("type");
    if !(legacy
        || ["url", "pageUrl", "repositoryId"]
            .iter()
            .any(|k| m.contains_key(*k)))
    {
        return Err("must have a url, a pageUrl, a repositoryId, or content and type".into());
    }
    Ok(())
}

pub fn parse_send(o: &Map<String, Value>) -> Result<(Destination, NewMessage), String> {
    // The send schemas allow no null: a field is given or left out.
    if let Some((k, _)) = o.iter().find(|(_, v)| v.is_null()) {
        return Err(format!("{k} must not be null (leave it out instead)"));
    }
    let string = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(format!("{k} must be a string, not {}", kind(v))),
        }
    };
    let content = string("content")?.ok_or("content is required (a string)")?;
    let kind_ = string("type")?.unwrap_or_else(Message::default_type);
    if !is_message_type(&kind_) {
        return Err(format!(
            "type {kind_:?} is not a MessageType (e.g. TEXT, CODE, FILE_URL, FUNCTION_CALL, IMAGE_URL)"
        ));
    }
    let stream_response = match o.get("streamResponse") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(format!("streamResponse must be a boolean, not {}", kind(v))),
    };
    let state = match o.get("state") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(v) => return Err(format!("state must be an object, not {}", kind(v))),
    };
    // A malformed mock override is refused up front, before anything is stored.
    let probe = crate::model::Script {
        text: String::new(),
        chunk_size: 1,
        chunks: None,
        first_chunk_delay_ms: 0,
        chunk_delay_ms: 0,
        seed: 0,
    };
    replies::script::effective(&probe, &state)?;
    let attachments = match o.get("attachments") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            for (i, a) in items.iter().enumerate() {
                check_attachment(a).map_err(|why| format!("attachments[{i}] {why}"))?;
            }
            items.clone()
        }
        Some(v) => return Err(format!("attachments must be an array, not {}", kind(v))),
    };
    let response_url = string("responseUrl")?;
    if let Some(u) = &response_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(format!("responseUrl {u:?} must be an absolute http(s) URL"));
    }
    let responded_to_id = string("respondedToId")?;
    if let Some(id) = &responded_to_id
        && !is_object_id(id)
    {
        return Err(format!("respondedToId {id:?} is not an id"));
    }
    let chat_key = string("chatKey")?;
    if chat_key.as_deref() == Some("") {
        return Err("chatKey must not be empty (leave it out instead)".into());
    }
    let recipients = match o.get("recipients") {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<Participant>>(v.clone())
                .map_err(|e| format!("recipients must be [{{ \"id\": \"…\", \"type\": \"AGENT\" | \"USER\" | \"APP_INTEGRATION\" }}]: {e}"))?,
        ),
    };
    if let Some(r) = recipients.iter().flatten().find(|r| !is_object_id(&r.id)) {
        return Err(format!("recipient id {:?} is not an id", r.id));
    }
    let to =
        match (string("chatId")?, chat_key.clone(), recipients) {
            (Some(id), _, _) if !is_object_id(&id) => {
                return Err(format!(
                    "chatId {id:?} is not an id (24 lowercase hex characters)"
                ));
            }
            (Some(id), _, _) => Destination::Chat(id),
            (None, Some(key), Some(recipients)) => Destination::Key { key, recipients },
            (None, Some(_), None) => return Err(
                "chatKey needs recipients to create the chat: send chatId, or chatKey + recipients"
                    .into(),
            ),
            (None, None, Some(recipients)) if !recipients.is_empty() => {
                Destination::Recipients(recipients)
            }
            _ => return Err("chatId is required (or chatKey + recipients)".into()),
        };
    Ok((
        to,
        NewMessage {
            content,
            kind: kind_,
            attachments,
            stream_response,
            state,
            response_url,
            responded_to_id,
            chat_key,
        },
    ))
}

/// Resolves the destination and persists the message as the caller.
pub fn send(
    core: &Core,
    caller: &Caller,
    to: Destination,
    new: NewMessage,
) -> Result<(Message, Chat, replies::Pending), Refusal> {
    // A plugin instance speaks as its agent or app integration, within its scopes.
    if let Some(me) = &caller.acts_as {
        let prefix = if me.kind == crate::model::ParticipantType::Agent {
            "AGENT"
        } else {
            "APP_INTEGRATION"
        };
        let needed = format!("{prefix}_MESSAGE_WRITE");
        if !caller.may(&needed) {
            return Err(Refusal::Forbidden(format!(
                "This plugin instance lacks the {needed} scope: it cannot send messages as its {}",
                prefix.to_lowercase().replace('_', " ")
            )));
        }
        let chat_scope = format!("{prefix}_CHAT_WRITE");
        if !matches!(to, Destination::Chat(_)) && !caller.may(&chat_scope) {
            return Err(Refusal::Forbidden(format!(
                "This plugin instance lacks the {chat_scope} scope: it cannot create chats"
            )));
        }
    }
    let (chat, joined) = core.store.resolve_destination(caller, to)?;
    // The replies it starts stay bounded: refused before anything is stored.
    let pending = replies::prepare(core, &chat.id, caller, &new)?;
    events::joined_new_chat(core, &chat, &joined);
    let sender = caller
        .as_participant()
        .map_or_else(|| caller.entity.id.clone(), |p| p.id);
    let (message, chat) = core
        .store
        .persist(&chat.id, Some(&sender), new, None, None)?;
    Ok((message, chat, pending))
}

/// Refuses a `responseUrl` the outbound policy will not reach (see
/// [`super::plugins::outbound`]), so the sender hears it now rather than the
/// reply going nowhere later.
pub async fn check_response_url(core: &Core, new: &NewMessage) -> Result<(), String> {
    match &new.response_url {
        Some(url) => core
            .dispatcher
            .policy
            .check(url)
            .await
            .map_err(|reason| format!("responseUrl refused: {reason}")),
        None => Ok(()),
    }
}

/// [`events::announce`], then the scripted agents' replies: what follows a send.
pub async fn deliver(
    core: &Arc<Core>,
    caller: &Caller,
    chat: &Chat,
    message: &Message,
    replies: replies::Pending,
    except: Option<&str>,
) {
    events::announce(core, chat, message, except).await;
    replies::start(core, caller, message, replies);
}
