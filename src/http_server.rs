//! The HTTP accept loop for the REST API and the WebSocket gateway: HTTP/1.1
//! with upgrades, over hyper, with the limits a public listener needs.
//!
//! - **Header-read timeout**: a client must send a request's whole header
//!   within [`Config::header_read_timeout_ms`] of the connection opening (or
//!   of the previous response, on a kept-alive connection), else the
//!   connection is closed. Without it a client that sends half a header and
//!   then nothing holds a socket and a task forever (slowloris).
//! - **Connection caps**: at most [`Config::max_connections`] open
//!   connections in all and [`Config::max_connections_per_address`] from one
//!   IP address. An excess connection is closed right after the accept,
//!   before anything is read, and counted. A connection stays counted after
//!   a WebSocket upgrade, until its socket closes.
//!
//! - **TLS** (`[tls]`, `crate::tls`): the handshake runs in the
//!   connection's task, within the header-read timeout (10 s when that is
//!   off); a client that never finishes it is closed and counted
//!   ([`metric::TLS_FAILURES`]), the accept loop never waits for it.
//!
//! Every accepted socket gets TCP_NODELAY, and every request carries
//! `ConnectInfo<SocketAddr>` (the login limits read the client address).
//! On shutdown the loop stops accepting, asks each connection to finish its
//! request in flight and close, and returns when all have. Upgraded
//! WebSockets are the gateway's to close.
//!
//! Metrics: [`metric::OPEN`], [`metric::ACCEPTED`], [`metric::REFUSED`]
//! (by `reason`), [`metric::HEADER_TIMEOUTS`].

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Limits of the HTTP listener (`[http]` in the TOML file,
/// `HEXDASH_HTTP__*` in the environment).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// How long a client may take to send a request's header, counted from
    /// the connection's start or the end of the previous response (so it
    /// also closes idle kept-alive connections). Real clients send a header
    /// in one packet; 0 turns the timeout off.
    pub header_read_timeout_ms: u64,
    /// Open HTTP connections at most, WebSockets included (the design target
    /// is 100,000 watchers on one machine). Keep it under the open-file
    /// limit (`ulimit -n`) less the MQTT connections. 0: no limit.
    pub max_connections: usize,
    /// Open HTTP connections from one IP address at most, so one client
    /// cannot take the whole of `max_connections`. Clients behind one NAT
    /// share it. 0: no limit.
    pub max_connections_per_address: usize,
    /// Origins (`https://shop.example`, `http://localhost:3000`) whose
    /// pages may call the API from a browser, or `"*"` for any; empty:
    /// none, the same origin only (`crate::http_policy`).
    pub cors_allowed_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            max_connections: 100_000,
            max_connections_per_address: 1_000,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// Metric names.
pub mod metric {
    /// Gauge: open HTTP connections (WebSockets included).
    pub const OPEN: &str = "hexdash_http_connections_open";
    /// Counter: connections accepted and served.
    pub const ACCEPTED: &str = "hexdash_http_connections_accepted_total";
    /// Counter, label `reason` (see [`reason`]): connections closed at
    /// accept because a cap was reached.
    pub const REFUSED: &str = "hexdash_http_connections_refused_total";
    /// Counter: connections closed because a request header did not arrive
    /// within the header-read timeout.
    pub const HEADER_TIMEOUTS: &str = "hexdash_http_header_timeouts_total";
    /// Counter: TLS connections closed before the handshake finished (it
    /// failed, or did not finish in time).
    pub const TLS_FAILURES: &str = "hexdash_http_tls_handshake_failures_total";

    /// `reason` values of [`REFUSED`].
    pub mod reason {
        /// `max_connections` reached.
        pub const TOTAL: &str = "max_connections";
        /// `max_connections_per_address` reached for the client's address.
        pub const PER_ADDRESS: &str = "max_connections_per_address";
    }
}

/// After an accept error that is not about one connection (out of file
/// descriptors, mostly), wait this long before accepting again instead of
/// spinning; connections closing meanwhile free descriptors.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);

struct Metrics {
    open: Gauge,
    accepted: Counter,
    refused_total: Counter,
    refused_per_address: Counter,
    header_timeouts: Counter,
    tls_failures: Counter,
}

impl Metrics {
    fn register() -> Self {
        describe_gauge!(metric::OPEN, "Open HTTP connections, WebSockets included");
        describe_counter!(metric::ACCEPTED, "HTTP connections accepted");
        describe_counter!(
            metric::REFUSED,
            "HTTP connections closed at accept because a connection cap was reached, by reason"
        );
        describe_counter!(
            metric::HEADER_TIMEOUTS,
            "HTTP connections closed because a request header did not arrive in time"
        );
        describe_counter!(
            metric::TLS_FAILURES,
            "TLS connections closed before the handshake finished (failed or too slow)"
        );
        Self {
            open: gauge!(metric::OPEN),
            accepted: counter!(metric::ACCEPTED),
            refused_total: counter!(metric::REFUSED, "reason" => metric::reason::TOTAL),
            refused_per_address: counter!(metric::REFUSED, "reason" => metric::reason::PER_ADDRESS),
            header_timeouts: counter!(metric::HEADER_TIMEOUTS),
            tls_failures: counter!(metric::TLS_FAILURES),
        }
    }
}

/// How long a TLS handshake may take when the header-read timeout is off.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown` is
/// cancelled, then waits for the open HTTP connections to finish (the
/// caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: Config,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let handshake_timeout = match config.header_read_timeout_ms {
        0 => TLS_HANDSHAKE_TIMEOUT,
        ms => Duration::from_millis(ms),
    };
    let metrics = Arc::new(Metrics::register());
    let counts = Arc::new(Counts::new(&config, metrics.clone()));
    let mut http = http1::Builder::new();
    if config.header_read_timeout_ms > 0 {
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms));
    }
    let connections = TaskTracker::new();
    loop {
        let (tcp, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot accept HTTP connections; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                    }
                }
            },
        };
        let slot = match counts.admit(remote.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                match refusal {
                    Refusal::Total => metrics.refused_total.increment(1),
                    Refusal::PerAddress => metrics.refused_per_address.increment(1),
                }
                tracing::debug!(%remote, ?refusal, "HTTP connection refused");
                drop(tcp);
                continue;
            }
        };
        metrics.accepted.increment(1);
        // Small JSON answers must leave at once: without TCP_NODELAY, Nagle
        // holds a response on a kept-alive connection until the client's
        // next request or delayed ACK (measured: 50–100 ms per request).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = router.clone().into_service::<Body>().map_request(
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                request.map(Body::new)
            },
        );
        let http = http.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        let metrics = metrics.clone();
        connections.spawn(async move {
            let stream = match tls {
                None => Stream::Plain(tcp),
                Some(tls) => {
                    let handshake = tokio::select! {
                        () = shutdown.cancelled() => return,
                        done = tokio::time::timeout(handshake_timeout, tls.accept(tcp)) => done,
                    };
                    match handshake {
                        Ok(Ok(stream)) => Stream::Tls(Box::new(stream)),
                        Ok(Err(e)) => {
                            metrics.tls_failures.increment(1);
                            tracing::debug!(%remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            metrics.tls_failures.increment(1);
                            tracing::debug!(%remote, "TLS handshake not finished in time; closed");
                            return;
                        }
                    }
                }
            };
            let io = TokioIo::new(Counted {
                stream,
                _slot: slot,
            });
            let conn = http
                .serve_connection(io, TowerToHyperService::new(service))
                .with_upgrades();
            let mut conn = pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            match result {
                Ok(()) => {}
                Err(e) if e.is_timeout() => {
                    metrics.header_timeouts.increment(1);
                    tracing::debug!(%remote, "HTTP header not received in time; closed");
                }
                Err(e) => tracing::debug!(%remote, error = %e, "HTTP connection ended"),
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Errors about one connection that went away between SYN and accept;
/// the listener itself is fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Why a connection was closed at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Total,
    PerAddress,
}

/// Open connections, in all and per address.
struct Counts {
    max_total: usize,
    max_per_address: usize,
    metrics: Arc<Metrics>,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Only addresses with an open connection: entries leave at zero, so the
    /// map is bounded by the total cap.
    per_address: HashMap<IpAddr, usize>,
}

impl Counts {
    fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        let unlimited = |n: usize| if n == 0 { usize::MAX } else { n };
        Self {
            max_total: unlimited(config.max_connections),
            max_per_address: unlimited(config.max_connections_per_address),
            metrics,
            open: Mutex::new(Open::default()),
        }
    }

    fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Slot, Refusal> {
        // An IPv4 client on a dual-stack socket is the same client.
        let addr = addr.to_canonical();
        let mut open = self.open.lock();
        if open.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let from_addr = open.per_address.entry(addr).or_insert(0);
        if *from_addr >= self.max_per_address {
            return Err(Refusal::PerAddress);
        }
        *from_addr += 1;
        open.total += 1;
        drop(open);
        self.metrics.open.increment(1.0);
        Ok(Slot {
            counts: self.clone(),
            addr,
        })
    }
}

/// One admitted connection; dropping it (when the socket closes) frees its
/// place under both caps.
struct Slot {
    counts: Arc<Counts>,
    addr: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_address.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_address.remove(&self.addr);
            }
        }
        drop(open);
        self.counts.metrics.open.decrement(1.0);
    }
}

