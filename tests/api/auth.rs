//! Authentication and per-collection access through every transport.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::helpers::{TestApp, WsClient, error_code, spawn_app_with};

const SECRET: &str = "test-secret-0123456789";

async fn secured() -> TestApp {
    spawn_app_with(|c| {
        c.jwt_secret = Some(SECRET.to_owned());
        c.jwt_audience = Some("recordsync".to_owned());
    })
    .await
}

/// A token valid for `seconds` with `scope` and optionally limited `collections`.
fn token(scope: &str, collections: Option<&[&str]>, seconds: i64) -> String {
    let mut claims = json!({
        "exp": chrono::Utc::now().timestamp() + seconds,
        "aud": "recordsync",
        "scope": scope,
    });
    if let Some(c) = collections {
        claims["collections"] = json!(c);
    }
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn gql_as(app: &TestApp, token: &str, query: &str, variables: Value) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url())
        .header("authorization", bearer(token))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn create_as(app: &TestApp, token: &str, collection: &str, data: Value) -> Value {
    let (status, body) = gql_as(
        app,
        token,
        "mutation($c: String!, $d: JSON!) { createRecord(input: {collection: $c, data: $d}) { id collection } }",
        json!({"c": collection, "d": data}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["createRecord"].clone()
}

/// Opens a `graphql-transport-ws` connection whose `connection_init` carries `payload`.
async fn ws_with(app: &TestApp, payload: Value) -> WsClient {
    let mut ws = WsClient::connect_raw(app, Some("graphql-transport-ws")).await;
    ws.send(json!({"type": "connection_init", "payload": payload}))
        .await;
    ws
}

#[tokio::test]
async fn without_a_valid_token_every_transport_is_unauthenticated() {
    let app = secured().await;
    let expired = token("read write", None, -10);
    let wrong_secret = encode(
        &Header::default(),
        &json!({"exp": chrono::Utc::now().timestamp() + 60, "aud": "recordsync", "scope": "read"}),
        &EncodingKey::from_secret(b"another secret"),
    )
    .unwrap();
    let wrong_audience = encode(
        &Header::default(),
        &json!({"exp": chrono::Utc::now().timestamp() + 60, "aud": "elsewhere", "scope": "read"}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    for auth in [
        None,
        Some(bearer(&expired)),
        Some(bearer(&wrong_secret)),
        Some(bearer(&wrong_audience)),
        Some("Basic eDp5".into()),
    ] {
        let mut post = app
            .http
            .post(app.url())
            .json(&json!({"query": "{ records { totalCount } }"}));
        let mut rest = app.http.get(app.api("/records"));
        if let Some(a) = &auth {
            post = post.header("authorization", a);
            rest = rest.header("authorization", a);
        }
        let resp = post.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
        let resp = rest.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{body}");

        let payload = match &auth {
            Some(a) => json!({"Authorization": a}),
            None => json!({}),
        };
        let mut ws = ws_with(&app, payload).await;
        let (code, _) = ws.expect_close().await;
        assert_eq!(code, 4403, "{auth:?}");
    }
    // Nothing was written and the server answers a good token.
    let good = token("read", None, 60);
    let (status, body) = gql_as(&app, &good, "{ records { totalCount } }", json!({})).await;
    assert_eq!(
        (status, body["data"]["records"]["totalCount"].clone()),
        (200, json!(0))
    );
}

#[tokio::test]
async fn scopes_decide_reading_and_writing() {
    let app = secured().await;
    let reader = token("read", None, 60);
    let writer = token("write", None, 60);
    let (_, body) = gql_as(
        &app,
        &reader,
        "mutation { createRecord(input: {collection: \"a\", data: {}}) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let resp = app
        .http
        .post(app.api("/records"))
        .header("authorization", bearer(&reader))
        .json(&json!({"collection": "a", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let created = create_as(&app, &writer, "a", json!({"n": 1})).await;
    let (_, body) = gql_as(&app, &writer, "{ records { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = gql_as(
        &app,
        &reader,
        "query($id: UUID!) { record(id: $id) { id } }",
        json!({"id": created["id"]}),
    )
    .await;
    assert_eq!(body["data"]["record"]["id"], created["id"]);
}

#[tokio::test]
async fn a_collection_limited_token_sees_and_changes_only_its_collections() {
    let app = secured().await;
    let admin = token("read write", None, 60);
    let todos_only = token("read write", Some(&["todos"]), 60);
    let todo = create_as(&app, &admin, "todos", json!({"t": 1})).await;
    let note = create_as(&app, &admin, "notes", json!({"n": 1})).await;

    // Lists hold only allowed collections; naming another is forbidden.
    let (_, body) = gql_as(
        &app,
        &todos_only,
        "{ records { totalCount nodes { collection } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["records"]["totalCount"], 1, "{body}");
    assert_eq!(body["data"]["records"]["nodes"][0]["collection"], "todos");
    let (_, body) = gql_as(
        &app,
        &todos_only,
        "{ records(collection: \"notes\") { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let (_, body) = gql_as(
        &app,
        &todos_only,
        "{ changes { nodes { record { collection } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["changes"]["nodes"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    // A forbidden record looks missing, to reads and writes alike.
    let (_, body) = gql_as(
        &app,
        &todos_only,
        "query($id: UUID!) { record(id: $id) { id } }",
        json!({"id": note["id"]}),
    )
    .await;
    assert_eq!(body["data"]["record"], Value::Null);
    let (_, body) = gql_as(
        &app,
        &todos_only,
        "mutation($id: UUID!) { deleteRecord(id: $id) { id } }",
        json!({"id": note["id"]}),
    )
    .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let resp = app
        .http
        .get(app.api(&format!("/records/{}", note["id"].as_str().unwrap())))
        .header("authorization", bearer(&todos_only))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (_, body) = gql_as(
        &app,
        &todos_only,
        "mutation { createRecord(input: {collection: \"notes\", data: {}}) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    // Its own collection works.
    let (_, body) = gql_as(
        &app,
        &todos_only,
        "mutation($id: UUID!) { patchRecord(id: $id, patch: {t: 2}) { version } }",
        json!({"id": todo["id"]}),
    )
    .await;
    assert_eq!(body["data"]["patchRecord"]["version"], 2, "{body}");
}

#[tokio::test]
async fn a_collection_limited_subscriber_never_sees_another_collection() {
    let app = secured().await;
    let admin = token("read write", None, 60);
    let mut ws = ws_with(
        &app,
        json!({"Authorization": bearer(&token("read", Some(&["todos"]), 60))}),
    )
    .await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    ws.subscribe_changes("all", "").await;
    ws.subscribe_changes("notes", "(collection: \"notes\")")
        .await;
    assert_eq!(ws.operation_error_code("notes").await, "FORBIDDEN");
    app.wait_for_receivers(1).await;
    for i in 0..5 {
        create_as(&app, &admin, "notes", json!({"i": i})).await;
        create_as(&app, &admin, "todos", json!({"i": i})).await;
    }
    let events = ws.next_changes("all", 5).await;
    assert!(
        events.iter().all(|e| e["record"]["collection"] == "todos"),
        "{events:?}"
    );
    ws.expect_silence().await;
}

#[tokio::test]
async fn the_upgrade_request_header_authenticates_a_socket_too() {
    let app = secured().await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        app.ws_url(),
    )
    .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    req.headers_mut().insert(
        "Authorization",
        bearer(&token("read", None, 60)).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({"type": "connection_init"}).to_string().into(),
        ))
        .await
        .unwrap();
    let msg = tokio::time::timeout(super::helpers::ARRIVE, socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(msg.to_text().unwrap().contains("connection_ack"), "{msg:?}");
}

#[tokio::test]
async fn a_socket_is_closed_with_4403_when_its_token_expires() {
    let app = secured().await;
    let mut ws = ws_with(
        &app,
        json!({"Authorization": bearer(&token("read", None, 2))}),
    )
    .await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    ws.subscribe_changes("s", "").await;
    let started = std::time::Instant::now();
    let (code, reason) = ws.expect_close().await;
    assert_eq!(code, 4403, "{reason}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // A fresh token reconnects.
    let mut again = ws_with(
        &app,
        json!({"Authorization": bearer(&token("read", None, 60))}),
    )
    .await;
    assert_eq!(again.recv().await["type"], "connection_ack");
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_with_a_public_key_file() {
    // Key pairs made for these tests only (tests/fixtures).
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    for (name, alg) in [
        ("rsa", jsonwebtoken::Algorithm::RS256),
        ("ec", jsonwebtoken::Algorithm::ES256),
    ] {
        let public = format!("{fixtures}/jwt-{name}-public.pem");
        let app = spawn_app_with(|c| c.jwt_public_key_file = Some(public.clone().into())).await;
        let private = std::fs::read(format!("{fixtures}/jwt-{name}-private.pem")).unwrap();
        let key = match alg {
            jsonwebtoken::Algorithm::RS256 => EncodingKey::from_rsa_pem(&private),
            _ => EncodingKey::from_ec_pem(&private),
        }
        .unwrap();
        let claims = json!({"exp": chrono::Utc::now().timestamp() + 60, "scope": "read"});
        let good = encode(&Header::new(alg), &claims, &key).unwrap();
        let (status, body) = gql_as(&app, &good, "{ records { totalCount } }", json!({})).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["data"]["records"]["totalCount"], 0);
        // The classic confusion: HS256 "signed" with the public key as the secret.
        let public_bytes = std::fs::read(&public).unwrap();
        let forged = encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&public_bytes),
        )
        .unwrap();
        let (status, body) = gql_as(&app, &forged, "{ records { totalCount } }", json!({})).await;
        assert_eq!(status, 401, "{name}: {body}");
    }
}

#[tokio::test]
async fn access_is_checked_before_input_on_every_read_and_transport() {
    let app = secured().await;
    let limited = token("read write", Some(&["a"]), 60);
    let write_only = token("write", None, 60);
    // A malformed collection outside the token's collections is forbidden, not bad input,
    // whichever operation names it.
    for query in [
        "{ records(collection: \"not a name!\") { totalCount } }",
        "{ changes(collection: \"not a name!\") { changeCursor } }",
    ] {
        let (_, body) = gql_as(&app, &limited, query, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}: {body}");
    }
    // A token that may not read is forbidden whatever it sends, a bad cursor included.
    for query in [
        "{ records(first: -1) { totalCount } }",
        "{ changes(after: \"garbage\") { changeCursor } }",
        "{ record(id: \"00000000-0000-0000-0000-000000000000\") { id } }",
    ] {
        let (_, body) = gql_as(&app, &write_only, query, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}: {body}");
    }
    for path in [
        "/records?collection=not%20a%20name!",
        "/changes?collection=not%20a%20name!",
        "/changes/stream?collection=not%20a%20name!",
    ] {
        let resp = app
            .http
            .get(app.api(path))
            .header("authorization", bearer(&limited))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}");
    }
    let mut ws = ws_with(&app, json!({"Authorization": bearer(&limited)})).await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    ws.subscribe_changes("s", "(collection: \"not a name!\")")
        .await;
    assert_eq!(ws.operation_error_code("s").await, "FORBIDDEN");
}

#[tokio::test]
async fn a_socket_that_stops_reading_is_still_closed_when_its_token_expires() {
    let app = spawn_app_with(|c| {
        c.jwt_secret = Some(SECRET.to_owned());
        c.jwt_audience = Some("recordsync".to_owned());
        super::hardening::small_queues(c);
    })
    .await;
    let short = token("read write", None, 5);
    let mut ws = ws_with(&app, json!({"Authorization": bearer(&short)})).await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    let writer = bearer(&token("read write", None, 60));
    super::hardening::stop_reading_and_ping(&app, &mut ws, Some(&writer)).await;
    assert!(
        super::hardening::subscriptions_end_within(&app, Duration::from_secs(12)).await,
        "the subscription outlived its token"
    );
}

#[tokio::test]
async fn event_streams_end_with_an_error_event_when_their_token_expires() {
    use super::helpers::SseStream;
    let app = secured().await;
    let short = token("read", None, 2);
    let writer = token("read write", None, 60);
    let rest = app
        .http
        .get(app.api("/changes/stream"))
        .header("authorization", bearer(&short))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);
    let mut rest = SseStream::new(rest);
    let graphql = app
        .http
        .post(app.url())
        .header("accept", "text/event-stream")
        .header("authorization", bearer(&short))
        .json(&json!({"query": "subscription { recordChanged { cursor } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(graphql.status(), 200);
    let mut graphql = SseStream::new(graphql);
    app.wait_for_receivers(2).await;
    create_as(&app, &writer, "todos", json!({"before": "exp"})).await;
    assert!(rest.next().await.unwrap().json()["cursor"].is_string());
    assert!(graphql.next_result().await["data"]["recordChanged"]["cursor"].is_string());

    // At `exp` both streams say so and end; nothing written after it arrives.
    let error = rest.next().await.expect("an error event");
    assert_eq!(error.name, "error");
    assert_eq!(error.json()["code"], "UNAUTHENTICATED", "{}", error.data);
    assert!(
        rest.next().await.is_none(),
        "the REST stream goes on after exp"
    );
    let result = graphql.next_result().await;
    assert_eq!(error_code(&result), "UNAUTHENTICATED", "{result}");
    let complete = graphql.next().await.expect("complete");
    assert_eq!(complete.name, "complete");
    assert!(
        graphql.next().await.is_none(),
        "the GraphQL stream goes on after exp"
    );
    create_as(&app, &writer, "todos", json!({"after": "exp"})).await;
}

#[tokio::test]
async fn a_legacy_reinit_renews_the_same_rights_and_cannot_change_them_under_running_operations() {
    let app = secured().await;
    let writer = token("read write", None, 60);
    let legacy = |credential: String| {
        let app = &app;
        async move {
            let mut ws = WsClient::connect_raw(app, Some("graphql-ws")).await;
            ws.send(json!({"type": "connection_init", "payload": {"Authorization": bearer(&credential)}}))
                .await;
            assert_eq!(ws.recv_skipping_ka().await["type"], "connection_ack");
            ws.send(json!({"type": "start", "id": "1", "payload": {"query": "subscription { recordChanged { record { collection data } } }"}}))
                .await;
            ws
        }
    };
    // The same rights with a later `exp`: acknowledged, and the subscription goes on.
    let mut renewed = legacy(token("read", None, 2)).await;
    app.wait_for_receivers(1).await;
    renewed
        .send(json!({"type": "connection_init", "payload": {"Authorization": bearer(&token("read", None, 60))}}))
        .await;
    assert_eq!(renewed.recv_skipping_ka().await["type"], "connection_ack");
    // Narrower rights while the subscription runs: the connection is closed.
    let mut narrowed = legacy(token("read", None, 60)).await;
    app.wait_for_receivers(2).await;
    narrowed
        .send(json!({"type": "connection_init", "payload": {"Authorization": bearer(&token("read", Some(&["a"]), 60))}}))
        .await;
    assert_eq!(narrowed.expect_close_after_messages().await.0, 4403);
    // Past the first token's `exp`, the renewed connection still serves.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    create_as(&app, &writer, "b", json!({"n": 1})).await;
    let msg = renewed.recv_skipping_ka().await;
    assert_eq!(msg["type"], "data", "{msg}");
    assert_eq!(
        msg["payload"]["data"]["recordChanged"]["record"]["collection"],
        "b"
    );
}

#[tokio::test]
async fn event_streams_are_bounded_per_caller_so_one_token_cannot_take_every_slot() {
    let app = spawn_app_with(|c| {
        c.jwt_secret = Some(SECRET.to_owned());
        c.jwt_audience = Some("recordsync".to_owned());
        c.sse_max_streams_per_caller = 2;
    })
    .await;
    let signed = |sub: &str| {
        let claims = json!({"exp": chrono::Utc::now().timestamp() + 60, "aud": "recordsync",
                            "scope": "read", "sub": sub, "collections": ["nothing-here"]});
        bearer(
            &encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap(),
        )
    };
    let open = |credential: String, graphql: bool| {
        let app = &app;
        async move {
            let req = if graphql {
                app.http
                    .post(app.url())
                    .header("accept", "text/event-stream")
                    .json(&json!({"query": "subscription { recordChanged(collection: \"nothing-here\") { cursor } }"}))
            } else {
                app.http.get(app.api("/changes/stream"))
            };
            req.header("authorization", credential)
                .send()
                .await
                .unwrap()
        }
    };
    let alice = signed("alice");
    let first = open(alice.clone(), false).await;
    let second = open(alice.clone(), true).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    for graphql in [false, true] {
        let third = open(alice.clone(), graphql).await;
        assert_eq!(third.status(), 429, "graphql: {graphql}");
    }
    // Another caller is not affected, and a closed stream frees its place.
    assert_eq!(open(signed("bob"), false).await.status(), 200);
    drop(first);
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    loop {
        let again = open(alice.clone(), false).await;
        if again.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_token_that_may_not_write_learns_nothing_about_which_ids_exist() {
    let app = secured().await;
    let writer = token("read write", None, 60);
    let reader = token("read", Some(&["mine"]), 60);
    let theirs = create_as(&app, &writer, "theirs", json!({})).await;
    let existing = theirs["id"].as_str().unwrap().to_owned();
    let missing = uuid::Uuid::new_v4().to_string();
    for if_match in [None, Some("\"1\""), Some("\"1\", \"2\"")] {
        let mut statuses = Vec::new();
        for id in [&existing, &missing] {
            for method in [
                reqwest::Method::PUT,
                reqwest::Method::PATCH,
                reqwest::Method::DELETE,
            ] {
                let mut req = app
                    .http
                    .request(method.clone(), app.api(&format!("/records/{id}")))
                    .header("authorization", bearer(&reader));
                if method != reqwest::Method::DELETE {
                    req = req.json(&json!({"data": {}}));
                }
                if let Some(tag) = if_match {
                    req = req.header("if-match", tag);
                }
                statuses.push((method, req.send().await.unwrap().status().as_u16()));
            }
        }
        assert!(
            statuses.iter().all(|(_, s)| *s == 403),
            "If-Match {if_match:?}: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn metrics_need_the_metrics_scope_when_authentication_is_on() {
    let app = secured().await;
    let url = format!("http://{}/metrics", app.addr);
    let status = |credential: Option<String>| {
        let (app, url) = (&app, url.clone());
        async move {
            let mut req = app.http.get(url);
            if let Some(c) = credential {
                req = req.header("authorization", c);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(
        status(Some(bearer(&token("read write", None, 60)))).await,
        403
    );
    assert_eq!(status(Some(bearer(&token("metrics", None, 60)))).await, 200);
}
