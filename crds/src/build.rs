//! BuildConfig and Build: OpenShift's build.openshift.io/v1 shapes under `slipway.dev/v1alpha1`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, ImageReference, LocalObjectReference, NameValue, Time};

// ---------------------------------------------------------------------------------------------
// BuildConfig
// ---------------------------------------------------------------------------------------------

/// A BuildConfig describes how to turn source into an image, and when to do it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "BuildConfig",
    namespaced,
    status = "BuildConfigStatus",
    shortname = "bc",
    category = "slipway",
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".spec.strategy.type",
        description = "Build strategy"
    ),
    printcolumn(
        name = "From",
        type_ = "string",
        json_path = ".spec.source.type",
        description = "Source type"
    ),
    printcolumn(
        name = "Latest",
        type_ = "integer",
        json_path = ".status.lastVersion",
        description = "Number of the latest build"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "BuildConfig describes how to build an image from source (source-to-image or a Dockerfile) and which events start a build. Field names and meanings follow OpenShift's build.openshift.io/v1 BuildConfig."
)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfigSpec {
    /// Events that start a build: GitHub, GitLab, Bitbucket, Gitea and Generic webhooks,
    /// ImageChange (the builder image moved) and ConfigChange (the first build).
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub triggers: Vec<BuildTriggerPolicy>,
    /// How builds of this BuildConfig run relative to each other: Serial (the default),
    /// Parallel, or SerialLatestOnly (queued older builds are cancelled).
    #[serde(default)]
    pub run_policy: BuildRunPolicy,
    #[serde(flatten)]
    pub common: CommonSpec,
    /// How many successful builds to keep (default 5). Older ones are pruned with their pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_builds_history_limit: Option<i32>,
    /// How many failed, errored or cancelled builds to keep (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_builds_history_limit: Option<i32>,
}

/// Observed state of a BuildConfig.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfigStatus {
    /// The number of the latest build instantiated from this BuildConfig. Raised with optimistic
    /// concurrency before a Build is created, so racing triggers never produce duplicates.
    #[serde(default)]
    pub last_version: i64,
    /// The most recent image change trigger resolution, per trigger.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub image_change_triggers: Vec<ImageChangeTriggerStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The git webhook deliveries that started builds lately, newest last: a delivery is recorded
    /// in the same write that takes its build number, so a redelivery — after its Build was
    /// pruned, or to another webhook replica at the same moment — starts no second build. Kept
    /// for [`WEBHOOK_DELIVERY_RETENTION_SECONDS`], at most [`MAX_WEBHOOK_DELIVERIES`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub webhook_deliveries: Vec<WebHookDeliveryRecord>,
}

/// How long a git webhook delivery is remembered (seven days: GitHub keeps deliveries for
/// redelivery three days, GitLab and Gitea retry within minutes).
pub const WEBHOOK_DELIVERY_RETENTION_SECONDS: i64 = 7 * 24 * 3600;
/// The most deliveries a BuildConfig remembers (the oldest is forgotten first).
pub const MAX_WEBHOOK_DELIVERIES: usize = 100;

/// A git webhook delivery that started a build.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebHookDeliveryRecord {
    /// The delivery's key: a hash of where it was sent and its signed body.
    #[schemars(length(max = 64))]
    pub key: String,
    /// The Build it started.
    #[schemars(length(max = 253))]
    pub build: String,
    /// When it was received.
    pub time: Time,
}

/// The last image an image change trigger acted on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageChangeTriggerStatus {
    /// The digest reference that last started a build.
    #[serde(default)]
    pub last_triggered_image_id: String,
    /// The ImageStreamTag the trigger follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ImageReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered_time: Option<Time>,
}

/// How concurrent builds of one BuildConfig are scheduled.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum BuildRunPolicy {
    /// One build at a time, lowest number first.
    #[default]
    Serial,
    /// Builds run as soon as they are created.
    Parallel,
    /// One build at a time; when a build finishes, only the newest queued build runs and the
    /// older queued ones are cancelled.
    SerialLatestOnly,
}

