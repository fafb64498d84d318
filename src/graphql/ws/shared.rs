//! One execution per change for every subscription of the same shape.
//!
//! Subscriptions with the same document, operation, variables and rights give every
//! change the same result. The first of them to deliver a change executes it and keeps
//! the serialized result under the change's position; the others send those bytes in
//! their own envelope (only the operation `id` differs) without executing it again.
//!
//! Nothing else is shared: each subscription keeps its own feed, so order, exactly
//! once, gap detection, catch-up from the log and access checks are what they are
//! without sharing. A shape keeps its [`RECENT`] highest positions; all of a server's
//! shapes together keep at most `--ws-shared-result-bytes` of results. A result that
//! is gone, or never kept, is executed again: sharing saves work, it never decides
//! what is delivered.
//!
//! How a delivery finds its result: the resolver's stream asks [`SharedOp::lookup`]
//! before it yields a change, and the operation's task reads the answer with
//! [`SharedOp::take`] when the response for that change reaches it. Both run in the
//! operation's task, and async-graphql pulls the next change only after the previous
//! response was taken, so the answer always belongs to the response at hand.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_graphql::Request;

use crate::auth::Access;

/// Results a shape keeps: enough for subscribers a few changes apart.
pub const RECENT: usize = 8;

/// What makes two subscriptions' results the same.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ShapeKey {
    query: String,
    operation: Option<String>,
    variables: String,
    rights: String,
}

/// The results of one shape, by position, highest last.
pub struct Shape {
    results: Mutex<Vec<(i64, Arc<str>)>>,
    budget: Arc<Budget>,
}

/// The bytes all shapes keep, against their bound.
struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    /// Takes `n` bytes if they fit.
    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Shape {
    fn get(&self, seq: i64) -> Option<Arc<str>> {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        results
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(_, r)| Arc::clone(r))
    }

    /// Keeps `result` for position `seq`, unless it is older than every kept one when
    /// the shape is full, or the budget is spent.
    fn put(&self, seq: i64, result: Arc<str>) {
        let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        let at = results.partition_point(|(s, _)| *s < seq);
        if results.get(at).is_some_and(|(s, _)| *s == seq) || (at == 0 && results.len() >= RECENT) {
            return;
        }
        if !self.budget.take(result.len()) {
            return;
        }
        results.insert(at, (seq, result));
        if results.len() > RECENT {
            let (_, gone) = results.remove(0);
            self.budget.give(gone.len());
        }
    }
}

impl Drop for Shape {
    fn drop(&mut self) {
        let results = self.results.get_mut().unwrap_or_else(|e| e.into_inner());
        self.budget.give(results.iter().map(|(_, r)| r.len()).sum());
    }
}

/// Every shape with a running subscription.
pub struct Shapes {
    shapes: Mutex<HashMap<ShapeKey, Weak<Shape>>>,
    budget: Arc<Budget>,
}

impl Shapes {
    /// Shapes keeping at most `max_bytes` of results in all (0: none, no sharing).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            shapes: Mutex::new(HashMap::new()),
            budget: Arc::new(Budget {
                used: AtomicUsize::new(0),
                max: max_bytes,
            }),
        }
    }

    /// What operation `request`, run with `access`, shares with others of its shape;
    /// `None` when it shares nothing (sharing is off, or the document is only a
    /// persisted query's hash).
    pub fn op(&self, request: &Request, access: &Access) -> Option<SharedOp> {
        if self.budget.max == 0 || request.query.is_empty() {
            return None;
        }
        let key = ShapeKey {
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
            rights: access.rights_key(),
        };
        let mut shapes = self.shapes.lock().unwrap_or_else(|e| e.into_inner());
        let shape = match shapes.get(&key).and_then(Weak::upgrade) {
            Some(shape) => shape,
            None => {
                // Forget the shapes no subscription holds any more, whenever the map
                // has doubled, so it stays within twice the running operations.
                if shapes.len() >= 64 && shapes.len().is_power_of_two() {
                    shapes.retain(|_, shape| shape.strong_count() > 0);
                }
                let shape = Arc::new(Shape {
                    results: Mutex::new(Vec::new()),
                    budget: Arc::clone(&self.budget),
                });
                shapes.insert(key, Arc::downgrade(&shape));
                shape
            }
        };
        Some(SharedOp {
            shape,
            found: Mutex::new(None),
        })
    }

    /// Bytes of results kept now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.budget.used.load(Ordering::Relaxed)
    }
}

