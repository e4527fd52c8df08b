//! A plugin instance's `inst-` token acts only within its scopes, on every
//! route: the scope table of docs/PROTOCOL.md, walked over HTTP.

mod common;

use common::*;
use serde_json::{Value, json};

/// The default world's instance token: `AGENT_CHAT_WRITE` and
/// `AGENT_MESSAGE_WRITE` on the Plugin Agent.
const INST: &str = "inst-596656b281c6127c4fccfc0c.ecf5e4ec03e78249d6a950081aa713cc.bfd252d34925d514ecaf911229c5888f.954f9a57555c56fb79e746a9b279e865e2be613475b464be";
const HELD: &[&str] = &["AGENT_CHAT_WRITE", "AGENT_MESSAGE_WRITE"];
const PLUGIN_CHAT: &str = "682f4b313981b5f54e96ea4e";
const INSTANCE: &str = "682f078808a267c1f115125e";
const PLUGIN: &str = "681f23cc38780a323859233f";
const APP: &str = "6825a9f67306f72d65708b74";
const REPOSITORY: &str = "6830aa0000000000000000a1";

/// The rows of PROTOCOL.md's scope table: (method, route, rule).
fn documented() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md");
    let start = text
        .find("| method | route | an `inst-` token |")
        .expect("PROTOCOL.md has the scope table");
    text[start..]
        .lines()
        .skip(2)
        .map(str::trim)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (
                cells[0].to_string(),
                cells[1].trim_matches('`').to_string(),
                cells[2].to_string(),
            )
        })
        .collect()
}

fn concrete(route: &str) -> String {
    let id = if route.starts_with("/api/agents") {
        ECHO
    } else if route.starts_with("/api/chats") {
        PLUGIN_CHAT
    } else if route.starts_with("/api/plugins") {
        PLUGIN
    } else if route.starts_with("/api/app-integrations") {
        APP
    } else {
        REPOSITORY
    };
    route.replace("{id}", id).replace("{instance}", INSTANCE)
}

fn body_for(route: &str) -> Value {
    match route {
        "/api/chats/{id}/participants" => json!({ "id": STREAMER, "type": "AGENT" }),
        "/api/chats/{id}" => json!({ "title": "renamed by a plugin" }),
        "/api/chats" => json!({ "participants": [{ "id": STREAMER, "type": "AGENT" }] }),
        "/api/messages" => json!({ "chatId": PLUGIN_CHAT, "content": "from the plugin" }),
        _ => json!({}),
    }
}

#[test]
fn the_documented_table_and_the_mock_table_list_the_same_routes() {
    use proteus_mock::proteus::rest::scopes::{Access, TABLE};
    let docs = documented();
    let render = |a: Access| match a {
        Access::Read => "read".to_string(),
        Access::Never => "never".to_string(),
        Access::Scope(s) => format!("`*_{s}`"),
        Access::Exact(s) => format!("`{s}`"),
        Access::InCore => "in core".to_string(),
    };
    let code: Vec<(String, String, String)> = TABLE
        .iter()
        .map(|(m, r, a)| (m.to_string(), r.to_string(), render(*a)))
        .collect();
    assert_eq!(docs.len(), code.len(), "docs: {docs:#?}\ncode: {code:#?}");
    for ((dm, dr, drule), (cm, cr, crule)) in docs.iter().zip(&code) {
        assert_eq!(
            (dm, dr),
            (cm, cr),
            "the tables list routes in the same order"
        );
        if crule != "in core" {
            assert_eq!(drule, crule, "{dm} {dr}");
        }
    }
}

#[tokio::test]
async fn an_instance_token_is_refused_on_every_route_its_scopes_do_not_open() {
    let mock = start().await;
    let http = Http::new(&mock);
    let mut wrong = Vec::new();
    for (method, route, rule) in documented() {
        let method: reqwest::Method = method.parse().expect("a method");
        let path = concrete(&route);
        let body = (method != reqwest::Method::GET && method != reqwest::Method::DELETE)
            .then(|| body_for(&route));
        let reply = http.send(method.clone(), &path, Some(INST), body).await;
        let refused = reply.status == 403;
        let may = match rule.as_str() {
            "read" => true,
            "never" => false,
            r if r.starts_with("`*_MESSAGE_WRITE`") => HELD.contains(&"AGENT_MESSAGE_WRITE"),
            r => {
                let scope = r.trim_matches('`').replace("*_", "AGENT_");
                HELD.contains(&scope.as_str())
            }
        };
        if may == refused {
            wrong.push(format!(
                "{method} {path} ({rule}): {} {}",
                reply.status, reply.body
            ));
        }
        if refused {
            let message = reply.body["error"]["message"].as_str().unwrap_or("");
            assert!(
                message.contains("scope") || message.contains("for users"),
                "{method} {path}: a refusal says why: {message}"
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "answers against the table:\n{}",
        wrong.join("\n")
    );
    // The agent the instance tried to delete is still there.
    let echo = http.get(&format!("/api/agents/{ECHO}"), ADA).await;
    assert_eq!(echo.status, 200, "{}", echo.body);
    mock.stop().await.expect("stop");
}
