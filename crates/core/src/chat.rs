//! Chat commands (`/greenroom deploy staging ogr=123` in Slack), as pure data.
//!
//! Owns: the grammar of the text after the slash command ([`parse`]), the
//! role each command needs ([`ChatCommand::needs`], the API's permission
//! model), the help text ([`help_text`]) and the wording of every parse
//! error, each with the command's usage ([`ChatError`]). Must never do I/O
//! or read a clock, and never panic on any text (property-tested).
//!
//! The grammar, one command per message, words separated by whitespace:
//!
//! ```text
//! deploy ENV [--base CHANNEL] [COMPONENT=REF ...]
//! rollback ENV [--to MANIFEST|previous|VERSION]
//! pause ENV [REASON ...]
//! resume ENV
//! status [ENV]
//! lease ENV [TTL] [REASON ...]
//! release ENV
//! help
//! ```
//!
//! Command words are compared without regard to ASCII case; an empty text is
//! `help`. `COMPONENT=REF` is the CLI's composition grammar
//! ([`crate::compose::parse_override`]), checked here so that a typo is
//! answered before anything runs. A TTL is a human duration (`30m`, `2h`).

use crate::command::{MAX_REASON_CHARS, code_span};
use crate::compose;
use crate::config::Role;
use std::fmt;
use std::time::Duration;

/// Most `COMPONENT=REF` overrides one `deploy` takes.
pub const MAX_OVERRIDES: usize = 50;
/// Shortest lease a `lease` asks for.
const MIN_TTL: Duration = Duration::from_secs(60);
/// Longest environment name accepted, in characters.
const MAX_ENV_CHARS: usize = 64;

/// One chat command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// Deploy a composition onto an environment (as the CLI's `deploy`).
    Deploy {
        /// Environment, slot or pool.
        env: String,
        /// `--base`: the channel of components not overridden (`stg` when absent).
        base: Option<String>,
        /// `COMPONENT=REF` as typed, each already checked by [`compose::parse_override`].
        overrides: Vec<String>,
    },
    /// Redeploy a recorded manifest (`crate::rollback` in the binary; locks continuous deployment).
    Rollback {
        /// Environment.
        env: String,
        /// `--to`: a manifest, `previous` or a version.
        to: Option<String>,
    },
    /// Pause the scheduled cycles of an environment.
    Pause {
        /// Environment.
        env: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// Resume them.
    Resume {
        /// Environment.
        env: String,
    },
    /// What runs where.
    Status {
        /// One environment, or every one the user may view.
        env: Option<String>,
    },
    /// Take (or extend) the environment's lease.
    Lease {
        /// Environment, slot or pool.
        env: String,
        /// How long; the environment's `lease_ttl` when absent.
        ttl: Option<Duration>,
        /// Why, if given.
        reason: Option<String>,
    },
    /// Release one's own lease.
    Release {
        /// Environment, slot or pool.
        env: String,
    },
    /// The help text.
    Help,
}

impl ChatCommand {
    /// The command word.
    pub fn name(&self) -> &'static str {
        match self {
            ChatCommand::Deploy { .. } => "deploy",
            ChatCommand::Rollback { .. } => "rollback",
            ChatCommand::Pause { .. } => "pause",
            ChatCommand::Resume { .. } => "resume",
            ChatCommand::Status { .. } => "status",
            ChatCommand::Lease { .. } => "lease",
            ChatCommand::Release { .. } => "release",
            ChatCommand::Help => "help",
        }
    }

    /// The environment it concerns, if any.
    pub fn env(&self) -> Option<&str> {
        match self {
            ChatCommand::Deploy { env, .. }
            | ChatCommand::Rollback { env, .. }
            | ChatCommand::Pause { env, .. }
            | ChatCommand::Resume { env }
            | ChatCommand::Lease { env, .. }
            | ChatCommand::Release { env } => Some(env),
            ChatCommand::Status { env } => env.as_deref(),
            ChatCommand::Help => None,
        }
    }

    /// The role it needs on its environment, as the REST API asks for the
    /// same action: viewer to read, deployer to deploy, lease, release one's
    /// own lease, pause and resume (and to roll back, once it exists).
    /// `None`: anyone known may use it (`help`).
    pub fn needs(&self) -> Option<Role> {
        match self {
            ChatCommand::Help => None,
            ChatCommand::Status { .. } => Some(Role::Viewer),
            ChatCommand::Deploy { .. }
            | ChatCommand::Rollback { .. }
            | ChatCommand::Pause { .. }
            | ChatCommand::Resume { .. }
            | ChatCommand::Lease { .. }
            | ChatCommand::Release { .. } => Some(Role::Deployer),
        }
    }

    /// Whether it changes anything (recorded as a decision when it does).
    pub fn changes_state(&self) -> bool {
        !matches!(self, ChatCommand::Help | ChatCommand::Status { .. })
    }
}

