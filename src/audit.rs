//! The audit trail (issue #5 point 9): every action that changes an
//! environment — deploy, rollback, pause, resume, lease, release, cancel —
//! recorded with who, when, through which surface (`App::surface`: `cli`,
//! `api`, `schedule`, `chat`) and why; listed by `greenroom audit` and
//! `GET /api/v1/audit`. Recording never fails the action: a store error is
//! logged.

use crate::app::App;
use greenroom_store::AuditRecord;

/// Records one action by `app.holder` through `app.surface`.
pub async fn record(app: &App, action: &str, environment: &str, detail: &str, reason: &str, cycle: Option<i64>) {
    let entry = AuditRecord {
        id: 0,
        at: app.now(),
        actor: app.holder.clone(),
        surface: app.surface.clone(),
        action: action.to_string(),
        environment: environment.to_string(),
        detail: detail.to_string(),
        reason: reason.to_string(),
        cycle_id: cycle,
    };
    if let Err(e) = app.store.record_audit(&entry).await {
        tracing::warn!(%environment, %action, "cannot record the action in the audit trail: {e}");
    }
}

/// One action as shown (times in RFC 3339).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AuditView {
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// Through what.
    pub surface: String,
    /// What.
    pub action: String,
    /// Where.
    pub environment: String,
    /// Details.
    pub detail: String,
    /// Why.
    pub reason: String,
    /// The cycle it started.
    pub cycle: Option<i64>,
}

impl From<&AuditRecord> for AuditView {
    fn from(a: &AuditRecord) -> AuditView {
        AuditView {
            at: greenroom_core::time::format(a.at),
            actor: a.actor.clone(),
            surface: a.surface.clone(),
            action: a.action.clone(),
            environment: a.environment.clone(),
            detail: a.detail.clone(),
            reason: a.reason.clone(),
            cycle: a.cycle_id,
        }
    }
}

/// The newest actions, on an environment (its instances) or everywhere.
pub async fn list(app: &App, env: Option<&str>, limit: i64) -> anyhow::Result<Vec<AuditView>> {
    let names: Option<Vec<String>> = match env {
        Some(e) => Some(
            app.config
                .lookup_instances(e)
                .map_err(crate::error::input)?
                .into_iter()
                .map(|i| i.name)
                .collect(),
        ),
        None => None,
    };
    let rows = app.store.audit(names.as_deref(), limit).await?;
    Ok(rows.iter().map(AuditView::from).collect())
}

/// Human form: one line per action, newest first.
pub fn render(rows: &[AuditView]) -> String {
    if rows.is_empty() {
        return "no actions recorded\n".into();
    }
    let mut out = String::new();
    for a in rows {
        let cycle = a.cycle.map(|c| format!(" (cycle {c})")).unwrap_or_default();
        let why = if a.reason.is_empty() {
            String::new()
        } else {
            format!(" — {}", a.reason)
        };
        out.push_str(&format!(
            "{}  {:<8} {:<10} by {} via {}: {}{cycle}{why}\n",
            a.at, a.action, a.environment, a.actor, a.surface, a.detail
        ));
    }
    out
}
