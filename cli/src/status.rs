//! `slip status [--suggest]`: the project at a glance, as `oc status` shows it. Each app is its
//! chain — Ingress → Service → DeploymentConfig/Deployment → the image stream tag it follows →
//! the BuildConfig that builds it (git source, builder) → its latest build — then what nothing
//! routes to; and warnings: failed or stuck builds, crash-looping pods, Services without ready
//! endpoints, image triggers that follow a tag nothing fills. `--suggest` says what to do about
//! each. Reading the project is all it does; the exit code is 0 whatever it finds.

use std::fmt::Write as _;

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use serde_json::Value;
use slipway_crds::{Build, BuildConfig, DeploymentConfig, ImageStream};

use crate::cluster::{api_error, block_on, client};

use crate::status_checks as checks;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Say what to do about each warning.
    #[arg(long)]
    suggest: bool,
}

/// Everything in the project `status` reads, as JSON.
#[derive(Default)]
pub struct Project {
    pub services: Vec<Value>,
    pub ingresses: Vec<Value>,
    pub slices: Vec<Value>,
    pub pods: Vec<Value>,
    pub deployments: Vec<Value>,
    pub dcs: Vec<Value>,
    pub bcs: Vec<Value>,
    pub builds: Vec<Value>,
    pub streams: Vec<Value>,
}

async fn list(client: &Client, ns: &str, resource: ApiResource) -> anyhow::Result<Vec<Value>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let items = api
        .list(&ListParams::default())
        .await
        .map_err(|e| anyhow::anyhow!("listing {}: {}", resource.plural, api_error(e)))?
        .items;
    let mut values = items
        .into_iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    values.sort_by(|a, b| name(a).cmp(name(b)));
    Ok(values)
}

async fn load(client: &Client, ns: &str) -> anyhow::Result<Project> {
    Ok(Project {
        services: list(client, ns, ApiResource::erase::<Service>(&())).await?,
        ingresses: list(client, ns, ApiResource::erase::<Ingress>(&())).await?,
        slices: list(client, ns, ApiResource::erase::<EndpointSlice>(&())).await?,
        pods: list(client, ns, ApiResource::erase::<Pod>(&())).await?,
        deployments: list(client, ns, ApiResource::erase::<Deployment>(&())).await?,
        dcs: list(client, ns, ApiResource::erase::<DeploymentConfig>(&())).await?,
        bcs: list(client, ns, ApiResource::erase::<BuildConfig>(&())).await?,
        builds: list(client, ns, ApiResource::erase::<Build>(&())).await?,
        streams: list(client, ns, ApiResource::erase::<ImageStream>(&())).await?,
    })
}

pub fn status(args: StatusArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    block_on(async {
        let server = kube::Config::infer()
            .await
            .map(|c| c.cluster_url.to_string())
            .unwrap_or_default();
        let (client, ns) = client(namespace).await?;
        let project = load(&client, &ns).await?;
        print!("In project {ns} on server {server}\n\n{}", render(&project));
        print!("{}", checks::report(&checks::warnings(&project), args.suggest));
        Ok(())
    })?
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// Whether every pair of `selector` is among `labels` (an empty selector selects nothing).
pub fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v))
}

/// The stream tag a workload follows: a DC's first ImageChange trigger, a Deployment's first
/// trigger annotation.
pub fn followed_tag(workload: &Value) -> Option<String> {
    if workload["kind"] == "DeploymentConfig" {
        return workload["spec"]["triggers"]
            .as_array()?
            .iter()
            .find(|t| t["type"] == "ImageChange")
            .and_then(|t| t["imageChangeParams"]["from"]["name"].as_str())
            .map(str::to_string);
    }
    let annotations = &workload["metadata"]["annotations"];
    let text = annotations["image.openshift.io/triggers"]
        .as_str()
        .or_else(|| annotations["slipway.dev/triggers"].as_str())?;
    let triggers: Value = serde_json::from_str(text).ok()?;
    triggers[0]["from"]["name"].as_str().map(str::to_string)
}

fn short_kind(workload: &Value) -> &'static str {
    if workload["kind"] == "DeploymentConfig" {
        "dc"
    } else {
        "deployment"
    }
}

