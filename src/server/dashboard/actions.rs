//! Actions: `GET /confirm/{action}` asks for confirmation and a reason,
//! `POST /actions/{action}` (CSRF token, same origin) sends the request to
//! the JSON API (`/api/v1`, in process, as the signed-in user: see
//! `Users::internal_authorization`),
//! so the API's role checks, recording and audit trail apply exactly as for
//! the CLI. The dashboard only hides what the user's role does not allow;
//! the API is what refuses.
//!
//! | action | on | API call |
//! |---|---|---|
//! | pause, resume | `env` | `POST /environments/{env}/pause`, `/resume` |
//! | release | `env` | `POST /environments/{env}/release` (`force` when someone else holds it: admin) |
//! | rollback | `env` | `POST /environments/{env}/rollback` `{"to", "reason"}` |
//! | cancel | `env` or `cycle` | `POST /environments/{env}/cancel` or `/cycles/{id}/cancel` |
//! | approve | `cycle` | `POST /cycles/{id}/approve` |
//! | retry | `cycle` | `POST /cycles/{id}/retry` |

use super::html::{Html, url_part};
use super::session::check_csrf;
use super::{Dash, PageError, Viewer, respond, signed_in};
use crate::server::Shared;
use axum::body::Body;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Router};
use serde::Deserialize;
use std::sync::Arc;
use tower::ServiceExt;

/// Largest API answer read back.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// What an action is about.
#[derive(Debug, Default, Deserialize)]
pub struct Target {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    cycle: Option<i64>,
}

/// The confirmation form, posted.
#[derive(Debug, Deserialize)]
pub struct ActForm {
    csrf: String,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    cycle: Option<i64>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    to: Option<String>,
}

/// A known action: its label and whether it is about a cycle.
fn known(action: &str) -> Option<(&'static str, bool)> {
    Some(match action {
        "pause" => ("Pause scheduled cycles of", false),
        "resume" => ("Resume scheduled cycles of", false),
        "release" => ("Release the lease of", false),
        "rollback" => ("Roll back", false),
        "cancel" => ("Cancel the running cycle", false),
        "approve" => ("Approve the waiting stage of", true),
        "retry" => ("Retry", true),
        _ => return None,
    })
}

/// The cycle an action is about: approve and retry always, cancel when
/// one was named; the others act on the environment.
fn cycle_acted_on(action: &str, cycle: Option<i64>) -> Option<i64> {
    let on_cycle = known(action).is_some_and(|k| k.1) || action == "cancel";
    cycle.filter(|_| on_cycle)
}

/// The environment an action acts on, checked against the viewer's role.
async fn resolve(
    s: &Shared,
    v: &Viewer,
    action: &str,
    env: Option<&str>,
    cycle: Option<i64>,
) -> Result<String, PageError> {
    let (_, on_cycle) =
        known(action).ok_or_else(|| PageError(StatusCode::NOT_FOUND, format!("no action `{action}`")))?;
    let env = match (env, cycle) {
        (_, Some(id)) if on_cycle || action == "cancel" => match s.app.store.cycle(id).await? {
            Some(c) => c.environment,
            None => return Err(PageError(StatusCode::NOT_FOUND, format!("there is no cycle {id}"))),
        },
        (Some(e), _) if !on_cycle => e.to_string(),
        _ => {
            return Err(PageError(
                StatusCode::BAD_REQUEST,
                format!(
                    "`{action}` needs {}",
                    if on_cycle { "a cycle" } else { "an environment" }
                ),
            ));
        }
    };
    if super::environment_of(s, &env).is_none() {
        return Err(PageError(StatusCode::NOT_FOUND, format!("no environment `{env}`")));
    }
    if !v.may_act(s, &env) {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            format!("{} may not change {env}: this needs the deployer role", v.user.name),
        ));
    }
    Ok(env)
}

