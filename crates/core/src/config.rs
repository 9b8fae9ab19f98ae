//! The configuration model (`greenroom.toml`) and its validation.
//!
//! [`parse`] turns the file's text into a validated [`Config`] or into a list
//! of [`ConfigError`]s, each naming the file, line, column and key, with the
//! offending line quoted. Unknown keys are rejected. This module is pure:
//! [`load`] is the only function that touches the file system, and it only
//! reads the file. Secrets are never read here: a `vars` value `env:NAME` or
//! `file:PATH` stays a [`SecretRef`].

use crate::policy::PolicyConfig;
use crate::refname;
use crate::secret::SecretRef;
use crate::template;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

mod checks;
pub use crate::errorwatch::NewErrors;
pub use checks::{DEFAULT_GATE_TIMEOUT, DEFAULT_PROMETHEUS_TIMEOUT, Gate, Prometheus};
mod http_matrix;
pub use http_matrix::SuiteKind;
mod blockers;
mod feed;
mod fleet;
mod notify;
mod profile;
pub use profile::{DEFAULT_PROFILE_TTL, Profile};
mod stage;
pub use feed::{DEFAULT_FEED_POLL, Feed};
pub use notify::{DEFAULT_LEASE_WARNING, DEFAULT_RATE_LIMIT, LiteralUrl, Notify, NotifyKind, NotifyUrl};
pub use stage::{DEFAULT_STAGE_BACKOFF, DEFAULT_STAGE_TIMEOUT, Stage, StageKind, default_pipeline};

/// Placeholders allowed in `url` and `health`.
pub const URL_PLACEHOLDERS: &[&str] = &["port", "slot", "environment", "component", "host"];
/// Placeholders allowed in `[environment.vars]` values.
pub const VAR_PLACEHOLDERS: &[&str] = &["slot", "environment"];

/// Default lease time-to-live of an environment.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(2 * 3600);
/// Default time a deploy waits for a component's health check.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Default timeout of a `command` driver command or a build.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default first port of the process driver's port range.
pub const DEFAULT_PORT_BASE: u16 = 20_000;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The directory relative paths are resolved against (the file's directory).
    pub dir: PathBuf,
    /// Where greenroom keeps its database, mirrors, builds, logs and run directories.
    pub state_dir: PathBuf,
    /// First port the process driver hands out.
    pub port_base: u16,
    /// Components, in file order.
    pub components: Vec<Component>,
    /// Environments, in file order.
    pub environments: Vec<Environment>,
    /// The scheduling policy's numbers (`[policy]`; seed 002's defaults when absent).
    pub policy: PolicyConfig,
    /// `[server]`: how `greenroom serve` listens.
    pub server: ServerConfig,
    /// Webhook secrets (`[github]`, `[gitlab]`, `[package]`).
    pub webhooks: WebhookSecrets,
    /// `[slack]`: chat commands (`POST /chat/slack`).
    pub slack: SlackConfig,
    /// People (`[[user]]`): API tokens, forge logins and roles.
    pub users: Vec<User>,
    /// `[client]`: the server the CLI talks to instead of working locally.
    pub client: ClientConfig,
    /// `[retention]`: how long cycles, logs, builds and deliveries are kept.
    pub retention: Retention,
    /// `[pending]`: which pull requests qualify for staging, and how greenroom talks on them.
    pub pending: PendingConfig,
    /// `[github]` and `[gitlab]` API access (tokens, API URLs).
    pub forges: ForgeApis,
    /// Test suites (`[[suite]]`), in file order.
    pub suites: Vec<Suite>,
    /// Notification targets (`[[notify]]`), in file order.
    pub notify: Vec<Notify>,
    /// Metric gates (`[[gate]]`), in file order.
    pub gates: Vec<Gate>,
    /// `[prometheus]`: where gates query.
    pub prometheus: Option<Prometheus>,
    /// `[[freeze]]` windows (deny: freezes; allow: deploy hours).
    pub freezes: Vec<crate::blockers::Window>,
    /// `[alertmanager] url`: where firing alerts are asked for.
    pub alertmanager: Option<String>,
}

/// What a suite's failure means (seed 000/004's tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// Fails the cycle (and starts the search for the faulty PR).
    Blocking,
    /// Reported to PRs as a required status; does not fail the deploy.
    Gate,
    /// Reported only.
    NonBlocking,
    /// Runs, never fails anything, listed separately.
    Quarantine,
}

impl Tier {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Blocking => "blocking",
            Tier::Gate => "gate",
            Tier::NonBlocking => "non-blocking",
            Tier::Quarantine => "quarantine",
        }
    }
}

/// Default time a suite may take.
pub const DEFAULT_SUITE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `[[suite]]`: tests run after a deploy, against the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// Unique name (`smoke`, `api`); its status context is `greenroom/<name>`.
    pub name: String,
    /// What its failure means.
    pub tier: Tier,
    /// Which cycles run it (`partial`, `full`; both by default).
    pub cycles: Vec<crate::policy::CycleKind>,
    /// Shell command; gets the environment's URLs and the manifest in its
    /// variables (empty for an `http-matrix` suite).
    pub run: String,
    /// `command` (runs `run`) or `http-matrix` (an API scenario matrix).
    pub kind: SuiteKind,
    /// Files whose change makes it relevant in a partial cycle (empty: always).
    pub paths: Vec<String>,
    /// Components it exercises: their redeploy selects it in a partial cycle.
    pub components: Vec<String>,
    /// Environments it runs on (empty: all).
    pub environments: Vec<String>,
    /// Limit.
    pub timeout: Duration,
    /// Extra attempts after a failure (a pass on retry is reported as flaky).
    pub retries: u32,
    /// What a new error in the components' logs means when this suite ran.
    pub new_errors: NewErrors,
}

/// `[pending]`: the pending PR set of environments that `follow = "pending"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConfig {
    /// Forge logins whose pull requests qualify without approval (besides
    /// `[[user]]`s with a role of deployer or more).
    pub trusted: Vec<String>,
    /// Forge logins that may approve, exclude and include (besides admins).
    pub maintainers: Vec<String>,
    /// Label that keeps a pull request out of staging.
    pub skip_label: String,
    /// Label that acts like `@bot deploy` when added.
    pub deploy_label: String,
    /// Pull requests not updated for longer than this are left out.
    pub max_age: Duration,
    /// Merge order: `oldest-first`, `newest-first` or `by-number`.
    pub order: String,
    /// The name comments address (`@greenroom`), without the `@`.
    pub bot: String,
    /// Also ask the forge's collaborator permission API for commands.
    pub check_permissions: bool,
    /// Where the staging branch is pushed (`refs/heads/greenroom/staging`), if anywhere.
    pub staging_ref: Option<String>,
    /// How many dated staging tags to keep (0: none are made).
    pub staging_tags: u32,
    /// The pool whose free slots run the culprit search in parallel (none:
    /// the search runs on the failing environment itself, one run at a time).
    pub search_pool: Option<String>,
    /// Re-run the failing gate first to rule out a flake (issue #4's rule;
    /// the default). Without it, the culprit failing alone is the
    /// reproduction: one run fewer per search, and a flake costs a search.
    pub flake_rerun: bool,
}

impl Default for PendingConfig {
    fn default() -> Self {
        PendingConfig {
            trusted: Vec::new(),
            maintainers: Vec::new(),
            skip_label: "staging-skip".into(),
            deploy_label: "staging-deploy".into(),
            max_age: Duration::from_secs(14 * 86_400),
            order: "oldest-first".into(),
            bot: "greenroom".into(),
            check_permissions: false,
            staging_ref: None,
            staging_tags: 0,
            search_pool: None,
            flake_rerun: true,
        }
    }
}

/// API access to one hosted forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeApi {
    /// Base URL of the REST API (`https://api.github.com`, `https://gitlab.com/api/v4`).
    pub api_url: String,
    /// The token, as a secret reference.
    pub token: Option<SecretRef>,
}

/// `[github]` and `[gitlab]` API access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeApis {
    /// GitHub.
    pub github: ForgeApi,
    /// GitLab.
    pub gitlab: ForgeApi,
}

impl Default for ForgeApis {
    fn default() -> Self {
        ForgeApis {
            github: ForgeApi {
                api_url: "https://api.github.com".into(),
                token: None,
            },
            gitlab: ForgeApi {
                api_url: "https://gitlab.com/api/v4".into(),
                token: None,
            },
        }
    }
}

/// `[client]`: when set, the CLI sends its commands to a running `greenroom
/// serve` through the REST API instead of working on the local state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// Base URL of the server (`http://127.0.0.1:8080`).
    pub server: Option<String>,
    /// The API token to present (a `[[user]]`'s token), as a secret reference.
    pub token: Option<SecretRef>,
}

