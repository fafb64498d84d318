//! The `graphql-transport-ws` protocol's rules, frame by frame.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::helpers::{WsClient, spawn_app, spawn_app_with};

#[tokio::test]
async fn subscribe_before_connection_ack_closes_4401() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect_raw(&app, Some("graphql-transport-ws")).await;
    ws.subscribe_changes("s", "").await;
    assert_eq!(ws.expect_close().await.0, 4401);
}

#[tokio::test]
async fn a_second_connection_init_closes_4429() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.expect_close().await.0, 4429);
}

#[tokio::test]
async fn no_connection_init_in_time_closes_4408() {
    let app = spawn_app_with(|c| c.ws_init_timeout = Duration::from_millis(200)).await;
    let mut ws = WsClient::connect_raw(&app, Some("graphql-transport-ws")).await;
    assert_eq!(ws.expect_close().await.0, 4408);
}

#[tokio::test]
async fn a_duplicate_operation_id_closes_4409() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("same", "").await;
    ws.subscribe_changes("same", "").await;
    let (code, reason) = ws.expect_close().await;
    assert_eq!(code, 4409);
    assert!(reason.contains("same"), "{reason}");
}

#[tokio::test]
async fn malformed_messages_close_4400() {
    let app = spawn_app().await;
    for bad in [
        "not json",
        "{\"type\": \"nope\"}",
        "{\"id\": \"1\"}",
        "{\"type\": \"subscribe\", \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": 7}",
        "{\"type\": \"subscribe\", \"id\": 1, \"payload\": {\"query\": \"{ __typename }\"}}",
        "[]",
        "{\"type\": \"connection_init\", \"payload\": 5}",
    ] {
        let mut ws = WsClient::connect_raw(&app, Some("graphql-transport-ws")).await;
        if !bad.contains("connection_init") {
            ws.send(json!({"type": "connection_init"})).await;
            assert_eq!(ws.recv().await["type"], "connection_ack");
        }
        ws.send_text(bad).await;
        assert_eq!(ws.expect_close().await.0, 4400, "{bad}");
    }
    // The server is fine afterwards.
    app.create("a", json!({})).await;
}

#[tokio::test]
async fn a_client_without_the_subprotocol_is_closed_with_4406() {
    // A client offering only other subprotocols fails its own handshake, since the
    // server selects none; one offering none at all is accepted and told why.
    let app = spawn_app().await;
    let mut ws = WsClient::connect_raw(&app, None).await;
    assert_eq!(
        ws.expect_close().await,
        (4406, "Subprotocol not acceptable".to_owned())
    );
}

#[tokio::test]
async fn ping_gets_pong_with_its_payload() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.send(json!({"type": "ping", "payload": {"t": 1}})).await;
    assert_eq!(
        ws.recv().await,
        json!({"type": "pong", "payload": {"t": 1}})
    );
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}));
    ws.send(json!({"type": "pong"})).await;
    ws.expect_silence().await;
}

#[tokio::test]
async fn complete_from_the_client_stops_the_subscription() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    app.create("a", json!({})).await;
    ws.next_change("s").await;
    ws.send(json!({"type": "complete", "id": "s"})).await;
    // The id may be reused once completed.
    tokio::time::timeout(super::helpers::ARRIVE, async {
        while app.service.broker().receivers() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("subscription dropped");
    app.create("a", json!({})).await;
    ws.expect_silence().await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    app.create("a", json!({"again": true})).await;
    assert_eq!(
        ws.next_change("s").await["record"]["data"],
        json!({"again": true})
    );
}

#[tokio::test]
async fn validation_errors_answer_with_an_error_message() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe("v", "subscription { recordChanged { nope } }", json!({}))
        .await;
    let msg = ws.recv().await;
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["id"], "v");
    assert!(
        msg["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope"),
        "{msg}"
    );
    ws.subscribe("p", "subscription {", json!({})).await;
    assert_eq!(ws.recv().await["type"], "error");
}

#[tokio::test]
async fn operations_per_connection_are_limited() {
    let app = spawn_app_with(|c| c.ws_max_subscriptions = 2).await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("1", "").await;
    ws.subscribe_changes("2", "").await;
    ws.subscribe_changes("3", "").await;
    let msg = ws.recv().await;
    assert_eq!(msg["type"], "error");
    assert_eq!(msg["id"], "3");
    assert_eq!(
        msg["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    app.wait_for_receivers(2).await;
    app.create("a", json!({})).await;
    let mut ids = vec![ws.recv().await["id"].clone(), ws.recv().await["id"].clone()];
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(ids, vec![json!("1"), json!("2")]);
}

#[tokio::test]
async fn an_oversized_message_closes_1009() {
    let app = spawn_app_with(|c| c.ws_max_message_bytes = 4096).await;
    let mut ws = WsClient::connect(&app).await;
    ws.send(json!({"type": "ping", "payload": {"x": "y".repeat(8192)}}))
        .await;
    assert_eq!(ws.expect_close().await.0, 1009);
    app.create("a", json!({})).await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    app.stop().await;
    assert_eq!(
        ws.expect_close().await,
        (1001, "server shutting down".to_owned())
    );
}

#[tokio::test]
async fn the_server_pings_idle_connections() {
    let app = spawn_app_with(|c| c.keep_alive = Duration::from_millis(50)).await;
    let mut ws = WsClient::connect(&app).await;
    let mut pings = 0;
    while pings < 3 {
        match ws.next_frame().await {
            Some(Message::Ping(_)) => pings += 1,
            other => panic!("expected a ping, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_answers_pings_outlives_the_dead_timeout() {
    let app = spawn_app_with(|c| {
        c.keep_alive = Duration::from_millis(50);
        c.ws_dead_timeout = Duration::from_millis(200);
    })
    .await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    // Reading answers the server's pings (the WebSocket layer sends the pongs).
    for _ in 0..3 {
        ws.expect_silence().await;
    }
    app.create("a", json!({})).await;
    assert_eq!(ws.next_change("s").await["kind"], "CREATED");
}

#[tokio::test]
async fn a_client_that_stops_answering_is_dropped_with_its_subscriptions() {
    let app = spawn_app_with(|c| {
        c.keep_alive = Duration::from_millis(50);
        c.ws_dead_timeout = Duration::from_millis(200);
    })
    .await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    // The client reads nothing from here on, so it answers no ping.
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    while app.service.broker().receivers() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead connection was kept"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(ws);
}

#[tokio::test]
async fn messages_larger_than_the_read_buffer_still_arrive() {
    let app = spawn_app_with(|c| c.ws_read_buffer_bytes = 1024).await;
    let mut ws = WsClient::connect(&app).await;
    let blob = "x".repeat(50_000);
    ws.subscribe(
        "m",
        "mutation($d: JSON!) { createRecord(input: {collection: \"big\", data: $d}) { version } }",
        json!({"d": {"blob": blob}}),
    )
    .await;
    let next = ws.recv().await;
    assert_eq!(
        next["payload"]["data"]["createRecord"]["version"], 1,
        "{next}"
    );
}
