//! The contract between the operator, which makes a build pod, and `slipway-builder`, which runs
//! in it.
//!
//! The builder reads the Build itself from the pod's `BUILD` variable, as OpenShift's builder
//! does, and derives what it does from it through [`plan`]; the pod's environment carries only
//! what a Build cannot say: where things are mounted, the images the operator resolved, registry
//! settings. [`plan`] is also the operator's gate: a Build with a field that neither side carries
//! out is failed at once with [`UNSUPPORTED_REASON`] naming the field, never built as if the
//! field were not there. [`plan`] walks the spec by exhaustive destructuring, so a field added to
//! the Build type does not compile until it is decided here.
//!
//! The stage results the builder writes back are [`result::StageResult`].

pub mod binary;
pub mod result;

use std::collections::BTreeMap;

use crate::Build;
use crate::build::{
    BuildOutput, BuildPostCommitSpec, BuildSource, BuildSourceType, BuildStrategy, BuildStrategyType,
    CommonSpec, CustomBuildStrategy, DockerBuildStrategy, GitBuildSource, ImageSource, SourceBuildStrategy,
};
use crate::common::ImageReferenceKind;

/// The Build's reason when it asks for something Slipway does not carry out.
pub const UNSUPPORTED_REASON: &str = "UnsupportedBuildField";

/// Names of the build pod's environment: what the operator sets and the builder reads.
pub mod env {
    /// The whole Build, as JSON.
    pub const BUILD: &str = "BUILD";
    /// Where the image goes (the operator resolved the output ImageStreamTag).
    pub const OUTPUT_IMAGE: &str = "OUTPUT_IMAGE";
    /// The resolved builder image (Source), base image (Docker `from`) or custom builder image.
    pub const BUILDER_IMAGE: &str = "BUILDER_IMAGE";
    /// Registries reached over plain http, comma-separated.
    pub const INSECURE_REGISTRIES: &str = "INSECURE_REGISTRIES";
    /// CA certificates (PEM) registries may be signed by, besides the public roots: the integrated
    /// registry's CA.
    pub const REGISTRY_CA: &str = "REGISTRY_CA";
    /// The mounted push secret (docker config JSON).
    pub const PUSH_DOCKERCFG_PATH: &str = "PUSH_DOCKERCFG_PATH";
    /// The mounted pull secret of the strategy (docker config JSON).
    pub const PULL_DOCKERCFG_PATH: &str = "PULL_DOCKERCFG_PATH";
    /// Strategy variables whose values come from Secrets or ConfigMaps (`valueFrom`) are set in
    /// the build container under this prefix; the builder hands them to the build by their own
    /// name. The prefix keeps a tenant's variable from ever replacing one the builder reads.
    pub const VALUE_FROM_PREFIX: &str = "SLIPWAY_BUILD_ENV_";
    /// Binary builds: the most bytes the upload may have, as sent and as unpacked.
    pub const BINARY_MAX_BYTES: &str = "BINARY_MAX_BYTES";
    /// Binary builds: how many seconds the `receive` container waits for the upload to start,
    /// and for it to go on after it stalls.
    pub const BINARY_WAIT_SECONDS: &str = "BINARY_WAIT_SECONDS";
    /// The images of `source.images`, resolved by the operator (an ImageStreamTag becomes its
    /// digest reference): a JSON array of pull specs, in the order of `source.images`.
    pub const SOURCE_IMAGES: &str = "SOURCE_IMAGES";

    /// Every name above (what a tenant may never set: `crate::build::RESERVED_ENV`).
    pub const ALL: &[&str] = &[
        BUILD,
        OUTPUT_IMAGE,
        BUILDER_IMAGE,
        INSECURE_REGISTRIES,
        REGISTRY_CA,
        PUSH_DOCKERCFG_PATH,
        PULL_DOCKERCFG_PATH,
        VALUE_FROM_PREFIX,
        BINARY_MAX_BYTES,
        BINARY_WAIT_SECONDS,
        SOURCE_IMAGES,
    ];
}

