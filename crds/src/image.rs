//! ImageStream: OpenShift's image.openshift.io/v1 shape under `slipway.dev/v1alpha1`.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ImageReference, Time};

/// An ImageStream is a named set of tags, each a history of image digests.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "ImageStream",
    namespaced,
    status = "ImageStreamStatus",
    shortname = "is",
    category = "slipway",
    printcolumn(
        name = "Image Repository",
        type_ = "string",
        json_path = ".status.dockerImageRepository",
        description = "Where builds push"
    ),
    printcolumn(
        name = "Tags",
        type_ = "string",
        json_path = ".status.tags[*].tag",
        description = "Tags that have an image"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "ImageStream is a named set of image tags, each with the history of the digests it pointed to. Builds push to it, triggers follow it. Field names follow OpenShift's image.openshift.io/v1 ImageStream."
)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamSpec {
    /// With `local: true`, pods and workloads in this namespace that name `stream:tag` get the
    /// tag's digest reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_policy: Option<ImageLookupPolicy>,
    /// Deprecated in OpenShift: an external repository this stream mirrors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_repository: Option<String>,
    /// Tags and where their images come from; names are unique.
    #[serde(default)]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub tags: Vec<TagReference>,
}

/// Whether names of this stream's tags resolve in the namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ImageLookupPolicy {
    #[serde(default)]
    pub local: bool,
}

/// One tag in the spec: where its image comes from and how it is kept up to date.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagReference {
    /// The tag's name.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"))]
    pub name: String,
    /// Annotations of the tag (OpenShift uses them for catalog display).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// A DockerImage pull spec, another tag (ImageStreamTag `stream:tag`) or an ImageStreamImage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ImageReference>,
    /// Record `from` as it is, without resolving it to a digest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reference: bool,
    /// Bumped to ask for a re-import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// How the tag is imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_policy: Option<TagImportPolicy>,
    /// How pods reference the tag's images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_policy: Option<TagReferencePolicy>,
}

/// Import settings of a tag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagImportPolicy {
    /// Allow http or unverified https registries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Poll the registry and record a new item when the digest changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scheduled: bool,
    /// What an import of an image index (a multi-arch image: OCI index or Docker manifest list)
    /// records: Legacy (the default) the image of the cluster's platform in it, PreserveOriginal
    /// the index itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<ImportMode>,
}

/// What an import of an image index (a multi-arch image: OCI index or Docker manifest list)
/// records: Legacy (the default) the image of the cluster's platform in it, PreserveOriginal the
/// index itself (OpenShift's `importPolicy.importMode`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ImportMode {
    /// An image index is resolved to the one image of the platform the cluster runs (the
    /// operator's): the tag's image is that manifest's digest.
    #[default]
    Legacy,
    /// The tag's image is the digest of what the registry serves, an image index included, so
    /// that each node pulls the image of its own platform.
    PreserveOriginal,
}

impl TagImportPolicy {
    /// The import mode, Legacy when unset.
    pub fn mode(policy: Option<&Self>) -> ImportMode {
        policy.and_then(|p| p.import_mode).unwrap_or_default()
    }
}

/// Source: pods pull from the original registry; Local: from the stream's own repository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TagReferencePolicy {
    #[serde(rename = "type")]
    pub type_: TagReferencePolicyType,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TagReferencePolicyType {
    #[default]
    Source,
    Local,
}

/// Observed state of an ImageStream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamStatus {
    /// The repository builds push to and pods pull from.
    #[serde(default)]
    pub docker_image_repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_docker_image_repository: Option<String>,
    /// Each tag's history, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<NamedTagEventList>,
}

/// The history of one tag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NamedTagEventList {
    pub tag: String,
    /// Newest first.
    #[serde(default)]
    pub items: Vec<TagEvent>,
    /// ImportSuccess and friends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TagEventCondition>,
}

/// One image a tag pointed to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagEvent {
    pub created: Time,
    /// The pull spec by digest, e.g. `registry/ns/app@sha256:...`.
    pub docker_image_reference: String,
    /// The digest, e.g. `sha256:...`.
    pub image: String,
    #[serde(default)]
    pub generation: i64,
}

/// A condition of one tag, such as a failed import.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagEventCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub generation: i64,
}

impl ImageStreamStatus {
    /// The newest image of a tag.
    pub fn latest(&self, tag: &str) -> Option<&TagEvent> {
        self.tags
            .iter()
            .find(|t| t.tag == tag)
            .and_then(|t| t.items.first())
    }
}

/// How many images a tag's history keeps (OpenShift keeps more; a small history bounds the
/// object's size and is what rollbacks need).
pub const TAG_HISTORY_LIMIT: usize = 10;

impl ImageStreamStatus {
    /// Records `event` as the newest image of `tag`, keeping older items (newest first, at most
    /// [`TAG_HISTORY_LIMIT`]). Returns false, changing nothing, when the tag's newest image
    /// already has the same digest: writers call this and write status only when it says true.
    pub fn record(&mut self, tag: &str, event: TagEvent) -> bool {
        let list = match self.tags.iter_mut().position(|t| t.tag == tag) {
            Some(i) => &mut self.tags[i],
            None => {
                self.tags.push(NamedTagEventList {
                    tag: tag.to_string(),
                    ..Default::default()
                });
                self.tags.last_mut().expect("just pushed")
            }
        };
        if list
            .items
            .first()
            .is_some_and(|newest| newest.image == event.image)
        {
            return false;
        }
        list.items.insert(0, event);
        list.items.truncate(TAG_HISTORY_LIMIT);
        true
    }
}

/// Splits `stream:tag` into its parts; a missing tag means `latest`, as in OpenShift.
pub fn split_stream_tag(name: &str) -> (&str, &str) {
    match name.split_once(':') {
        Some((stream, tag)) if !tag.is_empty() => (stream, tag),
        Some((stream, _)) => (stream, "latest"),
        None => (name, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(digest: &str) -> TagEvent {
        TagEvent {
            created: Time(Default::default()),
            docker_image_reference: format!("registry/ns/app@{digest}"),
            image: digest.into(),
            generation: 1,
        }
    }

    #[test]
    fn record_puts_new_digests_first_and_ignores_repeats() {
        let mut status = ImageStreamStatus::default();
        assert!(status.record("latest", event("sha256:a")));
        assert!(!status.record("latest", event("sha256:a")));
        assert!(status.record("latest", event("sha256:b")));
        assert!(status.record("v1", event("sha256:a")));
        assert_eq!(status.latest("latest").unwrap().image, "sha256:b");
        assert_eq!(status.tags[0].items.len(), 2);
        assert_eq!(status.latest("v1").unwrap().image, "sha256:a");
        for i in 0..20 {
            status.record("latest", event(&format!("sha256:{i}")));
        }
        assert_eq!(status.tags[0].items.len(), TAG_HISTORY_LIMIT);
        assert_eq!(status.latest("latest").unwrap().image, "sha256:19");
    }

    #[test]
    fn split_stream_tag_defaults_to_latest() {
        assert_eq!(split_stream_tag("app:v1"), ("app", "v1"));
        assert_eq!(split_stream_tag("app"), ("app", "latest"));
        assert_eq!(split_stream_tag("app:"), ("app", "latest"));
    }
}
