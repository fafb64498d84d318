//! `/graphql` against the GraphQL-over-HTTP specification, rule by rule. Each test
//! quotes the text it checks, from the draft of 2025-05-08 that the server follows
//! (see the README for why that one).

use serde_json::{Value, json};

use super::helpers::{TestApp, error_code, spawn_app, spawn_app_with};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// POSTs `body` as JSON with `accept` (if any); returns status, content type, body.
async fn post(app: &TestApp, accept: Option<&str>, body: &str) -> (u16, String, Value) {
    let mut req = app
        .http
        .post(app.url())
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ct, json)
}

#[tokio::test]
async fn the_response_media_type_follows_the_accept_header() {
    // "If an `Accept` header is provided, the server MUST respect the given `Accept`
    // header and attempt to encode the response in the highest priority media type
    // listed that is supported by the server." "For maximal compatibility, a server
    // SHOULD support using both the `application/json` and the
    // `application/graphql-response+json` media types for responses." Without
    // `Accept` "the server may respond ... with any content type it chooses": JSON.
    let app = spawn_app().await;
    let q = r#"{"query": "{ __typename }"}"#;
    for (accept, expected) in [
        (Some(GRAPHQL_RESPONSE), GRAPHQL_RESPONSE),
        (Some("application/json"), "application/json"),
        (Some("*/*"), "application/json"),
        (None, "application/json"),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL_RESPONSE,
        ),
        (
            Some("application/graphql-response+json;q=0.5, application/json"),
            "application/json",
        ),
    ] {
        let (status, ct, body) = post(&app, accept, q).await;
        assert_eq!(status, 200, "{accept:?}");
        assert!(ct.starts_with(expected), "{accept:?}: {ct}");
        assert!(ct.contains("charset=utf-8"), "{ct}");
        assert_eq!(body, json!({"data": {"__typename": "Query"}}));
    }
}

