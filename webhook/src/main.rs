//! slipway-webhook: shares its certificates with its other replicas through a Secret (and rotates
//! them, `certs`; or serves the ones cert-manager writes into it), registers its admission hooks
//! with the API server, and serves them on one listener and the git-provider webhooks,
//! `/webhooks/{namespace}/{buildconfig}/{provider}`, on another, over HTTPS until SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use slipway_webhook::{certs, flags};

/// HTTPS server for Kubernetes admission of Slipway's objects (stamps the requester of
/// ProjectRequests, Projects and TemplateInstances from the authenticated user) and for git
/// providers' webhooks, which start builds (POST /webhooks/NAMESPACE/BUILDCONFIG/PROVIDER).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to serve the git providers' webhooks on (public; limited as a public endpoint).
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Address to serve admission on (for the API server alone; its own listener and limits, so
    /// that a flood of the git webhooks leaves admission answering).
    #[arg(long, default_value = "0.0.0.0:8445")]
    admission_listen: SocketAddr,
    /// Where the API server reaches the admission listener: an https URL (outside the cluster) ...
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
    /// The Secret, [NAMESPACE/]NAME (the namespace of the client by default: in a pod, its own),
    /// that holds the CA and the serving certificate: the one through which the replicas share
    /// and rotate them, or (--certificates external) the one cert-manager writes.
    #[arg(long, default_value = slipway_webhook::certs::DEFAULT_SECRET)]
    tls_secret: String,
    /// Who makes the certificates of --tls-secret.
    #[arg(long, value_enum, default_value_t = Certificates::SelfManaged)]
    certificates: Certificates,
    /// How long a CA is valid (ms, s, m, h, d); the next one is made when a third is left.
    #[arg(long, default_value = "1825d", value_parser = slipway_webhook::certs::parse_duration)]
    ca_validity: Duration,
    /// How long a serving certificate is valid; it is renewed when a third is left.
    #[arg(long, default_value = "90d", value_parser = slipway_webhook::certs::parse_duration)]
    cert_validity: Duration,
    /// How often the Secret is read again (it is also watched).
    #[arg(long, default_value = "1m", value_parser = slipway_webhook::certs::parse_duration)]
    cert_check_interval: Duration,
    /// The file of requester keys (one per line; the mounted Secret `slipway-requester-keys`):
    /// TemplateInstance stamps are signed with the first, so the operator can verify them.
    #[arg(long, value_name = "FILE")]
    requester_keys: Option<std::path::PathBuf>,
    /// Watch the Secrets labelled slipway.dev/webhook-secret (needs list and watch on Secrets);
    /// without it, each git delivery reads the Secret its trigger names (get only).
    #[arg(long)]
    cache_secrets: bool,
    /// The integrated registry's token service (GET /registry/token on the --listen listener):
    /// the ECDSA P-256 key (PKCS#8 PEM) that signs registry tokens ...
    #[arg(long, value_name = "FILE", requires = "registry_token_cert")]
    registry_token_key: Option<std::path::PathBuf>,
    /// ... and its certificate (PEM), which the registry's `auth.token.rootcertbundle` holds.
    #[arg(long, value_name = "FILE", requires = "registry_token_key")]
    registry_token_cert: Option<std::path::PathBuf>,
    /// The registry's `auth.token.service`: the audience of its tokens.
    #[arg(long, default_value = "slipway-registry")]
    registry_service: String,
    /// The registry's `auth.token.issuer`.
    #[arg(long, default_value = "slipway")]
    registry_issuer: String,
    /// How long a registry token is good for (ms, s, m, h, d).
    #[arg(long, default_value = "5m", value_parser = slipway_webhook::certs::parse_duration)]
    registry_token_lifetime: Duration,
    /// The registry's notifications (POST /registry/notifications on the --listen listener):
    /// the file holding the secret the registry sends as a bearer token ...
    #[arg(long, value_name = "FILE", requires = "registry_host")]
    registry_notify_secret: Option<std::path::PathBuf>,
    /// ... and the registry as pods pull from it, HOST[:PORT] (pushed tags record
    /// HOST[:PORT]/PROJECT/STREAM@DIGEST).
    #[arg(long)]
    registry_host: Option<String>,
    /// Serve the registry's token service and notifications alone, as the integrated registry's
    /// `auth` container: the token service on --listen with the registry's own serving
    /// certificate (--registry-tls-cert, --registry-tls-key: clients reach the realm at the
    /// registry's address and trust the same CA), the notifications over plain HTTP on
    /// --registry-notify-listen (loopback: only the registry container beside it reaches it). No
    /// admission, access API or certificate Secret.
    #[arg(long, requires_all = ["registry_tls_cert", "registry_tls_key", "registry_token_key"])]
    registry_only: bool,
    /// The registry's serving certificate (PEM, the leaf first) ...
    #[arg(long, value_name = "FILE", requires = "registry_only")]
    registry_tls_cert: Option<std::path::PathBuf>,
    /// ... and its key (PEM).
    #[arg(long, value_name = "FILE", requires = "registry_only")]
    registry_tls_key: Option<std::path::PathBuf>,
    /// Where the registry delivers its notifications (--registry-only; a loopback address).
    #[arg(long, default_value = "127.0.0.1:5002", requires = "registry_only")]
    registry_notify_listen: SocketAddr,
    /// The registry's storage (its `rootdirectory`, mounted here; --registry-only): carry out
    /// ImagePrunes on it.
    #[arg(long, value_name = "DIR", requires = "registry_only")]
    registry_storage: Option<std::path::PathBuf>,
    /// Make an ImagePrune this often (with the two flags below); none when absent.
    #[arg(long, value_parser = slipway_webhook::certs::parse_duration, requires = "registry_storage")]
    registry_prune_interval: Option<Duration>,
    /// The scheduled ImagePrunes' keepTagRevisions.
    #[arg(long, default_value_t = 3)]
    registry_prune_keep_tag_revisions: u32,
    /// The scheduled ImagePrunes' keepYoungerThan (60m, 24h, 1h30m).
    #[arg(long, default_value = "60m")]
    registry_prune_keep_younger_than: String,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// Check the flags and exit without serving (the chart's tests check its flags so).
    #[arg(long)]
    check_flags: bool,
}

