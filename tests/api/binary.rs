//! The `recordsync` binary as an operator runs it: subcommands, logs, signals.

use std::time::Duration;

use super::helpers::binary::Server;
use super::helpers::{ARRIVE, TestDb, WsClient};
use serde_json::{Value, json};

#[tokio::test]
async fn schema_prints_the_sdl() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_recordsync"))
        .arg("schema")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let sdl = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "type Record {",
        "recordChanged(collection: String, id: UUID, kinds: [ChangeKind!], after: String): RecordChange!",
        "createRecord(input: CreateRecordInput!, idempotencyKey: String): Record!",
        "commitWrites(writes: [WriteInput!]!, idempotencyKey: String): WriteBatch!",
        "input WriteInput @oneOf {",
        "changeCursor: String!",
    ] {
        assert!(sdl.contains(needle), "{needle} missing from\n{sdl}");
    }
}

#[tokio::test]
async fn migrate_creates_the_database_and_exits() {
    let db = TestDb::sqlite();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_recordsync"))
        .args(["migrate", "--database-url", &db.url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = db.url.trim_start_matches("sqlite://");
    assert!(std::path::Path::new(path).exists());
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let db = TestDb::sqlite();
    let server = Server::start_with(&db.url, &["--log-format", "json"]).await;
    let resp = reqwest::Client::new()
        .post(server.graphql())
        .header("x-request-id", "req-42")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-42");
    // Without one, the server makes one up and returns it.
    let resp = reqwest::Client::new()
        .post(server.graphql())
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let deadline = tokio::time::Instant::now() + ARRIVE;
    loop {
        let lines = server.log.lock().unwrap().clone();
        let tagged: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .filter(|v| v["span"]["request_id"] == "req-42")
            .collect();
        if let Some(line) = tagged.first() {
            assert_eq!(line["span"]["path"], "/graphql");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no line with the request id: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigterm_closes_sockets_and_exits_cleanly() {
    let db = TestDb::sqlite();
    let mut server = Server::start(&db.url).await;
    let mut ws = WsClient::connect_url(&format!("ws://{}/graphql", server.addr)).await;
    ws.subscribe_changes("s", "").await;
    let pid = server.child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(ws.expect_close().await.0, 1001);
    let status = tokio::time::timeout(ARRIVE, server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
