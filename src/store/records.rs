//! Reading records: one by id, and keyset-paginated, filtered pages.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::record::{self, Column};
use futures_util::TryStreamExt;
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, SimpleExpr},
};
use serde_json::Value;
use uuid::Uuid;

use super::{
    Store, changes, patch,
    rows::{self, Decoded, RecordRow},
};
use crate::{
    cursor::{self, OrderField, RecordKey},
    error::{Error, Result},
    model::{Record, ResponseBudget},
    validate::{check_no_nul, check_time, validate_collection},
};

/// Which records a page holds.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only these ids.
    pub ids: Option<Vec<Uuid>>,
    /// Every top-level key of this object must equal the record's.
    pub data_contains: Option<Value>,
    /// Created strictly after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub created_before: Option<DateTime<Utc>>,
    /// Updated strictly after.
    pub updated_after: Option<DateTime<Utc>>,
    /// Updated strictly before.
    pub updated_before: Option<DateTime<Utc>>,
}

/// What a client asked of a page.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Only this collection.
    pub collection: Option<String>,
    /// Only these collections (what the client's token allows; `None`: all).
    pub allowed: Option<Vec<String>>,
    /// Further conditions.
    pub filter: RecordFilter,
    /// The ordering field.
    pub order: Option<OrderField>,
    /// Descending rather than ascending.
    pub descending: bool,
    /// Forward page size.
    pub first: Option<i32>,
    /// Forward start (exclusive).
    pub after: Option<String>,
    /// Backward page size.
    pub last: Option<i32>,
    /// Backward end (exclusive).
    pub before: Option<String>,
    /// Bytes of record data the page may load (GraphQL queries; `None`: unbounded).
    pub budget: Option<Arc<ResponseBudget>>,
}

/// A page of records and where it sits.
#[derive(Debug, Clone)]
pub struct Page {
    /// The records with their cursors, in the requested order.
    pub edges: Vec<(String, Record)>,
    /// More records follow the last edge.
    pub has_next_page: bool,
    /// More records precede the first edge.
    pub has_previous_page: bool,
    /// Records matching the filter, ignoring cursors.
    pub total_count: u64,
    /// The change-log position the page was read at.
    pub change_cursor: String,
}

impl Store {
    /// One record, or `None`.
    pub async fn record(&self, id: Uuid) -> Result<Option<Record>> {
        let rows = rows::records()
            .filter(Column::Id.eq(id))
            .into_model::<Decoded<RecordRow>>()
            .all(self.db())
            .await?;
        let backend = self.backend();
        let cursors = self.cursors();
        Ok(rows::decoded(rows, "record", |r| r.into_record(backend, cursors)).pop())
    }

