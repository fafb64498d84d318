//! The round-trip rule: whatever a write accepts, every read path returns as it was
//! written. Hostile input that is refused is the corpus's business; this is about input
//! at the edges of what is valid (deep, large, odd keys, extreme numbers, every kind of
//! string), written over GraphQL and REST and read back over every transport.

use serde_json::{Value, json};

use super::super::helpers::{SseStream, TestApp, WsClient, spawn_app};

/// Data at the edges of what a write accepts.
fn edge_values() -> Vec<Value> {
    let mut deepest = json!({"leaf": true});
    for _ in 1..32 {
        deepest = json!({ "n": deepest });
    }
    vec![
        deepest,
        json!({}),
        json!({"s": "emoji \u{1F600}, RTL \u{202E}, controls \u{1}\u{1F}, separators \u{2028}\u{2029}, quote \" backslash \\ slash /"}),
        json!({"big": u64::MAX, "min": i64::MIN, "huge": 1.5e300, "tiny": 5e-324, "zero": 0, "half": 0.5}),
        json!({"": "empty key", "a.b": 1, "$where": 2, "key \"quoted\"": 3, "ключ": 4, "1": 5}),
        json!({"arr": [[], {}, null, true, false, "", [[[]]]], "nul": null}),
        json!({"pad": "x".repeat(60_000)}),
    ]
}

/// Every read path's view of record `id` (or of its only change), by name.
async fn reads(app: &TestApp, id: &str, after: &str) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let d = app
        .data(
            "query($id: UUID!) { record(id: $id) { data } }",
            json!({"id": id}),
        )
        .await;
    out.push(("GraphQL record", d["record"]["data"].clone()));
    let d = app
        .data(
            "query($id: UUID!) { records(filter: {ids: [$id]}) { nodes { data } } }",
            json!({"id": id}),
        )
        .await;
    out.push(("GraphQL records", d["records"]["nodes"][0]["data"].clone()));
    let d = app
        .data(
            "query($a: String) { changes(after: $a, first: 1) { nodes { record { data } } } }",
            json!({"a": after}),
        )
        .await;
    out.push((
        "GraphQL changes",
        d["changes"]["nodes"][0]["record"]["data"].clone(),
    ));
    let get = |path: String| async move {
        let resp = app.http.get(app.api(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json::<Value>().await.unwrap()
    };
    out.push((
        "REST record",
        get(format!("/records/{id}")).await["data"].clone(),
    ));
    let list = get("/records?limit=500".into()).await;
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(id))
        .cloned()
        .unwrap_or(Value::Null);
    out.push(("REST records", item["data"].clone()));
    let changes = get(format!("/changes?after={after}&limit=1")).await;
    out.push((
        "REST changes",
        changes["items"][0]["record"]["data"].clone(),
    ));
    // Replays: a WebSocket subscription and the REST event stream.
    let mut ws = WsClient::connect(app).await;
    ws.subscribe_changes("r", &format!("(after: \"{after}\")"))
        .await;
    out.push((
        "WebSocket replay",
        ws.next_change("r").await["record"]["data"].clone(),
    ));
    let resp = app
        .http
        .get(app.api(&format!("/changes/stream?after={after}")))
        .send()
        .await
        .unwrap();
    let mut sse = SseStream::new(resp);
    let event = sse.next().await.expect("an event");
    out.push(("SSE replay", event.json()["record"]["data"].clone()));
    out
}

#[tokio::test]
async fn what_a_write_accepts_every_read_path_returns() {
    let app = spawn_app().await;
    let mut failures = Vec::new();
    for (i, value) in edge_values().into_iter().enumerate() {
        for over in ["GraphQL", "REST"] {
            let after = app.head_cursor().await;
            let written = match over {
                "GraphQL" => {
                    app.data(
                        "mutation($d: JSON!) { createRecord(input: {collection: \"edge\", data: $d}) { id data } }",
                        json!({"d": value}),
                    )
                    .await["createRecord"]
                        .clone()
                }
                _ => app.rest_create("edge", value.clone()).await,
            };
            assert_eq!(
                written["data"], value,
                "value {i} over {over}: the write's answer"
            );
            let id = written["id"].as_str().unwrap().to_owned();
            for (path, read) in reads(&app, &id, &after).await {
                if read != value {
                    failures.push(format!(
                        "value {i} written over {over}, read by {path}: {read:.200}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
