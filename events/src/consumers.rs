//! [`Consumers`]: the set of running consumers, changed while the stream
//! runs (one consumer per webhook endpoint, registered and deleted by an
//! admin).
//!
//! A consumer given before the stream starts ([`Consumers::from_list`],
//! what [`crate::run`] does) starts at its stored position, or at the
//! beginning of the log when it has none: an in-process projection wants
//! the whole history. A consumer [`add`](Consumers::add)ed later with no
//! stored position starts at the stream's current **head** (the last
//! published id): a new webhook endpoint gets what happens from now on,
//! not the history. An event committed but not yet published when it is
//! added still reaches it. With a stored position (a restart) it resumes
//! there, like any consumer.
//!
//! [`remove`](Consumers::remove) stops the consumer's runner (it records
//! its position as at shutdown; an attempt in flight is dropped) and then
//! **deletes its position and its dead letters**: its name is not used
//! again (webhook consumers are named by their endpoint's UUIDv7), nobody
//! could replay its dead letters, and a stale position would only be
//! garbage. What an integrator needs to know about failures is in the
//! webhook delivery log, which goes with the endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::consumer::Consumer;
use crate::error::{Error, Result};
use crate::log::EventLog;
use crate::runner;

/// A handle on the stream's consumers; cheap to clone (clones share the
/// set). Made before the stream runs, passed to [`crate::run_with`], kept
/// by whoever adds and removes consumers at runtime.
#[derive(Clone, Default)]
pub struct Consumers {
    inner: Arc<Mutex<State>>,
}

/// Where a consumer without a stored position starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// Id 0: every event in the log.
    Beginning,
    /// The stream's head when it is added.
    Head,
}

/// A consumer waiting for the stream to start.
struct Pending {
    consumer: Arc<dyn Consumer>,
    config: Option<Config>,
    start: Start,
}

/// What the running stream lends its runners.
#[derive(Clone)]
struct Running {
    log: EventLog,
    config: Config,
    head: Arc<watch::Sender<i64>>,
    shutdown: CancellationToken,
}

/// One running consumer's runner.
struct Runner {
    /// Cancels this runner only (a child of the stream's shutdown).
    stop: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    /// Consumers added before the stream started.
    pending: Vec<Pending>,
    /// Set while the stream runs.
    running: Option<Running>,
    /// Runners by consumer name.
    runners: HashMap<String, Runner>,
    /// Set once the stream stopped: adding then fails.
    stopped: bool,
    /// While it says `false`, this set's runners deliver nothing
    /// ([`Consumers::gated`]).
    gate: Option<watch::Receiver<bool>>,
}

