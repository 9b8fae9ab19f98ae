//! greenroom's generic package endpoint (`POST /webhooks/package`): "a new
//! version of COMPONENT was published", sent by any registry or CI job.
//!
//! Contract (also in the crate README):
//! - `X-Greenroom-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body
//!   keyed by the configured package secret (see [`crate::sign_package`]);
//! - `X-Greenroom-Delivery: <id>`, unique per event and reused on retries;
//! - body: [`PackageEvent`] as JSON; unknown fields are ignored.
//!
//! Owns: the body model and the delivery-id header rules shared by all forges.
//! Must never: interpret the version, image or time (the server and the
//! component configuration do that).

use crate::error::WebhookError;
use crate::event::{Delivery, EventKind, Forge};
use crate::headers::{self, HeaderLookup, MAX_DELIVERY_ID, value};
use crate::json::{from_body, required};
use serde::{Deserialize, Serialize};

/// Body of a package endpoint delivery.
///
/// ```json
/// {"component": "api", "version": "1.4.2", "image": "registry.example.com/api:1.4.2",
///  "digest": "sha256:...", "published_at": "2026-11-23T10:00:00Z"}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageEvent {
    /// Name of the greenroom component (`[[component]] name`). Required, non-empty.
    pub component: String,
    /// The published version. Required, non-empty.
    pub version: String,
    /// Image reference to deploy, if the component deploys images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Content digest of the artifact (`sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When it was published, RFC 3339 (recorded, not interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
}

/// The body as read: every field optional so that a missing one is named.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawPackageEvent {
    component: Option<String>,
    version: Option<String>,
    image: Option<String>,
    digest: Option<String>,
    published_at: Option<String>,
}

const EVENT: &str = "package";

pub(crate) fn parse<H: HeaderLookup + ?Sized>(headers: &H, body: &[u8]) -> Result<Delivery, WebhookError> {
    let id = delivery_id(headers, &[headers::GREENROOM_DELIVERY], headers::GREENROOM_DELIVERY)?;
    let raw: RawPackageEvent = from_body(body)?;
    let name = required(raw.component, EVENT, "component")?;
    let version = required(raw.version, EVENT, "version")?;
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let kind = EventKind::Package {
        name,
        version,
        ecosystem: None,
        action: "published".to_string(),
        image: non_empty(raw.image),
        digest: non_empty(raw.digest),
        published_at: non_empty(raw.published_at),
    };
    Ok(Delivery {
        forge: Forge::Package,
        id,
        event: EVENT.to_string(),
        action: Some("published".to_string()),
        repo: None,
        kind,
    })
}

/// The first present header of `names`, bounded in length and free of control characters.
pub(crate) fn delivery_id<H: HeaderLookup + ?Sized>(
    headers: &H,
    names: &[&'static str],
    expected: &'static str,
) -> Result<String, WebhookError> {
    let Some((name, id)) = names.iter().find_map(|n| value(headers, n).map(|v| (*n, v))) else {
        return Err(WebhookError::MissingDeliveryId { expected });
    };
    if id.len() > MAX_DELIVERY_ID {
        return Err(WebhookError::InvalidHeader {
            header: name,
            reason: format!("{} bytes long, at most {MAX_DELIVERY_ID} allowed", id.len()),
        });
    }
    if id.chars().any(char::is_control) {
        return Err(WebhookError::InvalidHeader {
            header: name,
            reason: "contains control characters".to_string(),
        });
    }
    Ok(id.to_string())
}
