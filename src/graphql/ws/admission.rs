//! Who may open a WebSocket and how fast it may talk: the open connections, bounded in
//! total and per client address, and each connection's message rate.

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use tokio::time::Instant;

/// A token bucket: `per_second` messages a second, in bursts of up to as many.
pub(super) struct TokenBucket {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(super) fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            tokens: per_second,
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    pub(super) fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open WebSocket connections, bounded in total and per client address.
#[derive(Clone)]
pub struct Connections {
    open: Arc<std::sync::Mutex<OpenConnections>>,
    max_total: usize,
    max_per_address: usize,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnectionSlot {
    connections: Connections,
    address: IpAddr,
}

impl Connections {
    /// At most `max_total` connections, `max_per_address` from one address.
    pub fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            open: Arc::default(),
            max_total,
            max_per_address,
        }
    }

    /// A place for a connection from `address`, or `TOO_MANY_CONNECTIONS`.
    pub fn admit(&self, address: IpAddr) -> crate::error::Result<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max_total {
            return Err(crate::error::Error::TooManyConnections(format!(
                "the server holds its maximum of {} WebSocket connections",
                self.max_total
            )));
        }
        let from_address = open.per_address.entry(address).or_default();
        if *from_address >= self.max_per_address {
            return Err(crate::error::Error::TooManyConnections(format!(
                "at most {} WebSocket connections per client address",
                self.max_per_address
            )));
        }
        *from_address += 1;
        open.total += 1;
        metrics::gauge!(crate::metrics::WEBSOCKETS_OPEN).increment(1.0);
        Ok(ConnectionSlot {
            connections: self.clone(),
            address,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&self.address);
            }
        }
        metrics::gauge!(crate::metrics::WEBSOCKETS_OPEN).decrement(1.0);
    }
}