fn confirm_body(
    v: &Viewer,
    action: &str,
    env: &str,
    cycle: Option<i64>,
    error: Option<&str>,
    to: Option<&str>,
) -> Html {
    let mut h = Html::new();
    if let Some(e) = error {
        h.raw("<p class=\"error\" role=\"alert\">").text(e).raw("</p>");
    }
    let (label, _) = known(action).unwrap_or(("Act on", false));
    h.raw("<p>You are about to: <strong>").text(label).raw(" ");
    match cycle {
        Some(id) => {
            h.text(&format!("cycle #{id} on {env}"));
        }
        None => {
            h.text(env);
        }
    }
    h.raw("</strong>.</p>");
    h.raw(match action {
        "pause" => "<p>Scheduled cycles wait; triggers arriving meanwhile are kept and served after resuming.</p>",
        "rollback" => {
            "<p>The recorded manifest is redeployed as it is, in rollback order. Continuous deployment of \
                       the environment stays locked (paused) until someone resumes it, and the replaced manifest \
                       is marked faulty there. This page waits until the rollback cycle has finished.</p>"
        }
        "release" => "<p>Whoever holds the lease loses it; releasing someone else's lease needs the admin role.</p>",
        "cancel" => "<p>The running cycle stops before its next step and ends <em>cancelled</em>.</p>",
        "retry" => {
            "<p>The cycle's manifest runs again from the stage it failed in. This page waits until it has finished.</p>"
        }
        _ => "",
    });
    h.raw("<form method=\"post\" action=\"/actions/")
        .text(&url_part(action))
        .raw("\">");
    h.raw("<input type=\"hidden\" name=\"csrf\" value=\"")
        .text(&v.csrf)
        .raw("\">");
    match cycle {
        Some(id) => {
            h.raw("<input type=\"hidden\" name=\"cycle\" value=\"")
                .num(id)
                .raw("\">");
        }
        None => {
            h.raw("<input type=\"hidden\" name=\"env\" value=\"")
                .text(env)
                .raw("\">");
        }
    }
    if action == "rollback" {
        h.raw("<p><label for=\"to\">Roll back to</label><input id=\"to\" name=\"to\" value=\"")
            .text(to.unwrap_or("previous"))
            .raw("\" aria-describedby=\"to-help\"> <span id=\"to-help\" class=\"muted\">")
            .raw("<code>previous</code>, a manifest id, or a version (tag, image tag, commit prefix)</span></p>");
    }
    h.raw("<p><label for=\"reason\">Reason (required, recorded)</label>")
        .raw("<textarea id=\"reason\" name=\"reason\" rows=\"3\" required autofocus></textarea></p>")
        .raw("<p class=\"actions\"><button type=\"submit\" id=\"confirm\" class=\"danger\">Confirm: ")
        .text(label)
        .raw(" ")
        .text(&match cycle {
            Some(id) => format!("#{id}"),
            None => env.to_string(),
        })
        .raw("</button> ");
    let back = match cycle {
        Some(id) => format!("/cycles/{id}"),
        None => format!("/#env-{}", url_part(env)),
    };
    h.link(&back, "Cancel, go back").raw("</p></form>");
    h
}

/// `GET /confirm/{action}?env=|cycle=`.
pub async fn confirm(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Path(action): Path<String>,
    Query(t): Query<Target>,
) -> Result<Response, PageError> {
    let here = format!("/confirm/{}", url_part(&action));
    let v = match signed_in(&s, &d, &headers, &here).await {
        Ok(v) => v,
        Err(r) => return Ok(*r),
    };
    let env = resolve(&s, &v, &action, t.env.as_deref(), t.cycle).await?;
    let cycle = cycle_acted_on(&action, t.cycle);
    let body = confirm_body(&v, &action, &env, cycle, None, None);
    Ok(respond(&d, &v, &headers, "Confirm", &body, false))
}

