//! Sending each case on its transport and judging the answer.

use super::*;

/// A WebSocket frame with `first` as its first byte (FIN, RSV, opcode).
pub(super) fn ws_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend(key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend(payload);
    }
    out
}

// ---------------------------------------------------------------------------------
// Running a probe and judging its answer.
// ---------------------------------------------------------------------------------

pub(super) struct Ctx<'a> {
    pub(super) app: &'a TestApp,
    pub(super) limits: &'a Limits,
}

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a WebSocket client sees next.
#[derive(Debug)]
pub(super) enum WsEvent {
    Json(Value),
    Text(#[allow(dead_code)] String),
    Close(u16),
    /// The connection ended without a close frame.
    Ended(#[allow(dead_code)] String),
}

impl Ctx<'_> {
    pub(super) async fn run(&self, probe: &Probe) -> Result<(), String> {
        match probe {
            Probe::Graphql { via, gql } => self.graphql(*via, gql).await,
            Probe::Http {
                method,
                path,
                headers,
                body,
                expect,
            } => {
                let url = format!("http://{}{path}", self.app.addr);
                let mut req = self.app.http.request(method.clone(), url);
                for (name, value) in headers {
                    let value = HeaderValue::from_bytes(value).map_err(|e| e.to_string())?;
                    req = req.header(*name, value);
                }
                if let Some(body) = body {
                    req = req.body(body.clone());
                }
                let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
                check_http(resp, expect).await
            }
            Probe::Ws {
                protocol,
                init,
                messages,
                expect,
            } => self.ws(*protocol, *init, messages, expect).await,
            Probe::Tcp { bytes, expect } => self.tcp(bytes, expect).await,
            Probe::TcpWs {
                protocol,
                bytes,
                codes,
                must_close,
            } => self.tcp_ws(protocol, bytes, codes, *must_close).await,
        }
    }

    /// One GraphQL request over `via`, judged by what that transport shows of the
    /// outcome.
    async fn graphql(&self, via: Via, gql: &Gql) -> Result<(), String> {
        let mut body = json!({"query": gql.query, "variables": gql.variables});
        if let Some(name) = &gql.operation_name {
            body["operationName"] = json!(name);
        }
        if let Some(extensions) = &gql.extensions {
            body["extensions"] = extensions.clone();
        }
        let body = body.to_string();
        let too_big = body.len() > self.limits.body;
        // Plain HTTP runs no subscription.
        let outcome = match (via, gql.op) {
            (Via::Post { .. } | Via::Get, Op::Subscription) => Outcome::Refused,
            _ => gql.outcome.clone(),
        };
        match via {
            Via::Post { graphql_response } => {
                let accept = if graphql_response {
                    "application/graphql-response+json"
                } else {
                    "application/json"
                };
                let resp = self
                    .app
                    .http
                    .post(self.app.url())
                    .header("content-type", "application/json")
                    .header("accept", accept)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("no answer: {e}"))?;
                if too_big {
                    return check_http(resp, &HttpExpect::Graphql(413, "PAYLOAD_TOO_LARGE")).await;
                }
                let refused_status = if graphql_response { 400 } else { 200 };
                check_graphql_http(resp, &outcome, refused_status).await
            }
            Via::Get | Via::SseGet => {
                let mut params = vec![
                    ("query", gql.query.clone()),
                    ("variables", gql.variables.to_string()),
                ];
                if let Some(name) = &gql.operation_name {
                    params.push(("operationName", name.clone()));
                }
                if let Some(extensions) = &gql.extensions {
                    params.push(("extensions", extensions.to_string()));
                }
                let mut req = self.app.http.get(self.app.url()).query(&params);
                if matches!(via, Via::SseGet) {
                    req = req.header("accept", "text/event-stream");
                }
                let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
                if gql.op == Op::Mutation {
                    return check_http(resp, &HttpExpect::Graphql(405, "METHOD_NOT_ALLOWED")).await;
                }
                if matches!(via, Via::SseGet) {
                    check_sse(resp, &outcome).await
                } else {
                    check_graphql_http(resp, &outcome, 200).await
                }
            }
            Via::SsePost => {
                let resp = self
                    .app
                    .http
                    .post(self.app.url())
                    .header("content-type", "application/json")
                    .header("accept", "text/event-stream")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("no answer: {e}"))?;
                if too_big {
                    return check_http(resp, &HttpExpect::Graphql(413, "PAYLOAD_TOO_LARGE")).await;
                }
                check_sse(resp, &outcome).await
            }
            Via::Ws(protocol) => self.graphql_ws(protocol, gql, &outcome).await,
        }
    }

    async fn graphql_ws(
        &self,
        protocol: &'static str,
        gql: &Gql,
        outcome: &Outcome,
    ) -> Result<(), String> {
        let mut ws = self.connect(Some(protocol)).await?;
        init(&mut ws, protocol).await?;
        let legacy = protocol == LEGACY_WS;
        let mut payload = json!({"query": gql.query, "variables": gql.variables});
        if let Some(name) = &gql.operation_name {
            payload["operationName"] = json!(name);
        }
        if let Some(extensions) = &gql.extensions {
            payload["extensions"] = extensions.clone();
        }
        let kind = if legacy { "start" } else { "subscribe" };
        let msg = json!({"type": kind, "id": "1", "payload": payload}).to_string();
        let too_big = msg.len() > self.limits.ws_message;
        // The server may close while a big message is still going out.
        let _ = ws.send(Message::Text(msg.into())).await;
        if too_big {
            return expect_close(&mut ws, &[1009]).await;
        }
        let first = next_json(&mut ws).await?;
        let result = if legacy { "data" } else { "next" };
        match outcome {
            Outcome::Refused => {
                if first["type"] != "error" || first["id"] != "1" {
                    return Err(format!("expected an error message, got {first}"));
                }
                // The legacy protocol's error payload is a list of GraphQL errors here.
                errors_have_messages(&first["payload"])
            }
            // Errors raised while executing are a result, then `complete`.
            _ => {
                if first["type"] != result || first["id"] != "1" {
                    return Err(format!("expected {result}, got {first}"));
                }
                judge(&first["payload"], outcome)?;
                expect_complete(&mut ws).await
            }
        }
    }

    async fn connect(&self, protocol: Option<&str>) -> Result<Socket, String> {
        let mut req = self
            .app
            .ws_url()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some(p) = protocol {
            req.headers_mut().insert(
                "sec-websocket-protocol",
                WsHeaderValue::from_str(p).map_err(|e| e.to_string())?,
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
        Ok(ws)
    }

    async fn ws(
        &self,
        protocol: Option<&'static str>,
        init_first: bool,
        messages: &[Message],
        expect: &WsExpect,
    ) -> Result<(), String> {
        let mut ws = self.connect(protocol).await?;
        if init_first {
            init(&mut ws, protocol.unwrap_or(TRANSPORT_WS)).await?;
        }
        for msg in messages {
            // A server that already closed refuses the rest; the close says why.
            if ws.send(msg.clone()).await.is_err() {
                break;
            }
        }
        match expect {
            WsExpect::Close(codes) => expect_close(&mut ws, codes).await,
            WsExpect::ErrorThenUsable => {
                let msg = next_json(&mut ws).await?;
                let message = &msg["payload"]["message"];
                let errors = &msg["payload"][0]["message"];
                if msg["type"] != "error" || !(message.is_string() || errors.is_string()) {
                    return Err(format!("expected an error message, got {msg}"));
                }
                if !init_first {
                    init(&mut ws, LEGACY_WS).await?;
                }
                usable_legacy(&mut ws).await
            }
            WsExpect::Ignored if protocol == Some(LEGACY_WS) => usable_legacy(&mut ws).await,
            WsExpect::Ignored => {
                let _ = ws
                    .send(Message::Text(
                        r#"{"type": "ping", "payload": {"n": 1}}"#.into(),
                    ))
                    .await;
                let msg = next_json(&mut ws).await?;
                if msg == json!({"type": "pong", "payload": {"n": 1}}) {
                    Ok(())
                } else {
                    Err(format!("expected the pong, got {msg}"))
                }
            }
        }
    }

    async fn tcp(&self, bytes: &[u8], expect: &TcpExpect) -> Result<(), String> {
        let stream = TcpStream::connect(self.app.addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut reader, mut writer) = stream.into_split();
        let bytes = bytes.to_vec();
        // Write while reading: the server may answer (and stop reading) early.
        let write = tokio::spawn(async move {
            let _ = writer.write_all(&bytes).await;
            let _ = writer.shutdown().await;
            writer
        });
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        drop(write.await);
        let text = String::from_utf8_lossy(&answer);
        let text = text
            .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
            .unwrap_or(&text);
        let status: Option<u16> = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok());
        match (expect, status) {
            (_, Some(s)) if s >= 500 => Err(format!("answered {s}: {}", shown(text))),
            (TcpExpect::Refused, None) if answer.is_empty() => Ok(()),
            (TcpExpect::Refused, Some(s)) if (400..500).contains(&s) => Ok(()),
            (TcpExpect::Graphql(want, code), Some(s)) if s == *want => {
                let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                let body: Value = serde_json::from_str(body)
                    .map_err(|e| format!("body is not JSON ({e}): {}", shown(body)))?;
                coded_errors(&body, code)
            }
            _ => Err(format!("unexpected answer: {}", shown(text))),
        }
    }

    async fn tcp_ws(
        &self,
        protocol: &str,
        bytes: &[u8],
        codes: &[u16],
        must_close: bool,
    ) -> Result<(), String> {
        let mut stream = TcpStream::connect(self.app.addr)
            .await
            .map_err(|e| e.to_string())?;
        let handshake = format!(
            "GET /graphql HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n",
            self.app.addr
        );
        stream
            .write_all(handshake.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = stream.read(&mut byte).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed during the handshake".into());
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(format!("handshake: {}", String::from_utf8_lossy(&head)));
        }
        let _ = stream.write_all(bytes).await;
        let _ = stream.shutdown().await;
        // The server must let go: a close frame (with an allowed code) or the end.
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let mut closed = false;
        for (opcode, payload) in server_frames(&answer) {
            if opcode == 0x8 && payload.len() >= 2 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !codes.contains(&code) {
                    return Err(format!("closed with {code}, wanted one of {codes:?}"));
                }
                closed = true;
            }
        }
        if must_close && !closed {
            return Err(format!("no close frame, wanted one of {codes:?}"));
        }
        Ok(())
    }
}

