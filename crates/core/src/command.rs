//! Comment commands on pull requests (`@greenroom deploy`), as pure data.
//!
//! This module owns what a comment on a pull request asks greenroom to do
//! (GitHub issue comments, GitLab notes): which lines address the bot, which
//! [`Command`] each one is, which are unknown or malformed ([`Parsed`]), which
//! commands an edited comment adds ([`new_since_edit`]), who may run what
//! ([`authorize`]) and the help text people get ([`help_text`]). It must never
//! do I/O or read a clock: the server hands it the comment's text, the bot's
//! name (`[pending] bot`) and the author's [`Standing`], and acts on the result.
//!
//! The rules, so that a command runs only when someone clearly wrote one:
//!
//! - A command is a line that starts (after optional spaces or tabs) with the
//!   mention `@BOT`, then the command word, then its arguments. A mention in
//!   the middle of a line ("thanks @greenroom deploy") is not a command, like
//!   for bors and zuul; several command lines in one comment are all read, in
//!   order, up to [`MAX_COMMANDS`].
//! - The mention is the bot's name as a whole word, compared without regard to
//!   ASCII case: `@greenroomx`, `@greenroom-bot`, `@greenroom.io` and
//!   `email@greenroom` are not mentions. A `:` or `,` may follow it
//!   (`@greenroom: deploy`). A mention with nothing after it only refers to
//!   the bot and is ignored.
//! - The command word is compared without regard to ASCII case and must be the
//!   whole word (`deploy!` is an unknown word). Unknown words give
//!   [`Parsed::Unknown`]: answer them with the [`help_text`].
//! - What Markdown renders as a quote or as code is never a command: block
//!   quotes (`>` lines, and the lines that lazily continue a quoted
//!   paragraph), fenced code blocks (```` ``` ```` and `~~~`, closed by a fence
//!   of the same character at least as long, or by the end of the comment),
//!   indented code blocks (4 columns after a blank line or another block),
//!   HTML comment blocks (`<!--` … `-->`) and inline code spans, even ones that
//!   span several lines. This follows CommonMark for everything that decides
//!   where a command line can be, but is not a complete Markdown parser: it
//!   does not know list item indentation, so a 4-space indented line after a
//!   blank line is always taken for code.
//! - Line endings are `\n`, `\r\n` or `\r`; line numbers are 1-based.
//! - The work is linear in the size of the comment; megabytes are fine.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

/// The bot name comments address when `[pending] bot` is not set.
pub const DEFAULT_BOT: &str = "greenroom";
/// At most this many command lines of one comment are read; one
/// [`Parsed::Invalid`] item reports the rest, which are not run.
pub const MAX_COMMANDS: usize = 10;
/// Longest reason `exclude` and `include` accept, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// User text quoted back (unknown words, bad arguments) is cut to this many characters.
pub const MAX_ECHO_CHARS: usize = 60;

/// One command a comment asks for, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// Take this pull request into the pending set (if allowed) and run a
    /// partial cycle now: deploy and smoke tests, no settle wait.
    Deploy {
        /// `env=NAME`: the environment; `None` means the configured default.
        env: Option<String>,
    },
    /// Like [`Command::Deploy`], with the full suites.
    Trigger {
        /// `env=NAME`: the environment; `None` means the configured default.
        env: Option<String>,
    },
    /// Run the last cycle's gates again.
    Retry,
    /// Same as [`Command::Retry`], kept apart because that is what was typed.
    Recheck,
    /// Cancel the running or scheduled cycle of this pull request.
    Cancel,
    /// Say where this pull request stands.
    Status,
    /// A maintainer lets an untrusted contributor's pull request into staging.
    Approve,
    /// Keep this pull request out of staging.
    Exclude {
        /// Free text after the word, if any.
        reason: Option<String>,
    },
    /// Take this pull request back after an `exclude` (by a person or by culprit search).
    Include {
        /// Free text after the word, if any.
        reason: Option<String>,
    },
    /// Answer with the [`help_text`].
    Help,
}