/// Where things are in the build pod.
pub mod paths {
    /// The volume shared by fetch and build.
    pub const WORKSPACE: &str = "/workspace";
    /// The clone (the repository's root; the context directory is inside it).
    pub const SOURCE: &str = "/workspace/source";
    /// What `fetch` found (its stage result), for the build's `io.openshift.build.*` labels.
    pub const FETCH_RECORD: &str = "/workspace/fetch.json";
    /// The source secret (fetch only).
    pub const SOURCE_SECRET: &str = "/var/run/secrets/slipway.dev/source";
    /// The push secret.
    pub const PUSH_SECRET: &str = "/var/run/secrets/slipway.dev/push";
    /// The strategy's pull secret.
    pub const PULL_SECRET: &str = "/var/run/secrets/slipway.dev/pull";
    /// Build inputs: `source.secrets[i]` at `.../secret-<i>`, `source.configMaps[i]` at
    /// `.../configmap-<i>`, the pull secret of `source.images[i]` at `.../image-pull-<i>`.
    pub const INPUTS: &str = "/var/run/secrets/slipway.dev/inputs";
}

/// A field the Build asks for that Slipway does not carry out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The field's path, as `kubectl explain` names it (`spec.source.binary`).
    pub field: String,
    pub why: String,
}

impl Unsupported {
    fn new(field: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            why: why.into(),
        }
    }
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

/// A post-commit hook, as OpenShift runs it in the built image before the push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `script` (with `args` as `$1`, `$2`, ...): `/bin/sh -c SCRIPT /bin/sh ARGS...`.
    Shell { script: String, args: Vec<String> },
    /// `command` (and `args`): run directly.
    Exec { argv: Vec<String> },
    /// `args` alone: handed to the image's entrypoint.
    EntrypointArgs { args: Vec<String> },
}

impl Hook {
    /// The hook of a spec; `None` when there is none.
    pub fn of(spec: Option<&BuildPostCommitSpec>) -> Option<Self> {
        let BuildPostCommitSpec {
            script,
            command,
            args,
        } = spec?;
        match (script, command) {
            (Some(script), _) if !script.trim().is_empty() => Some(Self::Shell {
                script: script.clone(),
                args: args.clone(),
            }),
            (_, Some(command)) if !command.is_empty() => Some(Self::Exec {
                argv: command.iter().chain(args).cloned().collect(),
            }),
            _ if !args.is_empty() => Some(Self::EntrypointArgs { args: args.clone() }),
            _ => None,
        }
    }

    /// The command line in an image whose entrypoint (plus cmd, when the entrypoint is empty)
    /// is `entrypoint`.
    pub fn argv(&self, entrypoint: &[String]) -> Vec<String> {
        match self {
            Self::Shell { script, args } => ["/bin/sh", "-c", script.as_str(), "/bin/sh"]
                .into_iter()
                .map(String::from)
                .chain(args.iter().cloned())
                .collect(),
            Self::Exec { argv } => argv.clone(),
            Self::EntrypointArgs { args } => entrypoint.iter().chain(args).cloned().collect(),
        }
    }
}

/// What kind of build input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Secret,
    ConfigMap,
}

/// A Secret or ConfigMap the build gets as files: mounted at `mount`, copied by the builder into
/// `destination` (relative to the context directory) before the build, and for Source builds
/// taken out again before the image is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInput {
    pub kind: InputKind,
    pub name: String,
    pub mount: String,
    pub destination: String,
}

impl BuildInput {
    /// Where input `index` of `kind` is mounted.
    pub fn mount_path(kind: InputKind, index: usize) -> String {
        let k = match kind {
            InputKind::Secret => "secret",
            InputKind::ConfigMap => "configmap",
        };
        format!("{}/{k}-{index}", paths::INPUTS)
    }
}

