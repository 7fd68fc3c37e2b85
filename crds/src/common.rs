//! Types shared by several kinds: object references in OpenShift's shape, and conditions.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The kinds an image reference may name, as in OpenShift.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ImageReferenceKind {
    /// `name:tag` of an ImageStream, in `namespace` or the object's own namespace.
    ImageStreamTag,
    /// `name@sha256:...` of an ImageStream.
    ImageStreamImage,
    /// A pull spec such as `registry.example.com/team/app:1.0`.
    DockerImage,
}

/// A reference to an image: OpenShift uses a core/v1 ObjectReference here, restricted to the kinds
/// above. Only `kind`, `name` and `namespace` carry meaning.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("self.kind != 'ImageStreamTag' || self.name.matches('^[^:@/]+:[^:@/]+$')").message("an ImageStreamTag name must be <imagestream>:<tag>"))]
#[x_kube(validation = Rule::new("self.kind != 'ImageStreamImage' || self.name.matches('^[^:@/]+@[^@]+:[^@]+$')").message("an ImageStreamImage name must be <imagestream>@<digest>"))]
pub struct ImageReference {
    /// What `name` names: ImageStreamTag, ImageStreamImage or DockerImage.
    pub kind: ImageReferenceKind,
    /// The tag (`app:latest`), image (`app@sha256:...`) or pull spec (`registry/app:1`).
    #[schemars(length(min = 1, max = 1024))]
    pub name: String,
    /// The namespace of the ImageStream; the referring object's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

impl ImageReference {
    pub fn image_stream_tag(name: impl Into<String>) -> Self {
        Self {
            kind: ImageReferenceKind::ImageStreamTag,
            name: name.into(),
            namespace: None,
        }
    }

    pub fn docker_image(name: impl Into<String>) -> Self {
        Self {
            kind: ImageReferenceKind::DockerImage,
            name: name.into(),
            namespace: None,
        }
    }
}

/// A reference to an object in the same namespace, by name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct LocalObjectReference {
    /// The object's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl LocalObjectReference {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// A reference to any object, as recorded in status (for example the objects a template made).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// A name-value pair, as in OpenShift's image labels.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct NameValue {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// The schema of an equality-based label selector: bounded, so that CEL rules over it stay
/// within the API server's cost budget.
pub fn label_selector_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "maxProperties": 32,
        "additionalProperties": {"type": "string", "maxLength": 63},
    })
}

/// Condition status values, as in metav1.Condition.
pub mod condition_status {
    pub const TRUE: &str = "True";
    pub const FALSE: &str = "False";
    pub const UNKNOWN: &str = "Unknown";
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// A condition as of now.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

/// Sets a condition, keeping `lastTransitionTime` when the status did not change; returns whether
/// anything changed (so a reconcile that changes nothing writes nothing).
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status == new.status
                && existing.reason == new.reason
                && existing.message == new.message
                && existing.observed_generation == new.observed_generation
            {
                return false;
            }
            let transition = if existing.status == new.status {
                existing.last_transition_time.clone()
            } else {
                new.last_transition_time.clone()
            };
            *existing = Condition {
                last_transition_time: transition,
                ..new
            };
            true
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn cond(status: &str, reason: &str, at: i64) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::from_second(at).unwrap()),
        }
    }

    #[test]
    fn set_condition_is_quiet_when_nothing_changed() {
        let mut conditions = vec![cond("True", "Ok", 1)];
        assert!(!set_condition(&mut conditions, cond("True", "Ok", 2)));
        assert_eq!(conditions[0].last_transition_time.0.as_second(), 1);
    }

    #[test]
    fn set_condition_keeps_transition_time_when_only_reason_changes() {
        let mut conditions = vec![cond("True", "Ok", 1)];
        assert!(set_condition(&mut conditions, cond("True", "StillOk", 2)));
        assert_eq!(conditions[0].reason, "StillOk");
        assert_eq!(conditions[0].last_transition_time.0.as_second(), 1);
    }

    #[test]
    fn set_condition_moves_transition_time_when_status_flips() {
        let mut conditions = vec![cond("True", "Ok", 1)];
        assert!(set_condition(&mut conditions, cond("False", "Broken", 5)));
        assert_eq!(conditions[0].last_transition_time.0.as_second(), 5);
        assert!(set_condition(
            &mut conditions,
            Condition {
                type_: "Other".into(),
                ..cond("True", "X", 6)
            }
        ));
        assert_eq!(conditions.len(), 2);
    }
}
