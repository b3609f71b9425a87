//! The HTTP API: the router, its shared state, and the layers every request goes through (request ids,
//! JSON access logs, panic catching). Handlers only validate, stage bytes
//! and enqueue; workers do the slow part.

pub mod admin;
pub mod auth;
mod bearer;
mod body_error;
pub mod connections;
pub mod connectors;
pub mod error;
mod health;
pub mod imports;
mod metrics;
mod origin;
mod path;
pub mod small_body;
mod state;
pub mod synchronizations;
mod tables;
mod trailing_slash;
mod uploads;
mod web;
pub mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use state::AppState;

/// A stalled upload (no bytes for this long) is cut with 408.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "geoimport",
        description = "Turns files into PostGIS tables through a queue; compatible with the CARTO Import API v1."
    ),
    modifiers(&Security),
    tags(
        (name = "imports", description = "Imports and their status"),
        (name = "uploads", description = "Resumable uploads (tus 1.0: creation, termination, expiration), imported with upload_id"),
        (name = "admin", description = "Operators: accounts, keys and limits (GEOIMPORT_ADMIN_TOKEN)"),
        (name = "synchronizations", description = "Sync tables: URLs imported again on an interval"),
        (name = "tables", description = "Your tables: their rows, columns and vector tiles"),
        (name = "connectors", description = "Database connectors: providers, connection checks, tables"),
        (name = "health", description = "Probes")
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Query(
                utoipa::openapi::security::ApiKeyValue::new("api_key"),
            )),
        );
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme("admin_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The OpenAPI document and the API routes it describes.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(imports::create, imports::list))
        .routes(routes!(imports::show))
        .routes(routes!(imports::cancel))
        .routes(routes!(imports::rejections::rejections))
        .merge(uploads::routes())
        .routes(routes!(synchronizations::create, synchronizations::list))
        .routes(routes!(synchronizations::show, synchronizations::update, synchronizations::delete))
        .routes(routes!(synchronizations::sync_now, synchronizations::sync_state))
        .routes(routes!(webhooks::secret))
        .routes(routes!(tables::list))
        .routes(routes!(tables::show))
        .routes(routes!(tables::tile))
        .routes(routes!(connectors::list))
        .routes(routes!(connectors::show))
        .routes(routes!(connectors::tables))
        .routes(routes!(connectors::connect))
        .routes(routes!(health::livez))
        .routes(routes!(health::readyz))
        .split_for_parts()
}

/// Routes served only at the root, never under the per-user prefixes.
fn operator_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::new()
        .routes(routes!(metrics::metrics))
        .routes(routes!(admin::list, admin::create))
        .routes(routes!(admin::show, admin::update, admin::delete))
        .routes(routes!(admin::rotate_key))
        .routes(routes!(admin::disable))
        .routes(routes!(admin::enable))
        .routes(routes!(admin::add_key))
        .routes(routes!(admin::revoke_key))
        .split_for_parts()
}

/// The whole application, ready to serve (see [`connections::serve`]).
pub fn app(state: AppState) -> Router {
    let (routes, mut doc) = api();
    let (operator, operator_doc) = operator_routes();
    doc.merge(operator_doc);
    // The reference also answers under /user/<name>/ and /u/<name>/ (organisation URLs).
    let router = Router::new()
        .merge(routes.clone())
        .nest("/user/{username}", routes.clone())
        .nest("/u/{username}", routes)
        .merge(operator)
        // The page and its assets: not API routes, so not in the OpenAPI document (see web.rs).
        .merge(web::routes())
        .route("/healthz", axum::routing::get(health::readyz))
        .merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", doc))
        .layer(axum::middleware::from_fn(origin::refuse_cross_site))
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    let request_id = HeaderName::from_static("x-request-id");
    let router = router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([axum::http::header::AUTHORIZATION]))
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                        // The path only: query strings carry API keys.
                        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    })
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(CatchPanicLayer::custom(|_| {
                error::ApiError::Internal("a request handler panicked".into()).into_response_boxed()
            }))
            .layer(RequestBodyTimeoutLayer::new(BODY_IDLE_TIMEOUT)),
    );
    // Before routing: a router's own layers run only once a route matched.
    Router::new().fallback_service(tower::ServiceExt::map_request(router, trailing_slash::dropped))
}

impl error::ApiError {
    fn into_response_boxed(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::response::IntoResponse;
    use futures_util::StreamExt;
    use tower::ServiceExt;

    #[tokio::test(start_paused = true)]
    async fn an_upload_silent_for_the_idle_timeout_is_cut_with_408() {
        // A handler that reads the body as the upload handlers do, mapping its errors with body_error.
        let read = |body: Body| async move {
            match http_body_util::BodyExt::collect(body).await {
                Ok(collected) => collected.to_bytes().len().to_string().into_response(),
                Err(e) => body_error::body_error(&e).into_response(),
            }
        };
        let app =
            Router::new().route("/", axum::routing::post(read)).layer(RequestBodyTimeoutLayer::new(BODY_IDLE_TIMEOUT));
        let stalled = futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"a,b\n")) })
            .chain(futures_util::stream::pending());
        let request = Request::post("/").body(Body::from_stream(stalled)).unwrap();
        let started = tokio::time::Instant::now();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), BODY_IDLE_TIMEOUT);
    }
}
