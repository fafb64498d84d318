use serde_json::{Value, json};

use super::helpers::{WsClient, cursors, spawn_app, spawn_app_with};

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_collection_subscription_gets_that_collection_only_with_the_last_state_on_delete() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "(collection: \"todos\")").await;
    app.wait_for_receivers(1).await;

    let a = app.create("todos", json!({"n": 1})).await;
    let id = a["id"].as_str().unwrap();
    app.create("notes", json!({"n": 2})).await;
    app.update(id, json!({"n": 3})).await;
    app.delete(id).await;

    let events = ws.next_changes("s", 3).await;
    assert_eq!(kinds(&events), ["CREATED", "UPDATED", "DELETED"]);
    assert!(
        events
            .iter()
            .all(|e| e["record"]["collection"] == "todos" && e["record"]["id"] == id)
    );
    assert_eq!(events[2]["record"]["data"], json!({"n": 3}));
    assert_eq!(events[2]["record"]["version"], 2);
    ws.expect_silence().await;
}

#[tokio::test]
async fn an_id_subscription_gets_that_record_only() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4().to_string();
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", &format!("(id: \"{id}\")")).await;
    app.wait_for_receivers(1).await;

    app.create("a", json!({"other": true})).await;
    app.data(
        "mutation($id: UUID) { createRecord(input: {id: $id, collection: \"a\", data: {mine: 1}}) { id } }",
        json!({"id": id}),
    )
    .await;
    app.update(&id, json!({"mine": 2})).await;
    let events = ws.next_changes("s", 2).await;
    assert_eq!(kinds(&events), ["CREATED", "UPDATED"]);
    assert_eq!(events[1]["record"]["data"], json!({"mine": 2}));
    ws.expect_silence().await;
}

#[tokio::test]
async fn a_kinds_subscription_gets_those_kinds_only() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "(collection: \"a\", kinds: [DELETED, CREATED])")
        .await;
    app.wait_for_receivers(1).await;
    let r = app.create("a", json!({"n": 1})).await;
    let id = r["id"].as_str().unwrap();
    app.update(id, json!({"n": 2})).await;
    app.create("b", json!({"n": 1})).await;
    app.delete(id).await;
    let events = ws.next_changes("s", 2).await;
    assert_eq!(kinds(&events), ["CREATED", "DELETED"]);
    assert_eq!(events[1]["record"]["data"], json!({"n": 2}));
    ws.expect_silence().await;
}

