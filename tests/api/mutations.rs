use serde_json::json;

use super::helpers::{WsClient, cursors, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn create_returns_the_record_at_version_1() {
    let app = spawn_app().await;
    let r = app
        .create("todos", json!({"title": "milk", "done": false}))
        .await;
    assert_eq!(r["collection"], "todos");
    assert_eq!(r["data"], json!({"title": "milk", "done": false}));
    assert_eq!(r["version"], 1);
    assert_eq!(r["createdAt"], r["updatedAt"]);
    assert!(uuid::Uuid::parse_str(r["id"].as_str().unwrap()).is_ok());

    let got = app
        .data(
            "query($id: UUID!) { record(id: $id) { id data version } }",
            json!({"id": r["id"]}),
        )
        .await;
    assert_eq!(got["record"]["data"], r["data"]);
}

#[tokio::test]
async fn create_with_a_taken_id_is_already_exists_and_changes_nothing() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4().to_string();
    let q = "mutation($id: UUID, $d: JSON!) { createRecord(input: {id: $id, collection: \"a\", data: $d}) { id } }";
    let first = app.data(q, json!({"id": id, "d": {"n": 1}})).await;
    assert_eq!(first["createRecord"]["id"], id);
    let again = app.gql(q, json!({"id": id, "d": {"n": 2}})).await;
    assert_eq!(error_code(&again), "ALREADY_EXISTS", "{again}");
    assert_eq!(app.all_records().await[0]["data"], json!({"n": 1}));
    assert_eq!(app.all_changes().await.len(), 1);
}

#[tokio::test]
async fn invalid_collections_and_non_object_data_are_bad_user_input() {
    let app = spawn_app().await;
    let q = "mutation($c: String!, $d: JSON!) { createRecord(input: {collection: $c, data: $d}) { id } }";
    for (collection, data) in [
        ("", json!({})),
        ("has space", json!({})),
        ("x".repeat(65).as_str(), json!({})),
        ("drop;table", json!({})),
        ("ok", json!([1, 2])),
        ("ok", json!("text")),
        ("ok", json!(42)),
    ] {
        let resp = app.gql(q, json!({"c": collection, "d": data})).await;
        assert_eq!(
            error_code(&resp),
            "BAD_USER_INPUT",
            "{collection:?} {data}: {resp}"
        );
    }
    // The longest valid name and every allowed character.
    let ok = app
        .gql(
            q,
            json!({"c": format!("A-z_0.9{}", "x".repeat(57)), "d": {}}),
        )
        .await;
    assert!(ok.get("errors").is_none(), "{ok}");
    assert_eq!(app.all_records().await.len(), 1);
    assert_eq!(app.all_changes().await.len(), 1);
}

#[tokio::test]
async fn data_over_the_size_limit_is_bad_user_input() {
    let app = spawn_app_with(|c| c.max_data_bytes = 1024).await;
    let q = "mutation($d: JSON!) { createRecord(input: {collection: \"a\", data: $d}) { id } }";
    let big = app.gql(q, json!({"d": {"s": "x".repeat(1100)}})).await;
    assert_eq!(error_code(&big), "BAD_USER_INPUT", "{big}");
    let small = app.create("a", json!({"s": "x".repeat(900)})).await;
    let grow = app
        .gql(
            "mutation($id: UUID!) { patchRecord(id: $id, patch: {t: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}) { version } }",
            json!({"id": small["id"]}),
        )
        .await;
    assert_eq!(error_code(&grow), "BAD_USER_INPUT", "{grow}");
    assert_eq!(app.all_records().await[0]["version"], 1);
}

#[tokio::test]
async fn update_replaces_data_and_bumps_the_version() {
    let app = spawn_app().await;
    let r = app.create("a", json!({"keep": 1, "drop": 2})).await;
    let u = app
        .update(r["id"].as_str().unwrap(), json!({"keep": 3}))
        .await;
    assert_eq!(u["data"], json!({"keep": 3}));
    assert_eq!(u["version"], 2);
}

