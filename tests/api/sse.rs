//! GraphQL over server-sent events (graphql-sse, distinct connections mode): streams
//! that deliver, resume, stay bounded, keep alive and end at shutdown.

use std::time::Duration;

use serde_json::{Value, json};

use super::helpers::{ARRIVE, SseStream, TestApp, spawn_app, spawn_app_with};

const CHANGES: &str = "subscription($after: String, $c: String) { recordChanged(collection: $c, after: $after) { cursor kind record { id data version } } }";

/// POSTs an operation asking for an event stream.
async fn sse_post(app: &TestApp, query: &str, variables: Value) -> reqwest::Response {
    app.http
        .post(app.url())
        .header("accept", "text/event-stream")
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_subscription_over_sse_receives_changes_made_through_graphql_and_rest() {
    let app = spawn_app().await;
    let mut stream = SseStream::new(sse_post(&app, CHANGES, json!({"c": "todos"})).await);
    app.wait_for_receivers(1).await;
    let r = app.create("todos", json!({"via": "graphql"})).await;
    app.rest_create("todos", json!({"via": "rest"})).await;
    app.rest_create("other", json!({})).await;
    app.delete(r["id"].as_str().unwrap()).await;

    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(stream.next_result().await["data"]["recordChanged"].clone());
    }
    assert_eq!(got[0]["record"]["data"], json!({"via": "graphql"}));
    assert_eq!(got[1]["record"]["data"], json!({"via": "rest"}));
    assert_eq!(got[2]["kind"], "DELETED");
    stream.expect_silence().await;
}

#[tokio::test]
async fn an_sse_subscription_resumes_with_after_and_works_over_get() {
    let app = spawn_app().await;
    let start = app.head_cursor().await;
    for n in 0..3 {
        app.create("a", json!({"n": n})).await;
    }
    let resp = app
        .http
        .get(app.url())
        .header("accept", "text/event-stream")
        .query(&[
            ("query", CHANGES),
            ("variables", &json!({"after": start}).to_string()),
        ])
        .send()
        .await
        .unwrap();
    let mut stream = SseStream::new(resp);
    let mut cursors = Vec::new();
    for n in 0..3 {
        let change = stream.next_result().await["data"]["recordChanged"].clone();
        assert_eq!(change["record"]["data"], json!({"n": n}));
        cursors.push(change["cursor"].as_str().unwrap().to_owned());
    }
    drop(stream);

    // A client that lost its stream resubscribes after the last cursor it saw.
    app.create("a", json!({"n": 3})).await;
    let mut again = SseStream::new(sse_post(&app, CHANGES, json!({"after": cursors[2]})).await);
    let change = again.next_result().await["data"]["recordChanged"].clone();
    assert_eq!(change["record"]["data"], json!({"n": 3}));
    again.expect_silence().await;
}

#[tokio::test]
async fn queries_and_mutations_over_sse_are_one_next_then_complete() {
    let app = spawn_app().await;
    let mut stream = SseStream::new(
        sse_post(
            &app,
            "mutation { createRecord(input: {collection: \"a\", data: {n: 1}}) { version } }",
            json!({}),
        )
        .await,
    );
    assert_eq!(
        stream.next_result().await,
        json!({"data": {"createRecord": {"version": 1}}})
    );
    let complete = stream.next().await.expect("complete");
    assert_eq!(complete.name, "complete");
    assert_eq!(stream.next().await, None, "the stream ends");
}

#[tokio::test]
async fn request_errors_over_sse_are_a_next_with_errors_then_complete() {
    // "Validation steps that run before execution of the GraphQL operation MUST report
    // errors through an accepted SSE connection by emitting next events".
    let app = spawn_app().await;
    let mut stream =
        SseStream::new(sse_post(&app, "subscription { recordChanged { nope } }", json!({})).await);
    let result = stream.next_result().await;
    assert!(result.get("data").is_none(), "{result}");
    assert!(
        result["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    assert_eq!(stream.next().await.unwrap().name, "complete");

    // An expired or garbage cursor is an execution error with its code.
    let mut stream = SseStream::new(sse_post(&app, CHANGES, json!({"after": "garbage"})).await);
    let result = stream.next_result().await;
    assert_eq!(result["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(stream.next().await.unwrap().name, "complete");

    // A request that is not GraphQL at all is refused before any stream.
    let resp = app
        .http
        .post(app.url())
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_mutation_over_an_sse_get_is_405() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url())
        .header("accept", "text/event-stream")
        .query(&[(
            "query",
            "mutation { createRecord(input: {collection: \"a\", data: {}}) { id } }",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(app.all_records().await.is_empty());
}

#[tokio::test]
async fn idle_streams_carry_keep_alive_comments() {
    let app = spawn_app_with(|c| c.keep_alive = Duration::from_millis(50)).await;
    let mut stream = SseStream::new(sse_post(&app, CHANGES, json!({})).await);
    stream.expect_silence().await;
    assert!(stream.comments >= 3, "{} comments", stream.comments);
}

#[tokio::test]
async fn event_streams_are_limited_and_a_closed_stream_frees_its_place() {
    let app = spawn_app_with(|c| {
        c.sse_max_streams = 1;
        c.keep_alive = Duration::from_millis(20);
    })
    .await;
    let first = SseStream::new(sse_post(&app, CHANGES, json!({})).await);
    let refused = sse_post(&app, CHANGES, json!({})).await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    let rest = app
        .http
        .get(app.api("/changes/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 429, "the REST stream counts too");

    // The server notices the closed connection at its next keep-alive.
    drop(first);
    let deadline = tokio::time::Instant::now() + ARRIVE;
    loop {
        let resp = sse_post(&app, CHANGES, json!({})).await;
        if resp.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "place never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn streams_end_when_the_server_shuts_down() {
    let app = spawn_app().await;
    let mut graphql = SseStream::new(sse_post(&app, CHANGES, json!({})).await);
    let mut rest = SseStream::new(
        app.http
            .get(app.api("/changes/stream"))
            .send()
            .await
            .unwrap(),
    );
    app.wait_for_receivers(2).await;
    tokio::time::timeout(ARRIVE, app.stop())
        .await
        .expect("shutdown does not wait for open streams");
    assert_eq!(graphql.next().await, None);
    assert_eq!(rest.next().await, None);
}

#[tokio::test]
async fn a_stream_that_is_not_read_does_not_buffer_and_later_misses_nothing() {
    // A tiny live buffer: a stream whose reader stalls falls behind the live changes
    // almost at once. The body is pulled by the socket, so the server holds back
    // rather than queueing, and the stream catches up from the change log later.
    let app = spawn_app_with(|c| c.live_buffer = 4).await;
    let after = app.head_cursor().await;
    let mut stream = SseStream::new(sse_post(&app, CHANGES, json!({"after": after})).await);
    app.wait_for_receivers(1).await;

    // Far more than socket buffers hold, written while the reader reads nothing.
    let blob = "x".repeat(48 * 1024);
    let total = 400;
    for i in 0..total {
        app.create("big", json!({"i": i, "blob": blob})).await;
    }
    let mut order = Vec::new();
    for _ in 0..total {
        let change = stream.next_result().await["data"]["recordChanged"].clone();
        order.push(change["record"]["data"]["i"].as_i64().unwrap());
    }
    assert_eq!(order, (0..total as i64).collect::<Vec<_>>());
    stream.expect_silence().await;
    let catch_ups = app
        .service
        .broker()
        .stats()
        .catch_ups
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        catch_ups > 0,
        "the stream should have caught up from the log"
    );
}
