//! Reading and pruning the change log.
//!
//! Readers never take the write lock: on SQLite in WAL mode and on PostgreSQL a read
//! sees a snapshot while writers go on, so replaying old changes never blocks writes.

use std::time::Duration;

use chrono::Utc;
use entity::{
    change_log_state,
    record_change::{self, Column},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use futures_util::TryStreamExt;

use super::{
    Change, ChangeKind, Store,
    rows::{self, DecodedChange},
};
use crate::{
    broker::Broker,
    error::{Error, Result},
    model::ResponseBudget,
};

/// Which changes a reader wants.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    /// Only this collection.
    pub collection: Option<String>,
    /// Only these collections (what the client's token allows; `None`: all).
    pub allowed: Option<Vec<String>>,
    /// Only this record.
    pub id: Option<Uuid>,
    /// Only these kinds (all when `None`).
    pub kinds: Option<Vec<ChangeKind>>,
}

impl ChangeFilter {
    /// Whether `change` passes the filter.
    pub fn matches(&self, change: &Change) -> bool {
        self.collection
            .as_ref()
            .is_none_or(|c| *c == change.collection)
            && self
                .allowed
                .as_ref()
                .is_none_or(|a| a.contains(&change.collection))
            && self.id.is_none_or(|id| id == change.record_id)
            && self
                .kinds
                .as_ref()
                .is_none_or(|kinds| kinds.contains(&change.kind))
    }

    fn condition(&self) -> sea_orm::Condition {
        let mut cond = sea_orm::Condition::all();
        if let Some(c) = &self.collection {
            cond = cond.add(Column::Collection.eq(c.clone()));
        }
        if let Some(allowed) = &self.allowed {
            cond = cond.add(Column::Collection.is_in(allowed.iter().cloned()));
        }
        if let Some(id) = self.id {
            cond = cond.add(Column::RecordId.eq(id));
        }
        if let Some(kinds) = &self.kinds {
            cond = cond.add(Column::Kind.is_in(kinds.iter().map(|k| k.as_str())));
        }
        cond
    }
}

/// A run of changes read from the log.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    /// The matching changes, in order.
    pub changes: Vec<Change>,
    /// Every change up to this position has been considered (matching or not).
    pub through: i64,
    /// The log holds more changes after `through`.
    pub has_more: bool,
}

/// The newest committed position (0 for an empty log).
pub async fn head(conn: &impl ConnectionTrait) -> Result<i64> {
    let max: Option<Option<i64>> = record_change::Entity::find()
        .select_only()
        .column_as(Column::Seq.max(), "max")
        .into_tuple()
        .one(conn)
        .await?;
    let pruned = pruned_through(conn).await?;
    Ok(max.flatten().unwrap_or(0).max(pruned))
}

/// Everything at or below this position has been pruned.
pub async fn pruned_through(conn: &impl ConnectionTrait) -> Result<i64> {
    Ok(change_log_state::Entity::find_by_id(1)
        .one(conn)
        .await?
        .map(|s| s.pruned_through)
        .unwrap_or(0))
}

/// Up to `limit` rows of any collection after `after`, oldest first: the changes that
/// decode, the position of the last row read, and how many rows were read.
async fn changes_since(
    conn: &impl ConnectionTrait,
    after: i64,
    limit: u64,
) -> Result<(Vec<Change>, Option<i64>, u64)> {
    let rows = rows::changes()
        .filter(Column::Seq.gt(after))
        .order_by_asc(Column::Seq)
        .limit(limit)
        .into_model::<DecodedChange>()
        .all(conn)
        .await?;
    let last = rows.last().map(|r| r.seq);
    let read = rows.len() as u64;
    let backend = conn.get_database_backend();
    let changes = rows
        .into_iter()
        .filter_map(|r| {
            r.change(backend)
                .map_err(|e| rows::skipped("record_change", &e))
                .ok()
        })
        .collect();
    Ok((changes, last, read))
}

/// Publishes every change in the log after `broker`'s head, in order, reading `batch`
/// at a time. The caller makes sure nobody else publishes meanwhile.
pub async fn publish_from_log(
    conn: &impl ConnectionTrait,
    broker: &Broker,
    batch: u64,
) -> Result<()> {
    loop {
        let (changes, last, read) = changes_since(conn, broker.head(), batch).await?;
        for change in changes {
            broker.publish(change);
        }
        // A row left out still moves the head past it.
        if let Some(last) = last {
            broker.advance(last);
        }
        if read < batch {
            return Ok(());
        }
    }
}

impl Store {
    /// Publishes every change in the log after the broker's head (the PostgreSQL
    /// follower, which is the only publisher there).
    pub async fn publish_from_log(&self) -> Result<()> {
        let batch = u64::from(self.limits().catch_up_batch.max(1));
        publish_from_log(self.db(), self.broker(), batch).await
    }

    /// The newest committed position.
    pub async fn head(&self) -> Result<i64> {
        head(self.db()).await
    }

