//! Every REST route of both protocols with the response schema of each
//! status, read from the embedded OpenAPI description (`schemas/openapi.json`),
//! so the proxy checks each answer against its own route's contract, not
//! only the envelope. The description is itself checked against the mock's
//! routers (mock-server/tests/api_descriptions.rs), so route and schema stay
//! the ones PROTOCOL.md states.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::schema::{OPENAPI, SchemaSet};

/// One operation: method, path template, and a validator per status.
struct Route {
    method: String,
    template: String,
    /// `None` where the template has a `{parameter}`.
    segments: Vec<Option<String>>,
    /// By status code; `None`: the status carries no body (204).
    by_status: BTreeMap<u16, Option<jsonschema::Validator>>,
}

/// What the description says of one answer.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// No route of the description has this method and path.
    NoRoute,
    /// The body matches the route's schema for the status.
    Valid,
    /// The route does not answer with this status; the ones it does.
    UndocumentedStatus(Vec<u16>),
    /// The body breaks the route's schema for the status: the first error.
    Invalid(String),
}

/// The routes of the embedded description.
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// The routes of `schemas/openapi.json`, compiled on first use.
    pub fn embedded() -> &'static Routes {
        static ROUTES: OnceLock<Routes> = OnceLock::new();
        ROUTES.get_or_init(|| {
            // The description is tested in this workspace; failing here is a build defect.
            Routes::from_openapi(OPENAPI, SchemaSet::embedded())
                .unwrap_or_else(|e| panic!("schemas/openapi.json: {e}"))
        })
    }

    fn from_openapi(text: &str, schemas: &SchemaSet) -> Result<Routes, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let shared = &doc["components"]["responses"];
        let mut routes = Vec::new();
        for (template, ops) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in ops.as_object().into_iter().flatten() {
                let Some(responses) = op["responses"].as_object() else {
                    continue;
                };
                let mut by_status = BTreeMap::new();
                for (status, response) in responses {
                    let Ok(code) = status.parse::<u16>() else {
                        continue;
                    };
                    let response = match response["$ref"].as_str() {
                        Some(r) => {
                            let name = r.trim_start_matches("#/components/responses/");
                            &shared[name]
                        }
                        None => response,
                    };
                    let schema = &response["content"]["application/json"]["schema"];
                    let validator = if schema.is_null() {
                        None
                    } else {
                        Some(
                            schemas
                                .compile(schema)
                                .map_err(|e| format!("{method} {template} {status}: {e}"))?,
                        )
                    };
                    by_status.insert(code, validator);
                }
                routes.push(Route {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments: template
                        .trim_start_matches('/')
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                        .collect(),
                    by_status,
                });
            }
        }
        Ok(Routes { routes })
    }

    /// The route `method path` is (the one with the most literal
    /// segments, when several templates match), by its template.
    fn find(&self, method: &str, path: &str) -> Option<&Route> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.routes
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.segments.len() == parts.len())
            .filter(|r| {
                r.segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
            })
            .max_by_key(|r| r.segments.iter().filter(|s| s.is_some()).count())
    }

    /// Checks one answer: `path` without its query.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> (Option<&str>, Verdict) {
        let Some(route) = self.find(method, path) else {
            return (None, Verdict::NoRoute);
        };
        let template = Some(route.template.as_str());
        let verdict = match route.by_status.get(&status) {
            None => Verdict::UndocumentedStatus(route.by_status.keys().copied().collect()),
            Some(None) => Verdict::Valid,
            Some(Some(v)) => match v.iter_errors(body).next() {
                None => Verdict::Valid,
                Some(e) => Verdict::Invalid(format!("at {}: {e}", e.instance_path())),
            },
        };
        (template, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_answer_is_judged_by_its_own_route_and_status() {
        let routes = Routes::embedded();
        let chat = "682f4b313981b5f54e96ea4b";
        let path = format!("/api/chats/{chat}/messages");
        let page = json!({ "ok": true, "data": [], "meta": { "page": 1, "limit": 20, "total": 0, "hasMore": false, "nextCursor": null } });
        let (template, verdict) = routes.check("GET", &path, 200, &page);
        assert_eq!(template, Some("/api/chats/{id}/messages"));
        assert_eq!(verdict, Verdict::Valid, "{page}");
        // The envelope alone is not enough: a page needs its meta.
        let (_, verdict) = routes.check("GET", &path, 200, &json!({ "ok": true, "data": [] }));
        assert!(matches!(verdict, Verdict::Invalid(_)), "{verdict:?}");
        let (_, verdict) = routes.check(
            "GET",
            &path,
            500,
            &json!({ "ok": false, "error": { "message": "x" } }),
        );
        assert!(
            matches!(verdict, Verdict::UndocumentedStatus(ref s) if s.contains(&200)),
            "{verdict:?}"
        );
        assert_eq!(
            routes.check("GET", "/api/nothing", 404, &json!({})).1,
            Verdict::NoRoute
        );
        // The literal segment wins over a parameter.
        let (template, _) = routes.check(
            "GET",
            &format!("/api/v1/agent/chats/{chat}/messages/next"),
            204,
            &Value::Null,
        );
        assert_eq!(
            template,
            Some("/api/v1/agent/chats/{chat_id}/messages/next")
        );
    }
}