/// A connection's byte stream: the socket, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A socket that holds its [`Slot`]: hyper hands the socket itself to a
/// WebSocket after an upgrade, so the slot lives exactly as long as the
/// connection, whoever ends up owning it.
struct Counted {
    stream: Stream,
    _slot: Slot,
}

/// Evaluates `$call` with `$s` bound to whichever stream `$self` holds,
/// pinned.
macro_rules! on_stream {
    ($self:expr, $s:ident => $call:expr) => {
        match &mut $self.get_mut().stream {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $call
            }
            Stream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $call
            }
        }
    };
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_stream!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, s => s.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::extract::ws::{Message, WebSocketUpgrade};
    use axum::routing::get;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use std::net::SocketAddr;

    use super::*;

    /// Longer than any limit a test sets (and, in real time, than the server
    /// can need to answer or close): waiting this long means it never acted.
    const NEVER: Duration = Duration::from_secs(30);

    const REQUEST: &[u8] = b"GET /ip HTTP/1.1\r\nHost: test\r\n\r\n";

    async fn start(config: Config) -> (SocketAddr, CancellationToken) {
        let router =
            Router::new()
                .route(
                    "/ip",
                    get(|ConnectInfo(addr): ConnectInfo<SocketAddr>| async move {
                        addr.ip().to_string()
                    }),
                )
                .route(
                    "/ws",
                    get(|ws: WebSocketUpgrade| async move {
                        ws.on_upgrade(|mut socket| async move {
                            while let Some(Ok(msg)) = socket.recv().await {
                                if let Message::Text(t) = msg {
                                    let _ = socket.send(Message::Text(t)).await;
                                }
                            }
                        })
                    }),
                );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(serve(listener, router, config, None, stop));
        (addr, shutdown)
    }

    /// Sends one request and reads until the body names the client address.
    async fn request(tcp: &mut TcpStream) -> String {
        tcp.write_all(REQUEST).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).ends_with("127.0.0.1") {
            let n = tokio::time::timeout(NEVER, tcp.read(&mut buf))
                .await
                .expect("answered")
                .unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    /// Whether the server closed `tcp` (EOF or reset) rather than leaving it
    /// open until the test's own limit.
    async fn closed_by_server(tcp: &mut TcpStream) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(NEVER, tcp.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                // A 408 or similar before the close is fine.
                Ok(Ok(_)) => continue,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_half_sent_header_is_cut_off() {
        let (addr, _stop) = start(Config {
            header_read_timeout_ms: 5_000,
            ..Config::default()
        })
        .await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /ip HTTP/1.1\r\nHost: te")
            .await
            .unwrap();
        assert!(closed_by_server(&mut slow).await, "slow client still open");

        let mut idle = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_by_server(&mut idle).await,
            "silent client still open"
        );
    }

    #[tokio::test]
    async fn requests_carry_the_client_address_and_keep_alive() {
        let (addr, _stop) = start(Config::default()).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let answer = request(&mut tcp).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Kept alive: a second request on the same socket.
        assert!(request(&mut tcp).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn connections_over_the_per_address_cap_are_closed() {
        let (addr, _stop) = start(Config {
            max_connections_per_address: 2,
            ..Config::default()
        })
        .await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        request(&mut first).await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        request(&mut second).await;
        let mut third = TcpStream::connect(addr).await.unwrap();
        assert!(closed_by_server(&mut third).await, "third connection kept");
        // The admitted ones are untouched.
        request(&mut first).await;
        request(&mut second).await;
    }

    #[tokio::test]
    async fn connections_over_the_total_cap_are_closed_and_websockets_count() {
        let (addr, _stop) = start(Config {
            max_connections: 1,
            ..Config::default()
        })
        .await;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        ws.send(tokio_tungstenite::tungstenite::Message::text("hi"))
            .await
            .unwrap();
        let echo = ws.next().await.unwrap().unwrap();
        assert_eq!(echo.into_text().unwrap().as_str(), "hi");
        // The upgraded socket still holds the only place.
        let mut extra = TcpStream::connect(addr).await.unwrap();
        assert!(closed_by_server(&mut extra).await, "extra connection kept");
        drop(ws);
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_ends_idle_connections() {
        let (addr, stop) = start(Config::default()).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        request(&mut tcp).await;
        stop.cancel();
        assert!(
            closed_by_server(&mut tcp).await,
            "kept-alive connection kept"
        );
    }
}
