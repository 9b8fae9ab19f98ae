//! greenroom-store: everything greenroom remembers, behind one interface.
//!
//! Cycles with their stages and per-component records, manifests, leases
//! and the `--wait` queue, what runs where, and allocated ports. Two
//! backends sit behind [`Store`], chosen at run time by the URL given to
//! [`Store::connect`]: SQLite (a file, WAL mode; the default, also
//! [`Store::open`]) and PostgreSQL (`postgres://…`, so that several
//! replicas can share one state).
//!
//! # One copy of every query
//!
//! The store talks to both through sqlx's `Any` driver: one pool type
//! (`AnyPool`) and one row type (`AnyRow`), so every query's SQL text and
//! every row decoder exist once, with no per-backend branch outside
//! [`Store::connect`]. That fits because the schema is deliberately limited
//! to what `Any` maps on both sides, BIGINT (`i64`) and TEXT (`String`),
//! nullable or not, and because the SQL is the dialect both share: `$N`
//! placeholders, `RETURNING`, `ON CONFLICT … DO NOTHING / DO UPDATE`, a
//! partial unique index, a window function. Database errors pass through
//! `Any` as the native driver's, so a unique violation is recognised the
//! same way on both. The alternative, an enum of native pools with each
//! query expanded per backend (generic over `sqlx::Database`), keeps native
//! types but needs a macro around every method and long `Encode`/`Decode`
//! bound lists, for nothing this schema uses. What `Any` costs: values are
//! converted once per row (noise next to the query itself), its drivers are
//! registered process-wide on first connect
//! (`sqlx::any::install_default_drivers`, idempotent), and SQLite's options
//! travel as URL parameters (`mode=rwc`) plus pragmas run on every new
//! connection (busy timeout 30 s, WAL, `synchronous = NORMAL`, foreign
//! keys; see `SQLITE_PRAGMAS`).
//!
//! Migrations are embedded per backend, `migrations/sqlite/` and
//! `migrations/postgres/`, with the same version numbers: a schema change
//! adds one file to each. The PostgreSQL schema differs only in spelling
//! (BIGSERIAL ids, `TEXT COLLATE "C"` so that comparisons and ORDER BY are
//! byte order as in SQLite); ids may have gaps there (a failed insert
//! consumes a sequence value). Queries are checked at run time and every
//! one runs in this crate's tests against a real SQLite file and a real
//! PostgreSQL server, so builds need no live database.
//!
//! This crate stores and fetches; it does not decide. Lease decisions are
//! made by `greenroom_core::lease`, and the atomic steps here (compare and
//! swap on the fencing token, each a single `UPDATE … WHERE token = $n` or
//! `INSERT … ON CONFLICT DO NOTHING` statement, atomic under PostgreSQL's
//! READ COMMITTED as under SQLite's single writer) only make those
//! decisions race-free between processes.

use greenroom_core::lease::{HolderProcess, Lease};
use greenroom_core::manifest::{Manifest, ManifestComponent};
use greenroom_core::time::Millis;
use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};
use std::path::Path;
use std::str::FromStr;

/// The SQLite schema's migrations (their bytes must never change: sqlx
/// checks every applied migration's checksum).
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The PostgreSQL schema's migrations, version for version the same schema.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Run on every new SQLite connection, in this order: the busy timeout
/// first, so that switching a fresh database to WAL waits for a concurrent
/// opener instead of failing.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 30000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
];

/// Connections per store (per process).
const MAX_CONNECTIONS: u32 = 4;

/// Errors from the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open the state database {path}: {cause}")]
    Open {
        /// Database file path, or URL (its password replaced by `redacted`).
        path: String,
        /// Cause.
        cause: sqlx::Error,
    },
    /// A query failed.
    #[error("state database: {context}: {cause}")]
    Query {
        /// What was being done.
        context: &'static str,
        /// Cause.
        cause: sqlx::Error,
    },
    /// Stored data could not be decoded.
    #[error("state database: {context}: stored data is unreadable: {detail}")]
    Corrupt {
        /// What was being read.
        context: &'static str,
        /// Detail.
        detail: String,
    },
    /// Another cycle is already running on that environment instance.
    #[error("another cycle is already running on {0}")]
    CycleRunning(String),
    /// A manifest id prefix matches several manifests.
    #[error("manifest id `{0}` is ambiguous: give more characters")]
    Ambiguous(String),
}

type Result<T> = std::result::Result<T, StoreError>;

fn q(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |cause| StoreError::Query { context, cause }
}

/// A recorded cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleRecord {
    /// Cycle number.
    pub id: i64,
    /// Environment instance.
    pub environment: String,
    /// `deploy` or `stop`.
    pub kind: String,
    /// Manifest deployed (none for `stop`).
    pub manifest: Option<String>,
    /// The request as typed (`--base prod packit-service=614`).
    pub request: String,
    /// Who asked.
    pub requested_by: String,
    /// `running`, `succeeded`, `failed`, `interrupted`, `fenced`.
    pub result: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Start.
    pub started_at: Millis,
    /// End.
    pub finished_at: Option<Millis>,
    /// Host of the process that ran it.
    pub host: String,
    /// Pid of the process that ran it.
    pub pid: i32,
    /// Start time of that process.
    pub pid_start: u64,
    /// Fencing token of the lease it ran under.
    pub lease_token: i64,
    /// A cancel asked for while it ran: who, why, when.
    pub cancel: Option<CancelRequest>,
}

/// A request to cancel a running cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelRequest {
    /// Who asked.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Millis,
}

/// What a retention pass removed from the database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Finished cycles (with their stages and components).
    pub cycles: u64,
    /// Manifests no cycle, environment or deployed component refers to any more.
    pub manifests: u64,
    /// Processed webhook deliveries.
    pub deliveries: u64,
    /// Scheduling decisions.
    pub decisions: u64,
    /// The ids of the removed cycles (their per-cycle directories can go too).
    pub cycle_ids: Vec<i64>,
    /// The run and build logs only the removed cycles referred to (what
    /// runs now keeps its log); the caller deletes the files.
    pub log_paths: Vec<String>,
}

/// What a retention pass keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// Finished cycles that ended before this are removed...
    pub cycles_before: Millis,
    /// ...except the newest this many of each environment instance.
    pub cycles_per_environment: i64,
    /// Processed deliveries received before this are removed.
    pub deliveries_before: Millis,
    /// Decisions taken before this are removed.
    pub decisions_before: Millis,
    /// At most this many cycles per pass (keeps each transaction short).
    pub batch: i64,
}

/// A cycle about to start.
#[derive(Debug, Clone)]
pub struct NewCycle<'a> {
    /// Environment instance.
    pub environment: &'a str,
    /// `deploy` or `stop`.
    pub kind: &'a str,
    /// Manifest id, already stored with [`Store::put_manifest`].
    pub manifest: Option<&'a str>,
    /// The request as typed.
    pub request: &'a str,
    /// Who asked.
    pub requested_by: &'a str,
    /// Start time.
    pub started_at: Millis,
    /// The running process.
    pub process: &'a HolderProcess,
    /// Lease fencing token.
    pub lease_token: i64,
}

/// One component's part in a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleComponent {
    /// Component.
    pub component: String,
    /// `deploy`, `carry` or `stop`.
    pub action: String,
    /// Manifest entry.
    pub entry: ManifestComponent,
    /// Artifact reference deployed.
    pub artifact: Option<String>,
    /// `built`, `cached`, `none` (nothing to build), `pending`, `failed`.
    pub build: String,
    /// Build log path.
    pub build_log: Option<String>,
    /// Run/deploy log path.
    pub run_log: Option<String>,
    /// `pending`, `running`, `failed`, `stopped`, `carried`, `not-reached`.
    pub outcome: String,
}

/// A stage of a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageRecord {
    /// Order within the cycle.
    pub seq: i64,
    /// `resolve`, `build`, `deploy`, `stop`, `health`.
    pub name: String,
    /// Component, when per component.
    pub component: Option<String>,
    /// Start.
    pub started_at: Millis,
    /// End.
    pub finished_at: Millis,
    /// `ok`, `failed`, `cached`, `skipped`.
    pub result: String,
    /// Detail for people.
    pub detail: Option<String>,
}

/// What runs in an environment for one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployed {
    /// Environment instance.
    pub environment: String,
    /// Component.
    pub component: String,
    /// Cycle that put it there.
    pub cycle_id: i64,
    /// Manifest entry.
    pub entry: ManifestComponent,
    /// Artifact reference.
    pub artifact: Option<String>,
    /// `running`, `starting`, `failed`, `stopped`.
    pub state: String,
    /// Supervisor pid (process driver).
    pub pid: Option<i32>,
    /// Its start time.
    pub pid_start: Option<u64>,
    /// Log file.
    pub log_path: Option<String>,
    /// Exit status file (process driver).
    pub status_path: Option<String>,
    /// Allocated port.
    pub port: Option<u16>,
    /// Where people reach it.
    pub url: Option<String>,
    /// Last change.
    pub updated_at: Millis,
}

/// A `--wait` request in the lease queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    /// Ticket (FIFO order).
    pub ticket: i64,
    /// What was asked for.
    pub queue_key: String,
    /// Who waits.
    pub holder: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub enqueued_at: Millis,
    /// The waiting process.
    pub process: HolderProcess,
}

/// The lease fields an acquisition writes.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    /// Who.
    pub holder: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Now.
    pub since: Millis,
    /// Until.
    pub expires: Millis,
    /// Bound to this process, if any.
    pub process: Option<&'a HolderProcess>,
}

