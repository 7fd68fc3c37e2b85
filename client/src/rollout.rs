//! Raising a DeploymentConfig's `status.latestVersion`, the one way a new version is asked for,
//! exactly once however many ask at the same time: the operator's triggers and `slip rollout
//! latest|retry|undo` both go through here.

use kube::ResourceExt;
use kube::api::{Api, PostParams};
use slipway_crds::DeploymentConfig;
use slipway_crds::apps::DeploymentDetails;

/// How often [`raise_after`] reads the DeploymentConfig again after a conflict.
const ATTEMPTS: usize = 10;

/// Why [`raise_after`] raised nothing.
#[derive(Debug, thiserror::Error)]
pub enum RaiseError {
    #[error("dc/{name} kept changing while raising its version; try again")]
    Contended { name: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Raises `status.latestVersion` of `dc` to `version` with `details`, only if nobody changed the
/// DeploymentConfig since `dc` was read (its resourceVersion is the guard, so a concurrent raise
/// gets a conflict and never makes the same version twice).
pub async fn raise_version(
    dcs: &Api<DeploymentConfig>,
    dc: &DeploymentConfig,
    version: i64,
    details: DeploymentDetails,
    params: &PostParams,
) -> kube::Result<DeploymentConfig> {
    let mut updated = dc.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    status.latest_version = version;
    status.details = Some(details);
    dcs.replace_status(&dc.name_any(), params, &updated).await
}

/// Raises `status.latestVersion` of `name` from `seen` to `seen + 1` with `details`, unless
/// someone raised it since `seen` (then that version is the one asked for). Returns the version.
pub async fn raise_after(
    dcs: &Api<DeploymentConfig>,
    name: &str,
    seen: i64,
    details: DeploymentDetails,
    params: &PostParams,
) -> Result<i64, RaiseError> {
    for _ in 0..ATTEMPTS {
        let dc = dcs.get(name).await?;
        let current = dc.status.as_ref().map_or(0, |s| s.latest_version);
        if current != seen {
            return Ok(current);
        }
        match raise_version(dcs, &dc, seen + 1, details.clone(), params).await {
            Ok(_) => return Ok(seen + 1),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RaiseError::Contended { name: name.into() })
}
