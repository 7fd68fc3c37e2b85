//! `slip tag`, `slip import-image` and `slip set triggers`: ImageStream tags and image triggers.
//!
//! `tag` and `import-image` write one tag of the ImageStream's spec; the operator's image controller does the import, and `import-image`
//! waits for its answer. `set triggers` edits a DeploymentConfig's `spec.triggers`, or the
//! `image.openshift.io/triggers` annotation of a Deployment, StatefulSet, DaemonSet or CronJob.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use kube::api::{Api, DynamicObject, Patch};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use slipway_crds::{DeploymentConfig, ImageStream};

use crate::cluster::{block_on, client};
use crate::objects::DryRun;

/// OpenShift's trigger annotation, which the operator also reads.
const TRIGGERS_ANNOTATION: &str = "image.openshift.io/triggers";

#[derive(Args, Debug)]
pub struct TagArgs {
    /// The source: a pull spec (`registry/team/app:1.0`) or another tag (`stream:tag`).
    source: String,
    /// The tags to set, `stream:tag` (the stream is made when missing).
    #[arg(required = true)]
    destinations: Vec<String>,
    /// What the source is: docker or istag; guessed when absent (`name:tag` without a `/` is a
    /// tag of a stream, anything else a pull spec).
    #[arg(long, value_parser = ["docker", "istag"])]
    source_type: Option<String>,
    /// Poll the registry and follow the source's digest (pull specs only).
    #[arg(long)]
    scheduled: bool,
    /// Allow a registry over plain http or with an unverified certificate (pull specs only).
    #[arg(long)]
    insecure: bool,
    /// Record the pull spec as it is, without importing it.
    #[arg(long)]
    reference: bool,
    #[command(flatten)]
    dry: crate::objects::DryRunFlag,
}

#[derive(Args, Debug)]
pub struct ImportImageArgs {
    /// The tag to import into, `stream:tag` (`stream` means `stream:latest`).
    destination: String,
    /// The pull spec to import; the tag's current source when absent.
    #[arg(long)]
    from: Option<String>,
    /// Poll the registry and follow the source's digest.
    #[arg(long)]
    scheduled: bool,
    /// Allow a registry over plain http or with an unverified certificate.
    #[arg(long)]
    insecure: bool,
    /// How long to wait for the import, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[derive(Args, Debug)]
pub struct TriggersArgs {
    /// KIND/NAME: dc, deployment, statefulset, daemonset, cronjob (bc comes with builds).
    object: String,
    /// The tag to follow, `stream:tag`; without it the triggers are shown.
    #[arg(long)]
    from_image: Option<String>,
    /// The containers whose image the trigger sets (comma-separated).
    #[arg(short = 'c', long = "containers", value_delimiter = ',')]
    containers: Vec<String>,
    /// Record new images without rolling out (a paused trigger).
    #[arg(long, conflicts_with = "auto")]
    manual: bool,
    /// Roll out when the tag moves (the default).
    #[arg(long)]
    auto: bool,
    /// For bc/NAME: a GitHub webhook trigger with a new random secret (and so on for the others).
    #[arg(long, group = "webhook_provider")]
    from_github: bool,
    #[arg(long, group = "webhook_provider")]
    from_gitlab: bool,
    #[arg(long, group = "webhook_provider")]
    from_bitbucket: bool,
    #[arg(long, group = "webhook_provider")]
    from_gitea: bool,
    /// For bc/NAME: a generic webhook trigger.
    #[arg(long, group = "webhook_provider")]
    from_webhook: bool,
    #[command(flatten)]
    dry: crate::objects::DryRunFlag,
}

/// A workload kind `set triggers` accepts, and where its pod spec is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    DeploymentConfig,
    BuildConfig,
    Workload {
        group: &'static str,
        kind: &'static str,
        plural: &'static str,
        pod_spec: &'static str,
    },
}

