//! `slip new-build | start-build | cancel-build | logs | set triggers`: builds, as the user of the
//! kubeconfig (the API server's RBAC decides what they may do).

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::{EnvVar, Pod, Secret};
use kube::api::{Api, LogParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use slipway_client::instantiate::instantiate;
use slipway_crds::build::{
    BuildPhase, BuildRequest, BuildStrategyType, BuildTriggerCause, GitSourceRevision, SourceRevision,
};
use slipway_crds::{Build, BuildConfig, ImageStream};

use crate::binary::Upload;
use crate::cluster::{api_error, block_on, client};
use crate::objects::DryRun;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Strategy {
    Source,
    Docker,
}

#[derive(Args, Debug)]
pub struct NewBuildArgs {
    /// The git repository: https://, http://, ssh://, git://, file:// or user@host:path.
    #[arg(required_unless_present = "binary")]
    git_url: Option<String>,
    /// Builds from uploads (slip start-build --from-dir, --from-file, --from-archive,
    /// --from-repo) instead of a git repository; no trigger starts them.
    #[arg(long, conflicts_with_all = ["git_url", "git_ref"])]
    binary: bool,
    /// Source-to-image (needs a builder image) or a Dockerfile build.
    #[arg(long, value_enum, default_value_t = Strategy::Source)]
    strategy: Strategy,
    /// The builder image (Source) or the FROM override (Docker): a pull spec.
    #[arg(long, value_name = "BUILDER")]
    image: Option<String>,
    /// The builder image as an ImageStreamTag `stream:tag`; rebuilds when it moves.
    #[arg(long, value_name = "STREAM:TAG", conflicts_with = "image")]
    image_stream: Option<String>,
    /// The BuildConfig's name (default: the repository's name).
    #[arg(long)]
    name: Option<String>,
    /// The output ImageStreamTag (default `<name>:latest`).
    #[arg(long, value_name = "STREAM:TAG")]
    to: Option<String>,
    /// The branch, tag or commit to build.
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// The folder of the repository to build.
    #[arg(long)]
    context_dir: Option<String>,
    /// Environment of the build, K=V (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    #[command(flatten)]
    source: SourceOptions,
    #[command(flatten)]
    write: crate::objects::WriteFlags,
}

/// The secrets of a git build: to fetch the source, and to read during the build.
#[derive(Args, Debug, Default)]
pub struct SourceOptions {
    /// The Secret with the credentials to fetch the git source (username/password or
    /// ssh-privatekey).
    #[arg(long, value_name = "SECRET")]
    pub source_secret: Option<String>,
    /// A Secret the build can read, SECRET[:DIR]: its keys become files in DIR of the build's
    /// context (its root by default). Repeatable.
    #[arg(long = "build-secret", value_name = "SECRET[:DIR]")]
    pub build_secrets: Vec<String>,
}

impl SourceOptions {
    pub fn is_empty(&self) -> bool {
        self.source_secret.is_none() && self.build_secrets.is_empty()
    }

    /// The Secrets named, to check they exist (pure).
    pub fn secret_names(&self) -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> = self.source_secret.iter().cloned().collect();
        for item in &self.build_secrets {
            names.push(item.split_once(':').map_or(item.as_str(), |(s, _)| s).to_string());
        }
        for name in &names {
            crate::objects::check_name(name)?;
        }
        Ok(names)
    }

    /// Writes the secrets into a BuildConfig's `spec.source` (pure).
    pub fn apply(&self, source: &mut Value) -> anyhow::Result<()> {
        self.secret_names()?;
        if let Some(secret) = &self.source_secret {
            source["sourceSecret"] = json!({"name": secret});
        }
        let mut secrets = Vec::new();
        for item in &self.build_secrets {
            let (secret, dir) = item
                .split_once(':')
                .map_or((item.as_str(), None), |(s, d)| (s, Some(d)));
            let mut entry = json!({"secret": {"name": secret}});
            if let Some(dir) = dir {
                if dir.is_empty() || dir.starts_with('/') || dir.split('/').any(|p| p == "..") {
                    bail!("--build-secret {item:?}: DIR must be a relative path inside the build context");
                }
                entry["destinationDir"] = json!(dir);
            }
            secrets.push(entry);
        }
        if !secrets.is_empty() {
            source["secrets"] = json!(secrets);
        }
        Ok(())
    }

    /// Fails unless every Secret named exists in `ns`.
    pub async fn check_exist(&self, client: &Client, ns: &str) -> anyhow::Result<()> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        for name in self.secret_names()? {
            if secrets
                .get_metadata_opt(&name)
                .await
                .map_err(api_error)?
                .is_none()
            {
                bail!("secret {name} not found in {ns} (nothing was created)");
            }
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct StartBuildArgs {
    /// The BuildConfig to build.
    buildconfig: String,
    /// Build this commit instead of the configured ref (with --from-repo: the commit to send,
    /// any revision git knows).
    #[arg(long, value_name = "SHA")]
    commit: Option<String>,
    /// A binary build: send this directory as the source (tar.gz, without .git and what
    /// .gitignore and .s2iignore name).
    #[arg(long, value_name = "DIR", group = "binary")]
    from_dir: Option<std::path::PathBuf>,
    /// A binary build: send this one file, which the build finds in its source by its name.
    #[arg(long, value_name = "FILE", group = "binary")]
    from_file: Option<std::path::PathBuf>,
    /// A binary build: send this tar or tar.gz archive, unpacked as the source.
    #[arg(long, value_name = "FILE", group = "binary")]
    from_archive: Option<std::path::PathBuf>,
    /// A binary build: send a commit of this local git repository (HEAD, or --commit).
    #[arg(long, value_name = "DIR", group = "binary")]
    from_repo: Option<std::path::PathBuf>,
    /// Environment of the build, K=V (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// A Docker build argument, K=V (repeatable; Docker builds only).
    #[arg(long = "build-arg", value_name = "K=V")]
    build_args: Vec<String>,
    /// Show the build's progress and logs until it ends; fail when the build fails.
    #[arg(long, short = 'F')]
    follow: bool,
    /// Wait until the build ends; fail when the build fails.
    #[arg(long, short = 'w')]
    wait: bool,
    #[command(flatten)]
    dry: crate::objects::DryRunFlag,
}

#[derive(Args, Debug)]
pub struct CancelBuildArgs {
    /// The builds to cancel (NAME or build/NAME).
    #[arg(required = true)]
    builds: Vec<String>,
}

/// What `slip set triggers bc/NAME` was given (parsed by the `set` command in images.rs).
#[derive(Debug)]
pub struct TriggersArgs {
    /// bc/NAME.
    pub target: String,
    pub from_github: bool,
    pub from_gitlab: bool,
    pub from_bitbucket: bool,
    pub from_gitea: bool,
    // None of these: a generic webhook.
    pub dry_run: DryRun,
}

pub(crate) use slipway_client::names::is_dns_label as valid_name;

/// The git URL forms the BuildConfig schema accepts.
pub(crate) fn valid_git_url(url: &str) -> bool {
    let schemes = ["https://", "http://", "ssh://", "git://", "file://"];
    if url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return false;
    }
    if let Some(rest) = schemes.iter().find_map(|s| url.strip_prefix(s)) {
        return !rest.is_empty();
    }
    // user@host:path
    match url
        .split_once('@')
        .and_then(|(user, rest)| Some((user, rest.split_once(':')?)))
    {
        Some((user, (host, path))) => !user.is_empty() && !host.is_empty() && !path.is_empty(),
        None => false,
    }
}

/// The repository's name from its URL: `https://x/team/my-app.git` → `my-app`.
pub(crate) fn name_from_url(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    let base = last.strip_suffix(".git").unwrap_or(last).to_ascii_lowercase();
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    cleaned.trim_matches('-').chars().take(63).collect()
}

/// `stream:tag` with both parts valid.
pub(crate) fn parse_stream_tag(value: &str, flag: &str) -> anyhow::Result<(String, String)> {
    let (stream, tag) = slipway_client::names::parse_stream_tag(value).map_err(|_| {
        anyhow::anyhow!("{flag} takes STREAM:TAG (a lower-case name and a tag such as latest), not {value:?}")
    })?;
    Ok((stream.to_string(), tag.to_string()))
}

/// The strategy of `slip new-build`: Source from the builder, or Docker (pure).
fn new_build_strategy(args: &NewBuildArgs) -> anyhow::Result<Value> {
    let from = match (&args.image, &args.image_stream) {
        (Some(image), _) => {
            if image.is_empty() || image.chars().any(char::is_whitespace) {
                bail!("--image takes an image pull spec, not {image:?}");
            }
            Some(json!({"kind": "DockerImage", "name": image}))
        }
        (None, Some(is)) => {
            let (s, t) = parse_stream_tag(is, "--image-stream")?;
            Some(json!({"kind": "ImageStreamTag", "name": format!("{s}:{t}")}))
        }
        (None, None) => None,
    };
    let strategy = match (args.strategy, &from) {
        (Strategy::Source, None) => bail!(
            "--strategy source needs a builder image: pass --image BUILDER or --image-stream STREAM:TAG"
        ),
        (Strategy::Source, Some(from)) => json!({"type": "Source", "sourceStrategy": {"from": from}}),
        (Strategy::Docker, None) => json!({"type": "Docker", "dockerStrategy": {}}),
        (Strategy::Docker, Some(from)) => json!({"type": "Docker", "dockerStrategy": {"from": from}}),
    };
    Ok(strategy)
}

pub fn new_build(args: NewBuildArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let git_url = args.git_url.clone().unwrap_or_default();
    if !args.binary && !valid_git_url(&git_url) {
        bail!(
            "{git_url:?} is not a git URL: use https://, http://, ssh://, git://, file:// or user@host:path"
        );
    }
    let name = match (&args.name, args.binary) {
        (Some(n), _) => n.clone(),
        (None, true) => bail!("--binary needs --name: there is no repository to name the build after"),
        (None, false) => name_from_url(&git_url),
    };
    if !valid_name(&name) {
        bail!("{name:?} is not a valid name (lower-case letters, digits and '-', at most 63); pass --name");
    }
    let (stream, tag) = match &args.to {
        Some(to) => parse_stream_tag(to, "--to")?,
        None => (name.clone(), "latest".to_string()),
    };
    let bc = new_build_config(&args, &name, &git_url, &format!("{stream}:{tag}"))?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let streams: Api<ImageStream> = Api::namespaced(client.clone(), &ns);
        let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &ns);
        // Refuse before creating anything, so a clash leaves no half-made app behind.
        if configs.get_opt(&name).await.map_err(api_error)?.is_some() {
            bail!("buildconfig {name} already exists in {ns}; pass --name to choose another");
        }
        args.source.check_exist(&client, &ns).await?;
        let dynamic = |resource: kube::core::ApiResource| {
            Api::<kube::core::DynamicObject>::namespaced_with(client.clone(), &ns, &resource)
        };
        let mut made = Vec::new();
        if streams.get_opt(&stream).await.map_err(api_error)?.is_none() {
            let is = json!({
                "apiVersion": slipway_crds::API_VERSION, "kind": "ImageStream",
                "metadata": {"name": stream, "labels": {"build": name}}, "spec": {}
            });
            made.push((
                dynamic(kube::core::ApiResource::erase::<ImageStream>(&())),
                crate::objects::from_json(is)?,
            ));
        }
        made.push((
            dynamic(kube::core::ApiResource::erase::<BuildConfig>(&())),
            crate::objects::from_json(serde_json::to_value(&bc)?)?,
        ));
        // Both are checked by the API server first, so that a refusal of the BuildConfig leaves
        // no image stream behind.
        args.write.create_all(&made, "created").await
    })?
}