/// Who makes the serving certificate and its CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Certificates {
    /// The replicas make them, share them through --tls-secret and rotate them (--ca-validity,
    /// --cert-validity).
    SelfManaged,
    /// Another party (cert-manager, from a Certificate) writes --tls-secret with tls.crt, tls.key
    /// and ca.crt; the replicas never write it: they wait until it holds a usable certificate
    /// (not ready until then), serve tls.crt, register ca.crt as the caBundle, and follow each
    /// change (a renewal) without a restart. --ca-validity and --cert-validity do not apply.
    External,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    slipway_client::logging::init(args.log_json);
    if args.registry_only {
        return registry_only(&args).await;
    }
    let (endpoint, names) =
        flags::endpoint(args.url.as_deref(), args.service.as_deref()).map_err(anyhow::Error::msg)?;
    let certificates = certificate_settings(&args)?;
    let access_service = flags::access_service(args.access_listen.is_some(), &args.access_service)
        .map_err(anyhow::Error::msg)?;
    let (cert_names, called) = flags::certificate_names(names, access_service.as_ref());
    anyhow::ensure!(
        args.listen.port() != args.admission_listen.port(),
        "--listen and --admission-listen must be different ports"
    );
    let registry = registry_router(&args)?;
    if args.check_flags {
        return Ok(());
    }
    if let Some(path) = &args.requester_keys {
        slipway_webhook::admission::use_requester_keys(path.clone());
    }
    let client = kube::Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let certs = start_certificates(&client, &args, certificates, cert_names, called).await?;
    let running = slipway_webhook::start_with(
        client.clone(),
        args.admission_listen,
        certs.tls.clone(),
        &args.configuration_name,
        endpoint,
        None,
    )
    .await?;
    tracing::info!(listen = %args.admission_listen, "serving admission");
    let git = slipway_webhook::start_git(
        client.clone(),
        args.listen,
        &certs.tls,
        args.cache_secrets,
        registry.map_or_else(axum::Router::new, |make| make(client.clone())),
    )
    .await?;
    tracing::info!(listen = %args.listen, "serving git webhooks");
    // The access API waits until the API server reports it available, which needs this pod
    // Ready, which needs the admission server above listening (the readiness probe's port).
    let access = match (args.access_listen, &access_service) {
        (Some(listen), Some((namespace, service))) => {
            let external = args.access_external_host.as_deref();
            let running = slipway_webhook::start_access_with(
                client.clone(),
                listen,
                namespace,
                service,
                external,
                certs.tls.clone(),
            )
            .await?;
            tracing::info!(listen = %listen, "serving access.slipway.dev");
            Some(running)
        }
        _ => None,
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
    let handles = [running.handle.clone(), git.handle.clone()];
    let stop = || {
        for handle in &handles {
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        }
    };
    tokio::select! {
        result = running.server => result??,
        result = git.server => result??,
        _ = term.recv() => stop(),
        _ = tokio::signal::ctrl_c() => stop(),
    }
    if let Some(access) = access {
        access.handle.graceful_shutdown(Some(Duration::from_secs(5)));
    }
    Ok(())
}