/// Sends one request to the API as the user: `(status, JSON answer)`.
async fn call_api(
    s: &Arc<Shared>,
    authorization: &str,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1{path}"))
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/json")
        // `Null` is no body (`resume` takes none).
        .body(if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        })
        .map_err(|e| anyhow::anyhow!("cannot build the API request: {e}"))?;
    let api = Router::new()
        .nest("/api/v1", crate::server::api::router())
        .with_state(s.clone());
    let resp = match api.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the API's answer: {e}"))?;
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// `POST /actions/{action}`.
pub async fn act(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Path(action): Path<String>,
    Form(f): Form<ActForm>,
) -> Result<Response, PageError> {
    let Some(v) = d.sessions.viewer(&s, &headers).await else {
        return Err(PageError(StatusCode::UNAUTHORIZED, "Sign in first.".into()));
    };
    check_csrf(&v, &headers, &f.csrf)?;
    let env = resolve(&s, &v, &action, f.env.as_deref(), f.cycle).await?;
    let cycle = cycle_acted_on(&action, f.cycle);
    let reason = f.reason.trim();
    if reason.is_empty() {
        let body = confirm_body(
            &v,
            &action,
            &env,
            cycle,
            Some("Give a reason: it is recorded with the action."),
            f.to.as_deref(),
        );
        let mut r = respond(&d, &v, &headers, "Confirm", &body, false);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(r);
    }
    let Some(authorization) = d.sessions.authorization(&s, &v.session) else {
        return Err(PageError(StatusCode::UNAUTHORIZED, "Sign in again.".into()));
    };
    let e = url_part(&env);
    let (path, body) = match (action.as_str(), cycle) {
        ("pause", _) => (
            format!("/environments/{e}/pause"),
            serde_json::json!({ "reason": reason }),
        ),
        ("resume", _) => (format!("/environments/{e}/resume"), serde_json::Value::Null),
        ("release", _) => {
            let (lease, _) = s.app.store.lease(&env).await?;
            let force = lease.is_some_and(|l| l.holder != v.user.name);
            (
                format!("/environments/{e}/release"),
                serde_json::json!({ "force": force }),
            )
        }
        ("rollback", _) => {
            let to =
                f.to.as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .unwrap_or("previous");
            (
                format!("/environments/{e}/rollback"),
                serde_json::json!({ "to": to, "reason": reason }),
            )
        }
        ("cancel", Some(id)) => (format!("/cycles/{id}/cancel"), serde_json::json!({ "reason": reason })),
        ("cancel", None) => (
            format!("/environments/{e}/cancel"),
            serde_json::json!({ "reason": reason }),
        ),
        ("approve", Some(id)) => (format!("/cycles/{id}/approve"), serde_json::json!({ "reason": reason })),
        ("retry", Some(id)) => (format!("/cycles/{id}/retry"), serde_json::json!({})),
        _ => {
            return Err(PageError(
                StatusCode::BAD_REQUEST,
                format!("`{action}` cannot be done here"),
            ));
        }
    };
    let (status, answer) = call_api(&s, &authorization, &path, body).await?;
    let new_cycle = answer.get("cycle").and_then(serde_json::Value::as_i64);
    if status.is_success() || (status == StatusCode::UNPROCESSABLE_ENTITY && new_cycle.is_some()) {
        let what = match cycle {
            Some(id) => format!("cycle #{id}"),
            None => env.clone(),
        };
        if matches!(action.as_str(), "resume" | "release" | "retry") {
            note_reason(&s, &v, &action, &what, &env, reason, new_cycle.or(cycle)).await;
        }
        let mut notice = format!("Done: {action} {what}.");
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            notice = format!("The {action} cycle ran and failed; see below.");
        }
        d.sessions.notice(&v.session, notice);
        let to = match (new_cycle, cycle) {
            (Some(n), _) if matches!(action.as_str(), "rollback" | "retry") => format!("/cycles/{n}"),
            (_, Some(id)) => format!("/cycles/{id}"),
            _ => format!("/#env-{}", url_part(&env)),
        };
        return Ok(Redirect::to(&to).into_response());
    }
    let msg = answer
        .get("error")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("the API answered {status}"));
    Err(PageError(status, format!("The API refused: {msg}")))
}

/// The API's resume, release and retry take no reason (their bodies are its
/// contract): the reason asked for here is kept as a `note` of its own in
/// the audit trail, next to the action the API recorded. Never fails the
/// action: a store error is logged.
async fn note_reason(s: &Shared, v: &Viewer, action: &str, what: &str, env: &str, reason: &str, cycle: Option<i64>) {
    let entry = greenroom_store::AuditRecord {
        id: 0,
        at: s.app.now(),
        actor: v.user.name.clone(),
        surface: "dashboard".into(),
        action: "note".into(),
        environment: env.to_string(),
        detail: format!("reason for {action} {what}"),
        reason: reason.to_string(),
        cycle_id: cycle,
    };
    if let Err(e) = s.app.store.record_audit(&entry).await {
        tracing::warn!(%env, %action, "cannot record the reason in the audit trail: {e}");
    }
}