/// The BuildConfig `slip new-build` creates (pure): triggers (none for a binary build: nothing
/// to build until an upload comes), source, strategy with its env, output.
fn new_build_config(
    args: &NewBuildArgs,
    name: &str,
    git_url: &str,
    output: &str,
) -> anyhow::Result<BuildConfig> {
    let strategy = new_build_strategy(args)?;
    let mut triggers = Vec::new();
    if !args.binary {
        triggers.push(json!({"type": "ConfigChange"}));
        if args.image_stream.is_some() {
            triggers.push(json!({"type": "ImageChange", "imageChange": {}}));
        }
    }
    let mut source = if args.binary {
        json!({"type": "Binary", "binary": {}})
    } else {
        let mut git = json!({"uri": git_url});
        if let Some(r) = &args.git_ref {
            git["ref"] = json!(r);
        }
        json!({"type": "Git", "git": git})
    };
    if let Some(dir) = &args.context_dir {
        source["contextDir"] = json!(dir);
    }
    args.source.apply(&mut source)?;
    let mut strategy = strategy;
    let env = parse_env(&args.env, "--env")?;
    if !env.is_empty() {
        let field = if strategy["type"] == "Source" {
            "sourceStrategy"
        } else {
            "dockerStrategy"
        };
        strategy[field]["env"] = serde_json::to_value(&env)?;
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": slipway_crds::API_VERSION, "kind": "BuildConfig",
        "metadata": {"name": name, "labels": {"build": name}},
        "spec": {
            "triggers": triggers,
            "source": source,
            "strategy": strategy,
            "output": {"to": {"kind": "ImageStreamTag", "name": output}},
        }
    }))?)
}

