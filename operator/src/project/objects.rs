//! decide: the objects of a new project (pure).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use serde_json::{Value, json};
use slipway_crds::ProjectRequest;
use slipway_crds::process::{ProcessOptions, process};
use slipway_crds::project::annotations;
use slipway_crds::template::TemplateFields;

use super::*;

/// How many projects `requester` has, not counting `being_made` (a retry of a request must not
/// count the namespace it already made).
pub fn projects_of(project_namespaces: &[Namespace], requester: &str, being_made: &str) -> usize {
    project_namespaces
        .iter()
        .filter(|ns| {
            ns.annotations().get(annotations::REQUESTER).map(String::as_str) == Some(requester)
                && ns.name_any() != being_made
        })
        .count()
}

/// Adds `extra` to the namespace's annotations (the first object), keeping its own where both name
/// the same key.
pub fn annotate_namespace(mut objects: Vec<Value>, extra: &BTreeMap<String, String>) -> Vec<Value> {
    if let Some(annotations) = objects
        .first_mut()
        .and_then(|ns| ns["metadata"]["annotations"].as_object_mut())
    {
        for (k, v) in extra {
            annotations.entry(k.clone()).or_insert_with(|| json!(v));
        }
    }
    objects
}

/// Adds `extra` to the namespace's labels (the first object), keeping its own where both name the
/// same key.
pub fn label_namespace(mut objects: Vec<Value>, extra: &BTreeMap<String, String>) -> Vec<Value> {
    if let Some(labels) = objects
        .first_mut()
        .and_then(|ns| ns["metadata"]["labels"].as_object_mut())
    {
        for (k, v) in extra {
            labels.entry(k.clone()).or_insert_with(|| json!(v));
        }
    }
    objects
}

/// The objects of a new project, in the order they are made (the namespace first).
pub fn plan_project(
    request: &ProjectRequest,
    requester: &str,
    template: &TemplateFields,
) -> Result<Vec<Value>, String> {
    let name = request.name_any();
    let uid = request.uid().unwrap_or_default();
    let display_name = request.spec.display_name.clone().unwrap_or_default();
    let description = request.spec.description.clone().unwrap_or_default();
    let mut ns_annotations = BTreeMap::from([
        (annotations::REQUESTER.to_string(), requester.to_string()),
        (REQUEST_UID_ANNOTATION.to_string(), uid),
    ]);
    if !display_name.is_empty() {
        ns_annotations.insert(annotations::DISPLAY_NAME.into(), display_name.clone());
    }
    if !description.is_empty() {
        ns_annotations.insert(annotations::DESCRIPTION.into(), description.clone());
    }
    let mut objects = project_objects(&name, requester, ns_annotations, request.labels());
    let values = BTreeMap::from([
        ("PROJECT_NAME".to_string(), name.clone()),
        ("PROJECT_DISPLAYNAME".to_string(), display_name),
        ("PROJECT_DESCRIPTION".to_string(), description),
        ("PROJECT_ADMIN_USER".to_string(), requester.to_string()),
        ("PROJECT_REQUESTING_USER".to_string(), requester.to_string()),
    ]);
    // A project template may declare only some of these.
    let options = ProcessOptions {
        ignore_unknown_parameters: true,
        ..Default::default()
    };
    let processed = process(template, &values, &options).map_err(|e| format!("the project template: {e}"))?;
    for mut object in processed.objects {
        // Template objects go into the project (kinds that are not namespaced ignore this).
        object["metadata"]["namespace"] = name.clone().into();
        objects.push(object);
    }
    Ok(objects)
}

/// The objects every project has, before its template's: the namespace, the Project, the
/// requester's admin binding, the `builder` and `deployer` accounts with their bindings, and the
/// requester's view of the cluster-scoped Project and Namespace (a table).
fn project_objects(
    name: &str,
    requester: &str,
    ns_annotations: BTreeMap<String, String>,
    request_labels: &BTreeMap<String, String>,
) -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {PROJECT_LABEL: name}, "annotations": ns_annotations},
        }),
        json!({
            "apiVersion": slipway_crds::API_VERSION, "kind": "Project",
            // The request's labels carry over, so whoever selects requests by label finds the project.
            "metadata": {"name": name, "finalizers": [FINALIZER], "labels": request_labels},
            "spec": {"finalizers": ["kubernetes"]},
        }),
        role_binding(
            name,
            "admin",
            "admin",
            json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": requester}),
        ),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": name}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": name}}),
        role_binding(
            name,
            "slipway-builders",
            BUILDER_CLUSTER_ROLE,
            json!({"kind": "ServiceAccount", "name": "builder", "namespace": name}),
        ),
        role_binding(
            name,
            "slipway-deployers",
            DEPLOYER_CLUSTER_ROLE,
            json!({"kind": "ServiceAccount", "name": "deployer", "namespace": name}),
        ),
        // As OpenShift's `system:image-pullers`: every account of the project pulls its images
        // (the kubelet, with the `default` account's registry credentials).
        role_binding(
            name,
            "system:image-pullers",
            IMAGE_PULLER_CLUSTER_ROLE,
            json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": format!("system:serviceaccounts:{name}")}),
        ),
        // The Project and its Namespace are cluster-scoped: the requester may see and delete this
        // one Project, and see this one Namespace, and nothing else at cluster level.
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": project_role_name(name), "labels": {PROJECT_LABEL: name}},
            "rules": [
                {"apiGroups": [slipway_crds::GROUP], "resources": ["projects"], "resourceNames": [name], "verbs": ["get", "watch", "delete"]},
                {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [name], "verbs": ["get", "watch"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": project_role_name(name), "labels": {PROJECT_LABEL: name}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": project_role_name(name)},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": requester}],
        }),
    ]
}

/// The ClusterRole (and binding) that lets a project's requester see and delete the Project.
pub fn project_role_name(project: &str) -> String {
    format!("slipway-project-{project}")
}

/// Deletes a project's cluster-level role and binding.
fn role_binding(namespace: &str, name: &str, cluster_role: &str, subject: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [subject],
    })
}