impl BuildRunPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Serial => "Serial",
            Self::Parallel => "Parallel",
            Self::SerialLatestOnly => "SerialLatestOnly",
        }
    }
}

/// The part of a build's description shared by BuildConfig and Build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonSpec {
    /// The service account the build pod runs as (default `builder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Where the source comes from.
    #[serde(default)]
    pub source: BuildSource,
    /// The revision a build was started for (the commit, author and message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<SourceRevision>,
    /// How the image is built.
    pub strategy: BuildStrategy,
    /// Where the image goes.
    #[serde(default)]
    pub output: BuildOutput,
    /// Compute resources of the build pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// A script or command run in the new image after assemble; a failure fails the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_commit: Option<BuildPostCommitSpec>,
    /// Seconds a build may run before it is failed (counted from the pod's start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub completion_deadline_seconds: Option<i64>,
    /// Node selector of the build pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
}

/// What kind of source a build starts from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BuildSourceType {
    /// A git repository.
    Git,
    /// An inline Dockerfile (`source.dockerfile`).
    Dockerfile,
    /// Content uploaded by the client at build start.
    Binary,
    /// Files taken from other images.
    Image,
    /// No source.
    #[default]
    None,
}

/// Where a build's source comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'Git' || has(self.git)").message("source.git is required when source.type is Git"))]
#[x_kube(validation = Rule::new("self.type != 'Dockerfile' || has(self.dockerfile)").message("source.dockerfile is required when source.type is Dockerfile"))]
pub struct BuildSource {
    /// Git, Dockerfile, Binary, Image or None.
    #[serde(default, rename = "type")]
    pub type_: BuildSourceType,
    /// Binary source uploaded at build start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinaryBuildSource>,
    /// An inline Dockerfile; it replaces the one in the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 61440))]
    pub dockerfile: Option<String>,
    /// The git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitBuildSource>,
    /// Files copied from other images into the build context.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub images: Vec<ImageSource>,
    /// The subdirectory of the repository that holds the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.split('/').exists(p, p == '..')").message("contextDir must be a relative path inside the repository"))]
    #[schemars(length(max = 4096))]
    pub context_dir: Option<String>,
    /// The Secret with the credentials to fetch the source: `username`/`password` or `password`
    /// (a token) for https, `ssh-privatekey` (and `known_hosts`) for ssh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_secret: Option<LocalObjectReference>,
    /// Secrets made available to the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub secrets: Vec<SecretBuildSource>,
    /// ConfigMaps made available to the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub config_maps: Vec<ConfigMapBuildSource>,
}

/// Binary source options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BinaryBuildSource {
    /// Store the uploaded content under this file name instead of extracting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_file: Option<String>,
}

/// A git repository to build from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitBuildSource {
    /// The repository URL: https://, http://, ssh://, git@host:path or file://.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^(https?|ssh|git|file)://') || self.matches('^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:')").message("uri must be an https, http, ssh, git or file URL, or user@host:path"))]
    pub uri: String,
    /// The branch, tag or commit to build (the remote's default branch when empty).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub ref_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
}

/// Files copied out of an image into the build context.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSource {
    pub from: ImageReference,
    #[serde(default, rename = "as", skip_serializing_if = "Vec::is_empty")]
    pub as_: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<ImageSourcePath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectReference>,
}

/// One path copied out of an image.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSourcePath {
    /// Absolute path in the image.
    #[schemars(length(min = 1))]
    pub source_path: String,
    /// Relative directory in the build context.
    #[serde(default)]
    pub destination_dir: String,
}

/// A Secret made available to the build.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretBuildSource {
    pub secret: LocalObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_dir: Option<String>,
}

/// A ConfigMap made available to the build.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapBuildSource {
    pub config_map: LocalObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_dir: Option<String>,
}

/// The revision of the source a build used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    /// Always Git.
    #[serde(default = "git_type", rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSourceRevision>,
}

fn git_type() -> String {
    "Git".into()
}