/// The state store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// The database behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// What [`Store::connect`] makes of a URL: the backend, the URL handed to
/// sqlx, and how to name the database in errors (no password).
#[derive(Debug, PartialEq, Eq)]
struct Target {
    backend: Backend,
    url: String,
    shown: String,
    /// SQLite's `:memory:`: one database per connection, so the pool keeps
    /// exactly one, for good.
    in_memory: bool,
}

/// An exclusive lock on `DB.migrate-lock`, held while migrations run;
/// `None` when the lock file cannot be had (a read-only directory: then
/// nobody can migrate anyway, and the migrator says what is missing).
async fn migration_lock(db: &str) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let path = format!("{db}.migrate-lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ok()?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).ok()
    })
    .await
    .ok()
    .flatten()
}

fn config_error(message: String) -> sqlx::Error {
    sqlx::Error::Configuration(message.into())
}

/// Parses `sqlite:PATH`, `sqlite://PATH` (PATH relative or absolute,
/// percent-encoded where needed, optional `?query`), `postgres://…` and
/// `postgresql://…`.
fn target(url: &str) -> std::result::Result<Target, StoreError> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") => {
            let rest = &url["sqlite:".len()..];
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, params) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            let path = percent_decode(path).map_err(|detail| StoreError::Open {
                path: path.to_string(),
                cause: config_error(format!("the SQLite URL's path {detail}")),
            })?;
            if path.is_empty() {
                return Err(StoreError::Open {
                    path: url.to_string(),
                    cause: config_error("a SQLite URL needs a file path: `sqlite:PATH`".into()),
                });
            }
            Ok(sqlite_target(&path, params))
        }
        Some("postgres" | "postgresql") => {
            let shown = match AnyConnectOptions::from_str(url) {
                Ok(options) => redacted(&options),
                // Never echo what could not be parsed: it may hold a password.
                Err(_) => format!("{}://(unparseable URL)", scheme.as_deref().unwrap_or_default()),
            };
            Ok(Target {
                backend: Backend::Postgres,
                url: url.to_string(),
                shown,
                in_memory: false,
            })
        }
        _ => Err(StoreError::Open {
            path: url.split_once("://").map_or(url, |(s, _)| s).to_string(),
            cause: config_error(
                "unsupported database URL: use `sqlite:PATH` or `postgres://USER@HOST/DATABASE`".into(),
            ),
        }),
    }
}

