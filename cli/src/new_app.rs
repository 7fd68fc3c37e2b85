//! `slip new-app`: an application from source or from an image, in one command: an ImageStream,
//! a BuildConfig with git webhook triggers (source), a Deployment whose image trigger annotation
//! (`image.openshift.io/triggers`, resolved by the operator) rolls out every new image — or a
//! DeploymentConfig with `--as-deployment-config` — and a Service. Every object is labelled
//! `app=NAME`; when one cannot be made, those made before it are deleted again, so a failure
//! leaves nothing half-made.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use slipway_crds::{BuildConfig, DeploymentConfig, ImageStream};

use crate::builds::{name_from_url, parse_env, parse_stream_tag, random_secret, valid_git_url, valid_name};
use crate::cluster::{api_error, block_on, client};
use crate::objects::DryRun;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    Source,
    Docker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

#[derive(Args, Debug)]
pub struct NewAppArgs {
    /// What the app is made from: BUILDER~GIT_URL (source-to-image; BUILDER is an image pull
    /// spec with a registry, or an image stream tag STREAM[:TAG] of the project), GIT_URL (a
    /// Dockerfile build), TEMPLATE (a Template of that name in the project or in the catalog
    /// namespace `openshift`), or an image pull spec (deployed as it is). Not with --template or
    /// -f.
    #[arg(required_unless_present_any = ["template", "file"], conflicts_with_all = ["template", "file"])]
    source: Option<String>,
    /// Instantiate the project's stored Template of this name (a TemplateInstance).
    #[arg(long, conflicts_with = "file")]
    pub template: Option<String>,
    /// Instantiate the Template in this file (a TemplateInstance with the template inline).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// A template parameter, KEY=VALUE (repeatable; with --template or -f).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// The name of every object (default: the repository's or the image's name; a template's
    /// for --template and -f: the TemplateInstance's).
    #[arg(long)]
    pub name: Option<String>,
    /// How the source is built; Source when a builder is given, Docker otherwise.
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    /// The branch, tag or commit to build.
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// The folder of the repository the app lives in.
    #[arg(long)]
    context_dir: Option<String>,
    /// Environment of the app's container, K=V (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Environment of the build, K=V (repeatable).
    #[arg(long = "build-env", value_name = "K=V")]
    build_env: Vec<String>,
    /// The port the app listens on: the Service's port and the readiness check (0: neither).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// How many pods serve the app.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=1000))]
    replicas: i32,
    /// Seconds a pod keeps serving after it is told to stop, while the Service stops sending it
    /// requests (a preStop pause): rollouts then lose no request.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i64).range(0..=600))]
    drain_seconds: i64,
    /// Import the image (image apps) or pull the builder over plain http: for a development
    /// registry.
    #[arg(long)]
    insecure_registry: bool,
    #[command(flatten)]
    source_options: crate::builds::SourceOptions,
    /// Make a DeploymentConfig instead of a Deployment (OpenShift deprecated them in 4.14).
    #[arg(long)]
    as_deployment_config: bool,
    /// client: say what would be created, send nothing; server: have the API server check every
    /// object and store none. `--dry-run` alone is client.
    #[arg(long, value_enum, default_value_t = DryRun::None, num_args = 0..=1,
          default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Print the objects instead of creating them.
    #[arg(short = 'o', long, value_enum)]
    output: Option<Output>,
}

/// Where the app comes from, parsed (pure).
#[derive(Debug, PartialEq, Eq)]
enum AppSource {
    Git { url: String, builder: Option<Builder> },
    Image(String),
}

#[derive(Debug, PartialEq, Eq)]
enum Builder {
    /// A pull spec with a registry host.
    Image(String),
    /// `stream:tag` of the project.
    StreamTag(String, String),
}