#[tokio::test]
async fn two_subscribers_on_separate_connections_get_identical_ordered_streams() {
    let app = spawn_app().await;
    let mut one = WsClient::connect(&app).await;
    let mut two = WsClient::connect(&app).await;
    one.subscribe_changes("x", "").await;
    two.subscribe_changes("y", "").await;
    app.wait_for_receivers(2).await;

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let url = app.url();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for i in 0..25 {
                    let body = json!({
                        "query": "mutation($d: JSON!) { createRecord(input: {collection: \"c\", data: $d}) { id } }",
                        "variables": {"d": {"w": w, "i": i}},
                    });
                    let resp: Value = http.post(&url).json(&body).send().await.unwrap().json().await.unwrap();
                    assert!(resp.get("errors").is_none(), "{resp}");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let a = one.next_changes("x", 100).await;
    let b = two.next_changes("y", 100).await;
    assert_eq!(cursors(&a), cursors(&b));
    assert_eq!(
        cursors(&a),
        cursors(&app.all_changes().await),
        "streams follow the log's order"
    );
    one.expect_silence().await;
}

#[tokio::test]
async fn a_slow_subscriber_catches_up_from_the_log_and_misses_nothing() {
    // A tiny live buffer and send queue: a subscriber that does not read falls behind
    // the live stream almost at once. The client answers no ping while it reads
    // nothing, so the dead-connection timeout must outlast the writes on a busy machine:
    // this subscriber is slow, not dead.
    let app = spawn_app_with(|c| {
        c.live_buffer = 4;
        c.ws_send_queue = 1;
        c.ws_dead_timeout = std::time::Duration::from_secs(300);
    })
    .await;
    let after = app.head_cursor().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", &format!("(after: \"{after}\")"))
        .await;
    app.wait_for_receivers(1).await;

    // Far more than socket buffers hold, written while the subscriber reads nothing.
    let blob = "x".repeat(32 * 1024);
    let total = 400;
    for i in 0..total {
        app.create("big", json!({"i": i, "blob": blob})).await;
    }
    let events = ws.next_changes("s", total).await;
    let order: Vec<i64> = events
        .iter()
        .map(|e| e["record"]["data"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(order, (0..total as i64).collect::<Vec<_>>());
    ws.expect_silence().await;
    let catch_ups = app
        .service
        .broker()
        .stats()
        .catch_ups
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        catch_ups > 0,
        "the subscriber should have fallen behind and caught up from the log"
    );
}

#[tokio::test]
async fn rejected_writes_publish_nothing() {
    let app = spawn_app().await;
    let r = app.create("a", json!({"n": 1})).await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    let q = "mutation($id: UUID, $c: String!, $d: JSON!) { createRecord(input: {id: $id, collection: $c, data: $d}) { id } }";
    app.gql(q, json!({"id": r["id"], "c": "a", "d": {}})).await;
    app.gql(q, json!({"c": "bad name", "d": {}})).await;
    app.gql(q, json!({"c": "a", "d": [1]})).await;
    app.gql(
        "mutation($id: UUID!) { deleteRecord(id: $id) { id } }",
        json!({"id": uuid::Uuid::new_v4()}),
    )
    .await;
    ws.expect_silence().await;
}

#[tokio::test]
async fn queries_and_mutations_work_over_the_socket() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe(
        "m",
        "mutation { createRecord(input: {collection: \"a\", data: {n: 1}}) { id version } }",
        json!({}),
    )
    .await;
    let next = ws.recv().await;
    assert_eq!(next["type"], "next");
    assert_eq!(next["payload"]["data"]["createRecord"]["version"], 1);
    assert_eq!(ws.recv().await, json!({"type": "complete", "id": "m"}));
    let id = next["payload"]["data"]["createRecord"]["id"].clone();
    ws.subscribe(
        "q",
        "query($id: UUID!) { record(id: $id) { data } }",
        json!({"id": id}),
    )
    .await;
    let next = ws.recv().await;
    assert_eq!(next["payload"]["data"]["record"]["data"], json!({"n": 1}));
    assert_eq!(ws.recv().await, json!({"type": "complete", "id": "q"}));
    // An execution error is a result, not a refused request: `next`, then `complete`.
    ws.subscribe(
        "d",
        "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(ws.operation_error_code("d").await, "NOT_FOUND");
}

#[tokio::test]
async fn subscription_argument_errors_are_reported_with_codes() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    for (id, args) in [
        ("1", "(after: \"garbage\")"),
        ("2", "(collection: \"no spaces\")"),
    ] {
        ws.subscribe_changes(id, args).await;
        assert_eq!(ws.operation_error_code(id).await, "BAD_USER_INPUT");
    }
    // The connection stays usable.
    ws.subscribe_changes("3", "").await;
    app.wait_for_receivers(1).await;
    app.create("a", json!({})).await;
    assert_eq!(ws.next_change("3").await["kind"], "CREATED");
}

