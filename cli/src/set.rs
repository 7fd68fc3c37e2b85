//! `slip set env | image | resources | probe | serviceaccount | build-hook | image-lookup |
//! triggers`: one property of a DeploymentConfig, Deployment, BuildConfig or ImageStream,
//! changed by a read-modify-write that the API server guards with the resourceVersion (a
//! conflict reads the object again). Everything the user typed is checked before anything is
//! read; nothing is written unless the whole change applies.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::cluster::{block_on, client};
use crate::objects::{self, Kind, WriteFlags, from_json, to_json};

use crate::set_edits::{self as edits, parse_env_changes};

#[derive(Args, Debug)]
pub struct SetArgs {
    #[command(subcommand)]
    what: SetCommand,
}

#[derive(Subcommand, Debug)]
enum SetCommand {
    /// Show or set the image triggers of a DeploymentConfig, Deployment, StatefulSet, DaemonSet
    /// or CronJob, or the webhook triggers of a BuildConfig.
    Triggers(crate::images::TriggersArgs),
    /// Set (KEY=VALUE), remove (KEY-) or list (--list) environment variables of a dc's or
    /// deployment's containers, or of a bc's build strategy.
    Env(EnvArgs),
    /// Set containers' images: CONTAINER=IMAGE.
    Image(ImageArgs),
    /// Set containers' (or a bc's build pod's) resource limits and requests.
    Resources(ResourcesArgs),
    /// Set or remove a readiness or liveness probe.
    Probe(ProbeArgs),
    /// Set the ServiceAccount the pods (or a bc's build pods) run as.
    #[command(visible_alias = "sa")]
    Serviceaccount(ServiceAccountArgs),
    /// Set or remove a bc's post-commit hook (run in the built image before it is pushed).
    BuildHook(BuildHookArgs),
    /// Let pods name an ImageStream's tags as `stream:tag` images (lookupPolicy.local), or stop.
    ImageLookup(ImageLookupArgs),
    /// Set or remove a bc's secrets: to fetch the source (--source), push the image (--push) or
    /// pull the builder or base image (--pull).
    BuildSecret(BuildSecretArgs),
    /// Set or remove a dc's pre, mid (Recreate only) or post deployment hook: a command run in a
    /// new pod made from one of its containers.
    DeploymentHook(DeploymentHookArgs),
    /// Add (--add) or remove (--remove) a volume of a dc's or deployment's pods, or list them.
    #[command(visible_alias = "volume")]
    Volumes(VolumesArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    slip set volumes dc/web --add --name data --type emptyDir --mount-path /data\n  \
    slip set volumes deployment/web --add --name creds --type secret --secret-name db -m /etc/db\n  \
    slip set volumes dc/web --add --name store --type pvc --claim-name web-data -m /var/lib/web\n  \
    slip set volumes dc/web --remove --name data\n  \
    slip set volumes dc/web")]
pub struct VolumesArgs {
    /// dc/NAME or deployment/NAME.
    target: String,
    /// Add the volume and mount it.
    #[arg(long, conflicts_with = "remove", requires_all = ["name", "mount_path"])]
    add: bool,
    /// Remove the volume and its mounts.
    #[arg(long, requires = "name")]
    remove: bool,
    /// The volume's name.
    #[arg(long)]
    name: Option<String>,
    /// emptyDir, secret, configmap or pvc.
    #[arg(short = 't', long = "type", value_parser = ["emptyDir", "secret", "configmap", "pvc"], default_value = "emptyDir")]
    volume_type: String,
    /// Where the containers mount it.
    #[arg(short = 'm', long)]
    mount_path: Option<String>,
    /// The Secret of a secret volume.
    #[arg(long)]
    secret_name: Option<String>,
    /// The ConfigMap of a configmap volume.
    #[arg(long)]
    configmap_name: Option<String>,
    /// The PersistentVolumeClaim of a pvc volume.
    #[arg(long)]
    claim_name: Option<String>,
    /// Mount it read-only.
    #[arg(long)]
    read_only: bool,
    /// The containers that mount it (all by default; comma-separated).
    #[arg(short = 'c', long = "containers", value_delimiter = ',')]
    containers: Vec<String>,
    #[command(flatten)]
    write: WriteFlags,
}
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    slip set deployment-hook dc/web --pre -c web --failure-policy abort -- ./migrate.sh\n  \
    slip set deployment-hook dc/web --post -e MODE=smoke -- ./smoke-test\n  \
    slip set deployment-hook dc/web --pre --remove")]
pub struct DeploymentHookArgs {
    /// dc/NAME.
    target: String,
    /// Before the new version starts.
    #[arg(long, group = "point")]
    pre: bool,
    /// Between the old version's stop and the new one's start (Recreate only).
    #[arg(long, group = "point")]
    mid: bool,
    /// After the new version is up.
    #[arg(long, group = "point")]
    post: bool,
    /// The container whose image, env and mounts the hook pod takes (the first by default).
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// What a failed hook does: abort (the rollout fails), retry, or ignore.
    #[arg(long, value_parser = ["abort", "retry", "ignore"], default_value = "abort")]
    failure_policy: String,
    /// Environment of the hook pod, K=V (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Remove the hook.
    #[arg(long, conflicts_with_all = ["container", "env", "command"])]
    remove: bool,
    #[command(flatten)]
    write: WriteFlags,
    /// The command and its arguments, after --.
    #[arg(last = true)]
    command: Vec<String>,
}
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    slip set build-secret bc/web git-credentials --source\n  \
    slip set build-secret bc/web registry-push --push\n  \
    slip set build-secret bc/web --pull --remove")]
pub struct BuildSecretArgs {
    /// bc/NAME.
    target: String,
    /// The Secret (not with --remove).
    secret: Option<String>,
    /// The secret to fetch the git source with (spec.source.sourceSecret).
    #[arg(long)]
    source: bool,
    /// The secret to push the built image with (spec.output.pushSecret).
    #[arg(long)]
    push: bool,
    /// The secret to pull the builder or base image with (the strategy's pullSecret).
    #[arg(long)]
    pull: bool,
    /// Remove the secret(s) named by --source, --push, --pull.
    #[arg(long, conflicts_with = "secret")]
    remove: bool,
    #[command(flatten)]
    write: WriteFlags,
}

#[derive(Args, Debug)]
pub struct EnvArgs {
    /// dc/NAME, deployment/NAME or bc/NAME.
    target: String,
    /// KEY=VALUE to set, KEY- to remove.
    changes: Vec<String>,
    /// The containers to change (all by default; comma-separated).
    #[arg(short = 'c', long = "containers", value_delimiter = ',')]
    containers: Vec<String>,
    /// Print the variables instead of changing them.
    #[arg(long, conflicts_with = "changes")]
    list: bool,
    #[command(flatten)]
    write: WriteFlags,
}

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// dc/NAME or deployment/NAME.
    target: String,
    /// CONTAINER=IMAGE (repeatable).
    #[arg(required = true)]
    images: Vec<String>,
    #[command(flatten)]
    write: WriteFlags,
}

#[derive(Args, Debug)]
pub struct ResourcesArgs {
    /// dc/NAME, deployment/NAME or bc/NAME.
    target: String,
    /// Limits, RESOURCE=QUANTITY comma-separated: cpu=500m,memory=512Mi.
    #[arg(long, value_delimiter = ',')]
    limits: Vec<String>,
    /// Requests, RESOURCE=QUANTITY comma-separated.
    #[arg(long, value_delimiter = ',')]
    requests: Vec<String>,
    /// The containers to change (all by default; comma-separated).
    #[arg(short = 'c', long = "containers", value_delimiter = ',')]
    containers: Vec<String>,
    #[command(flatten)]
    write: WriteFlags,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    slip set probe dc/web --readiness --get-url http://:8080/healthz\n  \
    slip set probe deployment/web --liveness --open-tcp 8080 --initial-delay-seconds 10\n  \
    slip set probe dc/web --liveness -- cat /tmp/healthy\n  \
    slip set probe dc/web --readiness --remove")]
pub struct ProbeArgs {
    /// dc/NAME or deployment/NAME.
    target: String,
    /// Set the readiness probe.
    #[arg(long)]
    readiness: bool,
    /// Set the liveness probe.
    #[arg(long)]
    liveness: bool,
    /// An HTTP GET probe: SCHEME://[HOST]:PORT[/PATH], e.g. http://:8080/healthz.
    #[arg(long, conflicts_with_all = ["open_tcp", "command"])]
    get_url: Option<String>,
    /// A TCP probe of PORT (a number or a port name).
    #[arg(long, conflicts_with = "command")]
    open_tcp: Option<String>,
    /// Remove the probe(s).
    #[arg(long, conflicts_with_all = ["get_url", "open_tcp", "command"])]
    remove: bool,
    #[arg(long)]
    initial_delay_seconds: Option<u32>,
    #[arg(long)]
    period_seconds: Option<u32>,
    #[arg(long)]
    timeout_seconds: Option<u32>,
    #[arg(long)]
    success_threshold: Option<u32>,
    #[arg(long)]
    failure_threshold: Option<u32>,
    /// The containers to change (all by default; comma-separated).
    #[arg(short = 'c', long = "containers", value_delimiter = ',')]
    containers: Vec<String>,
    #[command(flatten)]
    write: WriteFlags,
    /// An exec probe: the command after --.
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ServiceAccountArgs {
    /// dc/NAME, deployment/NAME or bc/NAME.
    target: String,
    /// The ServiceAccount's name.
    service_account: String,
    #[command(flatten)]
    write: WriteFlags,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    slip set build-hook bc/web --post-commit --script 'make test'\n  \
    slip set build-hook bc/web --post-commit --command -- ./run-tests --quick\n  \
    slip set build-hook bc/web --post-commit --remove")]
pub struct BuildHookArgs {
    /// bc/NAME.
    target: String,
    /// The post-commit hook (the only build hook there is; accepted for oc's spelling).
    #[arg(long)]
    post_commit: bool,
    /// A shell script, run with /bin/sh -c.
    #[arg(long, conflicts_with_all = ["command", "remove"])]
    script: Option<String>,
    /// Run the arguments after -- as the command (no shell).
    #[arg(long, conflicts_with = "remove")]
    command: bool,
    /// Remove the hook.
    #[arg(long)]
    remove: bool,
    #[command(flatten)]
    write: WriteFlags,
    /// The command and its arguments, after --.
    #[arg(last = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImageLookupArgs {
    /// ImageStreams: NAME or is/NAME.
    #[arg(required = true)]
    streams: Vec<String>,
    /// false turns local lookup off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enabled: bool,
    #[command(flatten)]
    write: WriteFlags,
}

pub fn set(args: SetArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    match args.what {
        SetCommand::Triggers(a) => crate::images::triggers(a, namespace),
        SetCommand::Env(a) => env(a, namespace),
        SetCommand::Image(a) => image(a, namespace),
        SetCommand::Resources(a) => resources(a, namespace),
        SetCommand::Probe(a) => probe(a, namespace),
        SetCommand::Serviceaccount(a) => service_account(a, namespace),
        SetCommand::BuildHook(a) => build_hook(a, namespace),
        SetCommand::ImageLookup(a) => image_lookup(a, namespace),
        SetCommand::BuildSecret(a) => build_secret(a, namespace),
        SetCommand::DeploymentHook(a) => deployment_hook(a, namespace),
        SetCommand::Volumes(a) => volumes(a, namespace),
    }
}

const WORKLOADS: [Kind; 2] = [Kind::DeploymentConfig, Kind::Deployment];
const WORKLOADS_AND_BC: [Kind; 3] = [Kind::DeploymentConfig, Kind::Deployment, Kind::BuildConfig];

/// Reads `target`, applies `change` to it as JSON and writes it back (again on a conflict).
fn edit(
    target: &str,
    allowed: &[Kind],
    verb: &str,
    namespace: Option<&str>,
    write: WriteFlags,
    change: impl Fn(Kind, &mut Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (kind, name) = objects::parse_target(target, allowed, verb)?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let api = objects::api(&client, kind, &ns);
        for attempt in 0.. {
            let mut value = to_json(&objects::get(&api, kind, &name, &ns).await?)?;
            change(kind, &mut value).with_context(|| format!("{}/{name}", kind.short()))?;
            match write.replace(&api, &from_json(value)?).await {
                Ok(written) => return write.report(&written, "updated"),
                Err(e) if attempt < 5 && e.to_string().contains("the object has been modified") => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    })?
}

fn env(args: EnvArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let changes = parse_env_changes(&args.changes)?;
    if args.list {
        let (kind, name) = objects::parse_target(&args.target, &WORKLOADS_AND_BC, "slip set env")?;
        return block_on(async {
            let (client, ns) = client(namespace).await?;
            let value = to_json(&objects::get(&objects::api(&client, kind, &ns), kind, &name, &ns).await?)?;
            print!("{}", edits::list_env(kind, &name, &value, &args.containers)?);
            Ok(())
        })?;
    }
    if changes.is_empty() {
        bail!("slip set env: give KEY=VALUE or KEY- changes, or --list");
    }
    edit(
        &args.target,
        &WORKLOADS_AND_BC,
        "slip set env",
        namespace,
        args.write,
        |kind, value| {
            if kind == Kind::BuildConfig {
                if !args.containers.is_empty() {
                    bail!("-c is for dc/ and deployment/: a bc's environment is its strategy's");
                }
                return edits::apply_env(edits::strategy_env(value)?, &changes);
            }
            for container in edits::containers(value, &args.containers)? {
                let env = container
                    .as_object_mut()
                    .context("a container is not an object")?
                    .entry("env")
                    .or_insert_with(|| json!([]));
                edits::apply_env(env, &changes)?;
            }
            Ok(())
        },
    )
}

fn image(args: ImageArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let pairs = edits::parse_pairs(&args.images, "CONTAINER=IMAGE")?;
    edit(
        &args.target,
        &WORKLOADS,
        "slip set image",
        namespace,
        args.write,
        |_, value| {
            for (container, image) in &pairs {
                let names = [container.clone()];
                for c in edits::containers(value, &names)? {
                    c["image"] = json!(image);
                }
            }
            Ok(())
        },
    )
}

fn resources(args: ResourcesArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let limits = edits::parse_quantities(&args.limits, "--limits")?;
    let requests = edits::parse_quantities(&args.requests, "--requests")?;
    if limits.is_empty() && requests.is_empty() {
        bail!("slip set resources: give --limits and/or --requests, e.g. --limits cpu=500m,memory=512Mi");
    }
    edit(
        &args.target,
        &WORKLOADS_AND_BC,
        "slip set resources",
        namespace,
        args.write,
        |kind, value| {
            let apply = |resources: &mut Value| {
                if !resources.is_object() {
                    *resources = json!({});
                }
                for (field, pairs) in [("limits", &limits), ("requests", &requests)] {
                    for (key, quantity) in pairs {
                        resources[field][key] = json!(quantity);
                    }
                }
            };
            if kind == Kind::BuildConfig {
                if !args.containers.is_empty() {
                    bail!("-c is for dc/ and deployment/: a bc has one build pod");
                }
                apply(&mut value["spec"]["resources"]);
                return Ok(());
            }
            for container in edits::containers(value, &args.containers)? {
                apply(&mut container["resources"]);
            }
            Ok(())
        },
    )
}

fn probe(args: ProbeArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    if !args.readiness && !args.liveness {
        bail!("slip set probe: give --readiness and/or --liveness");
    }
    let handler = edits::probe_handler(args.get_url.as_deref(), args.open_tcp.as_deref(), &args.command)?;
    let timing = [
        ("initialDelaySeconds", args.initial_delay_seconds),
        ("periodSeconds", args.period_seconds),
        ("timeoutSeconds", args.timeout_seconds),
        ("successThreshold", args.success_threshold),
        ("failureThreshold", args.failure_threshold),
    ];
    if handler.is_none() && !args.remove && timing.iter().all(|(_, v)| v.is_none()) {
        bail!("slip set probe: give --get-url, --open-tcp, -- COMMAND, timing flags or --remove");
    }
    let fields: Vec<&str> = [
        (args.readiness, "readinessProbe"),
        (args.liveness, "livenessProbe"),
    ]
    .into_iter()
    .filter_map(|(on, field)| on.then_some(field))
    .collect();
    edit(
        &args.target,
        &WORKLOADS,
        "slip set probe",
        namespace,
        args.write,
        |_, value| {
            for container in edits::containers(value, &args.containers)? {
                let name = container["name"].as_str().unwrap_or_default().to_string();
                for field in &fields {
                    let map = container
                        .as_object_mut()
                        .context("a container is not an object")?;
                    if args.remove {
                        map.remove(*field);
                        continue;
                    }
                    let probe = edits::merge_probe(map.get(*field), handler.as_ref(), &timing)
                        .with_context(|| format!("container {name}"))?;
                    map.insert((*field).to_string(), probe);
                }
            }
            Ok(())
        },
    )
}

fn service_account(args: ServiceAccountArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    objects::check_name(&args.service_account)?;
    edit(
        &args.target,
        &WORKLOADS_AND_BC,
        "slip set serviceaccount",
        namespace,
        args.write,
        |kind, value| {
            if kind == Kind::BuildConfig {
                value["spec"]["serviceAccount"] = json!(args.service_account);
            } else {
                value["spec"]["template"]["spec"]["serviceAccountName"] = json!(args.service_account);
            }
            Ok(())
        },
    )
}

fn build_hook(args: BuildHookArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    if !args.post_commit {
        bail!("slip set build-hook: give --post-commit (the hook to change)");
    }
    let hook = match (&args.script, args.command, args.remove) {
        (_, _, true) => None,
        (Some(script), false, false) if !script.trim().is_empty() && args.args.is_empty() => {
            Some(json!({"script": script}))
        }
        (None, true, false) if !args.args.is_empty() => Some(json!({"command": args.args})),
        _ => bail!("slip set build-hook: give --script SCRIPT, --command -- CMD ARGS..., or --remove"),
    };
    edit(
        &args.target,
        &[Kind::BuildConfig],
        "slip set build-hook",
        namespace,
        args.write,
        |_, value| {
            let spec = value["spec"].as_object_mut().context("the bc has no spec")?;
            match &hook {
                Some(hook) => spec.insert("postCommit".into(), hook.clone()),
                None => spec.remove("postCommit"),
            };
            Ok(())
        },
    )
}

fn image_lookup(args: ImageLookupArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let names = args
        .streams
        .iter()
        .map(|s| {
            let name = match s.split_once('/') {
                Some((kind, name)) if ["is", "imagestream", "imagestreams"].contains(&kind) => name,
                Some((kind, _)) => {
                    bail!("slip set image-lookup works on ImageStreams (is/NAME), not {kind:?}")
                }
                None => s.as_str(),
            };
            objects::check_name(name)?;
            Ok(name.to_string())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let resource = kube::core::ApiResource::erase::<slipway_crds::ImageStream>(&());
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(client, &ns, &resource);
        let mut edited = Vec::new();
        for name in &names {
            let Some(stream) = api.get_opt(name).await.map_err(crate::cluster::api_error)? else {
                bail!("imagestream {name} not found in namespace {ns}: nothing changed");
            };
            let mut value = to_json(&stream)?;
            value["spec"]["lookupPolicy"] = json!({"local": args.enabled});
            edited.push(from_json(value)?);
        }
        for stream in &edited {
            let written = args.write.replace(&api, stream).await?;
            args.write.report(&written, "updated")?;
        }
        Ok(())
    })?
}

fn build_secret(args: BuildSecretArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    if !(args.source || args.push || args.pull) {
        bail!("slip set build-secret: give --source, --push and/or --pull");
    }
    let secret = match (&args.secret, args.remove) {
        (Some(name), false) => {
            objects::check_name(name)?;
            Some(json!({"name": name}))
        }
        (None, true) => None,
        _ => bail!("slip set build-secret: give a SECRET, or --remove"),
    };
    let (target, write) = (args.target.clone(), args.write);
    edit(
        &target,
        &[Kind::BuildConfig],
        "slip set build-secret",
        namespace,
        write,
        |_, bc| {
            let mut places = Vec::new();
            if args.source {
                places.push(("/spec/source", "sourceSecret"));
            }
            if args.push {
                places.push(("/spec/output", "pushSecret"));
            }
            if args.pull {
                places.push((edits::strategy_pointer(bc)?, "pullSecret"));
            }
            for (pointer, field) in places {
                let parent = bc
                    .pointer_mut(pointer)
                    .and_then(Value::as_object_mut)
                    .with_context(|| format!("the bc has no {}", &pointer[1..].replace('/', ".")))?;
                match &secret {
                    Some(secret) => parent.insert(field.to_string(), secret.clone()),
                    None => parent.remove(field),
                };
            }
            Ok(())
        },
    )
}

fn deployment_hook(args: DeploymentHookArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let point = match (args.pre, args.mid, args.post) {
        (true, _, _) => "pre",
        (_, true, _) => "mid",
        (_, _, true) => "post",
        _ => bail!("slip set deployment-hook: give --pre, --mid or --post"),
    };
    if !args.remove && args.command.is_empty() {
        bail!("slip set deployment-hook: give the hook's command after --, or --remove");
    }
    let env = crate::set_edits::parse_pairs(&args.env, "-e K=V")?;
    if let Some(c) = &args.container {
        objects::check_name(c)?;
    }
    let policy = {
        let mut p = args.failure_policy.clone();
        p[..1].make_ascii_uppercase();
        p
    };
    edit(
        &args.target,
        &[Kind::DeploymentConfig],
        "slip set deployment-hook",
        namespace,
        args.write,
        |_, dc| {
            let params = edits::hook_params(dc, point)?;
            if args.remove {
                params.remove(point);
                return Ok(());
            }
            let container = match &args.container {
                Some(c) => c.clone(),
                None => dc["spec"]["template"]["spec"]["containers"][0]["name"]
                    .as_str()
                    .context("the dc's pod template has no container")?
                    .to_string(),
            };
            edits::containers(dc, std::slice::from_ref(&container))?;
            let env: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
            let hook = json!({"failurePolicy": policy,
            "execNewPod": {"command": args.command, "containerName": container, "env": env}});
            edits::hook_params(dc, point)?.insert(point.to_string(), hook);
            Ok(())
        },
    )
}

/// The volume `--add` describes (pure).
fn volume_source(args: &VolumesArgs) -> anyhow::Result<(&'static str, Value)> {
    let named = |flag: &str, value: &Option<String>| -> anyhow::Result<String> {
        let name = value
            .clone()
            .with_context(|| format!("a {} volume needs {flag}", args.volume_type))?;
        objects::check_name(&name)?;
        Ok(name)
    };
    Ok(match args.volume_type.as_str() {
        "secret" => (
            "secret",
            json!({"secretName": named("--secret-name", &args.secret_name)?}),
        ),
        "configmap" => (
            "configMap",
            json!({"name": named("--configmap-name", &args.configmap_name)?}),
        ),
        "pvc" => (
            "persistentVolumeClaim",
            json!({"claimName": named("--claim-name", &args.claim_name)?}),
        ),
        _ => ("emptyDir", json!({})),
    })
}

fn volumes(args: VolumesArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    if !args.add && !args.remove {
        let (kind, name) = objects::parse_target(&args.target, &WORKLOADS, "slip set volumes")?;
        return block_on(async {
            let (client, ns) = client(namespace).await?;
            let value = to_json(&objects::get(&objects::api(&client, kind, &ns), kind, &name, &ns).await?)?;
            print!("{}", edits::list_volumes(&value));
            Ok(())
        })?;
    }
    let volume_name = args.name.clone().unwrap_or_default();
    objects::check_name(&volume_name)?;
    let source = if args.add {
        Some(volume_source(&args)?)
    } else {
        None
    };
    if let Some(path) = &args.mount_path
        && !path.starts_with('/')
    {
        bail!("--mount-path {path:?} must be an absolute path");
    }
    edit(
        &args.target,
        &WORKLOADS,
        "slip set volumes",
        namespace,
        args.write,
        |_, value| match &source {
            Some((field, body)) => {
                let mut volume = json!({"name": volume_name});
                volume[*field] = body.clone();
                let mut mount = json!({"name": volume_name, "mountPath": args.mount_path});
                if args.read_only {
                    mount["readOnly"] = json!(true);
                }
                edits::add_volume(value, volume, &mount, &args.containers)
            }
            None => edits::remove_volume(value, &volume_name),
        },
    )
}