/// The URL sqlx gets for a SQLite file: the whole path percent-encoded
/// into one opaque segment (no host, no `..` resolution by URL parsing),
/// created if missing unless the query says otherwise.
fn sqlite_target(path: &str, params: Option<&str>) -> Target {
    let params = params.filter(|p| !p.is_empty());
    let has_mode = params.is_some_and(|p| p.split('&').any(|kv| kv.starts_with("mode=")));
    let query = match (params, has_mode) {
        (None, _) => "mode=rwc".to_string(),
        (Some(p), true) => p.to_string(),
        (Some(p), false) => format!("mode=rwc&{p}"),
    };
    let in_memory = path == ":memory:";
    let location = if in_memory {
        path.to_string()
    } else {
        percent_encode(path)
    };
    Target {
        backend: Backend::Sqlite,
        url: format!("sqlite:{location}?{query}"),
        shown: path.to_string(),
        in_memory,
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> std::result::Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("has a bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once percent-decoded".to_string())
}

/// The URL without its password (user info or `password=` parameter).
fn redacted(options: &AnyConnectOptions) -> String {
    let mut url = options.database_url.clone();
    if url.password().is_some() {
        // Only fails for URLs that cannot have a password.
        let _ = url.set_password(Some("redacted"));
    }
    if url.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "redacted".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn process_of(host: Option<String>, pid: Option<i64>, start: Option<i64>) -> Option<HolderProcess> {
    match (host, pid, start) {
        (Some(host), Some(pid), Some(start)) => Some(HolderProcess {
            host,
            pid: i32::try_from(pid).unwrap_or(0),
            start_time: u64::try_from(start).unwrap_or(0),
        }),
        _ => None,
    }
}

fn decode_entry(text: &str, context: &'static str) -> Result<ManifestComponent> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        context,
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> String {
    // Serializing plain structs of strings, numbers and maps cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) the SQLite database file at `path` and
    /// applies migrations: [`Store::connect`] with a `sqlite:` URL.
    pub async fn open(path: &Path) -> Result<Store> {
        let text = path.to_str().ok_or_else(|| StoreError::Open {
            path: path.display().to_string(),
            cause: config_error("the path is not UTF-8".into()),
        })?;
        Self::connect_to(sqlite_target(text, None)).await
    }

    /// Connects to the database at `url` and applies migrations:
    ///
    /// - `sqlite:PATH` or `sqlite://PATH`: a SQLite file, created if
    ///   missing (PATH relative to the working directory unless it starts
    ///   with `/`, so `sqlite:///var/lib/x.db` is absolute; `%XX` escapes
    ///   are decoded; `?mode=ro` and sqlx's other SQLite parameters pass
    ///   through; `sqlite::memory:` is a private in-memory database, on
    ///   one connection);
    /// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?…]` or
    ///   `postgresql://…`: an existing PostgreSQL database (sqlx's URL
    ///   parameters, e.g. `?host=/run/postgresql` for a Unix socket).
    ///
    /// Processes may connect (and migrate) at once: on PostgreSQL an
    /// advisory lock serializes migrations, on SQLite a lock file next to
    /// the database (`DB.migrate-lock`).
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_to(target(url)?).await
    }

    async fn connect_to(target: Target) -> Result<Store> {
        let Target {
            backend,
            url,
            shown,
            in_memory,
        } = target;
        let err = |cause| StoreError::Open {
            path: shown.clone(),
            cause,
        };
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(&url).map_err(err)?;
        if backend != Backend::Sqlite {
            // One plain connection first: the pool retries a refused
            // connection until its acquire timeout, a person wants the
            // reason now.
            use sqlx::Connection;
            match tokio::time::timeout(
                std::time::Duration::from_secs(30),
                sqlx::AnyConnection::connect_with(&options),
            )
            .await
            {
                Ok(Ok(c)) => {
                    let _ = c.close().await;
                }
                Ok(Err(e)) => return Err(err(e)),
                Err(_) => return Err(err(sqlx::Error::PoolTimedOut)),
            }
        }
        let pool = if in_memory {
            AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            AnyPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .min_connections(0)
        };
        let pool = pool
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in SQLITE_PRAGMAS {
                            sqlx::query(*pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(err)?;
        // SQLite migrations take no lock of their own: two processes opening
        // a new state file at once (a deploy and a status) would both create
        // the tables. A lock file next to the database serializes them.
        let _migrating = if backend == Backend::Sqlite && !in_memory {
            migration_lock(&shown).await
        } else {
            None
        };
        backend.migrator().run(&pool).await.map_err(|e| err(e.into()))?;
        Ok(Store { pool, backend })
    }

    /// `"sqlite"` or `"postgres"` (for metrics and benchmarks).
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Closes the pool (flushes WAL for other readers).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // -- manifests ---------------------------------------------------------

    /// Stores a manifest (no-op if that id is already stored: manifests are immutable).
    pub async fn put_manifest(&self, m: &Manifest, now: Millis) -> Result<()> {
        sqlx::query("INSERT INTO manifests (id, body, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(&m.id)
            .bind(encode(&m.components))
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("store manifest"))?;
        Ok(())
    }

    /// The manifest whose id starts with `prefix` (at least 4 characters).
    pub async fn manifest(&self, prefix: &str) -> Result<Option<Manifest>> {
        if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let pattern = format!("{}%", prefix.to_ascii_lowercase());
        let rows = sqlx::query("SELECT id, body FROM manifests WHERE id LIKE $1 LIMIT 2")
            .bind(pattern)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read manifest"))?;
        match rows.as_slice() {
            [] => Ok(None),
            [row] => {
                let id: String = row.try_get("id").map_err(q("read manifest"))?;
                let body: String = row.try_get("body").map_err(q("read manifest"))?;
                let components = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                    context: "manifest",
                    detail: e.to_string(),
                })?;
                Ok(Some(Manifest { id, components }))
            }
            _ => Err(StoreError::Ambiguous(prefix.to_string())),
        }
    }

    // -- cycles ------------------------------------------------------------

    /// Records a new running cycle; returns its id. Fails with
    /// [`StoreError::CycleRunning`] if one is already running there.
    pub async fn create_cycle(&self, c: &NewCycle<'_>) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO cycles (environment, kind, manifest_id, request, requested_by, result, started_at, host, pid, pid_start, lease_token) \
             VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(c.environment)
        .bind(c.kind)
        .bind(c.manifest)
        .bind(c.request)
        .bind(c.requested_by)
        .bind(c.started_at)
        .bind(&c.process.host)
        .bind(i64::from(c.process.pid))
        .bind(to_i64(c.process.start_time))
        .bind(c.lease_token)
        .fetch_one(&self.pool)
        .await;
        match row {
            Ok(row) => row.try_get(0).map_err(q("create cycle")),
            // SQLite does not name the violated index; PostgreSQL does.
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation() && e.constraint().is_none_or(|name| name == "one_running_cycle") =>
            {
                Err(StoreError::CycleRunning(c.environment.to_string()))
            }
            Err(e) => Err(StoreError::Query {
                context: "create cycle",
                cause: e,
            }),
        }
    }

    /// Ends a running cycle (no-op if it already ended).
    pub async fn finish_cycle(&self, id: i64, result: &str, error: Option<&str>, now: Millis) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE cycles SET result = $1, error = $2, finished_at = $3 WHERE id = $4 AND result = 'running'",
        )
        .bind(result)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(q("finish cycle"))?;
        Ok(r.rows_affected() == 1)
    }

    fn cycle_from_row(row: &AnyRow) -> Result<CycleRecord> {
        let g = q("read cycle");
        Ok(CycleRecord {
            id: row.try_get("id").map_err(q("read cycle"))?,
            environment: row.try_get("environment").map_err(q("read cycle"))?,
            kind: row.try_get("kind").map_err(q("read cycle"))?,
            manifest: row.try_get("manifest_id").map_err(q("read cycle"))?,
            request: row.try_get("request").map_err(q("read cycle"))?,
            requested_by: row.try_get("requested_by").map_err(q("read cycle"))?,
            result: row.try_get("result").map_err(q("read cycle"))?,
            error: row.try_get("error").map_err(q("read cycle"))?,
            started_at: row.try_get("started_at").map_err(q("read cycle"))?,
            finished_at: row.try_get("finished_at").map_err(q("read cycle"))?,
            host: row.try_get("host").map_err(q("read cycle"))?,
            pid: i32::try_from(row.try_get::<i64, _>("pid").map_err(q("read cycle"))?).unwrap_or(0),
            pid_start: u64::try_from(row.try_get::<i64, _>("pid_start").map_err(q("read cycle"))?).unwrap_or(0),
            lease_token: row.try_get("lease_token").map_err(g)?,
            cancel: match row
                .try_get::<Option<String>, _>("cancel_requested_by")
                .map_err(q("read cycle"))?
            {
                None => None,
                Some(by) => Some(CancelRequest {
                    by,
                    reason: row
                        .try_get::<Option<String>, _>("cancel_reason")
                        .map_err(q("read cycle"))?
                        .unwrap_or_default(),
                    at: row
                        .try_get::<Option<i64>, _>("cancel_requested_at")
                        .map_err(q("read cycle"))?
                        .unwrap_or_default(),
                }),
            },
        })
    }

    /// One cycle.
    pub async fn cycle(&self, id: i64) -> Result<Option<CycleRecord>> {
        let row = sqlx::query("SELECT * FROM cycles WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read cycle"))?;
        row.as_ref().map(Self::cycle_from_row).transpose()
    }

    /// Cycles, newest first, optionally of some environment instances only.
    pub async fn cycles(&self, environments: Option<&[String]>, limit: i64) -> Result<Vec<CycleRecord>> {
        // Filtered and limited by the database (this runs on every `status`
        // and API listing): `environment IN ($1, …) … LIMIT $n`.
        let envs = environments.unwrap_or(&[]);
        let filter = match environments {
            None => String::new(),
            Some([]) => return Ok(Vec::new()),
            Some(e) => format!(
                "WHERE environment IN ({})",
                (1..=e.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
            ),
        };
        let sql = format!(
            "SELECT * FROM cycles {filter} ORDER BY id DESC LIMIT ${}",
            envs.len() + 1
        );
        // Only `$N` placeholders are formatted in: no outside text reaches the SQL.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for e in envs {
            query = query.bind(e);
        }
        let rows = query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list cycles"))?;
        rows.iter().map(Self::cycle_from_row).collect()
    }

    /// Asks a running cycle to stop before its next step. Returns false when
    /// the cycle is not running (finished already, or unknown). The first
    /// request wins; later ones do not overwrite who asked.
    pub async fn request_cancel(&self, id: i64, by: &str, reason: &str, now: Millis) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE cycles SET cancel_requested_by = COALESCE(cancel_requested_by, $1), \
             cancel_reason = COALESCE(cancel_reason, $2), cancel_requested_at = COALESCE(cancel_requested_at, $3) \
             WHERE id = $4 AND result = 'running'",
        )
        .bind(by)
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(q("request cancel"))?;
        Ok(r.rows_affected() == 1)
    }

    /// The cancel request of a cycle, if someone asked.
    pub async fn cancel_requested(&self, id: i64) -> Result<Option<CancelRequest>> {
        let row = sqlx::query(
            "SELECT cancel_requested_by, cancel_reason, cancel_requested_at FROM cycles \
             WHERE id = $1 AND cancel_requested_by IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read cancel request"))?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(CancelRequest {
            by: row.try_get(0).map_err(q("read cancel request"))?,
            reason: row
                .try_get::<Option<String>, _>(1)
                .map_err(q("read cancel request"))?
                .unwrap_or_default(),
            at: row
                .try_get::<Option<i64>, _>(2)
                .map_err(q("read cancel request"))?
                .unwrap_or_default(),
        }))
    }

    /// Removes what retention no longer keeps, in one transaction: finished
    /// cycles older than `keep.cycles_before` beyond the newest
    /// `keep.cycles_per_environment` per instance (never a cycle that what
    /// runs now refers to), their stages and components, manifests nothing
    /// refers to any more, old processed deliveries and old decisions.
    pub async fn prune(&self, keep: &Keep) -> Result<Pruned> {
        let g = q("prune");
        // Candidates are read before the transaction, and the transaction
        // starts with a write: in SQLite a transaction that reads and then
        // writes fails at once when another writer committed in between.
        let ids: Vec<i64> = sqlx::query(
            "SELECT id FROM (SELECT id, finished_at, result, \
                ROW_NUMBER() OVER (PARTITION BY environment ORDER BY id DESC) AS newer \
                FROM cycles) AS ranked \
             WHERE result <> 'running' AND finished_at IS NOT NULL AND finished_at < $1 AND newer > $2 \
               AND id NOT IN (SELECT cycle_id FROM deployed) \
               AND id NOT IN (SELECT cycle_id FROM environment_state) \
             ORDER BY id LIMIT $3",
        )
        .bind(keep.cycles_before)
        .bind(keep.cycles_per_environment)
        .bind(keep.batch)
        .fetch_all(&self.pool)
        .await
        .map_err(q("prune: select cycles"))?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<std::result::Result<_, _>>()
        .map_err(g)?;
        let mut tx = self.pool.begin().await.map_err(q("prune"))?;
        let decisions = sqlx::query("DELETE FROM decisions WHERE at < $1")
            .bind(keep.decisions_before)
            .execute(&mut *tx)
            .await
            .map_err(q("prune: decisions"))?
            .rows_affected();
        let mut out = Pruned {
            decisions,
            ..Pruned::default()
        };
        for id in &ids {
            let logs = sqlx::query("SELECT build_log, run_log FROM cycle_components WHERE cycle_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(q("prune: logs"))?;
            for row in &logs {
                for col in [0, 1] {
                    if let Some(p) = row.try_get::<Option<String>, _>(col).map_err(q("prune: logs"))? {
                        out.log_paths.push(p);
                    }
                }
            }
            for sql in [
                "DELETE FROM stages WHERE cycle_id = $1",
                "DELETE FROM cycle_components WHERE cycle_id = $1",
                "DELETE FROM cycles WHERE id = $1 AND result <> 'running'",
            ] {
                sqlx::query(sql)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("prune: delete cycle"))?;
            }
        }
        out.cycles = ids.len() as u64;
        out.cycle_ids = ids;
        // Logs still referred to by a kept cycle or by what runs now stay.
        let mut still = std::collections::BTreeSet::new();
        for sql in [
            "SELECT log_path FROM deployed WHERE log_path IS NOT NULL",
            "SELECT build_log FROM cycle_components WHERE build_log IS NOT NULL",
            "SELECT run_log FROM cycle_components WHERE run_log IS NOT NULL",
        ] {
            for row in sqlx::query(sql)
                .fetch_all(&mut *tx)
                .await
                .map_err(q("prune: logs in use"))?
            {
                still.insert(row.try_get::<String, _>(0).map_err(q("prune: logs in use"))?);
            }
        }
        out.log_paths.sort();
        out.log_paths.dedup();
        out.log_paths.retain(|p| !still.contains(p));
        out.manifests = sqlx::query(
            "DELETE FROM manifests WHERE id NOT IN (SELECT manifest_id FROM cycles WHERE manifest_id IS NOT NULL) \
             AND id NOT IN (SELECT manifest_id FROM environment_state WHERE manifest_id IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(q("prune: manifests"))?
        .rows_affected();
        out.deliveries = sqlx::query("DELETE FROM deliveries WHERE processed_at IS NOT NULL AND received_at < $1")
            .bind(keep.deliveries_before)
            .execute(&mut *tx)
            .await
            .map_err(q("prune: deliveries"))?
            .rows_affected();
        tx.commit().await.map_err(q("prune: commit"))?;
        Ok(out)
    }

    /// Cycles still marked running.
    pub async fn running_cycles(&self) -> Result<Vec<CycleRecord>> {
        let rows = sqlx::query("SELECT * FROM cycles WHERE result = 'running' ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list running cycles"))?;
        rows.iter().map(Self::cycle_from_row).collect()
    }

    /// Appends a stage record.
    pub async fn add_stage(&self, cycle: i64, s: &StageRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO stages (cycle_id, seq, name, component, started_at, finished_at, result, detail) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM stages WHERE cycle_id = $1), $2, $3, $4, $5, $6, $7)",
        )
        .bind(cycle)
        .bind(&s.name)
        .bind(&s.component)
        .bind(s.started_at)
        .bind(s.finished_at)
        .bind(&s.result)
        .bind(&s.detail)
        .execute(&self.pool)
        .await
        .map_err(q("record stage"))?;
        Ok(())
    }

    /// A cycle's stages in order.
    pub async fn stages(&self, cycle: i64) -> Result<Vec<StageRecord>> {
        let rows = sqlx::query("SELECT * FROM stages WHERE cycle_id = $1 ORDER BY seq")
            .bind(cycle)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read stages"))?;
        rows.iter()
            .map(|r| {
                Ok(StageRecord {
                    seq: r.try_get("seq").map_err(q("read stages"))?,
                    name: r.try_get("name").map_err(q("read stages"))?,
                    component: r.try_get("component").map_err(q("read stages"))?,
                    started_at: r.try_get("started_at").map_err(q("read stages"))?,
                    finished_at: r.try_get("finished_at").map_err(q("read stages"))?,
                    result: r.try_get("result").map_err(q("read stages"))?,
                    detail: r.try_get("detail").map_err(q("read stages"))?,
                })
            })
            .collect()
    }

    /// Records (or updates) a component's part in a cycle.
    pub async fn set_cycle_component(&self, cycle: i64, c: &CycleComponent) -> Result<()> {
        sqlx::query(
            "INSERT INTO cycle_components (cycle_id, component, action, entry, artifact, build, build_log, run_log, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (cycle_id, component) DO UPDATE SET action = excluded.action, entry = excluded.entry, \
             artifact = excluded.artifact, build = excluded.build, build_log = excluded.build_log, \
             run_log = excluded.run_log, outcome = excluded.outcome",
        )
        .bind(cycle)
        .bind(&c.component)
        .bind(&c.action)
        .bind(encode(&c.entry))
        .bind(&c.artifact)
        .bind(&c.build)
        .bind(&c.build_log)
        .bind(&c.run_log)
        .bind(&c.outcome)
        .execute(&self.pool)
        .await
        .map_err(q("record cycle component"))?;
        Ok(())
    }

    /// A cycle's components, by name.
    pub async fn cycle_components(&self, cycle: i64) -> Result<Vec<CycleComponent>> {
        let rows = sqlx::query("SELECT * FROM cycle_components WHERE cycle_id = $1 ORDER BY component")
            .bind(cycle)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read cycle components"))?;
        rows.iter()
            .map(|r| {
                let entry: String = r.try_get("entry").map_err(q("read cycle components"))?;
                Ok(CycleComponent {
                    component: r.try_get("component").map_err(q("read cycle components"))?,
                    action: r.try_get("action").map_err(q("read cycle components"))?,
                    entry: decode_entry(&entry, "cycle component")?,
                    artifact: r.try_get("artifact").map_err(q("read cycle components"))?,
                    build: r.try_get("build").map_err(q("read cycle components"))?,
                    build_log: r.try_get("build_log").map_err(q("read cycle components"))?,
                    run_log: r.try_get("run_log").map_err(q("read cycle components"))?,
                    outcome: r.try_get("outcome").map_err(q("read cycle components"))?,
                })
            })
            .collect()
    }

    // -- leases ------------------------------------------------------------

    fn lease_from_row(r: &AnyRow) -> Result<Option<Lease>> {
        let holder: Option<String> = r.try_get("holder").map_err(q("read lease"))?;
        let Some(holder) = holder else { return Ok(None) };
        Ok(Some(Lease {
            environment: r.try_get("environment").map_err(q("read lease"))?,
            holder,
            reason: r.try_get("reason").map_err(q("read lease"))?,
            since: r.try_get("since").map_err(q("read lease"))?,
            expires: r.try_get("expires").map_err(q("read lease"))?,
            token: r.try_get("token").map_err(q("read lease"))?,
            process: process_of(
                r.try_get("host").map_err(q("read lease"))?,
                r.try_get("pid").map_err(q("read lease"))?,
                r.try_get("pid_start").map_err(q("read lease"))?,
            ),
        }))
    }

    /// The current lease of an environment instance, and the row's token
    /// (the value to compare-and-swap on; `None` if never leased).
    pub async fn lease(&self, environment: &str) -> Result<(Option<Lease>, Option<i64>)> {
        let row = sqlx::query("SELECT * FROM leases WHERE environment = $1")
            .bind(environment)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read lease"))?;
        match row {
            None => Ok((None, None)),
            Some(r) => {
                let token: i64 = r.try_get("token").map_err(q("read lease"))?;
                Ok((Self::lease_from_row(&r)?, Some(token)))
            }
        }
    }

    /// Every held lease.
    pub async fn leases(&self) -> Result<Vec<Lease>> {
        let rows = sqlx::query("SELECT * FROM leases WHERE holder IS NOT NULL ORDER BY environment")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list leases"))?;
        let mut out = Vec::new();
        for r in &rows {
            if let Some(l) = Self::lease_from_row(r)? {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Takes the lease if its row still has token `seen` (`None`: no row
    /// yet). Returns the new lease with a fresh, larger token, or `None` if
    /// someone else changed it first.
    pub async fn try_acquire(
        &self,
        environment: &str,
        seen: Option<i64>,
        req: &LeaseRequest<'_>,
    ) -> Result<Option<Lease>> {
        let (host, pid, start) = match req.process {
            Some(p) => (Some(p.host.clone()), Some(i64::from(p.pid)), Some(to_i64(p.start_time))),
            None => (None, None, None),
        };
        // One statement each, so the compare and the swap are atomic: under
        // PostgreSQL's READ COMMITTED a concurrent UPDATE of the row makes
        // this one wait and then re-check `token = $9` against the committed
        // row (no match: no row), and a concurrent INSERT makes this one's
        // ON CONFLICT skip. RETURNING gives exactly the row this statement
        // wrote, never a later holder's.
        let row = match seen {
            None => sqlx::query(
                "INSERT INTO leases (environment, holder, reason, since, expires, token, host, pid, pid_start) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8) ON CONFLICT (environment) DO NOTHING RETURNING *",
            )
            .bind(environment)
            .bind(req.holder)
            .bind(req.reason)
            .bind(req.since)
            .bind(req.expires)
            .bind(&host)
            .bind(pid)
            .bind(start)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("take lease"))?,
            Some(token) => sqlx::query(
                "UPDATE leases SET holder = $1, reason = $2, since = $3, expires = $4, token = token + 1, \
                 host = $5, pid = $6, pid_start = $7 WHERE environment = $8 AND token = $9 RETURNING *",
            )
            .bind(req.holder)
            .bind(req.reason)
            .bind(req.since)
            .bind(req.expires)
            .bind(&host)
            .bind(pid)
            .bind(start)
            .bind(environment)
            .bind(token)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("take lease"))?,
        };
        match row {
            Some(r) => Self::lease_from_row(&r),
            None => Ok(None),
        }
    }

    /// Changes expiry and process binding of the lease with `token`;
    /// false if the lease is no longer that one.
    pub async fn update_lease(
        &self,
        environment: &str,
        token: i64,
        expires: Millis,
        process: Option<&HolderProcess>,
    ) -> Result<bool> {
        let (host, pid, start) = match process {
            Some(p) => (Some(p.host.clone()), Some(i64::from(p.pid)), Some(to_i64(p.start_time))),
            None => (None, None, None),
        };
        let r = sqlx::query(
            "UPDATE leases SET expires = $1, host = $2, pid = $3, pid_start = $4 \
             WHERE environment = $5 AND token = $6 AND holder IS NOT NULL",
        )
        .bind(expires)
        .bind(host)
        .bind(pid)
        .bind(start)
        .bind(environment)
        .bind(token)
        .execute(&self.pool)
        .await
        .map_err(q("update lease"))?;
        Ok(r.rows_affected() == 1)
    }

    /// Frees the lease with `token`; false if it is no longer that one.
    pub async fn release(&self, environment: &str, token: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE leases SET holder = NULL, host = NULL, pid = NULL, pid_start = NULL \
             WHERE environment = $1 AND token = $2 AND holder IS NOT NULL",
        )
        .bind(environment)
        .bind(token)
        .execute(&self.pool)
        .await
        .map_err(q("release lease"))?;
        Ok(r.rows_affected() == 1)
    }

    /// Whether `token` is still the live lease of `environment` (the fence
    /// every stage checks before acting).
    pub async fn holds(&self, environment: &str, token: i64) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM leases WHERE environment = $1 AND token = $2 AND holder IS NOT NULL")
            .bind(environment)
            .bind(token)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("check lease"))?;
        Ok(row.is_some())
    }

    // -- queue ---------------------------------------------------------------

    /// Joins the FIFO for `key`; returns the ticket.
    pub async fn enqueue(
        &self,
        key: &str,
        holder: &str,
        reason: &str,
        process: &HolderProcess,
        now: Millis,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO lease_queue (queue_key, holder, reason, enqueued_at, host, pid, pid_start) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ticket",
        )
        .bind(key)
        .bind(holder)
        .bind(reason)
        .bind(now)
        .bind(&process.host)
        .bind(i64::from(process.pid))
        .bind(to_i64(process.start_time))
        .fetch_one(&self.pool)
        .await
        .map_err(q("join queue"))?;
        row.try_get(0).map_err(q("join queue"))
    }

    /// The queue for `key`, oldest first (`None`: every queue).
    pub async fn queue(&self, key: Option<&str>) -> Result<Vec<QueueEntry>> {
        let rows = match key {
            Some(k) => sqlx::query("SELECT * FROM lease_queue WHERE queue_key = $1 ORDER BY ticket").bind(k),
            None => sqlx::query("SELECT * FROM lease_queue ORDER BY ticket"),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(q("read queue"))?;
        let mut out = Vec::new();
        for r in &rows {
            let queue_key: String = r.try_get("queue_key").map_err(q("read queue"))?;
            out.push(QueueEntry {
                ticket: r.try_get("ticket").map_err(q("read queue"))?,
                queue_key,
                holder: r.try_get("holder").map_err(q("read queue"))?,
                reason: r.try_get("reason").map_err(q("read queue"))?,
                enqueued_at: r.try_get("enqueued_at").map_err(q("read queue"))?,
                process: process_of(
                    r.try_get("host").map_err(q("read queue"))?,
                    r.try_get("pid").map_err(q("read queue"))?,
                    r.try_get("pid_start").map_err(q("read queue"))?,
                )
                .ok_or(StoreError::Corrupt {
                    context: "queue",
                    detail: "missing process".into(),
                })?,
            });
        }
        Ok(out)
    }

    /// Leaves the queue.
    pub async fn dequeue(&self, ticket: i64) -> Result<()> {
        sqlx::query("DELETE FROM lease_queue WHERE ticket = $1")
            .bind(ticket)
            .execute(&self.pool)
            .await
            .map_err(q("leave queue"))?;
        Ok(())
    }

    // -- what runs -------------------------------------------------------------

    /// What runs in an environment instance, by component name.
    pub async fn deployed(&self, environment: &str) -> Result<Vec<Deployed>> {
        let rows = sqlx::query("SELECT * FROM deployed WHERE environment = $1 ORDER BY component")
            .bind(environment)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read deployed"))?;
        rows.iter()
            .map(|r| {
                let entry: String = r.try_get("entry").map_err(q("read deployed"))?;
                Ok(Deployed {
                    environment: r.try_get("environment").map_err(q("read deployed"))?,
                    component: r.try_get("component").map_err(q("read deployed"))?,
                    cycle_id: r.try_get("cycle_id").map_err(q("read deployed"))?,
                    entry: decode_entry(&entry, "deployed")?,
                    artifact: r.try_get("artifact").map_err(q("read deployed"))?,
                    state: r.try_get("state").map_err(q("read deployed"))?,
                    pid: r
                        .try_get::<Option<i64>, _>("pid")
                        .map_err(q("read deployed"))?
                        .and_then(|p| i32::try_from(p).ok()),
                    pid_start: r
                        .try_get::<Option<i64>, _>("pid_start")
                        .map_err(q("read deployed"))?
                        .and_then(|p| u64::try_from(p).ok()),
                    log_path: r.try_get("log_path").map_err(q("read deployed"))?,
                    status_path: r.try_get("status_path").map_err(q("read deployed"))?,
                    port: r
                        .try_get::<Option<i64>, _>("port")
                        .map_err(q("read deployed"))?
                        .and_then(|p| u16::try_from(p).ok()),
                    url: r.try_get("url").map_err(q("read deployed"))?,
                    updated_at: r.try_get("updated_at").map_err(q("read deployed"))?,
                })
            })
            .collect()
    }

    /// The places with a record of what runs whose name starts with
    /// `prefix` (a fleet's targets: `INSTANCE#`), in name order.
    pub async fn deployed_places(&self, prefix: &str) -> Result<Vec<String>> {
        // `substr`, not LIKE: names may hold `_`, a LIKE wildcard.
        let rows = sqlx::query(
            "SELECT DISTINCT environment FROM deployed WHERE substr(environment, 1, length($1)) = $1 ORDER BY environment",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read deployed places"))?;
        rows.iter()
            .map(|r| r.try_get("environment").map_err(q("read deployed places")))
            .collect()
    }

    /// Records what runs for one component (replacing the previous record).
    pub async fn set_deployed(&self, d: &Deployed) -> Result<()> {
        sqlx::query(
            "INSERT INTO deployed (environment, component, cycle_id, entry, artifact, state, pid, pid_start, log_path, status_path, port, url, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (environment, component) DO UPDATE SET cycle_id = excluded.cycle_id, entry = excluded.entry, \
             artifact = excluded.artifact, state = excluded.state, pid = excluded.pid, pid_start = excluded.pid_start, \
             log_path = excluded.log_path, status_path = excluded.status_path, port = excluded.port, url = excluded.url, \
             updated_at = excluded.updated_at",
        )
        .bind(&d.environment)
        .bind(&d.component)
        .bind(d.cycle_id)
        .bind(encode(&d.entry))
        .bind(&d.artifact)
        .bind(&d.state)
        .bind(d.pid.map(i64::from))
        .bind(d.pid_start.map(to_i64))
        .bind(&d.log_path)
        .bind(&d.status_path)
        .bind(d.port.map(i64::from))
        .bind(&d.url)
        .bind(d.updated_at)
        .execute(&self.pool)
        .await
        .map_err(q("record deployed"))?;
        Ok(())
    }

    /// Records the manifest an environment instance runs as a whole
    /// (`None`: mixed, after a failed cycle).
    pub async fn set_environment_manifest(
        &self,
        environment: &str,
        manifest: Option<&str>,
        cycle: i64,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO environment_state (environment, manifest_id, cycle_id, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (environment) DO UPDATE SET manifest_id = excluded.manifest_id, cycle_id = excluded.cycle_id, updated_at = excluded.updated_at",
        )
        .bind(environment)
        .bind(manifest)
        .bind(cycle)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("record environment manifest"))?;
        Ok(())
    }

    /// The manifest an environment instance runs as a whole, and the cycle
    /// that last changed it.
    pub async fn environment_manifest(&self, environment: &str) -> Result<Option<(Option<String>, i64)>> {
        let row = sqlx::query("SELECT manifest_id, cycle_id FROM environment_state WHERE environment = $1")
            .bind(environment)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read environment manifest"))?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((
                r.try_get("manifest_id").map_err(q("read environment manifest"))?,
                r.try_get("cycle_id").map_err(q("read environment manifest"))?,
            ))),
        }
    }

    // -- ports -------------------------------------------------------------------

    /// The port allocated to a component in an environment instance.
    pub async fn port(&self, environment: &str, component: &str) -> Result<Option<u16>> {
        let row = sqlx::query("SELECT port FROM ports WHERE environment = $1 AND component = $2")
            .bind(environment)
            .bind(component)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read port"))?;
        Ok(match row {
            Some(r) => u16::try_from(r.try_get::<i64, _>("port").map_err(q("read port"))?).ok(),
            None => None,
        })
    }

    /// Every allocated port.
    pub async fn ports_in_use(&self) -> Result<Vec<u16>> {
        let rows = sqlx::query("SELECT port FROM ports ORDER BY port")
            .fetch_all(&self.pool)
            .await
            .map_err(q("read ports"))?;
        rows.iter()
            .map(|r| Ok(u16::try_from(r.try_get::<i64, _>("port").map_err(q("read ports"))?).unwrap_or(0)))
            .collect()
    }

    /// Forgets a place (a fleet target that left, its components stopped):
    /// its records of what ran and its ports, which are free again.
    pub async fn forget_place(&self, environment: &str) -> Result<()> {
        for sql in [
            "DELETE FROM deployed WHERE environment = $1",
            "DELETE FROM ports WHERE environment = $1",
        ] {
            sqlx::query(sql)
                .bind(environment)
                .execute(&self.pool)
                .await
                .map_err(q("forget a place"))?;
        }
        Ok(())
    }

    /// Records a port for a component (replacing its previous one); false if
    /// another component already has that port.
    pub async fn set_port(&self, environment: &str, component: &str, port: u16) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO ports (environment, component, port) VALUES ($1, $2, $3) \
             ON CONFLICT (environment, component) DO UPDATE SET port = excluded.port",
        )
        .bind(environment)
        .bind(component)
        .bind(i64::from(port))
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(StoreError::Query {
                context: "record port",
                cause: e,
            }),
        }
    }
}

