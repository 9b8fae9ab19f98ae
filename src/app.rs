//! The application context every command runs in: the validated config,
//! the state store, where things live on disk, the clock and who is asking.
//!
//! Opening an [`App`] also notices cycles whose process died (kill -9, a
//! crash) and records them as interrupted, so nothing stays "running"
//! forever.

use crate::identity;
use anyhow::Context;
use greenroom_core::config::{Config, Database};
use greenroom_core::lease::HolderProcess;
use greenroom_core::time::Millis;
use greenroom_store::Store;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A source of the current time; tests and simulations inject their own.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Where greenroom keeps things under its state directory.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The state directory.
    pub root: PathBuf,
}

impl Paths {
    /// The SQLite database, unless `[server] database` names another.
    pub fn database(&self) -> PathBuf {
        self.root.join("state.db")
    }
    /// Bare git mirrors.
    pub fn mirrors(&self) -> PathBuf {
        self.root.join("mirrors")
    }
    /// Build cache.
    pub fn builds(&self) -> PathBuf {
        self.root.join("builds")
    }
    /// Logs of builds and components.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// Per environment and component working directories (cleaned on each deploy).
    pub fn run_dir(&self, environment: &str, component: &str) -> PathBuf {
        self.root.join("run").join(environment).join(component)
    }
    /// Per cycle files (the manifest JSON handed to deploy commands).
    pub fn cycle_dir(&self, cycle: i64) -> PathBuf {
        self.root.join("cycles").join(cycle.to_string())
    }
}

/// Everything a command needs.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// The state store.
    pub store: Store,
    /// Disk layout.
    pub paths: Paths,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Who is asking (lease holder name).
    pub holder: String,
    /// This process.
    pub process: HolderProcess,
    /// How to start the process driver's supervisor (this binary + `__supervise`).
    pub supervisor: Vec<OsString>,
    /// Through what actions reach greenroom, for the audit trail: `cli`
    /// (the default), `api`, `schedule`, `chat`.
    pub surface: String,
}

impl App {
    /// Opens the state directory named by the config, creating it if needed.
    pub async fn open(config: Config, holder: Option<String>) -> anyhow::Result<App> {
        let paths = Paths {
            root: config.state_dir.clone(),
        };
        std::fs::create_dir_all(&paths.root)
            .with_context(|| format!("cannot create the state directory {}", paths.root.display()))?;
        let store = match &config.server.database {
            None => Store::open(&paths.database()).await?,
            Some(Database::Sqlite(p)) => {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create the database's directory {}", dir.display()))?;
                }
                Store::open(p).await?
            }
            Some(Database::Url(u)) => Store::connect(u).await?,
            Some(Database::Secret(r)) => {
                let url =
                    crate::resolve::read_secret(r).map_err(|e| crate::error::input(format!("server.database: {e}")))?;
                Store::connect(&url).await?
            }
        };
        let exe = std::env::current_exe().context("cannot find greenroom's own executable")?;
        let app = App {
            config,
            store,
            paths,
            clock: Arc::new(SystemClock),
            holder: holder.unwrap_or_else(identity::default_holder),
            process: identity::this_process(),
            supervisor: supervisor_command(exe),
            surface: "cli".into(),
        };
        app.reap_interrupted().await?;
        Ok(app)
    }

    /// Now.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Marks running cycles whose process is gone as interrupted.
    pub async fn reap_interrupted(&self) -> anyhow::Result<Vec<i64>> {
        let mut reaped = Vec::new();
        for c in self.store.running_cycles().await? {
            let p = HolderProcess {
                host: c.host.clone(),
                pid: c.pid,
                start_time: c.pid_start,
            };
            if identity::alive(&p) == Some(false) {
                let msg = format!(
                    "interrupted: the greenroom process {} on {} that ran it is gone",
                    c.pid, c.host
                );
                if self
                    .store
                    .finish_cycle(c.id, "interrupted", Some(&msg), self.now())
                    .await?
                {
                    tracing::warn!(cycle = c.id, environment = %c.environment, "{msg}");
                    reaped.push(c.id);
                }
            }
        }
        Ok(reaped)
    }
}

/// Finds the config: `--config FILE`, else `GREENROOM_CONFIG`, else `./greenroom.toml`.
pub fn config_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("GREENROOM_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("greenroom.toml"),
    }
}

/// How the process driver starts its supervisor: the small
/// `greenroom-supervise` next to this executable when there is one (it
/// starts in a fraction of the time, and a fleet starts many), else this
/// executable's hidden `__supervise` subcommand. Both run the same
/// `greenroom_driver::supervise_main`. `GREENROOM_SUPERVISOR_SELF=1` forces
/// the second (the fleet benchmark compares them).
fn supervisor_command(exe: PathBuf) -> Vec<OsString> {
    let small = exe.with_file_name("greenroom-supervise");
    if std::env::var_os("GREENROOM_SUPERVISOR_SELF").is_none() && small.is_file() {
        return vec![small.into_os_string()];
    }
    vec![exe.into_os_string(), OsString::from("__supervise")]
}

#[cfg(test)]
mod supervisor_tests {
    use super::*;

    #[test]
    fn the_small_supervisor_is_used_when_it_is_installed_alongside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("greenroom");
        std::fs::write(&exe, "").expect("exe");
        assert_eq!(
            supervisor_command(exe.clone()),
            [exe.clone().into_os_string(), OsString::from("__supervise")]
        );
        std::fs::write(dir.path().join("greenroom-supervise"), "").expect("small");
        assert_eq!(
            supervisor_command(exe),
            [dir.path().join("greenroom-supervise").into_os_string()]
        );
    }
}