/// The canonical text, which [`parse`] reads back to the same command:
/// `deploy staging --base prod ogr=123`, `lease dev 2h trying a fix`.
impl fmt::Display for ChatCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Some(env) = self.env() {
            write!(f, " {env}")?;
        }
        match self {
            ChatCommand::Deploy { base, overrides, .. } => {
                if let Some(b) = base {
                    write!(f, " --base {b}")?;
                }
                for o in overrides {
                    write!(f, " {o}")?;
                }
            }
            ChatCommand::Rollback { to: Some(to), .. } => write!(f, " --to {to}")?,
            ChatCommand::Lease { ttl, reason, .. } => {
                if let Some(t) = ttl {
                    let secs = t.as_secs();
                    if secs % 3600 == 0 {
                        write!(f, " {}h", secs / 3600)?;
                    } else if secs % 60 == 0 {
                        write!(f, " {}m", secs / 60)?;
                    } else {
                        write!(f, " {secs}s")?;
                    }
                }
                if let Some(r) = reason {
                    write!(f, " {r}")?;
                }
            }
            ChatCommand::Pause { reason: Some(r), .. } => write!(f, " {r}")?,
            _ => {}
        }
        Ok(())
    }
}

/// Why a text is no command: what was wrong, and the usage to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatError {
    /// What was wrong (Slack mrkdwn; user text quoted with [`code_span`]).
    pub message: String,
    /// The usage of the command concerned (without the slash command);
    /// `None` for an unknown command word (show the [`help_text`]).
    pub usage: Option<&'static str>,
}

