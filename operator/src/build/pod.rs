//! The build pod: what it looks like (`build_pod`), and what its state means for the Build
//! (`observe_pod`). Both pure.
//!
//! The pod: one init container in the builder tools image copies `slipway-builder` into a shared
//! volume and then, when there is a repository, clones the source into the workspace (`fetch`,
//! with `PLACE_TOOLS`), or receives a binary build's upload (`receive`), or only places the tools
//! (`place-tools`); the main container `build` is the builder image itself (Source) or a buildah image
//! (Docker) running the placed `slipway-builder s2i|docker`, which reads the Build from `BUILD`
//! (`slipway_crds::contract`). Each reports a JSON result through its termination message. A
//! Custom build is one container: the custom builder image, run as OpenShift runs it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerStatus, EnvVar, LocalObjectReference, Pod,
    PodSpec, SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use slipway_crds::Build;
use slipway_crds::build::{BuildPhase, BuildStrategyType, labels};
use slipway_crds::contract::{self, BuildPlan, InputKind, env, paths};

/// The images and registry the operator builds with (operator flags).
#[derive(Clone, Debug)]
pub struct BuildImages {
    /// The image with `slipway-builder` (the init container: `fetch`, `receive` or `place-tools`).
    pub builder_tools: String,
    /// The buildah image Docker builds run in.
    pub buildah: String,
    /// Registries (`host:port`) builds reach over plain http (`INSECURE_REGISTRIES` in the pod).
    pub insecure_registries: Vec<String>,
    /// The integrated registry (`host:port`), when the chart installs one: builds pushing there
    /// without a pushSecret use their account's registry credentials.
    pub integrated_registry: Option<String>,
    /// CA certificates (PEM) the build trusts for registries besides the public roots
    /// (`REGISTRY_CA`): the integrated registry's.
    pub registry_ca: Option<String>,
    /// The most bytes a binary build's upload may have, as sent and as unpacked.
    pub binary_max_bytes: u64,
    /// How long a binary build waits for its upload to start (and for it to go on).
    pub binary_wait: std::time::Duration,
}

impl Default for BuildImages {
    fn default() -> Self {
        Self {
            builder_tools: "ghcr.io/slipway-dev/slipway-builder:latest".into(),
            buildah: "quay.io/buildah/stable:latest".into(),
            insecure_registries: Vec::new(),
            integrated_registry: None,
            registry_ca: None,
            binary_max_bytes: 1 << 30,
            binary_wait: std::time::Duration::from_secs(600),
        }
    }
}

/// Where the pieces go inside the pod (the contract's paths).
pub const TOOLS_DIR: &str = "/slipway/tools";
pub const WORKSPACE_DIR: &str = paths::WORKSPACE;
pub const SOURCE_SECRET_DIR: &str = paths::SOURCE_SECRET;
pub const PUSH_SECRET_DIR: &str = paths::PUSH_SECRET;
/// The main container's name.
pub const BUILD_CONTAINER: &str = "build";
pub use slipway_client::RECEIVE_CONTAINER;
/// buildah's storage in Docker builds (an emptyDir: vfs copies, gone with the pod).
pub const BUILDAH_STORAGE_DIR: &str = "/var/lib/containers";