impl Command {
    /// The command word: `deploy`, `trigger`, `retry`, `recheck`, `cancel`,
    /// `status`, `approve`, `exclude`, `include` or `help`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Deploy { .. } => "deploy",
            Command::Trigger { .. } => "trigger",
            Command::Retry => "retry",
            Command::Recheck => "recheck",
            Command::Cancel => "cancel",
            Command::Status => "status",
            Command::Approve => "approve",
            Command::Exclude { .. } => "exclude",
            Command::Include { .. } => "include",
            Command::Help => "help",
        }
    }
}

/// The canonical form without the mention: `deploy env=staging`, `exclude flaky on arm64`, `retry`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            Command::Deploy { env: Some(env) } | Command::Trigger { env: Some(env) } => write!(f, " env={env}"),
            Command::Exclude { reason: Some(reason) } | Command::Include { reason: Some(reason) } => {
                write!(f, " {reason}")
            }
            _ => Ok(()),
        }
    }
}

/// One line of a comment that addresses the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A well-formed command.
    Command {
        /// 1-based line number in the comment.
        line: usize,
        /// What it asks for.
        command: Command,
    },
    /// The word after the mention is no command; answer with the [`help_text`].
    Unknown {
        /// 1-based line number in the comment.
        line: usize,
        /// The word as typed, cut to [`MAX_ECHO_CHARS`] characters. It is the
        /// user's text: quote it with [`code_span`] in replies.
        word: String,
    },
    /// A known command with wrong arguments, or one command too many: it is
    /// not run, the message says what was wrong (Markdown, safe to post).
    Invalid {
        /// 1-based line number in the comment.
        line: usize,
        /// What was wrong, e.g. ``"`@greenroom cancel` takes no arguments, got `now`"``.
        message: String,
    },
}

impl Parsed {
    /// The 1-based line number of the item.
    pub fn line(&self) -> usize {
        match self {
            Parsed::Command { line, .. } | Parsed::Unknown { line, .. } | Parsed::Invalid { line, .. } => *line,
        }
    }
}

/// Every command line of `body` addressed to `bot` (with or without the
/// leading `@`), in order; see the module documentation for the rules.
///
/// At most [`MAX_COMMANDS`] lines are read; if there are more, one last
/// [`Parsed::Invalid`] item (at the first line left out) says so. An empty
/// bot name matches nothing.
pub fn parse(body: &str, bot: &str) -> Vec<Parsed> {
    let bot = normalize_bot(bot);
    if bot.is_empty() {
        return Vec::new();
    }
    let doc = scan(body);
    let mut out = Vec::new();
    let mut extra = 0usize;
    let mut first_extra = 0usize;
    for para in &doc.paragraphs {
        let lines = &doc.lines[para.clone()];
        // Computed at the first mention, once per paragraph.
        let mut spans: Option<Option<CodeSpans>> = None;
        for (i, &(line, text)) in lines.iter().enumerate() {
            let Some(at) = mention(text, bot) else { continue };
            let spans = spans.get_or_insert_with(|| {
                lines
                    .iter()
                    .any(|(_, t)| t.contains('`'))
                    .then(|| CodeSpans::new(lines))
            });
            if spans.as_ref().is_some_and(|s| s.covers(i, at.offset)) {
                continue;
            }
            let Some(item) = parse_command(line, at.rest, bot) else {
                continue;
            };
            if out.len() < MAX_COMMANDS {
                out.push(item);
            } else {
                if extra == 0 {
                    first_extra = line;
                }
                extra += 1;
            }
        }
    }
    if extra > 0 {
        let total = MAX_COMMANDS + extra;
        let (was, them) = if extra == 1 { ("was", "it") } else { ("were", "them") };
        let message = format!(
            "this comment has {total} commands; only the first {MAX_COMMANDS} are read, so {extra} {was} not run: \
             write {them} in another comment"
        );
        out.push(Parsed::Invalid {
            line: first_extra,
            message,
        });
    }
    out
}