/// A binary build's upload: extracted into the source (a tar, optionally gzip-compressed), or
/// with `as_file` stored as that one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryInput {
    pub as_file: Option<String>,
}

/// An image of `source.images`: its paths copied into the source before the build, as OpenShift
/// does (a directory with its contents; `dir/.` for the contents alone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInput {
    /// `(sourcePath, destinationDir)`: an absolute path in the image, a directory relative to
    /// the context directory.
    pub paths: Vec<(String, String)>,
    /// Where its pull secret is mounted (docker config JSON), if it has one.
    pub pull_secret: Option<String>,
}

impl ImageInput {
    /// Where the pull secret of `source.images[index]` is mounted.
    pub fn pull_secret_path(index: usize) -> String {
        format!("{}/image-pull-{index}", paths::INPUTS)
    }
}

/// How a Docker build treats the layers it makes (`imageOptimizationPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layers {
    /// One layer per step (OpenShift's `None`).
    #[default]
    Keep,
    /// The new layers squashed into one on top of the base (`SkipLayers`, `SkipLayersAndWarn`).
    Squash,
}

/// What the builder does for a Build: every field of the spec, decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildPlan {
    pub strategy: BuildStrategyType,
    /// Whether there is a repository to fetch.
    pub git: bool,
    /// A binary build: the source is uploaded into the `receive` container (`slip start-build
    /// --from-dir|--from-file|--from-archive|--from-repo`) instead of fetched.
    pub binary: Option<BinaryInput>,
    /// The context directory inside the clone (normalised, relative; empty for the root).
    pub context_dir: String,
    /// An inline Dockerfile (`source.dockerfile`): written to `dockerfile_path` in the context,
    /// replacing the repository's.
    pub dockerfile: Option<String>,
    /// The strategy's variables with literal values.
    pub env: Vec<(String, String)>,
    /// The strategy's variables with `valueFrom`: set in the build container under
    /// [`env::VALUE_FROM_PREFIX`]; available to the build, never written into the image.
    pub env_from_pod: Vec<String>,
    /// Source: the scripts URL (`image://` or `file://`).
    pub scripts_url: Option<String>,
    /// Source: reuse the previous image's artifacts.
    pub incremental: bool,
    /// Pull the builder or base image even when the node has it.
    pub force_pull: bool,
    /// Docker: the Dockerfile's path in the context.
    pub dockerfile_path: String,
    /// Docker: `--build-arg`s.
    pub build_args: Vec<(String, String)>,
    /// Docker: build every step again.
    pub no_cache: bool,
    /// Docker: the last FROM is replaced by the resolved `BUILDER_IMAGE`.
    pub replace_from: bool,
    pub layers: Layers,
    /// Whether the strategy has a pull secret (mounted at [`paths::PULL_SECRET`]).
    pub pull_secret: bool,
    pub post_commit: Option<Hook>,
    /// `output.imageLabels`.
    pub image_labels: Vec<(String, String)>,
    pub inputs: Vec<BuildInput>,
    /// Custom: the strategy's secrets, `(name, mountPath)`, mounted in the custom builder.
    pub custom_secrets: Vec<(String, String)>,
    /// `source.images`, in order (their resolved pull specs come in [`env::SOURCE_IMAGES`]).
    pub images: Vec<ImageInput>,
    /// Whether the image is pushed (`output.to` is set).
    pub push: bool,
}

