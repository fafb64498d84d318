use std::collections::HashMap;

use serde_json::{Value, json};

use super::helpers::{WsClient, cursors, spawn_app, spawn_on};

/// Runs `n` writes on collection `c` from a background task: creates, then updates
/// and deletes of what it created.
fn spawn_writer(url: String, c: &'static str, n: usize) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut live: Vec<String> = Vec::new();
        for i in 0..n {
            let (query, vars) = match (i % 5, live.len()) {
                (3, l) if l > 0 => (
                    "mutation($id: UUID!, $d: JSON!) { updateRecord(id: $id, data: $d) { id } }",
                    json!({"id": live[i % l], "d": {"i": i}}),
                ),
                (4, l) if l > 1 => (
                    "mutation($id: UUID!) { deleteRecord(id: $id) { id } }",
                    json!({"id": live.remove(i % l)}),
                ),
                _ => (
                    "mutation($c: String!, $d: JSON!) { createRecord(input: {collection: $c, data: $d}) { id } }",
                    json!({"c": c, "d": {"i": i}}),
                ),
            };
            let resp: Value = http
                .post(&url)
                .json(&json!({"query": query, "variables": vars}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(resp.get("errors").is_none(), "{resp}");
            if let Some(id) = resp["data"]["createRecord"]["id"].as_str() {
                live.push(id.to_owned());
            }
        }
    })
}

#[tokio::test]
async fn resuming_with_after_while_writes_continue_has_no_gap_and_no_duplicate() {
    let app = spawn_app().await;
    let start = app.head_cursor().await;
    let writer = spawn_writer(app.url(), "live", 200);

    // Read a little, drop the connection mid-stream, resume from the last cursor.
    let mut received = Vec::new();
    let mut after = start;
    for round in 0..4 {
        let mut ws = WsClient::connect(&app).await;
        ws.subscribe_changes("s", &format!("(collection: \"live\", after: \"{after}\")"))
            .await;
        let take = if round < 3 { 30 } else { 200 - received.len() };
        let got = ws.next_changes("s", take).await;
        after = got.last().unwrap()["cursor"].as_str().unwrap().to_owned();
        received.extend(got);
        if round == 3 {
            ws.expect_silence().await;
        }
    }
    writer.await.unwrap();
    assert_eq!(cursors(&received), cursors(&app.all_changes().await));
}

#[tokio::test]
async fn snapshot_then_subscribe_with_change_cursor_under_concurrent_writes() {
    let app = spawn_app().await;
    let writer = spawn_writer(app.url(), "snap", 300);
    // Let the writer get going so the snapshot lands mid-stream.
    while app.all_changes().await.len() < 40 {
        tokio::task::yield_now().await;
    }

    let page = app
        .data("{ records(collection: \"snap\", first: 500) { changeCursor nodes { id version data } } }", json!({}))
        .await;
    let mut state: HashMap<String, (i64, Value)> = page["records"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                (r["version"].as_i64().unwrap(), r["data"].clone()),
            )
        })
        .collect();
    let cursor = page["records"]["changeCursor"].as_str().unwrap().to_owned();
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", &format!("(collection: \"snap\", after: \"{cursor}\")"))
        .await;

    writer.await.unwrap();
    let head = app.head_cursor().await;
    loop {
        let ev = ws.next_change("s").await;
        let id = ev["record"]["id"].as_str().unwrap().to_owned();
        let version = ev["record"]["version"].as_i64().unwrap();
        match ev["kind"].as_str().unwrap() {
            "CREATED" => {
                assert!(!state.contains_key(&id), "created twice: {ev}");
                assert_eq!(version, 1);
                state.insert(id, (version, ev["record"]["data"].clone()));
            }
            "UPDATED" => {
                let (v, _) = state
                    .get(&id)
                    .unwrap_or_else(|| panic!("update of unknown record: {ev}"));
                assert_eq!(version, v + 1, "a version was skipped or repeated: {ev}");
                state.insert(id, (version, ev["record"]["data"].clone()));
            }
            "DELETED" => {
                let (v, _) = state
                    .remove(&id)
                    .unwrap_or_else(|| panic!("delete of unknown record: {ev}"));
                assert_eq!(version, v);
            }
            other => panic!("unknown kind {other}"),
        }
        if ev["cursor"] == head {
            break;
        }
    }
    ws.expect_silence().await;
    let server: HashMap<String, (i64, Value)> = app
        .all_records()
        .await
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                (r["version"].as_i64().unwrap(), r["data"].clone()),
            )
        })
        .collect();
    assert_eq!(state, server, "the client's replica matches the server");
}

#[tokio::test]
async fn a_cursor_survives_a_server_restart() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    app.create("a", json!({"n": 1})).await;
    let seen = ws.next_change("s").await;
    app.create("a", json!({"n": 2})).await;
    app.create("a", json!({"n": 3})).await;
    ws.next_changes("s", 2).await;

    let db = app.stop().await;
    assert_eq!(ws.expect_close().await.0, 1001, "a clean close on shutdown");

    let app = spawn_on(db, |_| {}).await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes(
        "s",
        &format!("(after: \"{}\")", seen["cursor"].as_str().unwrap()),
    )
    .await;
    let replay = ws.next_changes("s", 2).await;
    assert_eq!(replay[0]["record"]["data"], json!({"n": 2}));
    assert_eq!(replay[1]["record"]["data"], json!({"n": 3}));
    app.create("a", json!({"n": 4})).await;
    assert_eq!(ws.next_change("s").await["record"]["data"], json!({"n": 4}));
}