/// For an edited comment: the items of `new_body` that were not already in
/// `old_body`, in order.
///
/// Items are compared without their line numbers, as a multiset: fixing a
/// typo elsewhere or moving lines runs nothing again, adding a second
/// `@greenroom retry` under an existing one runs one retry, and an unknown
/// word or bad argument that was already answered is not answered again.
pub fn new_since_edit(old_body: &str, new_body: &str, bot: &str) -> Vec<Parsed> {
    let old = parse(old_body, bot);
    let new = parse(new_body, bot);
    let mut seen: HashMap<Key<'_>, usize> = HashMap::new();
    for item in &old {
        *seen.entry(Key::of(item)).or_default() += 1;
    }
    new.iter()
        .filter(|item| match seen.get_mut(&Key::of(item)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// A [`Parsed`] item without its line number.
#[derive(PartialEq, Eq, Hash)]
enum Key<'a> {
    Command(&'a Command),
    Unknown(&'a str),
    Invalid(&'a str),
}

impl<'a> Key<'a> {
    fn of(item: &'a Parsed) -> Key<'a> {
        match item {
            Parsed::Command { command, .. } => Key::Command(command),
            Parsed::Unknown { word, .. } => Key::Unknown(word),
            Parsed::Invalid { message, .. } => Key::Invalid(message),
        }
    }
}

/// Who wrote a comment, as far as commands are concerned. Pass the highest
/// that applies (an admin who wrote the pull request is [`Standing::Admin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    /// A `[[user]]` with the admin role.
    Admin,
    /// A maintainer (`[pending] maintainers`).
    Maintainer,
    /// A trusted user (`[pending] trusted`, or a `[[user]]` with the deployer role).
    Trusted,
    /// The pull request's author, who is not trusted.
    Author,
    /// Anyone else.
    Other,
}

/// Why a command is not run for this person: a polite message to post.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Markdown, addressed to the person (`Sorry @alice, …`).
    pub message: String,
}

/// Who may run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Anyone,
    /// Admins, maintainers, trusted users, and the author of an approved pull request.
    Deployer,
    /// Admins and maintainers.
    Maintainer,
}

fn need(cmd: &Command) -> Need {
    match cmd {
        Command::Help | Command::Status => Need::Anyone,
        Command::Deploy { .. } | Command::Trigger { .. } | Command::Retry | Command::Recheck | Command::Cancel => {
            Need::Deployer
        }
        Command::Approve | Command::Exclude { .. } | Command::Include { .. } => Need::Maintainer,
    }
}

/// Whether `who` (forge login `login`, with or without `@`) may run `cmd` on
/// a pull request that a maintainer has (`pr_approved`) or has not approved.
///
/// - `help`, `status`: anyone.
/// - `deploy`, `trigger`, `retry`, `recheck`, `cancel`: admins, maintainers
///   and trusted users; the pull request's author too once it is approved.
/// - `approve`, `exclude`, `include`: admins and maintainers.
pub fn authorize(cmd: &Command, who: Standing, login: &str, pr_approved: bool) -> Result<(), Refusal> {
    let allowed = match (need(cmd), who) {
        (Need::Anyone, _) | (_, Standing::Admin | Standing::Maintainer) => true,
        (Need::Deployer, Standing::Trusted) => true,
        (Need::Deployer, Standing::Author) => pr_approved,
        (Need::Deployer, Standing::Other) | (Need::Maintainer, _) => false,
    };
    if allowed {
        return Ok(());
    }
    let login = login.trim().trim_start_matches('@');
    let sorry = if login.is_empty() {
        "Sorry".to_string()
    } else {
        format!("Sorry @{login}")
    };
    let name = cmd.name();
    let message = match (cmd, who) {
        (Command::Approve, _) => format!("{sorry}, only maintainers can approve PRs for staging."),
        (Command::Exclude { .. }, _) => format!("{sorry}, only maintainers can exclude PRs from staging."),
        (Command::Include { .. }, _) => format!("{sorry}, only maintainers can include PRs in staging."),
        (_, Standing::Author) => format!(
            "{sorry}, `{name}` works on your PR once a maintainer has approved it for staging; \
             until then only maintainers and trusted users can use it."
        ),
        _ => format!(
            "{sorry}, only maintainers, trusted users and the PR's author (once a maintainer has approved \
             the PR) can use `{name}` here."
        ),
    };
    Err(Refusal { message })
}

/// The Markdown answer to `@BOT help` and to unknown commands: every command,
/// what it does and who may use it.
pub fn help_text(bot: &str) -> String {
    let bot = match normalize_bot(bot) {
        "" => DEFAULT_BOT,
        b => b,
    };
    let deployers = "admins, maintainers, trusted users; the PR's author once approved";
    let rows: [(&str, &str, Need); 10] = [
        (
            "deploy [env=NAME]",
            "Take this PR into staging and run a partial cycle now: deploy and smoke tests, no settle wait.",
            Need::Deployer,
        ),
        (
            "trigger [env=NAME]",
            "The same with the full test suites.",
            Need::Deployer,
        ),
        ("retry", "Run the last cycle's gates again.", Need::Deployer),
        ("recheck", "Same as `retry`.", Need::Deployer),
        (
            "cancel",
            "Cancel the cycle running or scheduled for this PR.",
            Need::Deployer,
        ),
        (
            "status",
            "Say where this PR stands: pending, deployed, tested fully or partly.",
            Need::Anyone,
        ),
        (
            "approve",
            "Let this PR from a new contributor into staging.",
            Need::Maintainer,
        ),
        ("exclude [REASON]", "Keep this PR out of staging.", Need::Maintainer),
        (
            "include [REASON]",
            "Take this PR back into staging after an exclude.",
            Need::Maintainer,
        ),
        ("help", "Show this help.", Need::Anyone),
    ];
    let mut out = format!(
        "**@{bot} commands.** Write each command on a line of its own, at the start of the line, \
         in a comment on the PR:\n\n| Command | What it does | Who may use it |\n|---|---|---|\n"
    );
    for (usage, what, need) in rows {
        let who = match need {
            Need::Anyone => "anyone",
            Need::Deployer => deployers,
            Need::Maintainer => "admins, maintainers",
        };
        out.push_str(&format!("| `@{bot} {usage}` | {what} | {who} |\n"));
    }
    out.push_str(&format!(
        "\n`env=NAME` picks the environment (the default one otherwise). Commands in quotes, code blocks and \
         inline code are ignored, and so are mentions in the middle of a line. At most {MAX_COMMANDS} commands \
         per comment. Editing a comment runs only the commands you added.\n"
    ));
    out
}

/// `text` as a Markdown inline code span that nothing inside can break out
/// of, cut to [`MAX_ECHO_CHARS`] characters: for quoting user text in replies
/// (a mention inside a code span notifies nobody).
pub fn code_span(text: &str) -> String {
    let text = cut(text.trim());
    let text = text.replace(['\r', '\n'], " ");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

/// The fuzz target's body (`fuzz/fuzz_targets/comment_commands.rs`), also run
/// by the property tests: parses the bytes as a comment (lossy UTF-8) for two
/// bot names and checks the invariants.
///
/// # Panics
///
/// When an invariant does not hold (that is its job): line numbers are
/// increasing and within the comment; at most [`MAX_COMMANDS`] items plus one;
/// every command's canonical form parses back to the same command; an edit
/// that changes nothing runs nothing, and an edit from an empty comment runs
/// everything.
pub fn fuzz_one(data: &[u8]) {
    let body = String::from_utf8_lossy(data);
    let lines = split_lines(&body).count();
    for bot in ["greenroom", "@b"] {
        let parsed = parse(&body, bot);
        assert!(parsed.len() <= MAX_COMMANDS + 1, "too many items: {parsed:?}");
        let mut last = 0;
        for item in &parsed {
            let line = item.line();
            assert!(
                line > last && line <= lines,
                "line {line} after {last}, of {lines}: {parsed:?}"
            );
            last = line;
            if let Parsed::Command { command, .. } = item {
                let again = parse(&format!("@{} {command}", normalize_bot(bot)), bot);
                assert_eq!(
                    again,
                    vec![Parsed::Command {
                        line: 1,
                        command: command.clone()
                    }],
                    "{command}"
                );
            }
        }
        assert_eq!(new_since_edit(&body, &body, bot), Vec::new());
        assert_eq!(new_since_edit("", &body, bot), parsed);
    }
}

/// The bot's name without surrounding spaces and the leading `@`.
fn normalize_bot(bot: &str) -> &str {
    let bot = bot.trim();
    bot.strip_prefix('@').unwrap_or(bot)
}

/// `s` cut to [`MAX_ECHO_CHARS`] characters, with `…` when cut.
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A line's mention of the bot.
struct Mention<'a> {
    /// Byte offset of the `@` in the line.
    offset: usize,
    /// What follows the mention (and its `:` or `,`).
    rest: &'a str,
}

/// Whether `line` starts (after spaces and tabs) with `@bot` as a whole word.
fn mention<'a>(line: &'a str, bot: &str) -> Option<Mention<'a>> {
    let trimmed = line.trim_start_matches([' ', '\t']);
    let offset = line.len() - trimmed.len();
    let name = trimmed.strip_prefix('@')?;
    if !name.get(..bot.len())?.eq_ignore_ascii_case(bot) {
        return None;
    }
    let after = &name[bot.len()..];
    let rest = match after.chars().next() {
        None => after,
        Some(c) if c.is_whitespace() => after,
        Some(':' | ',') => &after[1..],
        Some(_) => return None,
    };
    Some(Mention { offset, rest })
}

/// The item for the text after a mention; `None` for a bare mention.
fn parse_command(line: usize, rest: &str, bot: &str) -> Option<Parsed> {
    let rest = rest.trim();
    let (word, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    if word.is_empty() {
        return None;
    }
    const WORDS: [&str; 10] = [
        "deploy", "trigger", "retry", "recheck", "cancel", "status", "approve", "exclude", "include", "help",
    ];
    let Some(known) = WORDS.iter().find(|w| w.eq_ignore_ascii_case(word)) else {
        return Some(Parsed::Unknown { line, word: cut(word) });
    };
    let invalid = |message: String| Some(Parsed::Invalid { line, message });
    let command = match *known {
        "deploy" | "trigger" => {
            let env = match parse_env(args) {
                Ok(env) => env,
                Err(why) => return invalid(format!("`@{bot} {known}` {why}")),
            };
            if *known == "deploy" {
                Command::Deploy { env }
            } else {
                Command::Trigger { env }
            }
        }
        "exclude" | "include" => {
            let chars = args.chars().count();
            if chars > MAX_REASON_CHARS {
                return invalid(format!(
                    "the reason after `@{bot} {known}` is too long ({chars} characters, at most {MAX_REASON_CHARS})"
                ));
            }
            let reason = (!args.is_empty()).then(|| args.to_string());
            if *known == "exclude" {
                Command::Exclude { reason }
            } else {
                Command::Include { reason }
            }
        }
        _ if !args.is_empty() => {
            return invalid(format!("`@{bot} {known}` takes no arguments, got {}", code_span(args)));
        }
        "retry" => Command::Retry,
        "recheck" => Command::Recheck,
        "cancel" => Command::Cancel,
        "status" => Command::Status,
        "approve" => Command::Approve,
        _ => Command::Help,
    };
    Some(Parsed::Command { line, command })
}

/// The arguments of `deploy` and `trigger`: nothing or `env=NAME`. The error
/// completes a sentence that starts with the command.
fn parse_env(args: &str) -> Result<Option<String>, String> {
    let mut env: Option<&str> = None;
    for arg in args.split_whitespace() {
        let value = match arg.split_once('=') {
            Some((key, value)) if key.eq_ignore_ascii_case("env") => value,
            _ if arg.starts_with("--env") || arg.starts_with("-e") => {
                return Err(format!("takes `env=NAME`, got {}", code_span(arg)));
            }
            _ => return Err(format!("takes only `env=NAME`, got {}", code_span(arg))),
        };
        if value.is_empty() {
            return Err("needs an environment name after `env=`".to_string());
        }
        if !valid_env_name(value) {
            return Err(format!(
                "got {}, which is not an environment name (lowercase letters, digits, `-` and `_`)",
                code_span(value)
            ));
        }
        if let Some(first) = env {
            return Err(format!(
                "takes one `env=NAME`, got {} and {}",
                code_span(first),
                code_span(value)
            ));
        }
        env = Some(value);
    }
    Ok(env.map(str::to_string))
}

/// Environment names as `[[environment]] name` accepts them.
fn valid_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.len() <= 63
}

/// The lines of `body`, split at `\n`, `\r\n` and `\r` (a final line ending adds no empty line).
fn split_lines(body: &str) -> impl Iterator<Item = &str> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(i) = rest.find(['\r', '\n']) else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..i];
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
        Some(line)
    })
}

