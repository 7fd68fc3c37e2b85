//! slipway-webhook: makes its certificates, registers its admission hooks with the API server,
//! and serves them — and the git-provider webhooks, `/webhooks/{namespace}/{buildconfig}/{provider}`
//! — over HTTPS until SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use slipway_webhook::register::Endpoint;

/// HTTPS server for Kubernetes admission of Slipway's objects (stamps the requester of
/// ProjectRequests, Projects and TemplateInstances from the authenticated user) and for git
/// providers' webhooks, which start builds (POST /webhooks/NAMESPACE/BUILDCONFIG/PROVIDER).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Where the API server reaches this server: an https URL (outside the cluster) ...
    #[arg(long, conflicts_with = "service")]
    url: Option<String>,
    /// ... or a Service, NAMESPACE/NAME:PORT (in the cluster).
    #[arg(long)]
    service: Option<String>,
    /// The name of the webhook configurations.
    #[arg(long, default_value = "slipway-admission")]
    configuration_name: String,
    /// Also serve the access.slipway.dev aggregated API (the projects each user can access) here.
    #[arg(long)]
    access_listen: Option<SocketAddr>,
    /// The Service, NAMESPACE/NAME, through which the API server reaches the access API.
    #[arg(long, default_value = "slipway-system/slipway-access")]
    access_service: String,
    /// Make that Service an ExternalName to this host (when this server runs outside the cluster,
    /// as in the dev cluster); otherwise the Service must exist (the Helm chart makes it).
    #[arg(long)]
    access_external_host: Option<String>,
    /// A ClusterRole to own what this server registers (its webhook configurations and
    /// APIService), so that deleting it (helm uninstall) removes them.
    #[arg(long, value_name = "NAME")]
    owner_cluster_role: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let (endpoint, names) = match (&args.url, &args.service) {
        (Some(url), None) => {
            let host = url
                .strip_prefix("https://")
                .context("--url must be an https URL")?
                .split(['/', ':'])
                .next()
                .unwrap_or_default()
                .to_string();
            (Endpoint::Url(url.clone()), vec![host])
        }
        (None, Some(service)) => {
            let (namespace, rest) = service
                .split_once('/')
                .context("--service takes NAMESPACE/NAME:PORT")?;
            let (name, port) = rest
                .split_once(':')
                .context("--service takes NAMESPACE/NAME:PORT")?;
            let port: i32 = port.parse().context("--service: the port must be a number")?;
            let names = vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
            ];
            (
                Endpoint::Service {
                    namespace: namespace.into(),
                    name: name.into(),
                    port,
                },
                names,
            )
        }
        _ => anyhow::bail!(
            "say where the API server reaches this server: --url https://HOST:PORT or --service NAMESPACE/NAME:PORT"
        ),
    };
    let client = kube::Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let running = slipway_webhook::start(
        client.clone(),
        args.listen,
        &names,
        &args.configuration_name,
        endpoint,
        None,
    )
    .await?;
    tracing::info!(listen = %args.listen, "serving admission and git webhooks");
    // The access API waits until the API server reports it available, which needs this pod
    // Ready, which needs the admission server above listening (the readiness probe's port).
    let access = match args.access_listen {
        None => None,
        Some(listen) => {
            let (namespace, service) = args
                .access_service
                .split_once('/')
                .context("--access-service takes NAMESPACE/NAME")?;
            let running = slipway_webhook::start_access(
                client.clone(),
                listen,
                namespace,
                service,
                args.access_external_host.as_deref(),
            )
            .await?;
            tracing::info!(listen = %listen, "serving access.slipway.dev");
            Some(running)
        }
    };
    if let Some(owner) = &args.owner_cluster_role {
        let api_service = access.is_some().then_some(slipway_webhook::access::API_SERVICE);
        slipway_webhook::owner::adopt(&client, owner, &args.configuration_name, api_service)
            .await
            .with_context(|| {
                format!("making clusterrole {owner} the owner of what this server registered")
            })?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = running.server => result??,
        _ = term.recv() => running.handle.graceful_shutdown(Some(std::time::Duration::from_secs(5))),
        _ = tokio::signal::ctrl_c() => running.handle.graceful_shutdown(Some(std::time::Duration::from_secs(5))),
    }
    if let Some(access) = access {
        access
            .handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    }
    Ok(())
}