/// A stored webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// Row id.
    pub id: i64,
    /// `github`, `gitlab`, `package`.
    pub source: String,
    /// The sender's delivery id (`X-GitHub-Delivery`, …).
    pub delivery_id: String,
    /// Event name.
    pub event: String,
    /// Action, when the event has one.
    pub action: Option<String>,
    /// Repository (`owner/name`), when known.
    pub repo: Option<String>,
    /// Raw body.
    #[serde(skip)]
    pub body: String,
    /// When it was received.
    pub received_at: Millis,
    /// `accepted` (not processed yet), `trigger`, `recorded`, `ignored`, `failed`.
    pub outcome: String,
    /// What was done with it.
    pub detail: Option<String>,
    /// When it was processed.
    pub processed_at: Option<Millis>,
}

/// A delivery about to be stored.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// `github`, `gitlab`, `package`.
    pub source: &'a str,
    /// The sender's delivery id.
    pub delivery_id: &'a str,
    /// Event name.
    pub event: &'a str,
    /// Action.
    pub action: Option<&'a str>,
    /// Repository.
    pub repo: Option<&'a str>,
    /// Raw body.
    pub body: &'a str,
    /// When received.
    pub received_at: Millis,
}

/// Whether a delivery was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// First time: stored with this row id.
    New(i64),
    /// Seen before (same source and delivery id): the existing row id.
    Duplicate(i64),
}

