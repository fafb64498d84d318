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

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_cost_bounded_memory_and_leave_nothing_behind() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let db = super::helpers::TestDb::fresh().await;
    let server = super::helpers::binary::Server::start(&db.url).await;
    let pid = server.child.id().expect("pid");
    let http = reqwest::Client::new();
    let api = format!("http://{}/api/records", server.addr);
    let start = server
        .gql("{ records(first: 0) { changeCursor } }", json!({}))
        .await["data"]["records"]["changeCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let replay = "subscription($a: String) { recordChanged(collection: \"big\", after: $a) { cursor record { data } } }";
    // A log of 150 changes whose data is a 64 KB array of zeros.
    let zeros = json!({"z": vec![0; 32_000]});
    futures_util::stream::iter(0..150)
        .map(|_| {
            let (http, api, zeros) = (http.clone(), api.clone(), zeros.clone());
            async move {
                let resp = http
                    .post(&api)
                    .json(&json!({"collection": "big", "data": zeros}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201);
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let baseline = rss(pid);

    // One WebSocket that never reads, with 5 subscriptions replaying all of it...
    let ws_url = format!("ws://{}/graphql", server.addr);
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    for id in 0..5 {
        let msg = json!({"id": id.to_string(), "type": "subscribe", "payload": {
            "query": replay, "variables": {"a": start}}});
        ws.send(Message::text(msg.to_string())).await.unwrap();
    }
    // ...and 5 GraphQL-over-SSE streams doing the same, never read either.
    let mut streams = Vec::new();
    for _ in 0..5 {
        let resp = http
            .post(server.graphql())
            .header("accept", "text/event-stream")
            .json(&json!({"query": replay, "variables": {"a": start}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        streams.push(resp);
    }
    let mut peak = 0;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(rss(pid));
    }
    let grown = peak.saturating_sub(baseline);
    eprintln!(
        "RSS {} MB before the clients, {} MB at most while they did not read",
        baseline >> 20,
        peak >> 20
    );
    // 10 subscriptions, each at most 2 × (256 KiB + 64 KiB) of catch-up batches, one
    // event being built, and the WebSocket's 1 MiB queue: well under 200 MB (parsed
    // trees of two batches of 100 took about 200 MB per subscription).
    assert!(
        grown < 200 * 1024 * 1024,
        "RSS grew by {} MB with clients that do not read",
        grown / (1024 * 1024)
    );

    // When they leave, their subscriptions end.
    drop(ws);
    drop(streams);
    let metrics_url = format!("http://{}/metrics", server.addr);
    let deadline = tokio::time::Instant::now() + ARRIVE;
    loop {
        let text = http
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text
            .lines()
            .any(|l| l.starts_with("recordsync_subscriptions_active") && l.ends_with(" 0"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscriptions still active after their clients left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An object nested `depth` levels deep, as the compact JSON text the server writes.
fn nested_text(depth: usize) -> String {
    format!("{}1{}", "{\"n\":".repeat(depth), "}".repeat(depth))
}

/// Overwrites record `id`'s data, and that of its changes, with `text` behind the
/// server's back: a row as an earlier version (without `--max-data-depth`) stored it.
async fn plant(app: &TestApp, id: &str, text: &str) {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&app.db.url).await.unwrap();
    let cast = if super::helpers::on_postgres() {
        "::jsonb"
    } else {
        ""
    };
    for (table, key) in [("record", "id"), ("record_change", "record_id")] {
        let id_value = if super::helpers::on_postgres() {
            format!("'{id}'")
        } else {
            // SQLite keeps uuids as 16-byte blobs.
            format!("X'{}'", id.replace('-', ""))
        };
        conn.execute_unprepared(&format!(
            "UPDATE {table} SET data = '{text}'{cast} WHERE {key} = {id_value}"
        ))
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
}

/// A GraphQL answer as text (a client's JSON parser may have a depth limit; the text
/// says what the server sent).
async fn gql_text(app: &TestApp, query: &str, variables: serde_json::Value) -> String {
    app.http
        .post(app.url())
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn get_text(app: &TestApp, path: &str) -> (u16, String) {
    let resp = app.http.get(app.api(path)).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_record_nested_past_every_parser_limit_reads_back_everywhere_and_stays_writable() {
    let app = super::helpers::spawn_app().await;
    let start = app.head_cursor().await;
    let planted = app.create("t", json!({"n": 0})).await;
    let id = planted["id"].as_str().unwrap().to_owned();
    app.create("t", json!({"other": true})).await;
    let deep = nested_text(200);
    plant(&app, &id, &deep).await;

    // Every read path answers, with the deep record and the others.
    let reads = [
        gql_text(
            &app,
            "query($id: UUID!) { record(id: $id) { data } }",
            json!({"id": id}),
        )
        .await,
        gql_text(&app, "{ records { nodes { id data } } }", json!({})).await,
        gql_text(&app, "{ changes { nodes { record { data } } } }", json!({})).await,
        get_text(&app, &format!("/records/{id}")).await.1,
        get_text(&app, "/records").await.1,
        get_text(&app, "/changes").await.1,
    ];
    for (i, text) in reads.iter().enumerate() {
        assert!(
            text.contains(&deep),
            "read {i} lacks the record: {:.300}",
            text
        );
        assert!(
            !text.contains("INTERNAL_SERVER_ERROR"),
            "read {i}: {:.300}",
            text
        );
    }
    for i in [1, 2, 4, 5] {
        assert!(
            reads[i].contains("\"other\":true"),
            "list {i}: {:.300}",
            reads[i]
        );
    }
    // A replaying subscription delivers it, and the change after it.
    let mut ws = WsClient::connect(&app).await;
    ws.send(json!({"id": "r", "type": "subscribe", "payload": {
        "query": "subscription($a: String) { recordChanged(after: $a) { cursor record { data } } }",
        "variables": {"a": start}}}))
        .await;
    let mut frames = String::new();
    while !frames.contains("\"other\":true") {
        match tokio::time::timeout(ARRIVE, ws.next_frame()).await {
            Ok(Some(tokio_tungstenite::tungstenite::Message::Text(t))) => frames.push_str(&t),
            Ok(Some(_)) => {}
            other => panic!("no replay: {other:?} after {frames:.300}"),
        }
    }
    assert!(frames.contains(&deep), "{frames:.300}");
    assert!(!frames.contains("\"error\""), "{frames:.300}");

    // Writes to it: a patch that keeps it too deep is refused clearly; writes of other
    // clients committed meanwhile are not touched; a replace and a delete work.
    let patch = app
        .gql(
            "mutation($id: UUID!) { patchRecord(id: $id, patch: {m: 1}) { version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        super::helpers::error_code(&patch),
        "BAD_USER_INPUT",
        "{patch}"
    );
    let writes = (0..20).map(|n| app.create("t", json!({"n": n})));
    let replace = app.update(&id, json!({"fixed": true}));
    let (created, replaced) = futures_util::join!(futures_util::future::join_all(writes), replace);
    assert!(created.iter().all(|r| r["version"] == 1), "{created:?}");
    assert_eq!(replaced["version"], 2, "{replaced}");
    plant(&app, &id, &deep).await;
    let deleted = gql_text(
        &app,
        "mutation($id: UUID!) { deleteRecord(id: $id) { data } }",
        json!({"id": id}),
    )
    .await;
    assert!(
        deleted.contains(&deep) && !deleted.contains("errors"),
        "{deleted:.300}"
    );
    assert_eq!(app.all_records().await.len(), 21);
}

#[tokio::test]
async fn pages_cost_what_they_hold_and_answers_stop_at_the_response_bound() {
    let app = super::helpers::spawn_app_with(|c| c.max_response_bytes = 200_000).await;
    let start = app.head_cursor().await;
    let filler = "x".repeat(30_000);
    for n in 0..10 {
        app.create("big", json!({"n": n, "filler": filler})).await;
    }
    // Half the records fit; all of them do not, and nothing of the answer is built.
    let half = app
        .gql("{ records(first: 5) { nodes { data } } }", json!({}))
        .await;
    assert!(half.get("errors").is_none(), "{:.300}", half.to_string());
    assert_eq!(
        half["data"]["records"]["nodes"].as_array().unwrap().len(),
        5
    );
    let all = app
        .gql("{ records(first: 10) { nodes { data } } }", json!({}))
        .await;
    assert_eq!(
        super::helpers::error_code(&all),
        "RESPONSE_TOO_LARGE",
        "{:.300}",
        all.to_string()
    );
    assert!(
        all.to_string().len() < 200_000,
        "the refused answer carries the records"
    );
    // What a query loads counts, all its pages together.
    let two = app
        .gql(
            "{ a: records(first: 4) { nodes { id } } b: records(first: 4) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        super::helpers::error_code(&two),
        "RESPONSE_TOO_LARGE",
        "{two}"
    );
    // A mutation's answer is not counted: it reports a write that happened.
    let small = super::helpers::spawn_app_with(|c| c.max_response_bytes = 10_000).await;
    let big = small
        .data(
            "mutation($d: JSON!) { createRecord(input: {collection: \"other\", data: $d}) { data } }",
            json!({"d": {"filler": "y".repeat(60_000)}}),
        )
        .await;
    assert_eq!(
        big["createRecord"]["data"]["filler"]
            .as_str()
            .unwrap()
            .len(),
        60_000
    );
    // Aliases of large pages add up: 30 pages of 500 are refused before anything runs.
    let aliases = (0..30)
        .map(|i| format!("a{i}: records(first: 500) {{ nodes {{ data }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let wide = app.gql(&format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(
        super::helpers::error_code(&wide),
        "LIMIT_EXCEEDED",
        "{wide}"
    );
    assert!(wide.get("data").is_none_or(|d| d.is_null()), "{wide}");
    // One page of 500 is within the complexity bound: it runs, and stops at the bound.
    let one = app
        .gql(
            "{ records(first: 500) { totalCount nodes { id data } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        super::helpers::error_code(&one),
        "RESPONSE_TOO_LARGE",
        "{:.200}",
        one.to_string()
    );
    // A subscription's events are bounded one by one: a replay of all ten arrives.
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", &format!("(collection: \"big\", after: \"{start}\")"))
        .await;
    assert_eq!(ws.next_changes("s", 10).await.len(), 10);
}

/// Runs `sql` on the app's database behind the server's back.
async fn corrupt(app: &TestApp, sql: &str) {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&app.db.url).await.unwrap();
    conn.execute_unprepared(sql).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_row_that_cannot_be_decoded_is_left_out_and_nothing_around_it_stops() {
    let app = super::helpers::spawn_app().await;
    let start = app.head_cursor().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.create("c", json!({"n": n})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let bad = ids[2].clone();
    let key = if super::helpers::on_postgres() {
        format!("'{bad}'")
    } else {
        format!("X'{}'", bad.replace('-', ""))
    };
    // A change of a kind the log does not know (on both backends)...
    corrupt(
        &app,
        &format!("UPDATE record_change SET kind = 'BOGUS' WHERE record_id = {key}"),
    )
    .await;
    // ...and, on SQLite (PostgreSQL's jsonb cannot hold it), a record whose data is not JSON.
    let broken_record = !super::helpers::on_postgres();
    if broken_record {
        corrupt(
            &app,
            &format!("UPDATE record SET data = 'not json' WHERE id = {key}"),
        )
        .await;
    }
    let expected = if broken_record { 4 } else { 5 };

    // Paging two at a time walks past it to the end, over GraphQL and REST.
    let mut seen = 0;
    let mut after = serde_json::Value::Null;
    loop {
        let d = app
            .data(
                "query($a: String) { records(first: 2, after: $a) { nodes { id } pageInfo { hasNextPage endCursor } } }",
                json!({"a": after}),
            )
            .await;
        seen += d["records"]["nodes"].as_array().unwrap().len();
        if d["records"]["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = d["records"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, expected);
    let (mut seen, mut next) = (0, None::<String>);
    loop {
        let path = match &next {
            Some(n) => format!("/records?limit=2&after={n}"),
            None => "/records?limit=2".to_owned(),
        };
        let (status, text) = get_text(&app, &path).await;
        assert_eq!(status, 200, "{text}");
        let page: serde_json::Value = serde_json::from_str(&text).unwrap();
        seen += page["items"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(n) => next = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    // The change log: a page and a replaying subscription leave the bad change out and go
    // on, live, with the next write.
    let d = app
        .data(
            "query($a: String) { changes(after: $a) { nodes { record { id } } } }",
            json!({"a": start}),
        )
        .await;
    assert_eq!(d["changes"]["nodes"].as_array().unwrap().len(), 4);
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("r", &format!("(after: \"{start}\")"))
        .await;
    let replayed = ws.next_changes("r", 4).await;
    assert!(replayed.iter().all(|c| c["record"]["id"] != json!(bad)));
    let later = app.create("c", json!({"n": 5})).await;
    assert_eq!(ws.next_change("r").await["record"]["id"], later["id"]);
    // Writes around it go on; a write to it fails on its own.
    if broken_record {
        let writes = (0..10).map(|n| app.create("c", json!({"m": n})));
        let to_bad = app.gql(
            "mutation($id: UUID!) { updateRecord(id: $id, data: {}) { id } }",
            json!({"id": bad}),
        );
        let (created, refused) =
            futures_util::join!(futures_util::future::join_all(writes), to_bad);
        assert!(created.iter().all(|r| r["version"] == 1), "{created:?}");
        assert_eq!(
            super::helpers::error_code(&refused),
            "INTERNAL_SERVER_ERROR",
            "{refused}"
        );
    }
}