/// The CEL rule that keeps a Build's spec as it was made, but for recording the fetched revision
/// once: every other field of the spec compared on its own (CEL cannot compare an object but
/// one field).
fn build_spec_rule() -> String {
    const OTHERS: [&str; 9] = [
        "completionDeadlineSeconds",
        "nodeSelector",
        "output",
        "postCommit",
        "resources",
        "serviceAccount",
        "source",
        "strategy",
        "triggeredBy",
    ];
    let unchanged: Vec<String> = OTHERS
        .iter()
        .map(|f| {
            format!(
                "has(self.spec.{f}) == has(oldSelf.spec.{f}) && (!has(self.spec.{f}) || self.spec.{f} == oldSelf.spec.{f})"
            )
        })
        .collect();
    format!(
        "self.spec == oldSelf.spec || (!has(oldSelf.spec.revision) && has(self.spec.revision) && {})",
        unchanged.join(" && ")
    )
}

/// A git commit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSourceRevision {
    /// The commit id.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<SourceControlUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committer: Option<SourceControlUser>,
    /// The first lines of the commit message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 4096))]
    pub message: String,
}

/// Who made a commit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SourceControlUser {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
}

/// The build strategies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum BuildStrategyType {
    /// Source-to-image: the builder image assembles the source into a new image.
    #[default]
    Source,
    /// A Dockerfile build (through buildah).
    Docker,
    /// A custom builder image, run with the Build in `BUILD`.
    Custom,
    /// A Jenkins pipeline (accepted for compatibility; Slipway does not run it).
    #[serde(rename = "JenkinsPipeline")]
    JenkinsPipeline,
}

/// How the image is built.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'Source' || has(self.sourceStrategy)").message("sourceStrategy is required when strategy.type is Source"))]
#[x_kube(validation = Rule::new("self.type == 'Source' || !has(self.sourceStrategy)").message("sourceStrategy may only be set when strategy.type is Source"))]
#[x_kube(validation = Rule::new("self.type == 'Docker' || !has(self.dockerStrategy)").message("dockerStrategy may only be set when strategy.type is Docker"))]
#[x_kube(validation = Rule::new("self.type != 'Custom' || has(self.customStrategy)").message("customStrategy is required when strategy.type is Custom"))]
pub struct BuildStrategy {
    /// Source, Docker, Custom or JenkinsPipeline.
    #[serde(rename = "type")]
    pub type_: BuildStrategyType,
    /// Options of a Dockerfile build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_strategy: Option<DockerBuildStrategy>,
    /// Options of a source-to-image build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_strategy: Option<SourceBuildStrategy>,
    /// Options of a custom build (compatibility only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_strategy: Option<CustomBuildStrategy>,
    /// Options of a Jenkins pipeline (compatibility only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jenkins_pipeline_strategy: Option<JenkinsPipelineBuildStrategy>,
}

/// Source-to-image options.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceBuildStrategy {
    /// The builder image.
    pub from: ImageReference,
    /// Credentials to pull the builder image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectReference>,
    /// Environment of assemble, and of the built image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub env: Vec<EnvVar>,
    /// A URL of a directory with the s2i scripts, overriding the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripts: Option<String>,
    /// Reuse the previous build's artifacts (save-artifacts) in this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<bool>,
    /// Pull the builder image even when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_pull: Option<bool>,
}

/// Dockerfile build options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerBuildStrategy {
    /// Replaces the Dockerfile's (last) FROM image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ImageReference>,
    /// Credentials to pull the base image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectReference>,
    /// Build without the layer cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cache: Option<bool>,
    /// Environment added to the Dockerfile (as ENV after its FROM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub env: Vec<EnvVar>,
    /// Pull the base image even when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_pull: Option<bool>,
    /// The Dockerfile's path relative to the context directory (default `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.split('/').exists(p, p == '..')").message("dockerfilePath must be a relative path inside the context directory"))]
    #[schemars(length(max = 4096))]
    pub dockerfile_path: Option<String>,
    /// `--build-arg` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub build_args: Vec<EnvVar>,
    /// Layer squashing policy (None, SkipLayers, SkipLayersAndWarn); kept for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_optimization_policy: Option<String>,
}