/// The paragraph text of a comment: where command lines can be.
struct Doc<'a> {
    /// `(line number, text)` of every paragraph line, in order.
    lines: Vec<(usize, &'a str)>,
    /// Ranges of `lines`, one per paragraph.
    paragraphs: Vec<Range<usize>>,
}

/// A fenced code block's opening fence.
#[derive(Clone, Copy)]
struct Fence {
    ch: u8,
    len: usize,
}

/// What the previous line left open, for the next line's meaning.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// A blank line, or the start of the comment.
    Blank,
    /// Paragraph text outside quotes: the next line may continue it.
    Paragraph,
    /// Paragraph text in a block quote: the next line may lazily continue it.
    QuoteParagraph,
    /// Anything else (code, a heading, a quoted fence…): nothing to continue.
    Closed,
}

/// Sorts the lines of `body` into paragraph text and the rest (quotes, code,
/// headings, HTML comments).
fn scan(body: &str) -> Doc<'_> {
    let mut doc = Doc {
        lines: Vec::new(),
        paragraphs: Vec::new(),
    };
    let mut fence: Option<Fence> = None;
    let mut quote_fence: Option<Fence> = None;
    let mut html_comment = false;
    let mut prev = Prev::Blank;
    for (i, line) in split_lines(body).enumerate() {
        let (cols, content) = indentation(line);
        let mut paragraph = false;
        if let Some(f) = fence {
            if cols <= 3 && closes(f, content) {
                fence = None;
            }
            prev = Prev::Closed;
        } else if html_comment {
            if line.contains("-->") {
                html_comment = false;
            }
            prev = Prev::Closed;
        } else if content.is_empty() {
            quote_fence = None;
            prev = Prev::Blank;
        } else if cols >= 4 && prev == Prev::Paragraph {
            paragraph = true;
        } else if cols >= 4 && prev != Prev::QuoteParagraph {
            // Indented code.
            quote_fence = None;
            prev = Prev::Closed;
        } else if content.starts_with('>') && cols <= 3 {
            let inner = quote_inner(content);
            let (inner_cols, inner) = indentation(inner);
            prev = Prev::Closed;
            if let Some(f) = quote_fence {
                if inner_cols <= 3 && closes(f, inner) {
                    quote_fence = None;
                }
            } else if let Some(f) = opens_fence(inner).filter(|_| inner_cols <= 3) {
                quote_fence = Some(f);
            } else if !inner.is_empty() {
                prev = Prev::QuoteParagraph;
            }
        } else if prev == Prev::QuoteParagraph && (cols >= 4 || !starts_block(content)) {
            // Lazy continuation of the quoted paragraph.
        } else {
            quote_fence = None;
            if let Some(f) = opens_fence(content) {
                fence = Some(f);
                prev = Prev::Closed;
            } else if let Some(after) = content.strip_prefix("<!--") {
                html_comment = !after.contains("-->");
                prev = Prev::Closed;
            } else if is_heading(content) || is_thematic_break(content) {
                prev = Prev::Closed;
            } else {
                paragraph = true;
            }
        }
        if paragraph {
            if prev != Prev::Paragraph {
                doc.paragraphs.push(doc.lines.len()..doc.lines.len());
            }
            doc.lines.push((i + 1, line));
            if let Some(p) = doc.paragraphs.last_mut() {
                p.end = doc.lines.len();
            }
            prev = Prev::Paragraph;
        }
    }
    doc
}