fn parse_source(source: &str) -> anyhow::Result<AppSource> {
    if source.is_empty() || source.len() > 2048 || source.chars().any(char::is_whitespace) {
        bail!("{:?} is not a git URL or an image", short(source));
    }
    if let Some((builder, url)) = source.split_once('~') {
        if !valid_git_url(url) {
            bail!(
                "{:?} is not a git URL: use https://, http://, ssh://, git://, file:// or user@host:path",
                short(url)
            );
        }
        return Ok(AppSource::Git {
            url: url.to_string(),
            builder: Some(parse_builder(builder)?),
        });
    }
    if valid_git_url(source) {
        return Ok(AppSource::Git {
            url: source.to_string(),
            builder: None,
        });
    }
    check_pull_spec(source)?;
    Ok(AppSource::Image(source.to_string()))
}

/// A builder with a `/` is a pull spec (`registry/repo:tag`), else an image stream tag.
fn parse_builder(builder: &str) -> anyhow::Result<Builder> {
    if builder.contains('/') {
        check_pull_spec(builder)?;
        Ok(Builder::Image(builder.to_string()))
    } else {
        let (stream, tag) = parse_stream_tag(builder, "the builder")?;
        Ok(Builder::StreamTag(stream, tag))
    }
}

fn check_pull_spec(spec: &str) -> anyhow::Result<()> {
    let ok = !spec.is_empty()
        && spec.len() <= 512
        && !spec.starts_with(['/', ':', '@', '.', '-'])
        && !spec.ends_with(['/', ':', '@'])
        && spec
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/:@._-".contains(c));
    if !ok {
        bail!(
            "{:?} is not an image pull spec (such as registry.example.com/team/app:1.0)",
            short(spec)
        );
    }
    Ok(())
}

/// The app's name from an image pull spec: `registry/team/web:1.0` → `web`.
fn name_from_image(spec: &str) -> String {
    let path = spec.split('@').next().unwrap_or(spec);
    let last = path.rsplit('/').next().unwrap_or(path);
    let repo = last.split(':').next().unwrap_or(last);
    name_from_url(repo)
}

fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The objects of the app, in creation order (pure). The webhook secret value is given so that
/// the result is deterministic.
fn objects(
    args: &NewAppArgs,
    source: &AppSource,
    name: &str,
    webhook_secret: &str,
) -> anyhow::Result<Vec<Value>> {
    let env = parse_env(&args.env, "--env")?;
    let build_env = parse_env(&args.build_env, "--build-env")?;
    if matches!(source, AppSource::Image(_)) && !args.source_options.is_empty() {
        bail!("--source-secret and --build-secret are for apps built from git; an image app has no build");
    }
    let labels = json!({"app": name});
    let mut out = Vec::new();

    // The image stream the app runs from.
    let mut stream = json!({
        "apiVersion": slipway_crds::API_VERSION, "kind": "ImageStream",
        "metadata": {"name": name, "labels": labels}, "spec": {}
    });
    if let AppSource::Image(spec) = source {
        stream["spec"]["tags"] = json!([{
            "name": "latest",
            "from": {"kind": "DockerImage", "name": spec},
            "importPolicy": {"insecure": args.insecure_registry},
        }]);
    }
    out.push(stream);

    if let AppSource::Git { url, builder } = source {
        out.extend(build_objects(
            args,
            url,
            builder.as_ref(),
            name,
            &labels,
            &build_env,
            webhook_secret,
        )?);
    }

    let mut container = json!({"name": name, "image": " ", "env": env});
    if args.port != 0 {
        container["ports"] = json!([{"containerPort": args.port, "protocol": "TCP"}]);
        // Checked every second: a new pod takes traffic within a second of listening, so a rollout
        // waits for each new pod no longer than the kubelet's probe needs.
        container["readinessProbe"] = json!({"tcpSocket": {"port": args.port}, "periodSeconds": 1});
    }
    if args.drain_seconds > 0 {
        container["lifecycle"] = json!({"preStop": {"sleep": {"seconds": args.drain_seconds}}});
    }
    if matches!(source, AppSource::Git { .. }) {
        // What Pod Security's `restricted` level asks, said outright: an image built from source
        // runs as its builder's non-root user. (An image app may need root; in a restricted
        // project the admission webhook adds the same defaults, and the kubelet refuses a root
        // user with a message.)
        container["securityContext"] = json!({
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"},
        });
    }
    let (workload, selector) = if args.as_deployment_config {
        deployment_config(args, name, &labels, container)
    } else {
        deployment(args, name, &labels, container)
    };
    out.push(workload);
    if args.port != 0 {
        out.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "selector": selector,
                "ports": [{"name": format!("{}-tcp", args.port), "port": args.port, "targetPort": args.port}],
            }
        }));
    }
    Ok(out)
}

