//! What several of Slipway's programs share and that needs more than the API types: the operator,
//! the webhook and `slip` use it; none of them depends on another for it. Keep it free of servers,
//! metrics and registry clients, so that `slip` links none of them.
//!
//! - [`instantiate`]: starting build n+1 of a BuildConfig exactly once.
//! - [`rollout`]: raising a DeploymentConfig's `status.latestVersion` exactly once.
//! - [`names`]: what Kubernetes accepts as a name.
//! - [`locks`]: one async lock per key, forgotten when nobody holds or waits for it.
//! - [`tags`]: recording a pushed image as the newest of an ImageStream tag.
//! - `logging` (feature `logging`): how the operator and the webhook log.

pub mod instantiate;
pub mod locks;
#[cfg(feature = "logging")]
pub mod logging;
pub mod names;
pub mod rollout;
pub mod tags;

/// The build pod of build `build` (the operator makes it; `slip` attaches to it).
pub fn build_pod_name(build: &str) -> String {
    format!("{build}-build")
}

/// The build pod's init container that receives a binary build's upload on its stdin.
pub const RECEIVE_CONTAINER: &str = "receive";