/// Default age after which finished cycles are removed.
pub const DEFAULT_KEEP_CYCLES_FOR: Duration = Duration::from_secs(90 * 86_400);
/// Default number of newest cycles kept per environment instance whatever their age.
pub const DEFAULT_KEEP_CYCLES: u32 = 200;
/// Default age of processed webhook deliveries and decisions before removal.
pub const DEFAULT_KEEP_EVENTS_FOR: Duration = Duration::from_secs(30 * 86_400);
/// Default time a build cache entry is kept after it was last used.
pub const DEFAULT_KEEP_BUILDS_FOR: Duration = Duration::from_secs(14 * 86_400);
/// Default age of log files before removal.
pub const DEFAULT_KEEP_LOGS_FOR: Duration = Duration::from_secs(30 * 86_400);
/// Default size the build cache is trimmed to (least recently used first).
pub const DEFAULT_BUILD_CACHE_SIZE: u64 = 20 * 1024 * 1024 * 1024;
/// Default time between two retention passes of `greenroom serve`.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// `[retention]`: what `greenroom gc` and `serve` (every `interval`) keep.
/// Nothing that runs now is ever removed: the cycles, builds and logs of
/// deployed components stay whatever their age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Finished cycles older than this are removed (`cycles = "90d"`)...
    pub cycles: Duration,
    /// ...except the newest this many per environment instance (`keep_cycles = 200`).
    pub keep_cycles: u32,
    /// Processed webhook deliveries and scheduling decisions (`events = "30d"`).
    pub events: Duration,
    /// Build cache entries unused for this long (`builds = "14d"`).
    pub builds: Duration,
    /// The build cache is trimmed to this many bytes, least recently used first (`build_cache_size = "20GiB"`).
    pub build_cache_size: u64,
    /// Log files not written for this long (`logs = "30d"`).
    pub logs: Duration,
    /// How often `serve` runs a pass (`interval = "1h"`).
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            cycles: DEFAULT_KEEP_CYCLES_FOR,
            keep_cycles: DEFAULT_KEEP_CYCLES,
            events: DEFAULT_KEEP_EVENTS_FOR,
            builds: DEFAULT_KEEP_BUILDS_FOR,
            build_cache_size: DEFAULT_BUILD_CACHE_SIZE,
            logs: DEFAULT_KEEP_LOGS_FOR,
            interval: DEFAULT_RETENTION_INTERVAL,
        }
    }
}

/// Parses a size: `512MiB`, `20GiB`, `1.5G`, `100MB`, `4096` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && (0.0..1.8e19).contains(&v)).then_some(v as u64)
}

/// What a person may do, on one environment or on all of them.
/// Ordered: `viewer < deployer < admin`; a role includes those below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads state, history, manifests and decisions.
    Viewer,
    /// Also deploys, leases and releases its own leases.
    Deployer,
    /// Also releases anyone's lease and reads webhook deliveries.
    Admin,
}

impl Role {
    /// Parses `viewer`, `deployer` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "deployer" => Some(Role::Deployer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person (`[[user]]`): one identity for the API, forges and chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Unique name; leases and audit records carry it.
    pub name: String,
    /// Where the API token is (never the token itself).
    pub token: SecretRef,
    /// GitHub login.
    pub github: Option<String>,
    /// GitLab login.
    pub gitlab: Option<String>,
    /// Chat identity.
    pub chat: Option<String>,
    /// Slack user id (`U…`): who this person is in `/chat/slack` commands.
    pub slack: Option<String>,
    /// Role on every environment (`role = "viewer"`).
    pub role: Option<Role>,
    /// Roles per environment (`environments = { staging = "admin" }`), by `[[environment]]` name.
    pub environments: BTreeMap<String, Role>,
}

impl User {
    /// The user's role on the `[[environment]]` called `environment`: the
    /// higher of the global role and the grant for it, if any.
    pub fn role_on(&self, environment: &str) -> Option<Role> {
        self.role.max(self.environments.get(environment).copied())
    }

    /// The highest role the user has anywhere.
    pub fn highest_role(&self) -> Option<Role> {
        self.role.max(self.environments.values().copied().max())
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:8080`).
    pub listen: std::net::SocketAddr,
    /// Where people and forges reach the server.
    pub public_url: Option<String>,
    /// Accept webhooks without a signature (local testing only).
    pub allow_unsigned_webhooks: bool,
    /// Where the state database is: `sqlite:PATH` (relative to the config
    /// file) or `postgres://...`; none means `STATE_DIR/state.db`. A secret
    /// reference (`env:NAME`, `file:PATH`) keeps a password out of the file.
    pub database: Option<Database>,
}

/// `[server] database`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A URL given literally (`postgres://host/db` without a password).
    Url(String),
    /// A URL read from a secret reference.
    Secret(SecretRef),
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            allow_unsigned_webhooks: false,
            database: None,
        }
    }
}

/// Where the webhook secrets are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookSecrets {
    /// `[github] webhook_secret`.
    pub github: Option<SecretRef>,
    /// `[gitlab] webhook_token`.
    pub gitlab: Option<SecretRef>,
    /// `[package] webhook_secret`.
    pub package: Option<SecretRef>,
}

/// `[slack]`: Slack slash commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackConfig {
    /// `signing_secret`: where the Slack app's signing secret is (`env:`/`file:`,
    /// never the secret itself). Without it, `/chat/slack` answers 503.
    pub signing_secret: Option<SecretRef>,
}

/// What a scheduled environment follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Follows {
    /// Its components' base channel refs.
    Channel,
    /// The base plus the pending pull requests.
    Pending,
    /// Nothing: deployed by hand only (`greenroom deploy`, the API); the
    /// server schedules no cycle for it.
    Manual,
}

/// Which forge hosts a component's repository; decides the PR ref layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    /// `refs/pull/N/head`
    Github,
    /// `refs/merge-requests/N/head`
    Gitlab,
    /// A plain git repository: pending changes are refs matching the
    /// component's `pending_refs` (the number is the leading digits of the
    /// ref's last part: `refs/pending/12`, `refs/heads/pr/12-fix`).
    Git,
}

/// What a base channel (`stg`, `prod`) of a component follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelSource {
    /// A branch: `main`, or `branch:main`.
    Branch(String),
    /// The newest tag matching a glob, by version order: `tag:v*`.
    TagPattern(String),
    /// A published image tag: `image:stg` (with the component's `image`).
    Image(String),
}

/// A component's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// An `http://` URL template; 2xx is healthy.
    Http(String),
    /// A shell command the config author wrote; exit 0 is healthy.
    Command(String),
}

/// A deployable unit built from one repository.
#[derive(Debug, Clone)]
pub struct Component {
    /// Unique name (`[a-z0-9][a-z0-9_-]*`).
    pub name: String,
    /// Git URL or absolute local path; `None` for image-only components.
    pub repo: Option<String>,
    /// PR ref layout.
    pub forge: Forge,
    /// Base channels: name -> what it follows.
    pub channels: BTreeMap<String, ChannelSource>,
    /// Image repository for `image:` channels.
    pub image: Option<String>,
    /// Command that turns an image tag into an immutable reference (prints it).
    pub resolve: Option<String>,
    /// Build command, run in a clean checkout.
    pub build: Option<String>,
    /// Process driver: the command that starts the component.
    pub run: Option<String>,
    /// Health check.
    pub health: Option<Health>,
    /// How long a deploy waits for the health check.
    pub health_timeout: Duration,
    /// Components this one needs first.
    pub depends_on: Vec<String>,
    /// Globs of files this component owns (impact analysis).
    pub paths: Vec<String>,
    /// Where people reach it (template).
    pub url: Option<String>,
    /// Command driver: deploy command.
    pub deploy: Option<String>,
    /// Command driver: stop command (must be safe to run twice).
    pub stop: Option<String>,
    /// Timeout for this component's build and command-driver commands.
    pub timeout: Duration,
    /// GitHub identity (`owner/name`): from `github`, or derived from a github.com `repo`.
    pub github: Option<String>,
    /// GitLab identity (`group/project`): from `gitlab`, or derived from a gitlab.com `repo`.
    pub gitlab: Option<String>,
    /// Refs that are pending changes, for `forge = "git"` (`refs/pending/*` by default).
    pub pending_refs: Option<String>,
    /// Regular expressions that make a log line an error (the error watch;
    /// `core::errorwatch::DEFAULT_PATTERNS` when absent).
    pub error_patterns: Vec<String>,
    /// Command that prints the component's log (environments without the
    /// process driver); gets `GREENROOM_LOGS_SINCE`.
    pub logs: Option<String>,
    /// Published versions it follows (`feed = { kind, url, poll }`): the
    /// server deploys each new one (`crate::feed`).
    pub feed: Option<Feed>,
}

/// How an environment runs its components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Local supervised processes (the embedded default).
    Process,
    /// The user's own deploy/stop commands.
    Command,
}

/// A value of `[environment.vars]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    /// A literal, possibly with `{slot}` / `{environment}` placeholders.
    Literal(String),
    /// A secret read at deploy time; never printed.
    Secret(SecretRef),
}

/// A named place components run.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Name; with slots, the instances are `NAME-1` .. `NAME-N`.
    pub name: String,
    /// Components deployed there (all components when the key is absent).
    pub components: Vec<String>,
    /// Driver.
    pub driver: DriverKind,
    /// Lease time-to-live.
    pub lease_ttl: Duration,
    /// Number of slots, if the environment is a pool.
    pub slots: Option<u32>,
    /// Isolation identity: variables every component gets.
    pub vars: BTreeMap<String, VarValue>,
    /// What `serve` deploys on triggers.
    pub follows: Follows,
    /// Command or `http://` URL that waits until work in flight is done, before a redeploy.
    pub drain: Option<String>,
    /// How long a drain may take.
    pub drain_timeout: Duration,
    /// The order a rollback redeploys components in (`rollback_order`):
    /// these first, in this order, then the rest in reverse dependency
    /// order (`plan::rollback_order`). Empty: reverse dependency order.
    pub rollback_order: Vec<String>,
    /// The release pipeline (`[[environment.stage]]`); empty: the default
    /// (`Environment::pipeline`).
    pub stages: Vec<Stage>,
    /// What a new error in the components' logs means (`new_errors`).
    pub new_errors: NewErrors,
    /// Alertmanager matchers: a firing alert matching all of them blocks
    /// cycles (`block_on_alerts`).
    pub block_on_alerts: Vec<crate::blockers::Matcher>,
    /// `[environment.profile]`: this pool's slots are ephemeral
    /// environments made on demand (`greenroom env create`).
    pub profile: Option<Profile>,
    /// Roll back by itself when a blocking verify fails and no irreversible
    /// stage ran (`auto_rollback`).
    pub auto_rollback: bool,
    /// Where a verified manifest of a scheduled cycle goes next (`promote_to`).
    pub promote_to: Option<String>,
    /// How long it soaks here first (`promote_after`; zero: at once).
    pub promote_after: Duration,
    /// Several targets (`targets`, `instances`; `config/fleet.rs`): deploys
    /// roll out blessed, canaries, batches. `None`: one place, as always.
    /// A profile's `instances = { api = 3 }` sets `Fleet::counts` (and on
    /// the process driver, without a fleet, derives one).
    pub fleet: Option<crate::fleet::Fleet>,
}

