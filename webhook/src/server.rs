//! The HTTPS servers: admission endpoints for the API server on one listener, git-provider
//! webhooks (`crate::git`) on another, each with health and its own connection limits
//! (`crate::limits`), so that a flood on the public git listener leaves admission answering.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
use crate::limits::{Guard, Limits};

/// The API server sends objects of up to about 3 MiB; reviews carry an object and its old self.
const MAX_REVIEW_BYTES: usize = 8 * 1024 * 1024;
/// How long a client may take to send a request's headers over HTTP/1, and its first request
/// over either protocol (slow clients are cut off; the TLS handshake has its own 10 s bound,
/// bodies `git::route::BODY_READ_TIMEOUT`, and an HTTP/2 stream's headers the listener's idle
/// limit, `crate::limits`).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2: a PING this often on a quiet connection, and the connection closed when its answer
/// takes longer than [`HTTP2_KEEP_ALIVE_TIMEOUT`].
pub const HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
pub const HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    client: Client,
}

/// The router of the admission listener.
pub fn admission_router(client: Client) -> Router {
    Router::new()
        .route("/admission/mutate", post(mutate))
        .route("/admission/validate", post(validate))
        .route("/admission/image-lookup", post(image_lookup))
        .route("/admission/pod-defaults", post(pod_defaults))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(Arc::new(AppState { client }))
}

/// The router of the git webhook listener; the git webhooks read through `caches`.
pub fn git_router(client: Client, caches: Caches) -> Router {
    crate::git::route::router(client, caches).route("/healthz", get(|| async { "ok" }))
}

/// Serves the git webhooks over TLS with the given certificate until the handle shuts it down,
/// with their caches (a test can watch them fill).
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
    serve_git_tls(addr, Arc::new(resolver), client, caches, handle).await
}

/// Serves the git webhooks over TLS until the handle shuts it down, presenting to each new
/// connection the certificate `resolver` has then, with [`Limits::GIT`].
pub async fn serve_git_tls(
    addr: SocketAddr,
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    client: Client,
    caches: Caches,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let router = git_router(client, caches);
    serve_router(addr, resolver, router, Limits::GIT, handle).await
}

/// Serves admission over TLS until the handle shuts it down, presenting to each new connection
/// the certificate `resolver` has then (so a renewed certificate is served without a restart),
/// with [`Limits::ADMISSION`].
pub async fn serve_tls(
    addr: SocketAddr,
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    client: Client,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    serve_router(
        addr,
        resolver,
        admission_router(client),
        Limits::ADMISSION,
        handle,
    )
    .await
}

/// Serves `router` over TLS on `addr` with `limits` until the handle shuts it down.
pub async fn serve_router(
    addr: SocketAddr,
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    router: Router,
    limits: Limits,
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
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .handshake_timeout(HEADER_READ_TIMEOUT)
        .acceptor(Guard::new(limits));
    let mut server = axum_server::bind(addr).acceptor(acceptor);
    let builder = server.http_builder();
    builder.http1().header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .keep_alive_interval(HTTP2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE_TIMEOUT)
        .max_concurrent_streams(limits.max_streams)
        .max_header_list_size(limits.max_header_bytes);
    server
        .first_request_timeout(HEADER_READ_TIMEOUT)
        .handle(handle)
        .serve(router.into_make_service())
        .await
}

/// Serves `router` over plain HTTP on `addr`, which must be a loopback address (what only the
/// containers of the same pod reach: the registry's notifications), with `limits`, until the handle
/// shuts it down.
pub async fn serve_loopback(
    addr: SocketAddr,
    router: Router,
    limits: Limits,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "{addr} is not a loopback address: plain HTTP is served on loopback only"
        )));
    }
    let mut server = axum_server::bind(addr).acceptor(Guard::new(limits));
    server
        .http_builder()
        .http1()
        .header_read_timeout(HEADER_READ_TIMEOUT);
    server
        .first_request_timeout(HEADER_READ_TIMEOUT)
        .handle(handle)
        .serve(router.into_make_service())
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

async fn pod_defaults(
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    match request_of(review) {
        Ok(request) => {
            let response = crate::pod_defaults::mutate(&request);
            log(&request, &response, "pod-defaults");
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
