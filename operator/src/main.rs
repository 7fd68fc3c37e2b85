//! slipway-operator: runs Slipway's controllers. The controllers are one table in the library
//! ([`slipway_operator::controllers::CONTROLLERS`]); this file parses the flags once into their
//! settings and wires the metrics server and the leader lease around them.

use std::sync::Arc;

use clap::Parser;
use slipway_operator::Context;
use slipway_operator::controllers::{self, CONTROLLERS};

/// Slipway's controllers for builds, images, deployments, templates and projects.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Run only these controllers (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    controllers: Vec<String>,
    /// Watch one namespace only; all namespaces by default.
    #[arg(long)]
    namespace: Option<String>,
    /// Act only on objects with these labels, e.g. `team=a,env!=test` (the objects a controller
    /// reconciles: DeploymentConfigs, BuildConfigs, Builds, ImageStreams, workloads with image
    /// triggers, TemplateInstances, Projects and ProjectRequests); all by default.
    #[arg(long, value_name = "LABELS")]
    selector: Option<String>,
    /// The project template, NAMESPACE/NAME of a Template; a built-in quota, limit range and
    /// network policy when absent.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    project_template: Option<String>,
    /// An annotation every new project's namespace gets, KEY=VALUE (repeatable), e.g.
    /// scheduler.alpha.kubernetes.io/node-selector=pool=apps for a default node selector.
    #[arg(long = "project-namespace-annotation", value_name = "KEY=VALUE")]
    project_namespace_annotations: Vec<String>,
    /// The Pod Security Admission level every new project's namespace enforces (privileged,
    /// baseline, restricted); none when absent. Docker builds need `privileged`.
    #[arg(long, value_name = "LEVEL")]
    project_pod_security: Option<String>,
    /// The level new projects warn and audit at (`pod-security.kubernetes.io/warn`, `/audit`);
    /// `restricted` by default when --project-pod-security is given.
    #[arg(long, value_name = "LEVEL", default_value = "restricted")]
    project_pod_security_warn: String,
    /// How many projects one user may request; unlimited when absent.
    #[arg(long, value_name = "N")]
    max_projects_per_user: Option<usize>,
    /// The image with slipway-builder, for the build pods' init container (fetch, receive or place-tools).
    #[arg(long, default_value = "ghcr.io/slipway-dev/slipway-builder:latest")]
    builder_image: String,
    /// The buildah image Docker-strategy builds run in.
    #[arg(long, default_value = "quay.io/buildah/stable:latest")]
    buildah_image: String,
    /// The registry builds push to (image streams get `<registry>/<namespace>/<name>`).
    #[arg(long, default_value = "127.0.0.1:15000", value_name = "HOST[:PORT]")]
    registry: String,
    /// A registry (`host:port`) builds reach over plain http, such as a development registry;
    /// repeat or separate by commas.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT", value_delimiter = ',')]
    insecure_registries: Vec<String>,
    /// The integrated registry (`host:port` as pods pull from it): every project's builder,
    /// deployer and default accounts get credentials for it (`<account>-dockercfg`, linked as
    /// image pull Secrets), and builds pushing there without a pushSecret push with them.
    #[arg(long, value_name = "HOST:PORT")]
    integrated_registry: Option<String>,
    /// The integrated registry's `auth.token.service`: the audience of the credentials' tokens.
    #[arg(long, default_value = "slipway-registry", requires = "integrated_registry")]
    registry_service: String,
    /// How long the credentials' tokens live (they are renewed at half of it; at least 10m).
    #[arg(long, default_value = "24h", value_parser = slipway_operator::image::parse_interval, requires = "integrated_registry")]
    registry_token_lifetime: std::time::Duration,
    /// CA certificates (a PEM file) build pods trust for registries besides the public roots:
    /// the integrated registry's CA.
    #[arg(long, value_name = "FILE")]
    registry_ca: Option<std::path::PathBuf>,
    /// The most bytes a binary build's upload (slip start-build --from-*) may have, as sent and
    /// as unpacked.
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    binary_max_bytes: u64,
    /// How long a binary build's pod waits for its upload to start (and for a stalled one to go
    /// on) before the build fails, e.g. 10m.
    #[arg(long, default_value = "10m", value_parser = slipway_operator::image::parse_interval)]
    binary_wait: std::time::Duration,
    /// How often scheduled image stream tags are imported, e.g. 15m, 30s.
    #[arg(long, default_value = "15m", value_parser = slipway_operator::image::parse_interval)]
    image_import_interval: std::time::Duration,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_listen: std::net::SocketAddr,
    /// Run the controllers only while holding a Lease, so that several replicas can run and one
    /// acts at a time.
    #[arg(long)]
    leader_elect: bool,
    /// The namespace of the Lease; the pod's own (POD_NAMESPACE) by default.
    #[arg(long, env = "POD_NAMESPACE", default_value = "slipway-system")]
    leader_election_namespace: String,
    /// The name of the Lease.
    #[arg(long, default_value = "slipway-operator")]
    leader_election_id: String,
    /// The file of keys that verify the requester stamps of Slipway's admission webhook (one per
    /// line; the mounted Secret `slipway-requester-keys`). Without it no TemplateInstance is acted on.
    #[arg(long, value_name = "FILE")]
    requester_keys: Option<std::path::PathBuf>,
    /// List the controllers and exit.
    #[arg(long)]
    list: bool,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let args = Args::parse();
    if args.list {
        for c in CONTROLLERS {
            println!("{:10} {}", c.name, c.watches);
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    slipway_client::logging::init(args.log_json);
    let selected = controllers::select(&args.controllers).map_err(anyhow::Error::msg)?;
    let mut ctx = Context::new(kube::Config::infer().await?)?;
    ctx.label_selector = args.selector.clone();
    if let Some(path) = &args.requester_keys {
        ctx.requester_keys = Arc::new(slipway_operator::requester::RequesterKeys::File(path.clone()));
    }
    let runs_projects = selected.iter().any(|c| c.name == "project");
    let settings = Arc::new(settings(&ctx, &args, runs_projects).await?);
    serve_metrics(&ctx, args.metrics_listen).await?;
    let leadership = args.leader_elect.then(|| leader_settings(&args));
    if let Some(lease) = &leadership {
        tokio::select! {
            _ = slipway_operator::leader::acquire(&ctx.client, lease) => {}
            signal = shutdown_signal() => {
                tracing::info!(signal = signal?, "shutting down before leading");
                return Ok(std::process::ExitCode::SUCCESS);
            }
        }
    }
    let hold = async {
        match &leadership {
            Some(lease) => slipway_operator::leader::hold(&ctx.client, lease).await,
            None => std::future::pending().await,
        }
    };
    let running = selected.iter().map(|c| {
        tracing::info!(controller = c.name, "starting");
        (c.start)(ctx.clone(), settings.clone())
    });
    tokio::select! {
        _ = futures::future::join_all(running) => {}
        _ = hold => {
            // Another replica leads now: stop acting at once, and start again as a candidate.
            tracing::error!("lost the leader lease; exiting");
            return Ok(std::process::ExitCode::FAILURE);
        }
        signal = shutdown_signal() => tracing::info!(signal = signal?, "shutting down"),
    }
    if let Some(lease) = &leadership {
        slipway_operator::leader::release(&ctx.client, lease).await;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Serves /metrics, /healthz and /readyz on `listen`.
async fn serve_metrics(ctx: &Context, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("serving metrics on {listen}: {e}"))?;
    let router = ctx.metrics.router();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    Ok(())
}

fn leader_settings(args: &Args) -> slipway_operator::leader::Settings {
    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id()));
    slipway_operator::leader::Settings::new(
        &args.leader_election_namespace,
        &args.leader_election_id,
        &identity,
    )
}

