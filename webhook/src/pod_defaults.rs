//! Pod Security defaults for the pods of projects that enforce the `restricted` level, as
//! OpenShift's `restricted-v2` SecurityContextConstraints default them: what a pod leaves unsaid
//! is filled in so that an ordinary pod passes — the runtime's default seccomp profile and
//! `runAsNonRoot` for the pod; no privilege escalation and every capability dropped for each
//! container. Nothing a pod says is changed: a pod that asks for root, a capability or privileges
//! keeps asking, and Pod Security Admission refuses it with its own message. OpenShift's templates
//! and the quickstarts' Deployments carry no security context, so without this they could not run
//! in a restricted project at all.
//!
//! Registered for Pod creation in namespaces labelled both as a project (`slipway.dev/project`)
//! and `pod-security.kubernetes.io/enforce=restricted`, with failurePolicy Ignore: without the
//! webhook a pod is admitted as written, and Pod Security still refuses what it must.
//!
//! Unlike OpenShift, no user id is assigned: the image's user must be non-root and numeric (as the
//! S2I builder images' 1001 is); an image that runs as root fails to start with the kubelet's
//! "container has runAsNonRoot and image will run as root".

use json_patch::{AddOperation, PatchOperation};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::{Map, Value, json};

/// The security contexts to write (pure): `(pointer, whole new securityContext)` for the pod and
/// for each container or init container whose own leaves out what `restricted` needs. Empty
/// when the pod already says all of it.
pub fn restricted_defaults(spec: &Value) -> Vec<(String, Value)> {
    let mut writes = Vec::new();
    let mut pod = context(&spec["securityContext"]);
    let before = pod.clone();
    pod.entry("seccompProfile")
        .or_insert_with(|| json!({"type": "RuntimeDefault"}));
    if !pod.contains_key("runAsNonRoot") && pod.get("runAsUser") != Some(&json!(0)) {
        pod.insert("runAsNonRoot".into(), json!(true));
    }
    if pod != before {
        writes.push(("/spec/securityContext".to_string(), Value::Object(pod)));
    }
    for list in ["initContainers", "containers"] {
        for (i, container) in spec[list].as_array().into_iter().flatten().enumerate() {
            let mut own = context(&container["securityContext"]);
            let before = own.clone();
            // A privileged container, or one that adds SYS_ADMIN, cannot be told "no escalation"
            // (the API server refuses the pair): it keeps what it says, for Pod Security to judge.
            let adds_sys_admin = own
                .get("capabilities")
                .and_then(|c| c.get("add"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| matches!(c.as_str(), Some("SYS_ADMIN" | "CAP_SYS_ADMIN")));
            if own.get("privileged") == Some(&json!(true)) || adds_sys_admin {
                continue;
            }
            own.entry("allowPrivilegeEscalation").or_insert(json!(false));
            let capabilities = own.entry("capabilities").or_insert_with(|| json!({}));
            if let Some(capabilities) = capabilities.as_object_mut() {
                capabilities.entry("drop").or_insert_with(|| json!(["ALL"]));
            }
            if own != before {
                writes.push((format!("/spec/{list}/{i}/securityContext"), Value::Object(own)));
            }
        }
    }
    writes
}

/// [`restricted_defaults`] as JSON Patch operations (pure): `add` replaces a member that exists.
pub fn patch_of(spec: &Value) -> Vec<PatchOperation> {
    restricted_defaults(spec)
        .into_iter()
        .filter_map(|(pointer, value)| {
            Some(PatchOperation::Add(AddOperation {
                path: pointer.parse().ok()?,
                value,
            }))
        })
        .collect()
}

fn context(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// The hook: a created Pod gets the defaults; anything else, or a pod that needs none, is
/// admitted unchanged.
pub fn mutate(request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if request.operation != Operation::Create || !request.kind.group.is_empty() || request.kind.kind != "Pod"
    {
        return response;
    }
    let Some(spec) = request.object.as_ref().map(|o| &o.data["spec"]) else {
        return response;
    };
    let operations = patch_of(spec);
    crate::admission::patched_or_unchanged(request, operations, "pod defaults")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(spec: &Value) -> Value {
        let mut pod = json!({"spec": spec});
        json_patch::patch(&mut pod, &patch_of(spec)).unwrap();
        pod["spec"].clone()
    }

    #[test]
    fn a_pod_that_says_nothing_gets_what_restricted_needs() {
        let spec = json!({"containers": [{"name": "web", "image": "x"}],
                          "initContainers": [{"name": "init", "image": "y"}]});
        let out = apply(&spec);
        assert_eq!(
            out["securityContext"],
            json!({"seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": true})
        );
        for c in [&out["containers"][0], &out["initContainers"][0]] {
            assert_eq!(
                c["securityContext"],
                json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
            );
        }
    }

    #[test]
    fn what_a_pod_says_is_kept() {
        let spec = json!({
            "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"}},
            "containers": [{"name": "web", "image": "x", "securityContext": {
                "allowPrivilegeEscalation": true, "privileged": true,
                "capabilities": {"add": ["NET_ADMIN"], "drop": []}}}]});
        // Root, Unconfined, escalation, privileges, an added capability: all left for Pod
        // Security to refuse; nothing to write.
        assert_eq!(restricted_defaults(&spec), Vec::new());
        // A privileged container (or one adding SYS_ADMIN) is not told "no escalation", which
        // the API server would refuse beside it.
        for asked in [
            json!({"privileged": true}),
            json!({"capabilities": {"add": ["SYS_ADMIN"]}}),
        ] {
            let spec = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "web", "securityContext": asked}]});
            assert!(restricted_defaults(&spec).is_empty(), "{spec}");
        }
        // A container that adds a capability gets `drop: [ALL]` beside it; its own user stays.
        let spec = json!({"securityContext": {"runAsNonRoot": false},
            "containers": [{"name": "web", "image": "x", "securityContext": {
                "runAsUser": 1001, "capabilities": {"add": ["NET_BIND_SERVICE"]}}}]});
        let out = apply(&spec);
        assert_eq!(out["securityContext"]["runAsNonRoot"], false);
        assert_eq!(
            out["containers"][0]["securityContext"],
            json!({"runAsUser": 1001, "allowPrivilegeEscalation": false,
                   "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}})
        );
    }

    #[test]
    fn a_pod_that_already_passes_is_not_patched() {
        let spec = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "web", "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}}}]});
        assert!(restricted_defaults(&spec).is_empty());
    }
}