/// One concrete place: an environment, or one slot of a pooled environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `staging`, or `dev-2` for slot 2 of `dev`.
    pub name: String,
    /// The `[[environment]]` it belongs to.
    pub environment: String,
    /// Slot number, if pooled.
    pub slot: Option<u32>,
}

impl Config {
    /// The component called `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The environment called `name` (not a slot name).
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// Every concrete instance (environments and their slots), in file order.
    pub fn instances(&self) -> Vec<Instance> {
        self.environments.iter().flat_map(|e| e.instances()).collect()
    }

    /// The instances a `--env NAME` refers to: all slots of a pooled
    /// environment, one slot (`dev-2`), or a plain environment.
    pub fn lookup_instances(&self, name: &str) -> Result<Vec<Instance>, String> {
        if let Some(env) = self.environment(name) {
            return Ok(env.instances());
        }
        if let Some(inst) = self.instances().into_iter().find(|i| i.name == name) {
            return Ok(vec![inst]);
        }
        let known: Vec<String> = self.environments.iter().map(|e| e.name.clone()).collect();
        Err(format!(
            "unknown environment `{name}` (configured: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    }
}

impl Environment {
    /// The release pipeline: the declared stages, or deploy then verify.
    pub fn pipeline(&self) -> Vec<Stage> {
        if self.stages.is_empty() {
            default_pipeline()
        } else {
            self.stages.clone()
        }
    }

    /// This environment's instances: itself, or `NAME-1`..`NAME-N`.
    pub fn instances(&self) -> Vec<Instance> {
        match self.slots {
            None => vec![Instance {
                name: self.name.clone(),
                environment: self.name.clone(),
                slot: None,
            }],
            Some(n) => (1..=n)
                .map(|s| Instance {
                    name: format!("{}-{s}", self.name),
                    environment: self.name.clone(),
                    slot: Some(s),
                })
                .collect(),
        }
    }
}

/// One problem in a config file, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the problem has no location, e.g. an unreadable file).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key, e.g. `component[api].depends_on`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
    /// The offending line of the file, for display.
    pub source_line: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        if self.line == 0 {
            return write!(f, "{file}: {}: {}", self.key, self.message);
        }
        write!(
            f,
            "{file}:{}:{}: {}: {}",
            self.line, self.column, self.key, self.message
        )?;
        if !self.source_line.is_empty() {
            let gutter = self.line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {}^",
                "",
                self.line,
                self.source_line,
                "",
                " ".repeat(self.column.saturating_sub(1))
            )?;
        }
        Ok(())
    }
}

/// All problems found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if n > 1 {
            write!(f, "\n{n} problems in the configuration")?;
        }
        Ok(())
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: "file".into(),
            message: format!(
                "cannot read the configuration: {e} (pass --config FILE, set GREENROOM_CONFIG, or run `greenroom quickstart`)"
            ),
            source_line: String::new(),
        }])
    })?;
    let dir = path
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .unwrap_or(Path::new("."));
    // Relative paths in the file are relative to the file, wherever greenroom
    // runs from later: anchor them now.
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    parse(&text, path, &dir)
}

// ---------------------------------------------------------------------------
// Raw (as written) model.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<Spanned<String>>,
    port_base: Option<Spanned<u16>>,
    #[serde(default)]
    component: Vec<Spanned<RawComponent>>,
    #[serde(default)]
    environment: Vec<Spanned<RawEnvironment>>,
    policy: Option<RawPolicy>,
    server: Option<RawServer>,
    github: Option<RawGithub>,
    gitlab: Option<RawGitlab>,
    package: Option<RawSecretTable>,
    slack: Option<RawSlack>,
    #[serde(default)]
    user: Vec<Spanned<RawUser>>,
    client: Option<RawClient>,
    retention: Option<RawRetention>,
    pending: Option<RawPending>,
    #[serde(default)]
    suite: Vec<Spanned<RawSuite>>,
    #[serde(default)]
    notify: Vec<Spanned<notify::RawNotify>>,
    #[serde(default)]
    gate: Vec<Spanned<checks::RawGate>>,
    prometheus: Option<Spanned<checks::RawPrometheus>>,
    #[serde(default)]
    freeze: Vec<Spanned<blockers::RawFreeze>>,
    alertmanager: Option<blockers::RawAlertmanager>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: Spanned<String>,
    tier: Option<Spanned<String>>,
    cycles: Option<Spanned<Vec<Spanned<String>>>>,
    run: Option<Spanned<String>>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    #[serde(default)]
    components: Vec<Spanned<String>>,
    #[serde(default)]
    environments: Vec<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    retries: Option<Spanned<i64>>,
    new_errors: Option<Spanned<String>>,
    // `kind = "http-matrix"` (config/http_matrix.rs).
    kind: Option<Spanned<String>>,
    component: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    axes: Option<Spanned<http_matrix::RawAxes>>,
    #[serde(default)]
    setup: Vec<Spanned<http_matrix::RawStep>>,
    #[serde(default)]
    step: Vec<Spanned<http_matrix::RawStep>>,
    concurrency: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPending {
    #[serde(default)]
    trusted: Vec<Spanned<String>>,
    #[serde(default)]
    maintainers: Vec<Spanned<String>>,
    skip_label: Option<Spanned<String>>,
    deploy_label: Option<Spanned<String>>,
    max_age: Option<Spanned<String>>,
    order: Option<Spanned<String>>,
    bot: Option<Spanned<String>>,
    #[serde(default)]
    check_permissions: bool,
    staging_ref: Option<Spanned<String>>,
    staging_tags: Option<Spanned<i64>>,
    search_pool: Option<Spanned<String>>,
    flake_rerun: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGithub {
    webhook_secret: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    server: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    cycles: Option<Spanned<String>>,
    keep_cycles: Option<Spanned<i64>>,
    events: Option<Spanned<String>>,
    builds: Option<Spanned<String>>,
    build_cache_size: Option<Spanned<String>>,
    logs: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    token: Option<Spanned<String>>,
    github: Option<Spanned<String>>,
    gitlab: Option<Spanned<String>>,
    chat: Option<Spanned<String>>,
    slack: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
    #[serde(default)]
    environments: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    #[serde(default)]
    allow_unsigned_webhooks: bool,
    database: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretTable {
    webhook_secret: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    signing_secret: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitlab {
    webhook_token: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    full_interval: Option<Spanned<String>>,
    poll_interval: Option<Spanned<String>>,
    max_restarts: Option<Spanned<i64>>,
    cooldown: Option<Spanned<String>>,
    settle: Option<Spanned<String>>,
    drain_timeout: Option<Spanned<String>>,
    retry_backoff: Option<Spanned<String>>,
    retry_attempts: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    name: Spanned<String>,
    repo: Option<Spanned<String>>,
    forge: Option<Spanned<String>>,
    channels: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    image: Option<Spanned<String>>,
    resolve: Option<String>,
    build: Option<String>,
    run: Option<String>,
    health: Option<Spanned<String>>,
    health_timeout: Option<Spanned<String>>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    url: Option<Spanned<String>>,
    deploy: Option<String>,
    stop: Option<String>,
    timeout: Option<Spanned<String>>,
    github: Option<Spanned<String>>,
    gitlab: Option<Spanned<String>>,
    pending_refs: Option<Spanned<String>>,
    error_patterns: Option<Vec<Spanned<String>>>,
    logs: Option<Spanned<String>>,
    feed: Option<Spanned<feed::RawFeed>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    name: Spanned<String>,
    components: Option<Vec<Spanned<String>>>,
    driver: Option<Spanned<String>>,
    lease_ttl: Option<Spanned<String>>,
    slots: Option<Spanned<u32>>,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<String>>,
    follows: Option<Spanned<String>>,
    drain: Option<String>,
    drain_timeout: Option<Spanned<String>>,
    #[serde(default)]
    rollback_order: Vec<Spanned<String>>,
    #[serde(default)]
    stage: Vec<Spanned<stage::RawStage>>,
    new_errors: Option<Spanned<String>>,
    #[serde(default)]
    block_on_alerts: Vec<Spanned<String>>,
    profile: Option<Spanned<profile::RawProfile>>,
    #[serde(default)]
    auto_rollback: bool,
    promote_to: Option<Spanned<String>>,
    promote_after: Option<Spanned<String>>,
    targets: Option<Spanned<Vec<Spanned<fleet::RawTarget>>>>,
    instances: Option<Spanned<i64>>,
    blessed: Option<Spanned<String>>,
    canary: Option<Spanned<Vec<Spanned<String>>>>,
    batch: Option<Spanned<fleet::RawBatch>>,
}

// ---------------------------------------------------------------------------
// Validation.

struct Ctx<'a> {
    text: &'a str,
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn err(&mut self, span: std::ops::Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let (line, column, source_line) = locate(self.text, span.start);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
            source_line,
        });
    }

    fn duration(&mut self, v: &Option<Spanned<String>>, key: String, default: Duration) -> Duration {
        let Some(v) = v else { return default };
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.err(v.span(), key, "must be longer than zero");
                default
            }
            Err(e) => {
                self.err(
                    v.span(),
                    key,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"30s\", \"10m\", \"2h\"",
                        v.get_ref()
                    ),
                );
                default
            }
        }
    }
}

