//! The write path: one task that commits queued writes in groups.
//!
//! Every write a client asks for becomes a [`Job`] on a bounded queue. The writer task
//! takes everything queued (up to `--write-batch`) and commits it in one transaction:
//! one read of the records it touches, one upsert of their new states, one delete, one
//! multi-row insert into the change log, one COMMIT. Then it publishes the changes in
//! order and answers each job. The cost of a transaction is shared by the whole group,
//! so throughput grows with the number of writers instead of being one transaction's
//! round trips per write.
//!
//! What this keeps:
//! - **Each write is all or nothing.** A write that is refused (not found, stale version,
//!   duplicate id, bad data) is refused before anything of it is written, against the
//!   state left by the writes queued before it in the same group, exactly as if it ran
//!   alone after them. If a statement fails, the group is rolled back and every write in
//!   it is retried in a transaction of its own, so one bad write cannot fail another.
//! - **Commit order is log order.** The group's changes are inserted in queue order in
//!   one statement, so their sequence numbers rise in that order; the group commits
//!   while holding the write lock (and, on PostgreSQL, the advisory lock), as single
//!   writes did.
//! - **An answer means committed.** A job is answered only after COMMIT returned, and a
//!   client that goes away does not stop its write half-way: the task owns it.
//! - **Bounded.** The queue holds at most `--write-queue` jobs; a client whose write finds
//!   it full waits for room.
//! - **Nothing is published out of step with the log.** When a COMMIT fails, or a group
//!   dies, whether its changes committed is unknown. On SQLite, where the writer itself
//!   publishes, the broker is then marked out of sync, and nothing more is published
//!   until the writer has re-read the log after the broker's head and published what it
//!   finds there (at the next group, or on a timer while no write comes). Publishing the
//!   next group's changes straight away would tell live subscribers that they follow on
//!   from the last change they saw, and they would skip one that did commit.
//!   Readiness reports the writer as resyncing meanwhile. On PostgreSQL the follower
//!   publishes from the log anyway; the writer only wakes it.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Instant,
};

use entity::{idempotency_key, record, record_change};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, Set, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
    sea_query::OnConflict,
};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::{
    Change, ChangeKind, IdempotencyKey, Limits, NOTIFY_CHANNEL, WRITE_LOCK_KEY, Write, Written,
    changes, check_version, patch,
    rows::{self, DecodedRecord},
};
use crate::{
    auth::Access,
    broker::Broker,
    cursor::ChangeCursors,
    error::{Error, Result},
    model::{Data, Record},
};

/// First wait before the writer retries a resync that failed; doubles up to
/// [`RESYNC_RETRY_MAX`].
const RESYNC_RETRY_MIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest wait between resync attempts.
const RESYNC_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the writer keeps asking PostgreSQL whether a group whose COMMIT reported
/// failure committed, before it answers that the outcome is unknown.
const COMMIT_STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One request waiting for the writer task: a write, or an atomic batch of them.
pub(super) struct Job {
    /// Who asked: decides which existing records the writes can see.
    pub access: Access,
    /// The records and what to do to each, in order. Data to create or replace with has
    /// been checked already (it is in canonical form and within the limits); a patch's
    /// result is checked here.
    pub ops: Vec<(Uuid, Write)>,
    /// An atomic batch: a refusal names the write's index.
    pub batch: bool,
    /// The idempotency key and the fingerprint of the request it is bound to.
    pub key: Option<(IdempotencyKey, String)>,
    /// When the client's request reached the store (for the latency histogram).
    pub started: Instant,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<Written>>,
}

/// What the writer decided for one job before anything is written.
enum Decision {
    /// Its writes apply: their results, and where their changes start in the group's
    /// change rows (one change per write, in order).
    Apply {
        results: Vec<record::Model>,
        first_change: usize,
    },
    /// Refused: nothing of it is written. Stored with its key, if it has one and the
    /// refusal is an outcome.
    Refused(Error),
    /// Its key was used before with this request: the stored outcome, again.
    Replay(Result<Written>),
    /// Its key was used by an earlier job of this group with this request: that job's
    /// outcome, again.
    SameAs(usize),
}