/// A maker of the registry's routes (token service, notifications) as the flags ask, the files
/// read and checked now (so --check-flags fails on a bad key).
type RegistryRoutes = Box<dyn FnOnce(kube::Client) -> axum::Router>;

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The token issuer the flags ask for.
fn registry_issuer(args: &Args) -> anyhow::Result<Option<slipway_webhook::registry::token::Issuer>> {
    let (Some(key), Some(cert)) = (&args.registry_token_key, &args.registry_token_cert) else {
        return Ok(None);
    };
    let issuer = slipway_webhook::registry::token::Issuer::from_pem(
        &read(key)?,
        &read(cert)?,
        &args.registry_issuer,
        &args.registry_service,
        args.registry_token_lifetime,
    )
    .map_err(anyhow::Error::msg)?;
    Ok(Some(issuer))
}

/// The notification settings the flags ask for.
fn registry_notifications(
    args: &Args,
) -> anyhow::Result<Option<slipway_webhook::registry::notify::Notifications>> {
    let (Some(secret), Some(host)) = (&args.registry_notify_secret, &args.registry_host) else {
        return Ok(None);
    };
    let secret = read(secret)?.trim().to_string();
    anyhow::ensure!(
        secret.len() >= 16,
        "the registry notification secret must have at least 16 characters"
    );
    Ok(Some(slipway_webhook::registry::notify::Notifications {
        registry: host.clone(),
        secret,
    }))
}

fn registry_router(args: &Args) -> anyhow::Result<Option<RegistryRoutes>> {
    use slipway_webhook::registry::notify;
    let issuer = registry_issuer(args)?;
    let notifications = registry_notifications(args)?;
    if issuer.is_none() && notifications.is_none() {
        return Ok(None);
    }
    Ok(Some(Box::new(move |client: kube::Client| {
        let mut router = axum::Router::new();
        if let Some(issuer) = issuer {
            router = router.merge(slipway_webhook::registry::router(client.clone(), issuer));
        }
        if let Some(settings) = notifications {
            router = router.merge(notify::router(client, settings));
        }
        router
    })))
}

