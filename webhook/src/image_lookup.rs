//! ImageStream lookup (`lookupPolicy.local: true`): a Pod, Deployment or DeploymentConfig whose
//! container names `stream:tag` (one path segment, no registry) gets the tag's digest reference,
//! when a stream of that name in the object's namespace allows local lookup and the tag has an
//! image. The decision is a pure function of the object and the streams; the server lists the
//! namespace's streams only when some image could be a stream tag. Registered with
//! failurePolicy Ignore: without the webhook, objects are admitted as written.

use std::collections::HashMap;

use json_patch::{PatchOperation, ReplaceOperation};
use kube::Client;
use kube::api::Api;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::Value;
use slipway_crds::ImageStream;

/// Where the pod spec is in the kinds this hook resolves, by (group, kind).
pub fn pod_spec_pointer(group: &str, kind: &str) -> Option<&'static str> {
    match (group, kind) {
        ("", "Pod") => Some("/spec"),
        ("apps", "Deployment") => Some("/spec/template/spec"),
        (slipway_crds::GROUP, "DeploymentConfig") => Some("/spec/template/spec"),
        _ => None,
    }
}

/// `stream:tag` (or `stream`, meaning latest) when `image` could name a local stream tag: one
/// path segment, no digest, a valid stream name and tag.
pub fn stream_tag(image: &str) -> Option<(&str, &str)> {
    if image.contains('/') || image.contains('@') || image.len() > 300 {
        return None;
    }
    slipway_client::names::parse_stream_tag(image).ok()
}

/// The containers' images under `pod_spec` that could name a stream tag: (JSON pointer, image).
pub fn candidates(object: &Value, pod_spec: &str) -> Vec<(String, String)> {
    let Some(spec) = object.pointer(pod_spec) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, container) in spec[list].as_array().into_iter().flatten().enumerate() {
            if let Some(image) = container["image"].as_str()
                && stream_tag(image).is_some()
            {
                found.push((format!("{pod_spec}/{list}/{i}/image"), image.to_string()));
            }
        }
    }
    found
}

/// The patch that replaces each candidate image with the digest reference `resolve` gives
/// (pure); empty when nothing resolves.
pub fn lookup_patch(
    candidates: &[(String, String)],
    resolve: impl Fn(&str, &str) -> Option<String>,
) -> Vec<PatchOperation> {
    candidates
        .iter()
        .filter_map(|(pointer, image)| {
            let (stream, tag) = stream_tag(image)?;
            let reference = resolve(stream, tag)?;
            Some(PatchOperation::Replace(ReplaceOperation {
                path: pointer.parse().ok()?,
                value: Value::String(reference),
            }))
        })
        .collect()
}

/// The newest image of each tag of the streams that allow local lookup: (stream, tag) → reference.
pub fn local_tags(streams: &[ImageStream]) -> HashMap<(String, String), String> {
    let mut tags = HashMap::new();
    for stream in streams {
        let local = stream.spec.lookup_policy.as_ref().is_some_and(|p| p.local);
        let (Some(name), Some(status), true) = (&stream.metadata.name, &stream.status, local) else {
            continue;
        };
        for list in &status.tags {
            if let Some(event) = list.items.first() {
                tags.insert(
                    (name.clone(), list.tag.clone()),
                    event.docker_image_reference.clone(),
                );
            }
        }
    }
    tags
}

/// The hook: resolves local stream tags of a created or updated Pod, Deployment or
/// DeploymentConfig. Any failure admits the object unchanged (and is logged).
pub async fn mutate(client: &Client, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let Some(pod_spec) = pod_spec_pointer(&request.kind.group, &request.kind.kind) else {
        return response;
    };
    let Some(object) = request.object.as_ref().and_then(|o| serde_json::to_value(o).ok()) else {
        return response;
    };
    let found = candidates(&object, pod_spec);
    let Some(namespace) = request.namespace.as_deref().filter(|_| !found.is_empty()) else {
        return response;
    };
    let streams = match Api::<ImageStream>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            tracing::warn!(error = %e, namespace, "image lookup: listing image streams; admitted unchanged");
            return response;
        }
    };
    let tags = local_tags(&streams);
    let operations = lookup_patch(&found, |s, t| tags.get(&(s.to_string(), t.to_string())).cloned());
    crate::admission::patched_or_unchanged(request, operations, "image lookup")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_single_segment_names_are_stream_tags() {
        assert_eq!(stream_tag("app:v1"), Some(("app", "v1")));
        assert_eq!(stream_tag("app"), Some(("app", "latest")));
        for not in [
            "docker.io/app:v1",
            "app@sha256:abc",
            "App:v1",
            "app:",
            ":v1",
            "app:v 1",
            "",
        ] {
            assert_eq!(stream_tag(not), None, "{not}");
        }
        assert_eq!(stream_tag(&"a".repeat(10_000)), None);
    }

    #[test]
    fn candidates_and_patch_cover_containers_and_init_containers() {
        let pod = json!({"spec": {
        "initContainers": [{"name": "init", "image": "tools:v1"}],
        "containers": [
            {"name": "web", "image": "app:v1"},
            {"name": "side", "image": "registry.example/side:1"},
            {"name": "other", "image": "unknown:v1"},
            {"name": "odd", "image": 7},
        ]}});
        let found = candidates(&pod, "/spec");
        assert_eq!(found.len(), 3);
        let resolve = |s: &str, t: &str| match (s, t) {
            ("app", "v1") => Some("r/ns/app@sha256:1".to_string()),
            ("tools", "v1") => Some("r/ns/tools@sha256:2".to_string()),
            _ => None,
        };
        let patch = serde_json::to_value(lookup_patch(&found, resolve)).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "replace", "path": "/spec/initContainers/0/image", "value": "r/ns/tools@sha256:2"},
                {"op": "replace", "path": "/spec/containers/0/image", "value": "r/ns/app@sha256:1"},
            ])
        );
        assert!(candidates(&json!({}), "/spec/template/spec").is_empty());
        assert!(candidates(&json!({"spec": "hostile"}), "/spec").is_empty());
    }

    #[test]
    fn only_streams_with_local_lookup_resolve() {
        let stream = |name: &str, local: bool| -> ImageStream {
            serde_json::from_value(json!({
                "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
                "metadata": {"name": name}, "spec": {"lookupPolicy": {"local": local}},
                "status": {"dockerImageRepository": "", "tags": [{"tag": "v1", "items": [
                    {"created": "2026-01-01T00:00:00Z", "dockerImageReference": format!("r/{name}@sha256:1"), "image": "sha256:1"}
                ]}]}
            }))
            .unwrap()
        };
        let tags = local_tags(&[stream("app", true), stream("private", false)]);
        assert_eq!(
            tags.get(&("app".into(), "v1".into())).map(String::as_str),
            Some("r/app@sha256:1")
        );
        assert!(!tags.contains_key(&("private".into(), "v1".into())));
    }
}
