//! Progress while a cycle runs: each stage and component, with durations.
//!
//! The engine reports through the [`Reporter`] trait and never prints
//! itself. On a terminal, steps show as spinners (indicatif); otherwise as
//! plain lines on stderr; with `--json`, nothing (one result is printed at
//! the end).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// Receives progress from the engine.
pub trait Reporter: Send + Sync {
    /// A stage begins.
    fn stage(&self, name: &str);
    /// A step of a stage begins for a component.
    fn started(&self, stage: &str, component: &str, what: &str);
    /// That step ended.
    fn finished(&self, stage: &str, component: &str, ok: bool, detail: &str, took: Duration);
    /// Something worth saying.
    fn note(&self, message: &str);
}

/// Says nothing (for `--json` and tests).
pub struct Silent;

impl Reporter for Silent {
    fn stage(&self, _: &str) {}
    fn started(&self, _: &str, _: &str, _: &str) {}
    fn finished(&self, _: &str, _: &str, _: bool, _: &str, _: Duration) {}
    fn note(&self, _: &str) {}
}

/// Human progress on stderr.
pub struct Human {
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl Human {
    /// Spinners on a terminal, plain lines otherwise.
    pub fn new() -> Human {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| (MultiProgress::new(), Mutex::new(HashMap::new())));
        Human { bars }
    }
}

impl Default for Human {
    fn default() -> Self {
        Human::new()
    }
}

fn ms(d: Duration) -> String {
    greenroom_core::time::format_span(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Reporter for Human {
    fn stage(&self, name: &str) {
        match &self.bars {
            Some((m, _)) => {
                let _ = m.println(name);
            }
            None => eprintln!("{name}"),
        }
    }

    fn started(&self, stage: &str, component: &str, what: &str) {
        if let Some((m, bars)) = &self.bars {
            let pb = m.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg} {elapsed}") {
                pb.set_style(style);
            }
            pb.set_message(format!("{component}: {what}"));
            pb.enable_steady_tick(Duration::from_millis(100));
            if let Ok(mut b) = bars.lock() {
                b.insert(format!("{stage}/{component}"), pb);
            }
        }
    }

    fn finished(&self, stage: &str, component: &str, ok: bool, detail: &str, took: Duration) {
        let mark = if ok { "ok " } else { "FAILED" };
        let line = format!("  {mark} {component}: {detail} ({})", ms(took));
        match &self.bars {
            Some((m, bars)) => {
                if let Some(pb) = bars
                    .lock()
                    .ok()
                    .and_then(|mut b| b.remove(&format!("{stage}/{component}")))
                {
                    pb.finish_and_clear();
                    m.remove(&pb);
                }
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn note(&self, message: &str) {
        match &self.bars {
            Some((m, _)) => {
                let _ = m.println(message);
            }
            None => eprintln!("{message}"),
        }
    }
}