#[tokio::test]
async fn patch_applies_a_json_merge_patch() {
    let app = spawn_app().await;
    let r = app
        .create(
            "a",
            json!({"title": "x", "tags": ["a"], "meta": {"a": 1, "b": 2}}),
        )
        .await;
    let p = app
        .data(
            "mutation($id: UUID!, $p: JSON!) { patchRecord(id: $id, patch: $p, expectedVersion: 1) { data version } }",
            json!({"id": r["id"], "p": {"title": null, "tags": ["b"], "meta": {"b": null, "c": 3}}}),
        )
        .await;
    assert_eq!(
        p["patchRecord"]["data"],
        json!({"tags": ["b"], "meta": {"a": 1, "c": 3}})
    );
    assert_eq!(p["patchRecord"]["version"], 2);

    // A patch that is not an object would replace the data with a non-object.
    let bad = app
        .gql(
            "mutation($id: UUID!) { patchRecord(id: $id, patch: [1]) { version } }",
            json!({"id": r["id"]}),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
}

#[tokio::test]
async fn delete_returns_the_last_state_and_the_record_is_gone() {
    let app = spawn_app().await;
    let r = app.create("a", json!({"n": 1})).await;
    let id = r["id"].as_str().unwrap();
    app.update(id, json!({"n": 2})).await;
    let d = app.delete(id).await;
    assert_eq!(d["data"], json!({"n": 2}));
    assert_eq!(d["version"], 2);
    let got = app
        .data(
            "query($id: UUID!) { record(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(got["record"], json!(null));
    let again = app
        .gql(
            "mutation($id: UUID!) { deleteRecord(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND");
}

#[tokio::test]
async fn writes_to_a_missing_record_are_not_found() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    for q in [
        "mutation($id: UUID!) { updateRecord(id: $id, data: {}) { id } }",
        "mutation($id: UUID!) { patchRecord(id: $id, patch: {}) { id } }",
        "mutation($id: UUID!) { deleteRecord(id: $id) { id } }",
    ] {
        let resp = app.gql(q, json!({"id": id})).await;
        assert_eq!(error_code(&resp), "NOT_FOUND", "{q}: {resp}");
    }
    assert!(app.all_changes().await.is_empty());
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_that_changes_and_publishes_nothing() {
    let app = spawn_app().await;
    let r = app.create("a", json!({"n": 1})).await;
    let id = r["id"].as_str().unwrap().to_owned();
    app.update(&id, json!({"n": 2})).await;

    let mut ws = WsClient::connect(&app).await;
    let head = app
        .data("{ records(first: 0) { changeCursor } }", json!({}))
        .await;
    let after = head["records"]["changeCursor"].as_str().unwrap().to_owned();
    ws.subscribe_changes("s", &format!("(after: \"{after}\")"))
        .await;

    for q in [
        "mutation($id: UUID!) { updateRecord(id: $id, data: {n: 9}, expectedVersion: 1) { id } }",
        "mutation($id: UUID!) { patchRecord(id: $id, patch: {n: 9}, expectedVersion: 1) { id } }",
        "mutation($id: UUID!) { deleteRecord(id: $id, expectedVersion: 1) { id } }",
    ] {
        let resp = app.gql(q, json!({"id": id})).await;
        assert_eq!(error_code(&resp), "VERSION_CONFLICT", "{resp}");
        assert_eq!(
            resp["errors"][0]["extensions"]["currentVersion"], 2,
            "{resp}"
        );
    }
    ws.expect_silence().await;
    let records = app.all_records().await;
    assert_eq!(records[0]["data"], json!({"n": 2}));
    assert_eq!(records[0]["version"], 2);
    assert_eq!(app.all_changes().await.len(), 2);

    // The right version goes through, and it is the next event.
    let ok = app
        .data("mutation($id: UUID!) { updateRecord(id: $id, data: {n: 3}, expectedVersion: 2) { version } }", json!({"id": id}))
        .await;
    assert_eq!(ok["updateRecord"]["version"], 3);
    let ev = ws.next_change("s").await;
    assert_eq!(ev["record"]["data"], json!({"n": 3}));
}

#[tokio::test]
async fn every_write_appends_one_change_with_the_state_after_it() {
    let app = spawn_app().await;
    let r = app.create("a", json!({"n": 1})).await;
    let id = r["id"].as_str().unwrap();
    app.update(id, json!({"n": 2})).await;
    app.data(
        "mutation($id: UUID!) { patchRecord(id: $id, patch: {m: 1}) { id } }",
        json!({"id": id}),
    )
    .await;
    app.delete(id).await;
    let log = app.all_changes().await;
    let summary: Vec<_> = log
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["record"]["version"].clone(),
                c["record"]["data"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("CREATED".into(), json!(1), json!({"n": 1})),
            ("UPDATED".into(), json!(2), json!({"n": 2})),
            ("UPDATED".into(), json!(3), json!({"m": 1, "n": 2})),
            ("DELETED".into(), json!(3), json!({"m": 1, "n": 2})),
        ]
    );
    let cursors = super::helpers::cursors(&log);
    let mut unique = cursors.clone();
    unique.dedup();
    assert_eq!(unique.len(), 4);
}

#[tokio::test]
async fn concurrent_writes_each_succeed_or_fail_alone_and_reach_the_log_in_order() {
    // Writes that arrive together are committed together; each must still get its own
    // answer, and a refused one must leave the others and the log untouched.
    let app = spawn_app().await;
    let r = app.create("g", json!({"n": 0})).await;
    let taken = r["id"].as_str().unwrap().to_owned();
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", &format!("(after: \"{}\")", app.head_cursor().await))
        .await;
    app.wait_for_receivers(1).await;

    let patch = "mutation($id: UUID!, $n: Int!) { patchRecord(id: $id, patch: {n: $n}, expectedVersion: 1) { version } }";
    let create = "mutation($id: UUID, $d: JSON!) { createRecord(input: {id: $id, collection: \"g\", data: $d}) { id } }";
    let mut requests = Vec::new();
    for i in 0..30 {
        requests.push((patch, json!({"id": taken, "n": i + 1})));
        requests.push((create, json!({"d": {"i": i}})));
        requests.push((create, json!({"id": taken, "d": {"dup": i}})));
        requests.push((create, json!({"d": [i]})));
    }
    let answers =
        futures_util::future::join_all(requests.iter().map(|(q, v)| app.gql(q, v.clone()))).await;

    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for answer in &answers {
        let code = if answer.get("errors").is_some() {
            error_code(answer).to_owned()
        } else {
            "ok".to_owned()
        };
        *codes.entry(code).or_default() += 1;
    }
    let expected: std::collections::BTreeMap<String, usize> = [
        ("ok", 31),
        ("VERSION_CONFLICT", 29),
        ("ALREADY_EXISTS", 30),
        ("BAD_USER_INPUT", 30),
    ]
    .into_iter()
    .map(|(c, n)| (c.to_owned(), n))
    .collect();
    assert_eq!(codes, expected);

    let records = app.all_records().await;
    assert_eq!(records.len(), 31);
    let patched = records.iter().find(|x| x["id"] == taken.as_str()).unwrap();
    assert_eq!(patched["version"], 2);

    let log = app.all_changes().await;
    assert_eq!(
        log.len(),
        32,
        "the first create and the 31 writes that succeeded"
    );
    let events = ws.next_changes("s", 31).await;
    assert_eq!(cursors(&events), cursors(&log[1..]));
    ws.expect_silence().await;
}
