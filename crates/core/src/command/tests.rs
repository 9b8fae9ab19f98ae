//! Comment commands: one test per rule, a snapshot over realistic comments,
//! snapshots of the texts people read (help, refusals, errors), and property
//! tests through the fuzz body.

use super::*;
use proptest::prelude::*;
use std::fmt::Write as _;

const BOT: &str = "greenroom";

fn cmd(line: usize, command: Command) -> Parsed {
    Parsed::Command { line, command }
}

fn deploy(env: Option<&str>) -> Command {
    Command::Deploy {
        env: env.map(str::to_string),
    }
}

/// The commands of `body`, in canonical form, ignoring unknown and invalid lines.
fn commands(body: &str) -> Vec<String> {
    parse(body, BOT)
        .into_iter()
        .filter_map(|p| match p {
            Parsed::Command { command, .. } => Some(command.to_string()),
            _ => None,
        })
        .collect()
}

/// One line per item: `L3 deploy env=x`, `L4 unknown `foo``, `L5 invalid: …`.
fn render(items: &[Parsed]) -> String {
    let mut out = String::new();
    for item in items {
        let _ = match item {
            Parsed::Command { line, command } => writeln!(out, "L{line} {command}"),
            Parsed::Unknown { line, word } => writeln!(out, "L{line} unknown {}", code_span(word)),
            Parsed::Invalid { line, message } => writeln!(out, "L{line} invalid: {message}"),
        };
    }
    if out.is_empty() {
        out.push_str("(nothing)\n");
    }
    out
}

#[test]
fn a_command_at_the_start_of_a_line() {
    assert_eq!(parse("@greenroom deploy", BOT), vec![cmd(1, deploy(None))]);
    assert_eq!(parse("   @greenroom deploy  ", BOT), vec![cmd(1, deploy(None))]);
    assert_eq!(parse("hi\n  \t@greenroom deploy  ", BOT), vec![cmd(2, deploy(None))]);
    // A tab after two spaces reaches column 4: indented code when it starts a paragraph.
    assert_eq!(parse("  \t@greenroom deploy  ", BOT), vec![]);
    assert_eq!(
        parse("LGTM.\n\n@greenroom trigger\n", BOT),
        vec![cmd(3, Command::Trigger { env: None })]
    );
}

#[test]
fn the_bot_name_may_be_given_with_or_without_the_at() {
    assert_eq!(parse("@greenroom status", "@greenroom"), vec![cmd(1, Command::Status)]);
    assert_eq!(parse("@kcibot status", " kcibot "), vec![cmd(1, Command::Status)]);
    assert_eq!(parse("@greenroom status", "kcibot"), vec![]);
    assert_eq!(parse("@greenroom status", ""), vec![]);
    assert_eq!(parse("@ status", "@"), vec![]);
}

#[test]
fn bot_name_and_command_word_ignore_ascii_case() {
    assert_eq!(parse("@GreenRoom DEPLOY", BOT), vec![cmd(1, deploy(None))]);
    assert_eq!(parse("@greenroom ReCheck", "GREENROOM"), vec![cmd(1, Command::Recheck)]);
}

#[test]
fn only_a_whole_word_mention_at_the_start_of_a_line_counts() {
    for body in [
        "thanks! @greenroom deploy",
        "@greenroomx deploy",
        "@greenroom-bot deploy",
        "@greenroom.io deploy",
        "@greenroom's deploy looked fine",
        "email@greenroom deploy",
        "mail me at ops@greenroom.example",
        "greenroom deploy",
        "- @greenroom deploy",
        "# @greenroom deploy",
        "@greenroomé deploy",
    ] {
        assert_eq!(parse(body, BOT), vec![], "{body:?}");
    }
}

#[test]
fn a_colon_or_comma_may_follow_the_mention() {
    assert_eq!(parse("@greenroom: retry", BOT), vec![cmd(1, Command::Retry)]);
    assert_eq!(parse("@greenroom, retry", BOT), vec![cmd(1, Command::Retry)]);
    assert_eq!(parse("@greenroom:retry", BOT), vec![cmd(1, Command::Retry)]);
}

