//! The legacy `graphql-ws` subprotocol (subscriptions-transport-ws), frame by frame.

use std::time::Duration;

use serde_json::json;

use super::helpers::{WsClient, spawn_app, spawn_app_with};

const CHANGES: &str =
    "subscription { recordChanged(collection: \"a\") { kind record { data version } } }";

#[tokio::test]
async fn the_legacy_protocol_acks_keeps_alive_and_streams_data_until_stop() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect_legacy(&app).await;
    assert_eq!(ws.recv().await, json!({"type": "ka"}), "ka follows the ack");
    ws.send(json!({"type": "start", "id": "1", "payload": {"query": CHANGES}}))
        .await;
    app.wait_for_receivers(1).await;
    app.create("a", json!({"n": 1})).await;
    app.rest_create("a", json!({"n": 2})).await;
    for n in [1, 2] {
        let msg = ws.recv_skipping_ka().await;
        assert_eq!(msg["type"], "data", "{msg}");
        assert_eq!(msg["id"], "1");
        assert_eq!(
            msg["payload"]["data"]["recordChanged"]["record"]["data"],
            json!({"n": n})
        );
    }
    ws.send(json!({"type": "stop", "id": "1"})).await;
    assert_eq!(
        ws.recv_skipping_ka().await,
        json!({"type": "complete", "id": "1"})
    );
    app.create("a", json!({"n": 3})).await;
    ws.expect_silence().await;
}

#[tokio::test]
async fn queries_and_mutations_over_the_legacy_protocol_answer_data_then_complete() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect_legacy(&app).await;
    ws.send(json!({"type": "start", "id": "m", "payload": {
        "query": "mutation($d: JSON!) { createRecord(input: {collection: \"a\", data: $d}) { version data } }",
        "variables": {"d": {"x": 1}},
    }}))
    .await;
    let data = ws.recv_skipping_ka().await;
    assert_eq!(data["type"], "data");
    assert_eq!(
        data["payload"],
        json!({"data": {"createRecord": {"version": 1, "data": {"x": 1}}}})
    );
    assert_eq!(
        ws.recv_skipping_ka().await,
        json!({"type": "complete", "id": "m"})
    );
    ws.send(json!({"type": "start", "id": "q", "payload": {"query": "{ records { totalCount } }", "operationName": null}}))
        .await;
    let data = ws.recv_skipping_ka().await;
    assert_eq!(data["payload"]["data"]["records"]["totalCount"], 1);
}

#[tokio::test]
async fn request_errors_are_an_error_message_and_execution_errors_are_data() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect_legacy(&app).await;
    ws.send(json!({"type": "start", "id": "v", "payload": {"query": "subscription { recordChanged { nope } }"}}))
        .await;
    let msg = ws.recv_skipping_ka().await;
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["id"], "v");
    assert!(
        msg["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );

    ws.send(json!({"type": "start", "id": "x", "payload": {"query": "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }"}}))
        .await;
    let msg = ws.recv_skipping_ka().await;
    assert_eq!(msg["type"], "data", "{msg}");
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
    assert_eq!(
        ws.recv_skipping_ka().await,
        json!({"type": "complete", "id": "x"})
    );
}

#[tokio::test]
async fn start_before_connection_init_is_refused_with_error() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect_raw(&app, Some("graphql-ws")).await;
    ws.send(json!({"type": "start", "id": "1", "payload": {"query": "{ __typename }"}}))
        .await;
    let msg = ws.recv().await;
    assert_eq!(msg["type"], "error");
    assert_eq!(msg["id"], "1");
    assert!(app.service.broker().receivers() == 0);
}

#[tokio::test]
async fn a_start_with_an_id_in_use_replaces_that_operation() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect_legacy(&app).await;
    let head = app.head_cursor().await;
    let sub = |c: &str| {
        // From `head`, so the replacement sees every change whenever it starts.
        json!({"type": "start", "id": "1", "payload": {"query": format!("subscription {{ recordChanged(collection: \"{c}\", after: \"{head}\") {{ record {{ collection }} }} }}")}})
    };
    ws.send(sub("a")).await;
    app.wait_for_receivers(1).await;
    ws.send(sub("b")).await;
    // Messages are handled in order: once this answers, the replacement happened.
    ws.send(json!({"type": "start", "id": "sync", "payload": {"query": "{ __typename }"}}))
        .await;
    assert_eq!(ws.recv_skipping_ka().await["id"], "sync");
    assert_eq!(ws.recv_skipping_ka().await["type"], "complete");
    app.create("a", json!({})).await;
    app.create("b", json!({})).await;
    let msg = ws.recv_skipping_ka().await;
    assert_eq!(msg["id"], "1");
    assert_eq!(
        msg["payload"]["data"]["recordChanged"]["record"]["collection"],
        "b"
    );
    ws.expect_silence().await;
}

#[tokio::test]
async fn bad_messages_get_error_and_keep_the_connection() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect_legacy(&app).await;
    for bad in [
        "not json",
        "{\"type\": \"nope\", \"id\": \"7\"}",
        "[]",
        "{\"type\": \"start\", \"id\": \"1\"}",
    ] {
        ws.send_text(bad).await;
        let msg = ws.recv_skipping_ka().await;
        assert_eq!(msg["type"], "error", "{bad}: {msg}");
        assert!(msg["payload"]["message"].is_string(), "{msg}");
    }
    // Still usable.
    ws.send(json!({"type": "start", "id": "q", "payload": {"query": "{ __typename }"}}))
        .await;
    assert_eq!(ws.recv_skipping_ka().await["type"], "data");
}

#[tokio::test]
async fn connection_terminate_closes_the_socket_and_stops_its_subscriptions() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect_legacy(&app).await;
    assert_eq!(ws.recv().await["type"], "ka");
    ws.send(json!({"type": "start", "id": "1", "payload": {"query": CHANGES}}))
        .await;
    app.wait_for_receivers(1).await;
    ws.send(json!({"type": "connection_terminate"})).await;
    assert_eq!(ws.expect_close().await.0, 1000);
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    while app.service.broker().receivers() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "subscription kept");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_legacy_protocol_has_the_same_limits() {
    let app = spawn_app_with(|c| {
        c.ws_max_subscriptions = 1;
        c.ws_max_message_bytes = 4096;
        c.ws_init_timeout = Duration::from_millis(200);
    })
    .await;
    let mut ws = WsClient::connect_legacy(&app).await;
    ws.send(json!({"type": "start", "id": "1", "payload": {"query": CHANGES}}))
        .await;
    ws.send(json!({"type": "start", "id": "2", "payload": {"query": CHANGES}}))
        .await;
    let msg = ws.recv_skipping_ka().await;
    assert_eq!(msg["type"], "error");
    assert_eq!(msg["id"], "2");
    assert_eq!(
        msg["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );

    ws.send(json!({"type": "start", "id": "3", "payload": {"query": "{ __typename }", "variables": {"pad": "x".repeat(8192)}}}))
        .await;
    assert_eq!(ws.expect_close().await.0, 1009);

    let mut late = WsClient::connect_raw(&app, Some("graphql-ws")).await;
    assert_eq!(late.expect_close().await.0, 4408);
}

#[tokio::test]
async fn ka_arrives_every_keep_alive_interval() {
    let app = spawn_app_with(|c| c.keep_alive = Duration::from_millis(50)).await;
    let mut ws = WsClient::connect_legacy(&app).await;
    for _ in 0..4 {
        assert_eq!(ws.recv().await, json!({"type": "ka"}));
    }
}