/// `K=V` pairs as environment variables; the name must be a valid variable name.
pub(crate) fn parse_env(values: &[String], flag: &str) -> anyhow::Result<Vec<EnvVar>> {
    values
        .iter()
        .map(|kv| {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("{flag} takes K=V, not {kv:?}");
            };
            let valid = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
            if !valid || k.len() > 256 {
                bail!("{flag}: {k:?} is not a valid variable name");
            }
            Ok(EnvVar {
                name: k.into(),
                value: Some(v.into()),
                ..Default::default()
            })
        })
        .collect()
}

/// `kind/name` or `name`; the kind, when given, must be one of `kinds`.
fn strip_kind<'a>(value: &'a str, kinds: &[&str]) -> anyhow::Result<&'a str> {
    let name = match value.split_once('/') {
        Some((kind, name)) if kinds.contains(&kind) => name,
        Some(_) => bail!("{value:?}: expected {}/NAME", kinds[0]),
        None => value,
    };
    if !valid_name(name) && !name.contains('.') {
        bail!("{name:?} is not a valid name");
    }
    Ok(name)
}

/// The upload a `start-build` asks for, if any.
fn upload_of(args: &StartBuildArgs) -> anyhow::Result<Option<Upload>> {
    let upload = match (
        &args.from_dir,
        &args.from_file,
        &args.from_archive,
        &args.from_repo,
    ) {
        (Some(d), ..) => Upload::Dir(d.clone()),
        (_, Some(f), ..) => Upload::File(f.clone()),
        (_, _, Some(a), _) => Upload::Archive(a.clone()),
        (.., Some(r)) => Upload::Repo {
            dir: r.clone(),
            commit: args.commit.clone(),
        },
        _ => return Ok(None),
    };
    if args.commit.is_some() && !matches!(upload, Upload::Repo { .. }) {
        bail!(
            "--commit chooses a commit of the BuildConfig's repository or of --from-repo; an upload of a directory, file or archive has none"
        );
    }
    Ok(Some(upload))
}

