//! Webhooks: an import (or a sync, for each of its runs) with a `callback_url` has its final status POSTed
//! there, the body signed with HMAC-SHA256 under the user's webhook secret. Deliveries are queued by the
//! database as the import ends (see `queue::webhooks`) and sent by every process that runs workers, under
//! the address policy of URL imports, retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::imports::ImportStatus;
use super::state::AppState;
use crate::queue::webhooks::{self, Delivery};
use crate::services::Services;

/// The header a delivery's signature comes in: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Geoimport-Signature";
/// Attempts before a delivery is given up.
const MAX_ATTEMPTS: i32 = 8;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// A claimed delivery is someone's for this long.
const LEASE: Duration = Duration::from_secs(60);

/// Your webhook secret and how deliveries are signed with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecret {
    /// The key of the HMAC (hex); made the first time it is asked for.
    pub secret: String,
    /// The header each delivery carries its signature in.
    pub header: &'static str,
    /// How the signature is made.
    pub signature: &'static str,
}

/// Your webhook secret.
///
/// An import or a sync table created with `callback_url` has its final status (the same JSON as
/// `GET /api/v1/imports/{id}`) POSTed to that URL once it ends, retried with backoff (8 attempts, from 10 s
/// to an hour apart) until the receiver answers 2xx. Each POST carries `X-Geoimport-Signature:
/// sha256=<hex>`, the HMAC-SHA256 of the body under this secret: check it before trusting the body.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/secret",
    tag = "imports",
    responses(
        (status = 200, description = "The secret", body = WebhookSecret),
        (status = 401, description = "Missing or wrong API key"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn secret(State(state): State<AppState>, Caller(user): Caller) -> Result<Json<WebhookSecret>, ApiError> {
    let secret = crate::users::webhook_secret(&state.pool, user.id).await?.ok_or(ApiError::Unauthorized)?;
    Ok(Json(WebhookSecret {
        secret,
        header: SIGNATURE_HEADER,
        signature: "sha256=<hex of HMAC-SHA256(secret, request body)>",
    }))
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends due deliveries every second until `shutdown`; `backoff` is the first wait after a failure
/// (each later one four times longer).
pub async fn deliver(pool: PgPool, services: Arc<Services>, backoff: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let due = match webhooks::claim_deliveries(&pool, LEASE, 16).await {
            Ok(due) => due,
            Err(e) => {
                tracing::debug!(error = %e, "could not claim webhook deliveries");
                continue;
            }
        };
        for delivery in due {
            let outcome = attempt(&pool, &services, &delivery).await;
            let recorded = match outcome {
                Ok(()) => webhooks::delivered(&pool, delivery.import_id).await,
                Err(why) => {
                    let next = delivery.attempts + 1;
                    let retry_in = (next < MAX_ATTEMPTS)
                        .then(|| (backoff * 4u32.saturating_pow(next as u32 - 1)).min(MAX_BACKOFF));
                    tracing::warn!(import = %delivery.import_id, attempt = next, error = %why, gave_up = retry_in.is_none(), "a webhook delivery failed");
                    webhooks::delivery_failed(&pool, delivery.import_id, &why, retry_in).await
                }
            };
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "could not record a webhook delivery; it will be sent again");
            }
        }
    }
}

/// One POST of `delivery`; why it failed.
async fn attempt(pool: &PgPool, services: &Services, delivery: &Delivery) -> Result<(), String> {
    let job = webhooks::find_import(pool, delivery.import_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the import is gone")?;
    let secret =
        crate::users::webhook_secret(pool, job.user_id).await.map_err(|e| e.to_string())?.ok_or("the user is gone")?;
    let body = serde_json::to_vec(&ImportStatus::from(job)).map_err(|e| e.to_string())?;
    let url = url::Url::parse(&delivery.url).map_err(|e| e.to_string())?;
    // Checked again now: the policy may have changed, and a name's addresses are checked as it resolves.
    services.url_policy.check_url(&url).map_err(|e| e.to_string())?;
    let response = services
        .downloader
        .http()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature(&secret, &body))
        .header("X-Geoimport-Delivery", delivery.import_id.to_string())
        .timeout(ATTEMPT_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    match response.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("the receiver answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
