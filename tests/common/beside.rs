//! A well-behaved client's latency measured quiet and then beside an
//! attacker: what the hostile-client and fault tests compare (issue 15:
//! the p99 must stay within 2× of the quiet run).

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Quiet p99s below this are taken as this when compared: a loopback
/// request takes about a millisecond, where a scheduler's hiccup on the
/// 2-core machine is of the same size and says nothing about the server.
pub const P99_FLOOR: Duration = Duration::from_millis(3);

/// The tests that measure latency run one at a time: two attackers in one
/// process would measure each other.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Calls before each measurement, not counted: the first calls of a run
/// open connections and warm caches, which is no property of the case.
const WARM_UP: usize = 10;

/// The latencies of `n` calls of `request` made one after another, `gap`
/// apart (a client at its own pace), sorted, after [`WARM_UP`] uncounted
/// ones.
pub async fn sample<F, Fut>(n: usize, gap: Duration, mut request: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..WARM_UP {
        request().await;
        tokio::time::sleep(gap).await;
    }
    let mut taken = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        request().await;
        taken.push(start.elapsed());
        tokio::time::sleep(gap).await;
    }
    taken.sort();
    taken
}

/// The 99th percentile of sorted latencies.
pub fn p99(sorted: &[Duration]) -> Duration {
    let rank = (sorted.len() * 99).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Asserts the p99 under the case (an attacker beside, or a fault) is
/// within 2× of the quiet one (floored at [`P99_FLOOR`]), and prints both
/// for the record.
pub fn assert_within_twice(case: &str, quiet: &[Duration], under: &[Duration]) {
    let (quiet, under) = (p99(quiet), p99(under));
    eprintln!("{case}: well-behaved client's p99 quiet {quiet:?}, under it {under:?}");
    assert!(
        under <= 2 * quiet.max(P99_FLOOR),
        "{case}: p99 {under:?} under it, {quiet:?} quiet"
    );
}

/// A client sending at `per_s` from a thread and a runtime of its own (as
/// another process would: its work does not run on the threads of the
/// server or of the client being measured), counting answers by status.
pub struct Attacker {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    /// Answers by status class: `[2xx, 429, other]`.
    counts: Arc<[AtomicU64; 3]>,
}

/// What an attacker got.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    /// Answered 2xx.
    pub ok: u64,
    /// Refused with 429.
    pub limited: u64,
    /// Anything else (including transport errors).
    pub other: u64,
}

impl Attacker {
    /// Starts `tasks` loops, each sending `build(client)` every
    /// `tasks / per_s` seconds, from `from` (a loopback address of its own,
    /// `127.0.0.2`, makes the server see another client address).
    pub fn start<B>(from: IpAddr, per_s: u32, tasks: usize, build: B) -> Attacker
    where
        B: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let period = Duration::from_secs_f64(tasks as f64 / f64::from(per_s));
        let (stop_flag, tally) = (stop.clone(), counts.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = reqwest::Client::builder()
                    .local_address(from)
                    .build()
                    .unwrap();
                let build = Arc::new(build);
                let loops: Vec<_> = (0..tasks)
                    .map(|_| {
                        let (client, build, stop, counts) = (
                            client.clone(),
                            build.clone(),
                            stop_flag.clone(),
                            tally.clone(),
                        );
                        tokio::spawn(async move {
                            let mut tick = tokio::time::interval(period);
                            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                            while !stop.load(Ordering::Relaxed) {
                                tick.tick().await;
                                let class = match build(&client).send().await {
                                    Ok(r) if r.status().is_success() => 0,
                                    Ok(r) if r.status() == 429 => 1,
                                    _ => 2,
                                };
                                counts[class].fetch_add(1, Ordering::Relaxed);
                            }
                        })
                    })
                    .collect();
                for task in loops {
                    task.await.unwrap();
                }
            });
        });
        Attacker {
            stop,
            thread,
            counts,
        }
    }

    /// Stops the loops and says what they got.
    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        Tally {
            ok: self.counts[0].load(Ordering::Relaxed),
            limited: self.counts[1].load(Ordering::Relaxed),
            other: self.counts[2].load(Ordering::Relaxed),
        }
    }
}