/// The plan for a Build, or every field it asks for that Slipway does not carry out.
pub fn plan(spec: &CommonSpec) -> Result<BuildPlan, Vec<Unsupported>> {
    let CommonSpec {
        // The build pod's own settings: the operator sets them on the pod.
        service_account: _,
        resources: _,
        completion_deadline_seconds: _,
        node_selector: _,
        // The commit to build: fetch checks it out.
        revision: _,
        source,
        strategy,
        output,
        post_commit,
    } = spec;
    let mut plan = BuildPlan {
        post_commit: Hook::of(post_commit.as_ref()),
        dockerfile_path: "Dockerfile".into(),
        ..BuildPlan::default()
    };
    let mut refused = Vec::new();
    plan_source(source, &mut plan, &mut refused);
    plan_strategy(strategy, &mut plan, &mut refused);
    plan_output(output, &mut plan);
    if plan.strategy == BuildStrategyType::Custom && plan.post_commit.is_some() {
        refused.push(Unsupported::new(
            "spec.postCommit",
            "a Custom builder runs the build itself; OpenShift ignores postCommit there, Slipway refuses it",
        ));
    }
    if plan.strategy == BuildStrategyType::Custom && !plan.images.is_empty() {
        refused.push(Unsupported::new(
            "spec.source.images",
            "files of source images are copied into Source and Docker builds; a Custom builder gets none",
        ));
    }
    if plan.strategy == BuildStrategyType::Custom && plan.binary.is_some() {
        refused.push(Unsupported::new(
            "spec.source.binary",
            "binary input is uploaded into Source and Docker builds; a Custom builder gets none",
        ));
    }
    if refused.is_empty() {
        Ok(plan)
    } else {
        Err(refused)
    }
}

fn plan_source(source: &BuildSource, plan: &mut BuildPlan, refused: &mut Vec<Unsupported>) {
    let BuildSource {
        type_,
        binary,
        dockerfile,
        git,
        images,
        context_dir,
        // Fetch's credentials: mounted in the fetch container only.
        source_secret: _,
        secrets,
        config_maps,
    } = source;
    if let Some(GitBuildSource {
        uri: _,
        ref_: _,
        http_proxy: _,
        https_proxy: _,
        no_proxy: _,
    }) = git
    {
        plan.git = true;
    }
    if binary.is_some() || *type_ == BuildSourceType::Binary {
        let as_file = binary.as_ref().and_then(|b| b.as_file.clone());
        match as_file.as_deref().map(check_file_name).transpose() {
            Ok(_) => plan.binary = Some(BinaryInput { as_file }),
            Err(why) => refused.push(Unsupported::new("spec.source.binary.asFile", why)),
        }
        if plan.git {
            refused.push(Unsupported::new(
                "spec.source.git",
                "a binary build's source is its upload; a Build has git or binary source, not both",
            ));
        }
    }
    if images.is_empty() && *type_ == BuildSourceType::Image {
        refused.push(Unsupported::new(
            "spec.source.images",
            "a source of type Image names at least one image",
        ));
    }
    for (i, image) in images.iter().enumerate() {
        plan_image(i, image, plan, refused);
    }
    match normalize_context_dir(context_dir.as_deref().unwrap_or("")) {
        Ok(dir) => plan.context_dir = dir,
        Err(why) => refused.push(Unsupported::new("spec.source.contextDir", why)),
    }
    plan.dockerfile = dockerfile.clone();
    let inputs = secrets
        .iter()
        .map(|s| (InputKind::Secret, &s.secret.name, &s.destination_dir))
        .chain(
            config_maps
                .iter()
                .map(|c| (InputKind::ConfigMap, &c.config_map.name, &c.destination_dir)),
        );
    let mut counts = [0usize; 2];
    for (kind, name, destination) in inputs {
        let index = &mut counts[kind as usize];
        let field = match kind {
            InputKind::Secret => format!("spec.source.secrets[{index}].destinationDir"),
            InputKind::ConfigMap => format!("spec.source.configMaps[{index}].destinationDir"),
        };
        match normalize_context_dir(destination.as_deref().unwrap_or("")) {
            Ok(destination) => plan.inputs.push(BuildInput {
                kind,
                name: name.clone(),
                mount: BuildInput::mount_path(kind, *index),
                destination,
            }),
            Err(why) => refused.push(Unsupported::new(field, why)),
        }
        *index += 1;
    }
}

