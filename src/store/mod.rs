//! All database work: records, the change log, and the one path every write takes.
//!
//! # Layout
//! - this file: [`Store`], connecting and migrating, and [`Store::write`], the one entry
//!   to the write path: it validates a write and queues it for the writer task. Access
//!   is the service's to check; the store only uses it to hide records a caller may not
//!   see from its writes.
//! - [`writer`]: the writer task, the only code that writes a record. It commits each
//!   record and its change-log entry in one transaction (several writes per transaction
//!   when they queue up) and then hands the changes to the [`Broker`].
//! - [`records`]: reading records and `records` pages.
//! - [`changes`]: reading and pruning the change log, and publishing it to the broker
//!   (the PostgreSQL follower and the writer's resync).
//! - [`patch`]: JSON Merge Patch and the canonical JSON form.
//! - `rows`: reading rows with their data as text, one row at a time, so that no row
//!   can break a read.
//!
//! # Why sequence order is commit order
//! A plain auto-increment key is not enough: with concurrent transactions, a later one
//! can commit a smaller number first, and a reader that already moved past it would
//! skip it forever. So writers are serialized around the append:
//! - SQLite has a single writer anyway; one writer task per instance, holding
//!   `Store::writer`, keeps our own writes from contending for it, and an `IMMEDIATE`
//!   transaction takes its lock up front.
//! - PostgreSQL: the writer task of every instance takes one transaction-scoped advisory
//!   lock ([`WRITE_LOCK_KEY`]) before its changes get `BIGSERIAL` numbers and holds it
//!   until COMMIT. PostgreSQL makes a transaction visible before it releases its locks,
//!   so change N is visible before change N+1 is even numbered.
//!
//! Sequence numbers therefore commit in order, and a reader that sees change N can see
//! every change below N: reading `seq > position` never skips anything. (Numbers may
//! have gaps after a rollback; nothing relies on them being contiguous.) The price is
//! that writes to one database are serialized; the README gives the measured cost.

pub mod changes;
pub mod patch;
pub mod records;
mod rows;
mod writer;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::record;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::{
    auth::Access,
    broker::Broker,
    config::Config,
    cursor::ChangeCursors,
    error::{Error, Result},
    validate::{check_no_nul, validate_collection},
};

use crate::model::Record;
pub use crate::model::{Change, ChangeKind};

/// One write a client asked for.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Write {
    /// Create a record.
    Create {
        /// The collection.
        collection: String,
        /// The record's data.
        data: Value,
    },
    /// Replace a record's data.
    Replace {
        /// The new data.
        data: Value,
        /// Refuse unless the record is at this version.
        expected_version: Option<i32>,
    },
    /// Merge-patch a record's data (RFC 7396).
    Patch {
        /// The merge patch.
        patch: Value,
        /// Refuse unless the record is at this version.
        expected_version: Option<i32>,
    },
    /// Delete a record.
    Delete {
        /// Refuse unless the record is at this version.
        expected_version: Option<i32>,
    },
}

/// One write of a request: the record (`None` for a create given no id, which gets a
/// new one) and what to do to it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteOp {
    /// The record.
    pub id: Option<Uuid>,
    /// What to do.
    pub write: Write,
}

/// A client's idempotency key, in its caller's scope.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// Whose key: the token's `sub`, or the shared scope of local mode.
    pub scope: String,
    /// The key (1–255 printable ASCII characters, checked by the service).
    pub key: String,
    /// What the caller may do (its rights are part of the request the key is bound to:
    /// a replay never shows a caller more than it may see).
    pub rights: Value,
    /// The request as its transport describes it, when that is what the key must be
    /// bound to (REST: method, record, `If-Match` and body, since a list of versions in
    /// `If-Match` is resolved against the record before the write is queued).
    pub request: Option<String>,
}

