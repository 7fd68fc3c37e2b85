//! Fields a built-in kind's schema does not declare. The API server drops them from a create or
//! update (with a warning), as OpenShift's did, so templates written for older APIs still work
//! there — e.g. the corpus's PostgreSQL templates, whose containers carry a pre-1.0 `capabilities`
//! beside `securityContext`. Server-side apply refuses them instead ("field not declared in
//! schema"), so what applies templates that way drops them first, by the same rule: the object
//! is read into k8s-openapi's type for its kind (which ignores unknown keys), and every key of the
//! original that the typed copy lacks is removed. Nothing else of the object changes.

use k8s_openapi::api::{apps, batch, core};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Removes from `object` the fields its kind does not declare; their paths (e.g.
/// `spec.template.spec.containers[0].capabilities`). Kinds other than the common built-in
/// workloads and their companions, and objects that do not decode as their kind (the server
/// says why), are left as they are.
pub fn prune_unknown_fields(object: &mut Value) -> Vec<String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let typed = match (api_version, kind) {
        ("apps/v1", "Deployment") => typed::<apps::v1::Deployment>(object),
        ("apps/v1", "StatefulSet") => typed::<apps::v1::StatefulSet>(object),
        ("apps/v1", "DaemonSet") => typed::<apps::v1::DaemonSet>(object),
        ("batch/v1", "Job") => typed::<batch::v1::Job>(object),
        ("batch/v1", "CronJob") => typed::<batch::v1::CronJob>(object),
        ("v1", "Pod") => typed::<core::v1::Pod>(object),
        ("v1", "Service") => typed::<core::v1::Service>(object),
        ("v1", "PersistentVolumeClaim") => typed::<core::v1::PersistentVolumeClaim>(object),
        ("v1", "ConfigMap") => typed::<core::v1::ConfigMap>(object),
        ("v1", "Secret") => typed::<core::v1::Secret>(object),
        ("v1", "ServiceAccount") => typed::<core::v1::ServiceAccount>(object),
        _ => None,
    };
    let mut dropped = Vec::new();
    if let Some(typed) = typed {
        remove_missing(object, &typed, "", &mut dropped);
    }
    dropped
}

fn typed<T: DeserializeOwned + Serialize>(object: &Value) -> Option<Value> {
    let decoded: T = serde_json::from_value(object.clone()).ok()?;
    serde_json::to_value(decoded).ok()
}

/// Removes the keys of `original` that `typed` lacks (null values are dropped silently: they
/// mean absent), recursing where both have the key; list items pair up by position.
fn remove_missing(original: &mut Value, typed: &Value, path: &str, dropped: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(map), Value::Object(known)) => {
            map.retain(|key, value| {
                let keep = known.contains_key(key);
                if !keep && !value.is_null() {
                    dropped.push(if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    });
                }
                keep
            });
            for (key, value) in map.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                remove_missing(value, &known[key], &child, dropped);
            }
        }
        (Value::Array(items), Value::Array(known)) if items.len() == known.len() => {
            for (i, (item, k)) in items.iter_mut().zip(known).enumerate() {
                remove_missing(item, k, &format!("{path}[{i}]"), dropped);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_container_capabilities_field_of_old_templates_is_dropped_and_named() {
        let mut deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "postgresql", "annotations": {"a": "b"}},
            "spec": {"selector": {"matchLabels": {"name": "db"}}, "template": {
                "metadata": {"labels": {"name": "db"}},
                "spec": {"containers": [{
                    "name": "postgresql", "image": " ", "capabilities": {},
                    "securityContext": {"capabilities": {}, "privileged": false},
                    "env": [{"name": "A", "value": "1", "bogus": true}],
                    "resources": {"limits": {"memory": "512Mi"}},
                    "ports": [{"containerPort": 5432, "protocol": "TCP"}]
                }], "nodeName": null}
            }}
        });
        let before = deployment.clone();
        let dropped = prune_unknown_fields(&mut deployment);
        assert_eq!(
            dropped,
            [
                "spec.template.spec.containers[0].capabilities",
                "spec.template.spec.containers[0].env[0].bogus"
            ]
        );
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert!(container.get("capabilities").is_none());
        // What the schema declares is kept as written (the empty securityContext.capabilities too).
        assert_eq!(
            container["securityContext"],
            before["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        );
        assert_eq!(container["resources"]["limits"]["memory"], "512Mi");
        assert_eq!(deployment["metadata"], before["metadata"]);
    }

    #[test]
    fn other_kinds_and_undecodable_objects_are_left_alone() {
        let mut custom =
            json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "spec": {"x": 1}});
        assert!(prune_unknown_fields(&mut custom).is_empty());
        assert_eq!(custom["spec"]["x"], 1);
        let mut wrong =
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": "not a list", "junk": 1}});
        assert!(prune_unknown_fields(&mut wrong).is_empty());
        assert_eq!(wrong["spec"]["junk"], 1, "the server says what is wrong with it");
    }
}