pub fn start_build(args: StartBuildArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let bc_name = strip_kind(&args.buildconfig, &["bc", "buildconfig", "buildconfigs"])?.to_string();
    let env = parse_env(&args.env, "-e")?;
    let build_args = parse_env(&args.build_args, "--build-arg")?;
    let upload = upload_of(&args)?.map(Upload::prepare).transpose()?;
    if args.dry.dry_run != DryRun::None && (args.follow || args.wait) {
        bail!("--dry-run starts no build, so there is nothing to --follow or --wait for");
    }
    if let Some(commit) = args.commit.as_ref().filter(|_| upload.is_none())
        && (!(4..=64).contains(&commit.len()) || !commit.chars().all(|c| c.is_ascii_hexdigit()))
    {
        bail!("--commit takes a commit id (4 to 64 hex digits), not {commit:?}");
    }
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &ns);
        let Some(bc) = configs.get_opt(&bc_name).await.map_err(api_error)? else {
            bail!("buildconfig {bc_name} not found in {ns}");
        };
        if !build_args.is_empty() && bc.spec.common.strategy.type_ != BuildStrategyType::Docker {
            bail!("--build-arg applies to Docker builds only; {bc_name} is a Source build (use -e)");
        }
        let request = BuildRequest {
            cause: BuildTriggerCause {
                message: "Manually triggered".into(),
                ..Default::default()
            },
            revision: match &upload {
                Some(u) => u.revision.clone(),
                None => args.commit.as_ref().map(|c| SourceRevision {
                    type_: "Git".into(),
                    git: Some(GitSourceRevision {
                        commit: c.clone(),
                        ..Default::default()
                    }),
                }),
            },
            env,
            build_args,
            binary: upload.as_ref().map(|u| u.binary.clone()),
            ..Default::default()
        };
        let failed = |e| match e {
            slipway_client::instantiate::InstantiateError::Kube(e) => api_error(e),
            other => other.into(),
        };
        let dry_run = args.dry.dry_run;
        if dry_run != DryRun::None {
            let build = slipway_client::instantiate::dry_run(
                &client,
                &ns,
                &bc_name,
                &request,
                dry_run == DryRun::Server,
            )
            .await
            .map_err(failed)?;
            println!(
                "build.slipway.dev/{} started{}",
                build.name_any(),
                dry_run.suffix()
            );
            if let Some(upload) = upload {
                println!("{} would be uploaded as its binary input", upload.describe);
            }
            return Ok(());
        }
        let build = instantiate(&client, &ns, &bc_name, &request)
            .await
            .map_err(failed)?;
        let name = build.name_any();
        println!("build.slipway.dev/{name} started");
        if let Some(upload) = upload {
            println!("Uploading {} as binary input for build {name}", upload.describe);
            let sent = crate::binary::upload(&client, &ns, &name, upload.producer).await?;
            println!("Uploaded {sent} bytes");
        }
        if args.follow || args.wait {
            wait_for(&client, &ns, &name, args.follow).await?;
        }
        Ok(())
    })?
}