/// What a write request produced: the records after each write, in order (a delete's
/// is the record's last state), and whether this is the stored outcome of an earlier
/// request with the same idempotency key.
#[derive(Debug, Clone)]
pub struct Written {
    /// The records.
    pub records: Vec<Record>,
    /// A repeat of the first outcome: nothing was written or published now.
    pub replayed: bool,
}

/// The limits the store enforces on what clients send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest serialized `data`.
    pub max_data_bytes: usize,
    /// Deepest nesting of `data` (and of a merge patch).
    pub max_data_depth: usize,
    /// Page size when a client gives none.
    pub default_page_size: u32,
    /// Largest page size a client may ask for.
    pub max_page_size: u32,
    /// Changes read per query while replaying.
    pub catch_up_batch: u32,
    /// Bytes of changes read per query while replaying (at least one change).
    pub catch_up_bytes: usize,
    /// Most writes committed in one transaction.
    pub write_batch: usize,
    /// Writes waiting for the writer task before clients wait for room.
    pub write_queue: usize,
    /// Most writes in one atomic batch.
    pub max_batch_writes: usize,
}

/// A cheap-to-clone handle on the database, the write lock and the broker.
#[derive(Clone)]
pub struct Store {
    /// The connection pool.
    db: DatabaseConnection,
    /// Held by the writer task from `BEGIN` until a group's changes are published, and
    /// by pruning.
    writer: Arc<Mutex<()>>,
    /// The writer task's queue: every write goes through it.
    queue: mpsc::Sender<writer::Job>,
    /// Where committed changes go.
    broker: Broker,
    /// What clients may send.
    limits: Arc<Limits>,
    /// Encodes and decodes change cursors with the database's key.
    cursors: ChangeCursors,
}

/// SQLite: pages of write-ahead log past which a checkpoint makes the log start over.
pub const WAL_RESTART_PAGES: i64 = 10_000;

/// SQLite: how long a statement waits for a lock another connection holds (5,000 ms;
/// [`Store::checkpoint`] restores it by that number).
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The PostgreSQL advisory lock every writer holds while it appends to the change log.
pub const WRITE_LOCK_KEY: i64 = 0x7265_636f_7264; // "record"

/// Opens the database named by `config` (creating a SQLite file if needed).
pub async fn connect(config: &Config) -> Result<DatabaseConnection> {
    let mut opt = ConnectOptions::new(config.database_url.clone());
    let sqlite = config.database_url.starts_with("sqlite:");
    if sqlite {
        // A connection to a local file cannot drop, so pinging it on every acquire would
        // only add a round trip to the connection's thread before every query.
        opt.test_before_acquire(false);
    }
    let background_checkpoints = config.background_checkpoints();
    opt.max_connections(config.db_pool_size.max(1))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            let o = o
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // In WAL mode NORMAL survives a process crash; only an OS crash or
                // power loss can lose the last commits.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            if background_checkpoints {
                // `checkpoint_loop` checkpoints instead of the committing writer, and a
                // log that grew under load is cut back to 64 MiB once it restarts.
                o.pragma("wal_autocheckpoint", "0")
                    .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
            } else {
                o
            }
        });
    Ok(Database::connect(opt).await?)
}

/// Applies every pending migration.
///
/// On PostgreSQL several instances may start at once on a new database; each holds a
/// session advisory lock ([`MIGRATION_LOCK_KEY`]) on a connection of its own while it
/// migrates, so one creates the tables and the others then find nothing to do.
pub async fn migrate(db: &DatabaseConnection) -> Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Migrator::up(db, None).await?);
    }
    use sea_orm::sqlx::{self, Connection};
    let options = db.get_postgres_connection_pool().connect_options();
    let mut lock = sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(from_sqlx)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut lock)
        .await
        .map_err(from_sqlx)?;
    let migrated = Migrator::up(db, None).await;
    // Closing the session releases the lock in any case; unlocking first just says so.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut lock)
        .await;
    let _ = lock.close().await;
    Ok(migrated?)
}

