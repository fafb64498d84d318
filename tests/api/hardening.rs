//! Defects an attack on the running server found: what a client that stops reading,
//! or whose token expires, can no longer hold on to.

use std::time::Duration;

use serde_json::json;

use super::helpers::{ARRIVE, TestApp, WsClient};

/// Settings under which a few records fill a socket the client does not read.
pub fn small_queues(c: &mut recordsync::Config) {
    c.ws_send_queue = 2;
    c.max_data_bytes = 5 * 1024 * 1024;
    c.max_body_bytes = 6 * 1024 * 1024;
}

/// Subscribes on `ws`, then writes enough large records that the socket and the
/// connection's queue fill up while `ws` reads nothing, sending a `ping` after each
/// write: once the queue is full, the server must answer one while it cannot queue.
/// The writes carry `authorization` when given.
pub async fn stop_reading_and_ping(app: &TestApp, ws: &mut WsClient, authorization: Option<&str>) {
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    // Loopback sockets buffer up to 32 MiB on the receiving side: send far more.
    let big = "x".repeat(4 * 1024 * 1024);
    for _ in 0..20 {
        let mut req = app
            .http
            .post(app.api("/records"))
            .json(&json!({"collection": "big", "data": {"text": big}}));
        if let Some(value) = authorization {
            req = req.header("authorization", value);
        }
        assert_eq!(req.send().await.unwrap().status(), 201);
        // Once the server has dropped the connection, this fails: that is fine.
        ws.try_send(json!({"type": "ping"})).await;
    }
}

