//! The service layer: every operation a client can ask for, and the only thing the
//! transports call.
//!
//! Each operation takes the caller's [`Access`] as a required argument and checks it
//! here, the same way for every transport, so a transport only parses its input, calls
//! one operation and shapes the answer. The rules, once:
//! - Access is checked before input: a token that may not read (or write) gets
//!   `FORBIDDEN` whatever it sent to the service, and so does a collection outside its
//!   scope, before the input is validated and before anything is read. (What a
//!   transport cannot parse at all is refused before the service is called.)
//! - A record in a collection the caller may not see does not exist for it: reads return
//!   nothing, writes `NOT_FOUND`.
//!
//! # Layout
//! - this file: [`Service`] and its operations.
//! - [`feed`]: one subscription's gap-free stream: replay from the change log, then
//!   live changes from the broker, back to the log whenever the live stream has a gap.
//! - [`follower`]: with PostgreSQL, the task that publishes changes committed by any
//!   instance from the log, in order.

pub mod feed;
pub mod follower;

use std::{sync::Arc, time::Duration};

use futures_util::Stream;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    auth::Access,
    broker::Broker,
    error::{Error, Result},
    model::{Change, ChangeKind, Record, ResponseBudget},
    store::{
        IdempotencyKey, Store, Write, WriteOp, Written,
        changes::{ChangeBatch, ChangeFilter},
        records::{Page, PageRequest},
    },
    validate::validate_collection,
};

/// Which changes a reader of the log or a subscriber asks for.
#[derive(Debug, Clone, Default)]
pub struct ChangesQuery {
    /// Only this collection.
    pub collection: Option<String>,
    /// Only this record (subscriptions).
    pub id: Option<Uuid>,
    /// Only these kinds (subscriptions; all when `None`).
    pub kinds: Option<Vec<ChangeKind>>,
    /// Start after this change cursor.
    pub after: Option<String>,
    /// Bytes of record data the page may load (GraphQL queries; `None`: unbounded).
    pub budget: Option<Arc<ResponseBudget>>,
}

/// The service: a cheap-to-clone handle on the store (and through it the broker).
#[derive(Clone)]
pub struct Service {
    /// All database work.
    store: Store,
}

impl Service {
    /// The service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The store (for the application's background work and readiness).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The broker (for counters and readiness).
    pub fn broker(&self) -> &Broker {
        self.store.broker()
    }

    /// One record by id, or `None`, also when the caller may not see its collection.
    pub async fn record(&self, access: &Access, id: Uuid) -> Result<Option<Record>> {
        access.check_read()?;
        Ok(self
            .store
            .record(id)
            .await?
            .filter(|r| access.allows(&r.collection)))
    }

    /// A page of records the caller may see, with the change-log position it was read
    /// at. The page's `allowed` collections are the caller's, whatever `request` says.
    pub async fn records(&self, access: &Access, mut request: PageRequest) -> Result<Page> {
        access.check_read()?;
        if let Some(c) = &request.collection {
            access.check_collection(c)?;
        }
        request.allowed = access.collection_list();
        self.store.records(request).await
    }

    /// A page of the change log for a polling client: the changes it may see after
    /// `after` (from the oldest retained one without it), at most `first`.
    pub async fn changes(
        &self,
        access: &Access,
        query: ChangesQuery,
        first: Option<i32>,
    ) -> Result<ChangeBatch> {
        let filter = self.filter(access, &query)?;
        let after = self.decode_after(query.after.as_deref())?;
        let first = self.store.page_size(first)?;
        self.store
            .changes(after, &filter, first, query.budget.as_deref())
            .await
    }