/// The key of the database's change cursors (written by its first migration).
pub async fn cursor_key(db: &DatabaseConnection) -> Result<ChangeCursors> {
    use sea_orm::EntityTrait;
    let key = entity::server_key::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("the database has no cursor key".into()))?;
    ChangeCursors::new(&key.cursor_key)
}

/// An error of a statement run on sqlx directly, told apart as [`Error::from`] tells
/// SeaORM's: connection failures are [`Error::Unavailable`].
fn from_sqlx(err: sea_orm::sqlx::Error) -> Error {
    sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(err))).into()
}

/// PostgreSQL: the channel a writer notifies, with the new head, when it commits; every
/// instance's follower listens on it.
pub const NOTIFY_CHANNEL: &str = "recordsync_changes";

/// The PostgreSQL advisory lock an instance holds while it applies migrations.
pub const MIGRATION_LOCK_KEY: i64 = 0x7265_636f_7264_6d69; // "recordmi"

/// Now, at the microsecond precision the database keeps.
fn now() -> DateTime<Utc> {
    let micros = Utc::now().timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or_else(Utc::now)
}

impl Store {
    /// A store on a migrated database, publishing to `broker`.
    ///
    /// Starts the writer task, which ends when the last handle is dropped.
    pub fn new(
        db: DatabaseConnection,
        broker: Broker,
        limits: Limits,
        cursors: ChangeCursors,
    ) -> Self {
        let lock = Arc::new(Mutex::new(()));
        let limits = Arc::new(limits);
        let (queue, jobs) = mpsc::channel(limits.write_queue.max(1));
        let task = writer::Writer {
            db: db.clone(),
            lock: Arc::clone(&lock),
            broker: broker.clone(),
            limits: Arc::clone(&limits),
            cursors: cursors.clone(),
        };
        let batch = limits.write_batch;
        if db.get_database_backend() == DbBackend::Sqlite {
            // On SQLite the writer gets a thread and a runtime of its own: on the shared
            // runtime each of its statements would wait behind every request and
            // subscription task in the run queue, and those waits add up while it holds
            // the write lock. (sqlx drives SQLite connections from threads of its own, so
            // they are not tied to the runtime that opened them. PostgreSQL connections
            // are: one the writer's runtime opened would do its I/O there, so on
            // PostgreSQL the writer stays on the shared runtime.)
            let spawned = std::thread::Builder::new()
                .name("recordsync-writer".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime.block_on(task.run(jobs, batch)),
                        Err(err) => {
                            tracing::error!(error = %err, "could not start the writer's runtime")
                        }
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, "could not start the writer thread");
            }
        } else {
            tokio::spawn(task.run(jobs, batch));
        }
        Self {
            db,
            writer: lock,
            queue,
            broker,
            limits,
            cursors,
        }
    }

    /// Change cursors of this database.
    pub fn cursors(&self) -> &ChangeCursors {
        &self.cursors
    }

    /// Whether the writer task is taking writes (for readiness).
    pub fn writer_running(&self) -> bool {
        !self.queue.is_closed()
    }

    /// The connection pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The broker committed changes are published to.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Applies `ops` for a caller with `access` (which the service has checked): one
    /// write, or with `batch` an atomic batch (all or nothing, in order, each write
    /// seeing the ones before it; a refusal names its write's index). Validates the
    /// data, queues the request for the writer task, which commits the records, their
    /// change-log entries and the idempotency key's outcome in one transaction and then
    /// publishes the changes, and returns the records after each write (for a delete:
    /// its last state). A refused request changes and publishes nothing. A record in a
    /// collection the caller may not access is `NOT_FOUND`, as if it did not exist.
    ///
    /// With `key`, a request already committed under that key answers its first
    /// outcome again (`replayed`) and writes nothing; the key used for a different
    /// request is `IDEMPOTENCY_KEY_REUSED`.
    pub async fn write(
        &self,
        access: &Access,
        ops: Vec<WriteOp>,
        batch: bool,
        key: Option<IdempotencyKey>,
    ) -> Result<Written> {
        // The writer task owns the write from here: a request dropped half-way (a client
        // that disconnects, an aborted WebSocket operation) cannot stop it between its
        // COMMIT and its publication, or live subscribers would skip that change.
        let started = std::time::Instant::now();
        if batch && ops.is_empty() {
            return Err(Error::bad_input("a batch needs at least one write"));
        }
        if ops.len() > self.limits.max_batch_writes.max(1) {
            return Err(Error::bad_input(format!(
                "a batch may hold at most {} writes",
                self.limits.max_batch_writes
            )));
        }
        // Data is checked (and put in canonical form) here, on the client's task, so the
        // queue only ever holds data within the limit and the writer has less to do.
        // Every write passes here, whichever transport or operation made it.
        let mut checked = Vec::with_capacity(ops.len());
        for (index, op) in ops.into_iter().enumerate() {
            let op = self.checked_op(op).map_err(|err| {
                if batch {
                    Error::InBatch {
                        index,
                        source: Box::new(err),
                    }
                } else {
                    err
                }
            })?;
            checked.push(op);
        }
        // The request as the key remembers it: what the client sent (a create given no
        // id is the same request whatever id it gets).
        let key = key.map(|key| {
            let request = match &key.request {
                Some(raw) => serde_json::json!({"rights": &key.rights, "request": raw}),
                None => {
                    serde_json::json!({"rights": &key.rights, "batch": batch, "writes": &checked})
                }
            };
            let fingerprint = fingerprint(&request);
            (key, fingerprint)
        });
        let ops = checked
            .into_iter()
            .map(|op| (op.id.unwrap_or_else(Uuid::new_v4), op.write))
            .collect();
        // Room in the queue first: a client that leaves while waiting for it has queued
        // nothing, and once queued, the write no longer depends on the client.
        let permit = self
            .queue
            .reserve()
            .await
            .map_err(|_| Error::Internal("the writer task has stopped".into()))?;
        let (reply, outcome) = oneshot::channel();
        permit.send(writer::Job {
            access: access.clone(),
            ops,
            batch,
            key,
            started,
            reply,
        });
        // No answer means the writer's group failed without one (a bug, logged there):
        // whether this write committed is unknown.
        outcome.await.map_err(|_| {
            Error::Internal("the write failed and whether it committed is unknown".into())
        })?
    }

    /// One write with its data checked and in canonical form.
    fn checked_op(&self, op: WriteOp) -> Result<WriteOp> {
        let write = match op.write {
            Write::Create { collection, data } => {
                validate_collection(&collection)?;
                Write::Create {
                    collection,
                    data: checked_data(&self.limits, data)?,
                }
            }
            Write::Replace {
                data,
                expected_version,
            } => Write::Replace {
                data: checked_data(&self.limits, data)?,
                expected_version,
            },
            Write::Patch {
                patch,
                expected_version,
            } => {
                // The merged result is checked in full by the writer; a patch deeper than
                // any record may be is refused before it is merged.
                check_depth(&patch, self.limits.max_data_depth)?;
                Write::Patch {
                    patch,
                    expected_version,
                }
            }
            other => other,
        };
        if op.id.is_none() && !matches!(write, Write::Create { .. }) {
            return Err(Error::bad_input(
                "only a create may leave out the record's id",
            ));
        }
        Ok(WriteOp { id: op.id, write })
    }

    /// Checks a client page size (`first`/`last`) against the limits.
    pub fn page_size(&self, requested: Option<i32>) -> Result<u64> {
        match requested {
            None => Ok(u64::from(self.limits.default_page_size)),
            Some(n) if n < 0 => Err(Error::bad_input("page size must not be negative")),
            Some(n) if n as u32 > self.limits.max_page_size => Err(Error::bad_input(format!(
                "page size {n} is over the maximum of {}",
                self.limits.max_page_size
            ))),
            Some(n) => Ok(n as u64),
        }
    }

    /// A read-only transaction: one consistent snapshot of records and log.
    pub(crate) async fn read_txn(&self) -> Result<DatabaseTransaction> {
        Ok(match self.backend() {
            DbBackend::Postgres => {
                self.db
                    .begin_with_config(
                        Some(sea_orm::IsolationLevel::RepeatableRead),
                        Some(sea_orm::AccessMode::ReadOnly),
                    )
                    .await?
            }
            _ => self.db.begin().await?,
        })
    }

    /// SQLite: copies the write-ahead log into the database file as far as readers allow,
    /// without waiting for anyone (a passive checkpoint). The log only starts over when a
    /// writer finds it wholly copied, which steady writes may never allow; so once it
    /// passes [`WAL_RESTART_PAGES`] and is wholly copied, a restarting checkpoint makes
    /// the next writer start it over. That one holds the write lock while it waits for
    /// readers, so it waits at most 50 ms and otherwise gives up until
    /// the next time: writers wait that long at most, about once per 40 MB written.
    pub async fn checkpoint(&self) -> Result<()> {
        use sea_orm::sqlx;
        let pool = self.db.get_sqlite_connection_pool();
        let mut conn = pool.acquire().await.map_err(from_sqlx)?;
        // One row: busy, log (pages in the log), checkpointed (pages copied).
        let (_busy, log, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut *conn)
                .await
                .map_err(from_sqlx)?;
        if log > WAL_RESTART_PAGES && copied == log {
            sqlx::query("PRAGMA busy_timeout = 50")
                .execute(&mut *conn)
                .await
                .map_err(from_sqlx)?;
            let restarted = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .execute(&mut *conn)
                .await;
            // The connection goes back to the pool: give it back SQLITE_BUSY_TIMEOUT.
            sqlx::query("PRAGMA busy_timeout = 5000")
                .execute(&mut *conn)
                .await
                .map_err(from_sqlx)?;
            restarted.map_err(from_sqlx)?;
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        Ok(self.db.ping().await?)
    }
}