/// The frames a server sent (unmasked), as far as they are complete.
pub(super) fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, head) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            n if n < 126 => (n as usize, 2),
            _ => break,
        };
        if bytes.len() < head + len {
            break;
        }
        out.push((opcode, bytes[head..head + len].to_vec()));
        bytes = &bytes[head + len..];
    }
    out
}

/// `connection_init`, answered by `connection_ack`.
pub(super) async fn init(ws: &mut Socket, protocol: &str) -> Result<(), String> {
    let init = if protocol == LEGACY_WS {
        r#"{"type": "connection_init", "payload": {}}"#
    } else {
        r#"{"type": "connection_init"}"#
    };
    ws.send(Message::Text(init.into()))
        .await
        .map_err(|e| e.to_string())?;
    let ack = next_json(ws).await?;
    if ack["type"] == "connection_ack" {
        Ok(())
    } else {
        Err(format!("expected connection_ack, got {ack}"))
    }
}

/// The next message, skipping pings and legacy `ka`.
pub(super) async fn next_event(ws: &mut Socket) -> WsEvent {
    loop {
        match ws.next().await {
            None => return WsEvent::Ended("end of stream".into()),
            Some(Err(e)) => return WsEvent::Ended(e.to_string()),
            Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => {
                return WsEvent::Close(code.into());
            }
            Some(Ok(Message::Close(None))) => return WsEvent::Close(1005),
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<Value>(&t) {
                Ok(v) if v["type"] == "ka" => continue,
                Ok(v) => return WsEvent::Json(v),
                Err(_) => return WsEvent::Text(t.to_string()),
            },
            Some(Ok(Message::Binary(b))) => {
                return WsEvent::Text(String::from_utf8_lossy(&b).into_owned());
            }
            Some(Ok(_)) => continue,
        }
    }
}

