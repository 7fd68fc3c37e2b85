//! Objects of any kind, as templates and project templates bring them: which resource serves an
//! `apiVersion`/`kind`, and the Api to reach one object of it.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;

/// The resource serving `apiVersion` and `kind`, and whether it is namespaced (one discovery call).
pub async fn resolve(
    client: &Client,
    api_version: &str,
    kind: &str,
) -> Result<(ApiResource, Scope), kube::Error> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (resource, caps) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind)).await?;
    Ok((resource, caps.scope))
}

/// The Api for objects of `resource` in `namespace`, or cluster-wide when there is none.
pub fn api(client: &Client, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// The API server's own message for an error (it names the object and, for a refusal, the
/// missing permission), or the error itself.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
