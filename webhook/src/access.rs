//! `access.slipway.dev`: the projects a user can access, as an aggregated API.
//!
//! Projects are cluster-scoped, and a user who may list them sees everyone's. OpenShift answers
//! with a virtual `projects` resource filtered per user; Slipway does the same: the API server
//! authenticates the user and forwards the request here (front-proxy headers, proven by the API
//! server's client certificate), and this server lists the Projects and keeps those whose
//! namespace the user may `get`, asking the API server with a SubjectAccessReview each. So what a
//! user sees follows their RBAC, whatever grants it (the admin binding of the requester, a
//! RoleBinding someone added, a group).
//!
//! Served: discovery (`/apis/access.slipway.dev/v1alpha1`), `list` and `get` of `projects`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceSpec};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::{
    APIService, APIServiceSpec, ServiceReference,
};
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use serde_json::{Value, json};
use slipway_crds::Project;

/// The group of the aggregated API.
pub const GROUP: &str = "access.slipway.dev";
/// Its only version.
pub const VERSION: &str = "v1alpha1";
/// The APIService that registers it.
pub const API_SERVICE: &str = "v1alpha1.access.slipway.dev";

/// How many access reviews run at once for one listing.
const REVIEW_CONCURRENCY: usize = 16;

/// Who the API server says is asking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

/// Reads the front-proxy headers. Their names are the ones the API server is configured with
/// (`--requestheader-*-headers`); Kubernetes' defaults are these. `None` without a user name.
pub fn user_from_headers(headers: &HeaderMap) -> Option<User> {
    let name = headers.get("x-remote-user")?.to_str().ok()?.trim().to_string();
    if name.is_empty() {
        return None;
    }
    let groups = headers
        .get_all("x-remote-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (key, value) in headers {
        if let Some(k) = key.as_str().strip_prefix("x-remote-extra-")
            && let Ok(v) = value.to_str()
        {
            extra.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    Some(User { name, groups, extra })
}

/// The discovery document of the group version.
pub fn discovery() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [{
            "name": "projects",
            "singularName": "project",
            "namespaced": false,
            "kind": "Project",
            "verbs": ["get", "list"],
            "shortNames": ["myproj"],
            "categories": ["slipway"]
        }]
    })
}

/// A Project as this API serves it: the same object under this group's apiVersion.
pub fn served(project: &Project) -> Value {
    let mut value = serde_json::to_value(project).unwrap_or(Value::Null);
    value["apiVersion"] = json!(format!("{GROUP}/{VERSION}"));
    value["kind"] = json!("Project");
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        // Field-manager bookkeeping is the underlying object's business.
        meta.remove("managedFields");
    }
    value
}

/// A Kubernetes Status answer.
fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()
    });
    (code, Json(body)).into_response()
}

#[derive(Clone)]
struct AppState {
    client: Client,
}

/// The router of the aggregated API.
pub fn router(client: Client) -> Router {
    let base = format!("/apis/{GROUP}/{VERSION}");
    Router::new()
        .route(&base, get(|| async { Json(discovery()) }))
        .route(&format!("{base}/projects"), get(list))
        .route(&format!("{base}/projects/{{name}}"), get(get_one))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async {
            status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource".into(),
            )
        })
        .with_state(Arc::new(AppState { client }))
}

/// Whether `user` may get the namespace `name`, according to the API server.
async fn can_access(client: &Client, user: &User, name: &str) -> Result<bool, kube::Error> {
    let spec = SubjectAccessReviewSpec {
        user: Some(user.name.clone()),
        groups: Some(user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        resource_attributes: Some(ResourceAttributes {
            verb: Some("get".into()),
            resource: Some("namespaces".into()),
            name: Some(name.into()),
            namespace: Some(name.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    allowed(client, spec).await
}

/// Whether the API server allows what `spec` asks (someone's rights, never this server's).
pub async fn allowed(client: &Client, spec: SubjectAccessReviewSpec) -> Result<bool, kube::Error> {
    let review = SubjectAccessReview {
        spec,
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(user) = user_from_headers(&headers) else {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "no user in the forwarded request".into(),
        );
    };
    let projects = match Api::<Project>::all(state.client.clone())
        .list(&Default::default())
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            tracing::warn!(error = %e, "listing projects");
            return status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!("listing projects: {e}"),
            );
        }
    };
    let checks = futures::stream::iter(projects.into_iter().map(|project| {
        let client = state.client.clone();
        let user = user.clone();
        async move {
            let name = project.metadata.name.clone().unwrap_or_default();
            can_access(&client, &user, &name)
                .await
                .map(|ok| ok.then_some(project))
        }
    }))
    .buffer_unordered(REVIEW_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    let mut visible = Vec::new();
    for check in checks {
        match check {
            Ok(Some(project)) => visible.push(project),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reviewing access");
                return status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    format!("reviewing access: {e}"),
                );
            }
        }
    }
    visible.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    tracing::info!(user = %user.name, projects = visible.len(), "listed projects");
    Json(json!({
        "kind": "ProjectList",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {},
        "items": visible.iter().map(served).collect::<Vec<_>>()
    }))
    .into_response()
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(user) = user_from_headers(&headers) else {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "no user in the forwarded request".into(),
        );
    };
    // A project that does not exist and one the user cannot access read the same.
    let not_found = || {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("projects.{GROUP} \"{name}\" not found"),
        )
    };
    match can_access(&state.client, &user, &name).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => {
            return status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!("reviewing access: {e}"),
            );
        }
    }
    match Api::<Project>::all(state.client.clone()).get_opt(&name).await {
        Ok(Some(project)) => Json(served(&project)).into_response(),
        Ok(None) => not_found(),
        Err(e) => status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("reading project: {e}"),
        ),
    }
}

