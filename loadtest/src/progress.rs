//! The progress line on stderr while a run goes: rewritten in place on a
//! terminal, one line every few seconds otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Redraw interval on a terminal.
const TTY_EVERY: Duration = Duration::from_secs(1);
/// Line interval when stderr is a file or pipe.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Prints `line(elapsed_s, since_last_s)` until `stop`; returns at once when
/// `quiet`.
pub fn start(
    quiet: bool,
    stop: CancellationToken,
    mut line: impl FnMut(f64, f64) -> String + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    if quiet {
        return None;
    }
    let tty = std::io::stderr().is_terminal();
    let every = if tty { TTY_EVERY } else { LOG_EVERY };
    Some(tokio::spawn(async move {
        let started = Instant::now();
        let mut last = started;
        let mut tick = tokio::time::interval_at(started + every, every);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            let text = line((now - started).as_secs_f64(), (now - last).as_secs_f64());
            last = now;
            let mut err = std::io::stderr().lock();
            if tty {
                let _ = write!(err, "\r\x1b[2K{text}");
            } else {
                let _ = writeln!(err, "{text}");
            }
            let _ = err.flush();
        }
        if tty {
            let _ = writeln!(std::io::stderr());
        }
    }))
}

/// Per-second rate of a counter between two readings.
pub struct Rate {
    last: u64,
}

impl Rate {
    pub fn new(start: u64) -> Self {
        Self { last: start }
    }

    pub fn per_s(&mut self, now: u64, dt_s: f64) -> f64 {
        let d = now.saturating_sub(self.last);
        self.last = now;
        if dt_s > 0.0 { d as f64 / dt_s } else { 0.0 }
    }
}