fn plan_image(i: usize, image: &ImageSource, plan: &mut BuildPlan, refused: &mut Vec<Unsupported>) {
    let ImageSource {
        // Resolved by the operator into SOURCE_IMAGES.
        from: _,
        as_,
        paths,
        pull_secret,
    } = image;
    let field = format!("spec.source.images[{i}]");
    if !as_.is_empty() {
        refused.push(Unsupported::new(
            format!("{field}.as"),
            "replacing a Dockerfile's FROM images by source images is not carried out; use dockerStrategy.from for the last FROM",
        ));
    }
    if paths.is_empty() {
        refused.push(Unsupported::new(
            format!("{field}.paths"),
            "name at least one path to copy",
        ));
    }
    let mut input = ImageInput {
        pull_secret: pull_secret.as_ref().map(|_| ImageInput::pull_secret_path(i)),
        ..ImageInput::default()
    };
    for (j, path) in paths.iter().enumerate() {
        let source = path.source_path.trim();
        let inside = source.starts_with('/') && !source.split('/').any(|p| p == ".." || p.contains('\0'));
        if !inside {
            refused.push(Unsupported::new(
                format!("{field}.paths[{j}].sourcePath"),
                format!("{source:?} must be an absolute path in the image, without \"..\""),
            ));
            continue;
        }
        match normalize_context_dir(&path.destination_dir) {
            Ok(dest) => input.paths.push((source.to_owned(), dest)),
            Err(why) => refused.push(Unsupported::new(
                format!("{field}.paths[{j}].destinationDir"),
                why,
            )),
        }
    }
    plan.images.push(input);
}

fn plan_strategy(strategy: &BuildStrategy, plan: &mut BuildPlan, refused: &mut Vec<Unsupported>) {
    let BuildStrategy {
        type_,
        docker_strategy,
        source_strategy,
        custom_strategy,
        jenkins_pipeline_strategy,
    } = strategy;
    plan.strategy = *type_;
    match type_ {
        BuildStrategyType::Source => match source_strategy {
            Some(s) => plan_s2i(s, plan, refused),
            None => refused.push(Unsupported::new(
                "spec.strategy.sourceStrategy",
                "required for a Source build",
            )),
        },
        BuildStrategyType::Docker => plan_docker(docker_strategy.as_ref(), plan, refused),
        BuildStrategyType::Custom => match custom_strategy {
            Some(c) => plan_custom(c, plan, refused),
            None => refused.push(Unsupported::new(
                "spec.strategy.customStrategy",
                "required for a Custom build",
            )),
        },
        BuildStrategyType::JenkinsPipeline => {
            let _ = jenkins_pipeline_strategy;
            refused.push(Unsupported::new(
                "spec.strategy.jenkinsPipelineStrategy",
                "Jenkins pipeline builds are deprecated by OpenShift and not run by Slipway",
            ));
        }
    }
}

fn plan_s2i(s: &SourceBuildStrategy, plan: &mut BuildPlan, refused: &mut Vec<Unsupported>) {
    let SourceBuildStrategy {
        // Resolved by the operator into BUILDER_IMAGE.
        from: _,
        pull_secret,
        env,
        scripts,
        incremental,
        force_pull,
    } = s;
    plan.pull_secret = pull_secret.is_some();
    plan.incremental = incremental.unwrap_or(false);
    plan.force_pull = force_pull.unwrap_or(false);
    split_env(
        env,
        "spec.strategy.sourceStrategy.env",
        plan,
        refused,
        Target::Env,
    );
    if let Some(url) = scripts.as_deref().filter(|u| !u.trim().is_empty()) {
        if url.starts_with("image://") || url.starts_with("file://") {
            plan.scripts_url = Some(url.to_owned());
        } else {
            refused.push(Unsupported::new(
                "spec.strategy.sourceStrategy.scripts",
                format!("{url:?}: only image:// and file:// scripts URLs are carried out (no downloads)"),
            ));
        }
    }
}

