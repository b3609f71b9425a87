//! `GET /api/v1/imports/{id}/rejections`: what an import could not keep as the source had it, row by row.
//! No comparable service tells its users which values it changed or dropped; the counts in `warnings` say
//! how many, this says which.

use axum::Json;
use axum::extract::{RawPathParams, State};
use axum::http::Uri;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::super::auth::Caller;
use super::super::error::ApiError;
use super::super::path;
use super::super::state::AppState;
use crate::queue::{self, StoredRejection};

/// The most rejections one page lists.
const MAX_PER_PAGE: i64 = 1000;
const DEFAULT_PER_PAGE: i64 = 100;

/// A page of an import's rejections.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionsPage {
    pub item_queue_id: Uuid,
    /// The import's state: only a complete import has rejections.
    pub state: String,
    /// Every rejection counted (the status's `rejections`).
    pub total: i64,
    /// How many are listed with their details: the first 1000 of each table (all of them when `total` is
    /// the same).
    pub listed: i64,
    pub page: i64,
    pub per_page: i64,
    /// In table order, then source order.
    pub rejections: Vec<StoredRejection>,
}

/// An import's rejections.
///
/// Each value moved to an `_invalid` column or stored as NULL, and each geometry repaired, simplified
/// (curves made straight, faces made polygons) or dropped, with the table, the source row or feature
/// (counting from 1; for a repaired geometry, the row's `cartodb_id`), the column, the original value
/// (cut to 200 characters) and the reason. The details of the first 1000 of each table are kept; `total`
/// counts them all. Only the owner of an import can see them; any other id answers 404. Also served
/// under `/user/{username}/api/v1/imports/{id}/rejections`.
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}/rejections",
    tag = "imports",
    params(
        ("id" = String, Path, description = "The item_queue_id returned at creation"),
        ("page" = Option<i64>, Query, description = "The page, from 1 (default 1)"),
        ("per_page" = Option<i64>, Query, description = "Rejections per page, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of the import's rejections", body = RejectionsPage),
        (status = 400, description = "page or per_page is not a positive integer, or per_page is above 1000"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "No such import for this user"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn rejections(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
    uri: Uri,
) -> Result<Json<RejectionsPage>, ApiError> {
    let id = path::id(&params, "import")?;
    let (page, per_page) = paging(uri.query().unwrap_or(""))?;
    let job = queue::find_for_user(&state.pool, user.id, id).await?.ok_or(ApiError::NotFound("import"))?;
    let listed = queue::count_stored_rejections(&state.pool, id).await?;
    let rejections = queue::list_rejections(&state.pool, id, (page - 1) * per_page, per_page).await?;
    Ok(Json(RejectionsPage {
        item_queue_id: id,
        state: job.state.as_str().to_string(),
        total: job.rejections.unwrap_or(0),
        listed,
        page,
        per_page,
        rejections,
    }))
}

/// `page` and `per_page` of a query string.
fn paging(query: &str) -> Result<(i64, i64), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let read = |name: &'static str, default: i64, max: i64| -> Result<i64, ApiError> {
        match pairs.iter().find(|(k, _)| k == name) {
            None => Ok(default),
            Some((_, v)) => v.trim().parse::<i64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                ApiError::BadRequest(name, format!("{name} must be an integer from 1 to {max}, not {v:?}"))
            }),
        }
    };
    // A page past every rejection is simply empty; the bound keeps the offset an integer.
    Ok((read("page", 1, i64::MAX / MAX_PER_PAGE)?, read("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_has_defaults_and_bounds() {
        assert_eq!(paging("").unwrap(), (1, 100));
        assert_eq!(paging("api_key=k&page=3&per_page=1000").unwrap(), (3, 1000));
        for bad in ["page=0", "per_page=1001", "page=x", "per_page=-1"] {
            assert!(paging(bad).is_err(), "{bad}");
        }
    }
}
