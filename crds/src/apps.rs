//! DeploymentConfig: OpenShift's apps.openshift.io/v1 shape under `slipway.dev/v1alpha1`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, ImageReference};

/// A DeploymentConfig rolls out versions of a pod template, one ReplicaSet per version.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "DeploymentConfig",
    namespaced,
    status = "DeploymentConfigStatus",
    shortname = "dc",
    category = "slipway",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Revision",
        type_ = "integer",
        json_path = ".status.latestVersion",
        description = "The latest version"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Replicas asked for"
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Replicas that exist"
    ),
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status",
        description = "Whether enough replicas are available"
    ),
    printcolumn(
        name = "Triggered By",
        type_ = "string",
        json_path = ".status.triggerSummary",
        description = "What starts a rollout"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "DeploymentConfig rolls out versions of a pod template with the Rolling or Recreate strategy and lifecycle hooks, started by config and image changes. Field names follow OpenShift's apps.openshift.io/v1 DeploymentConfig."
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.selector) || !has(self.template) || self.selector.all(k, has(self.template.metadata) && has(self.template.metadata.labels) && k in self.template.metadata.labels && self.template.metadata.labels[k] == self.selector[k])").message("selector must match the labels of the pod template"))]
#[x_kube(validation = Rule::new("!has(self.triggers) || !self.triggers.exists(t, t.type == 'ImageChange') || has(self.template)").message("an ImageChange trigger needs a pod template whose containers it updates"))]
pub struct DeploymentConfigSpec {
    /// How a new version replaces the old one (default Rolling).
    #[serde(default)]
    pub strategy: DeploymentStrategy,
    /// Seconds a new pod must be ready before it counts as available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
    /// What starts a new version: ConfigChange (the template changed) and ImageChange (a tag
    /// moved). Left out, it means one ConfigChange trigger, as in OpenShift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub triggers: Option<Vec<DeploymentTriggerPolicy>>,
    /// Desired number of pods.
    #[serde(default = "one")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Old versions to keep for rollback (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub revision_history_limit: Option<i32>,
    /// Scale to zero after every successful rollout (for testing the rollout itself).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// No new rollouts while paused; triggers are remembered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Labels that select this DeploymentConfig's pods; must match the template's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::common::label_selector_schema")]
    pub selector: Option<BTreeMap<String, String>>,
    /// The pod template of every version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
}

fn one() -> i32 {
    1
}

/// The rollout strategies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum DeploymentStrategyType {
    /// Scale the old version down while the new one comes up, within maxSurge/maxUnavailable.
    #[default]
    Rolling,
    /// Stop the old version entirely, then start the new one.
    Recreate,
    /// A custom deployer image (accepted for compatibility; Slipway does not run it).
    Custom,
}

/// How a new version replaces the old one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'Rolling' || !has(self.rollingParams)").message("rollingParams may only be set when strategy.type is Rolling"))]
#[x_kube(validation = Rule::new("self.type == 'Recreate' || !has(self.recreateParams)").message("recreateParams may only be set when strategy.type is Recreate"))]
pub struct DeploymentStrategy {
    /// Rolling (the default), Recreate or Custom.
    #[serde(default, rename = "type")]
    pub type_: DeploymentStrategyType,
    /// Options of a custom deployer (compatibility only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_params: Option<CustomDeploymentStrategyParams>,
    /// Options of the Recreate strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreate_params: Option<RecreateDeploymentStrategyParams>,
    /// Options of the Rolling strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_params: Option<RollingDeploymentStrategyParams>,
    /// Resources of hook pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Labels added to hook pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations added to hook pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Seconds a rollout may take before it is failed (besides the strategy's timeoutSeconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,
}

/// Custom deployer (compatibility only).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomDeploymentStrategyParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// Recreate: pre hook, old version to zero, mid hook, new version up, post hook.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecreateDeploymentStrategyParams {
    /// Seconds to wait for the new version's pods (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<LifecycleHook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<LifecycleHook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<LifecycleHook>,
}

/// Rolling: bounded surge and unavailability while versions swap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.maxSurge) && has(self.maxUnavailable) && (self.maxSurge == 0 || self.maxSurge == '0%') && (self.maxUnavailable == 0 || self.maxUnavailable == '0%'))").message("maxSurge and maxUnavailable cannot both be zero"))]
pub struct RollingDeploymentStrategyParams {
    /// Seconds between scaling steps (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub update_period_seconds: Option<i64>,
    /// Seconds between checks of the new pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub interval_seconds: Option<i64>,
    /// Seconds the whole rollout may take (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i64>,
    /// Pods that may be unavailable during the rollout: a number or a percentage (default 25%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("type(self) == int ? self >= 0 : self.matches('^[0-9]+%$')").message("maxUnavailable must be a non-negative number or a percentage such as 25%"))]
    pub max_unavailable: Option<IntOrString>,
    /// Pods above the desired count allowed during the rollout: a number or a percentage
    /// (default 25%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("type(self) == int ? self >= 0 : self.matches('^[0-9]+%$')").message("maxSurge must be a non-negative number or a percentage such as 25%"))]
    pub max_surge: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<LifecycleHook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<LifecycleHook>,
}

