//! [`Redis`]: the node's connection to Redis. One multiplexed connection
//! is shared by every short command (it pipelines); blocking reads take a
//! dedicated one ([`Redis::dedicated`]) so they hold up nothing else. A
//! connection that failed is dropped and the next command connects again,
//! so a restarted Redis is picked up without a restart of the node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, FromRedisValue, RedisError};

/// How long a readiness ping may take before Redis counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// How long connecting may take: a down Redis fails a command at once
/// instead of hanging the caller.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a short command may take before it fails (and the connection
/// is replaced).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis failure: unreachable, refused, or an error reply.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(#[from] pub RedisError);

impl Error {
    /// The error reply's code (`BUSYGROUP`, `NOGROUP`, `ERR` …), if Redis
    /// answered with one.
    pub fn code(&self) -> Option<&str> {
        self.0.code()
    }
}

/// The node's Redis: cheap to clone, shared by every part that uses it.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// The shared connection; `None` until the first command and after a
    /// failure.
    shared: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// Whether the last command or ping reached Redis (for `/readyz` and
    /// the `hexdash_redis_up` gauge).
    up: AtomicBool,
}

impl Redis {
    /// A handle on the Redis at `url` (`redis://host:port/db`); checks the
    /// url only, connects at the first command.
    pub fn open(url: &str) -> Result<Redis, Error> {
        Ok(Redis {
            inner: Arc::new(Inner {
                client: Client::open(url)?,
                shared: tokio::sync::Mutex::new(None),
                up: AtomicBool::new(false),
            }),
        })
    }

    /// Runs `cmd` (or a pipeline) on the shared connection; a failure that
    /// may have broken the connection drops it, so the next command
    /// reconnects.
    pub async fn query<T: FromRedisValue>(
        &self,
        request: impl Into<Request<'_>>,
    ) -> Result<T, Error> {
        let request = request.into();
        let mut conn = self.shared().await?;
        let result = request.run(&mut conn).await;
        match &result {
            Ok(_) => self.mark(true),
            Err(e) if broken(e) => {
                self.mark(false);
                *self.inner.shared.lock().await = None;
            }
            // An error reply: Redis answered.
            Err(_) => self.mark(true),
        }
        Ok(result?)
    }

    /// Whether Redis answers a `PING` within a second.
    pub async fn ping(&self) -> bool {
        let cmd = redis::cmd("PING");
        let ping = self.query::<String>(&cmd);
        let ok = matches!(
            tokio::time::timeout(PING_TIMEOUT, ping).await,
            Ok(Ok(ref pong)) if pong == "PONG"
        );
        self.mark(ok);
        ok
    }

    /// Whether the last command reached Redis.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// A connection of the caller's own, for commands that block
    /// (`XREADGROUP … BLOCK`): `response_timeout` must exceed the block.
    pub async fn dedicated(&self, response_timeout: Duration) -> Result<Connection, Error> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        match self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => {
                self.mark(true);
                Ok(Connection {
                    conn,
                    redis: self.clone(),
                })
            }
            Err(e) => {
                self.mark(false);
                Err(e.into())
            }
        }
    }

    /// A connection of its own in subscriber mode (the positions feed);
    /// it ends when Redis goes away, and the caller connects again.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, Error> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.inner.client.get_async_pubsub()).await {
            Ok(Ok(conn)) => {
                self.mark(true);
                Ok(conn)
            }
            Ok(Err(e)) => {
                self.mark(false);
                Err(e.into())
            }
            Err(_) => {
                self.mark(false);
                Err(RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)).into())
            }
        }
    }

    async fn shared(&self) -> Result<MultiplexedConnection, Error> {
        let mut shared = self.inner.shared.lock().await;
        if let Some(conn) = shared.as_ref() {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        match self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => {
                *shared = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                self.mark(false);
                Err(e.into())
            }
        }
    }

    fn mark(&self, up: bool) {
        self.inner.up.store(up, Ordering::Relaxed);
        ::metrics::gauge!(crate::metrics::REDIS_UP).set(if up { 1.0 } else { 0.0 });
    }
}

/// A dedicated connection ([`Redis::dedicated`]); a failure that may have
/// broken it says so ([`Connection::query`] returns the error, the caller
/// drops the connection).
pub struct Connection {
    conn: MultiplexedConnection,
    redis: Redis,
}

impl Connection {
    /// Runs `cmd`; records whether Redis was reached.
    pub async fn query<T: FromRedisValue>(
        &mut self,
        request: impl Into<Request<'_>>,
    ) -> Result<T, Error> {
        let result = request.into().run(&mut self.conn).await;
        self.redis.mark(!matches!(&result, Err(e) if broken(e)));
        Ok(result?)
    }
}

/// Whether `e` means the connection may be unusable (I/O, a timeout, a
/// dropped socket), as opposed to an error reply.
pub fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// A command or a pipeline: what [`Redis::query`] and
/// [`Connection::query`] run.
pub enum Request<'a> {
    /// One command.
    Cmd(&'a redis::Cmd),
    /// Several, sent together.
    Pipe(&'a redis::Pipeline),
}

impl<'a> From<&'a redis::Cmd> for Request<'a> {
    fn from(cmd: &'a redis::Cmd) -> Self {
        Request::Cmd(cmd)
    }
}

impl<'a> From<&'a redis::Pipeline> for Request<'a> {
    fn from(pipe: &'a redis::Pipeline) -> Self {
        Request::Pipe(pipe)
    }
}

impl Request<'_> {
    async fn run<T: FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> Result<T, RedisError> {
        match self {
            Request::Cmd(cmd) => cmd.query_async(conn).await,
            Request::Pipe(pipe) => pipe.query_async(conn).await,
        }
    }
}
