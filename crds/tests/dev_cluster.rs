//! The dev cluster itself works: the real controller-manager and scheduler act, and kwok's fake
//! nodes run pods through their lives (Ready, Job completion, test-decided outcomes).
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use slipway_testkit::*;

#[tokio::test]
async fn a_deployment_reaches_its_ready_replicas_on_fake_nodes() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "deploy").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "127.0.0.1:15000/examples/hello:1.0"}]}
            }
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    eventually("3 ready replicas", Duration::from_secs(60), || async {
        let d = deployments.get("web").await.ok()?;
        (d.status?.ready_replicas? == 3).then_some(())
    })
    .await;
    // The pods were scheduled by the real scheduler onto kwok's nodes.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    for pod in pods.list(&Default::default()).await.unwrap() {
        let node = pod.spec.and_then(|s| s.node_name).unwrap_or_default();
        assert!(node.starts_with("kwok-node-"), "scheduled on {node:?}");
    }
    ns.delete().await;
}

#[tokio::test]
async fn a_job_completes() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "job").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns.name);
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "once"},
        "spec": {
            "completions": 2,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
        }
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    eventually("the job to complete", Duration::from_secs(60), || async {
        let j = jobs.get("once").await.ok()?;
        let complete = j
            .status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True");
        complete.then_some(())
    })
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn a_test_decides_how_a_pod_ends() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "outcome").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    for name in ["passes", "fails"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "fetch", "image": "busybox"}],
                "containers": [{"name": "build", "image": "busybox"}]
            }
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    for name in ["passes", "fails"] {
        eventually("the pod to run", Duration::from_secs(60), || async {
            let p = pods.get(name).await.ok()?;
            (p.status?.phase.as_deref() == Some("Running")).then_some(())
        })
        .await;
    }
    let result = r#"{"image":"registry/app@sha256:abc"}"#;
    let succeed = json!({"metadata": {"annotations": {
        "kwok.slipway.dev/outcome": "Succeeded",
        "kwok.slipway.dev/termination-message": result
    }}});
    pods.patch("passes", &PatchParams::default(), &Patch::Merge(&succeed))
        .await
        .unwrap();
    let fail = json!({"metadata": {"annotations": {
        "kwok.slipway.dev/outcome": "Failed",
        "kwok.slipway.dev/exit-code": "137",
        "kwok.slipway.dev/reason": "OOMKilled"
    }}});
    pods.patch("fails", &PatchParams::default(), &Patch::Merge(&fail))
        .await
        .unwrap();

    let terminated = |name: &'static str, phase: &'static str| {
        let pods = pods.clone();
        async move {
            eventually(phase, Duration::from_secs(30), || async {
                let status = pods.get(name).await.ok()?.status?;
                if status.phase.as_deref() != Some(phase) {
                    return None;
                }
                status.container_statuses?.into_iter().next()?.state?.terminated
            })
            .await
        }
    };
    let passed = terminated("passes", "Succeeded").await;
    assert_eq!(passed.exit_code, 0);
    assert_eq!(passed.message.as_deref(), Some(result));
    let failed = terminated("fails", "Failed").await;
    assert_eq!(failed.exit_code, 137);
    assert_eq!(failed.reason.as_deref(), Some("OOMKilled"));
    ns.delete().await;
}
