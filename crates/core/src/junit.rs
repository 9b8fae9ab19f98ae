//! JUnit XML reports (issue #6 point 2; seed 000: "clear versioning
//! reported in tests"): every suite run becomes a `<testsuite>` whose
//! properties say exactly what was tested (the manifest id, the cycle, the
//! environment and every component's commit or image), with the suite's own
//! JUnit test cases when it wrote any (merged in), or one test case for the
//! suite as a whole. A cycle's suites are written together as one
//! `<testsuites>` document.
//!
//! Pure: parsing takes the text, rendering returns it. The parser accepts
//! what common tools write (`<testsuites>` or a lone `<testsuite>`,
//! `<failure>`, `<error>`, `<skipped>`, `<system-out>`), ignores what it
//! does not know, and rejects what is not XML with the position.

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use std::fmt::Write as _;

/// How a test case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It passed.
    Passed,
    /// An assertion failed.
    Failed {
        /// The failure's message attribute.
        message: String,
        /// Its text.
        text: String,
    },
    /// It could not run properly.
    Errored {
        /// The error's message attribute.
        message: String,
        /// Its text.
        text: String,
    },
    /// Not run.
    Skipped {
        /// Why.
        message: String,
    },
}

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// Its name.
    pub name: String,
    /// Its class (or group).
    pub classname: String,
    /// Seconds.
    pub time: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// Captured output, if any.
    pub system_out: Option<String>,
}

/// One test suite.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestSuite {
    /// Its name.
    pub name: String,
    /// When it started (RFC 3339), if known.
    pub timestamp: Option<String>,
    /// Seconds.
    pub time: f64,
    /// Name-value pairs, in order.
    pub properties: Vec<(String, String)>,
    /// Its cases.
    pub cases: Vec<TestCase>,
}

impl TestSuite {
    /// Failed cases.
    pub fn failures(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
            .count()
    }

    /// Errored cases.
    pub fn errors(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Errored { .. }))
            .count()
    }

    /// Skipped cases.
    pub fn skipped(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped { .. }))
            .count()
    }
}

/// Why a JUnit document could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JunitError {
    /// Not well-formed XML.
    #[error("not well-formed XML at byte {position}: {message}")]
    Xml {
        /// Byte offset.
        position: u64,
        /// What is wrong.
        message: String,
    },
    /// Well-formed, but no `<testsuite>` or `<testsuites>` root.
    #[error("no <testsuites> or <testsuite> element: the root is <{root}>")]
    NotJunit {
        /// The root element's name.
        root: String,
    },
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn seconds(v: Option<String>) -> f64 {
    v.and_then(|s| s.trim().replace(',', "").parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0)
        .unwrap_or(0.0)
}

/// Where text goes while parsing.
#[derive(PartialEq)]
enum Sink {
    None,
    Outcome,
    SystemOut,
}