/// The indentation of `line` in columns (tabs stop every 4), and the rest.
fn indentation(line: &str) -> (usize, &str) {
    let mut cols = 0;
    for (i, b) in line.bytes().enumerate() {
        match b {
            b' ' => cols += 1,
            b'\t' => cols += 4 - cols % 4,
            _ => return (cols, &line[i..]),
        }
    }
    (cols, "")
}

/// The content of a block quote line after all its `>` markers.
fn quote_inner(mut s: &str) -> &str {
    loop {
        let (cols, rest) = indentation(s);
        match rest.strip_prefix('>') {
            Some(inner) if cols <= 3 => s = inner.strip_prefix([' ', '\t']).unwrap_or(inner),
            _ => return s,
        }
    }
}

/// The fence `content` opens (three or more `` ` `` or `~`; a backtick fence's
/// info string has no backtick).
fn opens_fence(content: &str) -> Option<Fence> {
    let ch = *content.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = content.bytes().take_while(|&b| b == ch).count();
    if len < 3 || (ch == b'`' && content[len..].contains('`')) {
        return None;
    }
    Some(Fence { ch, len })
}

/// Whether `content` closes fence `f`: the same character, at least as many, then only spaces.
fn closes(f: Fence, content: &str) -> bool {
    let len = content.bytes().take_while(|&b| b == f.ch).count();
    len >= f.len && content[len..].bytes().all(|b| b == b' ' || b == b'\t')
}

