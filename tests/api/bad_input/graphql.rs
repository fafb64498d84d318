//! The GraphQL documents of the corpus, each sent over every GraphQL transport: `POST`,
//! `GET`, server-sent events and both WebSocket subprotocols.

use super::*;

/// GraphQL documents and variables, each sent over every GraphQL transport.
pub(super) fn graphql_cases(seed: &Seed, limits: &Limits) -> Vec<(String, Gql)> {
    use Op::Query;
    use Outcome::{Answers, BadValue, Failed, Refused};
    let mut out: Vec<(String, Gql)> = Vec::new();
    let spread = std::cell::Cell::new(Spread::Every);
    let mut add = |query: String, variables: Value, outcome: Outcome| {
        let name = format!(
            "{} variables={}",
            shown(&query),
            shown(&variables.to_string())
        );
        out.push((
            name,
            Gql {
                op: op_of(&query),
                query,
                variables,
                operation_name: None,
                extensions: None,
                outcome,
                spread: spread.get(),
            },
        ));
    };
    const BAD: &str = "BAD_USER_INPUT";
    let (live, deleted, missing) = (&seed.live, &seed.deleted, &seed.missing);
    let v = seed.live_version;

    // Documents that do not parse.
    for doc in [
        "",
        " ",
        "{",
        "}",
        "{ records ",
        "query",
        "query {",
        "mutation",
        "subscription",
        "fragment",
        "\u{0}\u{1}\u{2}",
        "{ records(first: ) { totalCount } }",
        "{ records(first: 1 { totalCount } }",
        "{ records(collection: \"unterminated) { totalCount } }",
        "{ records(collection: \"\\uD800\") { totalCount } }",
        "{ records(collection: \"\\u{110000}\") { totalCount } }",
        "{ records(collection: \"\\x\") { totalCount } }",
        "{ records(collection: \"\"\"never closed) { totalCount } }",
        "{ records(first: 99999999999999999999999999) { totalCount } }",
        "{ records(first: 0x10) { totalCount } }",
        "{ records(first: 1e) { totalCount } }",
        "{ records(first: 00) { totalCount } }",
        "{ records(first: 1_000) { totalCount } }",
        "{ records { totalCount } } garbage",
        "SELECT * FROM record",
        "'; DROP TABLE record; --",
        "{ records(collection: \"todos\" OR 1=1) { totalCount } }",
        "<script>alert(1)</script>",
    ] {
        add(doc.into(), json!({}), Refused);
    }

    // Documents that parse and fail validation.
    for doc in [
        "{ nope }",
        "{ records(nope: 1) { totalCount } }",
        "{ records { nope } }",
        "{ records }",
        "{ records { totalCount { x } } }",
        "{ records(first: \"1\") { totalCount } }",
        "{ records(first: 1.5) { totalCount } }",
        "{ records(first: true) { totalCount } }",
        "{ records(first: [1]) { totalCount } }",
        "{ records(first: {a: 1}) { totalCount } }",
        "{ records(orderBy: {field: NOPE}) { totalCount } }",
        "{ records(orderBy: {direction: DESC}) { totalCount } }",
        "{ records(filter: {nope: 1}) { totalCount } }",
        "{ record { id } }",
        "{ changes(first: \"10\") { nodes { cursor } } }",
        "{ changes(after: 5) { nodes { cursor } } }",
        "query($x: Int) { records(first: $y) { totalCount } }",
        "query($x: Nope) { __typename }",
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "query { ...Nope }",
        "query { ...F } fragment F on Nope { id }",
        "query { __typename } fragment Unused on Query { __typename }",
        "query A { __typename } query A { __typename }",
        "{ __typename } query B { __typename }",
        "query { createRecord(input: {collection: \"todos\", data: {}}) { id } }",
        "subscription { records { totalCount } }",
        "subscription { recordChanged(kinds: [NOPE]) { cursor } }",
        "subscription { recordChanged(after: 5) { cursor } }",
        "mutation { createRecord(input: {collection: \"todos\"}) { id } }",
        "mutation { createRecord(input: {collection: \"todos\", data: {}, nope: 1}) { id } }",
        "mutation { createRecord(input: {collection: \"todos\", data: null}) { id } }",
        "mutation { updateRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }",
    ] {
        add(doc.into(), json!({}), Refused);
    }
    // A BOM is whitespace to GraphQL.
    add(
        "\u{feff}{ __typename }".into(),
        json!({}),
        Answers(Arc::new(|_| Ok(()))),
    );
    // Argument values that do not parse as their scalar.
    // A page size out of Int's range is refused before anything runs: the complexity
    // of a page depends on it, so it is read while the document is validated.
    for doc in [
        "{ records(first: 2147483648) { totalCount } }",
        "{ records(first: -2147483649) { totalCount } }",
    ] {
        add(doc.into(), json!({}), Refused);
    }
    for doc in [
        "{ records(filter: {ids: [1]}) { totalCount } }",
        "{ records(filter: {ids: [\"not-a-uuid\"]}) { totalCount } }",
        "{ records(filter: {ids: [\"' OR 1=1 --\"]}) { totalCount } }",
        "{ records(filter: {createdAfter: \"yesterday\"}) { totalCount } }",
        "{ records(filter: {createdAfter: 5}) { totalCount } }",
        "{ records(filter: {createdAfter: \"2024-13-45T99:99:99Z\"}) { totalCount } }",
        "{ records(filter: {updatedBefore: \"'; DROP TABLE record; --\"}) { totalCount } }",
        "{ record(id: \"nope\") { id } }",
        "{ record(id: 5) { id } }",
        "{ record(id: \"00000000-0000-0000-0000-00000000000g\") { id } }",
        "subscription { recordChanged(id: \"x\") { cursor } }",
        "subscription { recordChanged(id: \"1 OR 1=1\", after: \"x\") { cursor } }",
        "mutation { createRecord(input: {id: \"not-a-uuid\", collection: \"todos\", data: {}}) { id } }",
        "mutation { deleteRecord(id: \"' OR 1=1 --\") { id } }",
        "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\", expectedVersion: 2147483648) { id } }",
    ] {
        add(doc.into(), json!({}), BadValue);
    }
    // Times at the edges of what the server accepts (years 0000 to 9999) are answered;
    // times beyond them, which one backend or the other cannot compare, are refused.
    let all = seed.records.len();
    let edges = vec![
        ("createdAfter", "0000-01-01T00:00:00Z", all),
        ("createdBefore", "0000-01-01T00:00:00Z", 0),
        ("updatedBefore", "9999-12-31T23:59:59.999999Z", all),
        ("updatedAfter", "9999-12-31T23:59:59Z", 0),
    ];
    for (field, at) in [
        ("createdBefore", "-0001-01-01T00:00:00-23:59"),
        ("createdAfter", "-100000-01-01T00:00:00Z"),
        ("createdBefore", "-4800-01-01T00:00:00+00:00"),
        ("createdAfter", "+100000-01-01T00:00:00Z"),
        ("updatedBefore", "+100000-01-01T00:00:00Z"),
    ] {
        add(
            format!("query($t: DateTime) {{ records(filter: {{{field}: $t}}) {{ totalCount }} }}"),
            json!({"t": at}),
            Failed("BAD_USER_INPUT"),
        );
    }
    for (field, at, n) in edges {
        add(
            format!("query($t: DateTime) {{ records(filter: {{{field}: $t}}) {{ totalCount }} }}"),
            json!({"t": at}),
            Answers(total(n)),
        );
    }
    for at in [
        "10000-01-01T00:00:00Z",
        "+262143-12-31T23:59:59Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T24:00:01Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01",
        "1700000000",
        "now()",
    ] {
        add(
            "query($t: DateTime) { records(filter: {createdAfter: $t}) { totalCount } }".into(),
            json!({"t": at}),
            BadValue,
        );
    }
    // Variables of the wrong type.
    let q = "query($first: Int) { records(first: $first) { totalCount } }";
    for bad in [
        json!("ten"),
        json!(1.5),
        json!([1]),
        json!({"$gt": 1}),
        json!(true),
    ] {
        add(q.into(), json!({"first": bad}), Refused);
    }
    add(q.into(), json!({"first": 2_147_483_648_i64}), Refused);
    let q = "query($ids: [UUID!]) { records(filter: {ids: $ids}) { totalCount } }";
    add(q.into(), json!({"ids": [null]}), Refused);
    for bad in [json!(["' OR 1=1 --"]), json!([1, 2]), json!({"0": live})] {
        add(q.into(), json!({"ids": bad}), BadValue);
    }
    let q = "mutation($d: JSON!) { createRecord(input: {collection: \"todos\", data: $d}) { id } }";
    add(q.into(), json!({"d": null}), Refused);
    add(q.into(), json!({}), BadValue);
    let q = "query($id: UUID!) { record(id: $id) { id } }";
    add(q.into(), json!({"id": null}), Refused);
    for bad in [json!(123), json!("1' OR '1'='1"), json!({})] {
        add(q.into(), json!({"id": bad}), BadValue);
    }
    add(q.into(), json!({}), BadValue);

    // Deep nesting and sheer size, refused by the parser and the limits.
    let deep = 5_000;
    add("{".repeat(deep), json!({}), Refused);
    add(
        format!("{}{}", "{ records { nodes ".repeat(deep), "}".repeat(deep)),
        json!({}),
        Refused,
    );
    add(
        format!(
            "{{ records(filter: {{ids: {}{}}}) {{ totalCount }} }}",
            "[".repeat(deep),
            "]".repeat(deep)
        ),
        json!({}),
        Refused,
    );
    add(
        format!(
            "{{ records(filter: {{dataContains: {}1{}}}) {{ totalCount }} }}",
            "{a: ".repeat(deep),
            "}".repeat(deep)
        ),
        json!({}),
        Refused,
    );
    add(
        format!(
            "{{ __schema {{ types {{ {}name{} }} }} }}",
            "fields { type { ofType { ".repeat(8),
            " } } }".repeat(8)
        ),
        json!({}),
        Refused,
    );
    add(
        format!(
            "{{ {} }}",
            (0..2_000)
                .map(|i| format!("a{i}: __typename"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        json!({}),
        Refused,
    );
    // Fields async-graphql's complexity count skips still count toward the size of the
    // expanded document.
    add(
        format!("{{ {} }}", "__typename ".repeat(6_000)),
        json!({}),
        Refused,
    );
    add(
        format!(
            "query {{ ...F0 }} {}",
            (0..300)
                .map(|i| format!("fragment F{i} on Query {{ ...F{} }}", i + 1))
                .collect::<String>()
        ),
        json!({}),
        Refused,
    );
    // Fragments that spread the next one twice double the work with every level; the
    // server counts the expanded fields first (cheaply) and refuses such a document.
    add(fragment_fanout(8), json!({}), Answers(Arc::new(|_| Ok(()))));
    add(fragment_fanout(25), json!({}), Refused);
    add(
        format!("{{ __typename }} # {}", "x".repeat(limits.body)),
        json!({}),
        Answers(Arc::new(|_| Ok(()))),
    );

    // Page sizes.
    for (args, outcome) in [
        ("first: -1", Failed(BAD)),
        ("first: -2147483648", Failed(BAD)),
        ("first: 2147483647", Failed(BAD)),
        ("first: 501", Failed(BAD)),
        ("last: -1", Failed(BAD)),
        ("last: 501", Failed(BAD)),
        ("first: 1, last: 1", Failed(BAD)),
        ("first: 0, last: 0", Failed(BAD)),
        ("first: null", Answers(total(seed.records.len()))),
        ("first: 0", Answers(total(seed.records.len()))),
    ] {
        add(
            format!("{{ records({args}) {{ totalCount }} }}"),
            json!({}),
            outcome,
        );
    }
    for first in [-1, i32::MIN, 501, i32::MAX] {
        add(
            "query($n: Int) { changes(first: $n) { nodes { cursor } } }".into(),
            json!({"n": first}),
            Failed(BAD),
        );
    }

    // A subscription must have exactly one root field (GraphQL, "Single root field"):
    // refused on every transport, before any feed starts.
    spread.set(Spread::Every);
    add(
        "subscription { a: recordChanged { cursor } b: recordChanged { cursor } }".into(),
        json!({}),
        Refused,
    );

    // From here on, families of similar requests: each goes over POST and one other
    // transport in turn.
    spread.set(Spread::PostAndOne);

    // Garbage and forged cursors, wherever a cursor goes.
    for cursor in garbage_cursors(seed) {
        let vars = json!({"c": cursor});
        add(
            "query($c: String) { records(after: $c) { totalCount } }".into(),
            vars.clone(),
            Failed(BAD),
        );
        add(
            "query($c: String) { records(last: 1, before: $c) { totalCount } }".into(),
            vars.clone(),
            Failed(BAD),
        );
        add(
            "query($c: String) { records(orderBy: {field: ID}, after: $c) { totalCount } }".into(),
            vars.clone(),
            Failed(BAD),
        );
        if cursor != seed.change_cursor {
            add(
                "query($c: String) { changes(after: $c) { nodes { cursor } } }".into(),
                vars.clone(),
                Failed(BAD),
            );
            add(
                "subscription($c: String) { recordChanged(after: $c) { cursor } }".into(),
                vars,
                Failed(BAD),
            );
        }
    }
    // A records cursor of another ordering, or a records cursor as a change cursor.
    for (query, cursor) in [
        (
            "query($c: String) { records(orderBy: {field: ID}, after: $c) { totalCount } }",
            &seed.created_cursor,
        ),
        (
            "query($c: String) { records(orderBy: {field: UPDATED_AT}, before: $c) { totalCount } }",
            &seed.created_cursor,
        ),
        (
            "query($c: String) { records(after: $c) { totalCount } }",
            &seed.id_cursor,
        ),
        (
            "query($c: String) { changes(after: $c) { nodes { cursor } } }",
            &seed.created_cursor,
        ),
        (
            "subscription($c: String) { recordChanged(after: $c) { cursor } }",
            &seed.id_cursor,
        ),
    ] {
        add(query.into(), json!({"c": cursor}), Failed(BAD));
    }
    // Forged cursors that decode: answered while their time is within years 0000 to
    // 9999, refused with BAD_USER_INPUT beyond.
    let forged = [
        far_cursor(seed, 0),
        far_cursor(seed, -62_135_596_800_000_000),
        far_cursor(seed, 253_402_300_799_999_999),
    ];
    for cursor in forged {
        add(
            "query($c: String) { records(first: 5, after: $c) { totalCount nodes { id } } }".into(),
            json!({"c": cursor}),
            Answers(some_page()),
        );
        add(
            "query($c: String) { records(last: 5, before: $c, orderBy: {field: CREATED_AT, direction: DESC}) { totalCount nodes { id } } }"
                .into(),
            json!({"c": cursor}),
            Answers(some_page()),
        );
    }
    for cursor in [
        far_cursor(seed, 8_210_266_876_799_999_999),
        far_cursor(seed, BEFORE_POSTGRES_TIME),
    ] {
        add(
            "query($c: String) { records(first: 5, after: $c) { totalCount nodes { id } } }".into(),
            json!({"c": cursor}),
            Failed(BAD),
        );
    }
    add(
        "query($c: String) { records(orderBy: {field: ID}, after: $c) { totalCount nodes { id } } }".into(),
        json!({"c": b64(&format!("rec:i::{}", uuid::Uuid::max()))}),
        Answers(some_page()),
    );
    // Readable cursors of an earlier version: the client reloads, as after pruning.
    for seq in [0, i64::MAX, 1 << 53] {
        let c = b64(&format!("chg:{seq}"));
        add(
            "query($c: String) { changes(after: $c) { nodes { cursor } } }".into(),
            json!({"c": c}),
            Failed("CURSOR_EXPIRED"),
        );
        add(
            "subscription($c: String) { recordChanged(after: $c) { cursor } }".into(),
            json!({"c": c}),
            Failed("CURSOR_EXPIRED"),
        );
    }
    add(
        "subscription($c: String) { recordChanged(collection: \"todos\", after: $c) { cursor } }"
            .into(),
        json!({"c": b64("chg:-5")}),
        Failed(BAD),
    );

    // Idempotency keys that are not 1 to 255 printable ASCII characters, and batches
    // that cannot be applied: refused, nothing written, nothing stored under the key.
    let create_keyed = "mutation($k: String) { createRecord(input: {collection: \"todos\", data: {}}, idempotencyKey: $k) { id } }";
    for key in ["", &"k".repeat(256), "é", "a\nb", "\u{7f}", "tab\t"] {
        add(create_keyed.into(), json!({"k": key}), Failed(BAD));
    }
    add(create_keyed.into(), json!({"k": 5}), Refused);
    add(create_keyed.into(), json!({"k": ["a"]}), Refused);
    add(
        format!(
            "mutation {{ deleteRecord(id: \"{}\", idempotencyKey: \"\") {{ id }} }}",
            seed.live
        ),
        json!({}),
        Failed(BAD),
    );
    let batch = "mutation($w: [WriteInput!]!) { commitWrites(writes: $w) { changeCursor } }";
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"create": {"collection": "todos", "data": {}}}))
        .collect();
    for (writes, outcome) in [
        (json!([]), Failed(BAD)),
        (json!(many), Failed(BAD)),
        (
            json!([{"create": {"collection": "todos", "data": []}}]),
            Failed(BAD),
        ),
        (
            json!([{"create": {"collection": "bad name!", "data": {}}}]),
            Failed(BAD),
        ),
        (
            json!([{"create": {"collection": "todos", "data": {}}}, {"patch": {"id": seed.missing, "patch": {}}}]),
            Failed("NOT_FOUND"),
        ),
        (
            json!([{"create": {"collection": "todos", "data": {}}}, {"delete": {"id": seed.live, "expectedVersion": 99}}]),
            Failed("VERSION_CONFLICT"),
        ),
        (
            json!([{"create": {"collection": "todos", "data": {}}, "delete": {"id": seed.live}}]),
            Refused,
        ),
        (json!([{}]), Refused),
        (json!([{"create": null}]), Refused),
        (json!([{"upsert": {"id": seed.live}}]), Refused),
    ] {
        add(batch.into(), json!({"w": writes}), outcome);
    }

    // SQL-looking (and otherwise hostile) strings as collection names, filter keys and
    // values: refused when invalid, otherwise plain data that matches nothing it
    // should not.
    let matching = |key: &str, value: &str| {
        seed.records
            .iter()
            .filter(|r| r["data"].get(key) == Some(&json!(value)))
            .count()
    };
    for s in hostile_strings() {
        let vars = json!({"s": s});
        if valid_collection(&s) {
            add(
                "query($s: String) { records(collection: $s) { totalCount } }".into(),
                vars.clone(),
                Answers(total(0)),
            );
            add(
                "query($s: String) { changes(collection: $s) { nodes { cursor } } }".into(),
                vars.clone(),
                Answers(no_changes()),
            );
        } else {
            add(
                "query($s: String) { records(collection: $s) { totalCount } }".into(),
                vars.clone(),
                Failed(BAD),
            );
            add(
                "query($s: String) { changes(collection: $s) { nodes { cursor } } }".into(),
                vars.clone(),
                Failed(BAD),
            );
            add(
                "subscription($s: String) { recordChanged(collection: $s) { cursor } }".into(),
                vars.clone(),
                Failed(BAD),
            );
            add(
                "mutation($s: String!) { createRecord(input: {collection: $s, data: {title: \"x\"}}) { id } }".into(),
                vars.clone(),
                Failed(BAD),
            );
        }
        // A NUL character (`\u0000`), which PostgreSQL's `jsonb` cannot hold, is refused
        // on every backend; other strings are plain data.
        let nul = s.contains('\0');
        for f in [json!({s.clone(): "x"}), json!({"title": s.clone()})] {
            let expect = if nul {
                Failed(BAD)
            } else if f.get("title").is_some() {
                Answers(total(matching("title", &s)))
            } else {
                Answers(total(matching(&s, "x")))
            };
            add(
                "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }".into(),
                json!({"f": f}),
                expect,
            );
        }
        add(
            "query($ids: [UUID!]) { records(filter: {ids: $ids}) { totalCount } }".into(),
            json!({"ids": [s]}),
            BadValue,
        );
    }
    // Matches exactly the records that hold these SQL-looking values.
    for (key, value) in [
        ("title", "' OR '1'='1"),
        ("title", "Robert'); DROP TABLE record;--"),
        ("' OR 1=1 --", "x"),
    ] {
        add(
            "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }".into(),
            json!({"f": {key: value}}),
            Answers(total(1)),
        );
    }
    // `dataContains` of the wrong shape, too many keys, deep and huge values.
    for f in [
        json!("title"),
        json!(1),
        json!([{"title": "x"}]),
        json!(true),
    ] {
        add(
            "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }".into(),
            json!({"f": f}),
            Failed(BAD),
        );
    }
    let many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("k{i}"), json!(i))).collect();
    let mut nested = json!("x");
    for _ in 0..60 {
        nested = json!({"a": [nested]});
    }
    for (f, outcome) in [
        (Value::Object(many), Failed(BAD)),
        (json!({"title": nested}), Answers(total(0))),
        (json!({"title": "z".repeat(700_000)}), Answers(total(0))),
        (json!({"title": 1e308, "done": -0.0}), Answers(total(0))),
        (json!({"title": u64::MAX}), Answers(total(0))),
        (json!({"": null}), Answers(total(0))),
    ] {
        add(
            "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }".into(),
            json!({"f": f}),
            outcome,
        );
    }
    let ids: Vec<String> = (0..=limits.page)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    add(
        "query($ids: [UUID!]) { records(filter: {ids: $ids}) { totalCount } }".into(),
        json!({"ids": ids}),
        Failed(BAD),
    );
    let ids: Vec<String> = (0..20_000)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    add(
        "query($ids: [UUID!]) { records(filter: {ids: $ids}) { totalCount } }".into(),
        json!({"ids": ids}),
        Failed(BAD),
    );
    add(
        "query($s: String) { records(collection: $s) { totalCount } }".into(),
        json!({"s": "c".repeat(limits.body - 200)}),
        Failed(BAD),
    );
    add(
        "query($s: String) { records(collection: $s) { totalCount } }".into(),
        json!({"s": "c".repeat(2 * limits.body)}),
        Failed(BAD),
    );

    // Mutations that must be refused.
    let big = "b".repeat(limits.data + 1);
    let create =
        "mutation($d: JSON!) { createRecord(input: {collection: \"todos\", data: $d}) { id } }";
    for (d, code) in [
        (json!("a string"), BAD),
        (json!(1), BAD),
        (json!([{"title": "x"}]), BAD),
        (json!(true), BAD),
        (json!({"big": big}), BAD),
    ] {
        add(create.into(), json!({"d": d}), Failed(code));
    }
    add(
        format!(
            "mutation {{ createRecord(input: {{id: \"{live}\", collection: \"todos\", data: {{}}}}) {{ id }} }}"
        ),
        json!({}),
        Failed("ALREADY_EXISTS"),
    );
    let update = "mutation($id: UUID!, $d: JSON!, $v: Int) { updateRecord(id: $id, data: $d, expectedVersion: $v) { id } }";
    let patch = "mutation($id: UUID!, $d: JSON!, $v: Int) { patchRecord(id: $id, patch: $d, expectedVersion: $v) { id } }";
    let delete =
        "mutation($id: UUID!, $v: Int) { deleteRecord(id: $id, expectedVersion: $v) { id } }";
    for doc in [update, patch] {
        for (id, d, ver, code) in [
            (missing, json!({}), json!(null), "NOT_FOUND"),
            (deleted, json!({}), json!(null), "NOT_FOUND"),
            (live, json!({}), json!(v - 1), "VERSION_CONFLICT"),
            (live, json!({}), json!(0), "VERSION_CONFLICT"),
            (live, json!({}), json!(-1), "VERSION_CONFLICT"),
            (live, json!({}), json!(i32::MAX), "VERSION_CONFLICT"),
            (live, json!([1]), json!(null), BAD),
            (live, json!({"big": big}), json!(null), BAD),
        ] {
            add(
                doc.into(),
                json!({"id": id, "d": d, "v": ver}),
                Failed(code),
            );
        }
        add(
            doc.into(),
            json!({"id": live, "d": {}, "v": 2_147_483_648_i64}),
            BadValue,
        );
    }
    for d in [json!("a string"), json!(1), json!(false)] {
        add(update.into(), json!({"id": live, "d": d}), Failed(BAD));
    }
    // A merge patch that is not an object replaces the whole document.
    for d in [json!("a string"), json!(1), json!([])] {
        add(patch.into(), json!({"id": live, "d": d}), Failed(BAD));
    }
    for (id, ver, code) in [
        (missing, json!(null), "NOT_FOUND"),
        (deleted, json!(null), "NOT_FOUND"),
        (live, json!(v + 1), "VERSION_CONFLICT"),
        (live, json!(i32::MIN), "VERSION_CONFLICT"),
    ] {
        add(delete.into(), json!({"id": id, "v": ver}), Failed(code));
    }
    add(
        format!(
            "mutation {{ a: deleteRecord(id: \"{missing}\") {{ id }} b: updateRecord(id: \"{deleted}\", data: {{}}) {{ id }} c: patchRecord(id: \"{live}\", patch: {{}}, expectedVersion: 99) {{ id }} }}"
        ),
        json!({}),
        Failed("*"),
    );
    // Operation names that select nothing, and persisted-query extensions that are
    // wrong, unknown or of the wrong shape.
    let two_ops = "query A { __typename } mutation B { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }";
    let apq = |hash: Value, version: Value| json!({"persistedQuery": {"version": version, "sha256Hash": hash}});
    let a_hash = json!("ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38");
    for (query, operation_name, extensions) in [
        (two_ops, Some("Nope".to_owned()), None),
        (two_ops, Some(String::new()), None),
        (
            "query A { __typename }",
            Some("' OR 1=1 --".to_owned()),
            None,
        ),
        (
            "query A { __typename }",
            Some("N".repeat(limits.data)),
            None,
        ),
        ("", None, Some(apq(json!("garbage"), json!(1)))),
        ("", None, Some(apq(json!("' OR 1=1 --"), json!(1)))),
        ("", None, Some(apq(a_hash.clone(), json!(1)))),
        ("{ __typename }", None, Some(apq(a_hash.clone(), json!(1)))),
        ("{ __typename }", None, Some(apq(a_hash.clone(), json!(2)))),
        ("{ __typename }", None, Some(apq(json!(5), json!(1)))),
        (
            "{ __typename }",
            None,
            Some(apq(json!("a".repeat(10_000)), json!(-1))),
        ),
        ("{ __typename }", None, Some(json!({"persistedQuery": "x"}))),
        (
            "{ __typename }",
            None,
            Some(json!({"persistedQuery": null})),
        ),
        ("", None, Some(json!({"persistedQuery": {}}))),
    ] {
        out.push((
            format!(
                "{} operationName={} extensions={}",
                shown(query),
                shown(operation_name.as_deref().unwrap_or("none")),
                shown(&extensions.as_ref().map_or("none".into(), Value::to_string))
            ),
            Gql {
                query: query.into(),
                variables: json!({}),
                operation_name,
                extensions,
                op: Query,
                outcome: Refused,
                spread: Spread::Every,
            },
        ));
    }
    out
}