impl Ctx<'_> {
    /// Like [`Ctx::duration`], but `0s` is allowed (no settle, no cooldown).
    fn duration_or_zero(&mut self, v: &Option<Spanned<String>>, key: String, default: Duration) -> Duration {
        match v {
            Some(s) if humantime::parse_duration(s.get_ref()).is_ok_and(|d| d.is_zero()) => Duration::ZERO,
            _ => self.duration(v, key, default),
        }
    }
}

/// The `[policy]` table: seed 002's defaults for what is not written.
fn validate_policy(cx: &mut Ctx<'_>, raw: Option<&RawPolicy>) -> PolicyConfig {
    let d = PolicyConfig::default();
    let Some(rp) = raw else { return d };
    let max_restarts = match &rp.max_restarts {
        None => d.max_restarts,
        Some(m) => match u32::try_from(*m.get_ref()) {
            Ok(n) if n <= 10 => n,
            _ => {
                cx.err(
                    m.span(),
                    "policy.max_restarts",
                    format!(
                        "must be between 0 and 10 (restarts of one partial cycle), not {}",
                        m.get_ref()
                    ),
                );
                d.max_restarts
            }
        },
    };
    let retry_attempts = match &rp.retry_attempts {
        None => d.retry_attempts,
        Some(m) => match u32::try_from(*m.get_ref()) {
            Ok(n) if n <= 20 => n,
            _ => {
                cx.err(
                    m.span(),
                    "policy.retry_attempts",
                    format!(
                        "must be between 0 and 20 (infrastructure failures in a row that are retried), not {}",
                        m.get_ref()
                    ),
                );
                d.retry_attempts
            }
        },
    };
    PolicyConfig {
        full_interval: cx.duration(&rp.full_interval, "policy.full_interval".into(), d.full_interval),
        poll_interval: cx.duration(&rp.poll_interval, "policy.poll_interval".into(), d.poll_interval),
        max_restarts,
        cooldown: cx.duration_or_zero(&rp.cooldown, "policy.cooldown".into(), d.cooldown),
        settle: cx.duration_or_zero(&rp.settle, "policy.settle".into(), d.settle),
        drain_timeout: cx.duration(&rp.drain_timeout, "policy.drain_timeout".into(), d.drain_timeout),
        retry_backoff: cx.duration(&rp.retry_backoff, "policy.retry_backoff".into(), d.retry_backoff),
        retry_attempts,
    }
}

/// 1-based line and column of a byte offset, and the line's text.
fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    let line_end = text[line_start..]
        .find('\n')
        .map(|i| line_start + i)
        .unwrap_or(text.len());
    (
        line,
        column,
        text[line_start..line_end].trim_end_matches('\r').to_string(),
    )
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.len() <= 63
}

fn valid_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses and validates config text. `file` is used in messages; `dir` is
/// what relative paths are resolved against.
pub fn parse(text: &str, file: &Path, dir: &Path) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx {
        text,
        file,
        errors: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let (_, _, line_text) = locate(text, span.start);
            let key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim().to_string())
                .filter(|k| !k.is_empty() && !k.starts_with('['))
                .unwrap_or_else(|| "syntax".to_string());
            let message = e.message().trim().to_string();
            cx.err(span, key, message);
            return Err(ConfigErrors(cx.errors));
        }
    };

    let state_dir = match &raw.state_dir {
        Some(s) if s.get_ref().trim().is_empty() => {
            cx.err(s.span(), "state_dir", "must not be empty");
            dir.join(".greenroom")
        }
        Some(s) => dir.join(s.get_ref()),
        None => dir.join(".greenroom"),
    };
    let port_base = match &raw.port_base {
        Some(p) if *p.get_ref() < 1024 => {
            cx.err(p.span(), "port_base", "must be 1024 or higher (no privileged ports)");
            DEFAULT_PORT_BASE
        }
        Some(p) => *p.get_ref(),
        None => DEFAULT_PORT_BASE,
    };

    let mut components = Vec::new();
    let mut seen = BTreeSet::new();
    for rc in &raw.component {
        let span = rc.span();
        if let Some(c) = validate_component(&mut cx, rc.get_ref(), span, dir, &mut seen) {
            components.push(c);
        }
    }
    let names: Vec<String> = raw
        .component
        .iter()
        .map(|c| c.get_ref().name.get_ref().clone())
        .collect();
    for rc in &raw.component {
        let rc = rc.get_ref();
        for dep in &rc.depends_on {
            if !names.contains(dep.get_ref()) {
                cx.err(
                    dep.span(),
                    format!("component[{}].depends_on", rc.name.get_ref()),
                    format!(
                        "unknown component `{}` (components: {})",
                        dep.get_ref(),
                        names.join(", ")
                    ),
                );
            } else if dep.get_ref() == rc.name.get_ref() {
                cx.err(
                    dep.span(),
                    format!("component[{}].depends_on", rc.name.get_ref()),
                    "a component cannot depend on itself",
                );
            }
        }
    }
    if let Some(cycle) = dependency_cycle(&components) {
        let first = &cycle[0];
        let span = raw
            .component
            .iter()
            .find(|c| c.get_ref().name.get_ref() == first)
            .and_then(|c| c.get_ref().depends_on.first().map(|d| d.span()))
            .unwrap_or(0..0);
        cx.err(
            span,
            format!("component[{first}].depends_on"),
            format!("dependency cycle: {} (deploy order must be a DAG)", cycle.join(" -> ")),
        );
    }

    let mut environments = Vec::new();
    let mut env_names = BTreeSet::new();
    for re in &raw.environment {
        if let Some(e) = validate_environment(&mut cx, re.get_ref(), &components, &names, &mut env_names) {
            environments.push(e);
        }
    }
    // Slot names must not collide with other environments.
    let all: Vec<String> = environments
        .iter()
        .flat_map(|e| e.instances())
        .map(|i| i.name)
        .collect();
    for re in &raw.environment {
        let re = re.get_ref();
        if let Some(slots) = &re.slots {
            for s in 1..=*slots.get_ref() {
                let slot_name = format!("{}-{s}", re.name.get_ref());
                if all.iter().filter(|n| **n == slot_name).count() > 1 {
                    cx.err(
                        slots.span(),
                        format!("environment[{}].slots", re.name.get_ref()),
                        format!("slot `{slot_name}` has the same name as another environment"),
                    );
                }
            }
        }
    }

    let policy = validate_policy(&mut cx, raw.policy.as_ref());

    let mut server = validate_server(&mut cx, raw.server.as_ref());
    let mut client = validate_client(&mut cx, raw.client.as_ref());
    let retention = validate_retention(&mut cx, raw.retention.as_ref());
    let mut pending = validate_pending(&mut cx, raw.pending.as_ref());
    if let Some(p) = raw.pending.as_ref().and_then(|p| p.search_pool.as_ref()) {
        match environments.iter().find(|e| &e.name == p.get_ref()) {
            Some(e) if e.slots.is_some() => pending.search_pool = Some(p.get_ref().clone()),
            Some(_) => cx.err(
                p.span(),
                "pending.search_pool",
                format!("`{}` is not a pool: give it `slots = N`", p.get_ref()),
            ),
            None => cx.err(
                p.span(),
                "pending.search_pool",
                format!("unknown environment `{}`", p.get_ref()),
            ),
        }
    }
    let mut forges = ForgeApis::default();
    if let Some(g) = &raw.github {
        if let Some(u) = &g.api_url {
            forges.github.api_url = api_url(&mut cx, u, "github.api_url");
        }
        forges.github.token = g.token.as_ref().and_then(|t| secret_ref(&mut cx, t, "github.token"));
    }
    if let Some(g) = &raw.gitlab {
        if let Some(u) = &g.api_url {
            forges.gitlab.api_url = api_url(&mut cx, u, "gitlab.api_url");
        }
        forges.gitlab.token = g.token.as_ref().and_then(|t| secret_ref(&mut cx, t, "gitlab.token"));
    }
    let mut secret = |v: Option<&Spanned<String>>, key: &str| -> Option<SecretRef> { secret_ref(&mut cx, v?, key) };
    let webhooks = WebhookSecrets {
        github: secret(
            raw.github.as_ref().and_then(|g| g.webhook_secret.as_ref()),
            "github.webhook_secret",
        ),
        gitlab: secret(
            raw.gitlab.as_ref().and_then(|g| g.webhook_token.as_ref()),
            "gitlab.webhook_token",
        ),
        package: secret(
            raw.package.as_ref().and_then(|g| g.webhook_secret.as_ref()),
            "package.webhook_secret",
        ),
    };
    let users = validate_users(&mut cx, &raw.user, &environments);
    let mut slack = SlackConfig {
        signing_secret: raw
            .slack
            .as_ref()
            .and_then(|s| s.signing_secret.as_ref())
            .and_then(|v| secret_ref(&mut cx, v, "slack.signing_secret")),
    };
    let suites = validate_suites(&mut cx, &raw.suite, &names, &environments);
    let prometheus = checks::validate_prometheus(&mut cx, raw.prometheus.as_ref());
    let gates = checks::validate_gates(&mut cx, &raw.gate, &environments, prometheus.is_some());
    let mut notify = notify::validate(&mut cx, &raw.notify, &environments);
    let env_names: Vec<String> = environments.iter().map(|e| e.name.clone()).collect();
    let promotions: Vec<feed::RawPromotion<'_>> = raw
        .environment
        .iter()
        .map(|re| feed::RawPromotion {
            environment: re.get_ref().name.get_ref(),
            to: re.get_ref().promote_to.as_ref(),
            after: &re.get_ref().promote_after,
        })
        .collect();
    feed::validate_promotions(&mut cx, &promotions, &mut environments);
    let freezes = blockers::validate_freezes(&mut cx, &raw.freeze, &env_names);
    let alertmanager = blockers::validate_alertmanager(&mut cx, raw.alertmanager.as_ref());
    // `file:` secrets are relative to the config file, like every other path in it.
    let anchor = |r: &mut SecretRef| {
        if let SecretRef::File(p) = r
            && p.is_relative()
        {
            *p = dir.join(&*p);
        }
    };
    let mut webhooks = webhooks;
    for r in [
        &mut webhooks.github,
        &mut webhooks.gitlab,
        &mut webhooks.package,
        &mut slack.signing_secret,
    ]
    .into_iter()
    .flatten()
    {
        anchor(r);
    }
    for n in &mut notify {
        for r in [
            match &mut n.url {
                NotifyUrl::Secret(r) => Some(r),
                NotifyUrl::Literal(_) => None,
            },
            n.secret.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            anchor(r);
        }
    }
    for r in [
        forges.github.token.as_mut(),
        forges.gitlab.token.as_mut(),
        client.token.as_mut(),
        match server.database.as_mut() {
            Some(Database::Secret(r)) => Some(r),
            _ => None,
        },
    ]
    .into_iter()
    .flatten()
    {
        anchor(r);
    }
    if let Some(Database::Sqlite(p)) = server.database.as_mut()
        && p.is_relative()
    {
        *p = dir.join(&*p);
    }
    for env in &mut environments {
        for v in env.vars.values_mut() {
            if let VarValue::Secret(r) = v {
                anchor(r);
            }
        }
    }
    cx.errors.sort_by_key(|e| (e.line, e.column));
    if cx.errors.is_empty() {
        Ok(Config {
            path: file.to_path_buf(),
            dir: dir.to_path_buf(),
            state_dir,
            port_base,
            components,
            environments,
            policy,
            server,
            webhooks,
            slack,
            users,
            client,
            retention,
            pending,
            forges,
            suites,
            notify,
            gates,
            prometheus,
            freezes,
            alertmanager,
        })
    } else {
        Err(ConfigErrors(cx.errors))
    }
}

