//! slipway-webhook: Kubernetes admission for Slipway's objects and the git-provider webhooks that
//! start builds. Decisions are pure functions in `admission` and `git`; `server` is the HTTPS
//! layer, `tls` makes its certificates and `register` tells the API server about it.

pub mod access;
pub mod admission;
pub mod git;
pub mod image_lookup;
pub mod owner;
pub mod register;
pub mod server;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A running admission server whose hooks are registered with the API server.
pub struct Running {
    /// Shuts the server down.
    pub handle: axum_server::Handle<SocketAddr>,
    /// The server task; it ends when the server stops.
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Makes certificates for `names`, serves on `listen`, waits until the port accepts connections,
/// then registers the hooks as `configuration_name`, reached at `endpoint` (limited to objects
/// matching `object_selector`, if given).
pub async fn start(
    client: kube::Client,
    listen: SocketAddr,
    names: &[String],
    configuration_name: &str,
    endpoint: register::Endpoint,
    object_selector: Option<LabelSelector>,
) -> anyhow::Result<Running> {
    let certificates = tls::generate(names).context("generating the serving certificate")?;
    let handle = axum_server::Handle::new();
    let server = tokio::spawn(server::serve(
        listen,
        certificates.cert_pem,
        certificates.key_pem,
        client.clone(),
        handle.clone(),
    ));
    // The API server fails closed: register only once requests can be answered.
    let local = SocketAddr::from(([127, 0, 0, 1], listen.port()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(local).await.is_err() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the admission server did not start listening on {listen}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let registration = register::Registration {
        name: configuration_name.to_string(),
        endpoint,
        ca_pem: certificates.ca_pem,
        object_selector,
    };
    register::register(&client, &registration)
        .await
        .context("registering the admission hooks")?;
    Ok(Running { handle, server })
}

/// A running `access.slipway.dev` server, registered as an APIService.
pub struct RunningAccess {
    pub handle: axum_server::Handle<SocketAddr>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves the access API on `listen` with a fresh certificate for the Service
/// `namespace/service`, and registers it; with `external_host` the Service is an ExternalName to
/// that host (the dev cluster). Returns once the API server reports the APIService available.
pub async fn start_access(
    client: kube::Client,
    listen: SocketAddr,
    namespace: &str,
    service: &str,
    external_host: Option<&str>,
) -> anyhow::Result<RunningAccess> {
    let names = [access::service_dns_name(namespace, service), "localhost".into()];
    let certificates = tls::generate(&names).context("generating the access API's certificate")?;
    let front_proxy = access::front_proxy(&client).await?;
    let config = access::tls_config(&certificates.cert_pem, &certificates.key_pem, &front_proxy)?;
    let handle = axum_server::Handle::new();
    let server = tokio::spawn(access::serve(listen, config, client.clone(), handle.clone()));
    let port = i32::from(listen.port());
    access::register(
        &client,
        namespace,
        service,
        port,
        &certificates.ca_pem,
        external_host,
    )
    .await?;
    let api: kube::Api<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService> =
        kube::Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let available = api
            .get_opt(access::API_SERVICE)
            .await?
            .and_then(|s| s.status)
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True");
        if available {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the API server did not report {} available within 30 s",
            access::API_SERVICE
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(RunningAccess { handle, server })
}
