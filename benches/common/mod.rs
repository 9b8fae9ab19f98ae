//! What the benchmarks that drive the real `greenroom` binary share (each
//! bench is its own binary and includes this module).

use std::path::Path;
use std::process::Command;

/// The `greenroom` binary cargo built for this bench.
pub fn greenroom() -> &'static str {
    env!("CARGO_BIN_EXE_greenroom")
}

/// Runs `greenroom --config CONFIG ARGS...`: (success, stdout, stderr).
pub fn run(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(greenroom())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run greenroom: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `greenroom stop --env ENV` when dropped, so what a bench started
/// stops even when it panics.
pub struct StopOnDrop<'a>(pub &'a Path, pub &'static str);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = run(self.0, &["stop", "--env", self.1]);
    }
}
