//! The mock as the client runner uses it: its control plane (reset,
//! faults, journal, restart) and its REST API (the truth a client's
//! report is compared with).

use serde_json::Value;

/// A control plane / REST helper bound to the target.
pub(super) struct Mock<'a> {
    pub http: reqwest::Client,
    pub base: &'a str,
}

impl Mock<'_> {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let (status, v) = self.call(method.clone(), path, None, body).await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{method} {path} answered {status}: {v} (client mode needs a proteus-mock with its control plane)"
            ));
        }
        Ok(v)
    }

    /// Switches `faults` on, globally: REST faults are not scoped to a
    /// chat, and the mock was just reset for this scenario alone.
    pub async fn faults(&self, faults: &[&str]) -> Result<(), String> {
        for f in faults {
            self.admin(
                reqwest::Method::POST,
                "/__admin/faults",
                Some(serde_json::json!({ "fault": f })),
            )
            .await?;
        }
        Ok(())
    }

    /// Every message id of a chat, oldest first, as the server lists them.
    pub async fn history(&self, token: &str, chat: &str) -> Result<Vec<String>, String> {
        let (status, v) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/chats/{chat}/messages?@limit=100&@page=1"),
                Some(token),
                None,
            )
            .await?;
        if status != 200 {
            return Err(format!("listing {chat} answered {status}: {v}"));
        }
        let ids: Vec<String> = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        // Oldest first, as the API lists (PROTOCOL.md R9).
        Ok(ids)
    }

    /// The journal entries `query` selects (since the last reset), oldest
    /// first.
    pub async fn journal(&self, query: &str) -> Result<Vec<Value>, String> {
        let mut v = self
            .admin(
                reqwest::Method::GET,
                &format!("/__admin/journal?{query}"),
                None,
            )
            .await?;
        Ok(match v["data"].take() {
            Value::Array(entries) => entries,
            _ => Vec::new(),
        })
    }

    /// The message the mock gave the first socket it refused.
    pub async fn refusal(&self) -> Result<Option<String>, String> {
        Ok(self
            .journal("kind=connect")
            .await?
            .iter()
            .find_map(|e| e["detail"]["refused"].as_str().map(str::to_string)))
    }

    /// The client events the mock received, oldest first (kind `in`).
    pub async fn client_events(&self) -> Result<Vec<Value>, String> {
        self.journal("kind=in").await
    }

    /// How many times `chat` was joined successfully.
    pub async fn joins(&self, chat: &str) -> Result<usize, String> {
        Ok(self
            .journal(&format!("kind=in&event=chat:join&chatId={chat}"))
            .await?
            .iter()
            .filter(|e| e["detail"]["ack"] == "data")
            .count())
    }

    /// Every `message:done` content the mock sent into `chat`, in order.
    pub async fn done_contents(&self, chat: &str) -> Result<Vec<String>, String> {
        Ok(self
            .journal(&format!("kind=out&event=message:done&chatId={chat}"))
            .await?
            .iter()
            .filter_map(|e| e["detail"]["payload"]["content"].as_str())
            .map(str::to_string)
            .collect())
    }

    pub async fn connects(&self) -> Result<usize, String> {
        Ok(self.journal("kind=connect").await?.len())
    }
}