/// One operation's part in its shape, in its request's data.
pub struct SharedOp {
    shape: Arc<Shape>,
    /// What [`SharedOp::lookup`] found for the change being delivered.
    found: Mutex<Option<Found>>,
}

/// A change about to be delivered, and whether its result is already known.
pub enum Found {
    /// The serialized result of the change at this position, from another
    /// subscription of the shape.
    Result(i64, Arc<str>),
    /// Not known: the response will be executed; keep it under this position.
    Execute(i64),
}

impl SharedOp {
    /// Called for the change at `seq` before it is yielded: whether its result is
    /// known (then the resolver need not resolve it). A subscription alone in its
    /// shape has no one to share with: it neither looks up nor keeps anything.
    pub fn lookup(&self, seq: i64) -> bool {
        if Arc::strong_count(&self.shape) == 1 {
            self.clear();
            return false;
        }
        let found = match self.shape.get(seq) {
            Some(result) => Found::Result(seq, result),
            None => Found::Execute(seq),
        };
        let known = matches!(found, Found::Result(..));
        *self.found.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
        known
    }

    /// Called for an item that is not a change (an error).
    pub fn clear(&self) {
        *self.found.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// What the last lookup found, once.
    pub fn take(&self) -> Option<Found> {
        self.found.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Keeps the serialized result of the change at `seq` for the shape.
    pub fn keep(&self, seq: i64, result: Arc<str>) {
        self.shape.put(seq, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, id: i64) -> Request {
        Request::new(query).variables(async_graphql::Variables::from_json(
            serde_json::json!({ "id": id }),
        ))
    }

    #[test]
    fn the_same_shape_shares_results_and_another_does_not() {
        let shapes = Shapes::new(1 << 20);
        let access = Access::full();
        let a = shapes
            .op(&request("subscription { x }", 1), &access)
            .unwrap();
        let b = shapes
            .op(&request("subscription { x }", 1), &access)
            .unwrap();
        let c = shapes
            .op(&request("subscription { x }", 2), &access)
            .unwrap();
        assert!(!a.lookup(7));
        assert!(matches!(a.take(), Some(Found::Execute(7))));
        a.keep(7, Arc::from("{\"data\":1}"));
        assert!(b.lookup(7));
        assert!(matches!(b.take(), Some(Found::Result(7, r)) if &*r == "{\"data\":1}"));
        assert!(b.take().is_none(), "an answer is taken once");
        assert!(!c.lookup(7), "other variables, another shape");
    }

    #[test]
    fn a_shape_keeps_its_highest_positions_within_the_budget() {
        let shapes = Shapes::new(100);
        let op = shapes.op(&request("s", 1), &Access::full()).unwrap();
        let other = shapes.op(&request("s", 1), &Access::full()).unwrap();
        for seq in 1..=20 {
            op.keep(seq, Arc::from("12345"));
        }
        assert_eq!(shapes.used(), RECENT * 5);
        assert!(op.lookup(20) && op.lookup(13) && !op.lookup(12));
        op.keep(3, Arc::from("12345"));
        assert!(!op.lookup(3), "older than everything kept in a full shape");
        let big = Arc::<str>::from("x".repeat(200));
        op.keep(21, big);
        assert!(!op.lookup(21), "over the budget");
        drop(other);
        assert!(!op.lookup(20), "alone in its shape, nothing to share");
        assert!(op.take().is_none());
        drop(op);
        assert_eq!(
            shapes.used(),
            0,
            "a shape nobody holds gives its bytes back"
        );
    }
}
