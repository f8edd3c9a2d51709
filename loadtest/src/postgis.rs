//! The PostGIS peer (`--target peer-postgis`), the durable alternative of
//! `../shared/peers/README.md`: pings reach it as they reach the Redis peer
//! (Mosquitto, then the bridge inside this process, see [`crate::bridge`]),
//! but the bridge writes them into a PostgreSQL table with batched UPSERTs,
//! and nearest-driver queries are a KNN scan of the table's GiST index.
//!
//! Parts: [`Table`] (the validated table name and every statement built
//! from it), [`prepare`] (extension, table, index; emptied unless
//! `--keep-index`), [`Writer`] (the bridge's UPSERTs, one per batch),
//! [`query_pool`] and [`nearest`] (the queries), [`server_pid`] (the
//! postmaster, whose process tree is the server's CPU).
//!
//! Set-up, once per machine (PostgreSQL with PostGIS installed; the tool
//! creates the extension, table and index itself once the database exists):
//!
//! ```text
//! createdb -h 127.0.0.1 -U postgres loadtest_postgis
//! psql -h 127.0.0.1 -U postgres -d loadtest_postgis -c 'create extension postgis'
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

use crate::bridge::Position;
use crate::geo::LatLng;

/// Longest table name accepted: PostgreSQL truncates identifiers at 63
/// bytes, and the index name adds `_geog_gist` (10) to it.
const MAX_TABLE_LEN: usize = 63 - 10;

/// The drivers' table: a plain lower-case SQL identifier, so it can be
/// written into statements without quoting (table names cannot be bind
/// parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table(String);

impl Table {
    /// Parses `--postgis-table`: `[a-z_][a-z0-9_]*`, at most
    /// [`MAX_TABLE_LEN`] bytes.
    pub fn parse(name: &str) -> Result<Table, String> {
        let mut bytes = name.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !(first_ok && rest_ok) || name.len() > MAX_TABLE_LEN {
            return Err(format!(
                "{name:?} is not a plain table name ([a-z_][a-z0-9_]*, at most {MAX_TABLE_LEN} bytes)"
            ));
        }
        Ok(Table(name.to_owned()))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// The table and its index. `geography`, not `geometry(Point, 4326)`:
    /// see [`Table::knn_sql`]. The index is partial (`WHERE available`):
    /// queries ask for available drivers only, so busy ones never enter the
    /// KNN scan. `updated_at` is the ping's own time (stale pings lose).
    fn create_sql(&self) -> [String; 2] {
        let t = &self.0;
        [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id text PRIMARY KEY, \
                 geog geography(Point, 4326) NOT NULL, \
                 available boolean NOT NULL DEFAULT true, \
                 updated_at timestamptz NOT NULL)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {t}_geog_gist ON {t} USING gist (geog) WHERE available"
            ),
        ]
    }

    /// One statement per batch: `$1` ids, `$2` longitudes, `$3` latitudes,
    /// `$4` ping times (Unix ms), as arrays of equal length with each id
    /// once (see [`columns`]; `ON CONFLICT DO UPDATE` refuses to touch a row
    /// twice in one statement). A new driver is available; an update moves
    /// it and leaves its availability alone (that is the app's, not the
    /// ping's), and a ping older than the stored one is ignored.
    fn upsert_sql(&self) -> String {
        let t = &self.0;
        format!(
            "INSERT INTO {t} (id, geog, available, updated_at) \
             SELECT id, ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography, true, \
                    to_timestamp(ts_ms / 1000.0::float8) \
             FROM unnest($1::text[], $2::float8[], $3::float8[], $4::int8[]) AS p(id, lng, lat, ts_ms) \
             ON CONFLICT (id) DO UPDATE SET geog = EXCLUDED.geog, updated_at = EXCLUDED.updated_at \
             WHERE {t}.updated_at <= EXCLUDED.updated_at"
        )
    }

    /// The ids of the `$4` nearest available drivers within `$3` metres of
    /// (`$1` lng, `$2` lat), nearest first.
    ///
    /// Why this form (each alternative measured with EXPLAIN ANALYZE on
    /// 100,000 drivers in the test area, PostGIS 3.3):
    /// - `geography`, not `geometry(Point, 4326)`: on 4326 geometry `<->`
    ///   and `ST_DWithin` measure degrees, and at Gothenburg's 57.7° N a
    ///   degree of longitude is 0.53 of a degree of latitude, so a radius in
    ///   degrees (the peers' `knn_3km.sql`) is an ellipse and the order is
    ///   wrong. On geography `<->` is the great-circle distance in metres
    ///   (hexdash's haversine measure), served by the GiST index as a KNN
    ///   scan.
    /// - Casting instead (`ST_DWithin(geom::geography, …)`) defeats the
    ///   index: a parallel sequential scan, 300–700 ms per query.
    /// - Nearest first, radius second: `WHERE ST_DWithin(…) ORDER BY <->
    ///   LIMIT k` lets the planner misjudge the radius filter (6 rows
    ///   expected, 15,000 found downtown) and pick a bitmap scan plus a sort
    ///   of every driver in the box (≈ 70 ms). The `k` nearest drivers,
    ///   those beyond the radius dropped, are exactly the `k` nearest within
    ///   it (if one of the `k` nearest lies outside, fewer than `k` lie
    ///   inside), and the plan is `Limit → Index Scan … Order By <->`,
    ///   reading about `k` index entries whatever the density (0.3 ms).
    fn knn_sql(&self) -> String {
        let t = &self.0;
        let at = "ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography";
        format!(
            "SELECT id FROM (\
             SELECT id, geog <-> {at} AS distance_m FROM {t} WHERE available \
             ORDER BY geog <-> {at} LIMIT $4) AS nearest \
             WHERE distance_m <= $3 ORDER BY distance_m"
        )
    }
}

