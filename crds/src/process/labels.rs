//! Template labels on objects and on the pod templates of workloads.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Adds `labels` to the object's `metadata.labels` and to the pod templates of workloads.
///
/// On the object itself a template label replaces the object's own label with the same key: the
/// labels are how the user finds (and deletes) everything a template made, so they must be
/// exactly what was asked for.
///
/// On pod templates an existing label is kept: a workload's selector matches its pod template's
/// labels, and replacing one the selector uses would detach the workload from its pods (the API
/// server even rejects a Deployment whose selector no longer matches its template). Selectors
/// themselves are never touched, for the same reason: changing one breaks existing ReplicaSets.
pub(crate) fn apply(
    object: &mut Map<String, Value>,
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    if labels.is_empty() {
        return Ok(());
    }
    let metadata = child_map(object, "metadata", "metadata")?;
    add(child_map(metadata, "labels", "metadata.labels")?, labels, true);

    let group = api_group(
        object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    for path in pod_template_paths(group, kind) {
        if let Some(template) = existing_map(object, path) {
            let metadata = child_map(template, "metadata", "the pod template's metadata")?;
            add(
                child_map(metadata, "labels", "the pod template's labels")?,
                labels,
                false,
            );
        }
    }
    Ok(())
}

/// The paths, from the object, of the templates whose metadata get the labels.
fn pod_template_paths(group: &str, kind: &str) -> &'static [&'static [&'static str]] {
    const POD_TEMPLATE: &[&[&str]] = &[&["spec", "template"]];
    // The Job's own metadata and its pod template's.
    const CRON_JOB: &[&[&str]] = &[
        &["spec", "jobTemplate"],
        &["spec", "jobTemplate", "spec", "template"],
    ];
    // Only the API groups where these kinds are the well-known workloads: a custom resource
    // called Job in another group may have a different shape.
    match (group, kind) {
        ("apps" | "extensions", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => POD_TEMPLATE,
        ("apps.openshift.io" | "" | crate::GROUP, "DeploymentConfig") => POD_TEMPLATE,
        ("batch", "Job") => POD_TEMPLATE,
        ("batch", "CronJob") => CRON_JOB,
        _ => &[],
    }
}

/// `apps` for `apps/v1`, the empty core group for `v1`.
pub(crate) fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

fn add(target: &mut Map<String, Value>, labels: &BTreeMap<String, String>, replace: bool) {
    for (key, value) in labels {
        if replace || !target.contains_key(key) {
            target.insert(key.clone(), Value::String(value.clone()));
        }
    }
}

/// The mapping under `key`, created when absent or null; an error when it is something else.
fn child_map<'m>(
    parent: &'m mut Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'m mut Map<String, Value>, String> {
    let slot = parent.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(map) => Ok(map),
        _ => Err(format!("{what} must be a mapping")),
    }
}

/// The mapping at `path`, if every step of it exists and is a mapping.
fn existing_map<'m>(object: &'m mut Map<String, Value>, path: &[&str]) -> Option<&'m mut Map<String, Value>> {
    path.iter().try_fold(object, |map, key| {
        map.get_mut(*key).and_then(Value::as_object_mut)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app".to_owned(), "shop".to_owned()),
            ("template".to_owned(), "t".to_owned()),
        ])
    }

    fn labelled(mut object: Value) -> Result<Value, String> {
        apply(object.as_object_mut().unwrap(), &labels())?;
        Ok(object)
    }

    #[test]
    fn object_labels_are_added_and_replaced() {
        let object = labelled(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"app": "mine", "tier": "web"}}})).unwrap();
        assert_eq!(
            object["metadata"]["labels"],
            json!({"app": "shop", "template": "t", "tier": "web"})
        );

        let object = labelled(json!({"apiVersion": "v1", "kind": "Secret"})).unwrap();
        assert_eq!(
            object["metadata"],
            json!({"labels": {"app": "shop", "template": "t"}})
        );

        let object =
            labelled(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"labels": null}})).unwrap();
        assert_eq!(
            object["metadata"]["labels"],
            json!({"app": "shop", "template": "t"})
        );
    }

    #[test]
    fn pod_templates_get_labels_but_selectors_do_not() {
        for (api_version, kind) in [
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "DaemonSet"),
            ("apps/v1", "ReplicaSet"),
            ("apps.openshift.io/v1", "DeploymentConfig"),
            ("v1", "DeploymentConfig"),
            ("slipway.dev/v1alpha1", "DeploymentConfig"),
            ("batch/v1", "Job"),
        ] {
            let object = labelled(json!({
                "apiVersion": api_version, "kind": kind, "metadata": {"name": "w"},
                "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {"metadata": {"labels": {"app": "w"}}, "spec": {}}},
            }))
            .unwrap();
            assert_eq!(
                object["spec"]["selector"],
                json!({"matchLabels": {"app": "w"}}),
                "{kind}"
            );
            assert_eq!(
                object["spec"]["template"]["metadata"]["labels"],
                json!({"app": "w", "template": "t"}),
                "{api_version} {kind}: the pod's own app label is kept"
            );
            assert_eq!(
                object["metadata"]["labels"],
                json!({"app": "shop", "template": "t"})
            );
        }
    }

    #[test]
    fn pod_template_metadata_is_created() {
        let object = labelled(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {}}}}),
        )
        .unwrap();
        assert_eq!(
            object["spec"]["template"]["metadata"]["labels"],
            json!({"app": "shop", "template": "t"})
        );
        // No pod template: none is invented.
        let object = labelled(json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}})).unwrap();
        assert_eq!(object["spec"], json!({}));
    }

    #[test]
    fn cron_jobs_label_the_job_and_its_pods() {
        let object = labelled(json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": {}}}}},
        }))
        .unwrap();
        assert_eq!(
            object["spec"]["jobTemplate"]["metadata"]["labels"],
            json!({"app": "shop", "template": "t"})
        );
        assert_eq!(
            object["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
            json!({"app": "shop", "template": "t"})
        );
    }

    #[test]
    fn custom_resources_with_workload_names_are_left_alone() {
        let object = labelled(
            json!({"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "spec": {"template": {}}}),
        )
        .unwrap();
        assert_eq!(object["spec"]["template"], json!({}));
    }

    #[test]
    fn malformed_metadata_is_an_error() {
        assert_eq!(
            labelled(json!({"metadata": []})).unwrap_err(),
            "metadata must be a mapping"
        );
        assert_eq!(
            labelled(json!({"metadata": {"labels": "x"}})).unwrap_err(),
            "metadata.labels must be a mapping"
        );
        assert_eq!(
            labelled(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"metadata": 1}}})
            )
            .unwrap_err(),
            "the pod template's metadata must be a mapping"
        );
    }
}
