//! Writes a client can retry and reconcile: write receipts (`changeCursor`),
//! idempotency keys, atomic batches and conflicts that carry the current record, over
//! GraphQL and REST, on the suite's backend.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::helpers::{SILENCE, TestApp, WsClient, error_code, spawn_app, spawn_app_with};

const RECORD: &str = "id collection data version changeCursor";

/// A GraphQL request's raw answer text and its JSON.
async fn gql_raw(
    app: &TestApp,
    auth: Option<&str>,
    query: &str,
    variables: Value,
) -> (String, Value) {
    let mut req = app
        .http
        .post(app.url())
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = auth {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let text = req.send().await.unwrap().text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap();
    (text, value)
}

fn create_doc() -> String {
    format!(
        "mutation($c: String!, $d: JSON!, $id: UUID, $k: String) {{ createRecord(input: {{id: $id, collection: $c, data: $d}}, idempotencyKey: $k) {{ {RECORD} }} }}"
    )
}

fn patch_doc() -> String {
    format!(
        "mutation($id: UUID!, $p: JSON!, $v: Int, $k: String) {{ patchRecord(id: $id, patch: $p, expectedVersion: $v, idempotencyKey: $k) {{ {RECORD} }} }}"
    )
}

/// A REST request with an optional `Idempotency-Key`: status, `Idempotent-Replayed`,
/// body text.
async fn rest(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, bool, String) {
    let mut req = app.http.request(method, app.api(path));
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (status, replayed, resp.text().await.unwrap())
}

#[tokio::test]
async fn every_answer_carries_the_cursor_of_the_change_that_made_it() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("all", "").await;
    app.wait_for_receivers(1).await;
    let created = app
        .data(&create_doc(), json!({"c": "todos", "d": {"n": 1}}))
        .await["createRecord"]
        .clone();
    let id = created["id"].as_str().unwrap().to_owned();
    let patched = app
        .data(&patch_doc(), json!({"id": id, "p": {"n": 2}}))
        .await["patchRecord"]
        .clone();
    let (status, _, text) = rest(
        &app,
        reqwest::Method::PUT,
        &format!("/records/{id}"),
        None,
        Some(json!({"data": {"n": 3}})),
    )
    .await;
    assert_eq!(status, 200);
    let replaced: Value = serde_json::from_str(&text).unwrap();
    let deleted = app
        .data(
            &format!("mutation($id: UUID!) {{ deleteRecord(id: $id) {{ {RECORD} }} }}"),
            json!({"id": id}),
        )
        .await["deleteRecord"]
        .clone();
    let events = ws.next_changes("all", 4).await;
    for (answer, event) in [&created, &patched, &replaced, &deleted]
        .iter()
        .zip(&events)
    {
        assert_eq!(
            answer["changeCursor"], event["cursor"],
            "{answer} vs {event}"
        );
        assert_eq!(event["record"]["version"], answer["version"]);
    }
    // A read shows the receipt of the version it shows, and `after` takes it.
    let other = app.create("todos", json!({"n": 9})).await;
    let event = ws.next_change("all").await;
    let read = app
        .data(
            "query($id: UUID!) { record(id: $id) { changeCursor } records { nodes { changeCursor } } }",
            json!({"id": other["id"]}),
        )
        .await;
    assert_eq!(read["record"]["changeCursor"], event["cursor"]);
    assert_eq!(read["records"]["nodes"][0]["changeCursor"], event["cursor"]);
    let mut late = WsClient::connect(&app).await;
    late.subscribe_changes(
        "l",
        &format!("(after: \"{}\")", created["changeCursor"].as_str().unwrap()),
    )
    .await;
    let replay = late.next_changes("l", 4).await;
    assert_eq!(replay[0]["cursor"], patched["changeCursor"]);
    assert_eq!(replay[3]["cursor"], event["cursor"]);
}

