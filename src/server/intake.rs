//! Webhook intake: verify, parse, store, answer.
//!
//! Order matters: a delivery is answered 2xx only after its row is
//! committed. Bad signature 401; unknown event 202 (ignored, not stored);
//! malformed body 400 with the reason; over the size limit 413 (axum's body
//! limit); a redelivery of a stored id 200 without acting again. Nothing
//! here decides what a delivery means: the scheduler does, serially.
//! Every refusal (401, 400, 413, 503) is counted for
//! `greenroom_webhook_rejections_total` (`metrics::count_rejection`).

use super::Shared;
use super::scheduler::Work;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use greenroom_store::{NewDelivery, Stored};
use greenroom_webhook::Forge;
use std::sync::Arc;

/// `POST /webhooks/github`.
pub async fn github(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    match body {
        Ok(body) => accept(&s, Forge::Github, &headers, &body).await,
        Err(e) => refused(Forge::Github, e),
    }
}

/// `POST /webhooks/gitlab`.
pub async fn gitlab(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    match body {
        Ok(body) => accept(&s, Forge::Gitlab, &headers, &body).await,
        Err(e) => refused(Forge::Gitlab, e),
    }
}

/// `POST /webhooks/package`.
pub async fn package(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(body) => accept(&s, Forge::Package, &headers, &body).await,
        Err(e) => refused(Forge::Package, e),
    }
}

/// The name a source is stored under.
pub fn source_name(f: Forge) -> &'static str {
    match f {
        Forge::Github => "github",
        Forge::Gitlab => "gitlab",
        Forge::Package => "package",
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// A body that could not be read (over the size limit: 413), counted.
fn refused(forge: Forge, e: BytesRejection) -> Response {
    super::metrics::count_rejection(source_name(forge), e.status().as_u16());
    e.into_response()
}

/// An error answer to a delivery that is not stored, counted.
fn reject(forge: Forge, status: StatusCode, body: serde_json::Value) -> Response {
    super::metrics::count_rejection(source_name(forge), status.as_u16());
    answer(status, body)
}

async fn accept(s: &Shared, forge: Forge, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Err(e) = s.verifier.verify(forge, headers, body) {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        return reject(forge, status, serde_json::json!({ "error": e.to_string() }));
    }
    let delivery = match greenroom_webhook::parse(forge, headers, body) {
        Ok(d) => d,
        Err(e) if e.is_ignorable() => {
            return answer(StatusCode::ACCEPTED, serde_json::json!({ "ignored": e.to_string() }));
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return reject(forge, status, serde_json::json!({ "error": e.to_string() }));
        }
    };
    let text = String::from_utf8_lossy(body);
    let stored = s
        .app
        .store
        .insert_delivery(&NewDelivery {
            source: source_name(forge),
            delivery_id: &delivery.id,
            event: &delivery.event,
            action: delivery.action.as_deref(),
            repo: delivery.repo.as_deref(),
            body: &text,
            received_at: s.app.now(),
        })
        .await;
    match stored {
        Ok(Stored::New(id)) => {
            // The scheduler also picks up unprocessed rows at start, so a
            // closed channel (shutting down) loses nothing.
            let _ = s.work.send(Work::Delivery(id));
            answer(
                StatusCode::OK,
                serde_json::json!({ "delivery": delivery.id, "stored": id }),
            )
        }
        Ok(Stored::Duplicate(id)) => answer(
            StatusCode::OK,
            serde_json::json!({ "delivery": delivery.id, "stored": id, "duplicate": true }),
        ),
        Err(e) => {
            tracing::error!("cannot store delivery {}: {e}", delivery.id);
            reject(
                forge,
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "the delivery could not be stored; retry later" }),
            )
        }
    }
}
