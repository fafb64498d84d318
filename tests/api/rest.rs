//! The REST API under `/api`: CRUD with entity tags, paging, errors, the change log,
//! and REST writes reaching GraphQL subscribers.

use serde_json::{Value, json};

use super::helpers::{SseStream, TestApp, WsClient, spawn_app, spawn_app_with};

/// The `error.code` of a REST error body.
async fn error_code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.expect("JSON error body");
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {body}"))
        .to_owned()
}

fn etag(resp: &reqwest::Response) -> String {
    resp.headers()["etag"].to_str().unwrap().to_owned()
}

async fn record_url(app: &TestApp, record: &Value) -> String {
    app.api(&format!("/records/{}", record["id"].as_str().unwrap()))
}

#[tokio::test]
async fn create_answers_201_with_location_etag_and_the_record() {
    let app = spawn_app().await;
    let id = "7d4a3c7e-1b1e-4c55-9a39-2c5f0f0b9e11";
    let resp = app
        .http
        .post(app.api("/records"))
        .json(&json!({"id": id, "collection": "todos", "data": {"title": "milk", "done": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["location"], format!("/api/records/{id}"));
    assert_eq!(etag(&resp), "\"1\"");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["collection"], "todos");
    assert_eq!(body["data"], json!({"done": false, "title": "milk"}));
    assert_eq!(body["version"], 1);
    assert!(body["createdAt"].is_string() && body["updatedAt"].is_string());

    // The same record as GraphQL sees it.
    let d = app
        .data(
            "query($id: UUID!) { record(id: $id) { id collection data version createdAt updatedAt changeCursor } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(d["record"], body);

    // Without an id the server picks one.
    let other = app.rest_create("todos", json!({})).await;
    assert!(other["id"].as_str().unwrap().len() == 36);
}

#[tokio::test]
async fn get_answers_the_record_with_its_etag_and_304_when_unchanged() {
    let app = spawn_app().await;
    let r = app.rest_create("a", json!({"n": 1})).await;
    let url = record_url(&app, &r).await;
    let resp = app.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(etag(&resp), "\"1\"");
    assert_eq!(resp.json::<Value>().await.unwrap(), r);
    let cached = app
        .http
        .get(&url)
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    app.update(r["id"].as_str().unwrap(), json!({"n": 2})).await;
    let changed = app
        .http
        .get(&url)
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(etag(&changed), "\"2\"");
}

#[tokio::test]
async fn put_replaces_data_and_patch_applies_a_merge_patch() {
    let app = spawn_app().await;
    let r = app
        .rest_create("a", json!({"a": 1, "b": {"c": 2, "d": 3}}))
        .await;
    let url = record_url(&app, &r).await;
    let put = app
        .http
        .put(&url)
        .json(&json!({"data": {"a": 10, "b": {"c": 2, "d": 3}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(etag(&put), "\"2\"");
    let put: Value = put.json().await.unwrap();
    assert_eq!(put["data"], json!({"a": 10, "b": {"c": 2, "d": 3}}));
    assert_eq!(put["version"], 2);

    let patch = app
        .http
        .patch(&url)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"2\"")
        .body(json!({"b": {"d": null, "e": 5}, "f": [1]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(etag(&patch), "\"3\"");
    let patch: Value = patch.json().await.unwrap();
    assert_eq!(
        patch["data"],
        json!({"a": 10, "b": {"c": 2, "e": 5}, "f": [1]})
    );
    assert_eq!(patch["createdAt"], r["createdAt"]);

    // A patch that would leave data not an object is refused.
    let scalar = app
        .http
        .patch(&url)
        .header("content-type", "application/merge-patch+json")
        .body("5")
        .send()
        .await
        .unwrap();
    assert_eq!(scalar.status(), 400);
    assert_eq!(error_code(scalar).await, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let app = spawn_app().await;
    let r = app.rest_create("a", json!({"n": 1})).await;
    let url = record_url(&app, &r).await;
    app.update(r["id"].as_str().unwrap(), json!({"n": 2})).await;
    let before = app.all_changes().await;

    let attempts = [
        app.http.put(&url).json(&json!({"data": {"n": 3}})),
        app.http
            .patch(&url)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"n": 3}"#),
        app.http.delete(&url),
    ];
    for attempt in attempts {
        let resp = attempt.header("if-match", "\"1\"").send().await.unwrap();
        assert_eq!(resp.status(), 412);
        assert_eq!(etag(&resp), "\"2\"", "the current version comes back");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "VERSION_CONFLICT");
        assert_eq!(body["error"]["currentVersion"], 2);
    }
    // A tag that names no version, or only weak tags, never matches.
    for tag in ["\"abc\"", "W/\"2\""] {
        let resp = app
            .http
            .delete(&url)
            .header("if-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 412, "{tag}");
    }
    assert_eq!(app.all_changes().await, before);

    // The current version, alone or in a list, and `*` all match.
    for (tag, version) in [("\"2\"", 3), ("\"7\", \"3\"", 4), ("*", 5)] {
        let resp = app
            .http
            .put(&url)
            .header("if-match", tag)
            .json(&json!({"data": {"n": version}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{tag}");
        assert_eq!(etag(&resp), format!("\"{version}\""));
    }
    let bad = app
        .http
        .delete(&url)
        .header("if-match", "5")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "an unquoted tag is malformed");
}

#[tokio::test]
async fn delete_answers_the_last_state_and_then_the_record_is_404() {
    let app = spawn_app().await;
    let r = app.rest_create("a", json!({"n": 1})).await;
    let url = record_url(&app, &r).await;
    let resp = app
        .http
        .delete(&url)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The last state, with the delete's change cursor.
    let mut last = resp.json::<Value>().await.unwrap();
    assert_ne!(last["changeCursor"], r["changeCursor"]);
    last["changeCursor"] = r["changeCursor"].clone();
    assert_eq!(last, r);
    for resp in [
        app.http.get(&url).send().await.unwrap(),
        app.http.delete(&url).send().await.unwrap(),
        app.http
            .put(&url)
            .json(&json!({"data": {}}))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(resp.status(), 404);
        assert_eq!(error_code(resp).await, "NOT_FOUND");
    }
}

#[tokio::test]
async fn lists_page_with_limit_and_an_opaque_after() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.rest_create("list", json!({"i": i})).await);
    }
    app.rest_create("other", json!({})).await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("collection", "list".to_owned()), ("limit", "2".to_owned())];
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let page: Value = app
            .http
            .get(app.api("/records"))
            .query(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        assert!(page["changeCursor"].is_string());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);

    // Empty parameters count as absent: every collection.
    let all: Value = app
        .http
        .get(app.api("/records?collection=&limit=&after="))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
    assert_eq!(all["next"], Value::Null);
}

#[tokio::test]
async fn errors_carry_the_graphql_codes_and_fitting_statuses() {
    let app = spawn_app_with(|c| c.max_body_bytes = 2048).await;
    let r = app.rest_create("a", json!({})).await;
    let url = record_url(&app, &r).await;
    let records = app.api("/records");
    let json_post = |body: &str| {
        app.http
            .post(&records)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            app.http.get(app.api("/records/not-a-uuid")),
            400,
            "BAD_USER_INPUT",
        ),
        (
            app.http
                .get(app.api("/records/00000000-0000-0000-0000-000000000000")),
            404,
            "NOT_FOUND",
        ),
        (
            app.http
                .post(&records)
                .json(&json!({"id": r["id"], "collection": "a", "data": {}})),
            409,
            "ALREADY_EXISTS",
        ),
        (json_post("{not json"), 400, "BAD_USER_INPUT"),
        (json_post(r#"{"collection": "a"}"#), 400, "BAD_USER_INPUT"),
        (
            json_post(r#"{"collection": "a", "data": {}, "extra": 1}"#),
            400,
            "BAD_USER_INPUT",
        ),
        (
            json_post(r#"{"collection": "a", "data": [1]}"#),
            400,
            "BAD_USER_INPUT",
        ),
        (
            json_post(r#"{"collection": "no spaces", "data": {}}"#),
            400,
            "BAD_USER_INPUT",
        ),
        (
            json_post(&json!({"collection": "a", "data": {"s": "x".repeat(4096)}}).to_string()),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            app.http
                .post(&records)
                .header("content-type", "text/plain")
                .body(r#"{"collection": "a", "data": {}}"#),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            app.http
                .patch(&url)
                .header("content-type", "application/json-patch+json")
                .body("[]"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            app.http.get(app.api("/records?limit=501")),
            400,
            "BAD_USER_INPUT",
        ),
        (
            app.http.get(app.api("/records?limit=ten")),
            400,
            "BAD_USER_INPUT",
        ),
        (
            app.http.get(app.api("/records?after=garbage")),
            400,
            "BAD_USER_INPUT",
        ),
        (
            app.http.get(app.api("/changes?after=garbage")),
            400,
            "BAD_USER_INPUT",
        ),
        (app.http.get(app.api("/nothing/here")), 404, "NOT_FOUND"),
        (app.http.delete(&records), 405, "METHOD_NOT_ALLOWED"),
    ];
    for (req, status, code) in cases {
        let resp = req.send().await.unwrap();
        let url = resp.url().to_string();
        assert_eq!(resp.status(), status, "{url}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        assert_eq!(error_code(resp).await, code, "{url}");
    }
    // Nothing of that was written.
    assert_eq!(app.all_changes().await.len(), 1);
}

#[tokio::test]
async fn rest_writes_reach_graphql_subscribers() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "(collection: \"todos\")").await;
    app.wait_for_receivers(1).await;

    let r = app.rest_create("todos", json!({"title": "a"})).await;
    let url = record_url(&app, &r).await;
    let put = app
        .http
        .put(&url)
        .json(&json!({"data": {"title": "b"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let patch = app
        .http
        .patch(&url)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"done": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(app.http.delete(&url).send().await.unwrap().status(), 200);

    let events = ws.next_changes("s", 4).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["CREATED", "UPDATED", "UPDATED", "DELETED"]);
    assert_eq!(
        events[2]["record"]["data"],
        json!({"done": true, "title": "b"})
    );
    assert_eq!(events[3]["record"]["version"], 3);
    ws.expect_silence().await;
}

#[tokio::test]
async fn the_change_log_pages_for_polling_clients() {
    let app = spawn_app().await;
    let a = app.rest_create("a", json!({"n": 1})).await;
    app.rest_create("b", json!({"n": 2})).await;
    app.update(a["id"].as_str().unwrap(), json!({"n": 3})).await;

    let page: Value = app
        .http
        .get(app.api("/changes?collection=a&limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["kind"], "CREATED");
    assert_eq!(page["items"][0]["record"], a);
    assert_eq!(page["hasMore"], true);
    let next = page["next"].as_str().unwrap();
    let rest: Value = app
        .http
        .get(app.api("/changes"))
        .query(&[("collection", "a"), ("after", next)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["kind"], "UPDATED");
    assert_eq!(rest["hasMore"], false);
    // The cursors are the ones GraphQL hands out.
    let all = app.all_changes().await;
    assert_eq!(rest["items"][0]["cursor"], all[2]["cursor"]);

    // Polling again from `next` finds nothing new, until something happens.
    let idle: Value = app
        .http
        .get(app.api("/changes"))
        .query(&[("after", rest["next"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(idle["items"], json!([]));
}

#[tokio::test]
async fn the_change_stream_replays_then_goes_live_and_resumes_from_last_event_id() {
    let app = spawn_app().await;
    let start = app.head_cursor().await;
    let a = app.rest_create("a", json!({"n": 1})).await;
    app.rest_create("b", json!({"n": 2})).await;

    let resp = app
        .http
        .get(app.api("/changes/stream"))
        .query(&[("after", start.as_str()), ("collection", "a")])
        .send()
        .await
        .unwrap();
    let mut stream = SseStream::new(resp);
    let first = stream.next().await.unwrap();
    assert_eq!(first.name, "message");
    let change = first.json();
    assert_eq!(change["kind"], "CREATED");
    assert_eq!(change["record"], a);
    assert_eq!(first.id.as_deref(), change["cursor"].as_str());

    app.update(a["id"].as_str().unwrap(), json!({"n": 3})).await;
    let live = stream.next().await.unwrap();
    assert_eq!(live.json()["kind"], "UPDATED");
    drop(stream);

    // A reconnecting EventSource sends the last id it saw; it wins over `after`.
    app.update(a["id"].as_str().unwrap(), json!({"n": 4})).await;
    let resp = app
        .http
        .get(app.api("/changes/stream"))
        .query(&[("after", start.as_str()), ("collection", "a")])
        .header("last-event-id", live.id.unwrap())
        .send()
        .await
        .unwrap();
    let mut resumed = SseStream::new(resp);
    let missed = resumed.next().await.unwrap().json();
    assert_eq!(missed["record"]["data"], json!({"n": 4}));
    resumed.expect_silence().await;
}

#[tokio::test]
async fn an_expired_cursor_is_410_on_the_log_and_the_stream() {
    let app = spawn_app().await;
    let old = app.head_cursor().await;
    app.rest_create("a", json!({})).await;
    app.service.prune(std::time::Duration::ZERO).await.unwrap();
    for url in [
        app.api(&format!("/changes?after={old}")),
        app.api(&format!("/changes/stream?after={old}")),
    ] {
        let resp = app.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 410, "{url}");
        assert_eq!(error_code(resp).await, "CURSOR_EXPIRED");
    }
}
