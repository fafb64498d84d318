//! Requests to `/graphql` that are not well-formed GraphQL-over-HTTP requests: bodies,
//! media types, methods, query strings.

use super::*;

/// `/graphql` requests that are not GraphQL at all, or not acceptable.
pub(super) fn graphql_http_cases(limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut post = |content_type: Option<&[u8]>, body: Vec<u8>, status: u16, code: &'static str| {
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("content-type", ct.to_vec()));
        }
        cases.push(Case {
            name: format!(
                "POST /graphql content-type={} body={}",
                content_type.map_or("none".into(), |c| shown(&String::from_utf8_lossy(c))),
                shown(&String::from_utf8_lossy(&body))
            ),
            probe: Probe::Http {
                method: Method::POST,
                path: "/graphql".into(),
                headers,
                body: Some(body),
                expect: HttpExpect::Graphql(status, code),
            },
        });
    };
    let valid = br#"{"query": "{ __typename }"}"#.to_vec();
    for ct in [
        &b"text/plain"[..],
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=x",
        b"application/graphql",
        b"application/json-patch+json",
        b"application/jsonx",
        b"json",
        b";;;",
        b"application/json\xff",
        b"\xc3\x28/json",
    ] {
        post(Some(ct), valid.clone(), 415, "UNSUPPORTED_MEDIA_TYPE");
    }
    post(None, valid.clone(), 415, "UNSUPPORTED_MEDIA_TYPE");
    post(
        Some(b"application/x-www-form-urlencoded"),
        b"query=mutation%7BdeleteRecord(id%3A%2200000000-0000-0000-0000-000000000000%22)%7Bid%7D%7D"
            .to_vec(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let json_ct = Some(&b"application/json"[..]);
    let mut bodies: Vec<Vec<u8>> = [
        "",
        " ",
        "null",
        "true",
        "1",
        "\"{ __typename }\"",
        "[]",
        "[{\"query\": \"{ __typename }\"}]",
        "{",
        "{\"query\":",
        "{\"query\": \"{ __typename }\"",
        "{\"query\": \"{ __typename }\"} trailing",
        "{\"query\": \"{ __typename }\"}{\"query\": \"{ __typename }\"}",
        "{}",
        "{\"variables\": {}}",
        "{\"query\": null}",
        "{\"query\": 1}",
        "{\"query\": [\"{ __typename }\"]}",
        "{\"query\": {\"$ne\": null}}",
        "{\"query\": \"{ __typename }\", \"variables\": \"{}\"}",
        "{\"query\": \"{ __typename }\", \"variables\": []}",
        "{\"query\": \"{ __typename }\", \"variables\": 1}",
        "{\"query\": \"{ __typename }\", \"operationName\": 1}",
        "{\"query\": \"{ __typename }\", \"operationName\": []}",
        "{\"query\": \"{ __typename }\", \"operationName\": {}}",
        "{\"query\": \"{ __typename }\", \"operationName\": true}",
        "{\"query\": \"{ __typename }\", \"extensions\": \"x\"}",
        "{\"query\": \"{ __typename }\", \"extensions\": [1]}",
        "{\"query\": \"{ __typename }\", \"variables\": {\"n\": 1e400}}",
        "{\"query\": \"{ records(collection: \\\"\\ud800\\\") { totalCount } }\"}",
        "{\"query\": \"{ __typename }\", \"variables\": {\"\\udfff\": 1}}",
        "{'query': '{ __typename }'}",
        "{query: \"{ __typename }\"}",
        "{\"query\": \"{ __typename }\",}",
        "/* */ {\"query\": \"{ __typename }\"}",
        "\u{feff}{\"query\": \"{ __typename }\"}",
    ]
    .into_iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bodies.push(b"{\"query\": \"\xff\xfe{ __typename }\"}".to_vec());
    bodies.push(b"\xff\xfe{\0\"\0q\0".to_vec());
    bodies.push(b"\0\0\0\0".to_vec());
    bodies.push(b"{\"query\": \"{ __typename }\", \"operationName\": \"\xc0\xaf\"}".to_vec());
    bodies.push(format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    bodies.push(
        format!(
            "{{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}1{}}}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
    );
    bodies.push(
        format!(
            "{{\"query\": \"{{ __typename }}\", \"variables\": {}}}",
            "{\"a\": ".repeat(200) + "1" + &"}".repeat(200)
        )
        .into_bytes(),
    );
    for body in bodies {
        post(json_ct, body, 400, "BAD_REQUEST");
    }
    // Near and over the body limit.
    let at_limit = |n: usize| {
        let mut body = br#"{"query": "{ records(collection: \"bad!\") { totalCount } }"}"#.to_vec();
        body.resize(n, b' ');
        body
    };
    post(json_ct, at_limit(limits.body + 1), 413, "PAYLOAD_TOO_LARGE");
    let mut padded = at_limit(limits.body);
    padded.truncate(limits.body - 1);
    padded.push(b'!');
    post(json_ct, padded, 400, "BAD_REQUEST");
    // `GET` parameters that are not GraphQL.
    for query in [
        "",
        "?",
        "?variables={}",
        "?operationName=x",
        "?query={__typename}&variables=not-json",
        "?query={__typename}&variables=[1]",
        "?query={__typename}&variables=%FF%FE",
        "?query={__typename}&variables=%7B%22a%22%3A1e400%7D",
        "?query={__typename}&variables=null%00",
        "?query={__typename}&extensions=5",
        "?query={__typename}&extensions=%22x%22",
        "?query={__typename}&query={__typename}",
        "?query={__typename}&operationName=a&operationName=b",
    ] {
        cases.push(Case {
            name: format!("GET /graphql{query}"),
            probe: Probe::Http {
                method: Method::GET,
                path: format!("/graphql{query}"),
                headers: vec![],
                body: None,
                expect: HttpExpect::Graphql(400, "BAD_REQUEST"),
            },
        });
    }
    cases.push(Case {
        name: "GET /graphql with a deeply nested `variables`".into(),
        probe: Probe::Http {
            method: Method::GET,
            path: format!(
                "/graphql?query=%7B__typename%7D&variables={}{}",
                "%5B".repeat(3_000),
                "%5D".repeat(3_000)
            ),
            headers: vec![],
            body: None,
            expect: HttpExpect::Graphql(400, "BAD_REQUEST"),
        },
    });
    // Accept headers that accept nothing the endpoint answers in.
    for accept in [
        &b"text/html"[..],
        b"image/png",
        b"application/json;q=0",
        b"*/*;q=0",
        b"application/graphql-response+json;q=0, application/json;q=0",
        b"@@@,,;;;q=",
        b"text/*",
    ] {
        for method in [Method::GET, Method::POST] {
            let (path, body) = if method == Method::GET {
                ("/graphql?query=%7B__typename%7D".to_owned(), None)
            } else {
                ("/graphql".to_owned(), Some(valid.clone()))
            };
            cases.push(Case {
                name: format!(
                    "{method} /graphql accept={}",
                    String::from_utf8_lossy(accept)
                ),
                probe: Probe::Http {
                    method,
                    path,
                    headers: vec![
                        ("accept", accept.to_vec()),
                        ("content-type", b"application/json".to_vec()),
                    ],
                    body,
                    expect: HttpExpect::Graphql(406, "NOT_ACCEPTABLE"),
                },
            });
        }
    }
    // Methods `/graphql` does not serve.
    for method in ["PUT", "DELETE", "PATCH", "TRACE", "BREW", "CONNECTX"] {
        cases.push(Case {
            name: format!("{method} /graphql"),
            probe: Probe::Http {
                method: Method::from_bytes(method.as_bytes()).expect("method"),
                path: "/graphql".into(),
                headers: vec![("content-type", b"application/json".to_vec())],
                body: Some(
                    br#"{"query": "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }"}"#
                        .to_vec(),
                ),
                expect: HttpExpect::Graphql(405, "METHOD_NOT_ALLOWED"),
            },
        });
    }
    // A mutation selected by name over GET.
    cases.push(Case {
        name: "GET /graphql selecting a mutation by operationName".into(),
        probe: Probe::Http {
            method: Method::GET,
            path: "/graphql?query=query%20A%20%7B__typename%7D%20mutation%20B%20%7BdeleteRecord(id%3A%2200000000-0000-0000-0000-000000000000%22)%7Bid%7D%7D&operationName=B".into(),
            headers: vec![("accept", b"text/event-stream".to_vec())],
            body: None,
            expect: HttpExpect::Graphql(405, "METHOD_NOT_ALLOWED"),
        },
    });
    // Event streams that are refused before they start.
    for body in [&b"[]"[..], b"{", b"{\"query\": 5}", b"\xff"] {
        cases.push(Case {
            name: format!(
                "POST /graphql accept=text/event-stream body={}",
                shown(&String::from_utf8_lossy(body))
            ),
            probe: Probe::Http {
                method: Method::POST,
                path: "/graphql".into(),
                headers: vec![
                    ("accept", b"text/event-stream".to_vec()),
                    ("content-type", b"application/json".to_vec()),
                ],
                body: Some(body.to_vec()),
                expect: HttpExpect::Graphql(400, "BAD_REQUEST"),
            },
        });
    }
    // Broken WebSocket upgrades. Known deviation: the framework's upgrade extractor
    // refuses them with plain text, not the GraphQL-shaped error of other refusals.
    for (name, headers) in [
        (
            "no Sec-WebSocket-Key",
            vec![
                ("upgrade", b"websocket".to_vec()),
                ("connection", b"upgrade".to_vec()),
                ("sec-websocket-version", b"13".to_vec()),
            ],
        ),
        (
            "Sec-WebSocket-Version 8",
            vec![
                ("upgrade", b"websocket".to_vec()),
                ("connection", b"upgrade".to_vec()),
                ("sec-websocket-version", b"8".to_vec()),
                ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
            ],
        ),
        (
            "Connection without upgrade",
            vec![
                ("upgrade", b"websocket".to_vec()),
                ("connection", b"keep-alive".to_vec()),
                ("sec-websocket-version", b"13".to_vec()),
                ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
            ],
        ),
    ] {
        cases.push(Case {
            name: format!("GET /graphql WebSocket upgrade with {name}"),
            probe: Probe::Http {
                method: Method::GET,
                path: "/graphql".into(),
                headers,
                body: None,
                expect: HttpExpect::NotJson(400),
            },
        });
    }
    cases
}