fn validate_component(
    cx: &mut Ctx<'_>,
    rc: &RawComponent,
    span: std::ops::Range<usize>,
    dir: &Path,
    seen: &mut BTreeSet<String>,
) -> Option<Component> {
    let name = rc.name.get_ref().clone();
    let key = |k: &str| format!("component[{name}].{k}");
    let before = cx.errors.len();
    if !valid_name(&name) {
        cx.err(rc.name.span(), "component.name", format!("`{name}` is not a valid name: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"));
    } else if !seen.insert(name.clone()) {
        cx.err(
            rc.name.span(),
            "component.name",
            format!("component `{name}` is defined twice"),
        );
    }

    let repo = rc.repo.as_ref().map(|r| {
        let v = r.get_ref().trim();
        if v.is_empty() {
            cx.err(r.span(), key("repo"), "must not be empty");
        }
        if v.starts_with('-') {
            cx.err(r.span(), key("repo"), "must not start with `-`");
        }
        if v.contains("://") || is_scp_like(v) {
            v.to_string()
        } else {
            // A local path, relative to the config file.
            dir.join(v).to_string_lossy().into_owned()
        }
    });

    let forge = match rc.forge.as_ref() {
        None => Forge::Github,
        Some(f) => match f.get_ref().as_str() {
            "github" => Forge::Github,
            "gitlab" => Forge::Gitlab,
            "git" => Forge::Git,
            other => {
                cx.err(
                    f.span(),
                    key("forge"),
                    format!("unknown forge `{other}` (expected `github`, `gitlab` or `git`)"),
                );
                Forge::Github
            }
        },
    };

    let pending_refs = match (&rc.pending_refs, forge) {
        (Some(p), Forge::Git) => {
            let v = p.get_ref().trim();
            if !v.starts_with("refs/")
                || v.matches('*').count() != 1
                || v.contains("..")
                || v.chars().any(|c| c.is_whitespace() || c == ':')
            {
                cx.err(
                    p.span(),
                    key("pending_refs"),
                    format!(
                        "`{v}` is not a ref pattern with one `*` standing for the change's number: write e.g. \"refs/pending/*\""
                    ),
                );
            }
            Some(v.to_string())
        }
        (Some(p), _) => {
            cx.err(
                p.span(),
                key("pending_refs"),
                "only for `forge = \"git\"` (GitHub and GitLab are asked through their API)",
            );
            None
        }
        (None, Forge::Git) => Some("refs/pending/*".to_string()),
        (None, _) => None,
    };

    let image = rc.image.as_ref().map(|i| i.get_ref().clone());
    let mut channels = BTreeMap::new();
    match &rc.channels {
        None => {
            if repo.is_some() {
                channels.insert("stg".to_string(), ChannelSource::Branch("main".to_string()));
            }
        }
        Some(map) => {
            for (ch, v) in map.get_ref() {
                if !valid_name(ch) {
                    cx.err(v.span(), key("channels"), format!("`{ch}` is not a valid channel name"));
                    continue;
                }
                let val = v.get_ref();
                let source = if let Some(p) = val.strip_prefix("tag:") {
                    if let Err(e) = refname::check_pattern(p) {
                        cx.err(
                            v.span(),
                            key("channels"),
                            format!("`{p}` is not a valid tag pattern: it {e}"),
                        );
                    }
                    ChannelSource::TagPattern(p.to_string())
                } else if let Some(t) = val.strip_prefix("image:") {
                    if image.is_none() {
                        cx.err(v.span(), key("channels"), format!("channel `{ch}` follows `image:{t}` but the component has no `image` (e.g. image = \"quay.io/org/{name}\")"));
                    }
                    if t.is_empty() || t.contains(|c: char| c.is_whitespace() || c == '/') {
                        cx.err(v.span(), key("channels"), format!("`{t}` is not a valid image tag"));
                    }
                    ChannelSource::Image(t.to_string())
                } else {
                    let b = val.strip_prefix("branch:").unwrap_or(val);
                    if let Err(e) = refname::check(b) {
                        cx.err(
                            v.span(),
                            key("channels"),
                            format!("`{b}` is not a valid branch name: it {e}"),
                        );
                    }
                    ChannelSource::Branch(b.to_string())
                };
                if matches!(source, ChannelSource::Branch(_) | ChannelSource::TagPattern(_)) && repo.is_none() {
                    cx.err(
                        v.span(),
                        key("channels"),
                        format!("channel `{ch}` follows a git ref but the component has no `repo`"),
                    );
                }
                channels.insert(ch.clone(), source);
            }
        }
    }
    if repo.is_none() && image.is_none() && rc.feed.is_none() {
        cx.err(
            rc.name.span(),
            key("repo"),
            "a component needs a `repo` (git URL or path) or an `image`",
        );
    }

    let health = rc.health.as_ref().map(|h| {
        let v = h.get_ref();
        if v.starts_with("https://") {
            cx.err(
                h.span(),
                key("health"),
                "https health checks are not supported yet: use an http:// URL or a command",
            );
        }
        if v.starts_with("http://") {
            for p in template::unknown_placeholders(v, URL_PLACEHOLDERS) {
                cx.err(
                    h.span(),
                    key("health"),
                    format!("unknown placeholder `{{{p}}}` (known: {})", URL_PLACEHOLDERS.join(", ")),
                );
            }
            Health::Http(v.clone())
        } else {
            if v.trim().is_empty() {
                cx.err(h.span(), key("health"), "must not be empty");
            }
            Health::Command(v.clone())
        }
    });
    if let Some(u) = &rc.url {
        for p in template::unknown_placeholders(u.get_ref(), URL_PLACEHOLDERS) {
            cx.err(
                u.span(),
                key("url"),
                format!("unknown placeholder `{{{p}}}` (known: {})", URL_PLACEHOLDERS.join(", ")),
            );
        }
    }
    let health_timeout = cx.duration(&rc.health_timeout, key("health_timeout"), DEFAULT_HEALTH_TIMEOUT);
    let mut identity = |field: &str, v: &Option<Spanned<String>>, host: &str| -> Option<String> {
        match v {
            Some(v) => {
                let parts: Vec<&str> = v.get_ref().split('/').collect();
                if parts.len() < 2 || parts.iter().any(|p| p.is_empty() || p.contains(char::is_whitespace)) {
                    cx.err(
                        v.span(),
                        key(field),
                        format!("`{}` is not a repository path: write \"owner/name\"", v.get_ref()),
                    );
                }
                Some(v.get_ref().clone())
            }
            None => repo.as_deref().and_then(|r| forge_path(r, host)),
        }
    };
    let github = identity("github", &rc.github, "github.com");
    let gitlab = identity("gitlab", &rc.gitlab, "gitlab.com");
    let timeout = cx.duration(&rc.timeout, key("timeout"), DEFAULT_COMMAND_TIMEOUT);

    let mut paths = Vec::new();
    for p in &rc.paths {
        if let Err(e) = globset::Glob::new(p.get_ref()) {
            cx.err(
                p.span(),
                key("paths"),
                format!("`{}` is not a valid glob: {e}", p.get_ref()),
            );
        }
        paths.push(p.get_ref().clone());
    }
    for (field, value) in [
        ("build", &rc.build),
        ("run", &rc.run),
        ("deploy", &rc.deploy),
        ("stop", &rc.stop),
        ("resolve", &rc.resolve),
    ] {
        if matches!(value, Some(v) if v.trim().is_empty()) {
            cx.err(span.clone(), key(field), "must not be empty (remove the key instead)");
        }
    }

    let error_patterns = checks::error_patterns(cx, &rc.error_patterns, key("error_patterns"));
    let logs = checks::logs_command(cx, &rc.logs, key("logs"));
    let feed = rc.feed.as_ref().and_then(|f| feed::validate(cx, &name, f));
    if cx.errors.len() > before {
        return None;
    }
    Some(Component {
        name,
        repo,
        forge,
        channels,
        image,
        resolve: rc.resolve.clone(),
        build: rc.build.clone(),
        run: rc.run.clone(),
        health,
        health_timeout,
        depends_on: rc.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
        paths,
        url: rc.url.as_ref().map(|u| u.get_ref().clone()),
        deploy: rc.deploy.clone(),
        stop: rc.stop.clone(),
        timeout,
        github,
        gitlab,
        pending_refs,
        error_patterns,
        logs,
        feed,
    })
}

