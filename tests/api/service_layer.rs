//! The service layer and the defects its review found: a write whose outcome is
//! unknown, settings that cannot run, the mutation detector of `GET`, the root type
//! names, the generic write path, readiness, and access that must be present.

use std::time::Duration;

use recordsync::{auth::Access, config::Config, store::Write};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::{Value, json};

use super::helpers::{ARRIVE, TestDb, WsClient, error_code, spawn_app, spawn_on};

/// `/readyz`'s status and body.
async fn readiness(app: &super::helpers::TestApp) -> (u16, Value) {
    let resp = app
        .http
        .get(format!("http://{}/readyz", app.addr))
        .send()
        .await
        .expect("GET /readyz");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

#[tokio::test]
async fn after_a_commit_of_unknown_outcome_nothing_is_published_until_the_broker_has_reread_the_log()
 {
    // SQLite: there the writer publishes its own commits (on PostgreSQL the follower
    // always publishes from the log).
    let db = TestDb::sqlite();
    let app = spawn_on(db.clone(), |_| {}).await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("s", "").await;
    app.wait_for_receivers(1).await;
    let a = app.create("todos", json!({"n": 1})).await;
    let id = a["id"].as_str().unwrap().to_owned();
    let first = ws.next_change("s").await;
    assert_eq!(first["record"]["version"], 1);

    // Every COMMIT now fails: a deferred foreign key that the change-log insert breaks.
    let side = Database::connect(&db.url).await.unwrap();
    for sql in [
        "CREATE TABLE fault_parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE fault_child (parent INTEGER REFERENCES fault_parent(id) DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TRIGGER fault AFTER INSERT ON record_change BEGIN INSERT INTO fault_child VALUES (42); END",
    ] {
        side.execute_unprepared(sql).await.unwrap();
    }
    let failed = app
        .gql(
            "mutation($id: UUID!) { updateRecord(id: $id, data: {n: 2}) { version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&failed), "INTERNAL_SERVER_ERROR", "{failed}");
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["writer"], "resyncing", "{body}");

    // The failed COMMIT is taken to have happened after all (as an I/O error after the
    // log was written would leave it): the log gains version 2 behind the writer's back.
    let txn = side.begin().await.unwrap();
    for sql in [
        "DROP TRIGGER fault",
        "INSERT INTO record_change (record_id, collection, kind, version, data, record_created_at, record_updated_at, changed_at) \
         SELECT record_id, collection, 'UPDATED', 2, data, record_created_at, record_updated_at, changed_at \
         FROM record_change WHERE seq = (SELECT max(seq) FROM record_change)",
        "UPDATE record SET version = 2",
    ] {
        txn.execute_unprepared(sql).await.unwrap();
    }
    txn.commit().await.unwrap();

    // The writer rereads the log and publishes version 2, then later writes follow.
    let second = ws.next_change("s").await;
    assert_eq!(second["record"]["version"], 2, "{second}");
    let c = app
        .data(
            "mutation($id: UUID!) { updateRecord(id: $id, data: {n: 3}, expectedVersion: 2) { version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(c["updateRecord"]["version"], 3);
    let third = ws.next_change("s").await;
    assert_eq!(third["record"]["version"], 3, "{third}");
    let log: Vec<Value> = app
        .all_changes()
        .await
        .iter()
        .map(|c| c["cursor"].clone())
        .collect();
    assert_eq!(
        log,
        vec![
            first["cursor"].clone(),
            second["cursor"].clone(),
            third["cursor"].clone()
        ]
    );
    let deadline = tokio::time::Instant::now() + ARRIVE;
    loop {
        let (status, body) = readiness(&app).await;
        if status == 200 {
            assert_eq!(body["writer"], "running", "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_zero_duration_or_count_option_stops_the_binary_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    for (option, value) in [
        ("--prune-interval", "0s"),
        ("--keep-alive", "0s"),
        ("--catch-up-batch", "0"),
    ] {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_recordsync"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &url,
                option,
                value,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = tokio::time::timeout(ARRIVE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{option} {value}: the server started instead of exiting"))
            .unwrap();
        assert!(!out.status.success(), "{option} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(option), "{option} {value}: {stderr}");
    }
}

#[tokio::test]
async fn a_named_mutation_over_get_is_405_with_allow_post_like_an_anonymous_one() {
    let app = spawn_app().await;
    for query in [
        "mutation M { createRecord(input: {collection: \"t\", data: {}}) { id } }",
        "mutation { createRecord(input: {collection: \"t\", data: {}}) { id } }",
    ] {
        let resp = app
            .http
            .get(app.url())
            .query(&[("query", query)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{query}");
        assert_eq!(resp.headers()["allow"], "POST", "{query}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "METHOD_NOT_ALLOWED", "{body}");
    }
    assert!(app.all_records().await.is_empty());
}

#[tokio::test]
async fn the_root_types_have_the_names_tools_assume() {
    let app = spawn_app().await;
    let d = app
        .data(
            "{ __schema { queryType { name } mutationType { name } subscriptionType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["__schema"],
        json!({"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"},
               "subscriptionType": {"name": "Subscription"}})
    );
}

#[tokio::test]
async fn every_create_on_the_generic_write_path_checks_the_collection_name() {
    let app = spawn_app().await;
    let write = Write::Create {
        collection: "not a name!".into(),
        data: json!({}),
    };
    let err = app
        .service
        .apply(&Access::full(), Some(uuid::Uuid::new_v4()), write, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "BAD_USER_INPUT");
    assert!(app.all_records().await.is_empty());
    assert!(app.all_changes().await.is_empty());
}

#[tokio::test]
async fn readiness_reports_a_migrations_check_that_failed_not_pending_migrations() {
    let db = TestDb::sqlite();
    let app = spawn_on(db.clone(), |_| {}).await;
    let (status, _) = readiness(&app).await;
    assert_eq!(status, 200);
    let side = Database::connect(&db.url).await.unwrap();
    for sql in [
        "ALTER TABLE seaql_migrations RENAME TO seaql_migrations_kept",
        // Reading it fails: the table it reads is gone.
        "CREATE VIEW seaql_migrations AS SELECT version, applied_at FROM seaql_migrations_gone",
    ] {
        side.execute_unprepared(sql).await.unwrap();
    }
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "reachable", "{body}");
    assert_eq!(body["migrations"], "check failed", "{body}");
}

#[tokio::test]
async fn a_graphql_request_without_the_callers_access_is_refused() {
    let app = spawn_app().await;
    let schema = recordsync::graphql::schema::build(app.service.clone(), &Config::default());
    for query in [
        "{ records { totalCount } }",
        "{ changes { changeCursor } }",
        "mutation { createRecord(input: {collection: \"t\", data: {}}) { id } }",
    ] {
        let resp = schema.execute(query).await;
        let body = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            error_code(&body),
            "INTERNAL_SERVER_ERROR",
            "{query}: {body}"
        );
    }
    assert!(app.all_records().await.is_empty());
}
