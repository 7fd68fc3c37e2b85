//! ImageStream lookup against the dev cluster: with `lookupPolicy.local`, a Pod, Deployment or
//! DeploymentConfig naming `stream:tag` is admitted with the tag's digest reference; streams
//! without local lookup, and names with a registry, are left alone. The hooks are registered for
//! this test's label only and removed at the end.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use slipway_crds::{DeploymentConfig, ImageStream};
use slipway_testkit::*;
use slipway_webhook::register::{Endpoint, unregister};

#[tokio::test]
async fn local_lookup_resolves_stream_tags_in_pods_deployments_and_dcs() {
    ensure_crds();
    let client = client().await;
    let id = unique_name("lookup");
    let addr = free_loopback_addr();
    let selector: LabelSelector =
        serde_json::from_value(json!({"matchLabels": {"slipway.dev/test-run": id}})).unwrap();
    let running = slipway_webhook::start(
        client.clone(),
        addr,
        &["127.0.0.1".to_string()],
        &id,
        Endpoint::Url(format!("https://127.0.0.1:{}", addr.port())),
        Some(selector),
    )
    .await
    .unwrap();
    await_admission_webhook(&client, &id).await;
    let ns = TestNamespace::new(&client, "lookup").await;
    let n = ns.name.clone();

    let streams: Api<ImageStream> = Api::namespaced(client.clone(), &n);
    for (name, local) in [("app", true), ("private", false)] {
        let stream = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
            "metadata": {"name": name}, "spec": {"lookupPolicy": {"local": local}}});
        streams
            .create(&PostParams::default(), &serde_json::from_value(stream).unwrap())
            .await
            .unwrap();
        let status = json!({"status": {"dockerImageRepository": format!("127.0.0.1:15000/{n}/{name}"),
            "tags": [{"tag": "v1", "items": [{"created": "2026-01-01T00:00:00Z",
                "dockerImageReference": format!("127.0.0.1:15000/{n}/{name}@sha256:{}", "a".repeat(64)),
                "image": format!("sha256:{}", "a".repeat(64))}]}]}});
        streams
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    let resolved = format!("127.0.0.1:15000/{n}/app@sha256:{}", "a".repeat(64));
    let containers = json!([
        {"name": "web", "image": "app:v1"},
        {"name": "private", "image": "private:v1"},
        {"name": "missing", "image": "app:v9"},
        {"name": "remote", "image": "127.0.0.1:15000/other/app:v1"},
    ]);
    let images = |spec: &Value| -> Vec<String> {
        spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].as_str().unwrap().to_string())
            .collect()
    };
    let expected = vec![
        resolved.clone(),
        "private:v1".to_string(),
        "app:v9".to_string(),
        "127.0.0.1:15000/other/app:v1".to_string(),
    ];
    let labels = json!({"slipway.dev/test-run": id, "app": "web"});

    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": labels}, "spec": {"containers": containers}});
    let pod = Api::<Pod>::namespaced(client.clone(), &n)
        .create(&PostParams::default(), &serde_json::from_value(pod).unwrap())
        .await
        .unwrap();
    assert_eq!(images(&serde_json::to_value(pod.spec).unwrap()), expected);

    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": template}});
    let deployment = Api::<Deployment>::namespaced(client.clone(), &n)
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment).unwrap(),
        )
        .await
        .unwrap();
    let spec = serde_json::to_value(deployment.spec.unwrap().template.spec).unwrap();
    assert_eq!(images(&spec), expected);

    let dc = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig",
        "metadata": {"name": "web", "labels": labels},
        "spec": {"replicas": 0, "selector": {"app": "web"}, "template": template}});
    let dc = Api::<DeploymentConfig>::namespaced(client.clone(), &n)
        .create(&PostParams::default(), &serde_json::from_value(dc).unwrap())
        .await
        .unwrap();
    let spec = serde_json::to_value(dc.spec.template.unwrap().spec).unwrap();
    assert_eq!(images(&spec), expected);

    // Objects without the label do not go through this test's hook.
    let plain = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "web", "image": "app:v1"}]}});
    let plain = Api::<Pod>::namespaced(client.clone(), &n)
        .create(&PostParams::default(), &serde_json::from_value(plain).unwrap())
        .await
        .unwrap();
    assert_eq!(plain.spec.unwrap().containers[0].image.as_deref(), Some("app:v1"));

    unregister(&client, &id).await.unwrap();
    running.handle.shutdown();
    ns.delete().await;
}