fn plan_docker(d: Option<&DockerBuildStrategy>, plan: &mut BuildPlan, refused: &mut Vec<Unsupported>) {
    let default = DockerBuildStrategy::default();
    let DockerBuildStrategy {
        from,
        pull_secret,
        no_cache,
        env,
        force_pull,
        dockerfile_path,
        build_args,
        image_optimization_policy,
    } = d.unwrap_or(&default);
    plan.replace_from = from.is_some();
    plan.pull_secret = pull_secret.is_some();
    plan.no_cache = no_cache.unwrap_or(false);
    plan.force_pull = force_pull.unwrap_or(false);
    if let Some(p) = dockerfile_path.as_deref().filter(|p| !p.trim().is_empty()) {
        match normalize_context_dir(p) {
            Ok(p) if !p.is_empty() => plan.dockerfile_path = p,
            Ok(_) => refused.push(Unsupported::new(
                "spec.strategy.dockerStrategy.dockerfilePath",
                "names the context directory, not a file",
            )),
            Err(why) => refused.push(Unsupported::new(
                "spec.strategy.dockerStrategy.dockerfilePath",
                why,
            )),
        }
    }
    split_env(
        env,
        "spec.strategy.dockerStrategy.env",
        plan,
        refused,
        Target::Env,
    );
    split_env(
        build_args,
        "spec.strategy.dockerStrategy.buildArgs",
        plan,
        refused,
        Target::BuildArgs,
    );
    plan.layers = match image_optimization_policy.as_deref() {
        None | Some("" | "None") => Layers::Keep,
        Some("SkipLayers" | "SkipLayersAndWarn") => Layers::Squash,
        Some(other) => {
            refused.push(Unsupported::new(
                "spec.strategy.dockerStrategy.imageOptimizationPolicy",
                format!("{other:?}: one of None, SkipLayers, SkipLayersAndWarn"),
            ));
            Layers::Keep
        }
    };
}

fn plan_custom(c: &CustomBuildStrategy, plan: &mut BuildPlan, refused: &mut Vec<Unsupported>) {
    let CustomBuildStrategy {
        from: _,
        env,
        pull_secret,
        force_pull,
        expose_docker_socket,
        secrets,
        build_api_version: _,
    } = c;
    plan.pull_secret = pull_secret.is_some();
    plan.force_pull = force_pull.unwrap_or(false);
    split_env(
        env,
        "spec.strategy.customStrategy.env",
        plan,
        refused,
        Target::Env,
    );
    if expose_docker_socket.unwrap_or(false) {
        refused.push(Unsupported::new(
            "spec.strategy.customStrategy.exposeDockerSocket",
            "Slipway's nodes have no Docker daemon to expose, and a mounted container runtime socket \
             would give the build root on the node",
        ));
    }
    for (i, secret) in secrets.iter().enumerate() {
        let path = secret.mount_path.trim();
        let reserved = [
            "/var/run/secrets/slipway.dev",
            "/var/run/secrets/kubernetes.io",
            "/dev",
            "/proc",
            "/sys",
        ];
        let clean = path.starts_with('/') && !path.split('/').any(|p| p == ".." || p.contains('\0'));
        if !clean
            || path == "/"
            || reserved
                .iter()
                .any(|r| path == *r || path.starts_with(&format!("{r}/")))
        {
            refused.push(Unsupported::new(
                format!("spec.strategy.customStrategy.secrets[{i}].mountPath"),
                format!("{path:?} must be an absolute path without \"..\", outside /dev, /proc, /sys and the platform's secret folders"),
            ));
            continue;
        }
        plan.custom_secrets.push((
            secret.secret_source.name.clone(),
            path.trim_end_matches('/').to_owned(),
        ));
    }
}

