use super::super::{Config, ConfigErrors, SuiteKind, parse};
use crate::matrix::{Action, Target};
use std::path::Path;

const BASE: &str = r#"
[[component]]
name = "ogr"
repo = "r"
run = "x"

[[environment]]
name = "staging"
"#;

fn try_parse(extra: &str) -> Result<Config, ConfigErrors> {
    parse(
        &format!("{BASE}{extra}"),
        Path::new("greenroom.toml"),
        Path::new("/cfg"),
    )
}

fn errors(extra: &str) -> String {
    match try_parse(extra) {
        Ok(_) => panic!("config was accepted:\n{extra}"),
        Err(e) => e.to_string(),
    }
}

const MATRIX: &str = r#"
[[suite]]
name = "runner-matrix"
kind = "http-matrix"
component = "ogr"
concurrency = 2

[suite.axes]
runner_type = ["instance_type", "group_type", "project_type"]
age = ["fresh", "stale"]

[[suite.setup]]
name = "seed"
run = "echo \"$MATRIX_RUNNER_TYPE\""

[[suite.step]]
name = "register"
method = "post"
path = "/api/v4/runners"
headers = { X-Combination = "{combination}" }
body = '{"runner_type": "{runner_type}", "age": "{age}", "extra": {"n": 1}}'
capture = { token = "/token", id = "/id" }
expect = { status = 201, matches = { "/token" = "^glrt-" }, latency_ms = 500 }

[[suite.step]]
name = "verify"
method = "POST"
path = "/api/v4/runners/verify"
body = '{"token": "{token}"}'
expect = { status = 200, json = { "/runner_type" = "{runner_type}", "/id" = 1, "/tags" = ["a"] } }

[[suite.step]]
name = "delete"
method = "DELETE"
path = "/api/v4/runners?token={token}"
expect = { status = [204, 404] }
"#;

#[test]
fn a_matrix_loads() {
    let c = try_parse(MATRIX).unwrap();
    let s = &c.suites[0];
    assert_eq!(s.run, "");
    // A matrix exercises its component.
    assert_eq!(s.components, ["ogr"]);
    let SuiteKind::HttpMatrix(m) = &s.kind else {
        panic!("not a matrix: {s:?}")
    };
    assert_eq!(m.target, Target::Component("ogr".into()));
    // Axes in the file's order, not alphabetical.
    let names: Vec<&str> = m.axes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["runner_type", "age"]);
    assert_eq!(m.axes[0].1, ["instance_type", "group_type", "project_type"]);
    assert_eq!(m.concurrency, 2);
    assert_eq!(m.setup.len(), 1);
    assert!(matches!(&m.setup[0].action, Action::Run(r) if r.contains("MATRIX_RUNNER_TYPE")));
    let names: Vec<&str> = m.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["register", "verify", "delete"]);
    let Action::Request(r) = &m.steps[0].action else {
        panic!("not a request")
    };
    assert_eq!(r.method, "POST");
    assert_eq!(r.headers, [("X-Combination".to_string(), "{combination}".to_string())]);
    assert_eq!(
        m.steps[0].capture,
        [
            ("id".to_string(), "/id".to_string()),
            ("token".to_string(), "/token".to_string())
        ]
    );
    assert_eq!(m.steps[0].expect.status, [201]);
    assert_eq!(m.steps[0].expect.latency_ms, Some(500));
    assert_eq!(m.steps[1].expect.json.len(), 3);
    assert_eq!(m.steps[2].expect.status, [204, 404]);
    // A command suite is still a command suite.
    let c = try_parse("[[suite]]\nname = \"smoke\"\nrun = \"true\"\n").unwrap();
    assert_eq!(c.suites[0].kind, SuiteKind::Command);
    // A base URL instead of a component.
    let c = try_parse(
        "[[suite]]\nname = \"m\"\nkind = \"http-matrix\"\nbase_url = \"http://127.0.0.1:9/\"\n[[suite.step]]\nname = \"a\"\nmethod = \"GET\"\npath = \"/{combination}\"\n",
    )
    .unwrap();
    let SuiteKind::HttpMatrix(m) = &c.suites[0].kind else {
        panic!("not a matrix")
    };
    assert_eq!(m.target, Target::BaseUrl("http://127.0.0.1:9".into()));
    assert!(c.suites[0].components.is_empty());
}

#[test]
fn matrix_problems_are_located() {
    let text = errors(
        r#"
[[suite]]
name = "a"
kind = "matrix"

[[suite]]
name = "b"
run = "true"
component = "ogr"

[[suite]]
name = "c"
kind = "http-matrix"
run = "true"
component = "nope"
concurrency = 0

[suite.axes]
runner_type = ["x", "x"]
combination = ["y"]
empty = []

[[suite.setup]]
name = "seed"
run = "true"
expect = { status = 200 }

[[suite.step]]
name = "register"
method = "FETCH"
path = "api/{nope}"
headers = { "bad header" = "v" }
body = '{"a": {runner_type}x}'
capture = { runner_type = "token" }
expect = { status = [99], json = { "nope" = "{later}" }, matches = { "/id" = "([" }, latency_ms = 0 }
"#,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn steps_need_a_request_or_a_command_and_a_target() {
    let text = errors(
        r#"
[[suite]]
name = "d"
kind = "http-matrix"

[[suite]]
name = "e"
kind = "http-matrix"
component = "ogr"
base_url = "ftp://x"

[[suite.step]]
name = "a"
method = "GET"

[[suite.step]]
name = "a"
run = "true"
method = "GET"
path = "/"

[[suite.step]]
name = "uses-later"
method = "GET"
path = "/{token}"

[[suite.step]]
name = "captures"
method = "GET"
path = "/"
capture = { token = "/token" }
"#,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn too_many_combinations() {
    let values: Vec<String> = (0..11).map(|i| format!("\"v{i}\"")).collect();
    let list = values.join(", ");
    let text = errors(&format!(
        "[[suite]]\nname = \"big\"\nkind = \"http-matrix\"\ncomponent = \"ogr\"\naxes = {{ a = [{list}], b = [{list}], c = [{list}] }}\n[[suite.step]]\nname = \"s\"\nmethod = \"GET\"\npath = \"/\"\n"
    ));
    assert!(
        text.contains("suite[big].axes: the axes make 1331 combinations; at most 1000 are allowed"),
        "{text}"
    );
}
