//! Project and ProjectRequest: OpenShift's project.openshift.io/v1 shapes under
//! `slipway.dev/v1alpha1`. A Project mirrors one namespace; a ProjectRequest asks for one.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Condition;

/// The rule every project name obeys: a DNS label outside the reserved prefixes.
const NAME_RULES: &str =
    "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63";
const RESERVED_RULES: &str = "self.metadata.name != 'default' && !self.metadata.name.startsWith('kube-') && !self.metadata.name.startsWith('openshift-') && !self.metadata.name.startsWith('slipway-')";

/// The request's own fields cannot change (its metadata and status can: the rule sits on the root
/// because the fields do, so it must not compare the whole object).
const REQUEST_IMMUTABLE: &str = "(has(self.displayName) ? has(oldSelf.displayName) && self.displayName == oldSelf.displayName : !has(oldSelf.displayName)) && (has(self.description) ? has(oldSelf.description) && self.description == oldSelf.description : !has(oldSelf.description))";

/// A Project is a namespace managed by Slipway, with its owner, quota and isolation.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "Project",
    status = "ProjectStatus",
    shortname = "proj",
    category = "slipway",
    printcolumn(name = "Display Name", type_ = "string", json_path = ".status.displayName", description = "The project's display name"),
    printcolumn(name = "Requester", type_ = "string", json_path = ".status.requester", description = "Who asked for the project"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase", description = "Active or Terminating"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "Project is a namespace managed by Slipway: its admin, builder and deployer bindings, quota, limits and network isolation. Deleting it deletes the namespace. Follows OpenShift's project.openshift.io/v1 Project.",
    validation = Rule::new(NAME_RULES).message("a project name must be a DNS label: lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit"),
    validation = Rule::new(RESERVED_RULES).message("project names 'default', 'kube-*', 'openshift-*' and 'slipway-*' are reserved")
)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// Finalizers of the namespace, as in OpenShift.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// Active or Terminating, as a namespace.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProjectPhase {
    #[default]
    Active,
    Terminating,
}

/// Observed state of a project.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    #[serde(default)]
    pub phase: ProjectPhase,
    /// Copied from the namespace's annotation, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Copied from the namespace's annotation, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A request for a new project. Any authenticated user may create one; Slipway makes the
/// namespace, the Project and the requester's admin binding.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "ProjectRequest",
    no_spec,
    status = "ProjectRequestStatus",
    category = "slipway",
    printcolumn(name = "Display Name", type_ = "string", json_path = ".displayName"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase", description = "Pending, Active or Failed"),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.message", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "ProjectRequest asks for a new project named like the request. Follows OpenShift's project.openshift.io/v1 ProjectRequest (displayName and description at the top level).",
    validation = Rule::new(NAME_RULES).message("a project name must be a DNS label: lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit"),
    validation = Rule::new(RESERVED_RULES).message("project names 'default', 'kube-*', 'openshift-*' and 'slipway-*' are reserved"),
    validation = Rule::new(REQUEST_IMMUTABLE).message("a ProjectRequest cannot change; edit the project namespace's annotations instead")
)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRequestFields {
    /// A human-friendly name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
}

/// Where a request stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProjectRequestPhase {
    #[default]
    Pending,
    Active,
    Failed,
}

/// Observed state of a request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRequestStatus {
    #[serde(default)]
    pub phase: ProjectRequestPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Annotations of project namespaces, under `slipway.dev/`.
pub mod annotations {
    pub const DISPLAY_NAME: &str = "slipway.dev/display-name";
    pub const DESCRIPTION: &str = "slipway.dev/description";
    /// The user who asked for the project (also on TemplateInstances); set by admission only.
    pub const REQUESTER: &str = "slipway.dev/requester";
}