    /// A page of records, read in one snapshot together with the change-log position,
    /// so that subscribing after `change_cursor` continues exactly where the page ends.
    pub async fn records(&self, req: PageRequest) -> Result<Page> {
        if req.first.is_some() && req.last.is_some() {
            return Err(Error::bad_input("pass `first` or `last`, not both"));
        }
        if let Some(c) = &req.collection {
            validate_collection(c)?;
        }
        let field = req.order.unwrap_or(OrderField::CreatedAt);
        let backward = req.last.is_some() || (req.before.is_some() && req.first.is_none());
        let limit = self.page_size(if backward { req.last } else { req.first })?;
        let after = req
            .after
            .as_deref()
            .map(|c| cursor::decode_record(field, c))
            .transpose()?;
        let before = req
            .before
            .as_deref()
            .map(|c| cursor::decode_record(field, c))
            .transpose()?;
        let base = filter_condition(&req, self.backend(), self.limits().max_page_size as usize)?;

        // Rows are fetched in scan direction: the requested order going forward, its
        // reverse going backward (then flipped), one extra row telling if more follow.
        let asc = !req.descending;
        let scan_asc = asc != backward;
        let mut bounded = base.clone();
        if let Some(key) = after {
            bounded = bounded.add(key_condition(field, key, asc));
        }
        if let Some(key) = before {
            bounded = bounded.add(key_condition(field, key, !asc));
        }

        let txn = self.read_txn().await?;
        let head = changes::head(&txn).await?;
        let total_count = record::Entity::find()
            .filter(base.clone())
            .count(&txn)
            .await?;
        let mut query = rows::records().filter(bounded);
        let order = if scan_asc { Order::Asc } else { Order::Desc };
        if let Some(col) = time_column(field) {
            query = query.order_by(col, order.clone());
        }
        // Rows are read one at a time: whether more follow counts every row read (one
        // that cannot be decoded included), and the budget stops a page that would load
        // too much at the first record past it.
        let mut stream = query
            .order_by(Column::Id, order)
            .limit(limit + 1)
            .into_model::<Decoded<RecordRow>>()
            .stream(&txn)
            .await?;
        let backend = self.backend();
        let (mut rows, mut read) = (Vec::new(), 0u64);
        while let Some(row) = stream.try_next().await? {
            read += 1;
            if read > limit {
                break;
            }
            if let Some(record) =
                rows::decode(row, "record", |r| r.into_record(backend, &self.cursors))
            {
                if let Some(budget) = &req.budget {
                    budget.charge(record.data.len())?;
                }
                rows.push(record);
            }
        }
        drop(stream);
        let more = read > limit;
        if backward {
            rows.reverse();
        }
        // The far side of the cursor we came from: is there anything beyond it?
        let beyond = match if backward { before } else { after } {
            Some(key) => {
                let toward = if backward { !asc } else { asc };
                let beyond = base.add(key_condition(field, key, toward).not());
                record::Entity::find()
                    .select_only()
                    .column(Column::Id)
                    .filter(beyond)
                    .into_tuple::<Uuid>()
                    .one(&txn)
                    .await?
                    .is_some()
            }
            None => false,
        };
        txn.commit().await?;

        let (has_next_page, has_previous_page) = if backward {
            (beyond, more)
        } else {
            (more, beyond)
        };
        let edges = rows
            .into_iter()
            .map(|r| (cursor::encode_record(field, record_key(field, &r)), r))
            .collect();
        Ok(Page {
            edges,
            has_next_page,
            has_previous_page,
            total_count,
            change_cursor: self.cursors().encode(head),
        })
    }
}

/// The collection and filter of a page request as a condition for `backend`,
/// or `BAD_USER_INPUT`. Public for the fuzz targets.
pub fn filter_condition(
    req: &PageRequest,
    backend: DbBackend,
    max_ids: usize,
) -> Result<Condition> {
    let f = &req.filter;
    let mut cond = Condition::all();
    if let Some(c) = &req.collection {
        cond = cond.add(Column::Collection.eq(c.clone()));
    }
    if let Some(allowed) = &req.allowed {
        cond = cond.add(Column::Collection.is_in(allowed.iter().cloned()));
    }
    if let Some(ids) = &f.ids {
        if ids.len() > max_ids {
            return Err(Error::bad_input(format!(
                "`ids` may list at most {} ids",
                max_ids
            )));
        }
        cond = cond.add(Column::Id.is_in(ids.iter().copied()));
    }
    for t in [
        f.created_after,
        f.created_before,
        f.updated_after,
        f.updated_before,
    ]
    .into_iter()
    .flatten()
    {
        check_time(t)?;
    }
    if let Some(t) = f.created_after {
        cond = cond.add(Column::CreatedAt.gt(t));
    }
    if let Some(t) = f.created_before {
        cond = cond.add(Column::CreatedAt.lt(t));
    }
    if let Some(t) = f.updated_after {
        cond = cond.add(Column::UpdatedAt.gt(t));
    }
    if let Some(t) = f.updated_before {
        cond = cond.add(Column::UpdatedAt.lt(t));
    }
    if let Some(contains) = &f.data_contains {
        let Value::Object(members) = contains else {
            return Err(Error::bad_input("dataContains must be a JSON object"));
        };
        check_no_nul(contains)?;
        if members.len() > 32 {
            return Err(Error::bad_input("dataContains may name at most 32 keys"));
        }
        match backend {
            DbBackend::Postgres => {
                // `@>` can use the GIN index; the per-key equality makes nested values
                // compare whole, as on SQLite (containment alone would match subsets).
                let doc = patch::canonical(contains.clone());
                cond = cond.add(Expr::cust_with_values(
                    "\"record\".\"data\" @> $1::jsonb",
                    [doc.to_string()],
                ));
                for (key, value) in members {
                    cond = cond.add(Expr::cust_with_values(
                        "\"record\".\"data\" -> $1::text = $2::jsonb",
                        [key.clone(), value.to_string()],
                    ));
                }
            }
            _ => {
                for (key, value) in members {
                    cond = cond.add(sqlite_member_equals(key, value));
                }
            }
        }
    }
    Ok(cond)
}

