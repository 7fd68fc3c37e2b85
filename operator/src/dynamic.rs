//! Objects of any kind, as templates and project templates bring them: which resource serves an
//! `apiVersion`/`kind`, and the Api to reach one object of it.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;

/// Resolves kinds to resources through discovery, once per kind: readiness checks look the same
/// kinds up again every few seconds, and what serves a kind does not depend on who asks.
#[derive(Default)]
pub struct Resolver {
    cache: Mutex<HashMap<(String, String), (ApiResource, Scope)>>,
}

impl Resolver {
    /// The resource serving `apiVersion` and `kind`, and whether it is namespaced.
    pub async fn resolve(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, Scope), kube::Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.cache.lock().ok().and_then(|cache| cache.get(&key).cloned()) {
            return Ok(found);
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (resource, caps) =
            kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind)).await?;
        let found = (resource, caps.scope);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, found.clone());
        }
        Ok(found)
    }
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