/// Splits `KIND/NAME` and names the kind (pure).
pub fn parse_object(text: &str) -> Result<(Kind, String), String> {
    let Some((kind, name)) = text.split_once('/') else {
        return Err(format!(
            "{:?} is not KIND/NAME, e.g. dc/web or deployment/web",
            short(text)
        ));
    };
    if !slipway_client::names::is_dns_subdomain(name) {
        return Err(format!("{:?} is not a valid object name", short(name)));
    }
    let workload = |kind, plural, pod_spec| Kind::Workload {
        group: if kind == "CronJob" { "batch" } else { "apps" },
        kind,
        plural,
        pod_spec,
    };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "dc" | "deploymentconfig" | "deploymentconfigs" => Kind::DeploymentConfig,
        "bc" | "buildconfig" | "buildconfigs" => Kind::BuildConfig,
        "deploy" | "deployment" | "deployments" => {
            workload("Deployment", "deployments", "spec.template.spec")
        }
        "sts" | "statefulset" | "statefulsets" => {
            workload("StatefulSet", "statefulsets", "spec.template.spec")
        }
        "ds" | "daemonset" | "daemonsets" => workload("DaemonSet", "daemonsets", "spec.template.spec"),
        "cj" | "cronjob" | "cronjobs" => {
            workload("CronJob", "cronjobs", "spec.jobTemplate.spec.template.spec")
        }
        other => {
            return Err(format!(
                "cannot set image triggers on {:?}: use dc, deployment, statefulset, daemonset or cronjob",
                short(other)
            ));
        }
    };
    Ok((kind, name.to_string()))
}

/// Splits `stream:tag` (`stream` alone means `latest`) and checks both parts (pure).
pub fn parse_stream_tag(text: &str) -> Result<(String, String), String> {
    let (stream, tag) = slipway_client::names::parse_stream_tag(text)?;
    Ok((stream.to_string(), tag.to_string()))
}

/// The `from` of a tag for `source` (pure): a stream tag or a pull spec.
pub fn tag_from(source: &str, source_type: Option<&str>) -> Result<Value, String> {
    if source.is_empty() || source.len() > 1024 || source.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("{:?} is not an image or image stream tag", short(source)));
    }
    let istag = match source_type {
        Some(t) => t == "istag",
        None => !source.contains('/') && !source.contains('@') && parse_stream_tag(source).is_ok(),
    };
    if istag {
        let (stream, tag) = parse_stream_tag(source)?;
        Ok(json!({"kind": "ImageStreamTag", "name": format!("{stream}:{tag}")}))
    } else {
        Ok(json!({"kind": "DockerImage", "name": source}))
    }
}

