use serde_json::{Value, json};

use super::helpers::{TestApp, error_code, spawn_app, spawn_app_with};

const PAGE: &str = "query($c: String, $f: RecordFilter, $o: RecordOrder, $first: Int, $after: String, $last: Int, $before: String) {
  records(collection: $c, filter: $f, orderBy: $o, first: $first, after: $after, last: $last, before: $before) {
    totalCount changeCursor
    edges { cursor node { id data createdAt updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}";

async fn page(app: &TestApp, vars: Value) -> Value {
    app.data(PAGE, vars).await["records"].clone()
}

fn ns(page: &Value) -> Vec<i64> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["data"]["n"].as_i64().unwrap())
        .collect()
}

async fn seed(app: &TestApp, n: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            app.create("nums", json!({"n": i, "even": i % 2 == 0}))
                .await,
        );
    }
    app.create("other", json!({"n": 100})).await;
    out
}

#[tokio::test]
async fn record_by_id_is_null_when_missing() {
    let app = spawn_app().await;
    let got = app
        .data(
            "query($id: UUID!) { record(id: $id) { id } }",
            json!({"id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(got["record"], json!(null));
}

#[tokio::test]
async fn records_page_forward_with_first_and_after() {
    let app = spawn_app().await;
    seed(&app, 7).await;
    let p1 = page(&app, json!({"c": "nums", "first": 3})).await;
    assert_eq!(ns(&p1), vec![0, 1, 2]);
    assert_eq!(p1["totalCount"], 7);
    assert_eq!(p1["pageInfo"]["hasNextPage"], true);
    assert_eq!(p1["pageInfo"]["hasPreviousPage"], false);
    let p2 = page(
        &app,
        json!({"c": "nums", "first": 3, "after": p1["pageInfo"]["endCursor"]}),
    )
    .await;
    assert_eq!(ns(&p2), vec![3, 4, 5]);
    assert_eq!(p2["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(p2["totalCount"], 7);
    let p3 = page(
        &app,
        json!({"c": "nums", "first": 3, "after": p2["pageInfo"]["endCursor"]}),
    )
    .await;
    assert_eq!(ns(&p3), vec![6]);
    assert_eq!(p3["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn records_page_backward_with_last_and_before() {
    let app = spawn_app().await;
    seed(&app, 7).await;
    let p1 = page(&app, json!({"c": "nums", "last": 3})).await;
    assert_eq!(ns(&p1), vec![4, 5, 6]);
    assert_eq!(p1["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(p1["pageInfo"]["hasNextPage"], false);
    let p2 = page(
        &app,
        json!({"c": "nums", "last": 3, "before": p1["pageInfo"]["startCursor"]}),
    )
    .await;
    assert_eq!(ns(&p2), vec![1, 2, 3]);
    assert_eq!(p2["pageInfo"]["hasNextPage"], true);
    let p3 = page(
        &app,
        json!({"c": "nums", "last": 3, "before": p2["pageInfo"]["startCursor"]}),
    )
    .await;
    assert_eq!(ns(&p3), vec![0]);
    assert_eq!(p3["pageInfo"]["hasPreviousPage"], false);
    // A window between two cursors.
    let first = page(&app, json!({"c": "nums", "first": 1})).await;
    let window = page(
        &app,
        json!({"c": "nums", "first": 10, "after": first["pageInfo"]["endCursor"], "before": p1["pageInfo"]["startCursor"]}),
    )
    .await;
    assert_eq!(ns(&window), vec![1, 2, 3]);
}

#[tokio::test]
async fn records_order_by_each_field_in_both_directions() {
    let app = spawn_app().await;
    let recs = seed(&app, 5).await;
    // Update in reverse so updatedAt order is the reverse of creation order.
    for r in recs.iter().rev() {
        let n = r["data"]["n"].clone();
        app.update(r["id"].as_str().unwrap(), json!({"n": n, "touched": true}))
            .await;
    }
    let mut by_id: Vec<(String, i64)> = recs
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["data"]["n"].as_i64().unwrap(),
            )
        })
        .collect();
    by_id.sort();
    let id_order: Vec<i64> = by_id.iter().map(|(_, n)| *n).collect();

    for (field, dir, expected) in [
        ("CREATED_AT", "ASC", vec![0, 1, 2, 3, 4]),
        ("CREATED_AT", "DESC", vec![4, 3, 2, 1, 0]),
        ("UPDATED_AT", "ASC", vec![4, 3, 2, 1, 0]),
        ("UPDATED_AT", "DESC", vec![0, 1, 2, 3, 4]),
        ("ID", "ASC", id_order.clone()),
        ("ID", "DESC", id_order.iter().rev().copied().collect()),
    ] {
        // Walk two at a time so cursors of every ordering are exercised.
        let mut got = Vec::new();
        let mut after = Value::Null;
        loop {
            let p = page(&app, json!({"c": "nums", "o": {"field": field, "direction": dir}, "first": 2, "after": after})).await;
            got.extend(ns(&p));
            if p["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = p["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(got, expected, "{field} {dir}");
    }
}

#[tokio::test]
async fn records_filter_by_ids_data_and_times() {
    let app = spawn_app().await;
    let recs = seed(&app, 6).await;
    let ids = json!([recs[1]["id"], recs[4]["id"]]);
    assert_eq!(
        ns(&page(&app, json!({"f": {"ids": ids}})).await),
        vec![1, 4]
    );

    let even = page(
        &app,
        json!({"c": "nums", "f": {"dataContains": {"even": true}}}),
    )
    .await;
    assert_eq!(ns(&even), vec![0, 2, 4]);
    assert_eq!(even["totalCount"], 3);
    assert_eq!(
        ns(&page(
            &app,
            json!({"f": {"dataContains": {"n": 3, "even": false}}})
        )
        .await),
        vec![3]
    );
    // Types are not coerced: 1 is not "1", true is not 1.
    app.create(
        "types",
        json!({"v": "1", "nested": {"b": [1, {"c": null}], "a": 1}}),
    )
    .await;
    app.create("types", json!({"v": 1})).await;
    app.create("types", json!({"v": true})).await;
    app.create("types", json!({"v": null})).await;
    let count = |f: Value| {
        let app = &app;
        async move {
            page(app, json!({"c": "types", "f": {"dataContains": f}})).await["totalCount"].clone()
        }
    };
    assert_eq!(count(json!({"v": "1"})).await, 1);
    assert_eq!(count(json!({"v": 1})).await, 1);
    assert_eq!(count(json!({"v": 1.0})).await, 1);
    assert_eq!(count(json!({"v": true})).await, 1);
    assert_eq!(count(json!({"v": null})).await, 1);
    assert_eq!(count(json!({"missing": null})).await, 0);
    // Nested values compare whole, whatever order the keys were sent in.
    assert_eq!(
        count(json!({"nested": {"a": 1, "b": [1, {"c": null}]}})).await,
        1
    );
    assert_eq!(count(json!({"nested": {"a": 1}})).await, 0);
    // SQL-looking keys and values are just data.
    assert_eq!(count(json!({"v' OR 1=1 --": "x"})).await, 0);
    assert_eq!(count(json!({"v": "1' OR '1'='1"})).await, 0);

    let created2 = recs[2]["createdAt"].clone();
    let after2 = page(&app, json!({"c": "nums", "f": {"createdAfter": created2}})).await;
    assert_eq!(ns(&after2), vec![3, 4, 5]);
    let before2 = page(&app, json!({"c": "nums", "f": {"createdBefore": created2}})).await;
    assert_eq!(ns(&before2), vec![0, 1]);
    app.update(
        recs[0]["id"].as_str().unwrap(),
        json!({"n": 0, "later": true}),
    )
    .await;
    let updated_after = page(
        &app,
        json!({"c": "nums", "f": {"updatedAfter": recs[5]["updatedAt"]}}),
    )
    .await;
    assert_eq!(ns(&updated_after), vec![0]);
    let updated_before = page(
        &app,
        json!({"c": "nums", "f": {"updatedBefore": recs[1]["updatedAt"]}}),
    )
    .await;
    assert_eq!(ns(&updated_before), Vec::<i64>::new());
}

#[tokio::test]
async fn page_sizes_default_to_50_and_stop_at_the_maximum() {
    let app = spawn_app_with(|c| c.max_page_size = 60).await;
    for i in 0..55 {
        app.create("many", json!({"n": i})).await;
    }
    let p = page(&app, json!({"c": "many"})).await;
    assert_eq!(p["edges"].as_array().unwrap().len(), 50);
    assert_eq!(p["pageInfo"]["hasNextPage"], true);
    for vars in [
        json!({"first": 61}),
        json!({"last": 61}),
        json!({"first": -1}),
        json!({"first": 1, "last": 1}),
    ] {
        let resp = app.gql(PAGE, vars.clone()).await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{vars}: {resp}");
    }
    let resp = app
        .gql("{ changes(first: 61) { changeCursor } }", json!({}))
        .await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
    assert_eq!(
        page(&app, json!({"first": 60})).await["edges"]
            .as_array()
            .unwrap()
            .len(),
        55
    );
}

#[tokio::test]
async fn garbage_and_foreign_cursors_are_bad_user_input() {
    let app = spawn_app().await;
    seed(&app, 2).await;
    let p = page(&app, json!({"first": 1})).await;
    let record_cursor = p["pageInfo"]["endCursor"].clone();
    let change_cursor = p["changeCursor"].clone();
    for vars in [
        json!({"after": "not a cursor"}),
        json!({"after": ""}),
        json!({"before": "Zm9v"}),
        json!({"after": change_cursor}),
        json!({"after": record_cursor, "o": {"field": "UPDATED_AT"}}),
        json!({"after": "x".repeat(10_000)}),
    ] {
        let resp = app.gql(PAGE, vars.clone()).await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{vars}: {resp}");
    }
    for after in [json!("garbage"), record_cursor] {
        let resp = app
            .gql(
                "query($a: String) { changes(after: $a) { changeCursor } }",
                json!({"a": after}),
            )
            .await;
        assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{resp}");
    }
}

#[tokio::test]
async fn changes_pages_the_log_for_polling_clients() {
    let app = spawn_app().await;
    let q = "query($a: String, $c: String, $f: Int) { changes(after: $a, collection: $c, first: $f) {
        edges { cursor node { kind record { collection data } } } changeCursor pageInfo { hasNextPage endCursor } } }";
    for i in 0..5 {
        app.create(if i % 2 == 0 { "a" } else { "b" }, json!({"n": i}))
            .await;
    }
    let p1 = app.data(q, json!({"c": "a", "f": 2})).await["changes"].clone();
    let got: Vec<_> = p1["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["record"]["data"]["n"].clone())
        .collect();
    assert_eq!(got, vec![json!(0), json!(2)]);
    assert_eq!(p1["pageInfo"]["hasNextPage"], true);
    let p2 = app
        .data(q, json!({"c": "a", "f": 2, "a": p1["changeCursor"]}))
        .await["changes"]
        .clone();
    assert_eq!(p2["edges"].as_array().unwrap().len(), 1);
    assert_eq!(p2["pageInfo"]["hasNextPage"], false);
    // Nothing new: an empty page that keeps the position.
    let p3 = app
        .data(q, json!({"c": "a", "a": p2["changeCursor"]}))
        .await["changes"]
        .clone();
    assert_eq!(p3["edges"], json!([]));
    assert_eq!(p3["changeCursor"], p2["changeCursor"]);
    // A new change shows up in the next poll.
    app.create("a", json!({"n": 9})).await;
    let p4 = app
        .data(q, json!({"c": "a", "a": p3["changeCursor"]}))
        .await["changes"]
        .clone();
    assert_eq!(p4["edges"][0]["node"]["record"]["data"]["n"], 9);
    // first: 0 never skips anything.
    let empty = app.data(q, json!({"f": 0})).await["changes"].clone();
    let all = app.data(q, json!({"a": empty["changeCursor"]})).await["changes"].clone();
    assert_eq!(all["edges"].as_array().unwrap().len(), 6);
}