fn plan_output(output: &BuildOutput, plan: &mut BuildPlan) {
    let BuildOutput {
        to,
        // Mounted for the push.
        push_secret: _,
        image_labels,
    } = output;
    plan.push = to
        .as_ref()
        .is_some_and(|t| t.kind != ImageReferenceKind::ImageStreamImage);
    plan.image_labels = image_labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Env,
    BuildArgs,
}

/// Literal values go to the plan; `valueFrom` ones through the pod (env only).
fn split_env(
    vars: &[k8s_openapi::api::core::v1::EnvVar],
    field: &str,
    plan: &mut BuildPlan,
    refused: &mut Vec<Unsupported>,
    target: Target,
) {
    for (i, var) in vars.iter().enumerate() {
        if var.name.is_empty() || var.name.contains('=') {
            refused.push(Unsupported::new(
                format!("{field}[{i}].name"),
                "not a variable name",
            ));
            continue;
        }
        match (&var.value_from, target) {
            (None, Target::Env) => plan
                .env
                .push((var.name.clone(), var.value.clone().unwrap_or_default())),
            (None, Target::BuildArgs) => plan
                .build_args
                .push((var.name.clone(), var.value.clone().unwrap_or_default())),
            (Some(_), Target::Env) => plan.env_from_pod.push(var.name.clone()),
            (Some(_), Target::BuildArgs) => refused.push(Unsupported::new(
                format!("{field}[{i}].valueFrom"),
                "build arguments take literal values",
            )),
        }
    }
}

/// A file name for `binary.asFile`: one path component.
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) || name.len() > 255
    {
        return Err(format!(
            "{name:?} must be a file name (no directory, at most 255 bytes)"
        ));
    }
    Ok(())
}

/// A relative directory inside the repository, normalised (`./app/` → `app`); refused when it
/// is absolute or leaves the repository.
pub fn normalize_context_dir(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.starts_with('/') {
        return Err(format!("{raw:?} must be relative to the repository"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("{raw:?} leaves the repository")),
            p if p.contains('\0') => return Err(format!("{raw:?} is not a path")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The labels OpenShift puts on every built image (`io.openshift.build.*`), then the
/// BuildConfig's `output.imageLabels` (which win on a clash, as in OpenShift).
pub fn image_labels(build: &Build, fetched: Option<&result::StageResult>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            labels.insert(format!("io.openshift.build.{k}"), v);
        }
    };
    let spec = &build.spec.common;
    let revision = spec.revision.as_ref().and_then(|r| r.git.as_ref());
    let commit = fetched
        .and_then(|f| f.commit.clone())
        .or_else(|| revision.map(|r| r.commit.clone()));
    let author = fetched
        .and_then(|f| f.author.clone())
        .or_else(|| revision.and_then(|r| r.author.clone()));
    let message = fetched
        .and_then(|f| f.message.clone())
        .or_else(|| revision.map(|r| r.message.clone()));
    put("commit.id", commit);
    put(
        "commit.author",
        author.map(|a| format!("{} <{}>", a.name, a.email)),
    );
    put("commit.date", fetched.and_then(|f| f.commit_date.clone()));
    put(
        "commit.message",
        message.map(|m| m.lines().next().unwrap_or("").to_owned()),
    );
    put(
        "commit.ref",
        spec.source.git.as_ref().and_then(|g| g.ref_.clone()),
    );
    put(
        "source-location",
        spec.source.git.as_ref().map(|g| mask_credentials(&g.uri)),
    );
    put("source-context-dir", spec.source.context_dir.clone());
    put("name", build.metadata.name.clone());
    put("namespace", build.metadata.namespace.clone());
    for l in &spec.output.image_labels {
        labels.insert(l.name.clone(), l.value.clone());
    }
    labels
}

/// `https://user:pw@host/x` → `https://host/x`: a label must never carry credentials.
fn mask_credentials(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests;