/// Waits until the server holds no subscription any more; false if it still does after
/// `within`.
pub async fn subscriptions_end_within(app: &TestApp, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while app.service.broker().receivers() > 0 {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test]
async fn a_socket_that_stops_reading_is_dropped_when_it_counts_as_dead() {
    let app = super::helpers::spawn_app_with(|c| {
        small_queues(c);
        c.ws_dead_timeout = Duration::from_secs(3);
    })
    .await;
    let mut ws = WsClient::connect(&app).await;
    stop_reading_and_ping(&app, &mut ws, None).await;
    assert!(
        subscriptions_end_within(&app, ARRIVE).await,
        "the server still serves a client that reads nothing"
    );
}

#[tokio::test]
async fn a_persisted_mutation_sent_with_get_is_405_like_one_sent_in_full() {
    use sha2::{Digest, Sha256};
    let app = super::helpers::spawn_app().await;
    let mutation = "mutation { createRecord(input: {collection: \"apq\", data: {}}) { id } }";
    let hash = format!("{:x}", Sha256::digest(mutation.as_bytes()));
    let ext = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    app.post_json(json!({"query": mutation, "extensions": ext}))
        .await;
    let resp = app
        .http
        .get(app.url())
        .query(&[("extensions", ext.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        super::helpers::error_code(&body),
        "METHOD_NOT_ALLOWED",
        "{body}"
    );
    assert_eq!(app.all_records().await.len(), 1);
}

/// Whether the server closes `socket` within `within` (reads until end of stream).
async fn closed_within(socket: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn connections_that_send_no_headers_or_stall_are_closed() {
    use tokio::io::AsyncWriteExt;
    let app = super::helpers::spawn_app_with(|c| {
        c.http_header_read_timeout = Duration::from_secs(1);
        c.http_idle_timeout = Duration::from_secs(20);
        c.keep_alive = Duration::from_secs(5);
    })
    .await;
    // Nothing at all, half a header, and a kept-alive connection after its response.
    let mut silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut kept = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for (name, socket) in [
        ("silent", &mut silent),
        ("partial", &mut partial),
        ("kept alive", &mut kept),
    ] {
        assert!(
            closed_within(socket, Duration::from_secs(5)).await,
            "the {name} connection is still open"
        );
    }
}

#[tokio::test]
async fn a_connection_on_which_nothing_moves_is_closed_after_the_idle_timeout() {
    use tokio::io::AsyncWriteExt;
    let app = super::helpers::spawn_app_with(|c| {
        c.http_header_read_timeout = Duration::from_secs(30);
        c.http_idle_timeout = Duration::from_secs(2);
        c.keep_alive = Duration::from_secs(1);
    })
    .await;
    // Headers in time, then a body that never comes.
    let mut stalled = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stalled
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"qu")
        .await
        .unwrap();
    assert!(closed_within(&mut stalled, Duration::from_secs(6)).await);
    // An event stream stays open past the idle timeout: its keep-alive moves bytes.
    let resp = app
        .http
        .get(app.api("/changes/stream"))
        .send()
        .await
        .unwrap();
    let mut stream = super::helpers::SseStream::new(resp);
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.rest_create("t", json!({})).await;
    assert!(stream.next().await.unwrap().json()["cursor"].is_string());
}

#[tokio::test]
async fn open_connections_are_capped_and_a_closed_one_frees_its_place() {
    let app = super::helpers::spawn_app_with(|c| {
        c.http_max_connections = 3;
        c.sse_max_streams = 2;
        c.http_header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    let health = format!("http://{}/healthz", app.addr);
    let client = reqwest::Client::new();
    let waiting = client
        .get(&health)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(
        waiting.is_err(),
        "a fourth connection was served: {waiting:?}"
    );
    drop(idle.pop());
    let served = client
        .get(&health)
        .timeout(super::helpers::ARRIVE)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
}

/// An object nested `depth` levels deep (the object itself is level 1).
fn nested(depth: usize) -> serde_json::Value {
    let mut value = json!({"leaf": true});
    for _ in 1..depth {
        value = json!({ "n": value });
    }
    value
}

#[tokio::test]
async fn data_nested_deeper_than_the_limit_is_refused_and_what_is_accepted_reads_back() {
    let app = super::helpers::spawn_app().await;
    // Over the default limit of 32, through a variable, a literal and REST.
    let deep = nested(33);
    let resp = app
        .gql(
            "mutation($d: JSON!) { createRecord(input: {collection: \"t\", data: $d}) { id } }",
            json!({"d": deep}),
        )
        .await;
    assert_eq!(
        super::helpers::error_code(&resp),
        "BAD_USER_INPUT",
        "{resp}"
    );
    let literal = format!(
        "mutation {{ createRecord(input: {{collection: \"t\", data: {}{}}}) {{ id }} }}",
        "{n: ".repeat(200),
        "}".repeat(200)
    );
    let resp = app.gql(&literal, json!({})).await;
    assert!(resp["errors"].is_array(), "{resp}");
    assert!(
        resp["data"].is_null() || resp["data"]["createRecord"].is_null(),
        "{resp}"
    );
    let rest = app
        .http
        .post(app.api("/records"))
        .json(&json!({"collection": "t", "data": deep}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 400);
    // At the limit it is stored, and every read path returns it.
    let ok = app.create("t", nested(32)).await;
    let id = ok["id"].as_str().unwrap().to_owned();
    let patch = app
        .http
        .patch(app.api(&format!("/records/{id}")))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"n": nested(32)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 400, "a patch that would nest 33 deep");
    assert_eq!(app.all_records().await.len(), 1);
    assert_eq!(app.all_changes().await.len(), 1);
    let d = app
        .data(
            "query($id: UUID!) { record(id: $id) { data } records { nodes { data } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(d["record"]["data"], nested(32));
    assert_eq!(d["records"]["nodes"][0]["data"], nested(32));
    let list: serde_json::Value = app
        .http
        .get(app.api("/records"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["data"], nested(32));
}

/// Every change in `collection` after `after`, as `changes` answers on `app`.
async fn changes_after(app: &TestApp, after: &str, collection: &str) -> Vec<serde_json::Value> {
    let d = app
        .data(
            "query($a: String, $c: String) { changes(after: $a, collection: $c, first: 500) { nodes { cursor record { data } } } }",
            json!({"a": after, "c": collection}),
        )
        .await;
    d["changes"]["nodes"].as_array().unwrap().clone()
}

#[tokio::test]
async fn change_cursors_say_nothing_yet_work_on_another_instance_and_after_a_restart() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let db = super::helpers::TestDb::fresh().await;
    let app = super::helpers::spawn_on(db.clone(), |_| {}).await;
    app.create("a", json!({"n": 0})).await;
    let before = app.head_cursor().await;
    for n in 0..20 {
        app.create("b", json!({"n": n})).await;
    }
    let after = app.head_cursor().await;
    // Neither cursor shows a position, and twenty writes later nothing in it is alike.
    for c in [&before, &after] {
        let bytes = URL_SAFE_NO_PAD.decode(c).expect("base64url");
        assert_eq!(bytes.len(), 16, "{c}");
        assert!(!String::from_utf8_lossy(&bytes).contains("chg"), "{c}");
    }
    assert_ne!(before[..6], after[..6]);
    // Another instance on the same database reads them.
    let other = super::helpers::spawn_on(db.clone(), |_| {}).await;
    assert_eq!(changes_after(&other, &before, "b").await.len(), 20);
    assert_eq!(changes_after(&other, &after, "b").await.len(), 0);
    drop(other);
    // So does the server after a restart.
    let db = app.stop().await;
    let app = super::helpers::spawn_on(db, |_| {}).await;
    let replayed = changes_after(&app, &before, "b").await;
    assert_eq!(replayed.len(), 20);
    assert_eq!(replayed[19]["cursor"], json!(after));
    // A cursor that was not issued is refused.
    let mut forged = URL_SAFE_NO_PAD.decode(&after).unwrap();
    forged[0] ^= 1;
    let resp = app
        .gql(
            "query($a: String) { changes(after: $a) { nodes { cursor } } }",
            json!({"a": URL_SAFE_NO_PAD.encode(forged)}),
        )
        .await;
    assert_eq!(
        super::helpers::error_code(&resp),
        "BAD_USER_INPUT",
        "{resp}"
    );
}