impl ChatError {
    /// The answer to post: the message, then the usage with the slash
    /// command as invoked (`/greenroom`), or the help text.
    pub fn render(&self, slash: &str) -> String {
        match self.usage {
            Some(u) => format!("{}\nUsage: `{} {u}`", self.message, slash_name(slash)),
            None => format!("{}\n\n{}", self.message, help_text(slash)),
        }
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(u) = self.usage {
            write!(f, " (usage: {u})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ChatError {}

/// Usage lines, without the slash command.
const USAGE: [(&str, &str, &str); 8] = [
    (
        "deploy",
        "deploy ENV [--base stg|prod] [COMPONENT=REF ...]",
        "Deploy onto ENV: each COMPONENT=REF as in the CLI (`ogr=123`, `api=branch:fix`, `db=tag:v2`), the rest from the base channel.",
    ),
    (
        "rollback",
        "rollback ENV [--to MANIFEST|previous|VERSION]",
        "Not available yet: greenroom cannot roll back yet.",
    ),
    (
        "pause",
        "pause ENV [REASON]",
        "Pause the scheduled cycles of ENV (triggers are kept for later).",
    ),
    ("resume", "resume ENV", "Resume the scheduled cycles of ENV."),
    (
        "status",
        "status [ENV]",
        "What runs on ENV (or everywhere you may look): manifest, lease, last cycle, pause.",
    ),
    (
        "lease",
        "lease ENV [TTL] [REASON]",
        "Take ENV for yourself for TTL (`30m`, `2h`; the environment's lease time by default).",
    ),
    ("release", "release ENV", "Give back your lease of ENV."),
    ("help", "help", "Show this help."),
];

fn usage(word: &str) -> &'static str {
    USAGE
        .iter()
        .find(|(w, _, _)| *w == word)
        .map(|(_, u, _)| *u)
        .unwrap_or("help")
}

/// The slash command's name with its `/`, `/greenroom` when blank.
fn slash_name(slash: &str) -> String {
    let s = slash.trim();
    match s {
        "" => "/greenroom".to_string(),
        s if s.starts_with('/') => s.to_string(),
        s => format!("/{s}"),
    }
}

/// The answer to `help` (Slack mrkdwn): every command, what it does and
/// which role it needs. `slash` is the command as invoked (`/greenroom`).
pub fn help_text(slash: &str) -> String {
    let slash = slash_name(slash);
    let mut out = format!("*{slash} commands*\n");
    for (word, usage, what) in USAGE {
        let who = match word {
            "help" => "anyone",
            "status" => "viewer",
            _ => "deployer",
        };
        out.push_str(&format!("• `{slash} {usage}`: {what} _({who})_\n"));
    }
    out.push_str(
        "Roles are those of the API: your Slack user is mapped to a greenroom user by `slack = \"U…\"` in its `[[user]]`.",
    );
    out
}

/// Parses the text after the slash command. An empty text is
/// [`ChatCommand::Help`].
pub fn parse(text: &str) -> Result<ChatCommand, ChatError> {
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(ChatCommand::Help);
    };
    let args: Vec<&str> = words.collect();
    const WORDS: [&str; 8] = [
        "deploy", "rollback", "pause", "resume", "status", "lease", "release", "help",
    ];
    let Some(word) = WORDS.iter().copied().find(|w| w.eq_ignore_ascii_case(first)) else {
        return Err(ChatError {
            message: format!("Unknown command {}.", code_span(first)),
            usage: None,
        });
    };
    let err = |message: String| ChatError {
        message,
        usage: Some(usage(word)),
    };
    // The environment: the first argument, for every command but help/status.
    let env_arg = |args: &[&str]| -> Result<String, ChatError> {
        match args.first() {
            None => Err(err(format!("`{word}` needs an environment."))),
            Some(e) => env_name(e).map_err(|why| err(format!("{} is not an environment name: {why}.", code_span(e)))),
        }
    };
    let reason_of = |rest: &[&str]| -> Result<Option<String>, ChatError> {
        let r = rest.join(" ");
        let n = r.chars().count();
        if n > MAX_REASON_CHARS {
            return Err(err(format!(
                "The reason is too long ({n} characters, at most {MAX_REASON_CHARS})."
            )));
        }
        Ok((!r.is_empty()).then_some(r))
    };
    let no_more = |rest: &[&str]| -> Result<(), ChatError> {
        match rest {
            [] => Ok(()),
            _ => Err(err(format!(
                "`{word}` takes nothing after the environment, got {}.",
                code_span(&rest.join(" "))
            ))),
        }
    };
    match word {
        "help" => Ok(ChatCommand::Help),
        "status" => match args.as_slice() {
            [] => Ok(ChatCommand::Status { env: None }),
            [_] => Ok(ChatCommand::Status {
                env: Some(env_arg(&args)?),
            }),
            [_, rest @ ..] => Err(err(format!(
                "`status` takes at most one environment, got also {}.",
                code_span(&rest.join(" "))
            ))),
        },
        "resume" => {
            let env = env_arg(&args)?;
            no_more(&args[1..])?;
            Ok(ChatCommand::Resume { env })
        }
        "release" => {
            let env = env_arg(&args)?;
            no_more(&args[1..])?;
            Ok(ChatCommand::Release { env })
        }
        "pause" => {
            let env = env_arg(&args)?;
            Ok(ChatCommand::Pause {
                env,
                reason: reason_of(&args[1..])?,
            })
        }
        "lease" => {
            let env = env_arg(&args)?;
            let mut rest = &args[1..];
            let mut ttl = None;
            if let Some(first) = rest.first()
                && first.starts_with(|c: char| c.is_ascii_digit())
            {
                match humantime::parse_duration(first) {
                    Ok(d) if d >= MIN_TTL => {
                        // Whole seconds: what the canonical text can say.
                        ttl = Some(Duration::from_secs(d.as_secs()));
                        rest = &rest[1..];
                    }
                    _ => {
                        return Err(err(format!(
                            "{} is not a lease time: write e.g. `30m`, `2h` or `1d` (at least `1m`).",
                            code_span(first)
                        )));
                    }
                }
            }
            Ok(ChatCommand::Lease {
                env,
                ttl,
                reason: reason_of(rest)?,
            })
        }
        "rollback" => {
            let env = env_arg(&args)?;
            let to = match &args[1..] {
                [] => None,
                [flag, value] if *flag == "--to" => Some(value.to_string()),
                [flag] if flag.starts_with("--to=") && flag.len() > 5 => Some(flag[5..].to_string()),
                [flag] if *flag == "--to" => return Err(err("`--to` needs a value.".to_string())),
                rest => {
                    return Err(err(format!(
                        "`rollback` takes only `--to X` after the environment, got {}.",
                        code_span(&rest.join(" "))
                    )));
                }
            };
            Ok(ChatCommand::Rollback { env, to })
        }
        _ => {
            // deploy
            let env = env_arg(&args)?;
            let mut base = None;
            let mut overrides = Vec::new();
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                let b = if *a == "--base" {
                    match rest.next() {
                        Some(v) => Some(*v),
                        None => return Err(err("`--base` needs a channel, e.g. `--base prod`.".to_string())),
                    }
                } else {
                    a.strip_prefix("--base=")
                };
                if let Some(b) = b {
                    if base.is_some() {
                        return Err(err("`--base` is given twice.".to_string()));
                    }
                    if b.is_empty() || !b.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                        return Err(err(format!("{} is not a channel name.", code_span(b))));
                    }
                    base = Some(b.to_string());
                    continue;
                }
                if a.starts_with('-') {
                    return Err(err(format!("Unknown option {}.", code_span(a))));
                }
                if let Err(e) = compose::parse_override(a) {
                    return Err(err(format!("{e}.")));
                }
                if overrides.len() == MAX_OVERRIDES {
                    return Err(err(format!("At most {MAX_OVERRIDES} `COMPONENT=REF` at once.")));
                }
                overrides.push(a.to_string());
            }
            Ok(ChatCommand::Deploy { env, base, overrides })
        }
    }
}

/// Checks an environment name: letters, digits, `-`, `_`, `.`; no `=` (a
/// forgotten environment before `COMPONENT=REF`).
fn env_name(s: &str) -> Result<String, &'static str> {
    if s.contains('=') {
        return Err("it looks like `COMPONENT=REF`; the environment comes first");
    }
    if s.starts_with('-') {
        return Err("it looks like an option; the environment comes first");
    }
    if s.chars().count() > MAX_ENV_CHARS {
        return Err("too long");
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err("use letters, digits, `-`, `_` and `.`");
    }
    Ok(s.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