/// Every controller's settings, from the flags, once; the project template is read only when the
/// project controllers run.
async fn settings(ctx: &Context, args: &Args, runs_projects: bool) -> anyhow::Result<controllers::Settings> {
    let namespace = args.namespace.clone();
    let registry_ca = match &args.registry_ca {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading --registry-ca {}: {e}", path.display()))?,
        ),
        None => None,
    };
    anyhow::ensure!(
        args.registry_token_lifetime >= std::time::Duration::from_secs(600),
        "--registry-token-lifetime must be at least 10m (the TokenRequest API's least)"
    );
    let registry =
        args.integrated_registry
            .clone()
            .map(|host| slipway_operator::registry_credentials::Settings {
                host,
                audience: args.registry_service.clone(),
                lifetime: args.registry_token_lifetime,
            });
    Ok(controllers::Settings {
        registry,
        build: slipway_operator::build::controller::Settings {
            images: slipway_operator::build::pod::BuildImages {
                builder_tools: args.builder_image.clone(),
                buildah: args.buildah_image.clone(),
                insecure_registries: args.insecure_registries.clone(),
                integrated_registry: args.integrated_registry.clone(),
                registry_ca,
                binary_max_bytes: args.binary_max_bytes,
                binary_wait: args.binary_wait,
            },
            registry: args.registry.clone(),
            namespace: namespace.clone(),
        },
        image: slipway_operator::image::Settings {
            registry: args.registry.clone(),
            import_interval: args.image_import_interval,
            namespace: namespace.clone(),
            label_selector: args.selector.clone(),
        },
        project: if runs_projects {
            project_settings(ctx, args).await?
        } else {
            Default::default()
        },
        namespace,
    })
}

/// The host's name, for a leader identity outside a pod.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "slipway-operator".into())
}

/// The project settings from the flags; the project template is read once, at start.
async fn project_settings(ctx: &Context, args: &Args) -> anyhow::Result<slipway_operator::project::Settings> {
    let template = match &args.project_template {
        None => None,
        Some(reference) => {
            let Some((namespace, name)) = reference.split_once('/') else {
                anyhow::bail!("--project-template takes NAMESPACE/NAME, not {reference:?}");
            };
            let api: kube::Api<slipway_crds::Template> = kube::Api::namespaced(ctx.client.clone(), namespace);
            Some(
                api.get(name)
                    .await
                    .map_err(|e| anyhow::anyhow!("reading the project template {reference}: {e}"))?
                    .spec,
            )
        }
    };
    let mut namespace_annotations = std::collections::BTreeMap::new();
    for pair in &args.project_namespace_annotations {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            anyhow::bail!("--project-namespace-annotation takes KEY=VALUE, not {pair:?}");
        };
        namespace_annotations.insert(key.to_string(), value.to_string());
    }
    let namespace_labels = match &args.project_pod_security {
        None => Default::default(),
        Some(level) => slipway_operator::project::pod_security_labels(level, &args.project_pod_security_warn)
            .map_err(|e| anyhow::anyhow!("--project-pod-security: {e}"))?,
    };
    Ok(slipway_operator::project::Settings {
        template,
        max_projects_per_user: args.max_projects_per_user,
        label_selector: args.selector.clone(),
        namespace_annotations,
        namespace_labels,
    })
}

/// Waits for SIGTERM (how Kubernetes stops a pod) or SIGINT.
async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
    }
}