/// A custom build: the custom builder image runs with the Build in `BUILD`, the push secret
/// mounted (`PUSH_DOCKERCFG_PATH`) and the source secret mounted, as OpenShift runs it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomBuildStrategy {
    /// The custom builder image.
    pub from: ImageReference,
    /// Environment of the custom builder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub env: Vec<EnvVar>,
    /// Credentials to pull the custom builder image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectReference>,
    /// Pull the custom builder image even when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_pull: Option<bool>,
    /// Refused: Slipway never mounts a container runtime socket into a build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_docker_socket: Option<bool>,
    /// Secrets mounted into the custom builder at their `mountPath`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub secrets: Vec<SecretSpec>,
    /// The Build API version the custom builder expects in `BUILD`.
    #[serde(default, rename = "buildAPIVersion", skip_serializing_if = "Option::is_none")]
    pub build_api_version: Option<String>,
}

/// A Secret mounted into a custom builder.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    pub secret_source: LocalObjectReference,
    #[schemars(length(max = 4096))]
    pub mount_path: String,
}

/// A Jenkins pipeline (accepted so OpenShift objects load; not run by Slipway).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JenkinsPipelineBuildStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jenkinsfile_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jenkinsfile: Option<String>,
}

/// Where the built image goes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutput {
    /// An ImageStreamTag (`app:latest`) or a DockerImage pull spec; no push when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.kind != 'ImageStreamImage'").message("output.to must be an ImageStreamTag or a DockerImage"))]
    pub to: Option<ImageReference>,
    /// Credentials to push (a docker config JSON Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret: Option<LocalObjectReference>,
    /// Labels added to the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub image_labels: Vec<NameValue>,
}

/// The post-commit hook: `script` runs with `/bin/sh -c`; `command` and `args` run directly.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.script) && has(self.command))").message("postCommit takes script or command, not both"))]
pub struct BuildPostCommitSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// The kinds of event that start a build.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum BuildTriggerType {
    GitHub,
    GitLab,
    Bitbucket,
    /// Gitea and Forgejo (a Slipway addition).
    Gitea,
    Generic,
    ImageChange,
    ConfigChange,
}

/// One event that starts a build. The sub-object that goes with `type` must be set, and no other.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(self.type == 'GitHub') == has(self.github)").message("github is set exactly when type is GitHub"))]
#[x_kube(validation = Rule::new("(self.type == 'GitLab') == has(self.gitlab)").message("gitlab is set exactly when type is GitLab"))]
#[x_kube(validation = Rule::new("(self.type == 'Bitbucket') == has(self.bitbucket)").message("bitbucket is set exactly when type is Bitbucket"))]
#[x_kube(validation = Rule::new("(self.type == 'Gitea') == has(self.gitea)").message("gitea is set exactly when type is Gitea"))]
#[x_kube(validation = Rule::new("(self.type == 'Generic') == has(self.generic)").message("generic is set exactly when type is Generic"))]
#[x_kube(validation = Rule::new("self.type == 'ImageChange' || !has(self.imageChange)").message("imageChange may only be set when type is ImageChange"))]
pub struct BuildTriggerPolicy {
    #[serde(rename = "type")]
    pub type_: BuildTriggerType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<WebHookTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<WebHookTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitbucket: Option<WebHookTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitea: Option<WebHookTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<WebHookTrigger>,
    /// With no `from`, the trigger follows the strategy's builder image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_change: Option<ImageChangeTrigger>,
}

/// A webhook trigger. Slipway verifies deliveries with the secret in the named Secret (key
/// `WebHookSecretKey`); the inline `secret` of OpenShift is accepted for compatibility.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebHookTrigger {
    /// Deprecated in OpenShift: an inline secret. Prefer `secretReference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The Secret holding the webhook secret under the key `WebHookSecretKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_reference: Option<LocalObjectReference>,
    /// Generic webhooks only: let the payload set build environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_env: Option<bool>,
    /// Refs that start a build (a Slipway addition): branch names or globs such as `release/*`,
    /// and `refs/tags/*` for tags. Empty means the BuildConfig's `source.git.ref`. At most 32
    /// patterns of at most 256 characters each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
    pub refs: Vec<String>,
}