/// What the writer task needs: the pool, the lock, the broker and the limits.
#[derive(Clone)]
pub(super) struct Writer {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Held while a group commits and publishes (pruning takes it too).
    pub lock: Arc<Mutex<()>>,
    /// Where committed changes go.
    pub broker: Broker,
    /// What clients may send.
    pub limits: Arc<Limits>,
    /// Encodes the change cursors of answers.
    pub cursors: ChangeCursors,
}

/// Why a group did not commit.
enum GroupError {
    /// Nothing was written (BEGIN, the lock or the read of the current states failed):
    /// the writes would fail the same way alone.
    Setup(Error),
    /// A statement that writes failed and the group rolled back: one of its writes may
    /// be the cause, so each is retried alone.
    Statement(Error),
    /// COMMIT itself failed: the group may or may not have committed, so nothing is
    /// retried.
    Commit(Error),
}

impl GroupError {
    fn into_inner(self) -> Error {
        match self {
            Self::Setup(err) | Self::Statement(err) | Self::Commit(err) => err,
        }
    }
}

impl Writer {
    /// Commits the jobs arriving on `queue` until every sender is gone.
    pub async fn run(self, mut queue: mpsc::Receiver<Job>, max_batch: usize) {
        let max_batch = max_batch.max(1);
        let mut jobs = Vec::new();
        let mut retry = RESYNC_RETRY_MIN;
        loop {
            let received = if self.broker.in_sync() {
                queue.recv_many(&mut jobs, max_batch).await
            } else {
                // `recv_many` is cancel safe: a timer that fires first loses no job.
                tokio::select! {
                    n = queue.recv_many(&mut jobs, max_batch) => n,
                    _ = tokio::time::sleep(retry) => {
                        let _lock = self.lock.lock().await;
                        retry = if self.resync().await {
                            RESYNC_RETRY_MIN
                        } else {
                            (retry * 2).min(RESYNC_RETRY_MAX)
                        };
                        continue;
                    }
                }
            };
            if received == 0 {
                return;
            }
            // Groups hold at most `max_batch` writes (a batch counts each of its writes; a
            // larger batch commits alone), so a group's statements stay within the
            // databases' limits on parameters.
            let mut pending = std::mem::take(&mut jobs).into_iter().peekable();
            while pending.peek().is_some() {
                let mut group_jobs = Vec::new();
                let mut writes = 0;
                while let Some(job) = pending.peek() {
                    if !group_jobs.is_empty() && writes + job.ops.len() > max_batch {
                        break;
                    }
                    writes += job.ops.len();
                    group_jobs.extend(pending.next());
                }
                // A task per group, so that a bug that panics fails that group's writes
                // (their clients get an error) and not every write after it.
                let group = tokio::spawn(self.clone().commit(group_jobs));
                if let Err(err) = group.await {
                    tracing::error!(error = %err, "a write group failed");
                    self.outcome_unknown();
                }
            }
        }
    }

    /// After a group whose COMMIT may or may not have happened: on SQLite nothing is
    /// published until the broker has resynced from the log; on PostgreSQL the follower
    /// reads the log now.
    fn outcome_unknown(&self) {
        if self.db.get_database_backend() == DbBackend::Postgres {
            self.broker.poke();
        } else {
            tracing::warn!(
                "a write's outcome is unknown; publishing waits for a resync from the change log"
            );
            self.broker.mark_unsynced();
        }
    }

    /// Publishes every change in the log after the broker's head and marks the broker in
    /// sync; whether that worked. Called with the write lock held, so no group commits
    /// meanwhile.
    async fn resync(&self) -> bool {
        let batch = u64::from(self.limits.catch_up_batch.max(1));
        match changes::publish_from_log(&self.db, &self.broker, batch).await {
            Ok(()) => {
                self.broker.mark_synced();
                tracing::info!(
                    head = self.broker.head(),
                    "resynced the broker from the change log"
                );
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot resync the broker from the change log yet");
                false
            }
        }
    }