/// `url` without its password, for messages (secrets never appear in logs).
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url).await.with_context(|| {
        format!(
            "connecting to PostgreSQL at {} (create the database first, e.g. \
             `createdb -h 127.0.0.1 -U postgres loadtest_postgis`)",
            redacted(url)
        )
    })
}

/// Creates the extension (if allowed), the table and its index; empties
/// the table unless `keep`.
pub async fn prepare(url: &str, table: &Table, keep: bool) -> anyhow::Result<()> {
    let mut conn = connect(url).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
        .execute(&mut conn)
        .await
        .context(
            "creating the postgis extension (install PostGIS, e.g. apt-get install \
             postgresql-15-postgis-3, then `create extension postgis` as a superuser)",
        )?;
    for sql in table.create_sql() {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating table {}", table.name()))?;
    }
    if !keep {
        sqlx::query(AssertSqlSafe(format!("TRUNCATE {}", table.name())))
            .execute(&mut conn)
            .await
            .with_context(|| format!("emptying table {}", table.name()))?;
    }
    Ok(())
}

/// Refreshes the planner's statistics (after the preload filled the table,
/// as a long-lived table would have them).
pub async fn analyze(url: &str, table: &Table) -> anyhow::Result<()> {
    let mut conn = connect(url).await?;
    sqlx::query(AssertSqlSafe(format!("ANALYZE {}", table.name())))
        .execute(&mut conn)
        .await
        .with_context(|| format!("analyzing table {}", table.name()))?;
    Ok(())
}

/// A batch as the UPSERT's column arrays, one entry per driver.
#[derive(Debug, Default, PartialEq)]
pub struct Columns {
    pub ids: Vec<String>,
    pub lngs: Vec<f64>,
    pub lats: Vec<f64>,
    pub ts_ms: Vec<i64>,
}