#[test]
fn a_bare_mention_is_ignored() {
    assert_eq!(parse("@greenroom\n@greenroom:\n  @greenroom  ", BOT), vec![]);
}

#[test]
fn retry_and_recheck_stay_apart() {
    assert_eq!(
        parse("@greenroom retry\n@greenroom recheck", BOT),
        vec![cmd(1, Command::Retry), cmd(2, Command::Recheck)]
    );
}

#[test]
fn deploy_and_trigger_take_an_environment() {
    assert_eq!(
        parse("@greenroom deploy env=staging-2", BOT),
        vec![cmd(1, deploy(Some("staging-2")))]
    );
    assert_eq!(
        parse("@greenroom trigger ENV=stg_b", BOT),
        vec![cmd(
            1,
            Command::Trigger {
                env: Some("stg_b".into())
            }
        )]
    );
}

#[test]
fn exclude_and_include_take_an_optional_reason() {
    assert_eq!(
        parse("@greenroom exclude   breaks the arm64 build  \n@greenroom include", BOT),
        vec![
            cmd(
                1,
                Command::Exclude {
                    reason: Some("breaks the arm64 build".into())
                }
            ),
            cmd(2, Command::Include { reason: None }),
        ]
    );
    let long = "x".repeat(MAX_REASON_CHARS);
    assert_eq!(
        parse(&format!("@greenroom exclude {long}"), BOT),
        vec![cmd(1, Command::Exclude { reason: Some(long) })]
    );
}

#[test]
fn unknown_words_are_reported_cut_short() {
    assert_eq!(
        parse("@greenroom deplyo", BOT),
        vec![Parsed::Unknown {
            line: 1,
            word: "deplyo".into()
        }]
    );
    assert_eq!(
        parse("@greenroom deploy!", BOT),
        vec![Parsed::Unknown {
            line: 1,
            word: "deploy!".into()
        }]
    );
    let long = "y".repeat(10_000);
    let [Parsed::Unknown { word, .. }] = &parse(&format!("@greenroom {long}"), BOT)[..] else {
        panic!("expected one unknown word");
    };
    assert_eq!(word.chars().count(), MAX_ECHO_CHARS + 1);
    assert!(word.ends_with('…'));
}

#[test]
fn bad_arguments_explain_themselves() {
    let body = [
        "@greenroom cancel now",
        "@greenroom help me",
        "@greenroom deploy now",
        "@greenroom deploy --env staging",
        "@greenroom deploy env=",
        "@greenroom deploy env=Staging",
        "@greenroom trigger env=a env=b",
        "@greenroom deploy env=`$(reboot)`",
        "@greenroom approve @alice please",
        "@greenroom status ``odd`` args",
    ]
    .join("\n");
    let too_long = format!("@greenroom exclude {}", "z".repeat(MAX_REASON_CHARS + 1));
    insta::assert_snapshot!(render(&parse(&body, BOT)) + &render(&parse(&too_long, BOT)));
}

#[test]
fn at_most_ten_commands_are_read() {
    let body: String = (0..13).map(|i| format!("@greenroom exclude reason {i}\n")).collect();
    let items = parse(&body, BOT);
    assert_eq!(items.len(), MAX_COMMANDS + 1);
    assert_eq!(
        items[9],
        cmd(
            10,
            Command::Exclude {
                reason: Some("reason 9".into())
            }
        )
    );
    assert_eq!(
        items[10],
        Parsed::Invalid {
            line: 11,
            message: "this comment has 13 commands; only the first 10 are read, so 3 were not run: write them in \
                      another comment"
                .into()
        }
    );
    // Bare mentions do not count.
    let body = format!("{}{}", "@greenroom\n".repeat(20), "@greenroom status\n");
    assert_eq!(parse(&body, BOT), vec![cmd(21, Command::Status)]);
}

