//! WebSocket messages of both subprotocols: malformed, out of order, oversized.

use super::*;

/// WebSocket messages and frames of both subprotocols.
pub(super) fn ws_cases(limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |protocol: Option<&'static str>,
                   init: bool,
                   name: String,
                   messages: Vec<Message>,
                   expect: WsExpect| {
        cases.push(Case {
            name: format!(
                "{} {}{name}",
                protocol.unwrap_or("no subprotocol"),
                if init { "after connection_init: " } else { "" }
            ),
            probe: Probe::Ws {
                protocol,
                init,
                messages,
                expect,
            },
        });
    };
    let text = |s: &str| Message::Text(s.to_owned().into());
    let garbage: Vec<String> = [
        "",
        " ",
        "not json",
        "{",
        "}",
        "[]",
        "null",
        "1",
        "\"connection_init\"",
        "{}",
        "{\"type\": 1}",
        "{\"type\": null}",
        "{\"type\": [\"subscribe\"]}",
        "{\"type\": \"nope\"}",
        "{\"type\": \"SUBSCRIBE\", \"id\": \"1\", \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"subscribe\"}",
        "{\"type\": \"subscribe\", \"id\": 1, \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"subscribe\", \"id\": {}, \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"subscribe\", \"id\": \"1\"}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": \"{ __typename }\"}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": 5}}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": \"{ __typename }\", \"variables\": [1]}}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": \"{ __typename }\", \"operationName\": 5}}",
        "{\"type\": \"start\", \"id\": 1, \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"start\", \"id\": \"1\", \"payload\": [1]}",
        "{\"type\": \"complete\"}",
        "{\"type\": \"stop\"}",
        "{\"type\": \"next\", \"id\": \"1\", \"payload\": {}}",
        "{\"type\": \"data\", \"id\": \"1\", \"payload\": {}}",
        "{\"type\": \"error\", \"id\": \"1\", \"payload\": []}",
        "{\"type\": \"connection_ack\"}",
        "{\"type\": \"ka\"}",
        "{\"type\": \"connection_init\", \"payload\": {}} trailing",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": \"{ __typename }\"}, \"type\": 5}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": \"\\ud800\"}}",
        "'; DROP TABLE record; --",
        "\u{feff}{\"type\": \"ping\"}",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000)),
        format!(
            "{{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}1{}}}}}}}",
            "[".repeat(5_000),
            "]".repeat(5_000)
        ),
    ])
    .collect();
    // Every prefix of a good message, cut at a few places.
    let good = r#"{"type": "subscribe", "id": "op-1", "payload": {"query": "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }", "variables": {}}}"#;
    let legacy_good = good.replace("subscribe", "start");
    let cuts: Vec<usize> = (1..good.len()).step_by(9).collect();

    for s in &garbage {
        // A transport message that is not one the protocol defines closes 4400; the
        // legacy protocol answers `error` and goes on.
        add(
            Some(TRANSPORT_WS),
            true,
            shown(s),
            vec![text(s)],
            WsExpect::Close(&[4400]),
        );
        add(
            Some(LEGACY_WS),
            true,
            shown(s),
            vec![text(s)],
            WsExpect::ErrorThenUsable,
        );
    }
    for cut in &cuts {
        add(
            Some(TRANSPORT_WS),
            true,
            format!("truncated: {}", shown(&good[..*cut])),
            vec![text(&good[..*cut])],
            WsExpect::Close(&[4400]),
        );
        let cut = (*cut).min(legacy_good.len() - 1);
        add(
            Some(LEGACY_WS),
            true,
            format!("truncated: {}", shown(&legacy_good[..cut])),
            vec![text(&legacy_good[..cut])],
            WsExpect::ErrorThenUsable,
        );
    }
    // Binary frames are read like text; garbage in them is garbage.
    for bytes in [
        &b"\x00\x01\x02\x03"[..],
        b"\xff\xfe\xfd",
        b"{\"type\": \"subscribe\", \"id\": \"\xff\"}",
        b"",
    ] {
        let name = format!("binary {bytes:?}");
        add(
            Some(TRANSPORT_WS),
            true,
            name.clone(),
            vec![Message::Binary(bytes.to_vec().into())],
            WsExpect::Close(&[4400]),
        );
        add(
            Some(LEGACY_WS),
            true,
            name,
            vec![Message::Binary(bytes.to_vec().into())],
            WsExpect::ErrorThenUsable,
        );
    }
    // Protocol state: before init, a second init, init payloads, duplicate ids.
    let subscribe = r#"{"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }"}}"#;
    add(
        Some(TRANSPORT_WS),
        false,
        "subscribe before connection_init".into(),
        vec![text(subscribe)],
        WsExpect::Close(&[4401]),
    );
    add(
        Some(TRANSPORT_WS),
        false,
        "never sends connection_init".into(),
        vec![],
        WsExpect::Close(&[4408]),
    );
    add(
        Some(LEGACY_WS),
        false,
        "never sends connection_init".into(),
        vec![],
        WsExpect::Close(&[4408]),
    );
    add(
        Some(TRANSPORT_WS),
        false,
        "only pings, never connection_init".into(),
        vec![text("{\"type\": \"ping\"}"); 3],
        WsExpect::Close(&[4408]),
    );
    add(
        Some(TRANSPORT_WS),
        true,
        "a second connection_init".into(),
        vec![text("{\"type\": \"connection_init\"}")],
        WsExpect::Close(&[4429]),
    );
    for payload in ["\"token\"", "1", "[]", "true"] {
        add(
            Some(TRANSPORT_WS),
            false,
            format!("connection_init with payload {payload}"),
            vec![text(&format!(
                "{{\"type\": \"connection_init\", \"payload\": {payload}}}"
            ))],
            WsExpect::Close(&[4400]),
        );
    }
    add(
        Some(TRANSPORT_WS),
        true,
        "the same id twice while the first runs".into(),
        vec![
            text(
                r#"{"type": "subscribe", "id": "dup", "payload": {"query": "subscription { recordChanged { cursor } }"}}"#,
            ),
            text(
                r#"{"type": "subscribe", "id": "dup", "payload": {"query": "subscription { recordChanged { cursor } }"}}"#,
            ),
        ],
        WsExpect::Close(&[4409]),
    );
    add(
        Some(LEGACY_WS),
        false,
        "start before connection_init".into(),
        vec![text(&subscribe.replace("subscribe", "start"))],
        WsExpect::ErrorThenUsable,
    );
    // Messages the protocols ignore: the connection must go on.
    for s in [
        r#"{"type": "complete", "id": "never-started"}"#,
        r#"{"type": "pong", "payload": {"' OR 1=1 --": 1}}"#,
        r#"{"type": "pong"}"#,
    ] {
        add(
            Some(TRANSPORT_WS),
            true,
            shown(s),
            vec![text(s)],
            WsExpect::Ignored,
        );
    }
    add(
        Some(LEGACY_WS),
        true,
        "stop of an operation never started".into(),
        vec![text(r#"{"type": "stop", "id": "never-started"}"#)],
        WsExpect::Ignored,
    );
    // Frames that break WebSocket itself: over-long messages, invalid UTF-8, fragments
    // that never finish properly.
    let over = limits.ws_message + 1;
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let frames: Vec<(&str, Vec<Message>, &'static [u16])> = vec![
            (
                "a text message one byte over the limit",
                vec![text(&format!(
                    "{{\"type\": \"ping\", \"payload\": \"{}\"}}",
                    "p".repeat(over)
                ))],
                &[1009],
            ),
            (
                "a binary message of four times the limit",
                vec![Message::Binary(vec![b'['; 4 * over].into())],
                &[1009],
            ),
            (
                "a message over the limit in small fragments",
                {
                    let chunk = vec![b' '; 16 * 1024];
                    let n = over / chunk.len() + 2;
                    (0..n)
                        .map(|i| {
                            let opcode = if i == 0 {
                                OpCode::Data(Data::Text)
                            } else {
                                OpCode::Data(Data::Continue)
                            };
                            Message::Frame(Frame::message(chunk.clone(), opcode, i == n - 1))
                        })
                        .collect()
                },
                &[1009],
            ),
            (
                "a text frame of invalid UTF-8",
                vec![Message::Frame(Frame::message(
                    b"{\"type\": \"\xff\xfe\"}".to_vec(),
                    OpCode::Data(Data::Text),
                    true,
                ))],
                &[1002, 1007],
            ),
            (
                "invalid UTF-8 split across fragments",
                vec![
                    Message::Frame(Frame::message(
                        b"{\"type\": \"\xe2\x82".to_vec(),
                        OpCode::Data(Data::Text),
                        false,
                    )),
                    Message::Frame(Frame::message(
                        b"\"}".to_vec(),
                        OpCode::Data(Data::Continue),
                        true,
                    )),
                ],
                &[1002, 1007],
            ),
            (
                "a continuation frame with nothing to continue",
                vec![Message::Frame(Frame::message(
                    b"{}".to_vec(),
                    OpCode::Data(Data::Continue),
                    true,
                ))],
                &[1002],
            ),
            (
                "a new text frame while a fragmented one is open",
                vec![
                    Message::Frame(Frame::message(
                        b"{\"type\":".to_vec(),
                        OpCode::Data(Data::Text),
                        false,
                    )),
                    Message::Frame(Frame::message(
                        b"{\"type\": \"ping\"}".to_vec(),
                        OpCode::Data(Data::Text),
                        true,
                    )),
                ],
                &[1002],
            ),
            (
                "a frame with a reserved opcode",
                vec![Message::Frame(Frame::message(
                    b"{}".to_vec(),
                    OpCode::Data(Data::Reserved(3)),
                    true,
                ))],
                &[1002],
            ),
            (
                "a frame with RSV1 set",
                vec![Message::Frame({
                    let mut f = Frame::message(
                        b"{\"type\": \"ping\"}".to_vec(),
                        OpCode::Data(Data::Text),
                        true,
                    );
                    f.header_mut().rsv1 = true;
                    f
                })],
                &[1002],
            ),
        ];
        for (name, messages, codes) in frames {
            add(
                Some(protocol),
                true,
                name.into(),
                messages,
                WsExpect::Close(codes),
            );
        }
    }
    // Subprotocols the server does not speak: the upgrade succeeds, then 4406.
    add(
        None,
        false,
        "no subprotocol".into(),
        vec![],
        WsExpect::Close(&[4406]),
    );
    for protocol in [
        "graphql-ws-evil",
        "GRAPHQL-TRANSPORT-WS",
        "graphql-transport-ws-v2",
        "' OR 1=1 --",
    ] {
        cases.push(Case {
            name: format!("subprotocol {protocol:?}"),
            probe: Probe::TcpWs {
                protocol,
                bytes: vec![],
                codes: &[4406],
                must_close: true,
            },
        });
    }
    cases
}