pub(super) async fn next_json(ws: &mut Socket) -> Result<Value, String> {
    match next_event(ws).await {
        WsEvent::Json(v) => Ok(v),
        other => Err(format!("expected a message, got {other:?}")),
    }
}

pub(super) async fn expect_close(ws: &mut Socket, codes: &[u16]) -> Result<(), String> {
    loop {
        match next_event(ws).await {
            WsEvent::Close(code) if codes.contains(&code) => return Ok(()),
            // Messages sent before the refusal (a `next` of an earlier operation, the
            // `pong` to a ping before `connection_init`).
            WsEvent::Json(v) if !matches!(v["type"].as_str(), Some("error" | "next" | "pong")) => {
                return Err(format!("expected close {codes:?}, got {v}"));
            }
            WsEvent::Json(_) => continue,
            other => return Err(format!("expected close {codes:?}, got {other:?}")),
        }
    }
}

pub(super) async fn expect_complete(ws: &mut Socket) -> Result<(), String> {
    let msg = next_json(ws).await?;
    if msg == json!({"type": "complete", "id": "1"}) {
        Ok(())
    } else {
        Err(format!("expected complete, got {msg}"))
    }
}

/// The legacy connection still runs a query.
pub(super) async fn usable_legacy(ws: &mut Socket) -> Result<(), String> {
    ws.send(Message::Text(
        r#"{"type": "start", "id": "check", "payload": {"query": "{ __typename }"}}"#.into(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    loop {
        let msg = next_json(ws).await?;
        // An `error` for a refused `start` may precede ours.
        if msg["type"] == "error" && msg["id"] != "check" {
            continue;
        }
        return if msg["type"] == "data" && msg["payload"]["data"]["__typename"] == "Query" {
            Ok(())
        } else {
            Err(format!("connection unusable afterwards: {msg}"))
        };
    }
}

/// A non-GraphQL HTTP answer.
pub(super) async fn check_http(resp: reqwest::Response, expect: &HttpExpect) -> Result<(), String> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
    let body: Result<Value, _> = serde_json::from_str(&text);
    let want = match expect {
        HttpExpect::Graphql(s, _) | HttpExpect::Rest(s, _) | HttpExpect::NotJson(s) => *s,
        HttpExpect::RestAnswers(_) => 200,
    };
    if status != want {
        return Err(format!("status {status} (wanted {want}): {}", shown(&text)));
    }
    if matches!(expect, HttpExpect::NotJson(_)) {
        return Ok(());
    }
    if !content_type.starts_with("application/json") {
        return Err(format!("content-type {content_type:?}: {}", shown(&text)));
    }
    let body = body.map_err(|e| format!("body is not JSON ({e}): {}", shown(&text)))?;
    match expect {
        HttpExpect::Graphql(_, code) => coded_errors(&body, code),
        HttpExpect::Rest(_, code) => {
            if body["error"]["code"] == *code && body["error"]["message"].is_string() {
                Ok(())
            } else {
                Err(format!("expected error code {code}, got {body}"))
            }
        }
        HttpExpect::RestAnswers(check) => check(&body),
        HttpExpect::NotJson(_) => Ok(()),
    }
}

