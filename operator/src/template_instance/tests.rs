use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use slipway_crds::template::{TemplateFields, TemplateInstance};

use super::*;
use kube::core::ObjectMeta;

fn dynamic(data: Value, generation: i64) -> DynamicObject {
    DynamicObject {
        types: None,
        metadata: ObjectMeta {
            generation: Some(generation),
            ..Default::default()
        },
        data,
    }
}

#[test]
fn deployments_are_ready_when_the_latest_spec_is_available() {
    let seen = |available| {
        dynamic(
            json!({"spec": {"replicas": 2}, "status": {"observedGeneration": 3, "availableReplicas": available}}),
            3,
        )
    };
    assert_eq!(readiness("Deployment", &seen(2)), Readiness::Ready);
    assert_eq!(
        readiness("Deployment", &seen(1)),
        Readiness::NotReady("1 of 2 replicas available".into())
    );
    let stale = dynamic(
        json!({"spec": {"replicas": 1}, "status": {"observedGeneration": 2, "availableReplicas": 1}}),
        3,
    );
    assert!(matches!(readiness("Deployment", &stale), Readiness::NotReady(_)));
}

#[test]
fn builds_and_jobs_can_fail_and_other_kinds_are_ready_when_they_exist() {
    assert_eq!(
        readiness("Build", &dynamic(json!({"status": {"phase": "Complete"}}), 1)),
        Readiness::Ready
    );
    assert_eq!(
        readiness("Build", &dynamic(json!({"status": {"phase": "Failed"}}), 1)),
        Readiness::Failed("the build ended Failed".into())
    );
    let failed_job = dynamic(
        json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
        1,
    );
    assert_eq!(
        readiness("Job", &failed_job),
        Readiness::Failed("the job failed".into())
    );
    let dc = dynamic(
        json!({"status": {"conditions": [{"type": "Available", "status": "True"}]}}),
        1,
    );
    assert_eq!(readiness("DeploymentConfig", &dc), Readiness::Ready);
    assert_eq!(readiness("ConfigMap", &dynamic(json!({}), 1)), Readiness::Ready);
}

#[test]
fn the_secret_overrides_inline_parameters() {
    let inline = BTreeMap::from([
        ("A".to_string(), "inline".to_string()),
        ("B".to_string(), "inline".to_string()),
    ]);
    let secret: Secret = serde_json::from_value(json!({"data": {"A": "ZnJvbS1zZWNyZXQ="}})).unwrap();
    let values = parameter_values(Some(&inline), Some(&secret));
    assert_eq!(values["A"], "from-secret");
    assert_eq!(values["B"], "inline");
}

#[test]
fn plan_labels_every_object_with_the_instance() {
    let instance: TemplateInstance = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "TemplateInstance",
        "metadata": {"name": "mine", "namespace": "team"},
        "spec": {"templateRef": {"name": "t"}}
    }))
    .unwrap();
    let fields: TemplateFields = serde_json::from_value(json!({
        "parameters": [{"name": "N", "required": true}],
        "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "${N}"}}]
    }))
    .unwrap();
    let objects = plan(&instance, &fields, &BTreeMap::from([("N".into(), "cm".into())])).unwrap();
    assert_eq!(objects[0]["metadata"]["name"], "cm");
    assert_eq!(objects[0]["metadata"]["labels"][INSTANCE_LABEL], "mine");
    let err = plan(&instance, &fields, &BTreeMap::new()).unwrap_err();
    assert!(err.contains('N'), "{err}");
}