/// Parses a JUnit document into its suites.
pub fn parse(xml: &str) -> Result<Vec<TestSuite>, JunitError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut suites: Vec<TestSuite> = Vec::new();
    let mut suite: Option<TestSuite> = None;
    let mut case: Option<TestCase> = None;
    let mut sink = Sink::None;
    let mut text = String::new();
    let mut root: Option<String> = None;
    let mut depth = 0usize;
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| JunitError::Xml {
            position: pos,
            message: e.to_string(),
        })?;
        match ev {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if root.is_none() {
                    root = Some(name.clone());
                }
                if !empty {
                    depth += 1;
                }
                match name.as_str() {
                    "testsuite" => {
                        suite = Some(TestSuite {
                            name: attr(e, "name").unwrap_or_default(),
                            timestamp: attr(e, "timestamp"),
                            time: seconds(attr(e, "time")),
                            properties: Vec::new(),
                            cases: Vec::new(),
                        });
                        if empty && let Some(s) = suite.take() {
                            suites.push(s);
                        }
                    }
                    "property" => {
                        if let (Some(s), Some(n)) = (suite.as_mut(), attr(e, "name")) {
                            s.properties.push((n, attr(e, "value").unwrap_or_default()));
                        }
                    }
                    "testcase" => {
                        let c = TestCase {
                            name: attr(e, "name").unwrap_or_default(),
                            classname: attr(e, "classname").unwrap_or_default(),
                            time: seconds(attr(e, "time")),
                            outcome: Outcome::Passed,
                            system_out: None,
                        };
                        if empty {
                            if let Some(s) = suite.as_mut() {
                                s.cases.push(c);
                            }
                        } else {
                            case = Some(c);
                        }
                    }
                    "failure" | "error" | "skipped" => {
                        if let Some(c) = case.as_mut() {
                            let message = attr(e, "message").unwrap_or_default();
                            c.outcome = match name.as_str() {
                                "failure" => Outcome::Failed {
                                    message,
                                    text: String::new(),
                                },
                                "error" => Outcome::Errored {
                                    message,
                                    text: String::new(),
                                },
                                _ => Outcome::Skipped { message },
                            };
                            if !empty {
                                sink = Sink::Outcome;
                                text.clear();
                            }
                        }
                    }
                    "system-out" if !empty && case.is_some() => {
                        sink = Sink::SystemOut;
                        text.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(t) if sink != Sink::None => {
                text.push_str(&t.decode().unwrap_or_default());
            }
            Event::CData(t) if sink != Sink::None => {
                text.push_str(&t.decode().unwrap_or_default());
            }
            Event::GeneralRef(r) if sink != Sink::None => {
                if let Ok(Some(ch)) = r.resolve_char_ref() {
                    text.push(ch);
                } else if let Some(s) = resolve_predefined_entity(&r.decode().unwrap_or_default()) {
                    text.push_str(s);
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match name.as_str() {
                    "failure" | "error" if sink == Sink::Outcome => {
                        if let Some(c) = case.as_mut() {
                            match &mut c.outcome {
                                Outcome::Failed { text: t, .. } | Outcome::Errored { text: t, .. } => {
                                    *t = std::mem::take(&mut text);
                                }
                                _ => {}
                            }
                        }
                        sink = Sink::None;
                    }
                    "skipped" => sink = Sink::None,
                    "system-out" if sink == Sink::SystemOut => {
                        if let Some(c) = case.as_mut() {
                            c.system_out = Some(std::mem::take(&mut text));
                        }
                        sink = Sink::None;
                    }
                    "testcase" => {
                        if let (Some(c), Some(s)) = (case.take(), suite.as_mut()) {
                            s.cases.push(c);
                        }
                    }
                    "testsuite" => {
                        if let Some(s) = suite.take() {
                            suites.push(s);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let _ = depth;
    match root.as_deref() {
        Some("testsuites") | Some("testsuite") => Ok(suites),
        other => Err(JunitError::NotJunit {
            root: other.unwrap_or("nothing").to_string(),
        }),
    }
}

fn x(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s)
}

/// Renders suites as one `<testsuites>` document (`name` on the root).
pub fn render(name: &str, suites: &[TestSuite]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(TestSuite::failures).sum();
    let errors: usize = suites.iter().map(TestSuite::errors).sum();
    let skipped: usize = suites.iter().map(TestSuite::skipped).sum();
    let time: f64 = suites.iter().map(|s| s.time).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        x(name)
    );
    for s in suites {
        let _ = write!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\"",
            x(&s.name),
            s.cases.len(),
            s.failures(),
            s.errors(),
            s.skipped(),
            s.time
        );
        if let Some(t) = &s.timestamp {
            let _ = write!(out, " timestamp=\"{}\"", x(t));
        }
        out.push_str(">\n");
        if !s.properties.is_empty() {
            out.push_str("    <properties>\n");
            for (k, v) in &s.properties {
                let _ = writeln!(out, "      <property name=\"{}\" value=\"{}\"/>", x(k), x(v));
            }
            out.push_str("    </properties>\n");
        }
        for c in &s.cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                x(&c.name),
                x(&c.classname),
                c.time
            );
            if c.outcome == Outcome::Passed && c.system_out.is_none() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            match &c.outcome {
                Outcome::Passed => {}
                Outcome::Failed { message, text } => {
                    let _ = writeln!(out, "      <failure message=\"{}\">{}</failure>", x(message), x(text));
                }
                Outcome::Errored { message, text } => {
                    let _ = writeln!(out, "      <error message=\"{}\">{}</error>", x(message), x(text));
                }
                Outcome::Skipped { message } => {
                    let _ = writeln!(out, "      <skipped message=\"{}\"/>", x(message));
                }
            }
            if let Some(o) = &c.system_out {
                let _ = writeln!(out, "      <system-out>{}</system-out>", x(o));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Characters XML 1.0 cannot carry at all (control characters other than
/// tab, newline and carriage return): replaced, so that a log with a stray
/// escape sequence still gives a valid report.
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="0.52" timestamp="2026-11-23T10:00:00" hostname="ci">
<testcase classname="tests.test_runners" name="test_register[instance_type-fresh]" time="0.101"/>
<testcase classname="tests.test_runners" name="test_register[group_type-stale]" time="0.2"><failure message="assert 500 == 201">E   AssertionError: 500 &amp; &lt;ForeignKeyViolation&gt; &#x263A;</failure><system-out>POST /runners</system-out></testcase>
<testcase classname="tests.test_runners" name="test_delete" time="0"><skipped message="not on staging"/></testcase>
</testsuite></testsuites>"#;

    #[test]
    fn a_pytest_report_is_read() {
        let suites = parse(PYTEST).expect("valid JUnit");
        assert_eq!(suites.len(), 1);
        let s = &suites[0];
        assert_eq!(s.name, "pytest");
        assert_eq!((s.cases.len(), s.failures(), s.skipped(), s.errors()), (3, 1, 1, 0));
        assert_eq!(s.timestamp.as_deref(), Some("2026-11-23T10:00:00"));
        match &s.cases[1].outcome {
            Outcome::Failed { message, text } => {
                assert_eq!(message, "assert 500 == 201");
                assert_eq!(text, "E   AssertionError: 500 & <ForeignKeyViolation> ☺");
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(s.cases[1].system_out.as_deref(), Some("POST /runners"));
    }

    #[test]
    fn a_lone_testsuite_and_errors_are_read() {
        let xml = r#"<testsuite name="go"><testcase name="TestA"><error message="panic">boom</error></testcase><testcase name="TestB"/></testsuite>"#;
        let s = parse(xml).expect("valid");
        assert_eq!(s[0].errors(), 1);
        assert_eq!(s[0].cases[1].outcome, Outcome::Passed);
    }

    #[test]
    fn what_is_not_junit_is_refused_with_the_reason() {
        assert_eq!(
            parse("<html><body/></html>"),
            Err(JunitError::NotJunit { root: "html".into() })
        );
        let e = parse("<testsuite><testcase></testsuite>").expect_err("malformed");
        assert!(e.to_string().contains("not well-formed"), "{e}");
        assert_eq!(parse(""), Err(JunitError::NotJunit { root: "nothing".into() }));
    }

    #[test]
    fn rendering_round_trips_and_counts() {
        let mut suites = parse(PYTEST).expect("valid");
        suites[0].properties = vec![
            ("greenroom.manifest".into(), "ab12\"<>&".into()),
            ("greenroom.commit.ogr".into(), "0123456789".into()),
        ];
        let xml = render("cycle 7", &suites);
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{xml}"
        );
        let again = parse(&xml).expect("our own output is valid");
        assert_eq!(again, suites);
    }

    #[test]
    fn control_characters_are_made_safe() {
        assert_eq!(xml_safe("a\u{1b}[31mred\tok\n"), "a\u{FFFD}[31mred\tok\n");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn any_names_and_texts_round_trip(
            name in "\\PC{0,40}",
            message in "\\PC{0,40}",
            text in "\\PC{0,80}",
            out in proptest::option::of("\\PC{1,80}"),
            prop in ("\\PC{1,20}", "\\PC{0,20}"),
        ) {
            let (name, message, text) = (xml_safe(&name), xml_safe(&message), xml_safe(&text));
            let out = out.map(|o| xml_safe(&o));
            let suite = TestSuite {
                name: name.clone(),
                timestamp: None,
                time: 1.5,
                properties: vec![(xml_safe(&prop.0), xml_safe(&prop.1))],
                cases: vec![TestCase {
                    name,
                    classname: "c".into(),
                    time: 0.25,
                    outcome: Outcome::Failed { message, text },
                    system_out: out,
                }],
            };
            let back = parse(&render("r", std::slice::from_ref(&suite))).expect("valid");
            prop_assert_eq!(back, vec![suite]);
        }
    }
}