/// A secret reference (`env:NAME` / `file:PATH`). A literal is refused and
/// not echoed: the quoted line shows `<redacted>` instead.
fn secret_ref(cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<SecretRef> {
    match SecretRef::parse(v.get_ref()) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            cx.err(v.span(), key, e);
            None
        }
        None => {
            cx.err(
                v.span(),
                key,
                "a secret must not be written in the file: use \"env:NAME\" or \"file:PATH\"",
            );
            // Do not echo what looks like the secret itself.
            if let Some(e) = cx.errors.last_mut()
                && !v.get_ref().is_empty()
            {
                e.source_line = e.source_line.replace(v.get_ref().as_str(), "<redacted>");
            }
            None
        }
    }
}

/// The `[[user]]` entries: unique names and forge logins, a token reference,
/// known roles, grants on configured environments only.
fn validate_users(cx: &mut Ctx<'_>, raw: &[Spanned<RawUser>], environments: &[Environment]) -> Vec<User> {
    let mut users = Vec::new();
    let mut names = BTreeSet::new();
    let mut logins: BTreeMap<(&str, String), String> = BTreeMap::new();
    for ru in raw {
        let span = ru.span();
        let ru = ru.get_ref();
        let before = cx.errors.len();
        let name = ru.name.get_ref().clone();
        let key = |field: &str| format!("user[{name}].{field}");
        if !valid_user_name(&name) {
            cx.err(
                ru.name.span(),
                "user.name",
                format!("`{name}` is not a valid user name (letters, digits, `.`, `_`, `-`, `@`; 1-64 characters)"),
            );
        } else if !names.insert(name.clone()) {
            cx.err(ru.name.span(), "user.name", format!("user `{name}` is defined twice"));
        }
        let token = match &ru.token {
            Some(t) => secret_ref(cx, t, &key("token")),
            None => {
                cx.err(
                    span.clone(),
                    key("token"),
                    "missing: every user needs an API token reference, e.g. token = \"env:ALICE_TOKEN\"",
                );
                None
            }
        };
        let mut login = |field: &'static str, v: &Option<Spanned<String>>| -> Option<String> {
            let v = v.as_ref()?;
            let s = v.get_ref().trim();
            if s.is_empty() || s.chars().any(char::is_whitespace) {
                cx.err(v.span(), key(field), "must be a login without spaces");
                return None;
            }
            if let Some(other) = logins.insert((field, s.to_ascii_lowercase()), name.clone()) {
                cx.err(
                    v.span(),
                    key(field),
                    format!("`{s}` is already the {field} login of user `{other}`: one login is one person"),
                );
            }
            Some(s.to_string())
        };
        let github = login("github", &ru.github);
        let gitlab = login("gitlab", &ru.gitlab);
        let chat = login("chat", &ru.chat);
        let slack = login("slack", &ru.slack);
        if let (Some(id), Some(v)) = (&slack, &ru.slack)
            && !slack_user_id(id)
        {
            cx.err(
                v.span(),
                key("slack"),
                format!(
                    "`{id}` is not a Slack user id: expected `U` or `W` and then capital letters and digits, \
                     e.g. \"U024BE7LH\" (the member id in the Slack profile, not the display name)"
                ),
            );
        }
        let role = ru.role.as_ref().and_then(|r| role_of(cx, r, key("role")));
        let mut grants = BTreeMap::new();
        for (env, r) in &ru.environments {
            let k = format!("user[{name}].environments.{env}");
            if let Some(role) = role_of(cx, r, k.clone()) {
                grants.insert(env.clone(), role);
            }
            if !environments.iter().any(|e| &e.name == env) {
                let known: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
                cx.err(
                    r.span(),
                    k,
                    format!(
                        "unknown environment `{env}` (environments: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
        if ru.role.is_none() && ru.environments.is_empty() {
            cx.err(
                span.clone(),
                key("role"),
                "the user has no role: add role = \"viewer\" (or \"deployer\", \"admin\") or environments = { NAME = \"ROLE\" }",
            );
        }
        if cx.errors.len() > before {
            continue;
        }
        if let Some(token) = token {
            users.push(User {
                name,
                token,
                github,
                gitlab,
                chat,
                slack,
                role,
                environments: grants,
            });
        }
    }
    users
}

/// A Slack user id: `U` or `W` (enterprise grid), then capital letters and digits.
fn slack_user_id(s: &str) -> bool {
    (3..=32).contains(&s.len())
        && s.starts_with(['U', 'W'])
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn role_of(cx: &mut Ctx<'_>, v: &Spanned<String>, key: String) -> Option<Role> {
    let r = Role::parse(v.get_ref());
    if r.is_none() {
        cx.err(
            v.span(),
            key,
            format!(
                "unknown role `{}` (expected `viewer`, `deployer` or `admin`)",
                v.get_ref()
            ),
        );
    }
    r
}

fn valid_user_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

fn validate_server(cx: &mut Ctx<'_>, raw: Option<&RawServer>) -> ServerConfig {
    let mut out = ServerConfig::default();
    let Some(raw) = raw else { return out };
    if let Some(l) = &raw.listen {
        match l.get_ref().parse() {
            Ok(addr) => out.listen = addr,
            Err(_) => cx.err(
                l.span(),
                "server.listen",
                format!("`{}` is not an address: write e.g. \"127.0.0.1:8080\"", l.get_ref()),
            ),
        }
    }
    if let Some(u) = &raw.public_url {
        if !(u.get_ref().starts_with("http://") || u.get_ref().starts_with("https://")) {
            cx.err(u.span(), "server.public_url", "must start with http:// or https://");
        }
        out.public_url = Some(u.get_ref().trim_end_matches('/').to_string());
    }
    out.allow_unsigned_webhooks = raw.allow_unsigned_webhooks;
    if let Some(d) = &raw.database {
        let v = d.get_ref().trim();
        out.database = if let Some(path) = v.strip_prefix("sqlite://").or_else(|| v.strip_prefix("sqlite:")) {
            if path.is_empty() {
                cx.err(
                    d.span(),
                    "server.database",
                    "`sqlite:` needs a path, e.g. \"sqlite:state/greenroom.db\"",
                );
            }
            Some(Database::Sqlite(PathBuf::from(path)))
        } else if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            // A password in the file would be a literal secret: refuse it.
            let authority = v
                .split_once("://")
                .map_or("", |(_, r)| r.split('/').next().unwrap_or(""));
            if authority
                .split_once('@')
                .is_some_and(|(userinfo, _)| userinfo.contains(':'))
            {
                cx.err(
                    d.span(),
                    "server.database",
                    "the URL carries a password: write `database = \"env:NAME\"` (or `file:PATH`) and put the URL there",
                );
                // Do not echo the password.
                if let Some(e) = cx.errors.last_mut() {
                    e.source_line = e.source_line.replace(v, "<redacted>");
                }
            }
            Some(Database::Url(v.to_string()))
        } else if v.starts_with("env:") || v.starts_with("file:") {
            secret_ref(cx, d, "server.database").map(Database::Secret)
        } else {
            cx.err(
                d.span(),
                "server.database",
                format!(
                    "`{v}` is not a database: write \"sqlite:PATH\", \"postgres://HOST/DB\", or \"env:NAME\" holding the URL"
                ),
            );
            None
        };
    }
    out
}

fn validate_suites(
    cx: &mut Ctx<'_>,
    raw: &[Spanned<RawSuite>],
    components: &[String],
    environments: &[Environment],
) -> Vec<Suite> {
    use crate::policy::CycleKind;
    let mut out: Vec<Suite> = Vec::new();
    for rs in raw {
        let rs = rs.get_ref();
        let name = rs.name.get_ref().clone();
        let key = |k: &str| format!("suite[{name}].{k}");
        if !valid_name(&name) {
            cx.err(
                rs.name.span(),
                "suite.name",
                format!("`{name}` is not a valid name: use lowercase letters, digits, `-` and `_`"),
            );
        } else if out.iter().any(|s| s.name == name) {
            cx.err(rs.name.span(), "suite.name", format!("suite `{name}` is defined twice"));
        }
        let tier = match rs.tier.as_ref().map(|t| t.get_ref().as_str()) {
            None | Some("blocking") => Tier::Blocking,
            Some("gate") => Tier::Gate,
            Some("non-blocking") => Tier::NonBlocking,
            Some("quarantine") => Tier::Quarantine,
            Some(other) => {
                if let Some(t) = &rs.tier {
                    cx.err(
                        t.span(),
                        key("tier"),
                        format!("unknown tier `{other}` (expected `blocking`, `gate`, `non-blocking` or `quarantine`)"),
                    );
                }
                Tier::Blocking
            }
        };
        let mut cycles = Vec::new();
        match &rs.cycles {
            None => cycles = vec![CycleKind::Partial, CycleKind::Full],
            Some(list) => {
                for c in list.get_ref() {
                    match c.get_ref().as_str() {
                        "partial" => cycles.push(CycleKind::Partial),
                        "full" => cycles.push(CycleKind::Full),
                        other => cx.err(
                            c.span(),
                            key("cycles"),
                            format!("unknown cycle kind `{other}` (expected `partial` or `full`)"),
                        ),
                    }
                }
            }
        }
        let kind = http_matrix::validate(cx, rs, &name, components);
        let run = match &rs.run {
            _ if kind != SuiteKind::Command => String::new(),
            Some(r) if !r.get_ref().trim().is_empty() => r.get_ref().clone(),
            Some(r) => {
                cx.err(r.span(), key("run"), "must not be empty");
                String::new()
            }
            None => {
                cx.err(
                    rs.name.span(),
                    key("run"),
                    "a suite needs `run` (the command that runs it)",
                );
                String::new()
            }
        };
        let mut paths = Vec::new();
        for p in &rs.paths {
            if let Err(e) = globset::Glob::new(p.get_ref()) {
                cx.err(
                    p.span(),
                    key("paths"),
                    format!("`{}` is not a valid glob: {e}", p.get_ref()),
                );
            }
            paths.push(p.get_ref().clone());
        }
        for c in &rs.components {
            if !components.contains(c.get_ref()) {
                cx.err(
                    c.span(),
                    key("components"),
                    format!(
                        "unknown component `{}` (components: {})",
                        c.get_ref(),
                        components.join(", ")
                    ),
                );
            }
        }
        for e in &rs.environments {
            if !environments.iter().any(|x| &x.name == e.get_ref()) {
                cx.err(
                    e.span(),
                    key("environments"),
                    format!("unknown environment `{}`", e.get_ref()),
                );
            }
        }
        let retries = match &rs.retries {
            None => 0,
            Some(r) => match u32::try_from(*r.get_ref()) {
                Ok(n) if n <= 5 => n,
                _ => {
                    cx.err(r.span(), key("retries"), "must be between 0 and 5");
                    0
                }
            },
        };
        let timeout = cx.duration(&rs.timeout, key("timeout"), DEFAULT_SUITE_TIMEOUT);
        out.push(Suite {
            name: name.clone(),
            tier,
            cycles,
            run,
            paths,
            // A matrix exercises its component: its redeploy selects the suite.
            components: rs
                .components
                .iter()
                .map(|c| c.get_ref().clone())
                .chain(match &kind {
                    SuiteKind::HttpMatrix(m) => match &m.target {
                        crate::matrix::Target::Component(c) if !rs.components.iter().any(|x| x.get_ref() == c) => {
                            Some(c.clone())
                        }
                        _ => None,
                    },
                    SuiteKind::Command => None,
                })
                .collect(),
            kind,
            environments: rs.environments.iter().map(|e| e.get_ref().clone()).collect(),
            timeout,
            retries,
            new_errors: checks::new_errors(cx, &rs.new_errors, key("new_errors")),
        });
    }
    out
}

fn api_url(cx: &mut Ctx<'_>, u: &Spanned<String>, key: &str) -> String {
    let v = u.get_ref().trim().trim_end_matches('/');
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        cx.err(u.span(), key, "must start with http:// or https://");
    }
    v.to_string()
}

fn validate_pending(cx: &mut Ctx<'_>, raw: Option<&RawPending>) -> PendingConfig {
    let mut out = PendingConfig::default();
    let Some(r) = raw else { return out };
    let login = |cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str| -> Option<String> {
        let l = v.get_ref().trim().trim_start_matches('@');
        if l.is_empty()
            || l.len() > 100
            || !l
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            cx.err(v.span(), key, format!("`{}` is not a forge login", v.get_ref()));
            return None;
        }
        Some(l.to_string())
    };
    out.trusted = r
        .trusted
        .iter()
        .filter_map(|v| login(cx, v, "pending.trusted"))
        .collect();
    out.maintainers = r
        .maintainers
        .iter()
        .filter_map(|v| login(cx, v, "pending.maintainers"))
        .collect();
    for (v, slot, key) in [
        (&r.skip_label, &mut out.skip_label, "pending.skip_label"),
        (&r.deploy_label, &mut out.deploy_label, "pending.deploy_label"),
    ] {
        if let Some(v) = v {
            if v.get_ref().trim().is_empty() {
                cx.err(v.span(), key, "a label must not be empty");
            } else {
                *slot = v.get_ref().trim().to_string();
            }
        }
    }
    out.max_age = cx.duration(&r.max_age, "pending.max_age".into(), out.max_age);
    if let Some(o) = &r.order {
        match o.get_ref().as_str() {
            "oldest-first" | "newest-first" | "by-number" => out.order = o.get_ref().clone(),
            other => cx.err(
                o.span(),
                "pending.order",
                format!("unknown order `{other}` (expected `oldest-first`, `newest-first` or `by-number`)"),
            ),
        }
    }
    if let Some(b) = &r.bot
        && let Some(l) = login(cx, b, "pending.bot")
    {
        out.bot = l;
    }
    out.check_permissions = r.check_permissions;
    out.flake_rerun = r.flake_rerun.unwrap_or(out.flake_rerun);
    if let Some(s) = &r.staging_ref {
        let v = s.get_ref().trim();
        if !v.starts_with("refs/") || crate::refname::check(v).is_err() {
            cx.err(
                s.span(),
                "pending.staging_ref",
                format!("`{v}` is not a full ref name (e.g. \"refs/heads/greenroom/staging\")"),
            );
        }
        out.staging_ref = Some(v.to_string());
    }
    if let Some(t) = &r.staging_tags {
        match u32::try_from(*t.get_ref()) {
            Ok(n) if n <= 1000 => out.staging_tags = n,
            _ => cx.err(t.span(), "pending.staging_tags", "must be between 0 and 1000"),
        }
    }
    out
}

fn validate_client(cx: &mut Ctx<'_>, raw: Option<&RawClient>) -> ClientConfig {
    let mut out = ClientConfig::default();
    let Some(raw) = raw else { return out };
    if let Some(u) = &raw.server {
        let v = u.get_ref().trim().trim_end_matches('/');
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            cx.err(u.span(), "client.server", "must start with http:// or https://");
        }
        out.server = Some(v.to_string());
    }
    if let Some(t) = &raw.token {
        out.token = secret_ref(cx, t, "client.token");
    }
    out
}