/// Waits for a build to end, printing its phases (and, with `follow`, its logs); an error when
/// it does not complete.
async fn wait_for(client: &Client, ns: &str, name: &str, follow: bool) -> anyhow::Result<()> {
    let builds: Api<Build> = Api::namespaced(client.clone(), ns);
    let mut last: Option<BuildPhase> = None;
    let mut streamed = false;
    loop {
        let build = builds.get(name).await.map_err(api_error)?;
        let status = build.status.clone().unwrap_or_default();
        if follow && last != Some(status.phase) {
            println!("{name}: {}", status.phase.as_str());
        }
        last = Some(status.phase);
        if follow && !streamed && status.phase == BuildPhase::Running {
            streamed = true;
            if let Err(e) = stream_logs(client, ns, name, true).await {
                eprintln!("(no logs: {e:#})");
            }
            continue;
        }
        if status.phase.is_terminal() {
            for stage in &status.stages {
                println!("  {:<12} {} ms", stage.name, stage.duration_milliseconds);
            }
            if status.phase == BuildPhase::Complete {
                if let Some(digest) = status.output.and_then(|o| o.to).map(|t| t.image_digest) {
                    println!("{name}: pushed {digest}");
                }
                return Ok(());
            }
            if let Some(snippet) = &status.log_snippet {
                eprintln!("{snippet}");
            }
            bail!(
                "build {name} {}: {} {}",
                status.phase.as_str().to_lowercase(),
                status.reason.unwrap_or_default(),
                status.message.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How long `--follow` waits for a container of the build pod to start.
const FOLLOW_START_LIMIT: Duration = Duration::from_secs(600);

/// The build pod's containers' logs, in order (its init container, then build).
pub(crate) async fn stream_logs(client: &Client, ns: &str, build: &str, follow: bool) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod_name = slipway_client::build_pod_name(build);
    // Following, a build whose pod is not there yet (New, Pending) is waited for while it can
    // still start.
    let builds: Api<Build> = Api::namespaced(client.clone(), ns);
    let mut waited = Duration::ZERO;
    let pod = loop {
        if let Some(pod) = pods.get_opt(&pod_name).await.map_err(api_error)? {
            break pod;
        }
        let phase = builds
            .get_opt(build)
            .await
            .map_err(api_error)?
            .and_then(|b| b.status)
            .map(|s| s.phase)
            .unwrap_or_default();
        if !follow || phase.is_terminal() || waited >= FOLLOW_START_LIMIT {
            bail!("build {build} has no pod (it has not started, or it was deleted)");
        }
        if waited.is_zero() {
            eprintln!("waiting for build {build} to start ({})...", phase.as_str());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        waited += Duration::from_millis(500);
    };
    let spec = pod.spec.unwrap_or_default();
    let containers: Vec<String> = spec
        .init_containers
        .unwrap_or_default()
        .into_iter()
        .chain(spec.containers)
        .map(|c| c.name)
        .collect();
    for container in containers {
        if follow {
            await_container(&pods, &pod_name, &container).await?;
        }
        let params = LogParams {
            container: Some(container.clone()),
            follow,
            ..Default::default()
        };
        // Following, a container that has not started yet is waited for (400 "waiting to start").
        let mut waited = Duration::ZERO;
        let reader = loop {
            match pods.log_stream(&pod_name, &params).await {
                Ok(reader) => break reader,
                Err(kube::Error::Api(e)) if follow && e.code == 400 && waited < FOLLOW_START_LIMIT => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    waited += Duration::from_millis(500);
                }
                Err(e) => {
                    return Err(api_error(e)).with_context(|| format!("logs of {pod_name}/{container}"));
                }
            }
        };
        let mut lines = reader.lines();
        while let Some(line) = lines.try_next().await? {
            println!("{line}");
        }
    }
    Ok(())
}

/// Following: waits until `container` of pod `pod_name` has started (it runs, or has ended) or
/// the pod has ended. Before that, a log request answers at once — an empty log while the pod is
/// not scheduled, 400 while the container waits — and following would end before the build.
async fn await_container(pods: &Api<Pod>, pod_name: &str, container: &str) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let Some(pod) = pods.get_opt(pod_name).await.map_err(api_error)? else {
            bail!("the build pod {pod_name} was deleted");
        };
        let status = pod.status.unwrap_or_default();
        let pod_ended = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
        let container_started = status
            .init_container_statuses
            .into_iter()
            .flatten()
            .chain(status.container_statuses.into_iter().flatten())
            .find(|s| s.name == container)
            .and_then(|s| s.state)
            .is_some_and(|s| s.running.is_some() || s.terminated.is_some());
        if pod_ended || container_started {
            return Ok(());
        }
        if started.elapsed() >= FOLLOW_START_LIMIT {
            bail!(
                "container {container} of {pod_name} did not start within {} s",
                FOLLOW_START_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn cancel_build(args: CancelBuildArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let names = args
        .builds
        .iter()
        .map(|b| strip_kind(b, &["build", "builds"]).map(String::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let builds: Api<Build> = Api::namespaced(client, &ns);
        let mut failures = Vec::new();
        for name in &names {
            let outcome = async {
                let Some(build) = builds.get_opt(name).await.map_err(api_error)? else {
                    bail!("build {name} not found in {ns}");
                };
                let phase = build.status.map(|s| s.phase).unwrap_or_default();
                if phase.is_terminal() {
                    println!("build.slipway.dev/{name} already finished ({})", phase.as_str());
                    return Ok(());
                }
                let patch = Patch::Merge(json!({"status": {"cancelled": true}}));
                builds
                    .patch_status(name, &PatchParams::default(), &patch)
                    .await
                    .map_err(api_error)?;
                println!("build.slipway.dev/{name} cancelled");
                Ok(())
            }
            .await;
            if let Err(e) = outcome {
                failures.push(format!("{e:#}"));
            }
        }
        if !failures.is_empty() {
            bail!("{}", failures.join("; "));
        }
        Ok(())
    })?
}

/// The trigger type, its field and the URL segment of a provider flag.
fn provider(args: &TriggersArgs) -> (&'static str, &'static str, &'static str) {
    if args.from_github {
        ("GitHub", "github", "github")
    } else if args.from_gitlab {
        ("GitLab", "gitlab", "gitlab")
    } else if args.from_bitbucket {
        ("Bitbucket", "bitbucket", "bitbucket")
    } else if args.from_gitea {
        ("Gitea", "gitea", "gitea")
    } else {
        ("Generic", "generic", "generic")
    }
}

/// 32 random bytes as hex.
pub(crate) fn random_secret() -> String {
    (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

pub fn set_triggers(args: TriggersArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let Some(name) = args
        .target
        .strip_prefix("bc/")
        .or_else(|| args.target.strip_prefix("buildconfig/"))
    else {
        bail!("slip set triggers takes bc/NAME, not {:?}", args.target);
    };
    if !valid_name(name) {
        bail!("{name:?} is not a valid name");
    }
    let (type_, field, segment) = provider(&args);
    let secret_name = format!("{name}-{segment}-webhook");
    let secret_value = random_secret();
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &ns);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        for _ in 0..5 {
            let Some(mut bc) = configs.get_opt(name).await.map_err(api_error)? else {
                bail!("buildconfig {name} not found in {ns}");
            };
            // The Secret first, owned by the BuildConfig, so the trigger never names a missing one.
            let owner = bc.controller_owner_ref(&()).map(|mut o| {
                o.controller = Some(false);
                o
            });
            let secret: Secret = serde_json::from_value(json!({
                "metadata": {
                    "name": secret_name,
                    "labels": {slipway_crds::build::labels::WEBHOOK_SECRET: "true"},
                    "ownerReferences": owner.into_iter().collect::<Vec<_>>(),
                },
                "type": "Opaque",
                "stringData": {"WebHookSecretKey": secret_value},
            }))?;
            let dry_run = args.dry_run;
            if dry_run.sends() {
                let params = PatchParams {
                    dry_run: dry_run == DryRun::Server,
                    ..PatchParams::apply("slip").force()
                };
                secrets
                    .patch(&secret_name, &params, &Patch::Apply(&secret))
                    .await
                    .map_err(api_error)
                    .with_context(|| format!("writing secret {secret_name}"))?;
            }
            let trigger: slipway_crds::build::BuildTriggerPolicy = serde_json::from_value(json!({
                "type": type_, field: {"secretReference": {"name": secret_name}}
            }))?;
            bc.spec.triggers.retain(|t| format!("{:?}", t.type_) != type_);
            bc.spec.triggers.push(trigger);
            // replace carries the resourceVersion read: a concurrent change conflicts and we retry.
            let replaced = if dry_run.sends() {
                configs.replace(name, &dry_run.post_params(), &bc).await
            } else {
                Ok(bc)
            };
            match replaced {
                Ok(_) if dry_run != DryRun::None => {
                    println!(
                        "buildconfig.slipway.dev/{name} triggers updated{}",
                        dry_run.suffix()
                    );
                    println!("Webhook URL path: /webhooks/{ns}/{name}/{segment}");
                    println!("(its secret is made in Secret {secret_name} when run without --dry-run)");
                    return Ok(());
                }
                Ok(_) => {
                    println!("buildconfig.slipway.dev/{name} triggers updated");
                    println!("Webhook URL path: /webhooks/{ns}/{name}/{segment}");
                    println!("Secret:           {secret_value}");
                    println!("(stored in Secret {secret_name}, key WebHookSecretKey)");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(api_error(e)),
            }
        }
        bail!("buildconfig {name} kept changing; try again")
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls() {
        for ok in [
            "https://github.com/a/b.git",
            "ssh://git@host/a.git",
            "git@github.com:a/b.git",
            "file:///tmp/repo",
        ] {
            assert!(valid_git_url(ok), "{ok}");
        }
        for bad in [
            "",
            "github.com/a/b",
            "https://",
            "ftp://x/y",
            "https://a b",
            "@host:x",
        ] {
            assert!(!valid_git_url(bad), "{bad}");
        }
    }

    #[test]
    fn names_from_urls() {
        assert_eq!(name_from_url("https://github.com/team/My_App.git"), "my-app");
        assert_eq!(name_from_url("git@github.com:team/app.git/"), "app");
        assert_eq!(name_from_url("file:///tmp/x/repo"), "repo");
    }

    #[test]
    fn env_pairs() {
        assert_eq!(
            parse_env(&["A=1=2".into()], "-e").unwrap()[0].value.as_deref(),
            Some("1=2")
        );
        assert!(parse_env(&["A".into()], "-e").is_err());
        assert!(parse_env(&["=x".into()], "-e").is_err());
        assert!(parse_env(&["1A=x".into()], "-e").is_err());
    }

    #[test]
    fn stream_tags() {
        assert_eq!(
            parse_stream_tag("app", "--to").unwrap(),
            ("app".into(), "latest".into())
        );
        assert_eq!(
            parse_stream_tag("app:v1", "--to").unwrap(),
            ("app".into(), "v1".into())
        );
        assert!(parse_stream_tag("App:v1", "--to").is_err());
        assert!(parse_stream_tag("app:", "--to").is_err());
        assert!(parse_stream_tag("a/b:c", "--to").is_err());
    }
}