/// Rebuild when the builder image (or `from`) moves to a new digest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageChangeTrigger {
    /// Deprecated in OpenShift; the status records it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered_image_id: Option<String>,
    /// The ImageStreamTag to follow; the strategy's `from` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ImageReference>,
    /// Stop reacting to image changes without removing the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Build
// ---------------------------------------------------------------------------------------------

/// A Build is one run of a BuildConfig. Its spec is fixed at creation.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "Build",
    namespaced,
    status = "BuildStatus",
    category = "slipway",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.strategy.type", description = "Build strategy"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase", description = "Build phase"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason", description = "Why the build is in this phase"),
    printcolumn(name = "Started", type_ = "date", json_path = ".status.startTimestamp", description = "When the build pod started"),
    printcolumn(name = "Duration", type_ = "string", json_path = ".status.elapsed", description = "How long the build ran"),
    printcolumn(name = "Image", type_ = "string", json_path = ".status.outputDockerImageReference", priority = 1),
    doc = "Build is one run of a BuildConfig (or a standalone build): source, strategy and output fixed at creation, and the phase, timing and output digest in status. Field names follow OpenShift's build.openshift.io/v1 Build.",
    // The one change allowed: the commit a build fetched is recorded once in spec.revision (as
    // OpenShift's builder does), when the Build was made without one, and nothing else changes.
    validation = Rule::new(build_spec_rule()).message("a Build's spec cannot change after creation (except to record the fetched revision once)")
)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    #[serde(flatten)]
    pub common: CommonSpec,
    /// The events that caused this build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub triggered_by: Vec<BuildTriggerCause>,
}

/// Why a build started.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildTriggerCause {
    /// A human-readable description, e.g. "GitHub WebHook" or "Manually triggered".
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_web_hook: Option<WebHookCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_web_hook: Option<WebHookCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab_web_hook: Option<WebHookCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitbucket_web_hook: Option<WebHookCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitea_web_hook: Option<WebHookCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_change_build: Option<ImageChangeCause>,
}

/// The webhook delivery that started a build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebHookCause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<SourceRevision>,
    /// The provider's delivery id, used to recognise redeliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// The image change that started a build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageChangeCause {
    #[serde(default, rename = "imageID")]
    pub image_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ref: Option<ImageReference>,
}

/// The phases of a build. Complete, Failed, Error and Cancelled are terminal.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum BuildPhase {
    /// Created, waiting for its turn under the run policy.
    #[default]
    New,
    /// The pod exists and is not running yet.
    Pending,
    Running,
    Complete,
    /// The build ran and failed (the builder's reason says why).
    Failed,
    /// Something outside the build went wrong (e.g. its pod was deleted).
    Error,
    Cancelled,
}

impl BuildPhase {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Failed | Self::Error | Self::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Complete => "Complete",
            Self::Failed => "Failed",
            Self::Error => "Error",
            Self::Cancelled => "Cancelled",
        }
    }
}

/// Observed state of a build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatus {
    #[serde(default)]
    pub phase: BuildPhase,
    /// Set to true to cancel the build.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// A CamelCase reason for the phase, e.g. AssembleFailed or BuildPodDeleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    /// Run time in nanoseconds, as in OpenShift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Run time for people, e.g. `1m12s` (a Slipway addition, for the printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed: Option<String>,
    /// The image the build pushed, by tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_docker_image_reference: Option<String>,
    /// The BuildConfig this build came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<crate::common::ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<BuildStatusOutput>,
    /// Per-stage timings reported by the builder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageInfo>,
    /// The last lines of the build log when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_snippet: Option<String>,
    /// The builder image, resolved to a digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// What a build produced.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatusOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<BuildStatusOutputTo>,
}

/// The pushed image's digest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatusOutputTo {
    #[serde(default)]
    pub image_digest: String,
}

/// One stage of a build and how long it took.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageInfo {
    /// FetchInputs, PullImages, Build or PushImage, as in OpenShift.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default)]
    pub duration_milliseconds: i64,
}