/// `{"errors": [...]}` with this code and no `data`.
pub(super) fn coded_errors(body: &Value, code: &str) -> Result<(), String> {
    if body.get("data").is_some() {
        return Err(format!("refused request has data: {body}"));
    }
    if body["errors"][0]["extensions"]["code"] == code && body["errors"][0]["message"].is_string() {
        Ok(())
    } else {
        Err(format!("expected code {code}, got {body}"))
    }
}

/// A GraphQL answer over plain HTTP.
pub(super) async fn check_graphql_http(
    resp: reqwest::Response,
    outcome: &Outcome,
    refused_status: u16,
) -> Result<(), String> {
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| format!("status {status}, body is not JSON ({e}): {}", shown(&text)))?;
    let want = match outcome {
        Outcome::Refused => refused_status,
        _ => 200,
    };
    if status != want {
        return Err(format!("status {status} (wanted {want}): {}", shown(&text)));
    }
    judge(&body, outcome)
}

pub(super) fn judge(body: &Value, outcome: &Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Refused => {
            if body.get("data").is_some() {
                return Err(format!(
                    "expected a refusal without data, got {}",
                    shown(&body.to_string())
                ));
            }
            errors_have_messages(&body["errors"])
        }
        Outcome::Failed(code) => failed_body(body, code),
        Outcome::BadValue => {
            if body.get("data") != Some(&Value::Null) {
                return Err(format!(
                    "expected data null, got {}",
                    shown(&body.to_string())
                ));
            }
            errors_have_messages(&body["errors"])
        }
        Outcome::Answers(check) => answers_body(body, check),
    }
}