/// `data` has top-level member `key` equal to `value` (SQLite). Compares by JSON type
/// so that `1`, `true` and `"1"` stay distinct; objects and arrays compare as canonical
/// text, which is how records store them.
fn sqlite_member_equals(key: &str, value: &Value) -> SimpleExpr {
    let exists = "EXISTS (SELECT 1 FROM json_each(\"record\".\"data\") AS m WHERE m.key = ? AND ";
    let key = key.to_owned();
    match value {
        Value::Null => Expr::cust_with_values(format!("{exists}m.type = 'null')"), [key]),
        Value::Bool(true) => Expr::cust_with_values(format!("{exists}m.type = 'true')"), [key]),
        Value::Bool(false) => Expr::cust_with_values(format!("{exists}m.type = 'false')"), [key]),
        Value::Number(n) => {
            let sql = format!("{exists}m.type IN ('integer', 'real') AND m.atom = ?)");
            match n.as_i64() {
                Some(i) => Expr::cust_with_values(sql, [sea_orm::Value::from(key), i.into()]),
                None => Expr::cust_with_values(
                    sql,
                    [
                        sea_orm::Value::from(key),
                        n.as_f64().unwrap_or(f64::NAN).into(),
                    ],
                ),
            }
        }
        Value::String(s) => Expr::cust_with_values(
            format!("{exists}m.type = 'text' AND m.atom = ?)"),
            [key, s.clone()],
        ),
        Value::Array(_) | Value::Object(_) => {
            let kind = if value.is_array() { "array" } else { "object" };
            Expr::cust_with_values(
                format!("{exists}m.type = '{kind}' AND m.value = ?)"),
                [key, patch::canonical(value.clone()).to_string()],
            )
        }
    }
}

fn time_column(field: OrderField) -> Option<Column> {
    match field {
        OrderField::CreatedAt => Some(Column::CreatedAt),
        OrderField::UpdatedAt => Some(Column::UpdatedAt),
        OrderField::Id => None,
    }
}

fn record_key(field: OrderField, r: &Record) -> RecordKey {
    let at = match field {
        OrderField::CreatedAt => Some(r.created_at),
        OrderField::UpdatedAt => Some(r.updated_at),
        OrderField::Id => None,
    };
    RecordKey { at, id: r.id }
}

/// Rows strictly after `key` in ascending (`asc`) or descending order of `field`, `id`.
fn key_condition(field: OrderField, key: RecordKey, asc: bool) -> Condition {
    let id_beyond = if asc {
        Column::Id.gt(key.id)
    } else {
        Column::Id.lt(key.id)
    };
    match (time_column(field), key.at) {
        (Some(col), Some(at)) => {
            let at_beyond = if asc { col.gt(at) } else { col.lt(at) };
            Condition::any()
                .add(at_beyond)
                .add(Condition::all().add(col.eq(at)).add(id_beyond))
        }
        _ => Condition::all().add(id_beyond),
    }
}