    /// Checks that a client may resume after `after`: `CURSOR_EXPIRED` if changes it
    /// has not seen were pruned, `BAD_USER_INPUT` if it is ahead of the log.
    pub async fn check_resume(&self, after: i64) -> Result<()> {
        let txn = self.read_txn().await?;
        let pruned = pruned_through(&txn).await?;
        let head = head(&txn).await?;
        txn.commit().await?;
        if after < pruned {
            return Err(Error::CursorExpired);
        }
        if after > head {
            return Err(Error::bad_input("cursor is ahead of the change log"));
        }
        Ok(())
    }

    /// Up to `limit` matching changes after `after` and at or below `upto`.
    ///
    /// `upto` must be a committed position: since positions commit in order, nothing at
    /// or below it can still appear, so `through` is safe to resume from.
    pub async fn changes_between(
        &self,
        after: i64,
        upto: i64,
        filter: &ChangeFilter,
        limit: u64,
        budget: Option<&ResponseBudget>,
    ) -> Result<ChangeBatch> {
        let txn = self.read_txn().await?;
        if after < pruned_through(&txn).await? {
            return Err(Error::CursorExpired);
        }
        // Rows are taken one by one until `limit` of them or `--catch-up-bytes` (but
        // always at least one), so a batch of large records stays small.
        let batch_bytes = self.limits().catch_up_bytes;
        let backend = self.backend();
        let mut rows = rows::changes()
            .filter(Column::Seq.gt(after))
            .filter(Column::Seq.lte(upto))
            .filter(filter.condition())
            .order_by_asc(Column::Seq)
            .limit(limit + 1)
            .into_model::<DecodedChange>()
            .stream(&txn)
            .await?;
        let (mut changes, mut bytes, mut read, mut last) = (Vec::new(), 0usize, 0u64, None);
        let mut has_more = false;
        while let Some(row) = rows.try_next().await? {
            if read == limit || (read > 0 && bytes >= batch_bytes) {
                has_more = true;
                break;
            }
            read += 1;
            last = Some(row.seq);
            match row.change(backend) {
                Ok(change) => {
                    bytes += change.size();
                    if let Some(budget) = budget {
                        budget.charge(change.data.len())?;
                    }
                    changes.push(change);
                }
                Err(err) => rows::skipped("record_change", &err),
            }
        }
        drop(rows);
        txn.commit().await?;
        let through = match (has_more, last) {
            (true, Some(last)) => last,
            // A zero-sized read considered nothing.
            (true, None) => after,
            (false, _) => upto,
        };
        Ok(ChangeBatch {
            changes,
            through,
            has_more,
        })
    }

    /// A page of the change log for polling clients: matching changes after `after`
    /// (or from the oldest retained change).
    pub async fn changes(
        &self,
        after: Option<i64>,
        filter: &ChangeFilter,
        first: u64,
        budget: Option<&ResponseBudget>,
    ) -> Result<ChangeBatch> {
        let txn = self.read_txn().await?;
        let pruned = pruned_through(&txn).await?;
        let head = head(&txn).await?;
        txn.commit().await?;
        let after = match after {
            Some(a) if a < pruned => return Err(Error::CursorExpired),
            Some(a) if a > head => {
                return Err(Error::bad_input("cursor is ahead of the change log"));
            }
            Some(a) => a,
            None => pruned,
        };
        self.changes_between(after, head, filter, first, budget)
            .await
    }

    /// Deletes idempotency keys older than `retention`: a retry after that runs anew.
    pub async fn prune_keys(&self, retention: Duration) -> Result<u64> {
        use entity::idempotency_key;
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = Utc::now().checked_sub_signed(retention) else {
            return Ok(0);
        };
        Ok(idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::CreatedAt.lt(cutoff))
            .exec(self.db())
            .await?
            .rows_affected)
    }

    /// Deletes changes older than `retention` and records how far the log was pruned.
    /// Returns the number of changes deleted.
    pub async fn prune(&self, retention: Duration) -> Result<u64> {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = Utc::now().checked_sub_signed(retention) else {
            return Ok(0);
        };
        let _writer = self.writer.lock().await;
        let txn = self.db().begin().await?;
        let newest_expired: Option<Option<i64>> = record_change::Entity::find()
            .select_only()
            .column_as(Column::Seq.max(), "max")
            .filter(Column::ChangedAt.lt(cutoff))
            .into_tuple()
            .one(&txn)
            .await?;
        let Some(through) = newest_expired.flatten() else {
            return Ok(0);
        };
        let deleted = record_change::Entity::delete_many()
            .filter(Column::Seq.lte(through))
            .exec(&txn)
            .await?
            .rows_affected;
        change_log_state::Entity::update_many()
            .col_expr(
                change_log_state::Column::PrunedThrough,
                Expr::value(through),
            )
            .filter(change_log_state::Column::Id.eq(1))
            .filter(change_log_state::Column::PrunedThrough.lt(through))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted)
    }
}
