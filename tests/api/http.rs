//! `/graphql` over HTTP, the browser entry points, and bad input of every kind.

use serde_json::{Value, json};

use super::helpers::{WsClient, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_root_leads_to_graphiql_with_subscriptions() {
    let app = spawn_app().await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirect
        .get(format!("http://{}/", app.addr))
        .send()
        .await
        .unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/graphql");

    let page = app
        .http
        .get(app.url())
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("graphiql"), "GraphiQL page");
    assert!(html.contains("/graphql"), "endpoint configured");
    assert!(
        html.to_lowercase().contains("subscriptionurl")
            || html.contains("ws://")
            || html.contains("wsUrl"),
        "subscription endpoint: {html}"
    );
}

#[tokio::test]
async fn queries_work_over_get() {
    let app = spawn_app().await;
    let r = app.create("a", json!({"n": 1})).await;
    let resp: Value = app
        .http
        .get(app.url())
        .query(&[
            ("query", "query($id: UUID!) { record(id: $id) { data } }"),
            ("variables", &json!({"id": r["id"]}).to_string()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["data"]["record"]["data"], json!({"n": 1}));
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    // Liveness holds from the start.
    let resp = app
        .http
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Readiness follows once (on PostgreSQL) the follower holds its LISTEN connection.
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    loop {
        let resp = app
            .http
            .get(format!("http://{}/readyz", app.addr))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 503);
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn malformed_input_never_changes_data_or_the_log() {
    let app = spawn_app_with(|c| c.max_body_bytes = 64 * 1024).await;
    let r = app.create("a", json!({"n": 1})).await;
    let id = r["id"].as_str().unwrap().to_owned();
    let records_before = app.all_records().await;
    let changes_before = app.all_changes().await;

    let post = |body: Vec<u8>, content_type: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(app.url())
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    // Not GraphQL at all: 400 with a GraphQL-shaped error.
    for body in [
        b"{not json".to_vec(),
        b"".to_vec(),
        b"\"a string\"".to_vec(),
        b"42".to_vec(),
        b"{\"query\": 5}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
    ] {
        let resp = post(body.clone(), "application/json").await;
        assert_eq!(resp.status(), 400, "{}", String::from_utf8_lossy(&body));
        let json: Value = resp.json().await.unwrap();
        assert!(json["errors"][0]["message"].is_string(), "{json}");
    }
    // Too large: 413.
    let huge = json!({"query": format!("mutation {{ createRecord(input: {{collection: \"a\", data: {{s: \"{}\"}}}}) {{ id }} }}", "x".repeat(100_000))});
    let resp = post(huge.to_string().into_bytes(), "application/json").await;
    assert_eq!(resp.status(), 413);

    // GraphQL that fails validation or resolution: errors, nothing written.
    for (query, vars) in [
        (
            "mutation { createRecord(input: {collection: \"a\", data: {}, extra: 1}) { id } }",
            json!({}),
        ),
        (
            "mutation { createRecord(input: {collection: \"a\"}) { id } }",
            json!({}),
        ),
        (
            "mutation { createRecord(input: {id: \"not-a-uuid\", collection: \"a\", data: {}}) { id } }",
            json!({}),
        ),
        (
            "mutation($d: JSON!) { createRecord(input: {collection: \"a\", data: $d}) { id } }",
            json!({"d": null}),
        ),
        (
            "mutation($d: JSON!) { createRecord(input: {collection: \"a\", data: $d}) { id } }",
            json!({"d": "{\"n\": 1}"}),
        ),
        (
            "mutation { updateRecord(id: \"x\", data: {}) { id } }",
            json!({}),
        ),
        (
            "mutation($id: UUID!) { updateRecord(id: $id, data: {}, expectedVersion: \"one\") { id } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: UUID!) { updateRecord(id: $id, data: [], expectedVersion: 1) { id } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: UUID!) { updateRecord(id: $id, data: {n: 2}, expectedVersion: 7) { id } }",
            json!({"id": id}),
        ),
        ("mutation { nope }", json!({})),
        (
            "{ records(filter: {dataContains: [1]}) { totalCount } }",
            json!({}),
        ),
        (
            "{ records(collection: \"a'; DROP TABLE record; --\") { totalCount } }",
            json!({}),
        ),
        (
            "{ record(id: \"00000000-0000-0000-0000-000000000000\") { id nope } }",
            json!({}),
        ),
        ("{ __typename ", json!({})),
    ] {
        let resp = app.gql(query, vars).await;
        assert!(resp["errors"].is_array(), "{query}: {resp}");
    }
    // Broken WebSocket frames.
    for bad in [
        "{",
        "{\"type\":\"subscribe\",\"id\":\"1\",\"payload\":{\"query\":\"mutation { createRecord(input: {collection: \\\"a\\\", data: {}}) { id } }\"}}",
    ] {
        let mut ws = WsClient::connect_raw(&app, Some("graphql-transport-ws")).await;
        ws.send_text(bad).await;
        let code = ws.expect_close().await.0;
        assert!(code == 4400 || code == 4401, "{bad}: {code}");
    }

    assert_eq!(app.all_records().await, records_before);
    assert_eq!(app.all_changes().await, changes_before);
    // And the server still serves.
    app.create("a", json!({"n": 2})).await;
}

#[tokio::test]
async fn queries_deeper_or_more_complex_than_allowed_are_refused() {
    let app = spawn_app_with(|c| {
        c.max_query_depth = 6;
        c.max_query_complexity = 50;
        c.max_aliases = 100;
    })
    .await;
    let nested = |depth: usize| {
        let mut q = "name".to_owned();
        for _ in 0..depth {
            q = format!("ofType {{ {q} }}");
        }
        format!("{{ __schema {{ types {{ fields {{ type {{ {q} }} }} }} }} }}")
    };
    let ok = app.gql(&nested(1), json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok}");
    let deep = app.gql(&nested(10), json!({})).await;
    assert!(
        deep["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("nested too deep"),
        "{deep}"
    );
    let wide = (0..60)
        .map(|i| format!("a{i}: records {{ totalCount }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let complex = app.gql(&format!("{{ {wide} }}"), json!({})).await;
    assert!(
        complex["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("complex"),
        "{complex}"
    );
}

#[tokio::test]
async fn mutations_over_get_are_405_and_change_nothing() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url())
        .query(&[(
            "query",
            "mutation { createRecord(input: {collection: \"a\", data: {}}) { id } }",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let named = app
        .http
        .get(app.url())
        .query(&[
            ("query", "query Q { __typename } mutation M { createRecord(input: {collection: \"a\", data: {}}) { id } }"),
            ("operationName", "M"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 405);
    assert!(app.all_records().await.is_empty());
}

#[tokio::test]
async fn post_bodies_must_be_json() {
    let app = spawn_app().await;
    let body =
        json!({"query": "mutation { createRecord(input: {collection: \"a\", data: {}}) { id } }"})
            .to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = app.http.post(app.url()).body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 415, "{content_type:?}");
        let json: Value = resp.json().await.unwrap();
        assert_eq!(
            json["errors"][0]["extensions"]["code"],
            "UNSUPPORTED_MEDIA_TYPE"
        );
    }
    let ok = app
        .http
        .post(app.url())
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(app.all_records().await.len(), 1);
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_format() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    app.create("m", json!({})).await;
    ws.next_change("s").await;
    let resp = app
        .http
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for name in [
        "recordsync_http_requests_total{route=\"/graphql\",status=\"200\"}",
        "recordsync_graphql_operations_total{type=\"mutation\",outcome=\"ok\"}",
        "recordsync_graphql_operations_total{type=\"subscription\",outcome=\"ok\"}",
        "recordsync_subscriptions_active",
        "recordsync_change_log_head",
        "recordsync_events_published_total",
        "recordsync_events_delivered_total",
        "recordsync_mutation_duration_seconds_bucket",
        "recordsync_delivery_latency_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[tokio::test]
async fn pages_from_an_allowed_origin_may_call_graphql_and_rest() {
    let origin = "http://localhost:3000";
    let app = spawn_app_with(|c| c.cors_origins = vec![origin.to_owned()]).await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.api("/records/x"))
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type,if-match")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("PUT") && methods.contains("PATCH"),
        "{methods}"
    );

    let created = app
        .http
        .post(app.api("/records"))
        .header("origin", origin)
        .json(&json!({"collection": "a", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["access-control-allow-origin"], origin);
    let exposed = created.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("location"),
        "{exposed}"
    );

    let graphql = app
        .http
        .post(app.url())
        .header("origin", origin)
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(graphql.headers()["access-control-allow-origin"], origin);

    let other = app
        .http
        .get(app.api("/records"))
        .header("origin", "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_cors_origins_only_local_mode_lets_other_origins_in() {
    // Local mode (authentication off): any origin, never with credentials.
    let local = spawn_app().await;
    let resp = local
        .http
        .get(local.api("/records"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(
        resp.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );

    // With authentication on, no other origin unless configured.
    let secured = spawn_app_with(|c| c.jwt_secret = Some("s".repeat(32))).await;
    let resp = secured
        .http
        .get(secured.api("/records"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // Explicit origins with credentials.
    let origin = "https://app.example";
    let configured = spawn_app_with(|c| {
        c.jwt_secret = Some("s".repeat(32));
        c.cors_origins = vec![origin.to_owned()];
        c.cors_allow_credentials = true;
    })
    .await;
    let preflight = configured
        .http
        .request(reqwest::Method::OPTIONS, configured.url())
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
}

#[tokio::test]
async fn readiness_reports_each_check() {
    let app = spawn_app().await;
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    let body: Value = loop {
        let resp = app
            .http
            .get(format!("http://{}/readyz", app.addr))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        if status == 200 {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "reachable");
    assert_eq!(body["migrations"], "current");
    let follower = if super::helpers::on_postgres() {
        "listening"
    } else {
        "not used"
    };
    assert_eq!(body["follower"], follower);
    assert_eq!(body["writer"], "running");
}
