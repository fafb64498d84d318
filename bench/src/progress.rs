//! The progress line on stderr: what runs, for how long, and the rates right now.
//!
//! It is printed from its own thread so that a saturated runtime still reports.

use std::{
    io::{IsTerminal, Write},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

/// Counters the scenarios bump and the progress thread reads.
#[derive(Debug)]
pub struct Progress {
    label: Mutex<String>,
    since: Mutex<Instant>,
    /// Requests or mutations answered.
    pub ops: AtomicU64,
    /// Subscription events received.
    pub deliveries: AtomicU64,
    /// Connections open.
    pub connections: AtomicU64,
    /// Errors.
    pub errors: AtomicU64,
    stop: AtomicBool,
}

impl Progress {
    /// Starts the progress thread.
    pub fn start() -> Arc<Self> {
        let p = Arc::new(Self {
            label: Mutex::new("starting".into()),
            since: Mutex::new(Instant::now()),
            ops: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let shown = Arc::clone(&p);
        thread::spawn(move || shown.run());
        p
    }

    /// Names what runs now and restarts its clock.
    /// Without a terminal the new stage is also printed at once, so a log (or a
    /// profiler waiting for a stage) sees when it starts.
    pub fn stage(&self, label: impl Into<String>) {
        let label = label.into();
        if !std::io::stderr().is_terminal() {
            eprintln!("{label}");
        }
        *self.label.lock().unwrap_or_else(|e| e.into_inner()) = label;
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Stops the thread and ends the line.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(20));
        if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[K");
        }
    }

    fn run(&self) {
        let tty = std::io::stderr().is_terminal();
        let every = if tty {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        let (mut ops, mut deliveries) = (0, 0);
        let mut at = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            thread::sleep(every);
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            let dt = now.duration_since(at).as_secs_f64().max(1e-9);
            at = now;
            let o = self.ops.load(Ordering::Relaxed);
            let d = self.deliveries.load(Ordering::Relaxed);
            let line = format!(
                "{} {:.0}s | ops {} ({:.0}/s) | deliveries {} ({:.0}/s) | connections {} | errors {}",
                self.label.lock().unwrap_or_else(|e| e.into_inner()),
                self.since
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed()
                    .as_secs_f64(),
                o,
                (o - ops) as f64 / dt,
                d,
                (d - deliveries) as f64 / dt,
                self.connections.load(Ordering::Relaxed),
                self.errors.load(Ordering::Relaxed),
            );
            ops = o;
            deliveries = d;
            let mut err = std::io::stderr().lock();
            if tty {
                let _ = write!(err, "\r\x1b[K{line}");
            } else {
                let _ = writeln!(err, "{line}");
            }
            let _ = err.flush();
        }
    }
}