/// Labels and annotations builds carry, as in OpenShift under the `slipway.dev/` prefix.
pub mod labels {
    /// The BuildConfig a build belongs to (label).
    pub const BUILD_CONFIG: &str = "slipway.dev/build-config.name";
    /// The run policy of the BuildConfig, copied onto the build (label).
    pub const BUILD_RUN_POLICY: &str = "slipway.dev/build.start-policy";
    /// The build number (annotation).
    pub const BUILD_NUMBER: &str = "slipway.dev/build.number";
    /// The build a pod runs (label and annotation).
    pub const BUILD: &str = "slipway.dev/build.name";
    /// A paused BuildConfig refuses new builds (annotation, value "true").
    pub const BUILD_CONFIG_PAUSED: &str = "slipway.dev/build-config.paused";
    /// A Secret that holds a webhook trigger's secret (label, value "true"; `slip set triggers`
    /// sets it). The webhook server keeps such Secrets in a watch-fed cache; others it reads from
    /// the API server at every delivery.
    pub const WEBHOOK_SECRET: &str = "slipway.dev/webhook-secret";
}

// ---------------------------------------------------------------------------------------------
// Instantiation: the pure half (the operator's `build::instantiate` does the racing half)
// ---------------------------------------------------------------------------------------------

/// What a new build of a BuildConfig is asked for: why, and what it overrides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildRequest {
    /// Why the build starts (webhook, image change, config change, manual).
    pub cause: BuildTriggerCause,
    /// Build this revision (a webhook's head commit, `start-build --commit`) instead of the ref.
    pub revision: Option<SourceRevision>,
    /// Extra strategy environment (`start-build -e`); replaces variables of the same name.
    pub env: Vec<EnvVar>,
    /// Extra Docker build arguments (`start-build --build-arg`); replace those of the same name.
    pub build_args: Vec<EnvVar>,
    /// Extra labels on the Build (the webhook marks deliveries with one).
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the Build.
    pub annotations: BTreeMap<String, String>,
    /// A binary build (`slip start-build --from-*`): the Build's source is the upload, whatever
    /// the BuildConfig's (its git source, if any, is left out of the Build).
    pub binary: Option<BinaryBuildSource>,
}

/// Whether builds of `config` need an upload: its source is binary. Such a BuildConfig is built
/// only by `slip start-build --from-*`, never by a trigger or a webhook (there is nothing to
/// build without the upload), as in OpenShift.
pub fn needs_binary_input(config: &BuildConfig) -> bool {
    let source = &config.spec.common.source;
    source.binary.is_some() || source.type_ == BuildSourceType::Binary
}

/// Environment variables that the builder, the tools it runs (git, buildah, the dynamic loader)
/// or the platform read, which a generic webhook's caller may never set through `allowEnv`: with
/// them a caller could redirect the output image, trust an attacker's registry or swap the
/// scripts a build runs. Compared without regard to case (`http_proxy` is read as `HTTP_PROXY`
/// is). A unit test of the builder checks that each of its flags' variables is here, and one
/// below that each variable the operator gives a build pod is.
pub const RESERVED_ENV: &[&str] = &[
    "BUILD",
    "BUILDER_IMAGE",
    "OUTPUT_IMAGE",
    "FROM_IMAGE",
    "DOCKERFILE_PATH",
    "NO_CACHE",
    "LAYER_CACHE",
    "INCREMENTAL",
    "INSECURE_REGISTRIES",
    "REGISTRY_CA",
    "PUSH_DOCKERCFG_PATH",
    "PULL_DOCKERCFG_PATH",
    "FETCH_RECORD",
    "BINARY_MAX_BYTES",
    "BINARY_WAIT_SECONDS",
    "SOURCE_IMAGES",
    "OUTPUT_REGISTRY",
    "SCRIPTS_URL",
    "TOOLS_DIR",
    "PLACE_TOOLS",
    "RESULT_FILE",
    "STORAGE_DRIVER",
    "REGISTRY_AUTH_FILE",
    "DOCKER_CONFIG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "PATH",
    "HOME",
    "TMPDIR",
];

