use serde_json::json;
use slipway_crds::project::{ProjectPhase, annotations};
use slipway_crds::template::TemplateFields;

use super::*;

fn request(name: &str) -> ProjectRequest {
    serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest",
        "metadata": {"name": name, "uid": "u-1"},
        "displayName": "Team A", "description": "the first team"
    }))
    .unwrap()
}

#[test]
fn a_project_is_its_namespace_bindings_accounts_and_template_objects() {
    let template = Settings::default().template().unwrap();
    let objects = plan_project(&request("team-a"), "alice", &template).unwrap();
    let names: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "Namespace/team-a",
            "Project/team-a",
            "RoleBinding/admin",
            "ServiceAccount/builder",
            "ServiceAccount/deployer",
            "RoleBinding/slipway-builders",
            "RoleBinding/slipway-deployers",
            "RoleBinding/system:image-pullers",
            "ClusterRole/slipway-project-team-a",
            "ClusterRoleBinding/slipway-project-team-a",
            "ResourceQuota/project-quota",
            "LimitRange/project-limits",
            "NetworkPolicy/project-isolation"
        ]
    );
    let ns = &objects[0]["metadata"];
    assert_eq!(ns["annotations"][annotations::REQUESTER], "alice");
    assert_eq!(ns["annotations"][annotations::DISPLAY_NAME], "Team A");
    assert_eq!(ns["annotations"][REQUEST_UID_ANNOTATION], "u-1");
    let extra = BTreeMap::from([
        (
            "scheduler.alpha.kubernetes.io/node-selector".to_string(),
            "pool=apps".to_string(),
        ),
        (annotations::REQUESTER.to_string(), "mallory".to_string()),
    ]);
    let annotated = annotate_namespace(objects.clone(), &extra);
    let ns = &annotated[0]["metadata"]["annotations"];
    assert_eq!(ns["scheduler.alpha.kubernetes.io/node-selector"], "pool=apps");
    assert_eq!(
        ns[annotations::REQUESTER],
        "alice",
        "a configured annotation never replaces the project's own"
    );
    let levels = pod_security_labels("baseline", "restricted").unwrap();
    let labelled = label_namespace(objects.clone(), &levels);
    let labels = &labelled[0]["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
    assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
    assert_eq!(labels[PROJECT_LABEL], "team-a");
    assert!(
        pod_security_labels("strict", "restricted")
            .unwrap_err()
            .contains("\"strict\"")
    );
    assert_eq!(objects[2]["subjects"][0]["name"], "alice");
    assert!(
        objects[10..]
            .iter()
            .all(|o| o["metadata"]["namespace"] == "team-a")
    );
    // Every account of the project pulls its images.
    assert_eq!(objects[7]["roleRef"]["name"], "system:image-puller");
    assert_eq!(objects[7]["subjects"][0]["name"], "system:serviceaccounts:team-a");
    assert_eq!(objects[8]["rules"][0]["resourceNames"], json!(["team-a"]));
    assert_eq!(objects[9]["subjects"][0]["name"], "alice");
}

#[test]
fn a_users_projects_are_counted_but_not_the_one_being_made() {
    let ns = |name: &str, requester: &str| -> Namespace {
        serde_json::from_value(
            json!({"metadata": {"name": name, "annotations": {"slipway.dev/requester": requester}}}),
        )
        .unwrap()
    };
    let namespaces = [
        ns("a1", "alice"),
        ns("a2", "alice"),
        ns("b1", "bob"),
        ns("a3", "alice"),
    ];
    assert_eq!(projects_of(&namespaces, "alice", "new"), 3);
    assert_eq!(projects_of(&namespaces, "alice", "a3"), 2);
    assert_eq!(projects_of(&namespaces, "carol", "new"), 0);
}

#[test]
fn a_broken_project_template_is_reported() {
    let template: TemplateFields = serde_json::from_value(json!({
        "parameters": [{"name": "P", "required": true}],
        "objects": []
    }))
    .unwrap();
    let err = plan_project(&request("team-b"), "bob", &template).unwrap_err();
    assert!(
        err.starts_with("the project template:") && err.contains('P'),
        "{err}"
    );
}

#[test]
fn a_project_is_terminating_while_its_namespace_is() {
    let project: Project = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {}})).unwrap();
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": "p", "annotations": {"slipway.dev/display-name": "P!", "slipway.dev/requester": "carol"}},
        "status": {"phase": "Active"}
    }))
    .unwrap();
    let status = project_status(&project, Some(&ns), false);
    assert_eq!(
        (
            status.phase,
            status.display_name.as_deref(),
            status.requester.as_deref()
        ),
        (ProjectPhase::Active, Some("P!"), Some("carol"))
    );
    assert_eq!(
        project_status(&project, Some(&ns), true).phase,
        ProjectPhase::Terminating
    );
}