#[tokio::test]
async fn a_parse_error_is_400_without_data_under_the_new_media_type_and_200_under_json() {
    // application/graphql-response+json: "If the GraphQL response does not contain the
    // {data} entry then the server MUST reply with a `4xx` or `5xx` status code", and
    // parse errors are raised before execution, so there is no {data}.
    // application/json: "Requests where the GraphQL document cannot be parsed SHOULD
    // result in status code `200` (Okay)."
    let app = spawn_app().await;
    let (status, _, body) = post(&app, Some(GRAPHQL_RESPONSE), r#"{"query": "{"}"#).await;
    assert_eq!(status, 400);
    assert!(body.get("data").is_none(), "{body}");
    assert!(body["errors"][0]["message"].is_string());
    let (status, _, body) = post(&app, Some("application/json"), r#"{"query": "{"}"#).await;
    assert_eq!(status, 200);
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test]
async fn a_validation_error_is_400_without_data_under_the_new_media_type_and_200_under_json() {
    // application/graphql-response+json: "If the request is not a well-formed
    // GraphQL-over-HTTP request, or it does not pass validation, then the server SHOULD
    // reply with `400` status code." application/json: "If a request fails to pass
    // GraphQL validation, the server SHOULD NOT execute the request and SHOULD return a
    // status code of `200` (Okay)."
    let app = spawn_app().await;
    let body = r#"{"query": "{ noSuchField }"}"#;
    let (status, _, resp) = post(&app, Some(GRAPHQL_RESPONSE), body).await;
    assert_eq!(status, 400);
    assert!(resp.get("data").is_none(), "{resp}");
    let (status, _, resp) = post(&app, Some("application/json"), body).await;
    assert_eq!(status, 200);
    assert!(resp.get("data").is_none(), "{resp}");
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("noSuchField")
    );
}

#[tokio::test]
async fn variables_that_do_not_coerce_are_a_request_error() {
    // application/json: "If CoerceVariableValues() raises a GraphQL request error, the
    // server SHOULD NOT execute the request and SHOULD return a status code of `200`
    // (Okay)." application/graphql-response+json: no {data}, so `4xx`, and 400 as for
    // other request errors.
    let app = spawn_app().await;
    let body =
        r#"{"query": "query($id: UUID!) { record(id: $id) { id } }", "variables": {"id": null}}"#;
    let (status, _, resp) = post(&app, Some(GRAPHQL_RESPONSE), body).await;
    assert_eq!(status, 400, "{resp}");
    assert!(resp.get("data").is_none(), "{resp}");
    let (status, _, _) = post(&app, None, body).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_field_error_during_execution_keeps_200_and_the_data_entry() {
    // "If the GraphQL response contains the {data} entry and it is {null}, then the
    // server SHOULD reply with a `2xx` status code and it is RECOMMENDED it replies with
    // `200` status code." application/json: "If the operation is executed and no
    // GraphQL request error is raised then the server SHOULD respond with a status code
    // of `200` (Okay)."
    let app = spawn_app().await;
    let body = r#"{"query": "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000001\") { id } }"}"#;
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let (status, _, resp) = post(&app, Some(accept), body).await;
        assert_eq!(status, 200, "{accept}");
        assert_eq!(resp["data"], Value::Null, "{resp}");
        assert_eq!(resp["errors"][0]["extensions"]["code"], "NOT_FOUND");
    }
}

#[tokio::test]
async fn json_bodies_that_are_not_objects_are_400() {
    // "When encoded in JSON, a GraphQL-over-HTTP request is encoded as a JSON object
    // (map)"; "A request that does not constitute a well-formed GraphQL-over-HTTP
    // request SHOULD result in status code `400` (Bad Request)."
    let app = spawn_app().await;
    for body in [
        "[]",
        r#"[{"query": "{ __typename }"}]"#,
        "\"{ __typename }\"",
        "1",
        "null",
        "true",
        "",
    ] {
        let (status, ct, resp) = post(&app, Some(GRAPHQL_RESPONSE), body).await;
        assert_eq!(status, 400, "{body}");
        assert!(ct.starts_with("application/json"), "{ct}");
        assert_eq!(
            resp["errors"][0]["extensions"]["code"], "BAD_REQUEST",
            "{body}"
        );
    }
}

#[tokio::test]
async fn parameters_of_the_wrong_type_are_400_and_nulls_are_allowed() {
    // "{query} - (Required, string)", "{operationName} - (Optional, string)",
    // "{variables} - (Optional, map)", "{extensions} - (Optional, map)"; "An HTTP
    // request that encodes parameters of the same names but of the wrong type, or that
    // omits required parameters, is not a well-formed GraphQL-over-HTTP request";
    // "Specifying `null` for optional request parameters is equivalent to not
    // specifying them at all."
    let app = spawn_app().await;
    for body in [
        json!({"notquery": "{ __typename }"}),
        json!({"query": {"obj": "ect"}}),
        json!({"query": 0}),
        json!({"query": ["array"]}),
        json!({"query": "{ __typename }", "operationName": 0}),
        json!({"query": "{ __typename }", "operationName": {"o": 1}}),
        json!({"query": "{ __typename }", "variables": "string"}),
        json!({"query": "{ __typename }", "variables": ["array"]}),
        json!({"query": "{ __typename }", "extensions": false}),
        json!({"query": "{ __typename }", "extensions": "string"}),
    ] {
        let (status, _, resp) = post(&app, None, &body.to_string()).await;
        assert_eq!(status, 400, "{body}: {resp}");
    }
    for parameter in ["variables", "operationName", "extensions"] {
        let body = json!({"query": "{ __typename }", parameter: null});
        let (status, _, resp) = post(&app, Some(GRAPHQL_RESPONSE), &body.to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert!(resp.get("errors").is_none(), "{resp}");
    }
    let body = json!({"query": "{ __typename }", "extensions": {"some": "value"}});
    assert_eq!(post(&app, None, &body.to_string()).await.0, 200);
}

#[tokio::test]
async fn get_takes_variables_and_operation_name_from_the_query_string() {
    // "For HTTP GET requests, the GraphQL-over-HTTP request parameters MUST be provided
    // in the query component of the request URL"; "Each of the {variables} and
    // {extensions} parameters, if used, MUST be encoded as a JSON string."
    let app = spawn_app().await;
    let r = app.create("a", json!({"n": 1})).await;
    let resp = app
        .http
        .get(app.url())
        .header("accept", GRAPHQL_RESPONSE)
        .query(&[
            (
                "query",
                "query A { __typename } query B($id: UUID!) { record(id: $id) { data } }",
            ),
            ("operationName", "B"),
            ("variables", &json!({"id": r["id"]}).to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(GRAPHQL_RESPONSE)
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["record"]["data"], json!({"n": 1}));

    for bad in [
        vec![("operationName", "A")],
        vec![("query", "{ __typename }"), ("variables", "not json")],
        vec![("query", "{ __typename }"), ("variables", "[1]")],
        vec![("query", "{ __typename }"), ("extensions", "5")],
    ] {
        let resp = app.http.get(app.url()).query(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad:?}");
    }
}

#[tokio::test]
async fn a_mutation_over_get_is_405_under_either_media_type() {
    // "GET requests MUST NOT be used for executing mutation operations. If the values
    // of {query} and {operationName} indicate that a mutation operation is to be
    // executed, the server MUST respond with error status code `405` (Method Not
    // Allowed) and halt execution." RFC 9110 requires `Allow` with a 405.
    let app = spawn_app().await;
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let resp = app
            .http
            .get(app.url())
            .header("accept", accept)
            .query(&[("query", "mutation { __typename }")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()["allow"], "POST");
    }
}

#[tokio::test]
async fn methods_other_than_get_and_post_are_405_with_allow() {
    // "A server MUST accept POST requests, and MAY accept other HTTP methods, such as
    // GET." A method it does not accept is 405 with those it does in `Allow` (RFC 9110).
    let app = spawn_app().await;
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let resp = app
            .http
            .request(method.clone(), app.url())
            .header("content-type", "application/json")
            .body(r#"{"query": "{ __typename }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "GET, POST");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "METHOD_NOT_ALLOWED"
        );
    }
}

#[tokio::test]
async fn an_oversized_body_is_413_in_graphql_shape() {
    let app = super::helpers::spawn_app_with(|c| c.max_body_bytes = 1024).await;
    let body = json!({"query": "{ __typename }", "variables": {"pad": "x".repeat(4096)}});
    let (status, _, resp) = post(&app, None, &body.to_string()).await;
    assert_eq!(status, 413);
    assert_eq!(resp["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn utf8_in_requests_is_understood_and_responses_are_utf8() {
    // "For POST requests using an officially recognized GraphQL `Content-Type` without
    // indicating an encoding, the server MUST assume the encoding is `utf-8`."
    let app = spawn_app().await;
    let body = json!({"query": r#"{ __type(name: "Run🏃Swim🏊") { name } }"#});
    let (status, _, resp) = post(&app, None, &body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(resp, json!({"data": {"__type": null}}));
    let created = app.create("a", json!({"s": "Grüße 🏃"})).await;
    assert_eq!(created["data"]["s"], "Grüße 🏃");
}

#[tokio::test]
async fn an_accept_header_naming_nothing_the_server_answers_in_is_406() {
    // "when a client does not include at least one supported media type in the `Accept`
    // HTTP header, the server MUST either: 1. Respond with a `406 Not Acceptable` status
    // code and stop processing the request (RECOMMENDED)".
    let app = spawn_app().await;
    let body =
        r#"{"query": "mutation { createRecord(input: {collection: \"a\", data: {}}) { id } }"}"#;
    for accept in [
        "text/plain",
        "application/xml, text/csv",
        "application/json;q=0",
    ] {
        let (status, _, resp) = post(&app, Some(accept), body).await;
        assert_eq!(status, 406, "{accept}");
        assert_eq!(resp["errors"][0]["extensions"]["code"], "NOT_ACCEPTABLE");
    }
    assert!(app.all_records().await.is_empty(), "nothing was executed");
}

#[tokio::test]
async fn an_empty_operation_name_means_none_and_unknown_keys_are_ignored() {
    // "Setting the value of the {operationName} parameter to the empty string is
    // equivalent to omitting the {operationName} parameter." "Servers receiving a
    // request with additional properties MUST ignore properties they do not
    // understand."
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url())
        .query(&[
            ("query", "query Only { __typename }"),
            ("operationName", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"data": {"__typename": "Query"}}));
    let (status, _, resp) = post(
        &app,
        None,
        r#"{"query": "{ __typename }", "operationName": "", "documentId": "x", "future": [1]}"#,
    )
    .await;
    assert_eq!(status, 200, "{resp}");
}

#[tokio::test]
async fn a_post_without_content_type_is_refused_with_a_4xx() {
    // "If the client does not supply a `Content-Type` header with a POST request, the
    // server SHOULD reject the request using the appropriate `4xx` status code."
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url())
        .body(r#"{"query": "{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
}

#[tokio::test]
async fn a_document_sent_again_is_answered_for_its_own_variables_and_method() {
    const ONE: &str = "query($id: UUID!) { record(id: $id) { data } }";
    const CREATE: &str =
        "mutation($d: JSON!) { createRecord(input: {collection: \"doc\", data: $d}) { id } }";
    // With the parsed-document cache and without it, the same answers.
    for size in [64, 0] {
        let app = spawn_app_with(|c| c.document_cache_size = size).await;
        let a = app.create("doc", json!({"n": 1})).await;
        let b = app.create("doc", json!({"n": 2})).await;
        for (record, n) in [(&a, 1), (&b, 2), (&a, 1)] {
            let got = app.data(ONE, json!({"id": record["id"]})).await;
            assert_eq!(got["record"]["data"], json!({"n": n}), "cache {size}");
        }
        for vars in [json!({"id": "not a uuid"}), json!({})] {
            let bad = app.gql(ONE, vars).await;
            assert_eq!(error_code(&bad), "BAD_USER_INPUT", "cache {size}: {bad}");
        }

        app.data(CREATE, json!({"d": {"n": 3}})).await;
        let resp = app
            .http
            .get(app.url())
            .query(&[("query", CREATE), ("variables", r#"{"d": {"n": 4}}"#)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "cache {size}");
        assert_eq!(app.all_records().await.len(), 3, "cache {size}");
    }
}