/// What buildah needs in a Docker build's main container (tried on the dev cluster's real node,
/// containerd). Root, to unpack layers with their owners. Without CAP_SYS_ADMIN buildah works
/// as rootless does: it unpacks and runs each RUN step (chroot isolation) inside a user namespace
/// of its own, with the capabilities kept here — owners and modes, set-id, chroot, device nodes,
/// file capabilities, signals — and no others (without them every RUN fails). Making that user
/// namespace (unshare(CLONE_NEWUSER)) is what the runtime's default seccomp profile refuses, hence
/// seccomp Unconfined; no privilege escalation, no SYS_ADMIN, not privileged.
///
/// Nodes that forbid unprivileged user namespaces need instead CAP_SYS_ADMIN (with the default
/// capabilities and seccomp profile, also tried) or a privileged pod, as OpenShift's Docker builds.
pub fn buildah_security_context() -> SecurityContext {
    let capabilities = [
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "SETUID",
        "SETGID",
        "SYS_CHROOT",
        "SETFCAP",
        "MKNOD",
        "KILL",
    ];
    SecurityContext {
        run_as_user: Some(0),
        run_as_group: Some(0),
        run_as_non_root: Some(false),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: Some(capabilities.map(String::from).to_vec()),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// What the build pod's other containers (and a Source build's main one) run with: the image's
/// own non-root user, nothing more. It passes Pod Security's `restricted` level: no privilege
/// escalation, every capability dropped, non-root (the image's user must be numeric), the
/// runtime's default seccomp profile.
pub fn unprivileged_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

pub use slipway_client::build_pod_name as pod_name;

/// What the pod is made from besides the Build itself: the resolved builder image (Source), base
/// image (Docker `from`) or custom builder image, and where the image goes.
#[derive(Clone, Debug, Default)]
pub struct PodInputs {
    /// Resolved: an ImageStreamTag becomes its digest reference (`BUILDER_IMAGE`).
    pub builder_image: String,
    /// The pull spec the build pushes to (empty: no push).
    pub output_image: String,
    /// `source.images`, resolved, in order (`SOURCE_IMAGES`).
    pub source_images: Vec<String>,
    /// The `imagePullSecrets` of the build's service account: without a strategy `pullSecret`,
    /// the builder pulls the builder or base image with them.
    pub account_pull_secrets: Vec<String>,
    /// Without an output pushSecret: the Secret to push to the integrated registry with.
    pub registry_push_secret: Option<String>,
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// The docker configs of the service account's pull Secrets in one directory, one file each
/// (`<n>.json` from a dockerconfigjson Secret, `<n>.cfg` from a dockercfg one), all optional: a
/// Secret that is missing or of another type adds nothing.
fn account_pull_secrets(secrets: &[String]) -> Volume {
    use k8s_openapi::api::core::v1::{KeyToPath, ProjectedVolumeSource, SecretProjection, VolumeProjection};
    let sources = secrets
        .iter()
        .enumerate()
        .flat_map(|(i, name)| {
            [(".dockerconfigjson", "json"), (".dockercfg", "cfg")].map(|(key, extension)| VolumeProjection {
                secret: Some(SecretProjection {
                    name: name.clone(),
                    items: Some(vec![KeyToPath {
                        key: key.into(),
                        path: format!("{i}.{extension}"),
                        mode: None,
                    }]),
                    optional: Some(true),
                }),
                ..Default::default()
            })
        })
        .collect();
    Volume {
        name: "pull-secret".into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(sources),
            default_mode: Some(0o444),
        }),
        ..Default::default()
    }
}

/// A Secret as a volume, readable by the build's non-root user. `optional`: a missing one is an
/// empty directory, which the builder reports by name instead of the pod waiting for it forever.
fn secret_volume(volume: &str, secret: &str, optional: bool) -> Volume {
    Volume {
        name: volume.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            default_mode: Some(0o444),
            optional: optional.then_some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(Default::default()),
        ..Default::default()
    }
}

/// The volumes of a pod and the mounts of its build container, collected as the pod is made.
#[derive(Default)]
struct Parts {
    volumes: Vec<Volume>,
    build_mounts: Vec<VolumeMount>,
    build_env: Vec<EnvVar>,
}

impl Parts {
    /// A Secret mounted in the build container.
    fn secret(&mut self, volume: &str, secret: &str, path: &str, optional: bool) {
        self.volumes.push(secret_volume(volume, secret, optional));
        self.build_mounts.push(mount(volume, path, true));
    }

    /// The build inputs of `source.secrets` and `source.configMaps`, each at its contract path.
    fn inputs(&mut self, plan: &BuildPlan) {
        for (i, input) in plan.inputs.iter().enumerate() {
            let volume = format!("input-{i}");
            match input.kind {
                InputKind::Secret => self.volumes.push(secret_volume(&volume, &input.name, true)),
                InputKind::ConfigMap => self.volumes.push(Volume {
                    name: volume.clone(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: input.name.clone(),
                        default_mode: Some(0o444),
                        optional: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }
            self.build_mounts.push(mount(&volume, &input.mount, true));
        }
    }

    /// The strategy's `valueFrom` variables, under the contract's prefix.
    fn value_from_env(&mut self, strategy: &slipway_crds::build::BuildStrategy) {
        let vars = strategy
            .source_strategy
            .as_ref()
            .map(|s| &s.env)
            .or_else(|| strategy.docker_strategy.as_ref().map(|d| &d.env))
            .or_else(|| strategy.custom_strategy.as_ref().map(|c| &c.env));
        for var in vars.into_iter().flatten().filter(|v| v.value_from.is_some()) {
            self.build_env.push(EnvVar {
                name: format!("{}{}", env::VALUE_FROM_PREFIX, var.name),
                value: None,
                value_from: var.value_from.clone(),
            });
        }
    }
}

/// The strategy's pull secret.
pub(crate) fn pull_secret(build: &Build) -> Option<&str> {
    let s = &build.spec.common.strategy;
    s.source_strategy
        .as_ref()
        .and_then(|s| s.pull_secret.as_ref())
        .or_else(|| s.docker_strategy.as_ref().and_then(|d| d.pull_secret.as_ref()))
        .or_else(|| s.custom_strategy.as_ref().and_then(|c| c.pull_secret.as_ref()))
        .map(|r| r.name.as_str())
}

/// The init container of Source and Docker builds: `fetch` (when there is a repository) or
/// `receive` (a binary build), placing the tools first; else `place-tools` alone.
fn init_containers(
    build: &Build,
    images: &BuildImages,
    plan: &BuildPlan,
    volumes: &mut Vec<Volume>,
) -> Vec<Container> {
    let spec = &build.spec.common;
    let place_tools = Container {
        name: "place-tools".into(),
        image: Some(images.builder_tools.clone()),
        command: Some(vec![
            "slipway-builder".into(),
            "place-tools".into(),
            TOOLS_DIR.into(),
        ]),
        volume_mounts: Some(vec![mount("tools", TOOLS_DIR, false)]),
        security_context: Some(unprivileged_security_context()),
        ..Default::default()
    };
    if plan.binary.is_some() {
        return vec![placing_tools(receive_container(build, images))];
    }
    let Some(git) = spec.source.git.as_ref().filter(|_| plan.git) else {
        return vec![place_tools];
    };
    let commit = spec
        .revision
        .as_ref()
        .and_then(|r| r.git.as_ref())
        .map(|g| g.commit.clone())
        .filter(|c| !c.is_empty());
    let mut fetch_env = vec![
        env("SOURCE_URI", git.uri.clone()),
        env(
            "SOURCE_REF",
            commit.unwrap_or_else(|| git.ref_.clone().unwrap_or_default()),
        ),
        env("SOURCE_CONTEXT_DIR", plan.context_dir.clone()),
        env("SOURCE_DEST", paths::SOURCE),
        env("FETCH_RECORD", paths::FETCH_RECORD),
    ];
    let mut fetch_mounts = vec![mount("workspace", WORKSPACE_DIR, false)];
    if let Some(secret) = &spec.source.source_secret {
        volumes.push(secret_volume("source-secret", &secret.name, false));
        fetch_mounts.push(mount("source-secret", SOURCE_SECRET_DIR, true));
        fetch_env.push(env("SOURCE_SECRET_DIR", SOURCE_SECRET_DIR));
    }
    for (var, value) in [
        ("HTTP_PROXY", &git.http_proxy),
        ("HTTPS_PROXY", &git.https_proxy),
        ("NO_PROXY", &git.no_proxy),
    ] {
        if let Some(value) = value {
            fetch_env.push(env(var, value.clone()));
        }
    }
    let fetch = Container {
        name: "fetch".into(),
        image: Some(images.builder_tools.clone()),
        command: Some(vec!["slipway-builder".into(), "fetch".into()]),
        env: Some(fetch_env),
        volume_mounts: Some(fetch_mounts),
        security_context: Some(unprivileged_security_context()),
        ..Default::default()
    };
    vec![placing_tools(fetch)]
}

/// `container` (the builder's own `fetch` or `receive`, in the tools image, unprivileged) placing
/// the tools before its step (`PLACE_TOOLS`): one container started instead of two, one after
/// the other. It sees nothing more than before but the tools volume, which it fills.
fn placing_tools(mut container: Container) -> Container {
    container
        .env
        .get_or_insert_with(Vec::new)
        .push(env("PLACE_TOOLS", TOOLS_DIR));
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(mount("tools", TOOLS_DIR, false));
    container
}

/// A binary build's `receive`: reads the upload from its standard input, which `slip start-build
/// --from-*` reaches through the API server's attach (as the user, so that their `pods/attach`
/// right in the project is what lets them feed it). `stdinOnce`: when the client goes, the input
/// ends, and an upload cut off fails the build instead of waiting.
fn receive_container(build: &Build, images: &BuildImages) -> Container {
    Container {
        name: RECEIVE_CONTAINER.into(),
        image: Some(images.builder_tools.clone()),
        command: Some(vec!["slipway-builder".into(), "receive".into()]),
        env: Some(vec![
            env(env::BUILD, serde_json::to_string(build).unwrap_or_default()),
            env("SOURCE_DEST", paths::SOURCE),
            env("FETCH_RECORD", paths::FETCH_RECORD),
            env(env::BINARY_MAX_BYTES, images.binary_max_bytes.to_string()),
            env(
                env::BINARY_WAIT_SECONDS,
                images.binary_wait.as_secs().max(1).to_string(),
            ),
        ]),
        volume_mounts: Some(vec![mount("workspace", WORKSPACE_DIR, false)]),
        security_context: Some(unprivileged_security_context()),
        stdin: Some(true),
        stdin_once: Some(true),
        ..Default::default()
    }
}

/// The build pod of `build`, owned by it. The Build itself travels in `BUILD`; the builder reads
/// every field from there (`slipway_crds::contract`).
pub fn build_pod(build: &Build, images: &BuildImages, inputs: &PodInputs) -> Pod {
    let spec = &build.spec.common;
    // The controller refuses a Build without a plan before it makes a pod.
    let plan = contract::plan(spec).unwrap_or_default();
    let strategy = spec.strategy.type_;
    let mut parts = Parts {
        build_env: vec![
            env(env::OUTPUT_IMAGE, inputs.output_image.clone()),
            env(env::BUILDER_IMAGE, inputs.builder_image.clone()),
            env(env::BUILD, serde_json::to_string(build).unwrap_or_default()),
        ],
        ..Parts::default()
    };
    if !images.insecure_registries.is_empty() {
        parts.build_env.push(env(
            env::INSECURE_REGISTRIES,
            images.insecure_registries.join(","),
        ));
    }
    if let Some(ca) = images.registry_ca.as_ref().filter(|ca| !ca.trim().is_empty()) {
        parts.build_env.push(env(env::REGISTRY_CA, ca.clone()));
    }
    parts.value_from_env(&spec.strategy);
    parts.inputs(&plan);
    if !inputs.source_images.is_empty() {
        parts.build_env.push(env(
            env::SOURCE_IMAGES,
            serde_json::to_string(&inputs.source_images).unwrap_or_default(),
        ));
        for (i, image) in spec.source.images.iter().enumerate() {
            if let Some(secret) = &image.pull_secret {
                parts.secret(
                    &format!("image-pull-{i}"),
                    &secret.name,
                    &contract::ImageInput::pull_secret_path(i),
                    false,
                );
            }
        }
    }
    let push_secret = spec
        .output
        .push_secret
        .as_ref()
        .map(|s| s.name.clone())
        .or_else(|| inputs.registry_push_secret.clone());
    if let Some(secret) = &push_secret {
        parts.secret("push-secret", secret, PUSH_SECRET_DIR, false);
        parts
            .build_env
            .push(env(env::PUSH_DOCKERCFG_PATH, PUSH_SECRET_DIR));
    }
    if let Some(secret) = pull_secret(build) {
        parts.secret("pull-secret", secret, paths::PULL_SECRET, false);
        parts
            .build_env
            .push(env(env::PULL_DOCKERCFG_PATH, paths::PULL_SECRET));
    } else if !inputs.account_pull_secrets.is_empty() {
        parts
            .volumes
            .push(account_pull_secrets(&inputs.account_pull_secrets));
        parts
            .build_mounts
            .push(mount("pull-secret", paths::PULL_SECRET, true));
        parts
            .build_env
            .push(env(env::PULL_DOCKERCFG_PATH, paths::PULL_SECRET));
    }
    let (init, main) = match strategy {
        BuildStrategyType::Custom => (Vec::new(), custom_container(build, inputs, &plan, &mut parts)),
        _ => {
            parts.volumes.extend([empty_dir("tools"), empty_dir("workspace")]);
            let init = init_containers(build, images, &plan, &mut parts.volumes);
            (init, build_container(strategy, images, inputs, &mut parts))
        }
    };
    let main = Container {
        resources: spec.resources.clone(),
        termination_message_policy: Some("File".into()),
        image_pull_policy: plan.force_pull.then(|| "Always".into()),
        ..main
    };
    pod_around(build, init, main, parts.volumes)
}

/// The main container of Source and Docker builds: the placed `slipway-builder`.
fn build_container(
    strategy: BuildStrategyType,
    images: &BuildImages,
    inputs: &PodInputs,
    parts: &mut Parts,
) -> Container {
    let docker = strategy == BuildStrategyType::Docker;
    parts.build_mounts.extend([
        mount("tools", TOOLS_DIR, true),
        mount("workspace", WORKSPACE_DIR, false),
    ]);
    if docker {
        parts.volumes.push(empty_dir("buildah-storage"));
        parts
            .build_mounts
            .push(mount("buildah-storage", BUILDAH_STORAGE_DIR, false));
        // vfs whatever the image's storage.conf says: overlay would need mounts or fuse.
        parts.build_env.push(env("STORAGE_DRIVER", "vfs"));
    }
    Container {
        name: BUILD_CONTAINER.into(),
        image: Some(if docker {
            images.buildah.clone()
        } else {
            inputs.builder_image.clone()
        }),
        command: Some(vec![
            format!("{TOOLS_DIR}/slipway-builder"),
            if docker { "docker" } else { "s2i" }.into(),
        ]),
        env: Some(std::mem::take(&mut parts.build_env)),
        volume_mounts: Some(std::mem::take(&mut parts.build_mounts)),
        // S2I runs the builder image's own user with no way up; buildah needs more.
        security_context: Some(if docker {
            buildah_security_context()
        } else {
            unprivileged_security_context()
        }),
        ..Default::default()
    }
}

/// A Custom build's only container: the custom builder image with its own entrypoint, the Build
/// in `BUILD`, the secrets mounted, and OpenShift's variables for the source and the output.
fn custom_container(build: &Build, inputs: &PodInputs, plan: &BuildPlan, parts: &mut Parts) -> Container {
    let spec = &build.spec.common;
    let git = spec.source.git.as_ref();
    let registry = inputs.output_image.split('/').next().unwrap_or_default();
    parts.build_env.extend([
        env("OUTPUT_REGISTRY", registry),
        env(
            "SOURCE_REPOSITORY",
            git.map(|g| g.uri.clone()).unwrap_or_default(),
        ),
        env("SOURCE_URI", git.map(|g| g.uri.clone()).unwrap_or_default()),
        env("SOURCE_REF", git.and_then(|g| g.ref_.clone()).unwrap_or_default()),
        env("SOURCE_CONTEXT_DIR", plan.context_dir.clone()),
    ]);
    for (k, v) in &plan.env {
        parts.build_env.push(env(k, v.clone()));
    }
    if let Some(secret) = &spec.source.source_secret {
        parts.secret("source-secret", &secret.name, SOURCE_SECRET_DIR, false);
        parts.build_env.push(env("SOURCE_SECRET_DIR", SOURCE_SECRET_DIR));
    }
    // The strategy's secrets, where it says (as OpenShift mounts them).
    for (i, (secret, path)) in plan.custom_secrets.iter().enumerate() {
        parts.secret(&format!("custom-secret-{i}"), secret, path, false);
    }
    Container {
        name: BUILD_CONTAINER.into(),
        image: Some(inputs.builder_image.clone()),
        env: Some(std::mem::take(&mut parts.build_env)),
        volume_mounts: Some(std::mem::take(&mut parts.build_mounts)),
        // The custom image's own user, root included (as OpenShift runs custom builders), with
        // no capabilities and no way up.
        security_context: Some(SecurityContext {
            run_as_non_root: None,
            ..unprivileged_security_context()
        }),
        ..Default::default()
    }
}

/// The pod itself: name, owner, labels, and the Build's pod settings.
fn pod_around(build: &Build, init: Vec<Container>, main: Container, volumes: Vec<Volume>) -> Pod {
    let name = build.metadata.name.clone().unwrap_or_default();
    let spec = &build.spec.common;
    let labels = BTreeMap::from([(labels::BUILD.to_string(), name.clone())]);
    let annotations = BTreeMap::from([(labels::BUILD.to_string(), name.clone())]);
    let pull_secrets = pull_secret(build).map(|s| vec![LocalObjectReference { name: s.to_string() }]);
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(&name)),
            namespace: build.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: build.metadata.uid.clone().map(|uid| {
                vec![OwnerReference {
                    api_version: slipway_crds::API_VERSION.into(),
                    kind: "Build".into(),
                    name: name.clone(),
                    uid,
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..Default::default()
        },
        spec: Some(PodSpec {
            init_containers: (!init.is_empty()).then_some(init),
            containers: vec![main],
            volumes: Some(volumes),
            restart_policy: Some("Never".into()),
            service_account_name: spec.service_account.clone(),
            // The builder never calls the API server.
            automount_service_account_token: Some(false),
            node_selector: spec.node_selector.clone(),
            active_deadline_seconds: spec.completion_deadline_seconds,
            image_pull_secrets: pull_secrets,
            ..Default::default()
        }),
        status: None,
    }
}

/// The JSON result a builder stage writes to its termination message: the contract's type.
pub use slipway_crds::contract::result::StageResult;

/// What the pod says about the build.
#[derive(Clone, Debug, PartialEq)]
pub struct PodOutcome {
    pub phase: BuildPhase,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// The main container's (or the failing container's) result, when it wrote one.
    pub result: Option<StageResult>,
}

impl PodOutcome {
    fn new(phase: BuildPhase, reason: &str, message: &str) -> Self {
        Self {
            phase,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            message: (!message.is_empty()).then(|| message.to_string()),
            result: None,
        }
    }
}

pub const MESSAGE_POD_DELETED: &str = "The pod for this build was deleted before the build completed.";
pub const MESSAGE_OOM: &str = "The build pod was killed due to an out of memory condition.";
pub const MESSAGE_GENERIC_FAILURE: &str = "Generic Build failure - check logs for details.";

/// What the fetch container found: the commit it checked out, its author, committer and message
/// (or what `receive` was told of the commit an upload came from).
pub fn fetched_revision(pod: &Pod) -> Option<slipway_crds::build::SourceRevision> {
    let statuses = pod.status.as_ref()?.init_container_statuses.as_ref()?;
    let fetch = terminated_result(
        statuses
            .iter()
            .find(|s| s.name == "fetch" || s.name == RECEIVE_CONTAINER)?,
    )?;
    let commit = fetch.commit.filter(|c| !c.is_empty() && fetch.success)?;
    Some(slipway_crds::build::SourceRevision {
        type_: "Git".into(),
        git: Some(slipway_crds::build::GitSourceRevision {
            commit,
            author: fetch.author,
            committer: fetch.committer,
            message: fetch.message.unwrap_or_default().chars().take(4096).collect(),
        }),
    })
}

fn terminated_result(status: &ContainerStatus) -> Option<StageResult> {
    let message = status.state.as_ref()?.terminated.as_ref()?.message.as_deref()?;
    serde_json::from_str(message.trim()).ok()
}

fn failed_container(statuses: &[ContainerStatus]) -> Option<&ContainerStatus> {
    statuses.iter().find(|s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0)
    })
}

/// The phase a build is in given its pod (`None`: the pod is gone). The caller never moves a
/// build out of a terminal phase; this function only reads the pod.
pub fn observe_pod(pod: Option<&Pod>) -> PodOutcome {
    let Some(pod) = pod else {
        return PodOutcome::new(BuildPhase::Error, "BuildPodDeleted", MESSAGE_POD_DELETED);
    };
    let status = pod.status.clone().unwrap_or_default();
    let init = status.init_container_statuses.clone().unwrap_or_default();
    let main = status.container_statuses.clone().unwrap_or_default();
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let build = main.iter().find(|s| s.name == BUILD_CONTAINER);
    let build_state = build.and_then(|s| s.state.as_ref());
    match status.phase.as_deref() {
        Some("Succeeded") => succeeded(&main),
        Some("Failed") => failed_pod(&status, &init, &main, deleting),
        _ if deleting => PodOutcome::new(BuildPhase::Error, "BuildPodDeleted", MESSAGE_POD_DELETED),
        // The kubelet reports a container's end a sync (about a second) before the pod's phase.
        // The build container is never restarted: its successful end is the build's. A failure
        // waits for the pod's phase, which may say more (past its deadline, evicted).
        _ if build_state
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0)
            && build.and_then(terminated_result).is_some_and(|r| r.success) =>
        {
            succeeded(&main)
        }
        Some("Running") => PodOutcome::new(BuildPhase::Running, "", ""),
        _ if build_state.is_some_and(|s| s.running.is_some()) => PodOutcome::new(BuildPhase::Running, "", ""),
        _ => pending(&init, &main),
    }
}

/// The outcome a container's result gives: Failed with its reason and message when it failed or
/// the pod did (`complete` false); else Complete.
fn from_result(result: Option<StageResult>, complete: bool) -> PodOutcome {
    match &result {
        Some(r) if !r.success || !complete => PodOutcome {
            result: result.clone(),
            ..PodOutcome::new(
                BuildPhase::Failed,
                r.reason.map_or("GenericBuildFailed", |r| r.as_str()),
                r.message.as_deref().unwrap_or(MESSAGE_GENERIC_FAILURE),
            )
        },
        _ if complete => PodOutcome {
            result,
            ..PodOutcome::new(BuildPhase::Complete, "", "")
        },
        _ => PodOutcome::new(BuildPhase::Failed, "GenericBuildFailed", MESSAGE_GENERIC_FAILURE),
    }
}

/// A pod that succeeded: Complete, unless the build container's result says it failed.
fn succeeded(main: &[ContainerStatus]) -> PodOutcome {
    let result = main
        .iter()
        .find(|s| s.name == BUILD_CONTAINER)
        .and_then(terminated_result);
    from_result(result, true)
}

/// A pod that failed: out of memory, evicted, past its deadline, deleted, or the first container
/// that failed says why (fetch reports FetchSourceFailed).
fn failed_pod(
    status: &k8s_openapi::api::core::v1::PodStatus,
    init: &[ContainerStatus],
    main: &[ContainerStatus],
    deleting: bool,
) -> PodOutcome {
    let oom = init.iter().chain(main).any(|s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
    });
    if oom {
        return PodOutcome::new(BuildPhase::Failed, "OutOfMemoryKilled", MESSAGE_OOM);
    }
    match status.reason.as_deref() {
        Some("Evicted") => {
            let message = status.message.as_deref().unwrap_or("The build pod was evicted.");
            return PodOutcome::new(BuildPhase::Failed, "BuildPodEvicted", message);
        }
        Some("DeadlineExceeded") => {
            let message = "The build ran longer than its completionDeadlineSeconds.";
            return PodOutcome::new(BuildPhase::Failed, "BuildPodDeadlineExceeded", message);
        }
        _ => {}
    }
    if deleting {
        return PodOutcome::new(BuildPhase::Error, "BuildPodDeleted", MESSAGE_POD_DELETED);
    }
    let failed = failed_container(init).or_else(|| failed_container(main));
    from_result(failed.and_then(terminated_result), false)
}

/// A pending pod: an image that cannot be pulled is worth saying; a container the kubelet will
/// not start as configured (e.g. `runAsNonRoot` with a builder image whose user is root) never
/// starts, so the build fails, saying why.
fn pending(init: &[ContainerStatus], main: &[ContainerStatus]) -> PodOutcome {
    let waiting = |reasons: &[&str]| {
        init.iter().chain(main).find_map(|s| {
            let w = s.state.as_ref()?.waiting.as_ref()?;
            reasons.contains(&w.reason.as_deref()?).then(|| {
                let said = w.message.clone().or_else(|| w.reason.clone()).unwrap_or_default();
                format!("{}: {said}", s.name)
            })
        })
    };
    if let Some(message) = waiting(&["CreateContainerConfigError"]) {
        return PodOutcome::new(BuildPhase::Failed, "CannotStartBuildContainer", &message);
    }
    match waiting(&["ErrImagePull", "ImagePullBackOff", "InvalidImageName"]) {
        Some(message) => PodOutcome::new(BuildPhase::Pending, "PullBuilderImageFailed", &message),
        None => PodOutcome::new(BuildPhase::Pending, "", ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodStatus};
    use slipway_crds::build::{
        BuildSpec, BuildStrategy, CommonSpec, DockerBuildStrategy, SourceBuildStrategy,
    };
    use slipway_crds::common::{ImageReference, LocalObjectReference};

    fn build(strategy: BuildStrategyType) -> Build {
        let mut common = CommonSpec {
            strategy: BuildStrategy {
                type_: strategy,
                ..Default::default()
            },
            completion_deadline_seconds: Some(600),
            node_selector: Some([("pool".to_string(), "builds".to_string())].into()),
            ..Default::default()
        };
        common.source.git = Some(slipway_crds::build::GitBuildSource {
            uri: "https://git.example.com/app.git".into(),
            ..Default::default()
        });
        common.source.source_secret = Some(LocalObjectReference::new("git-creds"));
        common.output.push_secret = Some(LocalObjectReference::new("push-creds"));
        match strategy {
            BuildStrategyType::Docker => {
                common.strategy.docker_strategy = Some(DockerBuildStrategy::default())
            }
            _ => {
                common.strategy.source_strategy = Some(SourceBuildStrategy {
                    from: ImageReference::image_stream_tag("builder:latest"),
                    pull_secret: None,
                    env: vec![env("A", "1")],
                    scripts: None,
                    incremental: None,
                    force_pull: None,
                })
            }
        }
        let mut b = Build::new(
            "app-1",
            BuildSpec {
                common,
                triggered_by: vec![],
            },
        );
        b.metadata.namespace = Some("team".into());
        b.metadata.uid = Some("u1".into());
        b
    }

    fn inputs() -> PodInputs {
        PodInputs {
            builder_image: "reg/team/builder@sha256:1".into(),
            output_image: "reg/team/app:latest".into(),
            source_images: Vec::new(),
            account_pull_secrets: Vec::new(),
            registry_push_secret: None,
        }
    }

    #[test]
    fn s2i_pod_is_unprivileged_and_carries_the_build() {
        let pod = build_pod(
            &build(BuildStrategyType::Source),
            &BuildImages::default(),
            &inputs(),
        );
        assert_eq!(pod.metadata.name.as_deref(), Some("app-1-build"));
        let spec = pod.spec.unwrap();
        let init: Vec<_> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        // One init container places the tools and fetches: it alone mounts the source secret,
        // the tools it fills, and the workspace.
        assert_eq!(init, ["fetch"]);
        let fetch = &spec.init_containers.as_ref().unwrap()[0];
        let fetch_env: Vec<_> = fetch
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect();
        assert!(
            fetch_env.contains(&("PLACE_TOOLS", Some(TOOLS_DIR))),
            "{fetch_env:?}"
        );
        let mounts: Vec<_> = fetch
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(mounts, ["workspace", "source-secret", "tools"]);
        assert_eq!(
            fetch
                .security_context
                .as_ref()
                .unwrap()
                .allow_privilege_escalation,
            Some(false)
        );
        let main = &spec.containers[0];
        assert!(
            !main
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == "source-secret"),
            "the builder image never sees the source secret"
        );
        assert_eq!(main.image.as_deref(), Some("reg/team/builder@sha256:1"));
        let sc = main.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert!(sc.capabilities.as_ref().unwrap().add.is_none());
        assert_eq!(spec.active_deadline_seconds, Some(600));
        assert_eq!(spec.node_selector.unwrap()["pool"], "builds");
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        let env: Vec<_> = main
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.clone())
            .collect();
        // The strategy's variables travel in BUILD, never as the container's own: a tenant's
        // variable cannot replace one the builder reads.
        assert!(!env.contains(&"A".to_string()) && env.contains(&"PUSH_DOCKERCFG_PATH".to_string()));
        assert!(env.contains(&"BUILD".to_string()));
        let volumes: Vec<_> = spec.volumes.unwrap().iter().map(|v| v.name.clone()).collect();
        assert!(volumes.contains(&"source-secret".into()) && volumes.contains(&"push-secret".into()));
        assert_eq!(pod.metadata.owner_references.unwrap()[0].kind, "Build");
    }

    fn env_of(pod: &Pod) -> BTreeMap<String, EnvVar> {
        pod.spec.as_ref().unwrap().containers[0]
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.clone()))
            .collect()
    }

    #[test]
    fn a_tenants_variables_never_replace_the_builders() {
        let mut b = build(BuildStrategyType::Source);
        let strategy = b.spec.common.strategy.source_strategy.as_mut().unwrap();
        strategy.env = vec![
            env("OUTPUT_IMAGE", "attacker.example.com/x:latest"),
            env("INSECURE_REGISTRIES", "attacker.example.com"),
            EnvVar {
                name: "TOKEN".into(),
                value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                    secret_key_ref: Some(k8s_openapi::api::core::v1::SecretKeySelector {
                        name: "s".into(),
                        key: "k".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        let pod = build_pod(&b, &BuildImages::default(), &inputs());
        let env = env_of(&pod);
        assert_eq!(env["OUTPUT_IMAGE"].value.as_deref(), Some("reg/team/app:latest"));
        assert!(!env.contains_key("INSECURE_REGISTRIES"));
        assert!(env["SLIPWAY_BUILD_ENV_TOKEN"].value_from.is_some());
        assert!(!env.contains_key("TOKEN"));
    }

    #[test]
    fn the_service_accounts_pull_secrets_serve_a_build_without_its_own() {
        let mut b = build(BuildStrategyType::Source);
        let inputs = PodInputs {
            account_pull_secrets: vec!["quay".into(), "ghcr".into()],
            registry_push_secret: None,
            ..PodInputs::default()
        };
        let pod = build_pod(&b, &BuildImages::default(), &inputs);
        let spec = pod.spec.as_ref().unwrap();
        let volume = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "pull-secret")
            .unwrap();
        let sources = volume.projected.as_ref().unwrap().sources.as_ref().unwrap();
        let paths: Vec<_> = sources
            .iter()
            .map(|s| {
                let s = s.secret.as_ref().unwrap();
                assert_eq!(s.optional, Some(true));
                (s.name.as_str(), s.items.as_ref().unwrap()[0].path.as_str())
            })
            .collect();
        assert_eq!(
            paths,
            [
                ("quay", "0.json"),
                ("quay", "0.cfg"),
                ("ghcr", "1.json"),
                ("ghcr", "1.cfg")
            ]
        );
        assert_eq!(
            env_of(&pod)[env::PULL_DOCKERCFG_PATH].value.as_deref(),
            Some(paths::PULL_SECRET)
        );
        // The strategy's own pullSecret wins: only it is mounted.
        b.spec
            .common
            .strategy
            .source_strategy
            .as_mut()
            .unwrap()
            .pull_secret = Some(LocalObjectReference::new("own"));
        let pod = build_pod(&b, &BuildImages::default(), &inputs);
        let volume = pod
            .spec
            .unwrap()
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "pull-secret")
            .unwrap();
        assert_eq!(volume.secret.unwrap().secret_name.as_deref(), Some("own"));
    }

    #[test]
    fn inputs_pull_secrets_and_force_pull_reach_the_pod() {
        let mut b = build(BuildStrategyType::Source);
        b.spec.common.source.secrets = vec![slipway_crds::build::SecretBuildSource {
            secret: LocalObjectReference::new("certs"),
            destination_dir: Some("etc".into()),
        }];
        b.spec.common.source.config_maps = vec![slipway_crds::build::ConfigMapBuildSource {
            config_map: LocalObjectReference::new("settings"),
            destination_dir: None,
        }];
        let strategy = b.spec.common.strategy.source_strategy.as_mut().unwrap();
        strategy.pull_secret = Some(LocalObjectReference::new("pull-creds"));
        strategy.force_pull = Some(true);
        let pod = build_pod(&b, &BuildImages::default(), &inputs());
        let spec = pod.spec.clone().unwrap();
        assert_eq!(spec.image_pull_secrets.unwrap()[0].name, "pull-creds");
        let main = &spec.containers[0];
        assert_eq!(main.image_pull_policy.as_deref(), Some("Always"));
        let mounts: BTreeMap<_, _> = main
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.mount_path.clone(), m.name.clone()))
            .collect();
        assert!(mounts.contains_key("/var/run/secrets/slipway.dev/inputs/secret-0"));
        assert!(mounts.contains_key("/var/run/secrets/slipway.dev/inputs/configmap-0"));
        assert!(mounts.contains_key(paths::PULL_SECRET));
        let volumes = spec.volumes.unwrap();
        let secret = volumes.iter().find(|v| v.name == "input-0").unwrap();
        // Optional: a missing one is reported by the builder, by name, not waited for.
        assert_eq!(secret.secret.as_ref().unwrap().optional, Some(true));
        assert_eq!(
            volumes
                .iter()
                .find(|v| v.name == "input-1")
                .unwrap()
                .config_map
                .as_ref()
                .unwrap()
                .name,
            "settings"
        );
        // Readable by the non-root fetch and builder users.
        let git = volumes.iter().find(|v| v.name == "source-secret").unwrap();
        assert_eq!(git.secret.as_ref().unwrap().default_mode, Some(0o444));
        assert_eq!(
            env_of(&pod)[env::PULL_DOCKERCFG_PATH].value.as_deref(),
            Some(paths::PULL_SECRET)
        );
    }

    #[test]
    fn a_custom_build_runs_the_custom_image_as_openshift_does() {
        let mut b = build(BuildStrategyType::Custom);
        b.spec.common.strategy.custom_strategy = Some(slipway_crds::build::CustomBuildStrategy {
            from: ImageReference::image_stream_tag("custom:latest"),
            env: vec![env("MODE", "fast")],
            pull_secret: None,
            force_pull: None,
            expose_docker_socket: None,
            secrets: vec![slipway_crds::build::SecretSpec {
                secret_source: LocalObjectReference { name: "certs".into() },
                mount_path: "/etc/custom-certs/".into(),
            }],
            build_api_version: None,
        });
        let pod = build_pod(&b, &BuildImages::default(), &inputs());
        let mounts = pod.spec.as_ref().unwrap().containers[0]
            .volume_mounts
            .clone()
            .unwrap();
        let certs = mounts
            .iter()
            .find(|m| m.mount_path == "/etc/custom-certs")
            .unwrap();
        let volume = pod
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == certs.name)
            .unwrap();
        assert_eq!(
            volume.secret.as_ref().unwrap().secret_name.as_deref(),
            Some("certs")
        );
        let spec = pod.spec.clone().unwrap();
        assert!(spec.init_containers.is_none());
        let main = &spec.containers[0];
        assert_eq!(main.image.as_deref(), Some("reg/team/builder@sha256:1"));
        assert!(main.command.is_none(), "the custom image's own entrypoint runs");
        let env = env_of(&pod);
        assert_eq!(env["MODE"].value.as_deref(), Some("fast"));
        assert_eq!(env["OUTPUT_REGISTRY"].value.as_deref(), Some("reg"));
        assert_eq!(
            env["SOURCE_URI"].value.as_deref(),
            Some("https://git.example.com/app.git")
        );
        assert!(env.contains_key("BUILD") && env.contains_key("PUSH_DOCKERCFG_PATH"));
        assert!(env.contains_key("SOURCE_SECRET_DIR"));
    }

    #[test]
    fn the_fetched_revision_comes_from_the_fetch_container() {
        let result = r#"{"stage":"fetch","success":true,"commit":"abc123","author":{"name":"A","email":"a@x"},"message":"first\n\nbody"}"#;
        let status = |name: &str, message: &str| ContainerStatus {
            name: name.into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 0,
                    message: Some(message.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut pod = Pod {
            status: Some(PodStatus {
                init_container_statuses: Some(vec![status("place-tools", ""), status("fetch", result)]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let revision = fetched_revision(&pod).unwrap();
        let git = revision.git.unwrap();
        assert_eq!(git.commit, "abc123");
        assert_eq!(git.author.unwrap().name, "A");
        assert_eq!(git.message, "first\n\nbody");
        // A failed fetch, or none yet, records nothing.
        pod.status = Some(PodStatus {
            init_container_statuses: Some(vec![status(
                "fetch",
                r#"{"stage":"fetch","success":false,"commit":"x"}"#,
            )]),
            ..Default::default()
        });
        assert!(fetched_revision(&pod).is_none());
        assert!(fetched_revision(&Pod::default()).is_none());
    }

    #[test]
    fn docker_pod_runs_buildah() {
        let images = BuildImages::default();
        let pod = build_pod(&build(BuildStrategyType::Docker), &images, &inputs());
        let main = &pod.spec.unwrap().containers[0];
        assert_eq!(main.image.as_deref(), Some(images.buildah.as_str()));
        assert_eq!(main.command.as_ref().unwrap()[1], "docker");
        let env = main.env.as_ref().unwrap();
        assert!(env.iter().all(|e| e.name != "INSECURE_REGISTRIES"));
        assert!(
            env.iter()
                .any(|e| e.name == "STORAGE_DRIVER" && e.value.as_deref() == Some("vfs"))
        );
        // Root in a user namespace of buildah's own: no SYS_ADMIN, not privileged.
        let sc = main.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, Some(0));
        assert_eq!(sc.privileged, None);
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert!(caps.add.as_ref().unwrap().iter().all(|c| c != "SYS_ADMIN"));
        assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "Unconfined");
        let storage = main
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == BUILDAH_STORAGE_DIR)
            .unwrap();
        assert_eq!(storage.name, "buildah-storage");

        let images = BuildImages {
            insecure_registries: vec!["10.0.0.1:5000".into(), "reg.local:80".into()],
            ..BuildImages::default()
        };
        let pod = build_pod(&build(BuildStrategyType::Source), &images, &inputs());
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        let insecure = env.iter().find(|e| e.name == "INSECURE_REGISTRIES").unwrap();
        assert_eq!(insecure.value.as_deref(), Some("10.0.0.1:5000,reg.local:80"));
    }

    #[test]
    fn the_integrated_registrys_ca_and_push_credentials_reach_the_build_container() {
        let images = BuildImages {
            registry_ca: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
            ..BuildImages::default()
        };
        let mut with_credentials = inputs();
        with_credentials.registry_push_secret = Some("builder-dockercfg".into());
        let push_secret_of = |build: &Build| {
            let pod = build_pod(build, &images, &with_credentials);
            let spec = pod.spec.unwrap();
            let env = spec.containers[0].env.clone().unwrap();
            let ca = env
                .iter()
                .find(|e| e.name == "REGISTRY_CA")
                .and_then(|e| e.value.clone());
            assert!(ca.unwrap().contains("MIIB"));
            let volume = spec
                .volumes
                .unwrap()
                .into_iter()
                .find(|v| v.name == "push-secret");
            let mounted = spec.containers[0]
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == "push-secret" && m.mount_path == PUSH_SECRET_DIR);
            assert_eq!(volume.is_some(), mounted);
            assert_eq!(
                volume.is_some(),
                env.iter().any(|e| e.name == "PUSH_DOCKERCFG_PATH")
            );
            volume.and_then(|v| v.secret).and_then(|s| s.secret_name)
        };
        let mut plain = build(BuildStrategyType::Source);
        plain.spec.common.output.push_secret = None;
        assert_eq!(push_secret_of(&plain).as_deref(), Some("builder-dockercfg"));
        // The build's own pushSecret wins over the account's registry credentials.
        let mut own = plain.clone();
        own.spec.common.output.push_secret = Some(LocalObjectReference::new("push-creds"));
        assert_eq!(push_secret_of(&own).as_deref(), Some("push-creds"));
    }

    fn pod(phase: &str, main: Option<(i32, &str, Option<&str>)>) -> Pod {
        let statuses = main.map(|(code, reason, message)| {
            vec![ContainerStatus {
                name: BUILD_CONTAINER.into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: code,
                        reason: Some(reason.into()),
                        message: message.map(String::from),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        });
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: statuses,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_phases_map_to_build_phases() {
        assert_eq!(observe_pod(None).reason.as_deref(), Some("BuildPodDeleted"));
        assert_eq!(observe_pod(None).phase, BuildPhase::Error);
        assert_eq!(
            observe_pod(Some(&pod("Pending", None))).phase,
            BuildPhase::Pending
        );
        assert_eq!(
            observe_pod(Some(&pod("Running", None))).phase,
            BuildPhase::Running
        );

        let ok = r#"{"stage":"s2i","success":true,"digest":"sha256:abc","commit":"c1"}"#;
        let done = observe_pod(Some(&pod("Succeeded", Some((0, "Completed", Some(ok))))));
        assert_eq!(done.phase, BuildPhase::Complete);
        assert_eq!(done.result.unwrap().digest.as_deref(), Some("sha256:abc"));
        // The build container's successful end, reported before the pod's phase, is the build's.
        let early = observe_pod(Some(&pod("Pending", Some((0, "Completed", Some(ok))))));
        assert_eq!(early.phase, BuildPhase::Complete);
        assert_eq!(early.result.unwrap().digest.as_deref(), Some("sha256:abc"));
        // Its failure waits for the pod's phase, which may say why (a deadline, an eviction).
        let bad_early = r#"{"stage":"s2i","success":false,"reason":"AssembleFailed"}"#;
        let waits = observe_pod(Some(&pod("Running", Some((1, "Error", Some(bad_early))))));
        assert_eq!(waits.phase, BuildPhase::Running);
        // A success result from a container that exited non-zero is no success.
        let odd = observe_pod(Some(&pod("Running", Some((1, "Error", Some(ok))))));
        assert_eq!(odd.phase, BuildPhase::Running);
        let mut running = pod("Pending", None);
        running.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: BUILD_CONTAINER.into(),
            state: Some(ContainerState {
                running: Some(Default::default()),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        assert_eq!(observe_pod(Some(&running)).phase, BuildPhase::Running);

        let bad = r#"{"stage":"s2i","success":false,"reason":"AssembleFailed","message":"assemble exited 1","logTail":["x"]}"#;
        let failed = observe_pod(Some(&pod("Failed", Some((1, "Error", Some(bad))))));
        assert_eq!(
            (failed.phase, failed.reason.as_deref(), failed.message.as_deref()),
            (
                BuildPhase::Failed,
                Some("AssembleFailed"),
                Some("assemble exited 1")
            )
        );

        let oom = observe_pod(Some(&pod("Failed", Some((137, "OOMKilled", None)))));
        assert_eq!(oom.reason.as_deref(), Some("OutOfMemoryKilled"));

        let mut evicted = pod("Failed", None);
        evicted.status.as_mut().unwrap().reason = Some("Evicted".into());
        assert_eq!(
            observe_pod(Some(&evicted)).reason.as_deref(),
            Some("BuildPodEvicted")
        );

        let garbage = observe_pod(Some(&pod("Failed", Some((1, "Error", Some("not json"))))));
        assert_eq!(garbage.reason.as_deref(), Some("GenericBuildFailed"));

        let mut deleting = pod("Running", None);
        deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        assert_eq!(observe_pod(Some(&deleting)).phase, BuildPhase::Error);
    }
}