fn short(s: &str) -> String {
    let mut t: String = s.chars().take(80).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

fn streams(client: &kube::Client, namespace: &str) -> Api<ImageStream> {
    Api::namespaced(client.clone(), namespace)
}

/// Sets one spec tag of a stream, made when missing; the other tags stay as they are (a
/// read-modify-write with the resourceVersion, retried on conflicts). Returns the generation.
/// A client dry run reads the stream and writes nothing; a server dry run sends the write with
/// dryRun=All.
async fn apply_tag(api: &Api<ImageStream>, stream: &str, tag: Value, dry_run: DryRun) -> anyhow::Result<i64> {
    let failed =
        |e: kube::Error| anyhow::anyhow!("setting a tag of image stream {stream}: {}", api_message(&e));
    for _ in 0..10 {
        let Some(existing) = api.get_opt(stream).await.map_err(failed)? else {
            let new = json!({
                "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
                "metadata": {"name": stream},
                "spec": {"tags": [tag]},
            });
            if !dry_run.sends() {
                return Ok(0);
            }
            match api
                .create(&dry_run.post_params(), &serde_json::from_value(new)?)
                .await
            {
                Ok(created) => return Ok(created.metadata.generation.unwrap_or_default()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(failed(e)),
            }
        };
        let mut tags = serde_json::to_value(&existing.spec.tags)?
            .as_array()
            .cloned()
            .unwrap_or_default();
        match tags.iter_mut().find(|t| t["name"] == tag["name"]) {
            Some(t) => *t = tag.clone(),
            None => tags.push(tag.clone()),
        }
        let patch = json!({
            "metadata": {"resourceVersion": existing.metadata.resource_version},
            "spec": {"tags": tags},
        });
        if !dry_run.sends() {
            return Ok(existing.metadata.generation.unwrap_or_default());
        }
        match api
            .patch(stream, &dry_run.patch_params(), &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => return Ok(updated.metadata.generation.unwrap_or_default()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(failed(e)),
        }
    }
    bail!("image stream {stream} kept changing while its tag was set; try again")
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

pub fn tag(args: TagArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let from = tag_from(&args.source, args.source_type.as_deref()).map_err(anyhow::Error::msg)?;
    let docker = from["kind"] == "DockerImage";
    if !docker && (args.scheduled || args.insecure || args.reference) {
        bail!(
            "--scheduled, --insecure and --reference apply to images from a registry, not to the image stream tag {}",
            args.source
        );
    }
    let destinations = args
        .destinations
        .iter()
        .map(|d| parse_stream_tag(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    block_on(async {
        let (client, namespace) = client(namespace).await?;
        let api = streams(&client, &namespace);
        for (stream, tag) in destinations {
            if !docker && from["name"] == format!("{stream}:{tag}") {
                bail!("{stream}:{tag} cannot follow itself");
            }
            let mut spec = json!({"name": tag, "from": from});
            if docker {
                spec["importPolicy"] = json!({"scheduled": args.scheduled, "insecure": args.insecure});
                if args.reference {
                    spec["reference"] = json!(true);
                }
            }
            apply_tag(&api, &stream, spec, args.dry.dry_run).await?;
            println!(
                "Tag {stream}:{tag} set to {} {}.{}",
                from["kind"].as_str().unwrap_or_default(),
                args.source,
                args.dry.dry_run.suffix()
            );
        }
        Ok(())
    })?
}

pub fn import_image(args: ImportImageArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let (stream, tag) = parse_stream_tag(&args.destination).map_err(anyhow::Error::msg)?;
    if let Some(from) = &args.from {
        let parsed = tag_from(from, Some("docker")).map_err(anyhow::Error::msg)?;
        debug_assert_eq!(parsed["kind"], "DockerImage");
    }
    block_on(async {
        let (client, namespace) = client(namespace).await?;
        let api = streams(&client, &namespace);
        let existing = api
            .get_opt(&stream)
            .await
            .map_err(|e| anyhow::anyhow!("reading image stream {stream}: {}", api_message(&e)))?;
        let current = existing
            .as_ref()
            .and_then(|s| s.spec.tags.iter().find(|t| t.name == tag).cloned());
        let from = match (&args.from, &current) {
            (Some(from), _) => from.clone(),
            (None, Some(t)) => match &t.from {
                Some(f) if f.kind == slipway_crds::common::ImageReferenceKind::DockerImage => f.name.clone(),
                _ => {
                    bail!("{stream}:{tag} does not come from a registry; give --from REGISTRY/REPOSITORY:TAG")
                }
            },
            (None, None) => bail!("{stream}:{tag} does not exist; give --from REGISTRY/REPOSITORY:TAG"),
        };
        let policy = current
            .as_ref()
            .and_then(|t| t.import_policy.clone())
            .unwrap_or_default();
        // A new tag generation asks the image controller for a fresh import.
        let generation = current.as_ref().and_then(|t| t.generation).unwrap_or(0) + 1;
        let spec = json!({
            "name": tag,
            "from": {"kind": "DockerImage", "name": from},
            "generation": generation,
            "importPolicy": {
                "scheduled": args.scheduled || policy.scheduled,
                "insecure": args.insecure || policy.insecure,
            },
        });
        let stream_generation = apply_tag(&api, &stream, spec, DryRun::None).await?;
        await_import(&api, &stream, &tag, &from, stream_generation, args.timeout).await
    })?
}

/// Waits for the image controller's answer to the import (the ImportSuccess condition of the
/// stream's generation `generation`) and says what it was.
async fn await_import(
    api: &Api<ImageStream>,
    stream: &str,
    tag: &str,
    from: &str,
    stream_generation: i64,
    timeout: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let status = api
            .get(stream)
            .await
            .map_err(|e| anyhow::anyhow!("reading image stream {stream}: {}", api_message(&e)))?
            .status
            .unwrap_or_default();
        let list = status.tags.iter().find(|t| t.tag == tag);
        let answer = list.and_then(|l| {
            l.conditions
                .iter()
                .find(|c| c.type_ == "ImportSuccess" && c.generation >= stream_generation)
        });
        if let Some(condition) = answer {
            if condition.status == "True" {
                let image = list.and_then(|l| l.items.first());
                println!(
                    "Imported {stream}:{tag} from {from}: {}",
                    image
                        .map(|i| i.docker_image_reference.as_str())
                        .unwrap_or_default()
                );
                return Ok(());
            }
            bail!(
                "importing {from} into {stream}:{tag} failed: {}: {}",
                condition.reason.as_deref().unwrap_or("Failed"),
                condition.message.as_deref().unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{stream}:{tag} now imports {from}, but no import finished within {} s; is Slipway's operator (image controller) running?",
                timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn triggers(args: TriggersArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let (kind, name) = parse_object(&args.object).map_err(anyhow::Error::msg)?;
    let webhook =
        args.from_github || args.from_gitlab || args.from_bitbucket || args.from_gitea || args.from_webhook;
    if kind == Kind::BuildConfig {
        if !webhook || args.from_image.is_some() {
            bail!(
                "set triggers bc/NAME takes one of --from-github, --from-gitlab, --from-bitbucket, --from-gitea, --from-webhook"
            );
        }
        return crate::builds::set_triggers(
            crate::builds::TriggersArgs {
                target: args.object,
                from_github: args.from_github,
                from_gitlab: args.from_gitlab,
                from_bitbucket: args.from_bitbucket,
                from_gitea: args.from_gitea,
                dry_run: args.dry.dry_run,
            },
            namespace,
        );
    }
    if webhook {
        bail!(
            "--from-github, --from-gitlab, --from-bitbucket, --from-gitea and --from-webhook are for bc/NAME"
        );
    }
    let from = args
        .from_image
        .as_deref()
        .map(parse_stream_tag)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if from.is_some() && args.containers.is_empty() {
        bail!("--from-image needs the containers it sets: -c CONTAINER[,CONTAINER]");
    }
    if from.is_none() && (!args.containers.is_empty() || args.manual || args.auto) {
        bail!("-c, --manual and --auto go with --from-image STREAM:TAG");
    }
    if from.is_none() && args.dry.dry_run != DryRun::None {
        bail!("--dry-run goes with --from-image STREAM:TAG: without it the triggers are only shown");
    }
    for c in &args.containers {
        if !slipway_client::names::is_dns_label(c) {
            bail!("{:?} is not a valid container name", short(c));
        }
    }
    let change = TriggerChange {
        from,
        containers: args.containers,
        automatic: !args.manual,
        dry_run: args.dry.dry_run,
    };
    block_on(async {
        let (client, namespace) = client(namespace).await?;
        // A read-modify-write guarded by the resourceVersion: controllers (the image trigger
        // resolving a tag) may update the object between the read and the write, so a conflict
        // reads it again.
        for _ in 0..10 {
            let done = match &kind {
                Kind::DeploymentConfig => {
                    let api: Api<DeploymentConfig> = Api::namespaced(client.clone(), &namespace);
                    set_dc_triggers(&api, &name, &change).await?
                }
                Kind::Workload {
                    group,
                    kind,
                    plural,
                    pod_spec,
                } => {
                    let resource =
                        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural);
                    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
                    set_workload_triggers(&api, plural, pod_spec, &name, &change).await?
                }
                Kind::BuildConfig => unreachable!("handled above"),
            };
            if done {
                return Ok(());
            }
        }
        bail!("{name} kept changing while its triggers were set; try again")
    })?
}

/// The image trigger `slip set triggers` adds: none (list them) without --from-image.
struct TriggerChange {
    from: Option<(String, String)>,
    containers: Vec<String>,
    automatic: bool,
    dry_run: DryRun,
}

/// Lists or sets the triggers of dc/NAME; false when it changed meanwhile (a conflict).
async fn set_dc_triggers(
    api: &Api<DeploymentConfig>,
    name: &str,
    change: &TriggerChange,
) -> anyhow::Result<bool> {
    let from = &change.from;
    let automatic = change.automatic;
    let dc = api
        .get(name)
        .await
        .map_err(|e| anyhow::anyhow!("reading dc/{name}: {}", api_message(&e)))?;
    let dc_value = serde_json::to_value(&dc)?;
    let current = dc_value["spec"]["triggers"].as_array().cloned();
    let Some((stream, tag)) = &from else {
        print_dc_triggers(name, current.as_deref());
        return Ok(true);
    };
    check_containers(
        &dc_value["spec"]["template"]["spec"],
        &change.containers,
        &format!("dc/{name}"),
    )?;
    let triggers = dc_triggers(current, &format!("{stream}:{tag}"), &change.containers, automatic);
    let patch = json!({
        "metadata": {"resourceVersion": dc.metadata.resource_version},
        "spec": {"triggers": triggers},
    });
    patch_triggers(api, name, &format!("dc/{name}"), &patch, change.dry_run).await
}

/// Lists or sets the trigger annotation of a workload; false when it changed meanwhile.
async fn set_workload_triggers(
    api: &Api<DynamicObject>,
    plural: &str,
    pod_spec: &str,
    name: &str,
    change: &TriggerChange,
) -> anyhow::Result<bool> {
    let from = &change.from;
    let automatic = change.automatic;
    let object = api
        .get(name)
        .await
        .map_err(|e| anyhow::anyhow!("reading {}/{name}: {}", plural, api_message(&e)))?;
    let value = serde_json::to_value(&object)?;
    let annotation = value["metadata"]["annotations"][TRIGGERS_ANNOTATION].as_str();
    let current: Vec<Value> = match annotation {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text).with_context(|| {
            format!("the annotation {TRIGGERS_ANNOTATION} of {plural}/{name} is not a JSON list; fix or remove it first")
        })?,
    };
    let Some((stream, tag)) = &from else {
        print_annotation_triggers(&format!("{plural}/{name}"), &current);
        return Ok(true);
    };
    let mut spec = &value;
    for key in pod_spec.split('.') {
        spec = &spec[key];
    }
    check_containers(spec, &change.containers, &format!("{plural}/{name}"))?;
    let triggers = annotation_triggers(
        current,
        pod_spec,
        &format!("{stream}:{tag}"),
        &change.containers,
        !automatic,
    );
    let patch = json!({
        "metadata": {
            "resourceVersion": object.metadata.resource_version,
            "annotations": {TRIGGERS_ANNOTATION: serde_json::to_string(&triggers)?},
        },
    });
    patch_triggers(api, name, &format!("{plural}/{name}"), &patch, change.dry_run).await
}

/// Writes `patch` (which carries the resourceVersion read) as `dry_run` says; false on a
/// conflict.
async fn patch_triggers<K>(
    api: &Api<K>,
    name: &str,
    shown: &str,
    patch: &Value,
    dry_run: DryRun,
) -> anyhow::Result<bool>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if dry_run.sends() {
        match api
            .patch(name, &dry_run.patch_params(), &Patch::Merge(patch))
            .await
        {
            Err(kube::Error::Api(e)) if e.code == 409 => return Ok(false),
            Err(e) => bail!("updating {shown}: {}", api_message(&e)),
            Ok(_) => {}
        }
    }
    println!("{shown} triggers updated{}", dry_run.suffix());
    Ok(true)
}

/// Every named container must be in the pod spec (containers or initContainers).
fn check_containers(pod_spec: &Value, containers: &[String], what: &str) -> anyhow::Result<()> {
    let names: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|list| pod_spec[*list].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    for c in containers {
        if !names.contains(&c.as_str()) {
            bail!("{what} has no container {c:?} (it has: {})", names.join(", "));
        }
    }
    Ok(())
}

/// A DeploymentConfig's triggers with an ImageChange trigger for `from` (pure): an existing one
/// for the same tag is replaced; a missing list meant one ConfigChange trigger, which is kept.
pub fn dc_triggers(
    current: Option<Vec<Value>>,
    from: &str,
    containers: &[String],
    automatic: bool,
) -> Vec<Value> {
    let mut triggers = current.unwrap_or_else(|| vec![json!({"type": "ConfigChange"})]);
    triggers.retain(|t| !(t["type"] == "ImageChange" && t["imageChangeParams"]["from"]["name"] == from));
    triggers.push(json!({
        "type": "ImageChange",
        "imageChangeParams": {
            "automatic": automatic,
            "containerNames": containers,
            "from": {"kind": "ImageStreamTag", "name": from},
        },
    }));
    triggers
}

/// The trigger annotation's list with one trigger per container following `from` (pure); a
/// trigger already there for the same container is replaced.
pub fn annotation_triggers(
    mut current: Vec<Value>,
    pod_spec: &str,
    from: &str,
    containers: &[String],
    paused: bool,
) -> Vec<Value> {
    for container in containers {
        let field_path = format!("{pod_spec}.containers[?(@.name==\"{container}\")].image");
        current.retain(|t| t["fieldPath"] != field_path.as_str());
        current.push(json!({
            "from": {"kind": "ImageStreamTag", "name": from},
            "fieldPath": field_path,
            "paused": paused,
        }));
    }
    current
}

fn print_dc_triggers(name: &str, triggers: Option<&[Value]>) {
    println!("NAME\tTYPE\tVALUE\tAUTO");
    let config_change = [json!({"type": "ConfigChange"})];
    for t in triggers.unwrap_or(&config_change) {
        if t["type"] == "ImageChange" {
            let p = &t["imageChangeParams"];
            let containers: Vec<&str> = p["containerNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "deploymentconfigs/{name}\timage\t{} ({})\t{}",
                p["from"]["name"].as_str().unwrap_or_default(),
                containers.join(", "),
                p["automatic"].as_bool().unwrap_or(false)
            );
        } else {
            println!("deploymentconfigs/{name}\tconfig\t\ttrue");
        }
    }
}

fn print_annotation_triggers(what: &str, triggers: &[Value]) {
    println!("NAME\tTYPE\tVALUE\tAUTO");
    for t in triggers {
        println!(
            "{what}\timage\t{} ({})\t{}",
            t["from"]["name"].as_str().unwrap_or_default(),
            t["fieldPath"].as_str().unwrap_or_default(),
            !t["paused"].as_bool().unwrap_or(false)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_tags_parse() {
        assert_eq!(
            parse_object("dc/web").unwrap(),
            (Kind::DeploymentConfig, "web".into())
        );
        assert_eq!(parse_object("bc/web").unwrap().0, Kind::BuildConfig);
        assert!(matches!(
            parse_object("deployment/web").unwrap().0,
            Kind::Workload {
                kind: "Deployment",
                ..
            }
        ));
        assert!(matches!(
            parse_object("cj/nightly").unwrap().0,
            Kind::Workload {
                pod_spec: "spec.jobTemplate.spec.template.spec",
                ..
            }
        ));
        for bad in [
            "web",
            "pod/web",
            "dc/",
            "dc/Web",
            "dc/a b",
            &format!("dc/{}", "a".repeat(300)),
        ] {
            assert!(parse_object(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_stream_tag("app").unwrap(), ("app".into(), "latest".into()));
        assert_eq!(
            parse_stream_tag("app:v1.2").unwrap(),
            ("app".into(), "v1.2".into())
        );
        for bad in [
            "",
            ":v1",
            "app:",
            "App:v1",
            "app:v 1",
            "app:-x",
            &format!("app:{}", "x".repeat(129)),
            "a/b:c",
        ] {
            assert!(parse_stream_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_are_tags_or_pull_specs() {
        assert_eq!(tag_from("other:v1", None).unwrap()["kind"], "ImageStreamTag");
        assert_eq!(
            tag_from("registry:5000/team/app:v1", None).unwrap()["kind"],
            "DockerImage"
        );
        assert_eq!(
            tag_from("quay.io/app@sha256:abc", None).unwrap()["kind"],
            "DockerImage"
        );
        assert_eq!(
            tag_from("other:v1", Some("docker")).unwrap()["kind"],
            "DockerImage"
        );
        assert!(tag_from("", None).is_err());
        assert!(tag_from("a b", None).is_err());
        assert!(tag_from(&"x".repeat(2000), None).is_err());
    }

    #[test]
    fn dc_triggers_keep_config_change_and_replace_the_same_tag() {
        let t = dc_triggers(None, "app:latest", &["web".into()], true);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["type"], "ConfigChange");
        let t = dc_triggers(Some(t), "app:latest", &["web".into(), "side".into()], false);
        assert_eq!(t.len(), 2);
        assert_eq!(t[1]["imageChangeParams"]["automatic"], false);
        assert_eq!(
            t[1]["imageChangeParams"]["containerNames"],
            json!(["web", "side"])
        );
        let t = dc_triggers(Some(vec![]), "app:latest", &["web".into()], true);
        assert_eq!(t.len(), 1, "an explicit empty list stays without ConfigChange");
    }

    #[test]
    fn annotation_triggers_are_openshift_json() {
        let t = annotation_triggers(vec![], "spec.template.spec", "app:latest", &["web".into()], false);
        assert_eq!(
            t,
            vec![json!({"from": {"kind": "ImageStreamTag", "name": "app:latest"},
                        "fieldPath": "spec.template.spec.containers[?(@.name==\"web\")].image", "paused": false})]
        );
        let t = annotation_triggers(t, "spec.template.spec", "app:v2", &["web".into()], true);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0]["from"]["name"], "app:v2");
        assert_eq!(t[0]["paused"], true);
    }
}
