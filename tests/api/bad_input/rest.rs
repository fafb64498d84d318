//! REST requests under `/api`: paths, bodies, headers and query strings.

use super::*;

/// REST requests under `/api`.
pub(super) fn rest_cases(seed: &Seed, limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |method: Method,
                   path: String,
                   headers: Vec<(&'static str, Vec<u8>)>,
                   body: Option<Vec<u8>>,
                   expect: HttpExpect| {
        let shown_headers: Vec<String> = headers
            .iter()
            .map(|(h, v)| format!("{h}: {}", shown(&String::from_utf8_lossy(v))))
            .collect();
        cases.push(Case {
            name: format!(
                "{method} {} [{}] body={}",
                shown(&path),
                shown_headers.join(", "),
                body.as_deref()
                    .map_or("none".into(), |b| shown(&String::from_utf8_lossy(b)))
            ),
            probe: Probe::Http {
                method,
                path,
                headers,
                body,
                expect,
            },
        });
    };
    use HttpExpect::{Rest, RestAnswers};
    const BAD: &str = "BAD_USER_INPUT";
    let json_ct = || vec![("content-type", b"application/json".to_vec())];
    let live = format!("/api/records/{}", seed.live);
    let deleted = format!("/api/records/{}", seed.deleted);
    let missing = format!("/api/records/{}", seed.missing);
    let big = "b".repeat(limits.data + 1);

    // Bodies of POST /api/records.
    let mut create_bodies: Vec<(Vec<u8>, u16, &str)> = [
        "",
        "null",
        "[]",
        "\"x\"",
        "{",
        "{\"collection\": \"todos\"",
        "{\"collection\": \"todos\", \"data\": {}} x",
        "{}",
        "{\"collection\": \"todos\"}",
        "{\"data\": {}}",
        "{\"collection\": 5, \"data\": {}}",
        "{\"collection\": null, \"data\": {}}",
        "{\"collection\": [\"todos\"], \"data\": {}}",
        "{\"collection\": \"todos\", \"data\": {}, \"extra\": 1}",
        "{\"collection\": \"todos\", \"data\": {}, \"version\": 7}",
        "{\"collection\": \"todos\", \"collection\": \"notes\", \"data\": {}}",
        "{\"id\": \"not-a-uuid\", \"collection\": \"todos\", \"data\": {}}",
        "{\"id\": 5, \"collection\": \"todos\", \"data\": {}}",
        "{\"id\": \"' OR 1=1 --\", \"collection\": \"todos\", \"data\": {}}",
        "{\"collection\": \"todos\", \"data\": \"x\"}",
        "{\"collection\": \"todos\", \"data\": [1]}",
        "{\"collection\": \"todos\", \"data\": null}",
        "{\"collection\": \"todos\", \"data\": 1}",
        "{\"collection\": \"todos\", \"data\": {\"n\": 1e400}}",
        "{\"collection\": \"todos\", \"data\": {\"s\": \"\\ud800\"}}",
        "{'collection': 'todos', 'data': {}}",
    ]
    .into_iter()
    .map(|s| (s.as_bytes().to_vec(), 400, BAD))
    .collect();
    for s in hostile_strings()
        .into_iter()
        .filter(|s| !valid_collection(s))
    {
        create_bodies.push((
            json!({"collection": s, "data": {}})
                .to_string()
                .into_bytes(),
            400,
            BAD,
        ));
    }
    create_bodies.push((
        json!({"collection": "todos", "data": {"big": big}})
            .to_string()
            .into_bytes(),
        400,
        BAD,
    ));
    create_bodies.push((
        json!({"id": seed.live, "collection": "todos", "data": {}})
            .to_string()
            .into_bytes(),
        409,
        "ALREADY_EXISTS",
    ));
    create_bodies.push((
        b"{\"collection\": \"\xff\", \"data\": {}}".to_vec(),
        400,
        BAD,
    ));
    create_bodies.push((
        format!(
            "{{\"collection\": \"todos\", \"data\": {}1{}}}",
            "{\"a\": ".repeat(1_000),
            "}".repeat(1_000)
        )
        .into_bytes(),
        400,
        BAD,
    ));
    let mut huge = json!({"collection": "todos", "data": {"x": ""}})
        .to_string()
        .into_bytes();
    huge.resize(limits.body + 1, b' ');
    create_bodies.push((huge, 413, "PAYLOAD_TOO_LARGE"));
    for (body, status, code) in create_bodies {
        add(
            Method::POST,
            "/api/records".into(),
            json_ct(),
            Some(body),
            Rest(status, code),
        );
    }
    // Content types a REST write does not read.
    for ct in [
        None,
        Some(&b"text/plain"[..]),
        Some(b"application/x-www-form-urlencoded"),
        Some(b"multipart/form-data; boundary=x"),
        Some(b"application/xml"),
        Some(b"application/merge-patch+json"),
        Some(b"\xff"),
    ] {
        let headers = ct
            .map(|c| vec![("content-type", c.to_vec())])
            .unwrap_or_default();
        add(
            Method::POST,
            "/api/records".into(),
            headers.clone(),
            Some(br#"{"collection": "todos", "data": {}}"#.to_vec()),
            Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
        );
        add(
            Method::PUT,
            live.clone(),
            headers,
            Some(br#"{"data": {}}"#.to_vec()),
            Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
        );
    }
    add(
        Method::PATCH,
        live.clone(),
        vec![("content-type", b"text/plain".to_vec())],
        Some(b"{}".to_vec()),
        Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
    );
    add(
        Method::POST,
        "/api/records".into(),
        vec![(
            "content-type",
            b"application/x-www-form-urlencoded".to_vec(),
        )],
        Some(b"collection=todos&data=%7B%7D".to_vec()),
        Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
    );

    // PUT and PATCH bodies that must be refused.
    for (body, status, code) in [
        ("", 400, BAD),
        ("{", 400, BAD),
        ("[]", 400, BAD),
        ("{\"data\": \"x\"}", 400, BAD),
        ("{\"data\": [1]}", 400, BAD),
        ("{\"data\": null}", 400, BAD),
        ("{}", 400, BAD),
        ("{\"data\": {}, \"version\": 1}", 400, BAD),
        ("{\"data\": {}, \"collection\": \"other\"}", 400, BAD),
    ] {
        add(
            Method::PUT,
            live.clone(),
            json_ct(),
            Some(body.as_bytes().to_vec()),
            Rest(status, code),
        );
    }
    for body in [
        "",
        "{",
        "null",
        "\"x\"",
        "[1]",
        "1",
        "true",
        "{\"a\": 1e400}",
    ] {
        add(
            Method::PATCH,
            live.clone(),
            vec![("content-type", b"application/merge-patch+json".to_vec())],
            Some(body.as_bytes().to_vec()),
            Rest(400, BAD),
        );
    }
    add(
        Method::PATCH,
        live.clone(),
        json_ct(),
        Some(json!({"big": big}).to_string().into_bytes()),
        Rest(400, BAD),
    );
    add(
        Method::PUT,
        live.clone(),
        json_ct(),
        Some(json!({"data": {"big": big}}).to_string().into_bytes()),
        Rest(400, BAD),
    );
    for (path, method) in [
        (&missing, Method::PUT),
        (&deleted, Method::PUT),
        (&missing, Method::PATCH),
        (&deleted, Method::PATCH),
        (&missing, Method::DELETE),
        (&deleted, Method::DELETE),
        (&missing, Method::GET),
    ] {
        let body = (method != Method::DELETE && method != Method::GET)
            .then(|| br#"{"data": {}}"#.to_vec());
        add(
            method,
            path.clone(),
            json_ct(),
            body,
            Rest(404, "NOT_FOUND"),
        );
    }

    // If-Match headers that are stale or not entity tags.
    let v = seed.live_version;
    let stale: Vec<String> = vec![
        format!("\"{}\"", v - 1),
        format!("\"{}\"", v + 1),
        format!("W/\"{v}\""),
        "\"abc\"".into(),
        "\"-1\"".into(),
        "\"99999999999\"".into(),
        "\"\"".into(),
        format!("W/\"{v}\", \"{}\"", v + 5),
        "\"1 OR 1=1\"".into(),
    ];
    let garbage: Vec<Vec<u8>> = vec![
        format!("{v}").into_bytes(),
        b"abc".to_vec(),
        b"\"unterminated".to_vec(),
        b"'1'".to_vec(),
        b"W/1".to_vec(),
        b"\xff\"1\"".to_vec(),
        format!("\"{v}\", {v}").into_bytes(),
        b"* OR 1=1".to_vec(),
    ];
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let body = (method != Method::DELETE).then(|| br#"{"data": {"hacked": true}}"#.to_vec());
        for tag in &stale {
            let mut headers = json_ct();
            headers.push(("if-match", tag.clone().into_bytes()));
            add(
                method.clone(),
                live.clone(),
                headers,
                body.clone(),
                Rest(412, "VERSION_CONFLICT"),
            );
        }
        for tag in &garbage {
            let mut headers = json_ct();
            headers.push(("if-match", tag.clone()));
            add(
                method.clone(),
                live.clone(),
                headers,
                body.clone(),
                Rest(400, BAD),
            );
        }
    }

    // Paths that are not records.
    // Known deviation: an id that percent-decodes to invalid UTF-8 is refused by the
    // framework's path extractor with a plain-text 400, not `{"error": ...}`.
    for method in [Method::GET, Method::DELETE, Method::PUT] {
        add(
            method,
            "/api/records/%FF%FE".into(),
            json_ct(),
            None,
            HttpExpect::NotJson(400),
        );
    }
    for path in [
        "/api/records/not-a-uuid",
        "/api/records/%27%20OR%201%3D1%20--",
        "/api/records/%00",
        "/api/records/00000000-0000-0000-0000-00000000000g",
        "/api/records/1;DROP%20TABLE%20record",
    ] {
        for method in [Method::GET, Method::DELETE] {
            add(method, path.into(), vec![], None, Rest(400, BAD));
        }
        add(
            Method::PUT,
            path.into(),
            json_ct(),
            Some(br#"{"data": {}}"#.to_vec()),
            Rest(400, BAD),
        );
    }
    // Known deviation: `/api/` (with the slash) falls outside the REST router and gets
    // the router's bare 404, without a body.
    add(
        Method::GET,
        "/api/".into(),
        vec![],
        None,
        HttpExpect::NotJson(404),
    );
    for path in [
        "/api",
        "/api/nope",
        "/api/records/x/y",
        &format!("{live}/history"),
        "/api/changes/x",
        "/api/records/..%2F..%2Fetc%2Fpasswd/x",
    ] {
        add(
            Method::GET,
            path.into(),
            vec![],
            None,
            Rest(404, "NOT_FOUND"),
        );
    }
    for (method, path) in [
        ("DELETE", "/api/records"),
        ("PUT", "/api/records"),
        ("POST", live.as_str()),
        ("POST", "/api/changes"),
        ("DELETE", "/api/changes"),
        ("POST", "/api/changes/stream"),
        ("BREW", "/api/records"),
        ("TRACE", live.as_str()),
    ] {
        add(
            Method::from_bytes(method.as_bytes()).expect("method"),
            path.into(),
            json_ct(),
            Some(br#"{"collection": "todos", "data": {}}"#.to_vec()),
            Rest(405, "METHOD_NOT_ALLOWED"),
        );
    }

    // Query parameters.
    let mut params: Vec<String> = vec![
        "limit=-1".into(),
        "limit=abc".into(),
        "limit=1.5".into(),
        "limit=1e3".into(),
        "limit=99999999999".into(),
        "limit=501".into(),
        "limit=%00".into(),
        "limit=%FF".into(),
        "limit=0x10".into(),
        "limit=1%20OR%201=1".into(),
        "limit=2147483648".into(),
    ];
    for c in garbage_cursors(seed)
        .into_iter()
        .filter(|c| !c.is_empty() && c.len() < 10_000)
    {
        params.push(format!("after={}", urlencode(&c)));
    }
    for s in hostile_strings()
        .into_iter()
        .filter(|s| !s.is_empty() && !valid_collection(s))
    {
        params.push(format!("collection={}", urlencode(&s)));
    }
    for p in &params {
        for path in ["/api/records", "/api/changes", "/api/changes/stream"] {
            if path == "/api/changes/stream" && p.starts_with("limit") {
                continue;
            }
            let wrong_kind = path != "/api/records" && p.contains(&urlencode(&seed.change_cursor));
            if wrong_kind {
                continue;
            }
            add(
                Method::GET,
                format!("{path}?{p}"),
                vec![],
                None,
                Rest(400, BAD),
            );
        }
    }
    // Valid-looking collections are data: they match nothing.
    for s in hostile_strings()
        .into_iter()
        .filter(|s| valid_collection(s))
    {
        add(
            Method::GET,
            format!("/api/records?collection={}", urlencode(&s)),
            vec![],
            None,
            RestAnswers(Arc::new(|b: &Value| {
                if b["items"] == json!([]) {
                    Ok(())
                } else {
                    Err("expected no items".into())
                }
            })),
        );
    }
    // Forged but well-formed cursors are positions like any other (within years 0000
    // to 9999; beyond, they are refused).
    add(
        Method::GET,
        format!(
            "/api/records?limit=5&after={}",
            far_cursor(seed, BEFORE_POSTGRES_TIME)
        ),
        vec![],
        None,
        Rest(400, BAD),
    );
    let forged = [
        far_cursor(seed, 0),
        far_cursor(seed, 253_402_300_799_999_999),
    ];
    for cursor in forged {
        add(
            Method::GET,
            format!("/api/records?limit=5&after={cursor}"),
            vec![],
            None,
            RestAnswers(Arc::new(|b: &Value| {
                if b["items"].as_array().is_some_and(|i| i.len() <= 5) {
                    Ok(())
                } else {
                    Err("expected a page".into())
                }
            })),
        );
    }
    // A change cursor and a records cursor are not interchangeable.
    add(
        Method::GET,
        format!("/api/changes?after={}", seed.created_cursor),
        vec![],
        None,
        Rest(400, BAD),
    );
    add(
        Method::GET,
        format!("/api/changes/stream?after={}", seed.id_cursor),
        vec![],
        None,
        Rest(400, BAD),
    );
    // POST /api/batch: bodies that are not a batch, batches that cannot be applied.
    let many = serde_json::to_string(&json!({"writes": (0..101)
        .map(|_| json!({"create": {"collection": "todos", "data": {}}}))
        .collect::<Vec<_>>()}))
    .unwrap();
    for (body, status, code) in [
        ("".to_owned(), 400, BAD),
        ("{}".to_owned(), 400, BAD),
        ("{\"writes\": {}}".to_owned(), 400, BAD),
        ("{\"writes\": []}".to_owned(), 400, BAD),
        (many, 400, BAD),
        ("{\"writes\": [{\"bogus\": {}}]}".to_owned(), 400, BAD),
        ("{\"writes\": [{}]}".to_owned(), 400, BAD),
        ("{\"writes\": [], \"extra\": 1}".to_owned(), 400, BAD),
        ("{\"writes\": [{\"create\": {\"collection\": \"todos\", \"data\": {}}, \"delete\": {\"id\": \"00000000-0000-0000-0000-000000000000\"}}]}".to_owned(), 400, BAD),
        ("{\"writes\": [{\"create\": {\"collection\": \"todos\", \"data\": 1}}]}".to_owned(), 400, BAD),
        (format!("{{\"writes\": [{{\"create\": {{\"collection\": \"todos\", \"data\": {{}}}}}}, {{\"patch\": {{\"id\": \"{}\", \"patch\": {{}}}}}}]}}", seed.missing), 404, "NOT_FOUND"),
        (format!("{{\"writes\": [{{\"delete\": {{\"id\": \"{}\", \"expectedVersion\": 99}}}}]}}", seed.live), 412, "VERSION_CONFLICT"),
    ] {
        add(Method::POST, "/api/batch".into(), json_ct(), Some(body.into_bytes()), Rest(status, code));
    }
    add(
        Method::POST,
        "/api/batch".into(),
        vec![("content-type", b"text/plain".to_vec())],
        Some(b"{\"writes\": []}".to_vec()),
        Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
    );
    add(
        Method::GET,
        "/api/batch".into(),
        vec![],
        None,
        Rest(405, "METHOD_NOT_ALLOWED"),
    );
    // Idempotency keys that are not 1 to 255 printable ASCII characters.
    for key in [b"".to_vec(), vec![b'k'; 256], "é".as_bytes().to_vec()] {
        let mut headers = json_ct();
        headers.push(("idempotency-key", key));
        add(
            Method::POST,
            "/api/records".into(),
            headers.clone(),
            Some(b"{\"collection\": \"todos\", \"data\": {}}".to_vec()),
            Rest(400, BAD),
        );
        add(Method::DELETE, live.clone(), headers, None, Rest(400, BAD));
    }

    // The stream's Last-Event-ID, which wins over `after`.
    for id in [
        b"garbage".to_vec(),
        b64("chg:-1").into_bytes(),
        seed.created_cursor.clone().into_bytes(),
        b"' OR 1=1 --".to_vec(),
        "x".repeat(8_000).into_bytes(),
    ] {
        add(
            Method::GET,
            format!("/api/changes/stream?after={}", seed.head),
            vec![("last-event-id", id)],
            None,
            Rest(400, BAD),
        );
    }
    cases
}

/// Percent-encodes everything but unreserved characters.
pub(super) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
