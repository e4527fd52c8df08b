//! `POST /api/messages` (management): send a message as the token's entity,
//! into `chatId` or to `recipients` (a new chat, or one found by `chatKey`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use super::{ApiError, ApiResult, Auth, JsonBody, ok};
use crate::App;

pub async fn create(State(app): State<Arc<App>>, Auth(caller): Auth, body: JsonBody) -> ApiResult {
    let obj = body
        .0
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Request body must be a JSON object"))?;
    if obj.contains_key("streamId") {
        let (status, message) = crate::plugins::streams::chunk(&app, &caller, obj).await?;
        return ok(status, &message);
    }
    let (to, new) = crate::realtime::parse_send(obj).map_err(ApiError::bad_request)?;
    let (message, chat) = crate::realtime::send(&app, &caller, to, new).map_err(ApiError::from)?;
    crate::realtime::announce(&app, &chat, &message).await;
    crate::realtime::start_replies(&app, &caller, &message);
    ok(StatusCode::CREATED, &message)
}