pub(super) fn errors_have_messages(errors: &Value) -> Result<(), String> {
    let list = errors.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
        format!(
            "expected a list of errors, got {}",
            shown(&errors.to_string())
        )
    })?;
    for e in list {
        if !e["message"].is_string() {
            return Err(format!("error without a message: {e}"));
        }
        if e["extensions"]["code"] == "INTERNAL_SERVER_ERROR" {
            return Err(format!("internal error: {e}"));
        }
    }
    Ok(())
}

/// Executed, and every error carries `code` (`*`: any code but an internal one).
pub(super) fn failed_body(body: &Value, code: &str) -> Result<(), String> {
    if body.get("data").is_none() {
        return Err(format!(
            "expected an executed request, got {}",
            shown(&body.to_string())
        ));
    }
    errors_have_messages(&body["errors"])?;
    for e in body["errors"].as_array().into_iter().flatten() {
        let got = e["extensions"]["code"].as_str().unwrap_or("<no code>");
        if got != code && !(code == "*" && got != "<no code>") {
            return Err(format!("expected code {code}, got {e}"));
        }
    }
    Ok(())
}

pub(super) fn answers_body(body: &Value, check: &Check) -> Result<(), String> {
    if let Some(errors) = body.get("errors") {
        return Err(format!("unexpected errors: {}", shown(&errors.to_string())));
    }
    check(&body["data"]).map_err(|e| format!("{e}: {}", shown(&body.to_string())))
}

/// A GraphQL answer as an event stream: one `next`, then `complete`, then the end.
pub(super) async fn check_sse(resp: reqwest::Response, outcome: &Outcome) -> Result<(), String> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status != 200 || !content_type.starts_with("text/event-stream") {
        let text = resp.text().await.unwrap_or_default();
        return Err(format!("status {status} {content_type}: {}", shown(&text)));
    }
    let mut stream = SseStream::new(resp);
    let first = stream
        .next()
        .await
        .ok_or("the stream ended without an event")?;
    if first.name != "next" {
        return Err(format!("expected next, got {first:?}"));
    }
    let body: Value =
        serde_json::from_str(&first.data).map_err(|e| format!("next is not JSON: {e}"))?;
    judge(&body, outcome)?;
    let complete = stream.next().await.ok_or("no complete event")?;
    if complete.name != "complete" {
        return Err(format!("expected complete, got {complete:?}"));
    }
    match stream.next().await {
        None => Ok(()),
        Some(e) => Err(format!("the stream goes on after complete: {e:?}")),
    }
}