fn validate_retention(cx: &mut Ctx<'_>, raw: Option<&RawRetention>) -> Retention {
    let d = Retention::default();
    let Some(r) = raw else { return d };
    let keep_cycles = match &r.keep_cycles {
        None => d.keep_cycles,
        Some(k) => match u32::try_from(*k.get_ref()) {
            Ok(n) => n,
            Err(_) => {
                cx.err(
                    k.span(),
                    "retention.keep_cycles",
                    "must be a number of cycles, 0 or more",
                );
                d.keep_cycles
            }
        },
    };
    let build_cache_size = match &r.build_cache_size {
        None => d.build_cache_size,
        Some(s) => match parse_size(s.get_ref()) {
            Some(n) => n,
            None => {
                cx.err(
                    s.span(),
                    "retention.build_cache_size",
                    format!("`{}` is not a size: write e.g. \"20GiB\", \"500MB\"", s.get_ref()),
                );
                d.build_cache_size
            }
        },
    };
    Retention {
        cycles: cx.duration(&r.cycles, "retention.cycles".into(), d.cycles),
        keep_cycles,
        events: cx.duration(&r.events, "retention.events".into(), d.events),
        builds: cx.duration(&r.builds, "retention.builds".into(), d.builds),
        build_cache_size,
        logs: cx.duration(&r.logs, "retention.logs".into(), d.logs),
        interval: cx.duration(&r.interval, "retention.interval".into(), d.interval),
    }
}

/// `owner/name` of a repository URL on `host` (https, ssh or scp-like).
fn forge_path(url: &str, host: &str) -> Option<String> {
    let rest = url
        .strip_prefix(&format!("https://{host}/"))
        .or_else(|| url.strip_prefix(&format!("http://{host}/")))
        .or_else(|| url.strip_prefix(&format!("ssh://git@{host}/")))
        .or_else(|| url.strip_prefix(&format!("git@{host}:")))?;
    let path = rest.trim_end_matches('/').trim_end_matches(".git");
    (path.contains('/') && !path.is_empty()).then(|| path.to_string())
}

/// `git@host:path` style remote.
fn is_scp_like(v: &str) -> bool {
    match v.split_once(':') {
        Some((host, _)) => host.contains('@') && !host.contains('/'),
        None => false,
    }
}

