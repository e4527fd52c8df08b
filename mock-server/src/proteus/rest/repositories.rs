//! `/api/repositories`: create, get, list (members of the repository's org).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{ApiError, ApiResult, Auth, JsonBody, ok, path_id};
use crate::proteus::App;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRepository {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    org_id: Option<String>,
}

pub async fn create(State(app): State<Arc<App>>, Auth(caller): Auth, body: JsonBody) -> ApiResult {
    let b: CreateRepository = body.parse()?;
    if b.name.trim().is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    if let Some(o) = b.org_id.as_ref().filter(|o| !crate::model::is_object_id(o)) {
        return Err(ApiError::bad_request(format!("orgId {o:?} is not an id")));
    }
    ok(
        StatusCode::CREATED,
        &app.store
            .create_repository(&caller, b.name, b.description, b.org_id)?,
    )
}

pub async fn get(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("Repository", &id)?;
    ok(StatusCode::OK, &app.store.repository(&caller, &id)?)
}

pub async fn list(State(app): State<Arc<App>>, Auth(caller): Auth) -> ApiResult {
    ok(StatusCode::OK, &app.store.repositories(&caller))
}
