//! Helpers for the pending-set tests (`e2e_pending`, `e2e_culprits`): a
//! sample repository as a `git` forge with changes under `refs/pending/*`,
//! a server that stages them, and what it tells each change.

use super::*;

/// A change: a commit on top of `main` by `author`, exposed as `refs/pending/N`.
pub fn change(repo: &Path, n: u64, author: &str, when: &str, file: &str, text: &str) -> String {
    git(repo, &["checkout", "-q", "-b", &format!("change-{n}"), "main"]);
    std::fs::write(repo.join(file), text).expect("write");
    git(repo, &["add", file]);
    let email = format!("{author}@example.com");
    let date = format!("{when} +0000");
    let out = Command::new("git")
        .args([
            "-c",
            &format!("user.name={author}"),
            "-c",
            &format!("user.email={email}"),
        ])
        .args(["commit", "-q", "-m", &format!("change {n} by {author}")])
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .current_dir(repo)
        .output()
        .expect("git commit");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let head = git(repo, &["rev-parse", "HEAD"]);
    git(repo, &["update-ref", &format!("refs/pending/{n}"), &head]);
    git(repo, &["checkout", "-q", "main"]);
    head
}

/// Where the git forge of a sample repository writes its feedback.
pub fn forge_dir(state: &Path, repo: &str) -> PathBuf {
    let root = state.join("forge-git");
    std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{repo}-")))
                && p.join("statuses.jsonl").exists()
        })
        .unwrap_or_else(|| panic!("no feedback directory for {repo} under {}", root.display()))
}

/// The server's port for sandbox `index`.
pub fn server_port(index: u16) -> u16 {
    21000 + 100 * index + 90
}

/// A sandbox whose repositories are git forges and whose `staging` follows
/// the pending set of `components`, with `solo` deployed by hand only. The
/// server listens on [`server_port`]; settle and cooldown are zero; `extra`
/// is appended (`[pending]`, `[[suite]]`...), with `@ROOT@` replaced by the
/// sandbox directory.
pub fn pending_sandbox(index: u16, components: &[&str], extra: &str) -> Sandbox {
    let port = server_port(index);
    let extra = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n\n\
         [[user]]\nname = \"watcher\"\ntoken = \"file:@ROOT@/watcher.token\"\nrole = \"viewer\"\n{extra}"
    );
    let sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    let list: Vec<String> = components.iter().map(|c| format!("\"{c}\"")).collect();
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("channels = {", "forge = \"git\"\nchannels = {")
        .replacen(
            "name = \"staging\"\n",
            &format!(
                "name = \"staging\"\nfollows = \"pending\"\ncomponents = [{}]\n",
                list.join(", ")
            ),
            1,
        )
        .replacen("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n", 1)
        .replace("@ROOT@", &sb.root.display().to_string());
    sb.write_config(&text);
    std::fs::write(sb.root.join("watcher.token"), WATCHER).expect("token file");
    sb
}

/// The API token of the sandbox's viewer.
const WATCHER: &str = "watcher-token-5be1d2a9";

/// Starts `greenroom serve` and waits until it answers.
pub fn serve(sb: &Sandbox, index: u16) -> Bg {
    let server = sb.spawn(&["serve"]);
    let port = server_port(index);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    server
}

/// The cycles the server scheduled on `staging`, newest first.
pub fn scheduled(sb: &Sandbox) -> Vec<Value> {
    sb.history()
        .into_iter()
        .filter(|c| c["environment"] == "staging" && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled")))
        .collect()
}

/// The culprit-search runs recorded so far.
pub fn search_runs(sb: &Sandbox) -> usize {
    sb.history()
        .into_iter()
        .filter(|c| c["request"].as_str().is_some_and(|r| r.starts_with("culprit search")))
        .count()
}

/// The decisions recorded for `staging`, newest first, as `kind: reason`
/// (from the API, as the sandbox's viewer).
pub fn decisions(index: u16) -> Vec<String> {
    let port = server_port(index);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let req = format!(
        "GET /api/v1/decisions?environment=staging&limit=500 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {WATCHER}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("write request");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    v.as_array()
        .expect("decisions")
        .iter()
        .map(|d| {
            format!(
                "{}: {}",
                d["kind"].as_str().unwrap_or(""),
                d["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The states of the `greenroom/staging` status on a commit, in order.
pub fn status_states(sb: &Sandbox, repo: &str, head: &str) -> Vec<String> {
    let statuses = std::fs::read_to_string(forge_dir(&sb.state, repo).join("statuses.jsonl")).unwrap_or_default();
    statuses
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["sha"] == head && v["context"] == "greenroom/staging")
        .map(|v| v["state"].as_str().unwrap_or("").to_string())
        .collect()
}

/// What greenroom said on a change (every comment, appended).
pub fn comments(sb: &Sandbox, repo: &str) -> String {
    std::fs::read_to_string(forge_dir(&sb.state, repo).join("comments.jsonl")).unwrap_or_default()
}

/// Stops what the pending tests leave running: staging and the dev slots.
pub fn clean_up(sb: &Sandbox) {
    sb.ok(&["stop", "--env", "staging"]);
    for slot in ["dev-1", "dev-2"] {
        sb.ok(&["release", "--env", slot, "--force"]);
        sb.ok(&["stop", "--env", slot]);
    }
}
