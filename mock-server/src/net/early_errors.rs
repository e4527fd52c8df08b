//! The HTTP layer's own answers, rewritten into the error envelope.
//!
//! hyper answers a request it cannot parse by itself, before any handler
//! runs: 400 (a malformed request line, header or version), 414 (a request
//! target over 65,534 bytes) or 431 (over 100 headers, or a head larger than
//! the connection's read buffer of about 400 KiB), each with an empty body,
//! and then closes the connection. The mock promises the error envelope for
//! every answer, so the connection's writer recognises these answers and
//! writes an envelope in their place. They are told apart from the mock's
//! own by their empty body: every error a handler writes has one.
//!
//! One body satisfies both protocols' error envelopes (the request could
//! not be parsed, so which API it was for is unknown): ProteusAI's
//! `{ok: false, error: {message}}` and Thenvoi's `{error: {code, message}}`.

/// The status lines hyper writes for a parse error, with the envelope's
/// code and message for each.
const ANSWERS: [(&[u8], &str, &str); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\n",
        "bad_request",
        "the request could not be parsed as HTTP/1.1: check the request line, the header syntax and the version",
    ),
    (
        b"HTTP/1.1 414 URI Too Long\r\n",
        "uri_too_long",
        "the request target is over 65,534 bytes",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        "request_header_fields_too_large",
        "the request has over 100 headers, or a head over about 400 KiB",
    ),
];

/// hyper's answer heads are a status line and two or three short headers.
const MAX_HEAD: usize = 512;

/// The envelope answer to write instead of `written`, when `written` is one
/// of hyper's bodiless parse-error answers.
pub(super) fn rewrite(written: &[u8]) -> Option<Vec<u8>> {
    if written.len() > MAX_HEAD || !written.ends_with(b"\r\n\r\n") {
        return None;
    }
    let (status_line, code, message) = ANSWERS
        .iter()
        .find(|(line, _, _)| written.starts_with(line))?;
    let head = std::str::from_utf8(written).ok()?.to_ascii_lowercase();
    if !head.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let body = serde_json::json!({ "ok": false, "error": { "code": code, "message": message } })
        .to_string();
    let mut answer = status_line.to_vec();
    answer.extend_from_slice(
        format!(
            "content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn a_bodiless_431_from_the_http_layer_becomes_an_envelope() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 21:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(rewrite(hyper).expect("rewritten")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"]["code"], "request_header_fields_too_large");
    }

    #[test]
    fn an_answer_with_a_body_is_left_alone() {
        let mock = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n";
        assert!(rewrite(mock).is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
