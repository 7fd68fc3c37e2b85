//! slipway-webhook: Kubernetes admission for Slipway's objects and the git-provider webhooks that
//! start builds. Decisions are pure functions in `admission` and `git`; `server` is the HTTPS
//! layer, `tls` makes its certificates, `certs` shares them between replicas and rotates them,
//! and `register` tells the API server about it.

pub mod access;
pub mod admission;
pub mod certs;
pub mod flags;
pub mod git;
pub mod image_lookup;
pub mod limits;
pub mod owner;
pub mod pod_defaults;
pub mod register;
pub mod registry;
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

/// Makes certificates for `names` (this process's alone), serves admission on `listen`, waits
/// until the port accepts connections, then registers the hooks as `configuration_name`, reached at
/// `endpoint` (limited to objects matching `object_selector`, if given).
pub async fn start(
    client: kube::Client,
    listen: SocketAddr,
    names: &[String],
    configuration_name: &str,
    endpoint: register::Endpoint,
    object_selector: Option<LabelSelector>,
) -> anyhow::Result<Running> {
    let certificates = tls::generate(names).context("generating the serving certificate")?;
    let tls = tls::Tls::fixed(&certificates)?;
    start_with(client, listen, tls, configuration_name, endpoint, object_selector).await
}

/// As [`start`], with the certificates of `tls` (`certs::start`): the server presents the
/// current one, and the hooks are registered again whenever the CA bundle changes.
pub async fn start_with(
    client: kube::Client,
    listen: SocketAddr,
    tls: tls::Tls,
    configuration_name: &str,
    endpoint: register::Endpoint,
    object_selector: Option<LabelSelector>,
) -> anyhow::Result<Running> {
    let mut ca_bundle = tls.ca_bundle.clone();
    let mut registration = register::Registration {
        name: configuration_name.to_string(),
        endpoint,
        ca_pem: ca_bundle.borrow_and_update().clone(),
        object_selector,
    };
    let handle = axum_server::Handle::new();
    let serving = server::serve_tls(listen, tls.resolver.clone(), client.clone(), handle.clone());
    let (registered, after_registration) = tokio::sync::oneshot::channel();
    let reregister = {
        let (client, registration) = (client.clone(), registration.clone());
        keep_registered("admission hooks", after_registration, move |ca_pem| {
            let (client, mut registration) = (client.clone(), registration.clone());
            async move {
                registration.ca_pem = ca_pem;
                register::register(&client, &registration).await?;
                Ok(())
            }
        })
    };
    let server = tokio::spawn(async move {
        tokio::select! {
            result = serving => result,
            result = reregister => result,
        }
    });
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
    registration.ca_pem = ca_bundle.borrow_and_update().clone();
    register::register(&client, &registration)
        .await
        .context("registering the admission hooks")?;
    let _ = registered.send(ca_bundle);
    Ok(Running { handle, server })
}

/// Once the first registration is made (`first` gives the bundle as it was then), calls
/// `register` with the CA bundle whenever it changes, trying again until it succeeds. Never
/// returns: it runs beside a server, and ends with it.
async fn keep_registered<F, Fut>(
    what: &'static str,
    first: tokio::sync::oneshot::Receiver<tokio::sync::watch::Receiver<String>>,
    mut register: F,
) -> std::io::Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    if let Ok(mut ca_bundle) = first.await {
        while ca_bundle.changed().await.is_ok() {
            loop {
                let ca_pem = ca_bundle.borrow_and_update().clone();
                match register(ca_pem).await {
                    Ok(()) => {
                        tracing::info!(what, "registered the new CA bundle");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(what, error = format!("{e:#}"), "registering the new CA bundle");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        }
    }
    std::future::pending().await
}

/// Serves the git webhooks on `listen` (their own listener, apart from admission) with the
/// certificates of `tls`, their caches fed by watches (of the webhook Secrets too with
/// `cache_secrets`), and `extra`'s routes (the registry's token service and notifications)
/// beside them; returns once the port accepts connections.
pub async fn start_git(
    client: kube::Client,
    listen: SocketAddr,
    tls: &tls::Tls,
    cache_secrets: bool,
    extra: axum::Router,
) -> anyhow::Result<Running> {
    let handle = axum_server::Handle::new();
    let caches = git::cache::Caches::start_with(&client, cache_secrets);
    let router = server::git_router(client, caches).merge(extra);
    let server = tokio::spawn(server::serve_router(
        listen,
        tls.resolver.clone(),
        router,
        limits::Limits::GIT,
        handle.clone(),
    ));
    let local = SocketAddr::from(([127, 0, 0, 1], listen.port()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(local).await.is_err() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline && !server.is_finished(),
            "the git webhook server did not start listening on {listen}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let tls = tls::Tls::fixed(&certificates)?;
    start_access_with(client, listen, namespace, service, external_host, tls).await
}

/// As [`start_access`], with the certificates of `tls` (`certs::start`; they must name
/// `access::service_dns_name(namespace, service)`): the APIService is registered again whenever
/// the CA bundle changes.
pub async fn start_access_with(
    client: kube::Client,
    listen: SocketAddr,
    namespace: &str,
    service: &str,
    external_host: Option<&str>,
    tls: tls::Tls,
) -> anyhow::Result<RunningAccess> {
    let front_proxy = access::front_proxy(&client).await?;
    let config = access::tls_config(tls.resolver.clone(), &front_proxy)?;
    let handle = axum_server::Handle::new();
    let serving = access::serve(listen, config, client.clone(), handle.clone());
    let port = i32::from(listen.port());
    let (registered, after_registration) = tokio::sync::oneshot::channel();
    let reregister = {
        let (client, namespace, service) = (client.clone(), namespace.to_string(), service.to_string());
        let external_host = external_host.map(str::to_string);
        keep_registered("access APIService", after_registration, move |ca_pem| {
            let (client, namespace, service) = (client.clone(), namespace.clone(), service.clone());
            let external_host = external_host.clone();
            async move {
                access::register(
                    &client,
                    &namespace,
                    &service,
                    port,
                    &ca_pem,
                    external_host.as_deref(),
                )
                .await
            }
        })
    };
    let server = tokio::spawn(async move {
        tokio::select! {
            result = serving => result,
            result = reregister => result,
        }
    });
    let mut ca_bundle = tls.ca_bundle.clone();
    let ca_pem = ca_bundle.borrow_and_update().clone();
    access::register(&client, namespace, service, port, &ca_pem, external_host).await?;
    let _ = registered.send(ca_bundle);
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
