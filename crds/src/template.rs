//! Template and TemplateInstance: OpenShift's template.openshift.io/v1 shapes under
//! `slipway.dev/v1alpha1`. A Template keeps its fields at the top level, as in OpenShift.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, LocalObjectReference, ObjectReference};

/// The fields of a Template. They sit at the top level of the object (no `spec`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "Template",
    namespaced,
    no_spec,
    status = "TemplateStatus",
    category = "slipway",
    printcolumn(
        name = "Description",
        type_ = "string",
        json_path = ".metadata.annotations.description",
        description = "What the template makes"
    ),
    printcolumn(
        name = "Parameters",
        type_ = "integer",
        json_path = ".status.parameterCount",
        description = "Number of parameters"
    ),
    printcolumn(
        name = "Objects",
        type_ = "integer",
        json_path = ".status.objectCount",
        description = "Number of objects"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "Template is a parameterised list of objects that `slip process` or a TemplateInstance turns into real objects. Fields sit at the top level and follow OpenShift's template.openshift.io/v1 Template."
)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFields {
    /// Shown to the user after the template is instantiated; may reference parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub message: Option<String>,
    /// The objects to create. `${NAME}` and `${{NAME}}` reference parameters.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub objects: Vec<TemplateObject>,
    /// The parameters the objects reference; names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub parameters: Vec<Parameter>,
    /// Labels added to every object (and, in Slipway, to the pod templates of workloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// One object of a template: any Kubernetes or OpenShift object, kept as written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct TemplateObject(pub serde_json::Value);

impl JsonSchema for TemplateObject {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TemplateObject".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A Kubernetes or OpenShift object; parameters are substituted when the template is processed.",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

/// A template parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.generate) || self.generate == 'expression'").message("generate must be 'expression', the only generator"))]
#[x_kube(validation = Rule::new("!has(self.generate) || has(self.from)").message("a generated parameter needs 'from', the expression to generate it from"))]
pub struct Parameter {
    /// The name referenced as `${NAME}`: letters, digits and underscores.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[a-zA-Z0-9_]+$"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `expression` to generate the value from `from` when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<String>,
    /// The generator expression, e.g. `[a-zA-Z0-9]{16}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub from: Option<String>,
    /// Processing fails when a required parameter ends up empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// What Slipway learned about a stored template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatus {
    #[serde(default)]
    pub parameter_count: i32,
    #[serde(default)]
    pub object_count: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A template inside a TemplateInstance: the template's fields plus its name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<EmbeddedMeta>,
    #[serde(flatten)]
    pub fields: TemplateFields,
}

/// The parts of an embedded template's metadata that matter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EmbeddedMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A TemplateInstance makes a template's objects in its namespace, as the user who created it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "TemplateInstance",
    namespaced,
    status = "TemplateInstanceStatus",
    category = "slipway",
    printcolumn(
        name = "Template",
        type_ = "string",
        json_path = ".spec.template.metadata.name",
        description = "The inline template instantiated"
    ),
    printcolumn(
        name = "Stored Template",
        type_ = "string",
        json_path = ".spec.templateRef.name",
        description = "The stored Template instantiated"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "All objects exist and are ready"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "TemplateInstance makes the objects of a template, with its parameters, as the user who created it (never with more rights). Follows OpenShift's template.openshift.io/v1 TemplateInstance, plus a reference to a stored Template and inline parameters."
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.template) != has(self.templateRef)").message("give exactly one of template (inline) or templateRef (a stored Template)"))]
#[x_kube(validation = Rule::new("self == oldSelf").message("a TemplateInstance's spec cannot change; delete it and create another"))]
pub struct TemplateInstanceSpec {
    /// The template, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<EmbeddedTemplate>,
    /// A stored Template (a Slipway addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<TemplateReference>,
    /// A Secret whose keys are parameter names and whose values are their values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<LocalObjectReference>,
    /// Parameter values given inline (a Slipway addition); the Secret's values win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 500))]
    pub parameters: Option<BTreeMap<String, String>>,
    /// Who asked for the instance. Stamped by Slipway's admission webhook; objects are created
    /// with this user's rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<TemplateInstanceRequester>,
}

/// A reference to a stored Template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TemplateReference {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The Template's namespace; the instance's own when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The user a TemplateInstance acts for.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TemplateInstanceRequester {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<BTreeMap<String, Vec<String>>>,
}

/// Observed state of a TemplateInstance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInstanceStatus {
    /// Ready (all objects exist and are ready) and InstantiateFailure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The objects made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<TemplateInstanceObject>,
}

/// One object a TemplateInstance made.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInstanceObject {
    #[serde(rename = "ref")]
    pub ref_: ObjectReference,
}
