//! Chat commands: each command and its arguments, the errors people read
//! (snapshots, with their usage), the help text, and properties: no text
//! makes the parser panic, and every command's canonical text reads back
//! the same.

use super::*;
use proptest::prelude::*;
use std::fmt::Write as _;

fn ok(text: &str) -> ChatCommand {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn every_command_parses() {
    assert_eq!(ok(""), ChatCommand::Help);
    assert_eq!(ok("  help  "), ChatCommand::Help);
    assert_eq!(
        ok("deploy staging ogr=123 api=branch:fix"),
        ChatCommand::Deploy {
            env: "staging".into(),
            base: None,
            overrides: vec!["ogr=123".into(), "api=branch:fix".into()],
        }
    );
    assert_eq!(
        ok("DEPLOY dev-1 --base prod ogr=pr:4"),
        ChatCommand::Deploy {
            env: "dev-1".into(),
            base: Some("prod".into()),
            overrides: vec!["ogr=pr:4".into()],
        }
    );
    assert_eq!(
        ok("deploy solo --base=stg"),
        ChatCommand::Deploy {
            env: "solo".into(),
            base: Some("stg".into()),
            overrides: vec![],
        }
    );
    assert_eq!(
        ok("rollback staging --to previous"),
        ChatCommand::Rollback {
            env: "staging".into(),
            to: Some("previous".into()),
        }
    );
    assert_eq!(
        ok("rollback staging --to=1a2b3c4d"),
        ChatCommand::Rollback {
            env: "staging".into(),
            to: Some("1a2b3c4d".into()),
        }
    );
    assert_eq!(
        ok("rollback staging"),
        ChatCommand::Rollback {
            env: "staging".into(),
            to: None
        }
    );
    assert_eq!(
        ok("pause staging  release   freeze"),
        ChatCommand::Pause {
            env: "staging".into(),
            reason: Some("release freeze".into()),
        }
    );
    assert_eq!(
        ok("pause staging"),
        ChatCommand::Pause {
            env: "staging".into(),
            reason: None
        }
    );
    assert_eq!(ok("resume staging"), ChatCommand::Resume { env: "staging".into() });
    assert_eq!(ok("status"), ChatCommand::Status { env: None });
    assert_eq!(
        ok("Status dev"),
        ChatCommand::Status {
            env: Some("dev".into())
        }
    );
    assert_eq!(
        ok("lease dev 2h trying the fix"),
        ChatCommand::Lease {
            env: "dev".into(),
            ttl: Some(Duration::from_secs(7200)),
            reason: Some("trying the fix".into()),
        }
    );
    assert_eq!(
        ok("lease dev"),
        ChatCommand::Lease {
            env: "dev".into(),
            ttl: None,
            reason: None
        }
    );
    assert_eq!(
        ok("lease dev for a demo"),
        ChatCommand::Lease {
            env: "dev".into(),
            ttl: None,
            reason: Some("for a demo".into()),
        }
    );
    assert_eq!(ok("release dev-2"), ChatCommand::Release { env: "dev-2".into() });
}

#[test]
fn roles_follow_the_api() {
    assert_eq!(ok("help").needs(), None);
    assert_eq!(ok("status").needs(), Some(Role::Viewer));
    assert_eq!(ok("status staging").needs(), Some(Role::Viewer));
    for t in [
        "deploy staging ogr=1",
        "rollback staging",
        "pause staging",
        "resume staging",
        "lease staging",
        "release staging",
    ] {
        assert_eq!(ok(t).needs(), Some(Role::Deployer), "{t}");
        assert!(ok(t).changes_state(), "{t}");
    }
    assert!(!ok("status staging").changes_state());
    assert_eq!(ok("status staging").env(), Some("staging"));
    assert_eq!(ok("status").env(), None);
}

#[test]
fn errors_say_what_was_wrong_and_show_usage() {
    let cases = [
        "frobnicate staging",
        "deploy",
        "deploy ogr=123",
        "deploy staging ogr",
        "deploy staging ogr=pr:x",
        "deploy staging --force ogr=1",
        "deploy staging --base",
        "deploy staging --base prod --base stg",
        "deploy staging --base pr%d",
        "deploy stag!ng ogr=1",
        "rollback",
        "rollback staging --to",
        "rollback staging previous",
        "pause",
        "resume staging now",
        "release staging please",
        "status staging dev",
        "lease dev 0s",
        "lease dev 30s",
        "lease dev 2x trying",
        "lease --env dev",
    ];
    let mut out = String::new();
    for text in cases {
        let e = parse(text).expect_err(text);
        let _ = writeln!(out, "> {text}\n{}\n", e.render("/greenroom"));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn long_reasons_and_many_overrides_are_refused() {
    let long = "x".repeat(MAX_REASON_CHARS + 1);
    let e = parse(&format!("pause staging {long}")).unwrap_err();
    assert!(e.message.contains("too long"), "{e}");
    let many: Vec<String> = (0..=MAX_OVERRIDES).map(|i| format!("c{i}=1")).collect();
    let e = parse(&format!("deploy staging {}", many.join(" "))).unwrap_err();
    assert!(e.message.contains("At most"), "{e}");
}

#[test]
fn user_text_is_quoted_safely() {
    let e = parse("deploy `<!channel>` ogr=1").unwrap_err();
    assert!(e.message.contains("`` `<!channel>` ``"), "{}", e.message);
}

#[test]
fn help_lists_every_command() {
    let help = help_text("/greenroom");
    for (word, _, _) in USAGE {
        assert!(help.contains(&format!("`/greenroom {word}")), "{word}");
    }
    assert_eq!(help_text("deploybot"), help_text("/deploybot"));
    insta::assert_snapshot!(help);
}

#[test]
fn canonical_texts() {
    for t in [
        "deploy staging --base prod ogr=123",
        "lease dev 2h trying the fix",
        "lease dev 90m",
        "lease dev 61s",
        "pause staging release freeze",
        "rollback staging --to previous",
        "status",
        "help",
    ] {
        assert_eq!(ok(t).to_string(), t);
    }
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("deploy".to_string()),
        Just("rollback".to_string()),
        Just("pause".to_string()),
        Just("resume".to_string()),
        Just("status".to_string()),
        Just("lease".to_string()),
        Just("release".to_string()),
        Just("help".to_string()),
        Just("--base".to_string()),
        Just("--to".to_string()),
        Just("2h".to_string()),
        Just("ogr=1".to_string()),
        Just("staging".to_string()),
        "[a-z0-9=:\\-_.`<>&!]{0,12}",
        "\\PC{0,6}",
    ]
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn commands_read_back_from_their_canonical_text(words in proptest::collection::vec(word(), 0..8), sep in "[ \t\n]{1,3}") {
        let text = words.join(&sep);
        match parse(&text) {
            Ok(c) => prop_assert_eq!(parse(&c.to_string()), Ok(c.clone()), "{:?} -> {}", text, c),
            Err(e) => {
                let r = e.render("/greenroom");
                prop_assert!(r.contains("/greenroom"), "{}", r);
            }
        }
    }
}

const CONFIG: &str = r#"
[[component]]
name = "ogr"
repo = "https://example.org/ogr.git"
build = "true"
run = "true"

[[environment]]
name = "staging"

[slack]
signing_secret = "file:secrets/slack"

[[user]]
name = "alice"
token = "env:ALICE_TOKEN"
slack = "U024BE7LH"
role = "deployer"
"#;

fn config(text: &str) -> Result<crate::config::Config, String> {
    crate::config::parse(
        text,
        std::path::Path::new("greenroom.toml"),
        std::path::Path::new("/cfg"),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn config_maps_slack_users_and_names_the_signing_secret() {
    use crate::secret::SecretRef;
    let c = config(CONFIG).unwrap();
    assert_eq!(
        c.slack.signing_secret,
        Some(SecretRef::File("/cfg/secrets/slack".into()))
    );
    assert_eq!(c.users[0].slack.as_deref(), Some("U024BE7LH"));
    // Never the secret's value: only where it is.
    assert!(!format!("{:?}", c.slack).contains("xoxb"));
    let none = config(&CONFIG.replace("[slack]\nsigning_secret = \"file:secrets/slack\"\n", "")).unwrap();
    assert_eq!(none.slack.signing_secret, None);
}

#[test]
fn config_refuses_bad_slack_settings() {
    let e = config(&CONFIG.replace("U024BE7LH", "@alice")).unwrap_err();
    assert!(
        e.contains("user[alice].slack") && e.contains("not a Slack user id"),
        "{e}"
    );
    let e = config(&CONFIG.replace("file:secrets/slack", "hunter2")).unwrap_err();
    assert!(e.contains("slack.signing_secret"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let twice =
        format!("{CONFIG}\n[[user]]\nname = \"bob\"\ntoken = \"env:BOB\"\nslack = \"U024BE7LH\"\nrole = \"viewer\"\n");
    let e = config(&twice).unwrap_err();
    assert!(e.contains("already the slack login of user `alice`"), "{e}");
    let e = config(&CONFIG.replace("signing_secret", "secret")).unwrap_err();
    assert!(e.contains("secret"), "{e}");
}