#[tokio::test]
async fn a_retry_with_the_same_key_answers_the_first_outcome_and_writes_nothing() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("all", "").await;
    app.wait_for_receivers(1).await;
    let vars = json!({"c": "todos", "d": {"title": "milk"}, "k": "create-1"});
    let (first, _) = gql_raw(&app, None, &create_doc(), vars.clone()).await;
    let (again, _) = gql_raw(&app, None, &create_doc(), vars.clone()).await;
    assert_eq!(first, again, "the same bytes");
    let id = serde_json::from_str::<Value>(&first).unwrap()["data"]["createRecord"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.next_change("all").await;
    ws.expect_silence().await;
    assert_eq!(app.all_changes().await.len(), 1);

    // Patch and delete, and REST: the same.
    let pv = json!({"id": id, "p": {"done": true}, "k": "patch-1"});
    let (p1, _) = gql_raw(&app, None, &patch_doc(), pv.clone()).await;
    let (p2, _) = gql_raw(&app, None, &patch_doc(), pv).await;
    assert_eq!(p1, p2);
    let path = format!("/records/{id}");
    let body = Some(json!({"data": {"title": "bread"}}));
    let (s1, r1, t1) = rest(
        &app,
        reqwest::Method::PUT,
        &path,
        Some("put-1"),
        body.clone(),
    )
    .await;
    let (s2, r2, t2) = rest(&app, reqwest::Method::PUT, &path, Some("put-1"), body).await;
    assert_eq!((s1, r1, s2, r2), (200, false, 200, true));
    assert_eq!(t1, t2);
    let (s1, _, t1) = rest(&app, reqwest::Method::DELETE, &path, Some("del-1"), None).await;
    let (s2, r2, t2) = rest(&app, reqwest::Method::DELETE, &path, Some("del-1"), None).await;
    assert_eq!((s1, s2, r2), (200, 200, true), "{t2}");
    assert_eq!(t1, t2, "the record's last state again, though it is gone");
    let (s1, _, t1) = rest(
        &app,
        reqwest::Method::POST,
        "/records",
        Some("post-1"),
        Some(json!({"collection": "todos", "data": {}})),
    )
    .await;
    let (s2, r2, t2) = rest(
        &app,
        reqwest::Method::POST,
        "/records",
        Some("post-1"),
        Some(json!({"collection": "todos", "data": {}})),
    )
    .await;
    assert_eq!((s1, s2, r2), (201, 201, true));
    assert_eq!(t1, t2);
    ws.next_changes("all", 4).await;
    ws.expect_silence().await;
    assert_eq!(app.all_changes().await.len(), 5);

    // A refusal is an outcome: it repeats even once the write would succeed.
    let missing = uuid::Uuid::new_v4();
    let pv = json!({"id": missing, "p": {"a": 1}, "k": "patch-missing"});
    let (t1, r) = gql_raw(&app, None, &patch_doc(), pv.clone()).await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    app.data(&create_doc(), json!({"c": "todos", "d": {}, "id": missing}))
        .await;
    let (t2, _) = gql_raw(&app, None, &patch_doc(), pv).await;
    assert_eq!(t1, t2);
    // The same key with another request is refused, and writes nothing.
    let before = app.all_changes().await.len();
    let other = json!({"c": "todos", "d": {"title": "other"}, "k": "create-1"});
    let (_, r) = gql_raw(&app, None, &create_doc(), other).await;
    assert_eq!(error_code(&r), "IDEMPOTENCY_KEY_REUSED", "{r}");
    let (status, _, text) = rest(
        &app,
        reqwest::Method::POST,
        "/records",
        Some("create-1"),
        Some(json!({"collection": "todos", "data": {}})),
    )
    .await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(app.all_changes().await.len(), before);
}

#[tokio::test]
async fn keys_are_checked_and_concurrent_retries_write_once() {
    let app = spawn_app().await;
    for bad in [
        String::new(),
        "k".repeat(256),
        "é".into(),
        "a\nb".into(),
        "tab\there".into(),
    ] {
        let (_, r) = gql_raw(
            &app,
            None,
            &create_doc(),
            json!({"c": "t", "d": {}, "k": bad}),
        )
        .await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{bad:?}: {r}");
    }
    let (status, _, _) = rest(
        &app,
        reqwest::Method::POST,
        "/records",
        Some(""),
        Some(json!({"collection": "t", "data": {}})),
    )
    .await;
    assert_eq!(status, 400);
    let ok = "k".repeat(255);
    let (_, r) = gql_raw(
        &app,
        None,
        &create_doc(),
        json!({"c": "t", "d": {}, "k": ok}),
    )
    .await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(app.all_changes().await.len(), 1);

    // Twenty clients send the same keyed request at once: one write, one outcome.
    let vars = json!({"c": "t", "d": {"race": true}, "k": "race-1"});
    let doc = create_doc();
    let answers =
        futures_util::future::join_all((0..20).map(|_| gql_raw(&app, None, &doc, vars.clone())))
            .await;
    assert!(
        answers.iter().all(|(t, _)| *t == answers[0].0),
        "{answers:?}"
    );
    assert!(answers[0].1.get("errors").is_none());
    assert_eq!(app.all_changes().await.len(), 2);
}

const SECRET: &str = "reconcile-secret-0123456789";

