//! ImagePrune: one pruning of the integrated registry, as `oc adm prune images` does one, asked
//! for by `slip adm prune images` (or `kubectl create`) and carried out by the registry pod's
//! `auth` container, which also makes one on its own schedule (the chart's `registry.prune`).
//! Creating one takes the right to create ImagePrunes (cluster-scoped: cluster admins).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Time;

/// What to keep; everything else no ImageStream, workload or pod refers to is removed.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "slipway.dev",
    version = "v1alpha1",
    kind = "ImagePrune",
    status = "ImagePruneStatus",
    category = "slipway",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Manifests", type_ = "integer", json_path = ".status.manifestsDeleted", description = "Manifests deleted"),
    printcolumn(name = "Blobs", type_ = "integer", json_path = ".status.blobsDeleted", description = "Blobs deleted"),
    printcolumn(name = "Freed", type_ = "integer", json_path = ".status.bytesFreed", description = "Bytes freed"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.spec == oldSelf.spec").message("an ImagePrune cannot change; create another"),
    doc = "ImagePrune removes from the integrated registry the images nothing refers to any more: each ImageStream tag keeps its keepTagRevisions newest images and those younger than keepYoungerThan; an image a pod, workload or BuildConfig names is kept; then blobs no remaining manifest names are deleted. dryRun reports without removing. The spec cannot change."
)]
#[serde(rename_all = "camelCase")]
pub struct ImagePruneSpec {
    /// How many of each tag's newest images to keep (OpenShift's --keep-tag-revisions).
    #[serde(default = "default_revisions")]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_tag_revisions: u32,
    /// Images younger than this are kept whatever else holds (a Go duration: 60m, 24h, 90s).
    #[serde(default = "default_younger_than")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(h|m|s))+$"))]
    pub keep_younger_than: String,
    /// Report what would be removed, and remove nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_revisions() -> u32 {
    3
}

fn default_younger_than() -> String {
    "60m".into()
}

impl Default for ImagePruneSpec {
    fn default() -> Self {
        Self {
            keep_tag_revisions: default_revisions(),
            keep_younger_than: default_younger_than(),
            dry_run: false,
        }
    }
}

/// Where a pruning stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ImagePrunePhase {
    #[default]
    Pending,
    Running,
    Complete,
    Failed,
}

/// What a pruning did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePruneStatus {
    #[serde(default)]
    pub phase: ImagePrunePhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Tag history items removed from ImageStreams.
    #[serde(default)]
    pub tag_items_removed: u64,
    /// Manifests kept (referenced, recent, or tagged in the registry) and deleted.
    #[serde(default)]
    pub manifests_kept: u64,
    #[serde(default)]
    pub manifests_deleted: u64,
    /// Blobs in the registry before and after, and how many were deleted, with their bytes.
    #[serde(default)]
    pub blobs_before: u64,
    #[serde(default)]
    pub blobs_after: u64,
    #[serde(default)]
    pub blobs_deleted: u64,
    #[serde(default)]
    pub bytes_freed: u64,
    /// Why it failed, or what a dry run would do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A Go-style duration of h, m and s parts (`1h30m`, `60m`, `90s`), as the spec's pattern allows.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("{text:?} is not a duration such as 60m, 24h or 1h30m")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration such as 60m, 24h or 1h30m"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long"))?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(format!("{text:?} is not a duration such as 60m, 24h or 1h30m"));
    }
    Ok(std::time::Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_writes_them() {
        assert_eq!(parse_duration("60m").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("0s").unwrap().as_secs(), 0);
        for bad in ["", "60", "m", "1d", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_spec_defaults_as_oc_adm_prune_images() {
        let spec: ImagePruneSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec, ImagePruneSpec::default());
        assert_eq!(
            (spec.keep_tag_revisions, spec.keep_younger_than.as_str()),
            (3, "60m")
        );
    }
}