/// Prefixes of [`RESERVED_ENV`]: every variable starting with one is reserved too.
pub const RESERVED_ENV_PREFIXES: &[&str] = &[
    "SOURCE_",
    "BUILDAH_",
    "CONTAINERS_",
    "POST_COMMIT_",
    "SSL_CERT_",
    "GIT_",
    "LD_",
    "SLIPWAY_",
];

/// Whether `name` is reserved ([`RESERVED_ENV`], [`RESERVED_ENV_PREFIXES`]).
pub fn is_reserved_env(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    RESERVED_ENV.contains(&upper.as_str()) || RESERVED_ENV_PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// The name of build number `version` of `config`: `<config>-<version>`, as in OpenShift.
pub fn build_name(config: &str, version: i64) -> String {
    format!("{config}-{version}")
}

/// Whether a BuildConfig is paused (annotation `slipway.dev/build-config.paused: "true"`).
pub fn is_paused(config: &BuildConfig) -> bool {
    config
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::BUILD_CONFIG_PAUSED))
        .is_some_and(|v| v == "true")
}

/// Build number `version` of `config`, with the request's overrides applied: labelled with its
/// config and run policy, annotated with its number, owned by the config.
pub fn new_build(config: &BuildConfig, version: i64, request: &BuildRequest) -> Build {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    let config_name = config.metadata.name.clone().unwrap_or_default();
    let mut common = config.spec.common.clone();
    if let Some(revision) = &request.revision {
        common.revision = Some(revision.clone());
    }
    if let Some(binary) = &request.binary {
        common.source.type_ = BuildSourceType::Binary;
        common.source.git = None;
        common.source.binary = Some(binary.clone());
    }
    fn merge(into: &mut Vec<EnvVar>, extra: &[EnvVar]) {
        for var in extra {
            into.retain(|v| v.name != var.name);
            into.push(var.clone());
        }
    }
    if let Some(source) = common.strategy.source_strategy.as_mut() {
        merge(&mut source.env, &request.env);
    }
    if let Some(docker) = common.strategy.docker_strategy.as_mut() {
        merge(&mut docker.env, &request.env);
        merge(&mut docker.build_args, &request.build_args);
    }
    let mut build_labels = request.labels.clone();
    build_labels.insert(labels::BUILD_CONFIG.into(), config_name.clone());
    build_labels.insert(
        labels::BUILD_RUN_POLICY.into(),
        config.spec.run_policy.as_str().into(),
    );
    let mut annotations = request.annotations.clone();
    annotations.insert(labels::BUILD_NUMBER.into(), version.to_string());
    annotations.insert(labels::BUILD_CONFIG.into(), config_name.clone());
    let owner = config.metadata.uid.as_ref().map(|uid| OwnerReference {
        api_version: crate::API_VERSION.into(),
        kind: "BuildConfig".into(),
        name: config_name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    Build {
        metadata: ObjectMeta {
            name: Some(build_name(&config_name, version)),
            namespace: config.metadata.namespace.clone(),
            labels: Some(build_labels),
            annotations: Some(annotations),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: BuildSpec {
            common,
            triggered_by: vec![request.cause.clone()],
        },
        status: Some(BuildStatus {
            config: Some(crate::common::ObjectReference {
                api_version: Some(crate::API_VERSION.into()),
                kind: Some("BuildConfig".into()),
                namespace: config.metadata.namespace.clone(),
                name: Some(config_name),
                uid: config.metadata.uid.clone(),
            }),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod instantiate_tests {
    use super::*;

    fn config() -> BuildConfig {
        let mut bc = BuildConfig::new("app", BuildConfigSpec::default());
        bc.metadata.namespace = Some("team".into());
        bc.metadata.uid = Some("uid-1".into());
        bc.spec.run_policy = BuildRunPolicy::SerialLatestOnly;
        bc.spec.common.strategy.type_ = BuildStrategyType::Source;
        bc.spec.common.strategy.source_strategy = Some(SourceBuildStrategy {
            env: vec![EnvVar {
                name: "A".into(),
                value: Some("config".into()),
                ..Default::default()
            }],
            from: crate::common::ImageReference::image_stream_tag("builder:latest"),
            pull_secret: None,
            scripts: None,
            incremental: None,
            force_pull: None,
        });
        bc
    }

    #[test]
    fn new_build_is_named_labelled_owned_and_overridden() {
        let request = BuildRequest {
            cause: BuildTriggerCause {
                message: "Manually triggered".into(),
                ..Default::default()
            },
            revision: Some(SourceRevision {
                type_: "Git".into(),
                git: Some(GitSourceRevision {
                    commit: "abc".into(),
                    ..Default::default()
                }),
            }),
            env: vec![EnvVar {
                name: "A".into(),
                value: Some("request".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let build = new_build(&config(), 7, &request);
        assert_eq!(build.metadata.name.as_deref(), Some("app-7"));
        assert_eq!(build.metadata.namespace.as_deref(), Some("team"));
        let l = build.metadata.labels.as_ref().unwrap();
        assert_eq!(l[labels::BUILD_CONFIG], "app");
        assert_eq!(l[labels::BUILD_RUN_POLICY], "SerialLatestOnly");
        assert_eq!(
            build.metadata.annotations.as_ref().unwrap()[labels::BUILD_NUMBER],
            "7"
        );
        let owner = &build.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("BuildConfig", "uid-1")
        );
        let env = &build.spec.common.strategy.source_strategy.as_ref().unwrap().env;
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].value.as_deref(), Some("request"));
        assert_eq!(
            build
                .spec
                .common
                .revision
                .as_ref()
                .unwrap()
                .git
                .as_ref()
                .unwrap()
                .commit,
            "abc"
        );
        assert_eq!(build.spec.triggered_by[0].message, "Manually triggered");
    }

    #[test]
    fn paused_only_when_the_annotation_says_true() {
        let mut bc = config();
        assert!(!is_paused(&bc));
        bc.metadata.annotations =
            Some([(labels::BUILD_CONFIG_PAUSED.to_string(), "false".to_string())].into());
        assert!(!is_paused(&bc));
        bc.metadata.annotations =
            Some([(labels::BUILD_CONFIG_PAUSED.to_string(), "true".to_string())].into());
        assert!(is_paused(&bc));
    }
}

#[cfg(test)]
mod reserved_env_tests {
    use super::*;

    #[test]
    fn reserved_names_and_prefixes_whatever_the_case() {
        for name in [
            "OUTPUT_IMAGE",
            "output_image",
            "http_proxy",
            "SOURCE_URI",
            "BUILDAH_ISOLATION",
            "LD_PRELOAD",
            "PATH",
        ] {
            assert!(is_reserved_env(name), "{name}");
        }
        for name in ["GREETING", "NODE_ENV", "APP_PATH", "OUTPUT"] {
            assert!(!is_reserved_env(name), "{name}");
        }
    }

    /// Each variable the operator gives a build pod (`env("NAME", ...)` and the proxy settings in
    /// operator/src/build/pod.rs) is reserved: the list cannot drift from what the pod carries.
    #[test]
    fn every_variable_of_the_build_pod_is_reserved() {
        let pod = include_str!("../../operator/src/build/pod.rs");
        let production = pod.split("#[cfg(test)]").next().unwrap_or_default();
        let mut names = Vec::new();
        for piece in production.split("(\"").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            if name.len() > 1 && piece[name.len()..].starts_with('"') {
                names.push(name);
            }
        }
        assert!(
            names.iter().any(|n| n == "SOURCE_URI"),
            "the scan found {names:?}"
        );
        // The contract's names (the pod sets them through `contract::env`).
        names.extend(crate::contract::env::ALL.iter().map(|n| n.to_string()));
        assert!(
            names.iter().any(|n| n == "HTTP_PROXY"),
            "the scan found {names:?}"
        );
        let missing: Vec<_> = names.iter().filter(|n| !is_reserved_env(n)).collect();
        assert!(missing.is_empty(), "not in RESERVED_ENV: {missing:?}");
    }
}