/// A DeploymentConfig whose ImageChange trigger follows `NAME:latest`, and its pods' selector.
fn deployment_config(args: &NewAppArgs, name: &str, labels: &Value, container: Value) -> (Value, Value) {
    let selector = json!({"deploymentconfig": name});
    let mut pod_labels = labels.clone();
    pod_labels["deploymentconfig"] = json!(name);
    let dc = json!({
        "apiVersion": slipway_crds::API_VERSION, "kind": "DeploymentConfig",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": args.replicas,
            "selector": selector,
            "strategy": {"type": "Rolling", "rollingParams": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "triggers": [
                {"type": "ConfigChange"},
                {"type": "ImageChange", "imageChangeParams": {
                    "automatic": true, "containerNames": [name],
                    "from": {"kind": "ImageStreamTag", "name": format!("{name}:latest")},
                }},
            ],
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "containers": [container],
                    "terminationGracePeriodSeconds": 30 + args.drain_seconds,
                },
            },
        }
    });
    (dc, selector)
}

/// A Deployment whose `image.openshift.io/triggers` annotation sets the container's image to
/// `NAME:latest`'s each time the tag moves (until then the image is a placeholder, as `oc
/// new-app` writes it), and its pods' selector.
fn deployment(args: &NewAppArgs, name: &str, labels: &Value, container: Value) -> (Value, Value) {
    let selector = json!({"deployment": name});
    let mut pod_labels = labels.clone();
    pod_labels["deployment"] = json!(name);
    let triggers = json!([{
        "from": {"kind": "ImageStreamTag", "name": format!("{name}:latest")},
        "fieldPath": format!("spec.template.spec.containers[?(@.name==\"{name}\")].image"),
    }]);
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels,
            "annotations": {"image.openshift.io/triggers": triggers.to_string()}},
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "containers": [container],
                    "terminationGracePeriodSeconds": 30 + args.drain_seconds,
                },
            },
        }
    });
    (deployment, selector)
}

/// The webhook Secret and the BuildConfig of an app built from git (pure).
fn build_objects(
    args: &NewAppArgs,
    url: &str,
    builder: Option<&Builder>,
    name: &str,
    labels: &Value,
    build_env: &[k8s_openapi::api::core::v1::EnvVar],
    webhook_secret: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let strategy = args.strategy.unwrap_or(match builder {
        Some(_) => Strategy::Source,
        None => Strategy::Docker,
    });
    let from = builder.as_ref().map(|b| match b {
        Builder::Image(spec) => json!({"kind": "DockerImage", "name": spec}),
        Builder::StreamTag(s, t) => json!({"kind": "ImageStreamTag", "name": format!("{s}:{t}")}),
    });
    let strategy = match (strategy, from) {
        (Strategy::Source, None) => {
            bail!("--strategy source needs a builder: BUILDER~GIT_URL (a pull spec or an image stream tag)")
        }
        (Strategy::Source, Some(from)) => {
            json!({"type": "Source", "sourceStrategy": {"from": from, "env": build_env}})
        }
        (Strategy::Docker, from) => {
            let mut docker = json!({"env": build_env});
            if let Some(from) = from {
                docker["from"] = from;
            }
            json!({"type": "Docker", "dockerStrategy": docker})
        }
    };
    let mut triggers = vec![
        json!({"type": "ConfigChange"}),
        json!({"type": "GitHub", "github": {"secretReference": {"name": webhook_secret_name(name)}}}),
        json!({"type": "Generic", "generic": {"secretReference": {"name": webhook_secret_name(name)}}}),
    ];
    if matches!(builder, Some(Builder::StreamTag(..))) {
        triggers.push(json!({"type": "ImageChange", "imageChange": {}}));
    }
    let mut git = json!({"uri": url});
    if let Some(r) = &args.git_ref {
        git["ref"] = json!(r);
    }
    let mut source_spec = json!({"type": "Git", "git": git});
    if let Some(dir) = &args.context_dir {
        source_spec["contextDir"] = json!(dir);
    }
    args.source_options.apply(&mut source_spec)?;
    out.push(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": webhook_secret_name(name), "labels": labels},
        "type": "Opaque",
        "stringData": {"WebHookSecretKey": webhook_secret},
    }));
    out.push(json!({
        "apiVersion": slipway_crds::API_VERSION, "kind": "BuildConfig",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "runPolicy": "Serial",
            "triggers": triggers,
            "source": source_spec,
            "strategy": strategy,
            "output": {"to": {"kind": "ImageStreamTag", "name": format!("{name}:latest")}},
        }
    }));

    Ok(out)
}

