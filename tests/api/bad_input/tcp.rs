//! Raw bytes under HTTP and WebSockets: truncated, invalid, fragmented frames.

use super::*;

/// Bytes no HTTP or WebSocket library would send.
pub(super) fn tcp_cases(limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    let http = |s: &str| s.as_bytes().to_vec();
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("binary garbage", b"\x00\x01\x02\x03\xff\xfe\r\n\r\n".to_vec()),
        ("a TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec()),
        ("an HTTP/2 preface", http("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")),
        ("a request line only", http("GET /graphql HTTP/1.1\r\n")),
        ("a request cut in the headers", http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Ty")),
        ("a bad HTTP version", http("GET /graphql HTTP/9.9\r\nHost: x\r\n\r\n")),
        ("a method with spaces", http("G ET /graphql HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("a header without a colon", http("GET /graphql HTTP/1.1\r\nHost x\r\n\r\n")),
        (
            "a header with invalid bytes in its name",
            b"GET /graphql HTTP/1.1\r\nHo\xffst: x\r\n\r\n".to_vec(),
        ),
        (
            "raw invalid UTF-8 in the path",
            b"GET /api/records/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "a 100 KiB header",
            format!(
                "GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
                "a".repeat(1024 * 1024)
            )
            .into_bytes(),
        ),
        (
            "a 1 MiB URI",
            format!(
                "GET /graphql?query={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "a".repeat(1024 * 1024)
            )
            .into_bytes(),
        ),
        (
            "a negative Content-Length",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}"),
        ),
        (
            "a Content-Length that is not a number",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}"),
        ),
        (
            "two different Content-Lengths",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}"),
        ),
        (
            "Content-Length and chunked together",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ),
        (
            "a chunk size that is not hex",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
        ),
        (
            "a chunk size of 2^64",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10000000000000000\r\n{}\r\n0\r\n\r\n"),
        ),
        (
            "a body shorter than its Content-Length",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\": \"mutation"),
        ),
        (
            "a REST body shorter than its Content-Length",
            http("POST /api/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"collection\": \"todos\", \"data\": {"),
        ),
        (
            "a chunked body that stops mid-chunk",
            http("POST /api/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{\"collection\": \"todos\""),
        ),
        (
            "an unknown Transfer-Encoding",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n{}"),
        ),
    ];
    for (name, bytes) in refused {
        cases.push(Case {
            name: name.into(),
            probe: Probe::Tcp {
                bytes,
                expect: TcpExpect::Refused,
            },
        });
    }
    // A chunked body (no Content-Length) over the limit is refused by the application.
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let mut body = String::from(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    body.push_str("1\r\n{\r\n");
    for _ in 0..(limits.body / (64 * 1024) + 2) {
        body.push_str(&chunk);
    }
    body.push_str("0\r\n\r\n");
    cases.push(Case {
        name: "a chunked body over the limit".into(),
        probe: Probe::Tcp {
            bytes: body.into_bytes(),
            expect: TcpExpect::Graphql(413, "PAYLOAD_TOO_LARGE"),
        },
    });
    // A body far over the limit: the server answers 413 and closes without reading the
    // rest, so the client may see the answer or only the reset.
    let mut huge = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        4 * limits.body
    )
    .into_bytes();
    huge.extend(std::iter::repeat_n(b' ', 4 * limits.body));
    cases.push(Case {
        name: format!("a body of {} bytes", 4 * limits.body),
        probe: Probe::Tcp {
            bytes: huge,
            expect: TcpExpect::Refused,
        },
    });
    cases.push(Case {
        name: "Expect: 100-continue with a Content-Length over the limit".into(),
        probe: Probe::Tcp {
            bytes: format!(
                "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
                limits.body * 64
            )
            .into_bytes(),
            expect: TcpExpect::Refused,
        },
    });

    // WebSocket frames no library writes, each followed by the client going away.
    let masked = |first: u8, payload: &[u8]| ws_frame(first, payload, true);
    let init = masked(0x81, br#"{"type": "connection_init"}"#);
    let mut frames: Vec<Vec<u8>> = vec![
        ws_frame(0x81, br#"{"type": "connection_init"}"#, false),
        vec![0x81],
        vec![0x81, 0x80 | 100, 1, 2, 3, 4, b'{'],
        vec![
            0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ],
        vec![
            0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ],
        vec![0x81, 0x85, 1, 2],
        vec![
            0x81, 0xfe, 0x00, 0x05, 1, 2, 3, 4, b'a', b'b', b'c', b'd', b'e',
        ],
        masked(0x88, &[0x03]),
        masked(0x88, &[0x03, 0xe7]),
        masked(0x88, &[0x03, 0xe8, 0xff, 0xfe]),
        masked(0x8a, &[0; 126]),
        masked(0x89, &[b'x'; 200]),
        masked(0x09, b"x"),
        masked(0x0f, b"{}"),
        masked(0x70 | 0x81, b"{}"),
    ];
    let mut subscribe = init.clone();
    subscribe.extend(masked(
        0x81,
        br#"{"type": "subscribe", "id": "1", "payload": {"query": "mutation { createRecord(input: {collection: \"todos\", data: {}}) { id } }"}}"#,
    ));
    subscribe.truncate(subscribe.len() - 20);
    frames.push(subscribe);
    let mut fragmented = init.clone();
    fragmented.extend(masked(0x01, br#"{"type": "subscribe", "id": "1", "#));
    frames.push(fragmented);
    for frame in frames {
        for protocol in [TRANSPORT_WS, LEGACY_WS] {
            cases.push(Case {
                name: format!(
                    "{protocol} frame bytes {:?}",
                    shown(&format!("{frame:02x?}"))
                ),
                probe: Probe::TcpWs {
                    protocol,
                    bytes: frame.clone(),
                    codes: &[1000, 1002, 1007, 1009, 4400],
                    must_close: false,
                },
            });
        }
    }
    cases
}
