//! The world's scripted Thenvoi agents: peers that answer a mention the way
//! a well-behaved agent does, so a client developer sees the whole loop
//! (mention, claim, reply, processed) with nothing else running.
//!
//! - `echo`: claims the message (`processing`), replies `echo: <content>`
//!   mentioning the sender, marks it `processed`.
//! - `fail-first`: claims, marks the first attempt `failed`, claims again
//!   (attempt 2), replies and marks it `processed`.
//!
//! They act through [`super::flow`] like any client, so their pushes,
//! delivery marks and journal entries are the real ones. A scripted agent
//! never answers another scripted agent (two echoes would talk forever).
//! Steps are [`STEP`] apart so a watcher sees each state; a reset stops
//! them.

use std::sync::Arc;
use std::time::Duration;

use super::messages::{Claim, MentionIn};
use crate::core::Core;
use crate::model::thenvoi::{Message, PeerScript};

/// The pause between a scripted agent's steps.
pub const STEP: Duration = Duration::from_millis(20);

/// Starts the scripted agents `message` is addressed to.
pub fn react(core: &Arc<Core>, message: &Message) {
    let ids: Vec<String> = super::messages::addressed(message)
        .map(str::to_string)
        .collect();
    if ids.is_empty()
        || !core
            .thenvoi
            .scripted(std::slice::from_ref(&message.sender_id))
            .is_empty()
    {
        return;
    }
    for (agent, script) in core.thenvoi.scripted(&ids) {
        let (core2, message) = (core.clone(), message.clone());
        let epoch = core.epoch();
        core.tasks.spawn_on(
            async move {
                tokio::select! {
                    _ = epoch.cancelled() => {}
                    _ = answer(&core2, &agent, script, &message) => {}
                }
            },
            &core.realtime,
        );
    }
}

async fn answer(core: &Arc<Core>, agent: &super::Principal, script: PeerScript, message: &Message) {
    let room = &message.chat_room_id;
    let claim = |c: Claim| super::flow::claim(core, agent, room, &message.id, c);
    tokio::time::sleep(STEP).await;
    if claim(Claim::Processing).is_err() {
        return;
    }
    if script == PeerScript::FailFirst {
        tokio::time::sleep(STEP).await;
        let _ = claim(Claim::Failed(
            "scripted failure: the first attempt always fails".into(),
        ));
        tokio::time::sleep(STEP).await;
        let _ = claim(Claim::Processing);
    }
    tokio::time::sleep(STEP).await;
    let mention = MentionIn {
        id: message.sender_id.clone(),
        name: message.sender_name.clone(),
        handle: None,
    };
    let reply = format!("echo: {}", message.content);
    if super::flow::send(core, agent, room, &reply, vec![mention]).is_err() {
        // The sender left the room meanwhile: the reply has no one to mention.
        let _ = claim(Claim::Failed("the sender is no longer in the chat".into()));
        return;
    }
    let _ = claim(Claim::Processed);
}
