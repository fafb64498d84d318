//! Where the server is, and client sockets to it.
//!
//! One source address has about 28,000 ephemeral ports towards one server port, so
//! tens of thousands of connections need several source addresses. On loopback every
//! address of 127.0.0.0/8 is local: each client socket is bound to one of
//! `127.0.1.1`, `127.0.1.2`, … before it connects.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use anyhow::{Context, bail};
use tokio::net::{TcpSocket, TcpStream};

/// The server's GraphQL endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The socket address it resolved to.
    pub addr: SocketAddr,
    /// `host[:port]` as given, for the `Host` header.
    pub authority: String,
    /// The path, e.g. `/graphql`.
    pub path: String,
    /// Source addresses for client sockets (empty: let the kernel choose).
    sources: Vec<IpAddr>,
}

impl Endpoint {
    /// Parses `http://host:port/path` and resolves the host; client sockets to a
    /// 127.0.0.0/8 server are spread over `source_addrs` source addresses.
    pub async fn resolve(url: &str, source_addrs: u32) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .context("--url must start with http://")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/graphql"),
        };
        if authority.is_empty() {
            bail!("--url has no host");
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("resolving {with_port}"))?
            .find(|a| a.is_ipv4())
            .context("no IPv4 address for the host")?;
        let loopback_v4 = matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
        let sources = if loopback_v4 {
            let base = u32::from(Ipv4Addr::new(127, 0, 1, 1));
            (0..source_addrs.max(1))
                .map(|i| IpAddr::V4(Ipv4Addr::from(base + i)))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
            sources,
        })
    }

    /// The WebSocket URL of the same endpoint.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.authority, self.path)
    }

    /// Opens client socket number `i` (its source address is `i` modulo the number of
    /// addresses), with Nagle off.
    pub async fn connect(&self, i: usize) -> io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        if !self.sources.is_empty() {
            socket.bind(SocketAddr::new(self.sources[i % self.sources.len()], 0))?;
        }
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Raises the open-file limit towards `want` (hard limit too when the process may) and
/// returns the soft limit now in force.
pub fn raise_fd_limit(want: u64) -> u64 {
    use rlimit::Resource;
    if rlimit::setrlimit(Resource::NOFILE, want, want).is_err() {
        let _ = rlimit::increase_nofile_limit(want);
    }
    rlimit::getrlimit(Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0)
}

/// The resident set size of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// This process's resident set size in KiB.
pub fn own_rss_kib() -> Option<u64> {
    rss_kib(std::process::id())
}

/// CPU time (user + system) process `pid` has used, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: count fields from after its parenthesis, where
    // the state (field 3) comes first, so utime and stime (14 and 15) are at 11 and 12.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // /proc reports in USER_HZ, which is 100 on Linux.
    Some(ticks / 100.0)
}

/// CPU used by the server (with `--server-pid`) and by this process over a stretch of
/// wall time: on a shared machine it shows who had the cores.
pub struct CpuMeter {
    server: Option<(u32, f64)>,
    own: Option<f64>,
    at: std::time::Instant,
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            server: server_pid.and_then(|pid| Some((pid, cpu_seconds(pid)?))),
            own: cpu_seconds(std::process::id()),
            at: std::time::Instant::now(),
        }
    }

    /// Stops measuring.
    pub fn finish(&self) -> CpuUse {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let server_seconds = self
            .server
            .and_then(|(pid, before)| Some(cpu_seconds(pid)? - before));
        CpuUse {
            server: server_seconds.map(|s| s / wall * 100.0),
            server_seconds,
            bench: self.own.and_then(|before| {
                Some((cpu_seconds(std::process::id())? - before) / wall * 100.0)
            }),
        }
    }
}

/// CPU used over a stretch, in percent of one core.
pub struct CpuUse {
    /// By the server.
    pub server: Option<f64>,
    /// By the server, in CPU seconds (utime + stime).
    pub server_seconds: Option<f64>,
    /// By this process.
    pub bench: Option<f64>,
}
