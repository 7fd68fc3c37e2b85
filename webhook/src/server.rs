//! The HTTPS server: admission endpoints for the API server, git-provider webhooks
//! (`crate::git`), and health.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use crate::admission::{self, Lookups};
use crate::git::cache::Caches;

/// The API server sends objects of up to about 3 MiB; reviews carry an object and its old self.
const MAX_REVIEW_BYTES: usize = 8 * 1024 * 1024;
/// How long a client may take to send a request's headers (slow clients are cut off; the TLS
/// handshake has axum-server's own 10 s bound, and bodies `git::route::BODY_READ_TIMEOUT`).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    client: Client,
}

/// The router of the webhook server; the git webhooks read through `caches`.
pub fn router(client: Client, caches: Caches) -> Router {
    Router::new()
        .route("/admission/mutate", post(mutate))
        .route("/admission/validate", post(validate))
        .route("/admission/image-lookup", post(image_lookup))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(Arc::new(AppState {
            client: client.clone(),
        }))
        // Merged after the layer: the git routes read their bodies with their own 3 MiB limit.
        .merge(crate::git::route::router(client, caches))
}

/// Serves the router over TLS with the given certificate until the handle shuts it down, with
/// the git webhooks' caches fed by watches as long as it serves.
pub async fn serve(
    addr: SocketAddr,
    cert_pem: String,
    key_pem: String,
    client: Client,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let caches = Caches::start(&client);
    serve_with(addr, cert_pem, key_pem, client, caches, handle).await
}

/// [`serve`] with the given caches (a test can watch them fill).
pub async fn serve_with(
    addr: SocketAddr,
    cert_pem: String,
    key_pem: String,
    client: Client,
    caches: Caches,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let serving = crate::tls::Serving { cert_pem, key_pem };
    let resolver = crate::tls::Resolver::new(&serving).map_err(std::io::Error::other)?;
    serve_tls_with(addr, Arc::new(resolver), client, caches, handle).await
}

/// Serves the router over TLS until the handle shuts it down, presenting to each new connection
/// the certificate `resolver` has then (so a renewed certificate is served without a restart),
/// with the git webhooks' caches fed by watches as long as it serves.
pub async fn serve_tls(
    addr: SocketAddr,
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    client: Client,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let caches = Caches::start(&client);
    serve_tls_with(addr, resolver, client, caches, handle).await
}

/// [`serve_tls`] with the given caches.
pub async fn serve_tls_with(
    addr: SocketAddr,
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    client: Client,
    caches: Caches,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    // kube's rustls uses ring; the server uses the same provider (installing twice is harmless).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
    let mut server = axum_server::bind_rustls(addr, config);
    server
        .http_builder()
        .http1()
        .header_read_timeout(HEADER_READ_TIMEOUT);
    server
        .first_request_timeout(HEADER_READ_TIMEOUT)
        .handle(handle)
        .serve(router(client, caches).into_make_service())
        .await
}

/// The request of a review, or why the review is malformed.
fn request_of(review: AdmissionReview<DynamicObject>) -> Result<AdmissionRequest<DynamicObject>, String> {
    review
        .try_into()
        .map_err(|e: kube::core::admission::ConvertAdmissionReviewError| e.to_string())
}

/// The answer to a malformed review.
fn invalid(message: String) -> Json<AdmissionReview<DynamicObject>> {
    Json(AdmissionResponse::invalid(message).into_review())
}

async fn mutate(Json(review): Json<AdmissionReview<DynamicObject>>) -> Json<AdmissionReview<DynamicObject>> {
    match request_of(review) {
        Ok(request) => {
            let response = admission::mutate(&request);
            log(&request, &response, "mutate");
            Json(response.into_review())
        }
        Err(message) => invalid(message),
    }
}

async fn image_lookup(
    State(state): State<Arc<AppState>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    match request_of(review) {
        Ok(request) => {
            let response = crate::image_lookup::mutate(&state.client, &request).await;
            log(&request, &response, "image-lookup");
            Json(response.into_review())
        }
        Err(message) => invalid(message),
    }
}

async fn validate(
    State(state): State<Arc<AppState>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request = match request_of(review) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let mut lookups = Lookups::default();
    if request.kind.kind == "ProjectRequest" && request.kind.group == slipway_crds::GROUP {
        match Api::<Namespace>::all(state.client.clone())
            .get_opt(&request.name)
            .await
        {
            Ok(found) => lookups.namespace_exists = found.is_some(),
            Err(e) => {
                // Failing closed: a project is not made when its name cannot be checked.
                let response = AdmissionResponse::from(&request)
                    .deny(format!("checking namespace {}: {e}", request.name));
                return Json(response.into_review());
            }
        }
    }
    let response = admission::validate(&request, lookups);
    log(&request, &response, "validate");
    Json(response.into_review())
}

fn log(request: &AdmissionRequest<DynamicObject>, response: &AdmissionResponse, hook: &str) {
    tracing::info!(
        hook,
        kind = %request.kind.kind,
        name = %request.name,
        user = request.user_info.username.as_deref().unwrap_or_default(),
        allowed = response.allowed,
        reason = %response.result.message,
        "admission"
    );
}
