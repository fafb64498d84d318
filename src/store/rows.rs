//! Reading rows so that one row cannot break a read.
//!
//! `data` comes out of the database as text (`CAST(data AS TEXT)`), never through the
//! driver's JSON decoding, which stops at serde_json's recursion limit: a row written
//! before `--max-data-depth` existed, nested deeper than that, made every page, feed and
//! write that touched it fail. Here the text is checked without recursion and kept as
//! it is ([`Data`]); where a tree is needed it is parsed without the limit.
//!
//! PostgreSQL hands `jsonb` back in a form of its own (spaces, keys by length); there
//! the text is brought to the one form every answer uses ([`Data::canonical`]), so an
//! answer is byte for byte the same whichever backend and path it took.
//!
//! Each row is also decoded on its own ([`Decoded`]): a row that still cannot be read
//! (a corrupt database: a kind the log does not know, text that is not JSON) is logged,
//! counted in `recordsync_undecodable_rows_total` and left out, and the page, the feed
//! or the write around it goes on.

use chrono::{DateTime, Utc};
use entity::{record, record_change};
use sea_orm::{
    DbBackend, DbErr, EntityTrait, FromQueryResult, QueryResult, QuerySelect, Select,
    sea_query::{Alias, Expr, ExprTrait},
};
use uuid::Uuid;

use crate::{
    cursor::ChangeCursors,
    error::{Error, Result},
    metrics as m,
    model::{Change, Data, Record, parse_unbounded},
};

/// A record row with its data as text.
#[derive(FromQueryResult)]
pub struct RecordRow {
    id: Uuid,
    collection: String,
    data: String,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    change_seq: i64,
}

/// A change-log row with its data as text.
#[derive(FromQueryResult)]
struct ChangeRow {
    seq: i64,
    record_id: Uuid,
    collection: String,
    kind: String,
    version: i32,
    data: String,
    record_created_at: DateTime<Utc>,
    record_updated_at: DateTime<Utc>,
    changed_at: DateTime<Utc>,
}

/// A row that decoded, or why it did not.
pub struct Decoded<T>(Result<T, String>);

impl<T: FromQueryResult> FromQueryResult for Decoded<T> {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(Self(
            T::from_query_result(res, pre).map_err(|e| e.to_string()),
        ))
    }
}

/// A change-log row: its position (which always decodes: it is the key) and the change,
/// or why it did not decode.
pub struct DecodedChange {
    /// The row's position.
    pub seq: i64,
    row: Result<ChangeRow>,
}

impl FromQueryResult for DecodedChange {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        let seq = res.try_get(pre, "seq")?;
        let row =
            ChangeRow::from_query_result(res, pre).map_err(|e| Error::Internal(e.to_string()));
        Ok(Self { seq, row })
    }
}

impl DecodedChange {
    /// The change, read from `backend`.
    pub fn change(self, backend: DbBackend) -> Result<Change> {
        self.row.and_then(|row| row.into_change(backend))
    }
}

/// `text` as [`Data`], in the one form answers use.
fn data(text: String, backend: DbBackend) -> Result<Data> {
    let data = Data::from_text(text)?;
    match backend {
        DbBackend::Postgres => data.canonical(),
        _ => Ok(data),
    }
}

/// A record row for the writer: its id (the key, which always decodes) and the record
/// parsed, or why it could not be.
pub struct DecodedRecord {
    /// The record's id.
    pub id: Uuid,
    /// The record with its data parsed (at any depth).
    pub record: Result<record::Model>,
}

impl FromQueryResult for DecodedRecord {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        let id = res.try_get(pre, "id")?;
        let record = RecordRow::from_query_result(res, pre)
            .map_err(|e| Error::Internal(e.to_string()))
            .and_then(RecordRow::into_model);
        Ok(Self { id, record })
    }
}

/// The row, if it decodes; if not, it is logged and counted.
pub fn decode<R, T>(
    row: Decoded<R>,
    what: &'static str,
    convert: impl Fn(R) -> Result<T>,
) -> Option<T> {
    match row.0.map_err(Error::Internal).and_then(convert) {
        Ok(value) => Some(value),
        Err(err) => {
            skipped(what, &err);
            None
        }
    }
}

/// Rows that decoded, in order; each that did not is logged and counted.
pub fn decoded<R, T>(
    rows: Vec<Decoded<R>>,
    what: &'static str,
    convert: impl Fn(R) -> Result<T>,
) -> Vec<T> {
    rows.into_iter()
        .filter_map(
            |row| match row.0.map_err(Error::Internal).and_then(&convert) {
                Ok(value) => Some(value),
                Err(err) => {
                    skipped(what, &err);
                    None
                }
            },
        )
        .collect()
}

/// Logs and counts a row left out.
pub fn skipped(what: &'static str, err: &Error) {
    tracing::error!(error = %err, "a {what} row cannot be decoded and is left out");
    metrics::counter!(m::UNDECODABLE_ROWS, "table" => what).increment(1);
}

fn data_as_text() -> Expr {
    Expr::col(record::Column::Data).cast_as(Alias::new("TEXT"))
}

/// `SELECT` of records with their data as text, for [`RecordRow`].
pub fn records() -> Select<record::Entity> {
    use record::Column as C;
    record::Entity::find()
        .select_only()
        .columns([
            C::Id,
            C::Collection,
            C::Version,
            C::CreatedAt,
            C::UpdatedAt,
            C::ChangeSeq,
        ])
        .expr_as(data_as_text(), "data")
}

/// `SELECT` of change-log rows with their data as text, for [`ChangeRow`].
pub fn changes() -> Select<record_change::Entity> {
    use record_change::Column as C;
    record_change::Entity::find()
        .select_only()
        .columns([
            C::Seq,
            C::RecordId,
            C::Collection,
            C::Kind,
            C::Version,
            C::RecordCreatedAt,
            C::RecordUpdatedAt,
            C::ChangedAt,
        ])
        .expr_as(data_as_text(), "data")
}

impl RecordRow {
    /// The record, its data kept as text.
    pub fn into_record(self, backend: DbBackend, cursors: &ChangeCursors) -> Result<Record> {
        Ok(Record {
            id: self.id,
            collection: self.collection,
            data: data(self.data, backend)?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            change_cursor: cursors.encode(self.change_seq),
        })
    }

    /// The record with its data parsed, for the writer (at any depth).
    fn into_model(self) -> Result<record::Model> {
        Ok(record::Model {
            data: parse_unbounded(&self.data)?,
            id: self.id,
            collection: self.collection,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            change_seq: self.change_seq,
        })
    }
}

impl ChangeRow {
    /// The change, its data kept as text.
    fn into_change(self, backend: DbBackend) -> Result<Change> {
        Ok(Change {
            seq: self.seq,
            record_id: self.record_id,
            collection: self.collection,
            kind: self.kind.parse()?,
            version: self.version,
            data: data(self.data, backend)?,
            record_created_at: self.record_created_at,
            record_updated_at: self.record_updated_at,
            changed_at: self.changed_at,
        })
    }
}