/// A scheduling decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    /// Row id.
    pub id: i64,
    /// Environment instance.
    pub environment: String,
    /// When.
    pub at: Millis,
    /// Kind (`partial`, `full`, `deferred`, `restart`, `waiting`, …).
    pub kind: String,
    /// Why, for people.
    pub reason: String,
    /// Trigger ids it concerns (JSON array).
    pub triggers: String,
    /// Cycle it started, if any.
    pub cycle_id: Option<i64>,
}

impl Store {
    /// Stores a delivery unless the same (source, delivery id) is stored;
    /// returns only after the row is committed.
    pub async fn insert_delivery(&self, d: &NewDelivery<'_>) -> Result<Stored> {
        let row = sqlx::query(
            "INSERT INTO deliveries (source, delivery_id, event, action, repo, body, received_at, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'accepted') ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id",
        )
        .bind(d.source)
        .bind(d.delivery_id)
        .bind(d.event)
        .bind(d.action)
        .bind(d.repo)
        .bind(d.body)
        .bind(d.received_at)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("store delivery"))?;
        if let Some(r) = row {
            return Ok(Stored::New(r.try_get(0).map_err(q("store delivery"))?));
        }
        let r = sqlx::query("SELECT id FROM deliveries WHERE source = $1 AND delivery_id = $2")
            .bind(d.source)
            .bind(d.delivery_id)
            .fetch_one(&self.pool)
            .await
            .map_err(q("find delivery"))?;
        Ok(Stored::Duplicate(r.try_get(0).map_err(q("find delivery"))?))
    }

    /// Records what was done with a delivery.
    pub async fn finish_delivery(&self, id: i64, outcome: &str, detail: Option<&str>, now: Millis) -> Result<()> {
        sqlx::query("UPDATE deliveries SET outcome = $1, detail = $2, processed_at = $3 WHERE id = $4")
            .bind(outcome)
            .bind(detail)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(q("finish delivery"))?;
        Ok(())
    }

    /// Records what was made of several deliveries in one transaction (the
    /// scheduler's page of work: one write lock instead of one per delivery,
    /// so webhook intake is not kept waiting behind it).
    pub async fn finish_deliveries(&self, done: &[(i64, &str, String)], now: Millis) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(q("finish deliveries"))?;
        for (id, outcome, detail) in done {
            sqlx::query("UPDATE deliveries SET outcome = $1, detail = $2, processed_at = $3 WHERE id = $4")
                .bind(*outcome)
                .bind(detail.as_str())
                .bind(now)
                .bind(*id)
                .execute(&mut *tx)
                .await
                .map_err(q("finish delivery"))?;
        }
        tx.commit().await.map_err(q("finish deliveries"))?;
        Ok(())
    }

    fn delivery_from_row(r: &AnyRow) -> Result<DeliveryRecord> {
        let g = || q("read delivery");
        Ok(DeliveryRecord {
            id: r.try_get("id").map_err(g())?,
            source: r.try_get("source").map_err(g())?,
            delivery_id: r.try_get("delivery_id").map_err(g())?,
            event: r.try_get("event").map_err(g())?,
            action: r.try_get("action").map_err(g())?,
            repo: r.try_get("repo").map_err(g())?,
            body: r.try_get("body").map_err(g())?,
            received_at: r.try_get("received_at").map_err(g())?,
            outcome: r.try_get("outcome").map_err(g())?,
            detail: r.try_get("detail").map_err(g())?,
            processed_at: r.try_get("processed_at").map_err(g())?,
        })
    }

    /// Deliveries stored but not processed yet, oldest first, with row id
    /// greater than `after`, at most `limit` of them (bodies included, so
    /// callers page through a backlog instead of loading it whole): after a
    /// restart these are processed before anything new.
    pub async fn unprocessed_deliveries(&self, after: i64, limit: i64) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query("SELECT * FROM deliveries WHERE outcome = 'accepted' AND id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list deliveries"))?;
        rows.iter().map(Self::delivery_from_row).collect()
    }

    /// The newest deliveries.
    pub async fn deliveries(&self, limit: i64) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query("SELECT * FROM deliveries ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list deliveries"))?;
        rows.iter().map(Self::delivery_from_row).collect()
    }

    /// Records a scheduling decision.
    pub async fn record_decision(
        &self,
        environment: &str,
        at: Millis,
        kind: &str,
        reason: &str,
        triggers: &[u64],
        cycle: Option<i64>,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO decisions (environment, at, kind, reason, triggers, cycle_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(environment)
        .bind(at)
        .bind(kind)
        .bind(reason)
        .bind(encode(&triggers))
        .bind(cycle)
        .fetch_one(&self.pool)
        .await
        .map_err(q("record decision"))?;
        row.try_get(0).map_err(q("record decision"))
    }

    /// The newest decisions, optionally for one environment instance.
    pub async fn decisions(&self, environment: Option<&str>, limit: i64) -> Result<Vec<DecisionRecord>> {
        let rows = match environment {
            Some(e) => {
                sqlx::query("SELECT * FROM decisions WHERE environment = $1 ORDER BY id DESC LIMIT $2")
                    .bind(e)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT * FROM decisions ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(q("list decisions"))?;
        rows.iter()
            .map(|r| {
                let g = || q("read decision");
                Ok(DecisionRecord {
                    id: r.try_get("id").map_err(g())?,
                    environment: r.try_get("environment").map_err(g())?,
                    at: r.try_get("at").map_err(g())?,
                    kind: r.try_get("kind").map_err(g())?,
                    reason: r.try_get("reason").map_err(g())?,
                    triggers: r.try_get("triggers").map_err(g())?,
                    cycle_id: r.try_get("cycle_id").map_err(g())?,
                })
            })
            .collect()
    }

    /// Saves an environment's policy state (JSON).
    pub async fn save_policy_state(&self, environment: &str, state: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO policy_states (environment, state, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (environment) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(environment)
        .bind(state)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("save policy state"))?;
        Ok(())
    }

    /// An environment's saved policy state (JSON).
    pub async fn policy_state(&self, environment: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT state FROM policy_states WHERE environment = $1")
            .bind(environment)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read policy state"))?;
        row.map(|r| r.try_get(0).map_err(q("read policy state"))).transpose()
    }
}

/// A manifest rolled back on an environment as faulty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultyRecord {
    /// Manifest id.
    pub manifest: String,
    /// Environment instance it was rolled back on.
    pub environment: String,
    /// Who rolled it back.
    pub marked_by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub marked_at: Millis,
}

/// One action that changed an environment (issue #5 point 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// When.
    pub at: Millis,
    /// Who: a person's or a process's name.
    pub actor: String,
    /// Through what: `cli`, `api`, `chat`, `comment`, `schedule`.
    pub surface: String,
    /// `deploy`, `rollback`, `pause`, `resume`, `lease`, `release`, `cancel`, `override`, `approve`.
    pub action: String,
    /// The environment instance.
    pub environment: String,
    /// What exactly (the request, the manifest).
    pub detail: String,
    /// Why, as given.
    pub reason: String,
    /// The cycle it started, if any.
    pub cycle_id: Option<i64>,
}