/// Each driver of `batch` once, with its newest ping (the later one on a
/// tie, as it arrived later), in order of first appearance. A ping without
/// `ts` is taken as recorded at `now_ms`.
pub fn columns(batch: &[Position], now_ms: i64) -> Columns {
    let mut slot: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    let mut out = Columns::default();
    for p in batch {
        let ts = p.ts_ms.unwrap_or(now_ms);
        match slot.get(p.member.as_str()) {
            Some(&i) => {
                if ts >= out.ts_ms[i] {
                    out.lngs[i] = p.lng;
                    out.lats[i] = p.lat;
                    out.ts_ms[i] = ts;
                }
            }
            None => {
                slot.insert(&p.member, out.ids.len());
                out.ids.push(p.member.clone());
                out.lngs.push(p.lng);
                out.lats.push(p.lat);
                out.ts_ms.push(ts);
            }
        }
    }
    out
}

/// The bridge's writer: one connection, one UPSERT statement per batch
/// (prepared once, then reused by the connection's statement cache).
pub struct Writer {
    conn: PgConnection,
    sql: Arc<str>,
}

impl Writer {
    pub async fn connect(url: &str, table: &Table) -> anyhow::Result<Writer> {
        Ok(Writer {
            conn: connect(url).await?,
            sql: table.upsert_sql().into(),
        })
    }

