//! `slip logs build/NAME | bc/NAME | pod/NAME | dc/NAME | deployment/NAME`: a build's pod (its
//! containers in order), a bc's latest build, a pod's container, or the pods of the latest
//! version of a DeploymentConfig (with its hook pods) or of a Deployment (its newest ReplicaSet).

use anyhow::{Context, bail};
use clap::Args;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use kube::{Client, ResourceExt};
use slipway_crds::apps::labels;
use slipway_crds::{Build, BuildConfig, DeploymentConfig};

use crate::cluster::{api_error, block_on, client};
use crate::objects::{Kind, parse_target};

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// build/NAME, bc/NAME (its latest build), pod/NAME, dc/NAME or deployment/NAME (the pods of
    /// the latest version).
    target: String,
    /// The container of the pods (required when a pod has more than one).
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// Keep streaming while the build or the pods run.
    #[arg(short = 'f', long)]
    follow: bool,
    /// The log of the previous, ended instance of the container (after a restart).
    #[arg(short = 'p', long)]
    previous: bool,
}

const KINDS: [Kind; 5] = [
    Kind::Build,
    Kind::BuildConfig,
    Kind::Pod,
    Kind::DeploymentConfig,
    Kind::Deployment,
];

pub fn logs(args: LogsArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let (kind, name) = parse_target(&args.target, &KINDS, "slip logs")?;
    if matches!(kind, Kind::Build | Kind::BuildConfig) && (args.container.is_some() || args.previous) {
        bail!("-c and --previous are for pods: a build's log is its pod's containers in order");
    }
    block_on(async {
        let (client, ns) = client(namespace).await?;
        match kind {
            Kind::Build | Kind::BuildConfig => {
                let build = build_name(&client, &ns, kind, &name).await?;
                crate::builds::stream_logs(&client, &ns, &build, args.follow).await
            }
            Kind::Pod => {
                let pods: Api<Pod> = Api::namespaced(client, &ns);
                let Some(pod) = pods.get_opt(&name).await.map_err(api_error)? else {
                    bail!("pod {name} not found in namespace {ns}");
                };
                pod_logs(&pods, &[pod], &args).await
            }
            Kind::DeploymentConfig | Kind::Deployment => {
                let pods = version_pods(&client, &ns, kind, &name).await?;
                pod_logs(&Api::namespaced(client, &ns), &pods, &args).await
            }
            Kind::Service => bail!("slip logs does not show services"),
        }
    })?
}

async fn build_name(client: &Client, ns: &str, kind: Kind, name: &str) -> anyhow::Result<String> {
    let build = if kind == Kind::BuildConfig {
        let configs: Api<BuildConfig> = Api::namespaced(client.clone(), ns);
        let Some(bc) = configs.get_opt(name).await.map_err(api_error)? else {
            bail!("buildconfig {name} not found in {ns}");
        };
        let last = bc.status.map(|s| s.last_version).unwrap_or(0);
        if last == 0 {
            bail!("buildconfig {name} has no builds yet");
        }
        format!("{name}-{last}")
    } else {
        name.to_string()
    };
    let builds: Api<Build> = Api::namespaced(client.clone(), ns);
    if builds.get_opt(&build).await.map_err(api_error)?.is_none() {
        bail!("build {build} not found in {ns}");
    }
    Ok(build)
}

/// The pods of the latest version: a DC's `NAME-N` (and its hook pods), a Deployment's newest
/// ReplicaSet's.
async fn version_pods(client: &Client, ns: &str, kind: Kind, name: &str) -> anyhow::Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selectors = if kind == Kind::DeploymentConfig {
        let dcs: Api<DeploymentConfig> = Api::namespaced(client.clone(), ns);
        let Some(dc) = dcs.get_opt(name).await.map_err(api_error)? else {
            bail!("deploymentconfig {name} not found in namespace {ns}");
        };
        let version = dc.status.map_or(0, |s| s.latest_version);
        if version == 0 {
            bail!("dc/{name} has no version yet (are its image triggers resolved?)");
        }
        let rs = format!("{name}-{version}");
        vec![
            format!("{}={rs}", labels::HOOK_FOR),
            format!("{}={rs}", labels::DEPLOYMENT),
        ]
    } else {
        vec![deployment_selector(client, ns, name).await?]
    };
    let mut out = Vec::new();
    for selector in selectors {
        let mut found = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(api_error)?
            .items;
        found.sort_by_key(|p| p.name_any());
        out.extend(found);
    }
    if out.is_empty() {
        bail!("{}/{name} has no pods in its latest version", kind.short());
    }
    Ok(out)
}

/// The label selector of a Deployment's newest ReplicaSet's pods.
async fn deployment_selector(client: &Client, ns: &str, name: &str) -> anyhow::Result<String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let Some(deployment) = deployments.get_opt(name).await.map_err(api_error)? else {
        bail!("deployment {name} not found in namespace {ns}");
    };
    let uid = deployment.uid().unwrap_or_default();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let newest = rss
        .list(&ListParams::default())
        .await
        .map_err(api_error)?
        .items
        .into_iter()
        .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
        .max_by_key(|rs| {
            rs.annotations()
                .get("deployment.kubernetes.io/revision")
                .and_then(|r| r.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .with_context(|| format!("deployment/{name} has no ReplicaSet yet"))?;
    let labels = newest
        .spec
        .and_then(|s| s.selector.match_labels)
        .with_context(|| {
            format!(
                "replicaset {} selects no labels",
                newest.metadata.name.clone().unwrap_or_default()
            )
        })?;
    Ok(labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// The container to read in `pod`: the one asked for, or its only one.
fn container_of(pod: &Pod, wanted: Option<&str>) -> anyhow::Result<String> {
    let names: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect();
    let pod_name = pod.name_any();
    match wanted {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => bail!(
            "pod {pod_name} has no container {c:?} (it has {})",
            names.join(", ")
        ),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => bail!(
            "pod {pod_name} has several containers: choose one with -c ({})",
            names.join(", ")
        ),
    }
}

/// Prints the pods' logs: one pod's as they are; several pods' lines as they come, each prefixed
/// with its pod.
async fn pod_logs(pods: &Api<Pod>, list: &[Pod], args: &LogsArgs) -> anyhow::Result<()> {
    let mut streams = Vec::new();
    for pod in list {
        let container = container_of(pod, args.container.as_deref())?;
        let params = LogParams {
            container: Some(container),
            follow: args.follow,
            previous: args.previous,
            ..LogParams::default()
        };
        let pod_name = pod.name_any();
        let reader = pods
            .log_stream(&pod_name, &params)
            .await
            .map_err(api_error)
            .with_context(|| format!("logs of pod {pod_name}"))?;
        let prefix = if list.len() > 1 {
            format!("[pod/{pod_name}] ")
        } else {
            String::new()
        };
        streams.push(
            reader
                .lines()
                .map(move |line| line.map(|l| format!("{prefix}{l}")))
                .boxed(),
        );
    }
    let mut merged = futures::stream::select_all(streams);
    while let Some(line) = merged.try_next().await? {
        println!("{line}");
    }
    Ok(())
}