#[test]
fn fenced_code_is_ignored() {
    assert_eq!(
        commands("```\n@greenroom deploy\n```\n@greenroom status"),
        vec!["status"]
    );
    assert_eq!(
        commands("~~~markdown\n@greenroom deploy\n~~~\n@greenroom status"),
        vec!["status"]
    );
    assert_eq!(commands("``` text {.x}\n@greenroom deploy\n```"), Vec::<String>::new());
    // A fence closes only with the same character, at least as long, and nothing after it.
    assert_eq!(
        commands("````\n```\n@greenroom deploy\n~~~~\n```` x\n@greenroom cancel\n`````\n@greenroom status"),
        vec!["status"]
    );
    // Up to 3 spaces of indentation; an unclosed fence runs to the end.
    assert_eq!(
        commands("   ```\n@greenroom deploy\n   ```\n@greenroom status"),
        vec!["status"]
    );
    assert_eq!(
        commands("ok\n~~~\n@greenroom deploy\n\n@greenroom cancel"),
        Vec::<String>::new()
    );
    // A backtick "fence" with a backtick in its info string is inline code, not a fence.
    assert_eq!(commands("``` a`b\n@greenroom deploy"), vec!["deploy"]);
}

#[test]
fn indented_code_is_ignored_but_continued_paragraphs_are_not() {
    assert_eq!(
        commands("Example:\n\n    @greenroom deploy\n\n\t@greenroom cancel"),
        Vec::<String>::new()
    );
    assert_eq!(commands("    @greenroom deploy"), Vec::<String>::new());
    assert_eq!(commands("Please run\n    @greenroom deploy"), vec!["deploy"]);
    assert_eq!(commands("   @greenroom deploy"), vec!["deploy"]);
}

#[test]
fn quotes_are_ignored() {
    assert_eq!(commands("> @greenroom deploy\n\n@greenroom status"), vec!["status"]);
    assert_eq!(
        commands(">> @greenroom deploy\n > > @greenroom cancel"),
        Vec::<String>::new()
    );
    // A line right after a quoted paragraph continues the quote, as GitHub renders it.
    assert_eq!(
        commands("> you wrote\n@greenroom deploy\n\n@greenroom status"),
        vec!["status"]
    );
    // …but not after a quoted code block or an empty quote line.
    assert_eq!(commands("> ```\n> x\n> ```\n@greenroom deploy"), vec!["deploy"]);
    assert_eq!(commands("> x\n>\n@greenroom deploy"), vec!["deploy"]);
    // A fence in a quote ends with the quote.
    assert_eq!(commands("> ```\n@greenroom deploy"), vec!["deploy"]);
    // A list item ends the quote; the line after continues the list item.
    assert_eq!(commands("> x\n- item\n@greenroom deploy"), vec!["deploy"]);
}

#[test]
fn inline_code_is_ignored_even_across_lines() {
    assert_eq!(commands("Type `@greenroom deploy` to deploy."), Vec::<String>::new());
    assert_eq!(
        commands("Type `\n@greenroom deploy\n` to deploy."),
        Vec::<String>::new()
    );
    assert_eq!(commands("Type ``a ` b\n@greenroom deploy``"), Vec::<String>::new());
    // Unmatched or escaped backticks open nothing.
    assert_eq!(commands("a stray ` here\n@greenroom deploy"), vec!["deploy"]);
    assert_eq!(
        commands("an escaped \\` here\n@greenroom deploy\nand ` there"),
        vec!["deploy"]
    );
    assert_eq!(commands("``two\n@greenroom deploy\n`one`"), vec!["deploy"]);
    // A blank line ends the paragraph, and the span with it.
    assert_eq!(commands("Type `\n\n@greenroom deploy\n` x"), vec!["deploy"]);
}

#[test]
fn html_comments_are_ignored() {
    assert_eq!(
        commands("<!--\n@greenroom deploy\n-->\n@greenroom status"),
        vec!["status"]
    );
    assert_eq!(commands("<!-- one line -->\n@greenroom status"), vec!["status"]);
}

