//! Webhook intake: verify, parse, store, answer.
//!
//! Order matters: a delivery is answered 2xx only after its row is
//! committed. Bad signature 401; unknown event 202 (ignored, not stored);
//! malformed body 400 with the reason; over the size limit 413 (axum's body
//! limit); a redelivery of a stored id 200 without acting again. Nothing
//! here decides what a delivery means: the scheduler does, serially.

use super::Shared;
use super::scheduler::Work;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use greenroom_store::{NewDelivery, Stored};
use greenroom_webhook::Forge;
use std::sync::Arc;

/// `POST /webhooks/github`.
pub async fn github(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    accept(&s, Forge::Github, &headers, &body).await
}

/// `POST /webhooks/gitlab`.
pub async fn gitlab(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    accept(&s, Forge::Gitlab, &headers, &body).await
}

/// `POST /webhooks/package`.
pub async fn package(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    accept(&s, Forge::Package, &headers, &body).await
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

async fn accept(s: &Shared, forge: Forge, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Err(e) = s.verifier.verify(forge, headers, body) {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        return answer(status, serde_json::json!({ "error": e.to_string() }));
    }
    let delivery = match greenroom_webhook::parse(forge, headers, body) {
        Ok(d) => d,
        Err(e) if e.is_ignorable() => {
            return answer(StatusCode::ACCEPTED, serde_json::json!({ "ignored": e.to_string() }));
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return answer(status, serde_json::json!({ "error": e.to_string() }));
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
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "the delivery could not be stored; retry later" }),
            )
        }
    }
}
