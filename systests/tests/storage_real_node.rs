//! The dev cluster's storage, as the `-persistent` templates use it: a PersistentVolumeClaim that
//! names no StorageClass gets the default one (`local-path`, the local-path provisioner that
//! `make cluster-up` runs), is bound when its pod is scheduled on the real node, and keeps what a
//! pod wrote there after that pod is deleted and another one mounts it; deleting the claim
//! deletes its volume.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use serde_json::json;
use slipway_testkit::real_node::pin_to_real_node;
use slipway_testkit::*;

/// A pod on the real node that runs `script` with the claim at /data, as a non-root user with
/// what Pod Security's `restricted` asks.
fn pod(name: &str, script: &str) -> Pod {
    let registry = std::env::var("SLIPWAY_REGISTRY").unwrap_or_else(|_| "127.0.0.1:15000".into());
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1001, "runAsGroup": 0, "runAsNonRoot": true,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": format!("{registry}/slipway/busybox:latest"),
                "command": ["sh", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        }
    }))
    .unwrap()
}

async fn succeeded(pods: &Api<Pod>, name: &str) -> String {
    eventually(
        &format!("pod {name} to succeed"),
        Duration::from_secs(120),
        || async {
            let pod = pods.get(name).await.ok()?;
            let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
            assert_ne!(phase, "Failed", "pod {name} failed");
            (phase == "Succeeded").then_some(())
        },
    )
    .await;
    pods.logs(name, &LogParams::default()).await.unwrap()
}

#[ignore = "needs the real node; run with `make e2e`"]
#[tokio::test]
async fn a_claim_of_the_default_class_binds_on_the_real_node_and_keeps_its_data() {
    let client = client().await;
    let classes: Api<StorageClass> = Api::all(client.clone());
    let default = classes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|c| {
            c.metadata.annotations.as_ref().is_some_and(|a| {
                a.get("storageclass.kubernetes.io/is-default-class")
                    .is_some_and(|v| v == "true")
            })
        })
        .expect("the dev cluster has a default StorageClass (make cluster-up makes local-path)");
    assert_eq!(default.provisioner, "rancher.io/local-path");

    let ns = TestNamespace::new(&client, "storage").await;
    pin_to_real_node(&client, &ns.name).await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    pods.create(
        &PostParams::default(),
        &pod("writer", "echo kept-across-pods > /data/row && id -u"),
    )
    .await
    .unwrap();
    let wrote = succeeded(&pods, "writer").await;
    assert_eq!(wrote.trim(), "1001", "the writer ran as 1001");
    let bound = claims.get("data").await.unwrap();
    assert_eq!(
        bound.spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("local-path"),
        "the default class was given"
    );
    assert_eq!(
        bound.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Bound")
    );
    let volume = bound.spec.unwrap().volume_name.unwrap();
    pods.delete("writer", &DeleteParams::default()).await.unwrap();

    pods.create(&PostParams::default(), &pod("reader", "cat /data/row"))
        .await
        .unwrap();
    assert_eq!(succeeded(&pods, "reader").await, "kept-across-pods\n");
    let reader = pods.get("reader").await.unwrap();
    assert_eq!(reader.spec.unwrap().node_name.as_deref(), Some("real-node"));

    // The claim goes, and its volume with it (reclaim policy Delete).
    pods.delete("reader", &DeleteParams::default()).await.unwrap();
    claims.delete("data", &DeleteParams::default()).await.unwrap();
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    eventually("the volume to be deleted", Duration::from_secs(120), || async {
        volumes.get_opt(&volume).await.ok()?.is_none().then_some(())
    })
    .await;
    ns.delete().await;
}