/// The API server's front-proxy trust, as it publishes it in
/// `kube-system/extension-apiserver-authentication`.
pub struct FrontProxy {
    /// PEM of the CA that signs the API server's proxy client certificate.
    pub ca_pem: String,
    /// Common names the certificate may have; any when empty.
    pub allowed_names: Vec<String>,
}

/// Reads the front-proxy trust from the cluster.
pub async fn front_proxy(client: &Client) -> anyhow::Result<FrontProxy> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .get("extension-apiserver-authentication")
        .await
        .context("reading kube-system/extension-apiserver-authentication")?;
    let data = cm.data.unwrap_or_default();
    let ca_pem = data.get("requestheader-client-ca-file").cloned().context(
        "the API server has no front-proxy CA (--requestheader-client-ca-file): it cannot forward users to an aggregated API",
    )?;
    let allowed_names = data
        .get("requestheader-allowed-names")
        .map(|v| serde_json::from_str::<Vec<String>>(v).unwrap_or_default())
        .unwrap_or_default();
    Ok(FrontProxy {
        ca_pem,
        allowed_names,
    })
}

/// Accepts only client certificates signed by the front-proxy CA whose common name is allowed:
/// the headers that name the user are believed only from the API server.
#[derive(Debug)]
struct FrontProxyVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allowed_names: Vec<String>,
}

impl ClientCertVerifier for FrontProxyVerifier {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if self.allowed_names.is_empty() {
            return Ok(verified);
        }
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        let allowed = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .any(|cn| self.allowed_names.iter().any(|a| a == cn));
        if allowed {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS server configuration that serves the certificate `resolver` has at each handshake and
/// demands the front proxy's certificate.
pub fn tls_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    front_proxy: &FrontProxy,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(front_proxy.ca_pem.as_bytes()) {
        roots
            .add(cert.context("reading the front-proxy CA")?)
            .context("adding the front-proxy CA")?;
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("building the client certificate verifier")?;
    let verifier = Arc::new(FrontProxyVerifier {
        inner,
        allowed_names: front_proxy.allowed_names.clone(),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves the aggregated API until the handle shuts it down.
pub async fn serve(
    addr: SocketAddr,
    config: rustls::ServerConfig,
    client: Client,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
    axum_server::bind_rustls(addr, config)
        .handle(handle)
        .serve(router(client).into_make_service())
        .await
}

/// The DNS name the aggregator checks the serving certificate against.
pub fn service_dns_name(namespace: &str, service: &str) -> String {
    format!("{service}.{namespace}.svc")
}

/// Registers the API: an APIService trusting `ca_pem`, pointing at `namespace/service:port`.
/// With `external_host` (the dev cluster, where the server runs beside the API server), the
/// Service is made too, as an ExternalName to that host; in a cluster the chart makes the Service.
pub async fn register(
    client: &Client,
    namespace: &str,
    service: &str,
    port: i32,
    ca_pem: &str,
    external_host: Option<&str>,
) -> anyhow::Result<()> {
    let apply = PatchParams::apply(slipway_crds::FIELD_MANAGER).force();
    if let Some(host) = external_host {
        let svc = Service {
            metadata: ObjectMeta {
                name: Some(service.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ExternalName".into()),
                external_name: Some(host.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        Api::<Service>::namespaced(client.clone(), namespace)
            .patch(service, &apply, &Patch::Apply(&svc))
            .await
            .context("applying the ExternalName service of the access API")?;
    }
    let api_service = APIService {
        metadata: ObjectMeta {
            name: Some(API_SERVICE.into()),
            ..Default::default()
        },
        spec: Some(APIServiceSpec {
            group: Some(GROUP.into()),
            version: Some(VERSION.into()),
            group_priority_minimum: 1000,
            version_priority: 15,
            ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
            service: Some(ServiceReference {
                namespace: Some(namespace.into()),
                name: Some(service.into()),
                port: Some(port),
            }),
            insecure_skip_tls_verify: None,
        }),
        status: None,
    };
    Api::<APIService>::all(client.clone())
        .patch(API_SERVICE, &apply, &Patch::Apply(&api_service))
        .await
        .context("applying the APIService of the access API")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn user_comes_from_the_front_proxy_headers() {
        let user = user_from_headers(&headers(&[
            ("x-remote-user", "alice"),
            ("x-remote-group", "system:authenticated"),
            ("x-remote-group", "team"),
            ("x-remote-extra-scopes", "a"),
            ("x-remote-extra-scopes", "b"),
        ]))
        .unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["system:authenticated", "team"]);
        assert_eq!(user.extra["scopes"], ["a", "b"]);
    }

    #[test]
    fn no_user_no_answer() {
        assert_eq!(user_from_headers(&headers(&[])), None);
        assert_eq!(user_from_headers(&headers(&[("x-remote-user", "  ")])), None);
        assert_eq!(
            user_from_headers(&headers(&[("x-remote-group", "system:masters")])),
            None
        );
    }

    #[test]
    fn served_projects_carry_this_groups_api_version() {
        let mut project = Project::new("team-a", Default::default());
        project.metadata.managed_fields = Some(vec![Default::default()]);
        let value = served(&project);
        assert_eq!(value["apiVersion"], "access.slipway.dev/v1alpha1");
        assert_eq!(value["kind"], "Project");
        assert_eq!(value["metadata"]["name"], "team-a");
        assert!(value["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn discovery_lists_get_and_list_of_projects() {
        let d = discovery();
        assert_eq!(d["groupVersion"], "access.slipway.dev/v1alpha1");
        assert_eq!(d["resources"][0]["verbs"], json!(["get", "list"]));
        assert_eq!(d["resources"][0]["namespaced"], false);
    }
}