/// --registry-only: the token service over TLS with the registry's certificate, and the
/// notifications on loopback, until SIGTERM.
async fn registry_only(args: &Args) -> anyhow::Result<()> {
    use slipway_webhook::{limits::Limits, registry, server, tls};
    let (Some(cert), Some(key)) = (&args.registry_tls_cert, &args.registry_tls_key) else {
        anyhow::bail!("--registry-only needs --registry-tls-cert and --registry-tls-key");
    };
    let issuer = registry_issuer(args)?
        .context("--registry-only needs --registry-token-key and --registry-token-cert")?;
    let notifications = registry_notifications(args)?;
    anyhow::ensure!(
        args.registry_notify_listen.ip().is_loopback(),
        "--registry-notify-listen {} is not a loopback address: the notifications are plain HTTP",
        args.registry_notify_listen
    );
    let serving = tls::Serving {
        cert_pem: read(cert)?,
        key_pem: read(key)?,
    };
    let resolver = std::sync::Arc::new(
        tls::Resolver::new(&serving).context("the registry's serving certificate and key")?,
    );
    slipway_crds::image_prune::parse_duration(&args.registry_prune_keep_younger_than)
        .map_err(|e| anyhow::anyhow!("--registry-prune-keep-younger-than: {e}"))?;
    if let Some(storage) = &args.registry_storage {
        anyhow::ensure!(
            storage.is_dir(),
            "--registry-storage {} is not a directory",
            storage.display()
        );
        anyhow::ensure!(
            args.registry_host.is_some(),
            "--registry-storage needs --registry-host (the registry as image references name it)"
        );
    }
    if args.check_flags {
        return Ok(());
    }
    let client = kube::Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let tokens = axum_server::Handle::new();
    let mut token_server = tokio::spawn(server::serve_router(
        args.listen,
        resolver,
        registry::router(client.clone(), issuer),
        Limits::GIT,
        tokens.clone(),
    ));
    tracing::info!(listen = %args.listen, "serving registry tokens");
    let notified = axum_server::Handle::new();
    let mut notify_server = match notifications {
        Some(settings) => {
            let router = registry::notify::router(client.clone(), settings);
            let listen = args.registry_notify_listen;
            tracing::info!(%listen, "serving registry notifications");
            tokio::spawn(server::serve_loopback(
                listen,
                router,
                Limits::GIT,
                notified.clone(),
            ))
        }
        None => tokio::spawn(std::future::pending::<std::io::Result<()>>()),
    };
    if let (Some(storage), Some(registry)) = (&args.registry_storage, &args.registry_host) {
        let pruner = registry::prune::Pruner {
            client: client.clone(),
            storage: registry::prune::Storage::new(storage),
            registry: registry.clone(),
        };
        let schedule = args.registry_prune_interval.map(|every| {
            let spec = slipway_crds::ImagePruneSpec {
                keep_tag_revisions: args.registry_prune_keep_tag_revisions,
                keep_younger_than: args.registry_prune_keep_younger_than.clone(),
                dry_run: false,
            };
            (every, spec)
        });
        tracing::info!(storage = %storage.display(), "carrying out ImagePrunes");
        tokio::spawn(registry::prune::run(pruner, schedule));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = || {
        for handle in [&tokens, &notified] {
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        }
    };
    tokio::select! {
        result = &mut token_server => result??,
        result = &mut notify_server => result??,
        _ = term.recv() => stop(),
        _ = tokio::signal::ctrl_c() => stop(),
    }
    let _ = tokio::time::timeout(Duration::from_secs(6), async {
        let _ = token_server.await;
        let _ = notify_server.await;
    })
    .await;
    Ok(())
}

/// How long certificates live and how often they are checked; only the check interval applies to
/// certificates made elsewhere.
fn certificate_settings(args: &Args) -> anyhow::Result<certs::Settings> {
    match args.certificates {
        Certificates::SelfManaged => {
            certs::Settings::new(args.ca_validity, args.cert_validity, args.cert_check_interval)
        }
        Certificates::External => {
            anyhow::ensure!(
                !args.cert_check_interval.is_zero(),
                "the check interval must be positive"
            );
            Ok(certs::Settings {
                check_interval: args.cert_check_interval,
                ..Default::default()
            })
        }
    }
}

/// The certificate both servers share with the other replicas, made and rotated here or read
/// from the Secret another party (cert-manager) writes.
async fn start_certificates(
    client: &kube::Client,
    args: &Args,
    settings: certs::Settings,
    cert_names: Vec<String>,
    called: Vec<String>,
) -> anyhow::Result<certs::Rotating> {
    let (secret_namespace, secret) = match args.tls_secret.split_once('/') {
        Some((namespace, name)) => (namespace.to_string(), name.to_string()),
        None => (client.default_namespace().to_string(), args.tls_secret.clone()),
    };
    let client = client.clone();
    match args.certificates {
        Certificates::SelfManaged => {
            certs::start(client, &secret_namespace, &secret, cert_names, settings).await
        }
        Certificates::External => {
            let interval = settings.check_interval;
            certs::start_external(client, &secret_namespace, &secret, called, interval).await
        }
    }
    .context("the certificates")
}