    /// Commits one group and answers every job in it.
    async fn commit(self, jobs: Vec<Job>) {
        let _lock = self.lock.lock().await;
        let started = Instant::now();
        let group = self.commit_group(&jobs).await;
        tracing::debug!(
            writes = jobs.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "write group done"
        );
        let outcomes = match group {
            Ok(outcomes) => outcomes,
            Err(GroupError::Statement(err)) if jobs.len() > 1 => {
                tracing::debug!(error = %err, writes = jobs.len(), "group rolled back; retrying its writes one by one");
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    let outcome = match self.commit_group(std::slice::from_ref(job)).await {
                        Ok(mut one) => one.pop().unwrap_or_else(|| {
                            Err(Error::Internal("a group of one had no outcome".into()))
                        }),
                        Err(err) => Err(err.into_inner()),
                    };
                    outcomes.push(outcome);
                }
                outcomes
            }
            Err(err) => {
                let err = err.into_inner();
                let mut outcomes: Vec<_> =
                    jobs.iter().skip(1).map(|_| Err(same_error(&err))).collect();
                outcomes.insert(0, Err(err));
                outcomes
            }
        };
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            crate::metrics::mutation_finished(kind_label(&job), job.started);
            // The client may have gone; its write stands all the same.
            let _ = job.reply.send(outcome);
        }
    }

    /// Whether the PostgreSQL transaction `xid`, whose COMMIT reported failure, committed
    /// (`txid_status`, asked on another connection); `None` while that cannot be told
    /// within [`COMMIT_STATUS_WAIT`], and always on SQLite.
    async fn commit_status(&self, xid: Option<i64>) -> Option<bool> {
        let xid = xid?;
        let deadline = Instant::now() + COMMIT_STATUS_WAIT;
        loop {
            let asked = self
                .db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT txid_status({xid}) AS status"),
                ))
                .await;
            // "in progress" lasts until the backend that ran it has gone; NULL means the
            // id is too old to tell, which cannot happen within this wait.
            let status = asked
                .ok()
                .flatten()
                .and_then(|r| r.try_get::<Option<String>>("", "status").ok());
            match status.flatten().as_deref() {
                Some("committed") => return Some(true),
                Some("aborted") => return Some(false),
                _ if Instant::now() >= deadline => return None,
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    /// Commits `jobs` in one transaction and publishes their changes; each job's
    /// outcome, in order.
    async fn commit_group(
        &self,
        jobs: &[Job],
    ) -> std::result::Result<Vec<Result<Written>>, GroupError> {
        let postgres = self.db.get_database_backend() == DbBackend::Postgres;
        let setup = |e: sea_orm::DbErr| GroupError::Setup(e.into());
        // IMMEDIATE takes SQLite's write lock up front, so the reads of the current
        // states and the writes that follow cannot be split by another writer.
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: (!postgres).then_some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
            .map_err(setup)?;
        // On PostgreSQL: writers on every instance take this lock before their changes get
        // sequence numbers and hold it until COMMIT, so numbers commit in order. The
        // transaction's id lets a failed COMMIT be resolved afterwards.
        let xid = if postgres {
            let row = txn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!(
                        "SELECT txid_current() AS xid FROM pg_advisory_xact_lock({WRITE_LOCK_KEY})"
                    ),
                ))
                .await
                .map_err(setup)?;
            let xid = row
                .map(|r| r.try_get::<i64>("", "xid"))
                .transpose()
                .map_err(setup)?;
            Some(xid.ok_or_else(|| GroupError::Setup(Error::Internal("no transaction id".into())))?)
        } else {
            None
        };
        let (outcomes, changes) = self.stage(&txn, jobs).await?;
        if postgres && let Some(last) = changes.last() {
            // Delivered to every instance's follower when (and only if) this commits.
            txn.execute_unprepared(&format!(
                "SELECT pg_notify('{}', '{}')",
                NOTIFY_CHANNEL, last.seq
            ))
            .await
            .map_err(|e| GroupError::Statement(e.into()))?;
        }
        if let Err(err) = txn.commit().await {
            // The COMMIT may have happened even though it reported failure. PostgreSQL can
            // tell, once the connection that sent it is gone.
            match self.commit_status(xid).await {
                Some(true) => {
                    tracing::warn!(error = %err, "COMMIT reported failure but the group committed");
                }
                Some(false) => {
                    tracing::warn!(error = %err, "COMMIT failed and the group rolled back");
                    return Err(GroupError::Setup(err.into()));
                }
                None => {
                    self.outcome_unknown();
                    // Never SERVICE_UNAVAILABLE: that invites a blind retry of a write that
                    // may have committed.
                    tracing::error!(error = %err, "COMMIT failed; whether the group committed is unknown");
                    return Err(GroupError::Commit(Error::Internal(format!(
                        "COMMIT failed and whether the write committed is unknown: {err}"
                    ))));
                }
            }
        }
        if postgres {
            // Other instances' changes interleave with ours, so every instance publishes
            // from the log in order; tell ours to look now rather than wait for NOTIFY.
            if !changes.is_empty() {
                self.broker.poke();
            }
        } else if self.broker.in_sync() {
            for change in changes {
                self.broker.publish(change);
            }
        } else {
            // The log holds this group's changes after any that committed unseen; if it
            // cannot be read now, the timer in `run` tries again.
            self.resync().await;
        }
        Ok(outcomes)
    }

    /// Decides every job against the current states (and the states the jobs before it
    /// leave), appends their changes to the log, writes the records' new states and the
    /// outcomes of jobs with idempotency keys; each job's outcome, and the changes.
    async fn stage(
        &self,
        txn: &DatabaseTransaction,
        jobs: &[Job],
    ) -> std::result::Result<(Vec<Result<Written>>, Vec<Change>), GroupError> {
        let ids: Vec<Uuid> = jobs
            .iter()
            .flat_map(|j| j.ops.iter().map(|(id, _)| *id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // Every record the group touches, as it is now; absent ones are added as `None`
        // when a job first looks. Read with the data as text and parsed at any depth,
        // each row on its own: a row that cannot be read fails only the writes to that
        // record.
        let rows = rows::records()
            .filter(record::Column::Id.is_in(ids))
            .into_model::<DecodedRecord>()
            .all(txn)
            .await
            .map_err(|e| GroupError::Setup(e.into()))?;
        let mut states: HashMap<Uuid, Option<record::Model>> = HashMap::new();
        let mut unreadable = HashSet::new();
        for row in rows {
            match row.record {
                Ok(found) => {
                    states.insert(row.id, Some(found));
                }
                Err(err) => {
                    rows::skipped("record", &err);
                    unreadable.insert(row.id);
                }
            }
        }

        let mut decisions = Vec::with_capacity(jobs.len());
        let mut pending = Vec::with_capacity(jobs.len());
        let (mut touched, mut seen) = (Vec::new(), HashSet::new());
        // Keys decided earlier in this group: the job and its fingerprint.
        let mut keys: HashMap<(&str, &str), (usize, &str)> = HashMap::new();
        for (j, job) in jobs.iter().enumerate() {
            if let Some((key, fingerprint)) = &job.key {
                let k = (key.scope.as_str(), key.key.as_str());
                if let Some((earlier, first)) = keys.get(&k) {
                    decisions.push(if first == fingerprint {
                        Decision::SameAs(*earlier)
                    } else {
                        Decision::Refused(Error::IdempotencyKeyReused)
                    });
                    continue;
                }
                let stored =
                    idempotency_key::Entity::find_by_id((key.scope.clone(), key.key.clone()))
                        .one(txn)
                        .await
                        .map_err(|e| GroupError::Setup(e.into()))?;
                if let Some(stored) = stored {
                    decisions.push(if &stored.fingerprint == fingerprint {
                        Decision::Replay(replay(&stored.outcome))
                    } else {
                        Decision::Refused(Error::IdempotencyKeyReused)
                    });
                    continue;
                }
                keys.insert(k, (j, fingerprint.as_str()));
            }
            // Each write against the states the writes before it leave; on a refusal,
            // the job's earlier writes are undone.
            let mut undo: Vec<(Uuid, Option<record::Model>)> = Vec::new();
            let (mut results, mut changes) = (Vec::new(), Vec::new());
            let mut refused = None;
            for (index, (id, write)) in job.ops.iter().enumerate() {
                let decided = if unreadable.contains(id) {
                    Err(Error::Internal(format!(
                        "record {id} cannot be read from the database"
                    )))
                } else {
                    let at = super::now();
                    let state = states.entry(*id).or_default();
                    self.decide(&job.access, *id, write, state.as_ref(), at)
                        .map(|(kind, after)| {
                            undo.push((*id, state.clone()));
                            changes.push(change_row(kind, &after, at));
                            *state = (kind != ChangeKind::Deleted).then(|| after.clone());
                            after
                        })
                };
                match decided {
                    Ok(after) => results.push(after),
                    Err(err) => {
                        refused = Some(if job.batch {
                            Error::InBatch {
                                index,
                                source: Box::new(err),
                            }
                        } else {
                            err
                        });
                        break;
                    }
                }
            }
            if let Some(err) = refused {
                for (id, before) in undo.into_iter().rev() {
                    states.insert(id, before);
                }
                // A conflict shows the record as it is outside this job (a batch's own
                // earlier writes are undone), and its `current` only if that state is
                // committed, so its change cursor is final.
                let err = restate_conflict(err, &states, &seen, &job.access, &self.cursors);
                decisions.push(Decision::Refused(err));
                continue;
            }
            for (id, _) in &job.ops {
                if seen.insert(*id) {
                    touched.push(*id);
                }
            }
            decisions.push(Decision::Apply {
                results,
                first_change: pending.len(),
            });
            pending.extend(changes);
        }

        // The changes first: their positions are the records' change cursors.
        let changes = insert_changes(txn, pending)
            .await
            .map_err(GroupError::Statement)?;
        let mut last_seq: HashMap<Uuid, i64> = HashMap::new();
        for change in &changes {
            last_seq.insert(change.record_id, change.seq);
        }

        let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
        for id in touched {
            match states.remove(&id).flatten() {
                Some(mut state) => {
                    if let Some(seq) = last_seq.get(&id) {
                        state.change_seq = *seq;
                    }
                    upserts.push(record::ActiveModel::from(state));
                }
                None => deletes.push(id),
            }
        }
        if !upserts.is_empty() {
            record::Entity::insert_many(upserts)
                .on_conflict(
                    OnConflict::column(record::Column::Id)
                        .update_columns([
                            record::Column::Collection,
                            record::Column::Data,
                            record::Column::Version,
                            record::Column::CreatedAt,
                            record::Column::UpdatedAt,
                            record::Column::ChangeSeq,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await
                .map_err(|e| GroupError::Statement(e.into()))?;
        }
        if !deletes.is_empty() {
            record::Entity::delete_many()
                .filter(record::Column::Id.is_in(deletes))
                .exec(txn)
                .await
                .map_err(|e| GroupError::Statement(e.into()))?;
        }

        // Each job's outcome; those with a key are stored with the write.
        let mut outcomes: Vec<Result<Written>> = Vec::with_capacity(jobs.len());
        let mut stored = Vec::new();
        let now = super::now();
        for (job, decision) in jobs.iter().zip(decisions) {
            let outcome = match decision {
                Decision::Apply {
                    results,
                    first_change,
                } => {
                    let records = results
                        .into_iter()
                        .enumerate()
                        .map(|(k, mut r)| {
                            r.change_seq = changes[first_change + k].seq;
                            Record::new(&r, &self.cursors)
                        })
                        .collect();
                    Ok(Written {
                        records,
                        replayed: false,
                    })
                }
                Decision::Refused(err) => Err(err),
                Decision::Replay(outcome) => outcome,
                Decision::SameAs(earlier) => replayed(&outcomes[earlier]),
            };
            let fresh = !matches!(&outcome, Ok(w) if w.replayed)
                && !matches!(
                    &outcome,
                    Err(Error::Replayed { .. } | Error::IdempotencyKeyReused)
                );
            if let Some((key, fingerprint)) = &job.key
                && fresh
                && let Some(text) = stored_outcome(&outcome)
            {
                stored.push(idempotency_key::ActiveModel {
                    scope: Set(key.scope.clone()),
                    key: Set(key.key.clone()),
                    fingerprint: Set(fingerprint.clone()),
                    outcome: Set(text),
                    created_at: Set(now),
                });
            }
            outcomes.push(outcome);
        }
        if !stored.is_empty() {
            idempotency_key::Entity::insert_many(stored)
                .exec_without_returning(txn)
                .await
                .map_err(|e| GroupError::Statement(e.into()))?;
        }
        Ok((outcomes, changes))
    }

    /// What one write does to the record's state `current`: the change's kind and the
    /// record after it (for a delete, its last state), or why it is refused.
    fn decide(
        &self,
        access: &Access,
        id: Uuid,
        write: &Write,
        current: Option<&record::Model>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(ChangeKind, record::Model)> {
        // A record in a collection the client may not access does not exist for it, but
        // taking its id is a duplicate all the same, as the primary key would say.
        let visible = current.filter(|r| access.allows(&r.collection));
        let check = |current: &record::Model, expected: Option<i32>| {
            check_version(current, expected, access, &self.cursors)
        };
        let (current, data, expected_version) = match (write, visible) {
            (Write::Create { collection, data }, _) => {
                if current.is_some() {
                    return Err(Error::AlreadyExists(id));
                }
                let state = record::Model {
                    id,
                    collection: collection.clone(),
                    data: data.clone(),
                    version: 1,
                    created_at: at,
                    updated_at: at,
                    change_seq: 0,
                };
                return Ok((ChangeKind::Created, state));
            }
            (_, None) => return Err(Error::NotFound(id)),
            (Write::Delete { expected_version }, Some(current)) => {
                check(current, *expected_version)?;
                return Ok((ChangeKind::Deleted, current.clone()));
            }
            (
                Write::Replace {
                    data,
                    expected_version,
                },
                Some(current),
            ) => (current, data.clone(), *expected_version),
            (
                Write::Patch {
                    patch,
                    expected_version,
                },
                Some(current),
            ) => {
                check(current, *expected_version)?;
                let mut data = current.data.clone();
                patch::merge_patch(&mut data, patch);
                (current, super::checked_data(&self.limits, data)?, None)
            }
        };
        check(current, expected_version)?;
        let version = current
            .version
            .checked_add(1)
            .ok_or_else(|| Error::bad_input("record version overflow"))?;
        let state = record::Model {
            data,
            version,
            updated_at: at,
            ..current.clone()
        };
        Ok((ChangeKind::Updated, state))
    }
}

/// A version conflict restated against `states` (the record before the refused job):
/// its version, and the record itself for a caller who may read it unless an earlier job
/// of this group changed it (whose change cursor is not assigned yet).
fn restate_conflict(
    err: Error,
    states: &HashMap<Uuid, Option<record::Model>>,
    changed: &HashSet<Uuid>,
    access: &Access,
    cursors: &ChangeCursors,
) -> Error {
    match err {
        Error::InBatch { index, source } => Error::InBatch {
            index,
            source: Box::new(restate_conflict(*source, states, changed, access, cursors)),
        },
        Error::VersionConflict {
            id,
            expected,
            current,
            ..
        } => match states.get(&id).and_then(Option::as_ref) {
            Some(state) => Error::VersionConflict {
                id,
                expected,
                current: state.version,
                record: (access.read && !changed.contains(&id))
                    .then(|| serde_json::to_value(Record::new(state, cursors)).ok())
                    .flatten()
                    .map(Box::new),
            },
            // Created by the refused batch itself: outside it, the record does not exist.
            None => Error::VersionConflict {
                id,
                expected,
                current,
                record: None,
            },
        },
        other => other,
    }
}

/// The outcome as an idempotency key keeps it: the records, or a refusal that is an
/// outcome. `None` when nothing was decided (the retry must run anew). Written straight
/// to text: the records' data stays as the text it is.
fn stored_outcome(outcome: &Result<Written>) -> Option<String> {
    #[derive(serde::Serialize)]
    struct Stored<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        records: Option<&'a [Record]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<serde_json::Value>,
    }
    let stored = match outcome {
        Ok(written) => Stored {
            records: Some(&written.records),
            error: None,
        },
        Err(err) => Stored {
            records: None,
            error: Some(err.stored()?),
        },
    };
    serde_json::to_string(&stored).ok()
}

/// A stored outcome, answered again.
fn replay(text: &str) -> Result<Written> {
    #[derive(serde::Deserialize)]
    struct Stored {
        records: Option<Vec<Record>>,
        error: Option<serde_json::Value>,
    }
    // The records' data may nest as deep as any stored record: no recursion limit (the
    // data itself is kept as text, unparsed).
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let stored = <Stored as serde::Deserialize>::deserialize(&mut de)
        .map_err(|e| Error::Internal(format!("a stored outcome cannot be read: {e}")))?;
    match (stored.records, stored.error) {
        (Some(records), _) => Ok(Written {
            records,
            replayed: true,
        }),
        (None, Some(error)) => Err(Error::replayed(&error)),
        (None, None) => Err(Error::Internal("a stored outcome is empty".into())),
    }
}

/// An outcome of this group, answered again to a job with the same key and request.
fn replayed(outcome: &Result<Written>) -> Result<Written> {
    match outcome {
        Ok(written) => Ok(Written {
            records: written.records.clone(),
            replayed: true,
        }),
        Err(err) => Err(match err.stored() {
            Some(stored) => Error::replayed(&stored),
            None => same_error(err),
        }),
    }
}

/// The change-log row for a change of `kind` leaving the record at `state`; its `seq`
/// is assigned on insert.
fn change_row(
    kind: ChangeKind,
    state: &record::Model,
    at: chrono::DateTime<chrono::Utc>,
) -> record_change::Model {
    record_change::Model {
        seq: 0,
        record_id: state.id,
        collection: state.collection.clone(),
        kind: kind.as_str().to_owned(),
        version: state.version,
        data: state.data.clone(),
        record_created_at: state.created_at,
        record_updated_at: state.updated_at,
        changed_at: at,
    }
}

/// Appends `pending` to the change log in one statement and returns the rows with their
/// sequence numbers. The rows are numbered in the order they are listed (the key's
/// default is evaluated row by row as they are inserted), so sorting the returned keys
/// gives each row its number.
async fn insert_changes(
    txn: &DatabaseTransaction,
    pending: Vec<record_change::Model>,
) -> Result<Vec<Change>> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let rows = pending.iter().map(|c| record_change::ActiveModel {
        seq: Default::default(),
        record_id: Set(c.record_id),
        collection: Set(c.collection.clone()),
        kind: Set(c.kind.clone()),
        version: Set(c.version),
        data: Set(c.data.clone()),
        record_created_at: Set(c.record_created_at),
        record_updated_at: Set(c.record_updated_at),
        changed_at: Set(c.changed_at),
    });
    let mut seqs = record_change::Entity::insert_many(rows)
        .exec_with_returning_keys(txn)
        .await?;
    if seqs.len() != pending.len() {
        return Err(Error::Internal(format!(
            "the change log numbered {} of {} changes",
            seqs.len(),
            pending.len()
        )));
    }
    seqs.sort_unstable();
    // From here on a change is kept as its text, serialized once for every subscriber.
    Ok(pending
        .into_iter()
        .zip(seqs)
        .map(|(c, seq)| Change {
            seq,
            record_id: c.record_id,
            kind: kind_of(&c.kind),
            collection: c.collection,
            version: c.version,
            data: Data::from_value(&c.data),
            record_created_at: c.record_created_at,
            record_updated_at: c.record_updated_at,
            changed_at: c.changed_at,
        })
        .collect())
}

/// The kind a staged row was given (always one of the three).
fn kind_of(name: &str) -> ChangeKind {
    name.parse().unwrap_or(ChangeKind::Updated)
}

/// The error the other writes of a failed group get: the same code, the same message
/// (errors are not `Clone`).
fn same_error(err: &Error) -> Error {
    let message = err.to_string();
    match err {
        Error::Unavailable(_) => Error::Unavailable(sea_orm::DbErr::Custom(message)),
        Error::Database(_) => Error::Database(sea_orm::DbErr::Custom(message)),
        _ => Error::Internal(message),
    }
}

/// The metrics label of a request.
fn kind_label(job: &Job) -> &'static str {
    match job.ops.as_slice() {
        [(_, Write::Create { .. })] if !job.batch => "create",
        [(_, Write::Replace { .. })] if !job.batch => "update",
        [(_, Write::Patch { .. })] if !job.batch => "patch",
        [(_, Write::Delete { .. })] if !job.batch => "delete",
        _ => "batch",
    }
}
