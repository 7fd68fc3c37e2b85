//! slipway-webhook: Kubernetes admission for Slipway's objects and the git-provider webhooks that
//! start builds. Decisions are pure functions in `admission` and `git`; `server` is the HTTPS
//! layer, `tls` makes its certificates and `register` tells the API server about it.

pub mod admission;
pub mod git;
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