fn webhook_secret_name(app: &str) -> String {
    format!("{app}-webhook")
}

/// The API of an object kind new-app makes.
trait Made:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
{
}
impl<K> Made for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
{
}

async fn exists<K: Made>(client: &Client, ns: &str, name: &str) -> anyhow::Result<bool> {
    let api = Api::<K>::namespaced(client.clone(), ns);
    Ok(api.get_opt(name).await.map_err(api_error)?.is_some())
}

async fn create<K: Made>(client: &Client, ns: &str, object: Value, dry: bool) -> anyhow::Result<K> {
    let api = Api::<K>::namespaced(client.clone(), ns);
    let params = PostParams {
        dry_run: dry,
        ..PostParams::default()
    };
    api.create(&params, &serde_json::from_value(object)?)
        .await
        .map_err(api_error)
}

async fn delete<K: Made>(client: &Client, ns: &str, name: &str) {
    let api = Api::<K>::namespaced(client.clone(), ns);
    let _ = api.delete(name, &DeleteParams::background()).await;
}

pub fn new_app(args: NewAppArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let Some(text) = args.source.as_deref() else {
        return crate::new_app_template::instantiate(&args, namespace, None);
    };
    if crate::new_app_template::could_be_template(text) {
        let found = block_on(async {
            let (client, ns) = client(namespace).await?;
            crate::new_app_template::find_template(&client, &ns, text).await
        })??;
        if let Some(stored) = found {
            return crate::new_app_template::instantiate(&args, namespace, Some(stored));
        }
        if !args.params.is_empty() {
            bail!(
                "no template {text:?} in the project or in {}, and -p goes with templates only (a git or image app has no parameters)",
                crate::new_app_template::catalog_namespace()
            );
        }
    }
    if !args.params.is_empty() {
        bail!("-p goes with a template (TEMPLATE, --template or -f): a git or image app has no parameters");
    }
    let source = parse_source(text)?;
    let name = match (&args.name, &source) {
        (Some(n), _) => n.clone(),
        (None, AppSource::Git { url, .. }) => name_from_url(url),
        (None, AppSource::Image(spec)) => name_from_image(spec),
    };
    // The secret's name adds "-webhook" (8), within the 63 of a label.
    if !valid_name(&name) || name.len() > 55 {
        bail!(
            "{name:?} is not a valid app name (lower-case letters, digits and '-', at most 55); pass --name"
        );
    }
    let objects = objects(&args, &source, &name, &random_secret())?;
    if let Some(format) = args.output {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        match format {
            Output::Json => println!("{}", serde_json::to_string_pretty(&list)?),
            Output::Yaml => print!("{}", serde_yaml_ng::to_string(&list)?),
        }
        return Ok(());
    }
    block_on(async {
        let (client, ns) = client(namespace).await?;
        if let AppSource::Git {
            builder: Some(Builder::StreamTag(stream, tag)),
            ..
        } = &source
            && !exists::<ImageStream>(&client, &ns, stream).await?
        {
            bail!(
                "the builder {stream}:{tag} is no image stream of {ns}: give a pull spec with a registry (registry.example.com/builder:1) or make it first (slip import-image / slip tag)"
            );
        }
        refuse_taken(&client, &ns, &name, &objects).await?;
        args.source_options.check_exist(&client, &ns).await?;
        let kinds: Vec<String> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or_default().to_ascii_lowercase())
            .collect();
        if args.dry_run == DryRun::Client {
            println!(
                "app {name} would be created in {ns}: {} (dry run)",
                kinds.join(", ")
            );
            return Ok(());
        }
        let dry = args.dry_run == DryRun::Server;
        let mut made: Vec<&str> = Vec::new();
        if let Err(e) = create_all(&client, &ns, &name, &objects, &mut made, dry).await {
            for kind in made.iter().rev().filter(|_| !dry) {
                match *kind {
                    "ImageStream" => delete::<ImageStream>(&client, &ns, &name).await,
                    "Secret" => delete::<Secret>(&client, &ns, &webhook_secret_name(&name)).await,
                    "BuildConfig" => delete::<BuildConfig>(&client, &ns, &name).await,
                    "DeploymentConfig" => delete::<DeploymentConfig>(&client, &ns, &name).await,
                    "Deployment" => delete::<Deployment>(&client, &ns, &name).await,
                    _ => delete::<Service>(&client, &ns, &name).await,
                }
            }
            return Err(e.context("what it had made was deleted again"));
        }
        if dry {
            println!(
                "app {name} checked in {ns}: {} (server dry run, nothing created)",
                kinds.join(", ")
            );
            return Ok(());
        }
        println!("app {name} created in {ns}: {}", kinds.join(", "));
        print_next_steps(&args, &source, &name, &ns);
        Ok(())
    })?
}