    /// Writes a batch in one statement (its own transaction).
    pub async fn write(&mut self, batch: &[Position], now_ms: i64) -> anyhow::Result<()> {
        let c = columns(batch, now_ms);
        sqlx::query(AssertSqlSafe(self.sql.clone()))
            .bind(c.ids)
            .bind(c.lngs)
            .bind(c.lats)
            .bind(c.ts_ms)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// The query side: a pool of `conns` connections, all opened now, and the
/// KNN statement.
#[derive(Clone)]
pub struct Queries {
    pool: PgPool,
    sql: Arc<str>,
}

/// Opens `conns` connections for the queries.
pub async fn query_pool(url: &str, table: &Table, conns: usize) -> anyhow::Result<Queries> {
    let n = u32::try_from(conns.max(1)).context("--nearby-conns is too large")?;
    let pool = PgPoolOptions::new()
        .max_connections(n)
        .min_connections(n)
        // The default pings every connection taken from the pool: a second
        // round trip per query that no application would pay for.
        .test_before_acquire(false)
        .connect(url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redacted(url)))?;
    // Open every connection before the run: a backend started inside the
    // window would count its start-up as query latency.
    let mut held = Vec::with_capacity(n as usize);
    for _ in 0..n {
        held.push(
            pool.acquire()
                .await
                .context("opening the query connections")?,
        );
    }
    drop(held);
    Ok(Queries {
        pool,
        sql: table.knn_sql().into(),
    })
}

/// One nearest-driver query; the number of drivers found.
pub async fn nearest(
    q: &Queries,
    at: LatLng,
    radius_m: f64,
    limit: usize,
) -> anyhow::Result<usize> {
    let limit = i64::try_from(limit).context("--limit is too large")?;
    let ids: Vec<String> = sqlx::query_scalar(AssertSqlSafe(q.sql.clone()))
        .bind(at.lng)
        .bind(at.lat)
        .bind(radius_m)
        .bind(limit)
        .fetch_all(&q.pool)
        .await?;
    Ok(ids.len())
}

/// The pid of the postmaster serving `url`, if it runs on this machine:
/// the parent of this connection's backend, both named `postgres`
/// (a server in a container or on another host has other pids).
pub async fn server_pid(url: &str) -> anyhow::Result<u32> {
    let mut conn = connect(url).await?;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    let backend = u32::try_from(backend).context("negative backend pid")?;
    let postmaster = crate::proc_stats::parent_of(backend)
        .with_context(|| format!("PostgreSQL backend {backend} is not a process here"))?;
    for pid in [backend, postmaster] {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() != "postgres" {
            bail!("pid {pid} here is {comm:?}, not PostgreSQL (is the server on another host?)");
        }
    }
    Ok(postmaster)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Great-circle distance on PostGIS's sphere (mean radius), the
    /// measure of geography's `<->`.
    fn haversine_m(a: LatLng, b: LatLng) -> f64 {
        const R_M: f64 = 6_371_008.771_4;
        let (la, lb) = (a.lat.to_radians(), b.lat.to_radians());
        let dlat = lb - la;
        let dlng = (b.lng - a.lng).to_radians();
        let h = (dlat / 2.0).sin().powi(2) + la.cos() * lb.cos() * (dlng / 2.0).sin().powi(2);
        2.0 * R_M * h.sqrt().asin()
    }

    fn table(name: &str) -> Table {
        Table::parse(name).expect("valid table name")
    }

    #[test]
    fn table_names() {
        for (name, ok) in [
            ("loadtest_drivers", true),
            ("_t1", true),
            ("drivers", true),
            ("", false),
            ("1drivers", false),
            ("Drivers", false),
            ("drivers; drop table x", false),
            ("public.drivers", false),
            ("d\"x", false),
            (&"a".repeat(MAX_TABLE_LEN), true),
            (&"a".repeat(MAX_TABLE_LEN + 1), false),
        ] {
            assert_eq!(Table::parse(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn statements_name_the_table_and_use_the_knn_operator() {
        let t = table("lt_d");
        let [create, index] = t.create_sql();
        assert!(create.starts_with("CREATE TABLE IF NOT EXISTS lt_d ("));
        assert!(create.contains("geog geography(Point, 4326) NOT NULL"));
        assert_eq!(
            index,
            "CREATE INDEX IF NOT EXISTS lt_d_geog_gist ON lt_d USING gist (geog) WHERE available"
        );
        let upsert = t.upsert_sql();
        assert!(upsert.starts_with("INSERT INTO lt_d (id, geog, available, updated_at)"));
        assert!(upsert.contains("ON CONFLICT (id) DO UPDATE"));
        assert!(upsert.ends_with("WHERE lt_d.updated_at <= EXCLUDED.updated_at"));
        let knn = t.knn_sql();
        assert!(knn.contains("FROM lt_d WHERE available ORDER BY geog <-> ST_SetSRID"));
        assert!(knn.contains("LIMIT $4) AS nearest WHERE distance_m <= $3"));
    }

    #[test]
    fn passwords_are_redacted() {
        for (url, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432/db",
                "postgres://postgres@127.0.0.1:5432/db",
            ),
            ("postgres://u:secret@host/db", "postgres://u@host/db"),
            ("postgres://host/db", "postgres://host/db"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redacted(url), expected, "{url}");
        }
    }

    fn pos(member: &str, lat: f64, ts_ms: Option<i64>) -> Position {
        Position {
            member: member.to_owned(),
            lat,
            lng: 11.0,
            ts_ms,
        }
    }

    #[test]
    fn one_row_per_driver_with_its_newest_ping() {
        let batch = [
            pos("a", 1.0, Some(10)),
            pos("b", 2.0, Some(10)),
            pos("a", 3.0, Some(20)),
            pos("b", 4.0, Some(5)),
            pos("c", 5.0, None),
            pos("a", 6.0, Some(20)),
        ];
        let c = columns(&batch, 99);
        assert_eq!(c.ids, ["a", "b", "c"]);
        assert_eq!(c.lats, [6.0, 2.0, 5.0]);
        assert_eq!(c.ts_ms, [20, 10, 99]);
        assert_eq!(c.lngs, [11.0; 3]);
        assert_eq!(columns(&[], 0), Columns::default());
    }

    /// Against a real server: `HEXDASH_TEST_DATABASE_URL` (skipped when
    /// unset; a server that is set but unreachable fails), PostGIS
    /// (skipped, saying why, when the server cannot create the extension).
    /// Writes through the bridge's UPSERT, then checks the KNN answers
    /// against a brute-force haversine order and that EXPLAIN shows the
    /// index-ordered scan.
    #[tokio::test]
    async fn upsert_and_knn_against_postgis() {
        let Ok(url) = std::env::var("HEXDASH_TEST_DATABASE_URL") else {
            eprintln!("HEXDASH_TEST_DATABASE_URL is unset: skipped");
            return;
        };
        let mut conn = connect(&url)
            .await
            .expect("HEXDASH_TEST_DATABASE_URL is reachable");
        if let Err(e) = sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
            .execute(&mut conn)
            .await
        {
            eprintln!("PostGIS unavailable on this server ({e}): skipped");
            return;
        }
        let t = table(&format!("lt_test_{}", std::process::id()));
        prepare(&url, &t, false).await.expect("prepare");

        // 400 drivers on a seeded grid around (57.70, 11.97), written in two
        // batches; the second moves driver 0 next to the query point, and
        // a stale ping for driver 1 must not move it.
        let centre = LatLng {
            lat: 57.70,
            lng: 11.97,
        };
        let mut rng = crate::walker::SplitMix64::new(7);
        let mut first = Vec::new();
        for i in 0..400 {
            let dlat = (rng.below(10_000) as f64 / 10_000.0 - 0.5) * 0.1;
            let dlng = (rng.below(10_000) as f64 / 10_000.0 - 0.5) * 0.2;
            first.push(Position {
                member: format!("d{i}"),
                lat: centre.lat + dlat,
                lng: centre.lng + dlng,
                ts_ms: Some(1_000),
            });
        }
        let mut writer = Writer::connect(&url, &t).await.expect("writer");
        writer.write(&first, 0).await.expect("first batch");
        let second = [
            Position {
                member: "d0".to_owned(),
                lat: centre.lat + 0.0001,
                lng: centre.lng,
                ts_ms: Some(2_000),
            },
            Position {
                member: "d1".to_owned(),
                lat: centre.lat,
                lng: centre.lng,
                ts_ms: Some(500),
            },
        ];
        writer.write(&second, 0).await.expect("second batch");
        let mut expected_positions: Vec<(String, LatLng)> = first
            .iter()
            .map(|p| {
                (
                    p.member.clone(),
                    LatLng {
                        lat: p.lat,
                        lng: p.lng,
                    },
                )
            })
            .collect();
        expected_positions[0].1 = LatLng {
            lat: centre.lat + 0.0001,
            lng: centre.lng,
        };

        let q = query_pool(&url, &t, 2).await.expect("pool");
        for radius_m in [50.0, 1_000.0, 3_000.0] {
            let ids: Vec<String> = sqlx::query_scalar(AssertSqlSafe(q.sql.clone()))
                .bind(centre.lng)
                .bind(centre.lat)
                .bind(radius_m)
                .bind(10_i64)
                .fetch_all(&q.pool)
                .await
                .expect("knn");
            let mut brute: Vec<(f64, &str)> = expected_positions
                .iter()
                .map(|(id, p)| (haversine_m(centre, *p), id.as_str()))
                .filter(|(d, _)| *d <= radius_m)
                .collect();
            brute.sort_by(|a, b| a.0.total_cmp(&b.0));
            let brute: Vec<&str> = brute.iter().take(10).map(|(_, id)| *id).collect();
            assert_eq!(ids, brute, "radius {radius_m} m");
        }
        assert_eq!(nearest(&q, centre, 1.0, 10).await.expect("nearest"), 0);

        sqlx::query(AssertSqlSafe(format!("ANALYZE {}", t.name())))
            .execute(&mut conn)
            .await
            .expect("analyze");
        let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "EXPLAIN {}",
            t.knn_sql()
                .replace("$1", "11.97")
                .replace("$2", "57.70")
                .replace("$3", "3000")
                .replace("$4", "10")
        )))
        .fetch_all(&mut conn)
        .await
        .expect("explain");
        let plan = plan.join("\n");
        assert!(
            plan.contains(&format!("Index Scan using {}_geog_gist", t.name()))
                && plan.contains("Order By: (geog <->"),
            "{plan}"
        );
        sqlx::query(AssertSqlSafe(format!("DROP TABLE {}", t.name())))
            .execute(&mut conn)
            .await
            .expect("drop");
    }
}