/// Faulty manifests and the audit trail.
impl Store {
    /// Marks `manifest` as faulty on `environment` (the last mark wins).
    pub async fn mark_faulty(&self, f: &FaultyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO faulty_manifests (manifest, environment, marked_by, reason, marked_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (manifest, environment) DO UPDATE SET marked_by = excluded.marked_by, reason = excluded.reason, marked_at = excluded.marked_at",
        )
        .bind(&f.manifest)
        .bind(&f.environment)
        .bind(&f.marked_by)
        .bind(&f.reason)
        .bind(f.marked_at)
        .execute(&self.pool)
        .await
        .map_err(q("mark a manifest faulty"))?;
        Ok(())
    }

    /// Whether `manifest` was rolled back as faulty on `environment`.
    pub async fn faulty(&self, manifest: &str, environment: &str) -> Result<Option<FaultyRecord>> {
        let row = sqlx::query("SELECT * FROM faulty_manifests WHERE manifest = $1 AND environment = $2")
            .bind(manifest)
            .bind(environment)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read faulty manifests"))?;
        row.map(|r| {
            let g = || q("read faulty manifests");
            Ok(FaultyRecord {
                manifest: r.try_get("manifest").map_err(g())?,
                environment: r.try_get("environment").map_err(g())?,
                marked_by: r.try_get("marked_by").map_err(g())?,
                reason: r.try_get("reason").map_err(g())?,
                marked_at: r.try_get("marked_at").map_err(g())?,
            })
        })
        .transpose()
    }

    /// Records an action; returns its id.
    pub async fn record_audit(&self, a: &AuditRecord) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO audit (at, actor, surface, action, environment, detail, reason, cycle_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(a.at)
        .bind(&a.actor)
        .bind(&a.surface)
        .bind(&a.action)
        .bind(&a.environment)
        .bind(&a.detail)
        .bind(&a.reason)
        .bind(a.cycle_id)
        .fetch_one(&self.pool)
        .await
        .map_err(q("record an audit entry"))?;
        row.try_get(0).map_err(q("record an audit entry"))
    }

