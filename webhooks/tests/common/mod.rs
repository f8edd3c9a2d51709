//! Test databases for the webhooks tests: a fresh SQLite file, or a fresh
//! PostgreSQL schema, each with the `0006_webhooks.sql` migration applied.

#![allow(dead_code)]

use std::sync::Once;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// The migrations, read where they live until the domain crate takes them
/// (the lead moves the files and these paths at merge).
const SQLITE_MIGRATION: &str =
    include_str!("../../../commerce/migrations/sqlite/0006_webhooks.sql");
const POSTGRES_MIGRATION: &str =
    include_str!("../../../commerce/migrations/postgres/0006_webhooks.sql");

fn drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

/// A migrated SQLite database in a new temporary file (removed on drop).
pub struct SqliteDb {
    /// The pool over it.
    pub pool: AnyPool,
    path: std::path::PathBuf,
}

impl Drop for SqliteDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

pub async fn sqlite() -> SqliteDb {
    drivers();
    let path = std::env::temp_dir().join(format!("hexdash-webhooks-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("open a temporary sqlite file");
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(SQLITE_MIGRATION)
        .execute(&pool)
        .await
        .expect("migrate sqlite");
    SqliteDb { pool, path }
}

/// The PostgreSQL server the tests use, when HEXDASH_TEST_DATABASE_URL names
/// one (CI sets it). Unset: the PostgreSQL tests say so and pass; set but
/// unreachable: they fail.
pub fn postgres_url() -> Option<String> {
    std::env::var("HEXDASH_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// A migrated PostgreSQL schema of its own (`t_<unix s>_<random>`, the api
/// harness's naming, so its sweep drops it if [`PostgresDb::drop_schema`]
/// never runs).
pub struct PostgresDb {
    /// The pool over the schema.
    pub pool: AnyPool,
    admin: AnyPool,
    schema: String,
}

pub async fn postgres(base: &str) -> PostgresDb {
    drivers();
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(base)
        .await
        .expect("connect to HEXDASH_TEST_DATABASE_URL");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!("t_{now_s}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("connect the test schema");
    sqlx::raw_sql(POSTGRES_MIGRATION)
        .execute(&pool)
        .await
        .expect("migrate postgres");
    PostgresDb {
        pool,
        admin,
        schema,
    }
}

impl PostgresDb {
    /// Closes the pool and drops the schema.
    pub async fn drop_schema(self) {
        self.pool.close().await;
        let drop = format!("DROP SCHEMA \"{}\" CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}