impl Consumers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same set, whose runners deliver only while `gate` says `true`
    /// (in a cluster: while this node holds the relay lease, so one node
    /// at a time runs the once-per-cluster consumers). A runner whose gate
    /// closes finishes the batch in hand, records its position and waits;
    /// when the gate opens it reads its position again (another node moved
    /// it meanwhile). Call before the stream runs.
    pub fn gated(self, gate: watch::Receiver<bool>) -> Self {
        self.inner.lock().gate = Some(gate);
        self
    }

    /// A set of consumers that start at their stored position or at the
    /// beginning of the log ([`crate::run`]'s fixed list). Fails on two
    /// consumers with one name.
    pub fn from_list(consumers: Vec<Arc<dyn Consumer>>) -> Result<Self> {
        let set = Self::new();
        {
            let mut state = set.inner.lock();
            for consumer in consumers {
                if state
                    .pending
                    .iter()
                    .any(|p| p.consumer.name() == consumer.name())
                {
                    return Err(Error::Config(format!(
                        "two consumers named {:?}",
                        consumer.name()
                    )));
                }
                state.pending.push(Pending {
                    consumer,
                    config: None,
                    start: Start::Beginning,
                });
            }
        }
        Ok(set)
    }

    /// Adds a consumer with the stream's [`Config`]; see [`Consumers::add_with`].
    pub async fn add(&self, consumer: Arc<dyn Consumer>) -> Result<()> {
        self.add_inner(consumer, None).await
    }

    /// Adds a consumer with settings of its own (a webhook's tries and
    /// timeout are not an in-process projection's). Without a stored
    /// position it starts at the stream's head (see the module docs).
    /// Before the stream runs it waits for it; after it stopped, or with a
    /// name already running, it fails.
    pub async fn add_with(&self, consumer: Arc<dyn Consumer>, config: Config) -> Result<()> {
        config.validate()?;
        self.add_inner(consumer, Some(config)).await
    }

    async fn add_inner(&self, consumer: Arc<dyn Consumer>, config: Option<Config>) -> Result<()> {
        let running = {
            let mut state = self.inner.lock();
            if state.stopped {
                return Err(Error::Config("the event stream has stopped".to_owned()));
            }
            let name = consumer.name();
            if state.runners.contains_key(name)
                || state.pending.iter().any(|p| p.consumer.name() == name)
            {
                return Err(Error::Config(format!(
                    "a consumer named {name:?} is running"
                )));
            }
            match state.running.clone() {
                Some(running) => running,
                None => {
                    state.pending.push(Pending {
                        consumer,
                        config,
                        start: Start::Head,
                    });
                    return Ok(());
                }
            }
        };
        // Outside the lock: it touches the database.
        start_at_head(&running.log, consumer.name()).await?;
        let mut state = self.inner.lock();
        let name = consumer.name().to_owned();
        if state.runners.contains_key(&name) {
            return Err(Error::Config(format!(
                "a consumer named {name:?} is running"
            )));
        }
        let runner = spawn(&running, consumer, config, state.gate.clone());
        state.runners.insert(name, runner);
        Ok(())
    }

    /// Stops the consumer named `name` and deletes its position and dead
    /// letters (see the module docs). Answers whether it was running (or
    /// waiting to). The rows are deleted either way.
    pub async fn remove(&self, log: &EventLog, name: &str) -> Result<bool> {
        let (runner, was_pending) = {
            let mut state = self.inner.lock();
            let before = state.pending.len();
            state.pending.retain(|p| p.consumer.name() != name);
            (state.runners.remove(name), state.pending.len() < before)
        };
        let was_running = runner.is_some();
        if let Some(runner) = runner {
            runner.stop.cancel();
            // The runner stops at its next await (every wait selects on
            // its token) and records its position first; the rows go
            // after, so that record cannot bring them back.
            if let Err(e) = runner.task.await {
                tracing::error!(consumer = name, error = %e, "a consumer's runner ended abnormally");
            }
        }
        log.forget_consumer(name).await?;
        Ok(was_running || was_pending)
    }

    /// The names of the consumers running now, sorted.
    pub fn names(&self) -> Vec<String> {
        let state = self.inner.lock();
        let mut names: Vec<String> = state.runners.keys().cloned().collect();
        names.sort();
        names
    }

    /// Starts the pending consumers; from now on [`Consumers::add`] starts
    /// them at once.
    pub(crate) async fn start(
        &self,
        log: EventLog,
        config: Config,
        head: Arc<watch::Sender<i64>>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let running = Running {
            log,
            config,
            head,
            shutdown,
        };
        let pending = {
            let mut state = self.inner.lock();
            if state.running.is_some() || state.stopped {
                return Err(Error::Config("these consumers already ran".to_owned()));
            }
            state.running = Some(running.clone());
            std::mem::take(&mut state.pending)
        };
        let gate = self.inner.lock().gate.clone();
        for p in pending {
            if p.start == Start::Head {
                start_at_head(&running.log, p.consumer.name()).await?;
            }
            let name = p.consumer.name().to_owned();
            let runner = spawn(&running, p.consumer, p.config, gate.clone());
            self.inner.lock().runners.insert(name, runner);
        }
        Ok(())
    }

    /// Waits for every runner to end (after the stream's shutdown was
    /// cancelled); adding fails from now on.
    pub(crate) async fn join_all(&self) {
        let runners: Vec<(String, Runner)> = {
            let mut state = self.inner.lock();
            state.stopped = true;
            state.running = None;
            state.runners.drain().collect()
        };
        for (name, runner) in runners {
            if let Err(e) = runner.task.await {
                // A panicking consumer ends only its own runner; say so loudly.
                tracing::error!(consumer = %name, error = %e, "a consumer's runner ended abnormally");
            }
        }
    }
}

/// Gives `name` the head as its position unless it has one.
async fn start_at_head(log: &EventLog, name: &str) -> Result<()> {
    let head = log.head().await?;
    log.init_position(name, head).await
}

fn spawn(
    running: &Running,
    consumer: Arc<dyn Consumer>,
    config: Option<Config>,
    gate: Option<watch::Receiver<bool>>,
) -> Runner {
    let stop = running.shutdown.child_token();
    let task = tokio::spawn(runner::run(
        running.log.clone(),
        consumer,
        config.unwrap_or_else(|| running.config.clone()),
        running.head.subscribe(),
        gate,
        stop.clone(),
    ));
    Runner { stop, task }
}
