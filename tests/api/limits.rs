//! Limits against abuse: each has a documented option, and a client over it gets a
//! clear error while the server and other clients carry on.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::helpers::{WsClient, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn introspection_can_be_turned_off() {
    let on = spawn_app().await;
    let resp = on
        .gql("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(
        resp["data"]["__schema"]["queryType"]["name"], "Query",
        "{resp}"
    );
    let off = spawn_app_with(|c| c.no_introspection = true).await;
    // async-graphql answers introspection with null when it is off.
    let resp = off
        .gql("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(resp["data"]["__schema"], Value::Null, "{resp}");
    let resp = off.gql("{ records { totalCount } }", json!({})).await;
    assert_eq!(resp["data"]["records"]["totalCount"], 0);
}

#[tokio::test]
async fn aliases_are_limited() {
    let app = spawn_app_with(|c| c.max_aliases = 3).await;
    let ok = app
        .gql(
            "{ a: records { totalCount } b: records { totalCount } c: changes { changeCursor } }",
            json!({}),
        )
        .await;
    assert!(ok.get("errors").is_none(), "{ok}");
    let many = app
        .gql("query { a: records { n: totalCount } b: records { totalCount } ...F } fragment F on Query { c: changes { changeCursor } }", json!({}))
        .await;
    assert_eq!(error_code(&many), "LIMIT_EXCEEDED", "{many}");
}

#[tokio::test]
async fn json_array_bodies_are_not_batches() {
    // Batching is not offered: one request, one operation.
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url())
        .json(&json!([{"query": "{ __typename }"}, {"query": "{ __typename }"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn automatic_persisted_queries_work_over_post_and_get() {
    let app = spawn_app().await;
    app.create("apq", json!({"n": 1})).await;
    let query = "query Count { records(collection: \"apq\") { totalCount } }";
    let ext = json!({"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}});
    // The hash alone first: not known yet.
    let resp = app.post_json(json!({"extensions": ext})).await;
    assert_eq!(
        resp["errors"][0]["message"], "PersistedQueryNotFound",
        "{resp}"
    );
    // Then with the document, which registers it.
    let resp = app
        .post_json(json!({"query": query, "extensions": ext}))
        .await;
    assert_eq!(resp["data"]["records"]["totalCount"], 1, "{resp}");
    // From now on the hash is enough, over POST and over GET.
    let resp = app.post_json(json!({"extensions": ext})).await;
    assert_eq!(resp["data"]["records"]["totalCount"], 1, "{resp}");
    let resp = app.get_json(&[("extensions", ext.to_string())]).await;
    assert_eq!(resp["data"]["records"]["totalCount"], 1, "{resp}");
    // A persisted mutation still cannot run over GET.
    let mutation = "mutation { createRecord(input: {collection: \"apq\", data: {}}) { id } }";
    let mext = json!({"persistedQuery": {"version": 1, "sha256Hash": sha256(mutation)}});
    app.http
        .post(app.url())
        .json(&json!({"query": mutation, "extensions": mext}))
        .send()
        .await
        .unwrap();
    let resp = app.get_json(&[("extensions", mext.to_string())]).await;
    assert_eq!(error_code(&resp), "METHOD_NOT_ALLOWED", "{resp}");
    assert_eq!(app.all_records().await.len(), 2);
    // A wrong hash is refused.
    let bad = json!({"persistedQuery": {"version": 1, "sha256Hash": "00"}});
    let resp = app
        .post_json(json!({"query": query, "extensions": bad}))
        .await;
    assert!(resp["errors"].is_array(), "{resp}");
}

#[tokio::test]
async fn websocket_connections_are_limited_per_address_and_in_total() {
    let app = spawn_app_with(|c| {
        c.ws_max_connections_per_address = 2;
        c.ws_max_connections = 3;
    })
    .await;
    let first = WsClient::connect(&app).await;
    let _second = WsClient::connect(&app).await;
    let refused = tokio_tungstenite::connect_async(app.ws_url()).await;
    let status = match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(status, 429);
    // A closed connection frees its place.
    drop(first);
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    loop {
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                app.ws_url(),
            )
            .unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        if tokio_tungstenite::connect_async(req).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // HTTP is unaffected.
    app.create("a", json!({})).await;
}

#[tokio::test]
async fn a_client_sending_too_fast_is_closed_and_others_carry_on() {
    let app = spawn_app_with(|c| c.ws_max_messages_per_second = 20).await;
    let mut calm = WsClient::connect(&app).await;
    let mut flood = WsClient::connect(&app).await;
    for _ in 0..100 {
        flood.send_text(r#"{"type":"ping"}"#).await;
    }
    assert_eq!(flood.expect_close_after_messages().await.0, 1008);
    calm.send(json!({"type": "ping"})).await;
    assert_eq!(calm.recv().await["type"], "pong");
}

#[tokio::test]
async fn fragments_that_multiply_are_refused_before_any_work() {
    let app = spawn_app().await;
    let mut doc = String::from("query { ...F0 }");
    for i in 0..20 {
        doc.push_str(&format!(
            " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    doc.push_str(" fragment F20 on Query { __typename }");
    let started = std::time::Instant::now();
    let resp = app.gql(&doc, json!({})).await;
    assert_eq!(error_code(&resp), "LIMIT_EXCEEDED", "{resp}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_subscription_selects_exactly_one_root_field() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe(
        "two",
        "subscription { a: recordChanged { cursor } b: recordChanged { cursor } }",
        json!({}),
    )
    .await;
    let msg = ws.recv().await;
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(
        msg["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{msg}"
    );
    assert_eq!(app.service.broker().receivers(), 0);
}

#[tokio::test]
async fn nul_characters_and_times_beyond_year_9999_are_bad_user_input() {
    let app = spawn_app().await;
    for (query, vars) in [
        (
            "mutation($d: JSON!) { createRecord(input: {collection: \"a\", data: $d}) { id } }",
            json!({"d": {"k": "a\u{0}b"}}),
        ),
        (
            "mutation($d: JSON!) { createRecord(input: {collection: \"a\", data: $d}) { id } }",
            json!({"d": {"k\u{0}": 1}}),
        ),
        (
            "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }",
            json!({"f": {"\u{0}": "x"}}),
        ),
        (
            "query($t: DateTime) { records(filter: {createdAfter: $t}) { totalCount } }",
            json!({"t": "+100000-01-01T00:00:00Z"}),
        ),
        (
            "query($t: DateTime) { records(filter: {createdBefore: $t}) { totalCount } }",
            json!({"t": "-4800-01-01T00:00:00+00:00"}),
        ),
    ] {
        let resp = app.gql(query, vars.clone()).await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{vars}: {resp}");
    }
    assert!(app.all_records().await.is_empty());
}
