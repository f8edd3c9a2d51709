//! What an operator reads: the start line, one line per request when
//! `hexdash::http=debug` is on, and the final line.

mod common;

use common::*;

/// Captures what a test subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The filter the README gives for request logs. A test binary of its own:
/// the subscriber is the process's global one, and no other test's events
/// mix in.
#[tokio::test]
async fn start_request_and_stop_are_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,hexdash=info,hexdash::http=debug",
        ))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = spawn_app().await;
    let http = app.http;
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, 200);
    app.stop().await;

    let log = captured.text();
    let started: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("hexdash started"))
        .collect();
    assert_eq!(started.len(), 1, "{log}");
    assert!(
        started[0].contains(&format!("docs=http://{http}/docs")),
        "{log}"
    );
    assert!(started[0].contains("admin=\"created\""), "{log}");
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("hexdash::http") && l.contains("route=/healthz"))
        .collect();
    assert_eq!(requests.len(), 1, "one line per request:\n{log}");
    assert!(requests[0].contains("status=200"), "{log}");
    let stopped = log.find("hexdash stopped").expect("a final line");
    assert!(stopped > log.find("route=/healthz").unwrap(), "{log}");
    assert!(log[stopped..].contains("uptime_s="), "{log}");
}