    /// The newest actions, optionally on some environment instances only.
    pub async fn audit(&self, environments: Option<&[String]>, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = match environments {
            Some(envs) if !envs.is_empty() => {
                let marks: Vec<String> = (1..=envs.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT * FROM audit WHERE environment IN ({}) ORDER BY id DESC LIMIT ${}",
                    marks.join(", "),
                    envs.len() + 1
                );
                // Only placeholders are formatted in; the names are bound.
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for e in envs {
                    query = query.bind(e);
                }
                query.bind(limit).fetch_all(&self.pool).await
            }
            _ => {
                sqlx::query("SELECT * FROM audit ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(q("list the audit trail"))?;
        rows.iter()
            .map(|r| {
                let g = || q("read an audit entry");
                Ok(AuditRecord {
                    id: r.try_get("id").map_err(g())?,
                    at: r.try_get("at").map_err(g())?,
                    actor: r.try_get("actor").map_err(g())?,
                    surface: r.try_get("surface").map_err(g())?,
                    action: r.try_get("action").map_err(g())?,
                    environment: r.try_get("environment").map_err(g())?,
                    detail: r.try_get("detail").map_err(g())?,
                    reason: r.try_get("reason").map_err(g())?,
                    cycle_id: r.try_get("cycle_id").map_err(g())?,
                })
            })
            .collect()
    }
}

/// A person's approval of a stage of a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRecord {
    /// The cycle.
    pub cycle_id: i64,
    /// The stage's name.
    pub stage: String,
    /// Who approved it.
    pub approved_by: String,
    /// Why, as given.
    pub reason: String,
    /// When.
    pub approved_at: Millis,
}

/// Approvals of pipeline stages.
impl Store {
    /// Approves a stage of a cycle; false when it was approved already (the
    /// first approval stands).
    pub async fn approve(&self, a: &ApprovalRecord) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO approvals (cycle_id, stage, approved_by, reason, approved_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (cycle_id, stage) DO NOTHING",
        )
        .bind(a.cycle_id)
        .bind(&a.stage)
        .bind(&a.approved_by)
        .bind(&a.reason)
        .bind(a.approved_at)
        .execute(&self.pool)
        .await
        .map_err(q("approve a stage"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The approval of a stage of a cycle, if given.
    pub async fn approval(&self, cycle: i64, stage: &str) -> Result<Option<ApprovalRecord>> {
        let row = sqlx::query("SELECT * FROM approvals WHERE cycle_id = $1 AND stage = $2")
            .bind(cycle)
            .bind(stage)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read an approval"))?;
        row.map(|r| {
            let g = || q("read an approval");
            Ok(ApprovalRecord {
                cycle_id: r.try_get("cycle_id").map_err(g())?,
                stage: r.try_get("stage").map_err(g())?,
                approved_by: r.try_get("approved_by").map_err(g())?,
                reason: r.try_get("reason").map_err(g())?,
                approved_at: r.try_get("approved_at").map_err(g())?,
            })
        })
        .transpose()
    }
}

/// An admin's override of an environment's deploy blockers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OverrideRecord {
    /// The environment instance.
    pub environment: String,
    /// Who granted it.
    pub granted_by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub granted_at: Millis,
    /// Until when it holds.
    pub until: Millis,
}

/// Overrides of deploy blockers.
impl Store {
    /// Grants (or replaces) an environment's override.
    pub async fn set_override(&self, o: &OverrideRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO blocker_overrides (environment, granted_by, reason, granted_at, until_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (environment) DO UPDATE SET granted_by = excluded.granted_by, reason = excluded.reason, \
             granted_at = excluded.granted_at, until_at = excluded.until_at",
        )
        .bind(&o.environment)
        .bind(&o.granted_by)
        .bind(&o.reason)
        .bind(o.granted_at)
        .bind(o.until)
        .execute(&self.pool)
        .await
        .map_err(q("grant an override"))?;
        Ok(())
    }

    /// The override of an environment that still holds at `now`, if any.
    pub async fn active_override(&self, environment: &str, now: Millis) -> Result<Option<OverrideRecord>> {
        let row = sqlx::query("SELECT * FROM blocker_overrides WHERE environment = $1 AND until_at > $2")
            .bind(environment)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read an override"))?;
        row.map(|r| {
            let g = || q("read an override");
            Ok(OverrideRecord {
                environment: r.try_get("environment").map_err(g())?,
                granted_by: r.try_get("granted_by").map_err(g())?,
                reason: r.try_get("reason").map_err(g())?,
                granted_at: r.try_get("granted_at").map_err(g())?,
                until: r.try_get("until_at").map_err(g())?,
            })
        })
        .transpose()
    }
}

/// An ephemeral environment: a profile's slot under a name, for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EphemeralRecord {
    /// The name people use (`review-42`, `pr-ogr-12`).
    pub name: String,
    /// The profile (a pool with `[environment.profile]`).
    pub profile: String,
    /// The slot it occupies (`1k-2`).
    pub slot: String,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub reason: String,
    /// The PR it previews (`owner/repo#12`), if it is a preview.
    pub pr: Option<String>,
    /// When it was made.
    pub created_at: Millis,
    /// When it is torn down.
    pub expires_at: Millis,
}

/// Ephemeral environments.
impl Store {
    /// Records a new ephemeral environment; false when the name or the slot
    /// is taken (nothing is written then).
    pub async fn create_ephemeral(&self, e: &EphemeralRecord) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO ephemeral_environments (name, profile, slot, created_by, reason, pr, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&e.name)
        .bind(&e.profile)
        .bind(&e.slot)
        .bind(&e.created_by)
        .bind(&e.reason)
        .bind(&e.pr)
        .bind(e.created_at)
        .bind(e.expires_at)
        .execute(&self.pool)
        .await
        .map_err(q("create an ephemeral environment"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Every ephemeral environment, by name.
    pub async fn ephemerals(&self) -> Result<Vec<EphemeralRecord>> {
        let rows = sqlx::query("SELECT * FROM ephemeral_environments ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list ephemeral environments"))?;
        rows.iter()
            .map(|r| {
                let g = || q("read an ephemeral environment");
                Ok(EphemeralRecord {
                    name: r.try_get("name").map_err(g())?,
                    profile: r.try_get("profile").map_err(g())?,
                    slot: r.try_get("slot").map_err(g())?,
                    created_by: r.try_get("created_by").map_err(g())?,
                    reason: r.try_get("reason").map_err(g())?,
                    pr: r.try_get("pr").map_err(g())?,
                    created_at: r.try_get("created_at").map_err(g())?,
                    expires_at: r.try_get("expires_at").map_err(g())?,
                })
            })
            .collect()
    }

    /// Moves an ephemeral environment's end (activity renews it).
    pub async fn renew_ephemeral(&self, name: &str, expires_at: Millis) -> Result<bool> {
        let done = sqlx::query("UPDATE ephemeral_environments SET expires_at = $1 WHERE name = $2")
            .bind(expires_at)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(q("renew an ephemeral environment"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets an ephemeral environment (its slot is free again).
    pub async fn delete_ephemeral(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM ephemeral_environments WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(q("delete an ephemeral environment"))?;
        Ok(done.rows_affected() == 1)
    }
}

/// Aggregates for `/metrics`, computed from what is stored (so they survive
/// restarts and agree between replicas).
impl Store {
    /// Number of cycles by (environment, kind, result).
    pub async fn cycle_counts(&self) -> Result<Vec<(String, String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT environment, kind, result, COUNT(*) AS n FROM cycles GROUP BY environment, kind, result ORDER BY environment, kind, result",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("count cycles"))?;
        rows.iter()
            .map(|r| {
                let g = || q("count cycles");
                Ok((
                    r.try_get("environment").map_err(g())?,
                    r.try_get("kind").map_err(g())?,
                    r.try_get("result").map_err(g())?,
                    r.try_get("n").map_err(g())?,
                ))
            })
            .collect()
    }

    /// Number of deliveries by (source, event, outcome).
    pub async fn delivery_counts(&self) -> Result<Vec<(String, String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT source, event, outcome, COUNT(*) AS n FROM deliveries GROUP BY source, event, outcome ORDER BY source, event, outcome",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("count deliveries"))?;
        rows.iter()
            .map(|r| {
                let g = || q("count deliveries");
                Ok((
                    r.try_get("source").map_err(g())?,
                    r.try_get("event").map_err(g())?,
                    r.try_get("outcome").map_err(g())?,
                    r.try_get("n").map_err(g())?,
                ))
            })
            .collect()
    }

    /// Durations (ms) of the most recent `limit` stages, with their cycle's
    /// environment and the stage name.
    pub async fn stage_durations(&self, limit: i64) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT c.environment AS environment, s.name AS name, s.finished_at - s.started_at AS ms \
             FROM stages s JOIN cycles c ON c.id = s.cycle_id ORDER BY s.cycle_id DESC, s.seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read stage durations"))?;
        rows.iter()
            .map(|r| {
                let g = || q("read stage durations");
                Ok((
                    r.try_get("environment").map_err(g())?,
                    r.try_get("name").map_err(g())?,
                    r.try_get("ms").map_err(g())?,
                ))
            })
            .collect()
    }
}

/// Whether an environment is paused, by whom, why and since when (the last
/// pause or resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PauseRecord {
    /// Environment.
    pub environment: String,
    /// Paused (true) or resumed (false).
    pub paused: bool,
    /// Who paused or resumed it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub since: Millis,
}

impl Store {
    /// Records a pause (`paused`) or a resume of an environment.
    pub async fn set_pause(&self, environment: &str, paused: bool, by: &str, reason: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO pauses (environment, paused, by_whom, reason, since) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (environment) DO UPDATE SET paused = excluded.paused, by_whom = excluded.by_whom, \
             reason = excluded.reason, since = excluded.since",
        )
        .bind(environment)
        .bind(i64::from(paused))
        .bind(by)
        .bind(reason)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("record pause"))?;
        Ok(())
    }

    /// The last pause or resume of an environment.
    pub async fn pause(&self, environment: &str) -> Result<Option<PauseRecord>> {
        let row = sqlx::query("SELECT * FROM pauses WHERE environment = $1")
            .bind(environment)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read pause"))?;
        row.map(|r| {
            let g = || q("read pause");
            Ok(PauseRecord {
                environment: r.try_get("environment").map_err(g())?,
                paused: r.try_get::<i64, _>("paused").map_err(g())? != 0,
                by: r.try_get("by_whom").map_err(g())?,
                reason: r.try_get("reason").map_err(g())?,
                since: r.try_get("since").map_err(g())?,
            })
        })
        .transpose()
    }
}

/// What greenroom records about one pull request: approval and exclusion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PrState {
    /// Forge id of the repository (`owner/name`), lowercase.
    pub repo: String,
    /// Number.
    pub number: u64,
    /// The maintainer who approved it for staging.
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<Millis>,
    /// Who excluded it as faulty (a person, or `culprit search`).
    pub excluded_by: Option<String>,
    /// Why.
    pub excluded_reason: Option<String>,
    /// When.
    pub excluded_at: Option<Millis>,
}

/// A comment command greenroom answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandRecord {
    /// Row id.
    pub id: i64,
    /// Repository (forge id, lowercase).
    pub repo: String,
    /// PR number.
    pub number: u64,
    /// The comment it came from (0 for a label).
    pub comment_id: u64,
    /// Who wrote it.
    pub author: String,
    /// The command as understood (`deploy env=staging`, or the unknown word).
    pub command: String,
    /// `done`, `refused`, `unknown`, `invalid`, `failed`.
    pub outcome: String,
    /// What greenroom did or answered.
    pub detail: String,
    /// When.
    pub at: Millis,
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    fn pr_state_of(r: &AnyRow) -> Result<PrState> {
        let g = || q("read pull request state");
        Ok(PrState {
            repo: r.try_get("repo").map_err(g())?,
            number: u64_of(r.try_get("number").map_err(g())?),
            approved_by: r.try_get("approved_by").map_err(g())?,
            approved_at: r.try_get("approved_at").map_err(g())?,
            excluded_by: r.try_get("excluded_by").map_err(g())?,
            excluded_reason: r.try_get("excluded_reason").map_err(g())?,
            excluded_at: r.try_get("excluded_at").map_err(g())?,
        })
    }