/// What happens when a hook fails.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum LifecycleHookFailurePolicy {
    /// Fail the rollout and restore the previous version.
    #[default]
    Abort,
    /// Run the hook again until it succeeds or the rollout times out.
    Retry,
    /// Carry on.
    Ignore,
}

/// A step run at a point of the rollout: a pod (`execNewPod`) or tagging images (`tagImages`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.execNewPod) != (has(self.tagImages) && size(self.tagImages) > 0)").message("a hook takes exactly one of execNewPod or tagImages"))]
pub struct LifecycleHook {
    pub failure_policy: LifecycleHookFailurePolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_new_pod: Option<ExecNewPodHook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub tag_images: Vec<TagImageHook>,
}

/// Run a command in a new pod made from one of the template's containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecNewPodHook {
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// The template's container whose image, env and volume mounts the hook pod takes.
    #[schemars(length(min = 1, max = 63))]
    pub container_name: String,
    /// Volumes of the template the hook pod mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
}

/// Tag the image of one of the template's containers into an ImageStreamTag.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagImageHook {
    #[schemars(length(min = 1, max = 63))]
    pub container_name: String,
    #[x_kube(validation = Rule::new("self.kind == 'ImageStreamTag'").message("tagImages.to must be an ImageStreamTag"))]
    pub to: ImageReference,
}

/// The trigger kinds of a DeploymentConfig.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum DeploymentTriggerType {
    ConfigChange,
    ImageChange,
}

/// One trigger. ImageChange carries `imageChangeParams`; ConfigChange carries nothing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(self.type == 'ImageChange') == has(self.imageChangeParams)").message("imageChangeParams is set exactly when type is ImageChange"))]
pub struct DeploymentTriggerPolicy {
    #[serde(rename = "type")]
    pub type_: DeploymentTriggerType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_change_params: Option<DeploymentTriggerImageChangeParams>,
}

/// Which containers follow which ImageStreamTag.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentTriggerImageChangeParams {
    /// Roll out when the tag moves; false only records the image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic: bool,
    /// The containers (or init containers) whose image is set.
    #[schemars(length(min = 1, max = 64))]
    pub container_names: Vec<String>,
    /// The ImageStreamTag followed.
    #[x_kube(validation = Rule::new("self.kind == 'ImageStreamTag'").message("imageChangeParams.from must be an ImageStreamTag"))]
    pub from: ImageReference,
    /// The image this trigger last rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered_image: Option<String>,
}

/// Observed state of a DeploymentConfig.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfigStatus {
    /// The latest version; each trigger raises it by one.
    #[serde(default)]
    pub latest_version: i64,
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub updated_replicas: i32,
    #[serde(default)]
    pub available_replicas: i32,
    #[serde(default)]
    pub unavailable_replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    /// Why the latest version was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<DeploymentDetails>,
    /// The pods' label selector as a string (`app=web,deploymentconfig=web`): the scale
    /// subresource's, so a HorizontalPodAutoscaler can find the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Available, Progressing and ReplicaFailure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The triggers in one line, as `oc get dc` shows them: `config,image(app:latest)` (a Slipway
    /// addition, for the printer column; see [`trigger_summary`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_summary: Option<String>,
}