/// The chains, as text (pure).
pub fn render(p: &Project) -> String {
    let mut out = String::new();
    let mut shown_workloads = Vec::new();
    let mut shown_bcs = Vec::new();
    let workloads: Vec<&Value> = p.dcs.iter().chain(&p.deployments).collect();
    for svc in &p.services {
        for line in ingress_lines(p, name(svc)) {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "svc/{} - {}", name(svc), service_ports(svc));
        for w in &workloads {
            if selects(
                &svc["spec"]["selector"],
                &w["spec"]["template"]["metadata"]["labels"],
            ) {
                workload_lines(p, w, 1, &mut out, &mut shown_bcs);
                shown_workloads.push(format!("{}/{}", short_kind(w), name(w)));
            }
        }
        out.push('\n');
    }
    for w in &workloads {
        if !shown_workloads.contains(&format!("{}/{}", short_kind(w), name(w))) {
            workload_lines(p, w, 0, &mut out, &mut shown_bcs);
            out.push('\n');
        }
    }
    for bc in &p.bcs {
        if !shown_bcs.iter().any(|b| b == name(bc)) {
            bc_lines(p, bc, 0, &mut out);
            out.push('\n');
        }
    }
    out
}

fn ingress_lines(p: &Project, service: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for ingress in &p.ingresses {
        let tls_hosts: Vec<&Value> = ingress["spec"]["tls"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["hosts"].as_array().into_iter().flatten())
            .collect();
        for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
            let host = rule["host"].as_str().unwrap_or("*");
            let scheme = if tls_hosts.iter().any(|h| h.as_str() == Some(host)) {
                "https"
            } else {
                "http"
            };
            for path in rule["http"]["paths"].as_array().into_iter().flatten() {
                if path["backend"]["service"]["name"] == service {
                    let at = path["path"].as_str().unwrap_or("/");
                    lines.push(format!(
                        "{scheme}://{host}{at} (ingress/{}) to svc/{service}",
                        name(ingress)
                    ));
                }
            }
        }
    }
    lines
}

fn service_ports(svc: &Value) -> String {
    let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("<none>");
    let ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|port| {
            let target = port
                .get("targetPort")
                .cloned()
                .unwrap_or_else(|| port["port"].clone());
            let target = target.as_str().map_or_else(|| target.to_string(), str::to_string);
            format!("{ip}:{} -> {target}", port["port"])
        })
        .collect();
    ports.join(", ")
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

fn workload_lines(p: &Project, w: &Value, level: usize, out: &mut String, shown_bcs: &mut Vec<String>) {
    let pad = indent(level);
    let what = format!("{}/{}", short_kind(w), name(w));
    match followed_tag(w) {
        Some(tag) => {
            let _ = writeln!(out, "{pad}{what} deploys istag/{tag}");
            for bc in p
                .bcs
                .iter()
                .filter(|bc| bc["spec"]["output"]["to"]["name"] == tag.as_str())
            {
                bc_lines(p, bc, level + 1, out);
                shown_bcs.push(name(bc).to_string());
            }
        }
        None => {
            let image = w["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default();
            let _ = writeln!(out, "{pad}{what} deploys {image}");
        }
    }
    let status = &w["status"];
    let (available, desired) = (
        status["availableReplicas"].as_i64().unwrap_or(0),
        w["spec"]["replicas"].as_i64().unwrap_or(1),
    );
    if w["kind"] == "DeploymentConfig" {
        let version = status["latestVersion"].as_i64().unwrap_or(0);
        let _ = writeln!(
            out,
            "{pad}  deployment #{version} - {available}/{desired} pods available"
        );
    } else {
        let revision = w["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .unwrap_or("0");
        let _ = writeln!(
            out,
            "{pad}  revision {revision} - {available}/{desired} pods available"
        );
    }
}

fn bc_lines(p: &Project, bc: &Value, level: usize, out: &mut String) {
    let pad = indent(level);
    let strategy = &bc["spec"]["strategy"];
    let kind = if strategy["type"] == "Docker" {
        "docker"
    } else {
        "source"
    };
    let uri = bc["spec"]["source"]["git"]["uri"]
        .as_str()
        .unwrap_or("(no git source)");
    let builder = strategy["sourceStrategy"]["from"]["name"]
        .as_str()
        .or_else(|| strategy["dockerStrategy"]["from"]["name"].as_str());
    let on = builder.map(|b| format!(" on {b}")).unwrap_or_default();
    let to = bc["spec"]["output"]["to"]["name"]
        .as_str()
        .map(|t| format!(" -> istag/{t}"))
        .unwrap_or_default();
    let _ = writeln!(out, "{pad}bc/{} {kind} builds {uri}{on}{to}", name(bc));
    match checks::latest_build(p, bc) {
        Some(build) => {
            let number = build["metadata"]["labels"]["slipway.dev/build.number"]
                .as_str()
                .unwrap_or("?");
            let phase = build["status"]["phase"].as_str().unwrap_or("New");
            let _ = writeln!(out, "{pad}  build #{number} {}", phase.to_lowercase());
        }
        None => {
            let _ = writeln!(out, "{pad}  no builds yet");
        }
    }
}
