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

/// Whether `error` may pass by itself: the API server could not be reached or was overloaded
/// (429, 5xx), as opposed to a refusal or an invalid object, which another try repeats.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// A request about one object that failed: what to tell the user, and the API error behind it
/// (none when the object itself is malformed).
#[derive(Debug)]
pub struct Refused {
    pub message: String,
    pub error: Option<kube::Error>,
}

impl Refused {
    pub fn new(message: String, error: Option<kube::Error>) -> Self {
        Self { message, error }
    }

    /// `Ok(message)` for a refusal that another try would repeat (what the user is told), or
    /// `Err(error)` when it may pass by itself: the reconcile returns that error (`?`), to be
    /// retried with backoff.
    pub fn permanent(self) -> Result<String, kube::Error> {
        match self.error {
            Some(error) if is_transient(&error) => Err(error),
            _ => Ok(self.message),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("refused", "Reason").with_code(code),
        ))
    }

    #[test]
    fn unreachable_or_overloaded_servers_are_transient_refusals_are_not() {
        for code in [429, 500, 502, 503, 504] {
            assert!(is_transient(&status(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 422] {
            assert!(!is_transient(&status(code)), "{code}");
        }
        let connect = kube::Error::Service("client error (Connect)".into());
        assert!(is_transient(&connect));
        let invalid = kube::Error::SerdeError(serde_json::from_str::<u8>("x").unwrap_err());
        assert!(!is_transient(&invalid));

        let lost = Refused::new("Namespace/a: lost".into(), Some(status(503)));
        assert!(lost.permanent().is_err(), "retried");
        let refused = Refused::new("Namespace/a: forbidden".into(), Some(status(403)));
        assert_eq!(refused.permanent().unwrap(), "Namespace/a: forbidden");
        let malformed = Refused::new("Namespace: not an object".into(), None);
        assert_eq!(malformed.permanent().unwrap(), "Namespace: not an object");
    }
}