#[test]
fn any_line_ending_counts() {
    assert_eq!(
        parse("hi\r\n\r\n@greenroom deploy\r\n@greenroom exclude flaky\r\n", BOT),
        vec![
            cmd(3, deploy(None)),
            cmd(
                4,
                Command::Exclude {
                    reason: Some("flaky".into())
                }
            )
        ]
    );
    assert_eq!(parse("hi\r@greenroom retry\r", BOT), vec![cmd(2, Command::Retry)]);
}

#[test]
fn realistic_comments() {
    let cases: &[(&str, &str)] = &[
        (
            "maintainer approves and deploys",
            "Thanks for the patch, looks good to me.\n\n@greenroom approve\n@greenroom deploy env=staging\n",
        ),
        (
            "reply quoting the bot's previous comment",
            "> Deployed to `staging` by `@greenroom deploy` (partial cycle).\n> To run the full suites comment:\n> \
             @greenroom trigger\n\nThanks! Full run please:\n\n@greenroom trigger\n",
        ),
        (
            "instructions in a code fence",
            "To test this PR on staging, a maintainer can write:\n\n```markdown\n@greenroom deploy\n@greenroom \
             trigger env=staging\n```\n\nor `@greenroom status` to see where it stands.\n",
        ),
        (
            "mid-line mentions and emails",
            "cc @greenroom deploy when you can\nWrote to bot@greenroom.example about it.\n@greenroomx deploy\n",
        ),
        (
            "unknown word and bad arguments",
            "@greenroom deplyo\n@greenroom cancel now\n@greenroom deploy prod\n",
        ),
        (
            "exclude with a reason, include later",
            "@greenroom exclude breaks the arm64 build (see #412)\n\nFixed in 3f2a1c.\n@greenroom include\n",
        ),
        (
            "CRLF from the GitHub web editor",
            "Retrying the flaky gate.\r\n\r\n@greenroom retry\r\n@greenroom status\r\n",
        ),
        (
            "unicode around the commands",
            "Grüße! 🚀\n@GREENROOM  deploy   env=stg-ü\n@greenroom exclude 依赖未合并 — wait for #12\n@greenroom\u{a0}help\n",
        ),
        (
            "nested quotes and an indented example",
            "> > @greenroom cancel\n> earlier discussion\n\nExample:\n\n    @greenroom deploy\n\n@greenroom recheck\n",
        ),
        (
            "multi-line inline code",
            "The bot understands `@greenroom\ndeploy` and ``@greenroom\n@greenroom trigger``; this one is real:\n\
             @greenroom trigger env=staging\n",
        ),
    ];
    let mut out = String::new();
    for (name, body) in cases {
        let _ = writeln!(out, "## {name}");
        for line in split_lines(body) {
            let _ = writeln!(out, "  |{}{line}", if line.is_empty() { "" } else { " " });
        }
        out.push_str(&render(&parse(body, BOT)));
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}

#[test]
fn an_edit_runs_only_what_it_adds() {
    let old = "Looks good.\n@greenroom deploy\n@greenroom deplyo";
    // Fixing a typo elsewhere runs nothing again, and the unknown word is not answered again.
    assert_eq!(
        new_since_edit(old, "Looks great.\n\n@greenroom deploy\n@greenroom deplyo", BOT),
        vec![]
    );
    // Adding a line runs that line only.
    assert_eq!(
        new_since_edit(
            old,
            "Looks good.\n@greenroom deploy\n@greenroom deplyo\n@greenroom status",
            BOT
        ),
        vec![cmd(4, Command::Status)]
    );
    // Fixing the command's typo runs the fixed command.
    assert_eq!(
        new_since_edit(old, "Looks good.\n@greenroom deploy\n@greenroom trigger", BOT),
        vec![cmd(3, Command::Trigger { env: None })]
    );
    // A second copy of a command is new; changing its argument is new.
    assert_eq!(
        new_since_edit("@greenroom retry", "@greenroom retry\n@greenroom retry", BOT),
        vec![cmd(2, Command::Retry)]
    );
    assert_eq!(
        new_since_edit("@greenroom deploy", "@greenroom deploy env=b", BOT),
        vec![cmd(1, deploy(Some("b")))]
    );
    // Removing commands runs nothing; quoting one runs nothing.
    assert_eq!(new_since_edit(old, "", BOT), vec![]);
    assert_eq!(new_since_edit("", "> @greenroom deploy", BOT), vec![]);
}

#[test]
fn permissions() {
    let all = [
        Command::Help,
        Command::Status,
        deploy(None),
        Command::Trigger { env: None },
        Command::Retry,
        Command::Recheck,
        Command::Cancel,
        Command::Approve,
        Command::Exclude { reason: None },
        Command::Include { reason: None },
    ];
    let who = [
        Standing::Admin,
        Standing::Maintainer,
        Standing::Trusted,
        Standing::Author,
        Standing::Other,
    ];
    let mut table = String::from("command  | admin maint trust author author+approved other\n");
    for c in &all {
        let _ = write!(table, "{:<8} |", c.name());
        for w in who {
            let cell = |approved| match authorize(c, w, "alice", approved) {
                Ok(()) => " yes",
                Err(_) => " no",
            };
            let _ = write!(table, "{}", cell(false));
            if w == Standing::Author {
                let _ = write!(table, "{}", cell(true));
            }
        }
        table.push('\n');
    }
    insta::assert_snapshot!("permission_table", table);

    let mut refusals = String::new();
    for (c, w) in [
        (Command::Approve, Standing::Trusted),
        (Command::Exclude { reason: None }, Standing::Author),
        (
            Command::Include {
                reason: Some("x".into()),
            },
            Standing::Other,
        ),
        (deploy(None), Standing::Author),
        (Command::Cancel, Standing::Other),
    ] {
        if let Err(r) = authorize(&c, w, "@alice", false) {
            let _ = writeln!(refusals, "{c} by {w:?}: {r}");
        }
    }
    insta::assert_snapshot!("refusals", refusals);
    assert_eq!(
        authorize(&Command::Approve, Standing::Other, "", false).map_err(|r| r.message),
        Err("Sorry, only maintainers can approve PRs for staging.".to_string())
    );
}

#[test]
fn help_lists_every_command() {
    let help = help_text("@greenroom");
    for name in [
        "deploy", "trigger", "retry", "recheck", "cancel", "status", "approve", "exclude", "include", "help",
    ] {
        assert!(help.contains(&format!("`@greenroom {name}")), "{name}");
    }
    assert_eq!(help_text(""), help_text(DEFAULT_BOT));
    insta::assert_snapshot!(help);
}

#[test]
fn the_help_text_parses_to_nothing() {
    // Its examples are in inline code: posting it cannot trigger the bot.
    assert_eq!(parse(&help_text(BOT), BOT), vec![]);
}

#[test]
fn code_spans_cannot_be_broken_out_of() {
    assert_eq!(code_span("now"), "`now`");
    assert_eq!(code_span("a`b"), "``a`b``");
    assert_eq!(code_span("`x``"), "``` `x`` ```");
    assert_eq!(code_span("two\nlines"), "`two lines`");
    assert_eq!(
        code_span(&"é".repeat(100)),
        format!("`{}…`", "é".repeat(MAX_ECHO_CHARS))
    );
}

#[test]
fn display_is_the_canonical_form() {
    assert_eq!(deploy(Some("staging")).to_string(), "deploy env=staging");
    assert_eq!(
        Command::Exclude {
            reason: Some("flaky".into())
        }
        .to_string(),
        "exclude flaky"
    );
    assert_eq!(Command::Include { reason: None }.to_string(), "include");
    assert_eq!(Command::Recheck.to_string(), "recheck");
}

#[test]
fn a_mebibyte_is_fine() {
    const MIB: usize = 1 << 20;
    let bodies = [
        "@greenroom deploy\n".repeat(MIB / 18),
        "`".repeat(MIB),
        "` `` ``` ".repeat(MIB / 9) + "\n@greenroom deploy",
        "\\`".repeat(MIB / 2) + "\n@greenroom deploy",
        ">".repeat(MIB) + "\n@greenroom deploy",
        "> a\n".repeat(MIB / 4) + "@greenroom deploy",
        "@greenroom exclude ".to_string() + &"w ".repeat(MIB / 2),
        "@greenroom ".to_string() + &"x".repeat(MIB),
        "```\n".to_string() + &"@greenroom deploy\n".repeat(MIB / 18),
        "a\n".repeat(MIB / 2) + "`\n@greenroom deploy\n`",
        "\r".repeat(MIB),
    ];
    for body in &bodies {
        let items = parse(body, BOT);
        assert!(items.len() <= MAX_COMMANDS + 1);
    }
    assert_eq!(parse(&bodies[0], BOT).len(), MAX_COMMANDS + 1);
    assert_eq!(parse(&bodies[9], BOT), vec![]);
    fuzz_one(bodies[2].as_bytes());
}

fn any_command() -> impl Strategy<Value = Command> {
    let env = proptest::option::of("[a-z0-9][a-z0-9_-]{0,20}");
    let reason = proptest::option::of("\\PC{0,40}".prop_filter_map("blank", |s: String| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_string())
    }));
    prop_oneof![
        env.clone().prop_map(|env| Command::Deploy { env }),
        env.prop_map(|env| Command::Trigger { env }),
        Just(Command::Retry),
        Just(Command::Recheck),
        Just(Command::Cancel),
        Just(Command::Status),
        Just(Command::Approve),
        reason.clone().prop_map(|reason| Command::Exclude { reason }),
        reason.prop_map(|reason| Command::Include { reason }),
        Just(Command::Help),
    ]
}