#[tokio::test]
async fn a_pruned_cursor_is_cursor_expired() {
    let app = spawn_app_with(|c| {
        c.change_retention = std::time::Duration::from_secs(1);
        c.prune_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let old = app.head_cursor().await;
    app.create("a", json!({"n": 1})).await;
    app.create("a", json!({"n": 2})).await;

    // Wait for the pruner to drop both changes.
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    loop {
        let resp = app
            .gql(
                "query($a: String) { changes(after: $a) { changeCursor } }",
                json!({"a": old}),
            )
            .await;
        if super::helpers::error_code(&resp) == "CURSOR_EXPIRED" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never pruned: {resp}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("old", &format!("(after: \"{old}\")"))
        .await;
    assert_eq!(ws.operation_error_code("old").await, "CURSOR_EXPIRED");

    // A client that reloads gets a fresh cursor that works.
    let fresh = app.head_cursor().await;
    ws.subscribe_changes("new", &format!("(after: \"{fresh}\")"))
        .await;
    app.wait_for_receivers(1).await;
    app.create("a", json!({"n": 3})).await;
    assert_eq!(
        ws.next_change("new").await["record"]["data"],
        json!({"n": 3})
    );
}

/// The full `RecordChange` selection, with data left out unless `$withData`.
const SHAPED: &str = "subscription($after: String, $withData: Boolean!) { recordChanged(collection: \"sh\", after: $after) { cursor kind changedAt record { id collection version data @include(if: $withData) } } }";

#[tokio::test]
async fn subscriptions_of_one_shape_each_get_the_whole_result_in_their_own_envelope() {
    for sharing in [true, false] {
        let app = spawn_app_with(|c| {
            if !sharing {
                c.ws_shared_result_bytes = 0;
            }
        })
        .await;
        let before = app.head_cursor().await;
        let early = app.create("sh", json!({"n": 0})).await;
        let both = json!({"after": before, "withData": true});
        let live = json!({"after": null, "withData": true});

        // Two connections, each with the same two shapes (one replaying from
        // `before`, one live), a third shape that leaves data out, and a legacy
        // connection with the replaying shape.
        let mut a = WsClient::connect(&app).await;
        let mut b = WsClient::connect(&app).await;
        let mut legacy = WsClient::connect_legacy(&app).await;
        for ws in [&mut a, &mut b] {
            ws.subscribe("replay", SHAPED, both.clone()).await;
            ws.subscribe("live", SHAPED, live.clone()).await;
        }
        a.subscribe("bare", SHAPED, json!({"withData": false}))
            .await;
        legacy
            .send(json!({"type": "start", "id": "old", "payload": {"query": SHAPED, "variables": both}}))
            .await;
        app.wait_for_receivers(6).await;

        let mut written = vec![early];
        for n in 1..=3 {
            written.push(app.create("sh", json!({"n": n})).await);
        }
        let id = written[1]["id"].as_str().unwrap().to_owned();
        app.update(&id, json!({"n": 10})).await;
        app.delete(&id).await;

        // What a user would get from the change log, the same fields.
        let log: Vec<Value> = app
            .data(
                "query($after: String) { changes(after: $after, collection: \"sh\") { nodes { cursor kind changedAt record { id collection version data } } } }",
                json!({"after": before}),
            )
            .await["changes"]["nodes"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(log.len(), 6);
        for (ws, expected) in [(&mut a, 6 + 5 + 5), (&mut b, 6 + 5)] {
            let mut got: std::collections::HashMap<&str, Vec<Value>> = Default::default();
            let mut count = 0;
            while count < expected {
                let msg = ws.recv().await;
                assert_eq!(msg["type"], "next", "{msg}");
                assert!(msg["payload"].get("errors").is_none(), "{msg}");
                let op = match msg["id"].as_str().unwrap() {
                    "replay" => "replay",
                    "live" => "live",
                    "bare" => "bare",
                    other => panic!("unknown operation {other}"),
                };
                got.entry(op)
                    .or_default()
                    .push(msg["payload"]["data"]["recordChanged"].clone());
                count += 1;
            }
            assert_eq!(got["replay"], log, "sharing {sharing}");
            assert_eq!(got["live"], log[1..], "sharing {sharing}");
            if let Some(bare) = got.get("bare") {
                let without: Vec<Value> = log[1..]
                    .iter()
                    .map(|c| {
                        let mut c = c.clone();
                        c["record"].as_object_mut().unwrap().remove("data");
                        c
                    })
                    .collect();
                assert_eq!(bare, &without, "sharing {sharing}");
            }
            ws.expect_silence().await;
        }
        let mut old = Vec::new();
        while old.len() < 6 {
            let msg = legacy.recv_skipping_ka().await;
            assert_eq!(msg["type"], "data", "{msg}");
            assert_eq!(msg["id"], "old", "{msg}");
            old.push(msg["payload"]["data"]["recordChanged"].clone());
        }
        assert_eq!(old, log, "sharing {sharing}");
    }
}
