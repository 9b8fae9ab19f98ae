//! Config validation: every message names file, line, column and key.
//! Messages are what users read, so they are snapshot-tested.

use super::*;

fn errors(text: &str) -> String {
    match parse(text, Path::new("greenroom.toml"), Path::new("/cfg")) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn ok(text: &str) -> Config {
    match parse(text, Path::new("greenroom.toml"), Path::new("/cfg")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

const GOOD: &str = r#"
state_dir = "state"

[[component]]
name = "ogr"
repo = "repos/ogr"
channels = { stg = "main", prod = "tag:v*" }
build = "make"
run = "./serve --port $PORT"
health = "http://127.0.0.1:{port}/healthz"
health_timeout = "30s"
paths = ["ogr/**"]
url = "http://127.0.0.1:{port}/"

[[component]]
name = "packit-service"
repo = "https://github.com/packit/packit-service.git"
forge = "github"
channels = { stg = "image:stg", prod = "image:prod" }
image = "quay.io/packit/packit-service"
run = "serve"
depends_on = ["ogr"]

[[environment]]
name = "staging"
lease_ttl = "2h"

[[environment]]
name = "dev"
slots = 3
components = ["ogr"]
[environment.vars]
BOT = "bot-{slot}"
TOKEN = "env:DEV_TOKEN"
"#;

#[test]
fn a_good_config_loads() {
    let c = ok(GOOD);
    assert_eq!(c.state_dir, Path::new("/cfg/state"));
    assert_eq!(c.components.len(), 2);
    let ogr = c.component("ogr").expect("ogr");
    assert_eq!(ogr.repo.as_deref(), Some("/cfg/repos/ogr"));
    assert_eq!(ogr.channels["prod"], ChannelSource::TagPattern("v*".into()));
    assert_eq!(ogr.health, Some(Health::Http("http://127.0.0.1:{port}/healthz".into())));
    assert_eq!(ogr.health_timeout, Duration::from_secs(30));
    let ps = c.component("packit-service").expect("packit-service");
    assert_eq!(ps.channels["stg"], ChannelSource::Image("stg".into()));
    assert_eq!(ps.repo.as_deref(), Some("https://github.com/packit/packit-service.git"));
    let staging = c.environment("staging").expect("staging");
    assert_eq!(staging.components, vec!["ogr", "packit-service"]);
    assert_eq!(staging.lease_ttl, Duration::from_secs(7200));
    let dev = c.environment("dev").expect("dev");
    assert_eq!(dev.vars["TOKEN"], VarValue::Secret(SecretRef::Env("DEV_TOKEN".into())));
    let names: Vec<_> = c
        .lookup_instances("dev")
        .expect("dev")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["dev-1", "dev-2", "dev-3"]);
    assert_eq!(c.lookup_instances("dev-2").expect("dev-2")[0].slot, Some(2));
    assert!(c.lookup_instances("nope").is_err());
}

#[test]
fn unknown_key() {
    insta::assert_snapshot!(errors(
        "[[component]]\nname = \"a\"\nrepo = \"r\"\nrun = \"x\"\nbuidl = \"make\"\n"
    ));
}

#[test]
fn unknown_top_level_key() {
    insta::assert_snapshot!(errors("statedir = \"x\"\n"));
}

#[test]
fn syntax_error() {
    insta::assert_snapshot!(errors("[[component]]\nname = \"a\nrepo = \"r\"\n"));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(errors("[[environment]]\nname = \"dev\"\nslots = \"three\"\n"));
}

#[test]
fn bad_duration_and_bad_names() {
    insta::assert_snapshot!(errors(
        r#"
[[component]]
name = "API"
repo = "r"
run = "x"

[[component]]
name = "db"
repo = "r"
run = "x"
health_timeout = "soon"
channels = { stg = "fix..me", prod = "image:prod" }
"#
    ));
}

#[test]
fn unknown_dependency_and_cycle() {
    insta::assert_snapshot!(errors(
        r#"
[[component]]
name = "a"
repo = "r"
run = "x"
depends_on = ["b"]

[[component]]
name = "b"
repo = "r"
run = "x"
depends_on = ["a", "ghost"]
"#
    ));
}

#[test]
fn environment_problems() {
    insta::assert_snapshot!(errors(
        r#"
[[component]]
name = "a"
repo = "r"

[[component]]
name = "b"
repo = "r"
run = "x"
depends_on = ["a"]

[[environment]]
name = "staging"
components = ["b", "zzz"]
driver = "kubernetes"

[[environment]]
name = "cmd"
driver = "command"
components = ["a"]
[environment.vars]
PORT = "1"
SECRET = "env:"
X = "{slotz}"
"#
    ));
}

#[test]
fn duplicate_names_and_missing_source() {
    insta::assert_snapshot!(errors(
        r#"
[[component]]
name = "a"
repo = "r"
run = "x"

[[component]]
name = "a"
run = "x"
"#
    ));
}

#[test]
fn defaults_apply() {
    let c = ok("[[component]]\nname = \"a\"\nrepo = \"r\"\nrun = \"x\"\n[[environment]]\nname = \"s\"\n");
    let a = c.component("a").expect("a");
    assert_eq!(a.channels["stg"], ChannelSource::Branch("main".into()));
    assert_eq!(a.forge, Forge::Github);
    assert_eq!(a.health_timeout, DEFAULT_HEALTH_TIMEOUT);
    assert_eq!(c.environments[0].driver, DriverKind::Process);
    assert_eq!(c.environments[0].lease_ttl, DEFAULT_LEASE_TTL);
    assert_eq!(c.port_base, DEFAULT_PORT_BASE);
    assert_eq!(c.state_dir, Path::new("/cfg/.greenroom"));
}

#[test]
fn remote_urls_are_not_made_relative() {
    let c = ok("[[component]]\nname = \"a\"\nrepo = \"git@github.com:packit/ogr.git\"\nrun = \"x\"\n");
    assert_eq!(c.components[0].repo.as_deref(), Some("git@github.com:packit/ogr.git"));
}

#[test]
fn server_webhooks_and_forge_identities() {
    let c = ok(r#"
[server]
listen = "127.0.0.1:9090"
public_url = "https://greenroom.example.com/"

[github]
webhook_secret = "env:GH_SECRET"

[package]
webhook_secret = "file:secrets/package"

[[component]]
name = "ogr"
repo = "https://github.com/packit/ogr.git"
run = "x"

[[component]]
name = "api"
repo = "git@gitlab.com:group/sub/api.git"
github = "packit/api-mirror"
run = "x"

[[environment]]
name = "staging"
follows = "pending"
drain = "./drain.sh"
drain_timeout = "5m"
"#);
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(c.server.public_url.as_deref(), Some("https://greenroom.example.com"));
    assert_eq!(c.webhooks.github, Some(SecretRef::Env("GH_SECRET".into())));
    assert_eq!(c.webhooks.package, Some(SecretRef::File("/cfg/secrets/package".into())));
    assert_eq!(
        c.component("ogr").and_then(|o| o.github.clone()).as_deref(),
        Some("packit/ogr")
    );
    let api = c.component("api").expect("api");
    assert_eq!(api.gitlab.as_deref(), Some("group/sub/api"));
    assert_eq!(api.github.as_deref(), Some("packit/api-mirror"));
    let env = c.environment("staging").expect("staging");
    assert_eq!(env.follows, Follows::Pending);
    assert_eq!(env.drain_timeout, Duration::from_secs(300));
}

#[test]
fn server_problems() {
    insta::assert_snapshot!(errors(
        r#"
[server]
listen = "everywhere"

[github]
webhook_secret = "hunter2"

[[component]]
name = "a"
repo = "r"
run = "x"
github = "just-a-name"

[[environment]]
name = "s"
follows = "everything"
"#
    ));
}

#[test]
fn users_load_with_global_and_per_environment_roles() {
    let text = format!(
        "{GOOD}\n{}",
        r#"
[[user]]
name = "alice"
token = "env:ALICE_TOKEN"
github = "alice-gh"
gitlab = "alice-gl"
chat = "@alice:matrix.org"
role = "admin"

[[user]]
name = "bob"
token = "file:/run/secrets/bob"
role = "viewer"
environments = { staging = "deployer" }

[[user]]
name = "vic"
token = "env:VIC_TOKEN"
environments = { dev = "viewer" }
"#
    );
    let c = ok(&text);
    assert_eq!(c.users.len(), 3);
    let alice = &c.users[0];
    assert_eq!(alice.token, SecretRef::Env("ALICE_TOKEN".into()));
    assert_eq!(alice.github.as_deref(), Some("alice-gh"));
    assert_eq!(alice.gitlab.as_deref(), Some("alice-gl"));
    assert_eq!(alice.chat.as_deref(), Some("@alice:matrix.org"));
    assert_eq!(alice.role_on("staging"), Some(Role::Admin));
    let bob = &c.users[1];
    assert_eq!(bob.token, SecretRef::File("/run/secrets/bob".into()));
    assert_eq!(bob.role_on("staging"), Some(Role::Deployer));
    assert_eq!(bob.role_on("dev"), Some(Role::Viewer));
    assert_eq!(bob.highest_role(), Some(Role::Deployer));
    let vic = &c.users[2];
    assert_eq!(vic.role_on("dev"), Some(Role::Viewer));
    assert_eq!(vic.role_on("staging"), None);
    assert!(Role::Viewer < Role::Deployer && Role::Deployer < Role::Admin);
    assert!(ok(GOOD).users.is_empty());
}

#[test]
fn user_problems() {
    insta::assert_snapshot!(errors(
        r#"
[[environment]]
name = "staging"

[[user]]
name = "alice"
token = "s3cr3t-literal"
role = "root"
github = "al"

[[user]]
name = "alice"
token = "env:BOB"
github = "AL"
environments = { prod = "admin", staging = "boss" }

[[user]]
name = "nobody"
token = "env:NOBODY"

[[user]]
name = "has space"
role = "viewer"
"#
    ));
}

#[test]
fn client_retention_and_database_load() {
    let c = ok(r#"
[server]
database = "sqlite:db/greenroom.db"

[client]
server = "http://127.0.0.1:8080/"
token = "env:GREENROOM_TOKEN"

[retention]
cycles = "30d"
keep_cycles = 50
events = "7d"
builds = "3d"
build_cache_size = "1.5GiB"
logs = "10d"
interval = "15m"

[[component]]
name = "a"
repo = "r"
run = "x"

[[environment]]
name = "s"
"#);
    assert_eq!(
        c.server.database,
        Some(Database::Sqlite(PathBuf::from("/cfg/db/greenroom.db")))
    );
    assert_eq!(c.client.server.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(c.client.token, Some(SecretRef::Env("GREENROOM_TOKEN".into())));
    assert_eq!(c.retention.keep_cycles, 50);
    assert_eq!(c.retention.cycles, Duration::from_secs(30 * 86_400));
    assert_eq!(c.retention.build_cache_size, 1_610_612_736);
    assert_eq!(c.retention.interval, Duration::from_secs(900));
    let d = ok("[[component]]\nname = \"a\"\nrepo = \"r\"\nrun = \"x\"\n[[environment]]\nname = \"s\"\n");
    assert_eq!(d.retention, Retention::default());
    assert_eq!((d.client.server, d.server.database), (None, None));
    let pg = ok(
        "[server]\ndatabase = \"postgres://greenroom@127.0.0.1/greenroom\"\n[[component]]\nname = \"a\"\nrepo = \"r\"\nrun = \"x\"\n[[environment]]\nname = \"s\"\n",
    );
    assert_eq!(
        pg.server.database,
        Some(Database::Url("postgres://greenroom@127.0.0.1/greenroom".into()))
    );
}

#[test]
fn client_retention_and_database_problems() {
    let e = errors(
        r#"
[server]
database = "postgres://greenroom:hunter2@db/greenroom"

[client]
server = "localhost:8080"
token = "s3cr3t-token"

[retention]
keep_cycles = -1
build_cache_size = "lots"
logs = "forever"

[[component]]
name = "a"
repo = "r"
run = "x"

[[environment]]
name = "s"
"#,
    );
    assert!(
        !e.contains("hunter2") && !e.contains("s3cr3t-token"),
        "secrets echoed:\n{e}"
    );
    insta::assert_snapshot!(e);
}

#[test]
fn sizes_parse_like_people_write_them() {
    assert_eq!(parse_size("4096"), Some(4096));
    assert_eq!(parse_size("20GiB"), Some(20 * 1024 * 1024 * 1024));
    assert_eq!(parse_size("500MB"), Some(500_000_000));
    assert_eq!(parse_size("1.5 g"), Some(1_500_000_000));
    assert_eq!(parse_size("lots"), None);
    assert_eq!(parse_size("-1G"), None);
}

#[test]
fn pending_forges_and_git_forge_load() {
    let c = ok(r#"
[pending]
trusted = ["alice-gh", "@bob"]
maintainers = ["carol"]
skip_label = "no-staging"
max_age = "7d"
order = "by-number"
bot = "stagebot"
check_permissions = true
staging_ref = "refs/heads/greenroom/staging"
staging_tags = 5

[github]
token = "env:GITHUB_TOKEN"
api_url = "http://127.0.0.1:9999/"

[gitlab]
token = "file:secrets/gitlab"

[[component]]
name = "a"
repo = "r"
run = "x"
forge = "git"
pending_refs = "refs/heads/pr/*"

[[component]]
name = "b"
repo = "r2"
run = "x"
forge = "git"

[[environment]]
name = "s"
follows = "pending"
"#);
    assert_eq!(c.pending.trusted, vec!["alice-gh", "bob"]);
    assert_eq!(c.pending.maintainers, vec!["carol"]);
    assert_eq!(c.pending.skip_label, "no-staging");
    assert_eq!(c.pending.deploy_label, "staging-deploy");
    assert_eq!(c.pending.max_age, Duration::from_secs(7 * 86_400));
    assert_eq!(
        (c.pending.order.as_str(), c.pending.bot.as_str()),
        ("by-number", "stagebot")
    );
    assert!(c.pending.check_permissions);
    assert_eq!(c.pending.staging_ref.as_deref(), Some("refs/heads/greenroom/staging"));
    assert_eq!(c.pending.staging_tags, 5);
    assert_eq!(c.forges.github.api_url, "http://127.0.0.1:9999");
    assert_eq!(c.forges.github.token, Some(SecretRef::Env("GITHUB_TOKEN".into())));
    assert_eq!(c.forges.gitlab.api_url, "https://gitlab.com/api/v4");
    assert_eq!(
        c.forges.gitlab.token,
        Some(SecretRef::File(PathBuf::from("/cfg/secrets/gitlab")))
    );
    assert_eq!(c.components[0].forge, Forge::Git);
    assert_eq!(c.components[0].pending_refs.as_deref(), Some("refs/heads/pr/*"));
    assert_eq!(c.components[1].pending_refs.as_deref(), Some("refs/pending/*"));
    let d = ok("[[component]]\nname = \"a\"\nrepo = \"r\"\nrun = \"x\"\n[[environment]]\nname = \"s\"\n");
    assert_eq!(d.pending, PendingConfig::default());
    assert_eq!(d.pending.bot, "greenroom");
}

#[test]
fn pending_and_forge_problems() {
    let e = errors(
        r#"
[pending]
trusted = ["ok", "not a login"]
order = "random"
staging_ref = "staging"
staging_tags = -3

[github]
token = "ghp_literal_token_value"
api_url = "api.github.com"

[[component]]
name = "a"
repo = "r"
run = "x"
pending_refs = "refs/pending/*"

[[component]]
name = "b"
repo = "r"
run = "x"
forge = "git"
pending_refs = "pending"

[[environment]]
name = "s"
"#,
    );
    assert!(!e.contains("ghp_literal_token_value"), "a token was echoed:\n{e}");
    insta::assert_snapshot!(e);
}

#[test]
fn suites_load_with_defaults_and_their_problems_are_located() {
    let c = ok(r#"
[[component]]
name = "a"
repo = "r"
run = "x"

[[environment]]
name = "s"

[[suite]]
name = "smoke"
run = "./smoke.sh"

[[suite]]
name = "api-matrix"
tier = "gate"
cycles = ["full"]
paths = ["api/**"]
components = ["a"]
environments = ["s"]
timeout = "10m"
retries = 2
run = "./api.sh"
"#);
    assert_eq!(c.suites.len(), 2);
    let smoke = &c.suites[0];
    assert_eq!(smoke.tier, Tier::Blocking);
    assert_eq!(
        smoke.cycles,
        vec![crate::policy::CycleKind::Partial, crate::policy::CycleKind::Full]
    );
    assert_eq!((smoke.timeout, smoke.retries), (DEFAULT_SUITE_TIMEOUT, 0));
    let api = &c.suites[1];
    assert_eq!((api.tier, api.retries), (Tier::Gate, 2));
    assert_eq!(api.cycles, vec![crate::policy::CycleKind::Full]);
    assert_eq!(api.components, vec!["a"]);
    insta::assert_snapshot!(errors(
        r#"
[[component]]
name = "a"
repo = "r"
run = "x"

[[environment]]
name = "s"

[[suite]]
name = "smoke"
tier = "must-pass"
cycles = ["nightly"]
components = ["b"]
environments = ["prod"]
retries = 9
paths = ["[unclosed"]

[[suite]]
name = "smoke"
run = ""
"#
    ));
}