fn token(sub: Option<&str>, scope: &str) -> String {
    let mut claims = json!({"exp": chrono::Utc::now().timestamp() + 600, "scope": scope});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn keys_belong_to_their_caller_and_conflicts_show_what_the_caller_may_read() {
    let app = spawn_app_with(|c| c.jwt_secret = Some(SECRET.to_owned())).await;
    let (alice, bob) = (
        token(Some("alice"), "read write"),
        token(Some("bob"), "read write"),
    );
    let doc = create_doc();
    let (a, _) = gql_raw(
        &app,
        Some(&alice),
        &doc,
        json!({"c": "t", "d": {"who": "alice"}, "k": "same"}),
    )
    .await;
    let (b, _) = gql_raw(
        &app,
        Some(&bob),
        &doc,
        json!({"c": "t", "d": {"who": "bob"}, "k": "same"}),
    )
    .await;
    assert!(a.contains("alice") && b.contains("bob"), "{a} {b}");
    let (_, r) = gql_raw(
        &app,
        Some(&token(None, "read write")),
        &doc,
        json!({"c": "t", "d": {}, "k": "x"}),
    )
    .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");

    // Access is checked per write: one forbidden write refuses the batch.
    let limited = {
        let claims = json!({"exp": chrono::Utc::now().timestamp() + 600, "scope": "read write",
                            "sub": "carol", "collections": ["a"]});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let before = app.all_records_as(&alice).await;
    let writes = json!([
        {"create": {"collection": "a", "data": {}}},
        {"create": {"collection": "b", "data": {}}},
    ]);
    let (_, r) = gql_raw(&app, Some(&limited), &batch_doc(), json!({"w": writes})).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["index"], 1);
    assert_eq!(app.all_records_as(&alice).await, before);

    // A stale version: the current record for a reader, its version alone otherwise.
    let id = serde_json::from_str::<Value>(&a).unwrap()["data"]["createRecord"]["id"].clone();
    let vars = json!({"id": id, "p": {"n": 1}, "v": 7});
    let (_, r) = gql_raw(&app, Some(&alice), &patch_doc(), vars.clone()).await;
    let ext = &r["errors"][0]["extensions"];
    assert_eq!(ext["code"], "VERSION_CONFLICT");
    assert_eq!(ext["currentVersion"], 1);
    assert_eq!(ext["current"]["version"], 1);
    assert_eq!(ext["current"]["data"], json!({"who": "alice"}));
    assert!(ext["current"]["changeCursor"].is_string(), "{r}");
    let (_, r) = gql_raw(&app, Some(&token(Some("w"), "write")), &patch_doc(), vars).await;
    let ext = &r["errors"][0]["extensions"];
    assert_eq!(ext["currentVersion"], 1);
    assert!(ext.get("current").is_none(), "{r}");
    let resp = app
        .http
        .patch(app.api(&format!("/records/{}", id.as_str().unwrap())))
        .header("authorization", format!("Bearer {alice}"))
        .header("if-match", "\"7\"")
        .header("content-type", "application/merge-patch+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["current"]["data"],
        json!({"who": "alice"}),
        "{body}"
    );
}

fn batch_doc() -> String {
    format!(
        "mutation($w: [WriteInput!]!, $k: String) {{ commitWrites(writes: $w, idempotencyKey: $k) {{ records {{ {RECORD} }} changeCursor }} }}"
    )
}

#[tokio::test]
async fn a_batch_commits_whole_in_order_or_not_at_all() {
    let app = spawn_app_with(|c| c.max_batch_writes = 5).await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("all", "").await;
    app.wait_for_receivers(1).await;
    let id = uuid::Uuid::new_v4();
    let writes = json!([
        {"create": {"id": id, "collection": "forms", "data": {"a": 1}}},
        {"patch": {"id": id, "patch": {"b": 2}, "expectedVersion": 1}},
        {"create": {"collection": "forms", "data": {"c": 3}}},
    ]);
    let d = app.data(&batch_doc(), json!({"w": writes})).await["commitWrites"].clone();
    let records = d["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["data"], json!({"a": 1, "b": 2}));
    assert_eq!(records[1]["version"], 2);
    assert_eq!(d["changeCursor"], records[2]["changeCursor"]);
    let events = ws.next_changes("all", 3).await;
    for (r, e) in records.iter().zip(&events) {
        assert_eq!(r["changeCursor"], e["cursor"]);
    }

    // One refused write refuses the batch: its code and index, nothing written.
    let before = app.all_changes().await;
    let refused = json!([
        {"create": {"collection": "forms", "data": {"x": 1}}},
        {"update": {"id": id, "data": {}, "expectedVersion": 1}},
    ]);
    let (_, r) = gql_raw(&app, None, &batch_doc(), json!({"w": refused, "k": "b-1"})).await;
    assert_eq!(error_code(&r), "VERSION_CONFLICT", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["index"], 1);
    let (_, again) = gql_raw(&app, None, &batch_doc(), json!({"w": refused, "k": "b-1"})).await;
    assert_eq!(again, r, "the refusal repeats");
    let (status, _, text) = rest(
        &app,
        reqwest::Method::POST,
        "/batch",
        None,
        Some(json!({"writes": [
            {"delete": {"id": uuid::Uuid::new_v4()}},
        ]})),
    )
    .await;
    assert_eq!(status, 404, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["index"], 0);
    for writes in [
        json!([]),
        json!(
            (0..6)
                .map(|_| json!({"create": {"collection": "f", "data": {}}}))
                .collect::<Vec<_>>()
        ),
    ] {
        let (_, r) = gql_raw(&app, None, &batch_doc(), json!({"w": writes})).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    }
    assert_eq!(app.all_changes().await, before);
    ws.expect_silence().await;

    // Over REST, with a key: 200, the records and the cursor, replayed on retry.
    let body = json!({"writes": [
        {"delete": {"id": id, "expectedVersion": 2}},
        {"create": {"id": id, "collection": "forms", "data": {"again": true}}},
    ]});
    let (s1, _, t1) = rest(
        &app,
        reqwest::Method::POST,
        "/batch",
        Some("rb-1"),
        Some(body.clone()),
    )
    .await;
    let (s2, r2, t2) = rest(
        &app,
        reqwest::Method::POST,
        "/batch",
        Some("rb-1"),
        Some(body),
    )
    .await;
    assert_eq!((s1, s2, r2), (200, 200, true), "{t1}");
    assert_eq!(t1, t2);
    let answer: Value = serde_json::from_str(&t1).unwrap();
    assert_eq!(answer["records"][0]["version"], 2);
    assert_eq!(answer["records"][1]["version"], 1);
    assert_eq!(answer["changeCursor"], answer["records"][1]["changeCursor"]);
    assert_eq!(
        ws.next_changes("all", 2).await[1]["cursor"],
        answer["changeCursor"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reaches_subscribers_in_one_piece_between_other_writes() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("all", "").await;
    app.wait_for_receivers(1).await;
    let singles =
        futures_util::future::join_all((0..30).map(|n| app.create("noise", json!({"n": n}))));
    let doc = batch_doc();
    let batches = futures_util::future::join_all((0..5).map(|b| {
        let writes: Vec<Value> = (0..4)
            .map(|i| json!({"create": {"collection": "batch", "data": {"b": b, "i": i}}}))
            .collect();
        app.data(&doc, json!({"w": writes}))
    }));
    let _ = futures_util::join!(singles, batches);
    let events = ws.next_changes("all", 50).await;
    let mut i = 0;
    while i < events.len() {
        if events[i]["record"]["collection"] == "batch" {
            let b = &events[i]["record"]["data"]["b"];
            for k in 0..4 {
                assert_eq!(
                    &events[i + k]["record"]["data"]["b"],
                    b,
                    "batch {b} split at {}",
                    i + k
                );
                assert_eq!(events[i + k]["record"]["data"]["i"], k);
            }
            i += 4;
        } else {
            i += 1;
        }
    }
}

#[tokio::test]
async fn existing_records_get_their_receipt_from_the_log_or_the_pruned_point() {
    let db = super::helpers::TestDb::fresh().await;
    let app = super::helpers::spawn_on(db.clone(), |_| {}).await;
    let old = app.create("t", json!({"old": true})).await;
    app.service.prune(Duration::ZERO).await.unwrap();
    let pruned_at = app.head_cursor().await;
    let kept = app.create("t", json!({"kept": true})).await;
    let kept_cursor = app.all_changes().await[0]["cursor"].clone();
    let db = app.stop().await;
    // Back to the schema before receipts, then up again: the column is filled anew.
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    use migration::MigratorTrait;
    migration::Migrator::down(&conn, Some(1)).await.unwrap();
    conn.close().await.unwrap();
    let app = super::helpers::spawn_on(db, |_| {}).await;
    let read = |id: &Value| {
        let app = &app;
        let id = id.clone();
        async move {
            app.data(
                "query($id: UUID!) { record(id: $id) { changeCursor } }",
                json!({"id": id}),
            )
            .await["record"]["changeCursor"]
                .clone()
        }
    };
    assert_eq!(read(&kept["id"]).await, kept_cursor);
    assert_eq!(read(&old["id"]).await, json!(pruned_at));
    // Both are valid `after` positions.
    for after in [pruned_at, kept_cursor.as_str().unwrap().to_owned()] {
        let d = app
            .data(
                "query($a: String) { changes(after: $a) { nodes { cursor } } }",
                json!({"a": after}),
            )
            .await;
        assert!(d["changes"]["nodes"].is_array());
    }
    let _ = SILENCE;
}

impl TestApp {
    /// Every record's id, as a caller with `token` lists them.
    async fn all_records_as(&self, token: &str) -> Vec<Value> {
        let (_, r) = gql_raw(
            self,
            Some(token),
            "{ records(first: 500) { nodes { id } } }",
            json!({}),
        )
        .await;
        r["data"]["records"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn a_key_past_its_retention_is_forgotten_and_a_retry_runs_anew() {
    let app = spawn_app().await;
    let vars = json!({"c": "t", "d": {"n": 1}, "k": "old-key"});
    let (first, _) = gql_raw(&app, None, &create_doc(), vars.clone()).await;
    assert_eq!(
        app.service
            .prune_keys(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    let (again, _) = gql_raw(&app, None, &create_doc(), vars.clone()).await;
    assert_eq!(first, again);
    assert_eq!(app.service.prune_keys(Duration::ZERO).await.unwrap(), 1);
    let (anew, _) = gql_raw(&app, None, &create_doc(), vars).await;
    assert_ne!(first, anew, "a new record");
    assert_eq!(app.all_records().await.len(), 2);
}

#[tokio::test]
async fn retries_with_several_versions_in_if_match_and_conflicts_inside_a_batch() {
    let app = spawn_app().await;
    let r = app.rest_create("t", json!({"n": 0})).await;
    let path = format!("/records/{}", r["id"].as_str().unwrap());
    let send = |method: reqwest::Method| {
        app.http
            .request(method, app.api(&path))
            .header("idempotency-key", "multi")
            .header("if-match", "\"1\", \"2\"")
    };
    let first = send(reqwest::Method::PUT)
        .json(&json!({"data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let first = first.text().await.unwrap();
    // The record is at version 2 now, which the list also names: still the first outcome.
    let again = send(reqwest::Method::PUT)
        .json(&json!({"data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first);
    let del = |k: &'static str| {
        app.http
            .delete(app.api(&path))
            .header("idempotency-key", k)
            .header("if-match", "\"2\", \"3\"")
            .send()
    };
    let d1 = del("multi-del").await.unwrap();
    assert_eq!(d1.status(), 200);
    let d1 = d1.text().await.unwrap();
    let d2 = del("multi-del").await.unwrap();
    assert_eq!(d2.status(), 200, "the record is gone, the outcome is not");
    assert_eq!(d2.text().await.unwrap(), d1);

    // Two writes of one batch expecting the same version: the second conflicts with the
    // first, which is undone; the error shows the record as it is outside the batch.
    let r = app.rest_create("t", json!({"n": 0})).await;
    let (_, e) = gql_raw(
        &app,
        None,
        &batch_doc(),
        json!({"w": [
            {"patch": {"id": r["id"], "patch": {"a": 1}, "expectedVersion": 1}},
            {"patch": {"id": r["id"], "patch": {"b": 1}, "expectedVersion": 1}},
        ]}),
    )
    .await;
    let ext = &e["errors"][0]["extensions"];
    assert_eq!(ext["code"], "VERSION_CONFLICT", "{e}");
    assert_eq!(ext["index"], 1);
    assert_eq!(ext["currentVersion"], 1);
    assert_eq!(ext["current"]["data"], json!({"n": 0}));
    assert_eq!(ext["current"]["changeCursor"], r["changeCursor"]);
}

#[tokio::test]
async fn a_key_replayed_to_a_token_with_other_rights_is_refused() {
    let app = spawn_app_with(|c| c.jwt_secret = Some(SECRET.to_owned())).await;
    let broad = token(Some("dave"), "read write");
    let narrow = {
        let claims =
            json!({"exp": chrono::Utc::now().timestamp() + 600, "scope": "write", "sub": "dave"});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let vars = json!({"c": "t", "d": {"secret": 1}, "k": "dave-1"});
    let (_, first) = gql_raw(&app, Some(&broad), &create_doc(), vars.clone()).await;
    assert!(first.get("errors").is_none(), "{first}");
    let (_, other) = gql_raw(&app, Some(&narrow), &create_doc(), vars).await;
    assert_eq!(error_code(&other), "IDEMPOTENCY_KEY_REUSED", "{other}");
}