/// `# …` to `###### …`.
fn is_heading(content: &str) -> bool {
    let hashes = content.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&hashes) && matches!(content.as_bytes().get(hashes), None | Some(b' ' | b'\t'))
}

/// `---`, `***`, `___`, possibly with spaces between.
fn is_thematic_break(content: &str) -> bool {
    let Some(&ch) = content.as_bytes().first() else {
        return false;
    };
    matches!(ch, b'-' | b'*' | b'_')
        && content.bytes().all(|b| b == ch || b == b' ' || b == b'\t')
        && content.bytes().filter(|&b| b == ch).count() >= 3
}

/// Whether `content` (indented 3 columns or less) starts a block that ends a
/// quoted paragraph instead of continuing it lazily.
fn starts_block(content: &str) -> bool {
    let b = content.as_bytes();
    let space_after = |i: usize| matches!(b.get(i), None | Some(b' ' | b'\t'));
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    opens_fence(content).is_some()
        || content.starts_with("<!--")
        || is_heading(content)
        || is_thematic_break(content)
        || (matches!(b.first(), Some(b'-' | b'*' | b'+')) && space_after(1))
        || ((1..=9).contains(&digits) && matches!(b.get(digits), Some(b'.' | b')')) && space_after(digits + 1))
}

/// The inline code spans of one paragraph (CommonMark 6.1), which may cross lines.
struct CodeSpans {
    /// Byte offset of each paragraph line in the joined text.
    starts: Vec<usize>,
    /// Byte ranges of the joined text inside code spans, in order.
    spans: Vec<Range<usize>>,
}