/// Lines that mean something to the scanner.
fn markdownish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("@greenroom deploy".to_string()),
        Just("@b trigger env=x".to_string()),
        Just("  @GreenRoom: retry".to_string()),
        Just("@greenroom exclude `flaky`".to_string()),
        Just("@greenroom nope".to_string()),
        Just("```".to_string()),
        Just("~~~~ info".to_string()),
        Just("> quoted".to_string()),
        Just(">".to_string()),
        Just("    indented".to_string()),
        Just("`".to_string()),
        Just("a `` b".to_string()),
        Just("\\`".to_string()),
        Just("<!--".to_string()),
        Just("-->".to_string()),
        Just("- item".to_string()),
        Just("# head".to_string()),
        Just(String::new()),
        "\\PC{0,12}",
    ];
    let sep = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    proptest::collection::vec((line, sep), 0..30)
        .prop_map(|lines| lines.into_iter().map(|(l, s)| l + s).collect::<String>())
}

proptest! {
    #[test]
    fn arbitrary_text_never_breaks_an_invariant(s in "\\PC{0,200}") {
        fuzz_one(s.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_break_an_invariant(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_one(&b);
    }

    #[test]
    fn markdown_never_breaks_an_invariant(body in markdownish()) {
        fuzz_one(body.as_bytes());
    }

    #[test]
    fn display_round_trips(c in any_command(), before in "[a-z .]{0,20}") {
        let body = format!("{before}\n\n@greenroom {c}\n");
        prop_assert_eq!(parse(&body, BOT), vec![cmd(3, c.clone())]);
    }

    #[test]
    fn commands_in_a_fenced_block_never_parse(
        ch in prop_oneof![Just('`'), Just('~')],
        len in 3usize..7,
        indent in 0usize..4,
        info in "[a-z]{0,8}",
        inner in proptest::collection::vec(any_command(), 1..5),
        closed in any::<bool>(),
    ) {
        let fence = ch.to_string().repeat(len);
        let shorter = ch.to_string().repeat(len - 1);
        let other = if ch == '`' { "~~~~~~~~" } else { "`````````" };
        let pad = " ".repeat(indent);
        let mut body = format!("Try this:\n{pad}{fence}{info}\n");
        for c in &inner {
            body.push_str(&format!("@greenroom {c}\n{shorter}\n{other}\n> x\n\n"));
        }
        if closed {
            body.push_str(&format!("{pad}{fence}\n"));
        }
        prop_assert_eq!(parse(&body, BOT), vec![]);
    }
}