    /// Every change the caller may see matching `query`, in commit order, each once:
    /// after `query.after` (replaying from the log first), or from the log's head as the
    /// database sees it now, so that nothing committed before the call arrives,
    /// whichever instance wrote it. `CURSOR_EXPIRED` if `after` was pruned.
    pub async fn subscribe(
        &self,
        access: &Access,
        query: ChangesQuery,
    ) -> Result<impl Stream<Item = Result<Arc<Change>>> + Send + 'static + use<>> {
        let filter = self.filter(access, &query)?;
        let after = match self.decode_after(query.after.as_deref())? {
            Some(after) => {
                self.store.check_resume(after).await?;
                after
            }
            None => self.store.head().await?,
        };
        Ok(feed::subscribe(self.store.clone(), filter, after))
    }

    /// The change filter for `access` and `query`, after the access checks.
    fn filter(&self, access: &Access, query: &ChangesQuery) -> Result<ChangeFilter> {
        access.check_read()?;
        if let Some(c) = &query.collection {
            access.check_collection(c)?;
            validate_collection(c)?;
        }
        Ok(ChangeFilter {
            collection: query.collection.clone(),
            allowed: access.collection_list(),
            id: query.id,
            kinds: query.kinds.clone(),
        })
    }

    /// Creates a record (with `id`, or a new one). `ALREADY_EXISTS` if the id is taken.
    pub async fn create(
        &self,
        access: &Access,
        id: Option<Uuid>,
        collection: String,
        data: Value,
        key: Option<&str>,
    ) -> Result<Written> {
        self.apply(access, id, Write::Create { collection, data }, key)
            .await
    }

    /// Replaces a record's data, if it is at `expected_version` when one is given.
    pub async fn update(
        &self,
        access: &Access,
        id: Uuid,
        data: Value,
        expected_version: Option<i32>,
        key: Option<&str>,
    ) -> Result<Written> {
        let write = Write::Replace {
            data,
            expected_version,
        };
        self.apply(access, Some(id), write, key).await
    }

    /// Applies a JSON Merge Patch (RFC 7396) to a record's data.
    pub async fn patch(
        &self,
        access: &Access,
        id: Uuid,
        patch: Value,
        expected_version: Option<i32>,
        key: Option<&str>,
    ) -> Result<Written> {
        let write = Write::Patch {
            patch,
            expected_version,
        };
        self.apply(access, Some(id), write, key).await
    }

    /// Deletes a record and returns its last state.
    pub async fn delete(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: Option<i32>,
        key: Option<&str>,
    ) -> Result<Written> {
        self.apply(access, Some(id), Write::Delete { expected_version }, key)
            .await
    }

    /// Any one write, through the single write path: the record and its change commit
    /// together, then the change is published. Returns the record after the write (for
    /// a delete, its last state).
    pub async fn apply(
        &self,
        access: &Access,
        id: Option<Uuid>,
        write: Write,
        key: Option<&str>,
    ) -> Result<Written> {
        self.apply_request(access, id, write, key, None).await
    }

    /// [`Service::apply`] for a transport that binds the idempotency key to its own
    /// description of the request (`request`).
    pub async fn apply_request(
        &self,
        access: &Access,
        id: Option<Uuid>,
        write: Write,
        key: Option<&str>,
        request: Option<String>,
    ) -> Result<Written> {
        access.check_write()?;
        if let Write::Create { collection, .. } = &write {
            access.check_collection(collection)?;
        }
        let mut key = idempotency_key(access, key)?;
        if let Some(k) = &mut key {
            k.request = request;
        }
        self.store
            .write(access, vec![WriteOp { id, write }], false, key)
            .await
    }

    /// An atomic batch: every write of `ops` in one transaction, in order, each seeing
    /// the ones before it, or none of them. A refusal (access included) names the
    /// write's `index`.
    pub async fn commit_writes(
        &self,
        access: &Access,
        ops: Vec<WriteOp>,
        key: Option<&str>,
    ) -> Result<Written> {
        access.check_write()?;
        for (index, op) in ops.iter().enumerate() {
            if let Write::Create { collection, .. } = &op.write {
                access
                    .check_collection(collection)
                    .map_err(|err| Error::InBatch {
                        index,
                        source: Box::new(err),
                    })?;
            }
        }
        let key = idempotency_key(access, key)?;
        self.store.write(access, ops, true, key).await
    }

    /// The version to expect when a client accepts any of `versions` (an `If-Match`
    /// list): the record's current one if listed, else one that conflicts. The writer
    /// checks it atomically, so a write racing this one still conflicts. `NOT_FOUND`
    /// for a record the caller may not see.
    pub async fn expected_among(&self, access: &Access, id: Uuid, versions: &[i32]) -> Result<i32> {
        access.check_write()?;
        let current = self
            .store
            .record(id)
            .await?
            .filter(|r| access.allows(&r.collection))
            .ok_or(Error::NotFound(id))?;
        if versions.contains(&current.version) {
            Ok(current.version)
        } else {
            // Versions start at 1, so 0 conflicts with any record.
            Ok(versions.first().copied().unwrap_or(0))
        }
    }

    /// A change cursor from a client, or `BAD_USER_INPUT`.
    fn decode_after(&self, after: Option<&str>) -> Result<Option<i64>> {
        let cursors = self.store.cursors();
        after.map(|a| cursors.decode(a)).transpose()
    }

    /// Change cursors of this database, for the transports that show changes.
    pub fn cursors(&self) -> &crate::cursor::ChangeCursors {
        self.store.cursors()
    }

    /// Deletes changes older than `retention`; the number deleted.
    pub async fn prune(&self, retention: Duration) -> Result<u64> {
        self.store.prune(retention).await
    }

    /// Forgets idempotency keys older than `retention`; the number forgotten.
    pub async fn prune_keys(&self, retention: Duration) -> Result<u64> {
        self.store.prune_keys(retention).await
    }
}

/// Checks a client's idempotency key and puts it in the caller's scope: the token's
/// `sub`, or one shared scope in local mode. A token without `sub` cannot use keys
/// (whose would they be?).
fn idempotency_key(access: &Access, key: Option<&str>) -> Result<Option<IdempotencyKey>> {
    let Some(key) = key else {
        return Ok(None);
    };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::bad_input(
            "an idempotency key is 1 to 255 printable ASCII characters",
        ));
    }
    let scope = match (&access.subject, access.expires_at) {
        (Some(sub), _) => format!("sub:{sub}"),
        // Authentication is off: every token is valid until some `exp`, local access never.
        (None, None) => "local".to_owned(),
        (None, Some(_)) => {
            return Err(Error::bad_input(
                "idempotency keys need a token with `sub`: keys are kept per caller",
            ));
        }
    };
    let mut collections: Option<Vec<&String>> =
        access.collections.as_ref().map(|c| c.iter().collect());
    if let Some(c) = &mut collections {
        c.sort();
    }
    Ok(Some(IdempotencyKey {
        scope,
        key: key.to_owned(),
        rights: serde_json::json!({"read": access.read, "write": access.write, "collections": collections}),
        request: None,
    }))
}