impl CodeSpans {
    fn new(lines: &[(usize, &str)]) -> CodeSpans {
        let mut text = String::new();
        let mut starts = Vec::with_capacity(lines.len());
        for (_, line) in lines {
            starts.push(text.len());
            text.push_str(line);
            text.push('\n');
        }
        CodeSpans {
            starts,
            spans: code_spans(&text),
        }
    }

    /// Whether byte `offset` of paragraph line `i` is inside a code span.
    fn covers(&self, i: usize, offset: usize) -> bool {
        let Some(start) = self.starts.get(i) else { return false };
        let pos = start + offset;
        let k = self.spans.partition_point(|s| s.end <= pos);
        self.spans.get(k).is_some_and(|s| s.start <= pos)
    }
}

/// The byte ranges of `text` covered by code spans: a backtick string opens a
/// span that the next backtick string of exactly the same length closes; with
/// no such string it is literal. A backslash escapes a backtick outside spans.
fn code_spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'`' {
            let start = i;
            while i < b.len() && b[i] == b'`' {
                i += 1;
            }
            runs.push((start, i - start));
        } else {
            i += 1;
        }
    }
    let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
    for (r, &(_, len)) in runs.iter().enumerate() {
        by_len.entry(len).or_default().push(r);
    }
    let mut spans = Vec::new();
    let mut pos = 0;
    let mut r = 0;
    while let Some(&(start, len)) = runs.get(r) {
        let mut backslashes = 0;
        while start - backslashes > pos && b[start - backslashes - 1] == b'\\' {
            backslashes += 1;
        }
        let (open, open_len) = if backslashes % 2 == 1 {
            (start + 1, len - 1)
        } else {
            (start, len)
        };
        let closer = by_len.get(&open_len).and_then(|same| {
            let k = same.partition_point(|&j| j <= r);
            same.get(k).copied()
        });
        match closer.filter(|_| open_len > 0) {
            Some(j) => {
                let (close, close_len) = runs[j];
                spans.push(open..close + close_len);
                pos = close + close_len;
                r = j + 1;
            }
            None => r += 1,
        }
    }
    spans
}

#[cfg(test)]
mod tests;