fn validate_environment(
    cx: &mut Ctx<'_>,
    re: &RawEnvironment,
    components: &[Component],
    all_names: &[String],
    seen: &mut BTreeSet<String>,
) -> Option<Environment> {
    let name = re.name.get_ref().clone();
    let key = |k: &str| format!("environment[{name}].{k}");
    let before = cx.errors.len();
    if !valid_name(&name) {
        cx.err(
            re.name.span(),
            "environment.name",
            format!("`{name}` is not a valid name: use lowercase letters, digits, `-` and `_`"),
        );
    } else if !seen.insert(name.clone()) {
        cx.err(
            re.name.span(),
            "environment.name",
            format!("environment `{name}` is defined twice"),
        );
    }
    let driver = match &re.driver {
        None => DriverKind::Process,
        Some(d) => match d.get_ref().as_str() {
            "process" => DriverKind::Process,
            "command" => DriverKind::Command,
            other => {
                cx.err(
                    d.span(),
                    key("driver"),
                    format!("unknown driver `{other}` (expected `process` or `command`)"),
                );
                DriverKind::Process
            }
        },
    };
    let members: Vec<String> = match &re.components {
        None => all_names.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for c in list {
                if !all_names.contains(c.get_ref()) {
                    cx.err(
                        c.span(),
                        key("components"),
                        format!(
                            "unknown component `{}` (components: {})",
                            c.get_ref(),
                            all_names.join(", ")
                        ),
                    );
                } else if out.contains(c.get_ref()) {
                    cx.err(
                        c.span(),
                        key("components"),
                        format!("`{}` is listed twice", c.get_ref()),
                    );
                } else {
                    out.push(c.get_ref().clone());
                }
            }
            out
        }
    };
    let members_span = re
        .components
        .as_ref()
        .and_then(|l| l.first().map(|c| c.span()))
        .unwrap_or(re.name.span());
    for m in &members {
        let Some(c) = components.iter().find(|c| &c.name == m) else {
            continue;
        };
        for dep in &c.depends_on {
            if !members.contains(dep) {
                cx.err(
                    members_span.clone(),
                    key("components"),
                    format!("`{m}` depends on `{dep}`, which is not in this environment"),
                );
            }
        }
        match driver {
            DriverKind::Process if c.run.is_none() => {
                cx.err(
                    members_span.clone(),
                    key("components"),
                    format!("component `{m}` has no `run` command, which the process driver needs"),
                );
            }
            DriverKind::Command if c.deploy.is_none() || c.stop.is_none() => {
                cx.err(
                    members_span.clone(),
                    key("components"),
                    format!("component `{m}` needs `deploy` and `stop` commands for the command driver"),
                );
            }
            _ => {}
        }
    }
    let lease_ttl = cx.duration(&re.lease_ttl, key("lease_ttl"), DEFAULT_LEASE_TTL);
    let slots = match &re.slots {
        Some(s) if *s.get_ref() == 0 || *s.get_ref() > 1000 => {
            cx.err(s.span(), key("slots"), "must be between 1 and 1000");
            None
        }
        Some(s) => Some(*s.get_ref()),
        None => None,
    };
    let mut vars = BTreeMap::new();
    for (k, v) in &re.vars {
        if !valid_var_name(k) {
            cx.err(
                v.span(),
                key("vars"),
                format!("`{k}` is not a valid environment variable name"),
            );
            continue;
        }
        if k.starts_with("GREENROOM_") || k == "PORT" {
            cx.err(
                v.span(),
                key("vars"),
                format!("`{k}` is set by greenroom itself; choose another name"),
            );
            continue;
        }
        let value = match SecretRef::parse(v.get_ref()) {
            Some(Ok(s)) => VarValue::Secret(s),
            Some(Err(e)) => {
                cx.err(v.span(), format!("{}.{k}", key("vars")), e);
                continue;
            }
            None => {
                for p in template::unknown_placeholders(v.get_ref(), VAR_PLACEHOLDERS) {
                    cx.err(
                        v.span(),
                        format!("{}.{k}", key("vars")),
                        format!("unknown placeholder `{{{p}}}` (known: {})", VAR_PLACEHOLDERS.join(", ")),
                    );
                }
                VarValue::Literal(v.get_ref().clone())
            }
        };
        vars.insert(k.clone(), value);
    }
    let follows = match &re.follows {
        None => Follows::Channel,
        Some(f) => match f.get_ref().as_str() {
            "channel" => Follows::Channel,
            "pending" => Follows::Pending,
            "manual" => Follows::Manual,
            other => {
                cx.err(
                    f.span(),
                    key("follows"),
                    format!("unknown value `{other}` (expected `channel`, `pending` or `manual`)"),
                );
                Follows::Channel
            }
        },
    };
    let drain_timeout = cx.duration(&re.drain_timeout, key("drain_timeout"), Duration::from_secs(600));
    let mut rollback_order: Vec<String> = Vec::new();
    for c in &re.rollback_order {
        if !members.contains(c.get_ref()) {
            cx.err(
                c.span(),
                key("rollback_order"),
                format!("`{}` is not a component of this environment", c.get_ref()),
            );
        } else if rollback_order.contains(c.get_ref()) {
            cx.err(
                c.span(),
                key("rollback_order"),
                format!("`{}` is listed twice", c.get_ref()),
            );
        } else {
            rollback_order.push(c.get_ref().clone());
        }
    }
    let stages = stage::validate(cx, &name, &re.stage).unwrap_or_default();
    let new_errors = checks::new_errors(cx, &re.new_errors, key("new_errors"));
    let block_on_alerts = blockers::validate_matchers(cx, &name, &re.block_on_alerts);
    let profile = match &re.profile {
        Some(p) => profile::validate(cx, &name, p, slots.is_some(), &members),
        None => None,
    };
    let fleet = fleet::validate(cx, &name, driver, re, &members);
    if cx.errors.len() > before {
        return None;
    }
    Some(Environment {
        name,
        components: members,
        driver,
        lease_ttl,
        slots,
        vars,
        follows,
        drain: re.drain.clone().filter(|d| !d.trim().is_empty()),
        drain_timeout,
        rollback_order,
        stages,
        new_errors,
        block_on_alerts,
        profile,
        auto_rollback: re.auto_rollback,
        promote_to: None,
        promote_after: Duration::ZERO,
        fleet,
    })
}

/// A dependency cycle among components, as a path `a -> b -> a`, if any.
fn dependency_cycle(components: &[Component]) -> Option<Vec<String>> {
    fn visit<'a>(
        n: &'a str,
        components: &'a [Component],
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n, 1);
        stack.push(n);
        if let Some(c) = components.iter().find(|c| c.name == n) {
            for d in &c.depends_on {
                if let Some(cycle) = visit(d, components, state, stack) {
                    return Some(cycle);
                }
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for c in components {
        if let Some(cycle) = visit(&c.name, components, &mut state, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod policy_tests {
    //! The `[policy]` table: defaults, human durations, located errors.

    use super::*;

    fn parse_text(text: &str) -> Result<Config, ConfigErrors> {
        parse(text, Path::new("greenroom.toml"), Path::new("/cfg"))
    }

    #[test]
    fn policy_defaults_to_seed_002_when_absent() {
        let c = parse_text("").expect("empty config is valid");
        assert_eq!(c.policy, PolicyConfig::default());
        assert_eq!(c.policy.full_interval, Duration::from_secs(6 * 3600));
        assert_eq!(c.policy.cooldown, Duration::from_secs(30 * 60));
    }

    #[test]
    fn policy_values_are_human_durations_and_zero_settle_is_allowed() {
        let c = parse_text(
            "[policy]\nfull_interval = \"4h\"\npoll_interval = \"15m\"\nmax_restarts = 0\ncooldown = \"10m\"\nsettle = \"0s\"\ndrain_timeout = \"2m\"\n",
        )
        .expect("valid policy");
        assert_eq!(
            c.policy,
            PolicyConfig {
                full_interval: Duration::from_secs(4 * 3600),
                poll_interval: Duration::from_secs(15 * 60),
                max_restarts: 0,
                cooldown: Duration::from_secs(600),
                settle: Duration::ZERO,
                drain_timeout: Duration::from_secs(120),
                ..PolicyConfig::default()
            }
        );
    }

    #[test]
    fn bad_policy_values() {
        let e = parse_text(
            "[policy]\nfull_interval = \"six hours\"\npoll_interval = \"0s\"\nmax_restarts = -1\ncooldown = \"30m\"\n",
        )
        .expect_err("bad policy");
        insta::assert_snapshot!(e.to_string());
    }

    #[test]
    fn infrastructure_retries() {
        let c = parse_text("[policy]\nretry_backoff = \"30s\"\nretry_attempts = 0\n").expect("valid");
        assert_eq!(c.policy.retry_backoff, Duration::from_secs(30));
        assert_eq!(c.policy.retry_attempts, 0);
        let e = parse_text("[policy]\nretry_attempts = 99\nretry_backoff = \"0s\"\n").expect_err("out of range");
        let text = e.to_string();
        assert!(
            text.contains("policy.retry_attempts") && text.contains("between 0 and 20"),
            "{text}"
        );
        assert!(text.contains("policy.retry_backoff"), "{text}");
    }

    #[test]
    fn unknown_policy_key() {
        let e = parse_text("[policy]\nsettle_time = \"5m\"\n").expect_err("unknown key");
        insta::assert_snapshot!(e.to_string());
    }
}