/// What to do next, after an app is made.
fn print_next_steps(args: &NewAppArgs, source: &AppSource, name: &str, ns: &str) {
    if matches!(source, AppSource::Git { .. }) {
        println!("A build has started: slip logs bc/{name} -f");
        println!(
            "Git webhooks: POST /webhooks/{ns}/{name}/github (or /generic) on Slipway's webhook endpoint;"
        );
        println!(
            "  the secret is in secret/{} (key WebHookSecretKey).",
            webhook_secret_name(name)
        );
    }
    let workload = if args.as_deployment_config {
        "dc"
    } else {
        "deployment"
    };
    println!("Rollout: slip rollout status {workload}/{name}");
}

/// Refuses, before anything is created, when a name the app needs is taken.
async fn refuse_taken(client: &Client, ns: &str, name: &str, objects: &[Value]) -> anyhow::Result<()> {
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let taken = match kind {
            "ImageStream" => exists::<ImageStream>(client, ns, name).await?,
            "Secret" => exists::<Secret>(client, ns, &webhook_secret_name(name)).await?,
            "BuildConfig" => exists::<BuildConfig>(client, ns, name).await?,
            "DeploymentConfig" => exists::<DeploymentConfig>(client, ns, name).await?,
            "Deployment" => exists::<Deployment>(client, ns, name).await?,
            "Service" => exists::<Service>(client, ns, name).await?,
            _ => false,
        };
        if taken {
            bail!(
                "{} {} already exists in {ns}; pass --name to choose another (nothing was created)",
                kind.to_ascii_lowercase(),
                object["metadata"]["name"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Creates the objects in order (only as a server dry run with `dry`), noting each kind made in
/// `made`.
async fn create_all(
    client: &Client,
    ns: &str,
    name: &str,
    objects: &[Value],
    made: &mut Vec<&'static str>,
    dry: bool,
) -> anyhow::Result<()> {
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let what = || {
            format!(
                "creating {} {}",
                kind.to_ascii_lowercase(),
                object["metadata"]["name"]
            )
        };
        let object = object.clone();
        match kind {
            "ImageStream" => {
                create::<ImageStream>(client, ns, object, dry)
                    .await
                    .with_context(what)?;
                made.push("ImageStream");
            }
            "Secret" => {
                create::<Secret>(client, ns, object, dry)
                    .await
                    .with_context(what)?;
                made.push("Secret");
            }
            "BuildConfig" => {
                let bc = create::<BuildConfig>(client, ns, object, dry)
                    .await
                    .with_context(what)?;
                made.push("BuildConfig");
                // The webhook secret goes with its BuildConfig when that is deleted.
                if let Some(owner) = bc.controller_owner_ref(&()).filter(|_| !dry) {
                    let patch = json!({"metadata": {"ownerReferences": [{
                        "apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name, "uid": owner.uid,
                    }]}});
                    Api::<Secret>::namespaced(client.clone(), ns)
                        .patch(
                            &webhook_secret_name(name),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await
                        .map_err(api_error)
                        .context("making the buildconfig the owner of its webhook secret")?;
                }
            }
            "DeploymentConfig" => {
                create::<DeploymentConfig>(client, ns, object, dry)
                    .await
                    .with_context(what)?;
                made.push("DeploymentConfig");
            }
            "Deployment" => {
                create::<Deployment>(client, ns, object, dry)
                    .await
                    .with_context(what)?;
                made.push("Deployment");
            }
            "Service" => {
                create::<Service>(client, ns, object, dry)
                    .await
                    .with_context(what)?;
                made.push("Service");
            }
            other => bail!("new-app made an object of kind {other}, which it cannot create"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: NewAppArgs,
    }

    fn args(list: &[&str]) -> NewAppArgs {
        let mut all = vec!["new-app"];
        all.extend_from_slice(list);
        Cli::try_parse_from(all).expect("valid arguments").args
    }

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(
            parse_source("registry.local:5000/s2i/busybox:1~http://git.local/team/web.git").unwrap(),
            AppSource::Git {
                url: "http://git.local/team/web.git".into(),
                builder: Some(Builder::Image("registry.local:5000/s2i/busybox:1".into()))
            }
        );
        assert_eq!(
            parse_source("nodejs:18~https://x/y.git").unwrap(),
            AppSource::Git {
                url: "https://x/y.git".into(),
                builder: Some(Builder::StreamTag("nodejs".into(), "18".into()))
            }
        );
        assert_eq!(
            parse_source("git@github.com:team/web.git").unwrap(),
            AppSource::Git {
                url: "git@github.com:team/web.git".into(),
                builder: None
            }
        );
        assert_eq!(
            parse_source("quay.io/team/web:1.0").unwrap(),
            AppSource::Image("quay.io/team/web:1.0".into())
        );
        for bad in [
            "",
            "a b",
            "x~not a url",
            "Bad_Stream~https://x/y.git",
            "x~",
            "-x",
            "a/b:c;rm",
        ] {
            assert!(parse_source(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_source(&"a".repeat(5000)).is_err());
    }

    #[test]
    fn names_come_from_images() {
        assert_eq!(name_from_image("quay.io/team/web:1.0"), "web");
        assert_eq!(name_from_image("reg:5000/My_App@sha256:abc"), "my-app");
    }

    #[test]
    fn a_source_app_builds_deploys_and_serves() {
        let a = args(&[
            "r.local/b:1~http://g/web.git",
            "-e",
            "A=1",
            "--build-env",
            "B=2",
            "--replicas",
            "2",
            "--as-deployment-config",
        ]);
        let source = parse_source(a.source.as_deref().unwrap()).unwrap();
        let objects = objects(&a, &source, "web", "s3cret").unwrap();
        let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "ImageStream",
                "Secret",
                "BuildConfig",
                "DeploymentConfig",
                "Service"
            ]
        );
        for o in &objects {
            assert_eq!(o["metadata"]["labels"]["app"], "web");
        }
        assert_eq!(objects[1]["stringData"]["WebHookSecretKey"], "s3cret");
        let bc = &objects[2]["spec"];
        assert_eq!(bc["strategy"]["type"], "Source");
        assert_eq!(bc["strategy"]["sourceStrategy"]["from"]["name"], "r.local/b:1");
        assert_eq!(bc["strategy"]["sourceStrategy"]["env"][0]["name"], "B");
        assert_eq!(bc["output"]["to"]["name"], "web:latest");
        let types: Vec<&str> = bc["triggers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["ConfigChange", "GitHub", "Generic"]);
        let dc = &objects[3]["spec"];
        assert_eq!(dc["replicas"], 2);
        assert_eq!(
            dc["triggers"][1]["imageChangeParams"]["from"]["name"],
            "web:latest"
        );
        let container = &dc["template"]["spec"]["containers"][0];
        assert_eq!(container["env"][0]["name"], "A");
        assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], 8080);
        assert_eq!(container["readinessProbe"]["periodSeconds"], 1);
        assert_eq!(container["lifecycle"]["preStop"]["sleep"]["seconds"], 5);
        // It passes Pod Security's restricted level as it is.
        assert_eq!(container["securityContext"]["runAsNonRoot"], true);
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(container["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(
            container["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(objects[4]["spec"]["selector"]["deploymentconfig"], "web");
        // Every object parses as its type: what the API server gets is well formed.
        let _: BuildConfig = serde_json::from_value(objects[2].clone()).unwrap();
        let _: DeploymentConfig = serde_json::from_value(objects[3].clone()).unwrap();
        let _: Service = serde_json::from_value(objects[4].clone()).unwrap();
    }

    #[test]
    fn the_workload_is_a_deployment_with_an_image_trigger_by_default() {
        let a = args(&["quay.io/team/web:1", "--replicas", "3"]);
        let made = objects(
            &a,
            &parse_source(a.source.as_deref().unwrap()).unwrap(),
            "web",
            "s",
        )
        .unwrap();
        let kinds: Vec<&str> = made.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ImageStream", "Deployment", "Service"]);
        let deployment = &made[1];
        let triggers: Value = serde_json::from_str(
            deployment["metadata"]["annotations"]["image.openshift.io/triggers"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            triggers,
            json!([{"from": {"kind": "ImageStreamTag", "name": "web:latest"},
                    "fieldPath": "spec.template.spec.containers[?(@.name==\"web\")].image"}])
        );
        assert_eq!(deployment["spec"]["replicas"], 3);
        assert_eq!(
            deployment["spec"]["selector"]["matchLabels"],
            json!({"deployment": "web"})
        );
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["labels"]["deployment"],
            "web"
        );
        assert_eq!(made[2]["spec"]["selector"], json!({"deployment": "web"}));
        let _: Deployment = serde_json::from_value(deployment.clone()).unwrap();
    }

    #[test]
    fn other_kinds_of_app() {
        let a = args(&[
            "https://g/web.git",
            "--port",
            "0",
            "--drain-seconds",
            "0",
            "--as-deployment-config",
        ]);
        let made = objects(
            &a,
            &parse_source(a.source.as_deref().unwrap()).unwrap(),
            "web",
            "s",
        )
        .unwrap();
        let kinds: Vec<&str> = made.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["ImageStream", "Secret", "BuildConfig", "DeploymentConfig"]
        );
        assert_eq!(made[2]["spec"]["strategy"]["type"], "Docker");
        assert!(
            made[3]["spec"]["template"]["spec"]["containers"][0]
                .get("lifecycle")
                .is_none()
        );

        let a = args(&["nodejs~https://g/web.git"]);
        let made = objects(
            &a,
            &parse_source(a.source.as_deref().unwrap()).unwrap(),
            "web",
            "s",
        )
        .unwrap();
        let bc = &made[2]["spec"];
        assert_eq!(bc["strategy"]["sourceStrategy"]["from"]["kind"], "ImageStreamTag");
        assert_eq!(bc["triggers"][3]["type"], "ImageChange");

        let a = args(&[
            "quay.io/team/web:1",
            "--insecure-registry",
            "--as-deployment-config",
        ]);
        let made = objects(
            &a,
            &parse_source(a.source.as_deref().unwrap()).unwrap(),
            "web",
            "s",
        )
        .unwrap();
        let kinds: Vec<&str> = made.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ImageStream", "DeploymentConfig", "Service"]);
        assert_eq!(made[0]["spec"]["tags"][0]["from"]["name"], "quay.io/team/web:1");
        assert_eq!(made[0]["spec"]["tags"][0]["importPolicy"]["insecure"], true);

        let a = args(&["https://g/web.git", "--strategy", "source"]);
        assert!(
            objects(
                &a,
                &parse_source(a.source.as_deref().unwrap()).unwrap(),
                "web",
                "s"
            )
            .is_err()
        );
        let a = args(&["r/b~https://g/web.git", "-e", "1BAD=x"]);
        assert!(
            objects(
                &a,
                &parse_source(a.source.as_deref().unwrap()).unwrap(),
                "web",
                "s"
            )
            .is_err()
        );
    }
}
