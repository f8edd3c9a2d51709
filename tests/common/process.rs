//! [`ServerProcess`]: the real `hexdash` binary started as its own process
//! (what a crash or a second node needs: a `SIGKILL`, another process's
//! memory), on free ports, killed when dropped; [`PrivateRedis`]: a
//! Redis of a test's own, to kill and restart.

use std::process::{Child, Command, Stdio};

use super::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, TempDir, eventually, free_port};

/// A `hexdash serve` process and a client of its REST API.
pub struct ServerProcess {
    /// The process.
    pub child: Child,
    /// Its REST API.
    pub api: Api,
    /// Its MQTT broker's address (bound on nodes with the ingest role).
    pub mqtt: std::net::SocketAddr,
}

impl ServerProcess {
    /// Starts `hexdash serve` in `dir` on `database_url`, with the tests'
    /// admin, a cheap password hash, logs at warn and `env` on top of
    /// those; returns once `/readyz` answers 2xx.
    pub async fn start(dir: &TempDir, database_url: &str, env: &[(&str, &str)]) -> ServerProcess {
        Self::spawn(dir, database_url, env, Stdio::null(), Stdio::inherit()).await
    }

    /// [`ServerProcess::start`] writing everything the process prints
    /// (stdout, where the logs go, and stderr) to the file at `log`.
    pub async fn start_logging_to(
        dir: &TempDir,
        database_url: &str,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> ServerProcess {
        let file = std::fs::File::create(log).unwrap();
        let err = file.try_clone().unwrap();
        Self::spawn(dir, database_url, env, file.into(), err.into()).await
    }

    async fn spawn(
        dir: &TempDir,
        database_url: &str,
        env: &[(&str, &str)],
        stdout: Stdio,
        stderr: Stdio,
    ) -> ServerProcess {
        let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mqtt = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(env!("CARGO_BIN_EXE_hexdash"))
            .args(["serve", "--http-addr", &http.to_string()])
            .args(["--mqtt-addr", &mqtt.to_string()])
            .current_dir(&dir.0)
            .env_clear()
            .env("HEXDASH_DATABASE_URL", database_url)
            .env("HEXDASH_JWT_SECRET", "process-test-secret")
            .env("HEXDASH_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("HEXDASH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("HEXDASH_API__PASSWORD_MEMORY_KIB", "64")
            .env("HEXDASH_API__PASSWORD_PASSES", "1")
            .env("HEXDASH_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        let server = ServerProcess {
            child,
            api: Api::new(http),
            mqtt,
        };
        eventually(async || {
            let ready = server
                .api
                .client
                .get(server.api.url("/readyz"))
                .send()
                .await;
            ready.is_ok_and(|r| r.status().is_success()).then_some(())
        })
        .await;
        server
    }

    /// `SIGKILL`, and waits for the process to be gone.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Gone already after `kill`: nothing to do then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis server of the test's own (to kill and restart), without
/// persistence: a restart comes back empty, the hardest case.
pub struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    /// Starts `redis-server` on `port` and waits until it answers.
    pub async fn start(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let url = format!("redis://127.0.0.1:{port}");
        eventually(async || {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
            (pong == "PONG").then_some(())
        })
        .await;
        PrivateRedis { child, port }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