/// Validates record data and returns its canonical form.
fn checked_data(limits: &Limits, data: Value) -> Result<Value> {
    if !data.is_object() {
        return Err(Error::bad_input("data must be a JSON object"));
    }
    check_depth(&data, limits.max_data_depth)?;
    check_no_nul(&data)?;
    let data = patch::canonical(data);
    let size = serde_json::to_vec(&data)
        .map_err(|e| Error::Internal(e.to_string()))?
        .len();
    if size > limits.max_data_bytes {
        return Err(Error::bad_input(format!(
            "data is {size} bytes serialized; the limit is {}",
            limits.max_data_bytes
        )));
    }
    Ok(data)
}

/// Refuses JSON nested deeper than `max` (the object itself is depth 1): what is stored
/// must stay readable by every reader, and JSON parsers stop at a nesting depth of their
/// own (serde_json's is 128).
fn check_depth(value: &Value, max: usize) -> Result<()> {
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth > max {
            return Err(Error::bad_input(format!(
                "data is nested more than {max} levels deep"
            )));
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

/// Refuses a write whose `expectedVersion` is stale. The refusal carries the record as
/// it is now for a caller who may read it (`current`), else only its version.
fn check_version(
    current: &record::Model,
    expected: Option<i32>,
    access: &Access,
    cursors: &ChangeCursors,
) -> Result<()> {
    match expected {
        Some(expected) if expected != current.version => Err(Error::VersionConflict {
            id: current.id,
            expected,
            current: current.version,
            record: access
                .read
                .then(|| serde_json::to_value(Record::new(current, cursors)).ok())
                .flatten()
                .map(Box::new),
        }),
        _ => Ok(()),
    }
}

/// SHA-256 (hex) of a request's canonical JSON: what an idempotency key is bound to.
fn fingerprint(request: &Value) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(request).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