    /// Records that `by` approved a pull request for staging.
    pub async fn approve_pr(&self, repo: &str, number: u64, by: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO pr_states (repo, number, approved_by, approved_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, number) DO UPDATE SET approved_by = excluded.approved_by, approved_at = excluded.approved_at",
        )
        .bind(repo.to_ascii_lowercase())
        .bind(to_i64(number))
        .bind(by)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("approve pull request"))?;
        Ok(())
    }

    /// Excludes a pull request from staging (`reason` is shown to its author),
    /// or, with `reason = None`, includes it again.
    pub async fn exclude_pr(
        &self,
        repo: &str,
        number: u64,
        exclusion: Option<(&str, &str)>,
        now: Millis,
    ) -> Result<()> {
        let (by, reason, at) = match exclusion {
            Some((by, reason)) => (Some(by), Some(reason), Some(now)),
            None => (None, None, None),
        };
        sqlx::query(
            "INSERT INTO pr_states (repo, number, excluded_by, excluded_reason, excluded_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, number) DO UPDATE SET excluded_by = excluded.excluded_by, \
             excluded_reason = excluded.excluded_reason, excluded_at = excluded.excluded_at",
        )
        .bind(repo.to_ascii_lowercase())
        .bind(to_i64(number))
        .bind(by)
        .bind(reason)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(q("exclude pull request"))?;
        Ok(())
    }

    /// One pull request's state, if greenroom recorded any.
    pub async fn pr_state(&self, repo: &str, number: u64) -> Result<Option<PrState>> {
        let row = sqlx::query("SELECT * FROM pr_states WHERE repo = $1 AND number = $2")
            .bind(repo.to_ascii_lowercase())
            .bind(to_i64(number))
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read pull request state"))?;
        row.as_ref().map(Self::pr_state_of).transpose()
    }

    /// Every pull request greenroom approved or excluded.
    pub async fn pr_states(&self) -> Result<Vec<PrState>> {
        let rows = sqlx::query(
            "SELECT * FROM pr_states WHERE approved_by IS NOT NULL OR excluded_by IS NOT NULL ORDER BY repo, number",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("list pull request states"))?;
        rows.iter().map(Self::pr_state_of).collect()
    }

    /// Records a comment command and what greenroom did with it.
    pub async fn record_command(&self, c: &CommandRecord) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO pr_commands (repo, number, comment_id, author, command, outcome, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(c.repo.to_ascii_lowercase())
        .bind(to_i64(c.number))
        .bind(to_i64(c.comment_id))
        .bind(&c.author)
        .bind(&c.command)
        .bind(&c.outcome)
        .bind(&c.detail)
        .bind(c.at)
        .fetch_one(&self.pool)
        .await
        .map_err(q("record command"))?;
        row.try_get(0).map_err(q("record command"))
    }

    /// The commands answered on a pull request, oldest first.
    pub async fn pr_commands(&self, repo: &str, number: u64, limit: i64) -> Result<Vec<CommandRecord>> {
        let rows = sqlx::query("SELECT * FROM pr_commands WHERE repo = $1 AND number = $2 ORDER BY id LIMIT $3")
            .bind(repo.to_ascii_lowercase())
            .bind(to_i64(number))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list commands"))?;
        rows.iter()
            .map(|r| {
                let g = || q("read command");
                Ok(CommandRecord {
                    id: r.try_get("id").map_err(g())?,
                    repo: r.try_get("repo").map_err(g())?,
                    number: u64_of(r.try_get("number").map_err(g())?),
                    comment_id: u64_of(r.try_get("comment_id").map_err(g())?),
                    author: r.try_get("author").map_err(g())?,
                    command: r.try_get("command").map_err(g())?,
                    outcome: r.try_get("outcome").map_err(g())?,
                    detail: r.try_get("detail").map_err(g())?,
                    at: r.try_get("at").map_err(g())?,
                })
            })
            .collect()
    }

    /// The last body seen of a comment, and replaces it with `body`.
    pub async fn swap_comment_body(
        &self,
        source: &str,
        comment_id: u64,
        body: &str,
        now: Millis,
    ) -> Result<Option<String>> {
        // Two statements, no transaction: in SQLite a transaction that reads
        // and then writes fails at once when another writer went first; and
        // one comment's edits arrive one at a time.
        let old: Option<String> = sqlx::query("SELECT body FROM comment_bodies WHERE source = $1 AND comment_id = $2")
            .bind(source)
            .bind(to_i64(comment_id))
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read comment body"))?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(q("read comment body"))?;
        sqlx::query(
            "INSERT INTO comment_bodies (source, comment_id, body, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (source, comment_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(source)
        .bind(to_i64(comment_id))
        .bind(body)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("write comment body"))?;
        Ok(old)
    }
}

/// The staging part of PRs' sticky comments (issue #5 point 3).
impl Store {
    /// Records the staging part of a PR's sticky comment as last written.
    pub async fn set_sticky(&self, repo: &str, number: u64, body: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO pr_stickies (repo, number, body, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, number) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(repo.to_ascii_lowercase())
        .bind(to_i64(number))
        .bind(body)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("write sticky comment"))?;
        Ok(())
    }

    /// The staging part of a PR's sticky comment as last written, if any.
    pub async fn sticky(&self, repo: &str, number: u64) -> Result<Option<String>> {
        sqlx::query("SELECT body FROM pr_stickies WHERE repo = $1 AND number = $2")
            .bind(repo.to_ascii_lowercase())
            .bind(to_i64(number))
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read sticky comment"))?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(q("read sticky comment"))
    }
}

/// A dashboard sign-in (issue #7), as stored: digests only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session id (the cookie's value), hex.
    pub id: String,
    /// The `[[user]]`.
    pub user: String,
    /// SHA-256 of the API token signed in with, hex.
    pub token_digest: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// When it began.
    pub created_at: Millis,
    /// When it ends.
    pub expires_at: Millis,
}

/// Dashboard sessions.
impl Store {
    /// Records a session; expired ones are removed, and beyond `keep` the
    /// oldest go.
    pub async fn put_session(&self, r: &SessionRecord, now: Millis, keep: i64) -> Result<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("prune sessions"))?;
        sqlx::query(
            "DELETE FROM dashboard_sessions WHERE created_at <= \
             (SELECT created_at FROM dashboard_sessions ORDER BY created_at DESC LIMIT 1 OFFSET $1)",
        )
        .bind(keep.max(1) - 1)
        .execute(&self.pool)
        .await
        .map_err(q("prune sessions"))?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (id, user_name, token_digest, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.id)
        .bind(&r.user)
        .bind(&r.token_digest)
        .bind(&r.csrf)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await
        .map_err(q("write session"))?;
        Ok(())
    }

    /// A session that has not ended by `now`.
    pub async fn session(&self, id: &str, now: Millis) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT * FROM dashboard_sessions WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read session"))?;
        row.map(|r| {
            let g = || q("read session");
            Ok(SessionRecord {
                id: r.try_get("id").map_err(g())?,
                user: r.try_get("user_name").map_err(g())?,
                token_digest: r.try_get("token_digest").map_err(g())?,
                csrf: r.try_get("csrf").map_err(g())?,
                created_at: r.try_get("created_at").map_err(g())?,
                expires_at: r.try_get("expires_at").map_err(g())?,
            })
        })
        .transpose()
    }

    /// Ends a session.
    pub async fn delete_session(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(q("delete session"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
