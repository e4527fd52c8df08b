//! `POST /api/messages` (management): send a message as the token's entity,
//! into `chatId` or to `recipients` (a new chat, or one found by `chatKey`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use super::{ApiError, ApiResult, Auth, JsonBody, ok};
use crate::core::messaging;
use crate::proteus::App;

pub async fn create(State(app): State<Arc<App>>, Auth(caller): Auth, body: JsonBody) -> ApiResult {
    let obj = body
        .0
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Request body must be a JSON object"))?;
    if obj.contains_key("streamId") {
        use crate::core::replies::posted::{Chunked, chunk};
        return match chunk(&app.core, &caller, obj).await? {
            Chunked::Delta(message) => ok(StatusCode::OK, &message),
            Chunked::Closed(message) => ok(StatusCode::CREATED, &message),
        };
    }
    let (to, new) = messaging::parse_send(obj).map_err(ApiError::bad_request)?;
    messaging::check_response_url(&app.core, &new)
        .await
        .map_err(ApiError::bad_request)?;
    let mut caller = caller;
    let faults = app.faults.plugins(None);
    if caller.acts_as.is_some() && faults.ignore_scopes.fire() {
        caller.scopes = vec![
            "AGENT_MESSAGE_WRITE".into(),
            "AGENT_CHAT_WRITE".into(),
            "APP_INTEGRATION_MESSAGE_WRITE".into(),
            "APP_INTEGRATION_CHAT_WRITE".into(),
        ];
    }
    let may_write =
        caller.may("AGENT_MESSAGE_WRITE") || caller.may("APP_INTEGRATION_MESSAGE_WRITE");
    if caller.acts_as.is_some() && may_write && faults.drop_plugin_replies.fire() {
        // Answer as if stored; store and relay nothing.
        let mut echo = body.0.clone();
        echo["id"] = serde_json::Value::String(app.store.ids.next());
        return ok(StatusCode::CREATED, &echo);
    }
    let (message, chat, replies) = messaging::send(&app.core, &caller, to, new)?;
    messaging::deliver(&app.core, &caller, &chat, &message, replies, None).await;
    ok(StatusCode::CREATED, &message)
}