/// The selector of a DeploymentConfig's pods as a string (`k=v,k2=v2`): its `selector`, else its
/// template's labels (OpenShift's default).
pub fn selector_string(spec: &DeploymentConfigSpec) -> Option<String> {
    let labels = spec
        .selector
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| spec.template.as_ref()?.metadata.as_ref()?.labels.clone())?;
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The triggers of a DeploymentConfig in one line: `config` for a config change,
/// `image(stream:tag)` for an image change (with `(manual)` when not automatic), `manual` when
/// there are none. A missing trigger list means one ConfigChange trigger, as in OpenShift.
pub fn trigger_summary(spec: &DeploymentConfigSpec) -> String {
    let Some(triggers) = &spec.triggers else {
        return "config".into();
    };
    let parts: Vec<String> = triggers
        .iter()
        .map(|t| match (&t.type_, &t.image_change_params) {
            (DeploymentTriggerType::ConfigChange, _) => "config".to_string(),
            (DeploymentTriggerType::ImageChange, Some(p)) => {
                let from = match &p.from.namespace {
                    Some(ns) if !ns.is_empty() => format!("{ns}/{}", p.from.name),
                    _ => p.from.name.clone(),
                };
                if p.automatic {
                    format!("image({from})")
                } else {
                    format!("image({from}) (manual)")
                }
            }
            (DeploymentTriggerType::ImageChange, None) => "image".to_string(),
        })
        .collect();
    if parts.is_empty() {
        "manual".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_trigger(name: &str, automatic: bool) -> DeploymentTriggerPolicy {
        DeploymentTriggerPolicy {
            type_: DeploymentTriggerType::ImageChange,
            image_change_params: Some(DeploymentTriggerImageChangeParams {
                automatic,
                container_names: vec!["web".into()],
                from: ImageReference::image_stream_tag(name),
                last_triggered_image: None,
            }),
        }
    }

    #[test]
    fn trigger_summary_reads_like_oc_get_dc() {
        let config = DeploymentTriggerPolicy {
            type_: DeploymentTriggerType::ConfigChange,
            image_change_params: None,
        };
        let spec = |triggers| DeploymentConfigSpec {
            triggers,
            ..Default::default()
        };
        assert_eq!(trigger_summary(&spec(None)), "config");
        assert_eq!(trigger_summary(&spec(Some(vec![]))), "manual");
        assert_eq!(
            trigger_summary(&spec(Some(vec![config, image_trigger("app:latest", true)]))),
            "config,image(app:latest)"
        );
        assert_eq!(
            trigger_summary(&spec(Some(vec![image_trigger("app:v2", false)]))),
            "image(app:v2) (manual)"
        );
    }
}

/// The causes of a version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DeploymentDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub causes: Vec<DeploymentCause>,
}

/// One cause: a config change, an image change (with the tag), or a manual rollout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCause {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_trigger: Option<DeploymentCauseImageTrigger>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct DeploymentCauseImageTrigger {
    pub from: ImageReference,
}

/// Labels and annotations of DeploymentConfigs' ReplicaSets and pods, under `slipway.dev/`.
pub mod labels {
    /// The DeploymentConfig of a ReplicaSet or pod (label).
    pub const DEPLOYMENT_CONFIG: &str = "slipway.dev/deployment-config.name";
    /// The ReplicaSet (`<dc>-<n>`) of a pod (label).
    pub const DEPLOYMENT: &str = "slipway.dev/deployment.name";
    /// The version of a ReplicaSet (annotation).
    pub const LATEST_VERSION: &str = "slipway.dev/deployment-config.latest-version";
    /// The phase of a version's rollout (annotation).
    pub const DEPLOYMENT_PHASE: &str = "slipway.dev/deployment.phase";
    /// The pod template a version was made from, as JSON (annotation; what `rollout undo` reads).
    pub const ENCODED_TEMPLATE: &str = "slipway.dev/deployment.encoded-template";
    /// Why a version was made, in words: `config change`, `image change`, `manual change`,
    /// `rollback` (annotation).
    pub const CAUSE: &str = "slipway.dev/deployment.cause";
    /// Set to "true" to cancel a running rollout (annotation; `slip rollout cancel`).
    pub const CANCELLED: &str = "slipway.dev/deployment.cancelled";
    /// Why a rollout ended as it did (annotation).
    pub const STATUS_REASON: &str = "slipway.dev/deployment.status-reason";
    /// When the rollout of a version started; its timeout counts from here (annotation).
    pub const STARTED_AT: &str = "slipway.dev/deployment.started-at";
    /// When the rollout last scaled, to keep `updatePeriodSeconds` between steps (annotation).
    pub const LAST_STEP: &str = "slipway.dev/deployment.last-step";
    /// The outcome of a hook, `slipway.dev/hook.pre|mid|post`: Complete or Failed (annotation).
    pub const HOOK_OUTCOME_PREFIX: &str = "slipway.dev/hook.";
    /// The ReplicaSet a hook pod belongs to (label; hook pods never carry [`DEPLOYMENT`], so no
    /// ReplicaSet selects them).
    pub const HOOK_FOR: &str = "slipway.dev/deployment-hook.for";
    /// The point of a hook pod: pre, mid or post (label).
    pub const HOOK_POINT: &str = "slipway.dev/deployment-hook.point";
}

/// The phase of one version's rollout, as in OpenShift (kept in [`labels::DEPLOYMENT_PHASE`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum DeploymentPhase {
    New,
    Pending,
    Running,
    Complete,
    Failed,
}

impl DeploymentPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Complete => "Complete",
            Self::Failed => "Failed",
        }
    }

    /// Reads an annotation value; anything unknown reads as New.
    pub fn parse(value: &str) -> Self {
        match value {
            "Pending" => Self::Pending,
            "Running" => Self::Running,
            "Complete" => Self::Complete,
            "Failed" => Self::Failed,
            _ => Self::New,
        }
    }

    /// Whether the rollout of the version is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }
}
