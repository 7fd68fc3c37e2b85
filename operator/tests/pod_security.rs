//! Builds in a namespace that enforces Pod Security's `restricted` level (what a project can be
//! made with, `--project-pod-security restricted`): the API server admits a Source build's pod as
//! it is, and refuses a Docker build's (root, seccomp Unconfined), which fails at once with a
//! reason that says so instead of waiting for a pod that never comes.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use slipway_client::instantiate::instantiate;
use slipway_crds::build::{BuildPhase, BuildRequest, BuildTriggerCause};
use slipway_crds::{Build, BuildConfig};
use slipway_operator::build::controller::Settings;
use slipway_testkit::*;
use support::{Controller, Fixture};

const WAIT: Duration = Duration::from_secs(90);

async fn config(client: &kube::Client, ns: &str, name: &str, strategy: Value) {
    let bc: BuildConfig = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": name},
        "spec": {
            "source": {"type": "Git", "git": {"uri": "https://example.com/app.git"}},
            "strategy": strategy,
            "output": {"to": {"kind": "DockerImage", "name": format!("127.0.0.1:15000/{ns}/{name}:1")}},
            "nodeSelector": {"type": "kwok"},
        },
    }))
    .unwrap();
    Api::<BuildConfig>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &bc)
        .await
        .unwrap();
}

async fn start(client: &kube::Client, ns: &str, bc: &str) -> String {
    let request = BuildRequest {
        cause: BuildTriggerCause {
            message: "Manually triggered".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    instantiate(client, ns, bc, &request).await.unwrap().name_any()
}

#[tokio::test]
async fn a_restricted_namespace_admits_source_build_pods_and_refuses_docker_ones_out_loud() {
    let Fixture { client, ns } = Fixture::start("psa").await;
    let labels = json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}});
    Api::<Namespace>::all(client.clone())
        .patch(&ns.name, &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    let settings = Settings {
        namespace: Some(ns.name.clone()),
        ..Default::default()
    };
    let mut controller =
        Controller::start(|ctx| slipway_operator::build::controller::run(ctx, settings)).await;

    config(
        &client,
        &ns.name,
        "s2i",
        json!({"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "example.com/builder:1"}}}),
    )
    .await;
    config(
        &client,
        &ns.name,
        "docker",
        json!({"type": "Docker", "dockerStrategy": {}}),
    )
    .await;
    let s2i = start(&client, &ns.name, "s2i").await;
    let docker = start(&client, &ns.name, "docker").await;

    let builds: Api<Build> = Api::namespaced(client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let pod = eventually("the Source build's pod", WAIT, || async {
        pods.get_opt(&format!("{s2i}-build")).await.ok()?
    })
    .await;
    let spec = pod.spec.unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    for c in spec.init_containers.unwrap().iter().chain(&spec.containers) {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true), "{}", c.name);
        assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
    }

    let failed = eventually("the Docker build to fail", WAIT, || async {
        let b = builds.get_opt(&docker).await.ok()??;
        let status = b.status?;
        (status.phase == BuildPhase::Error).then_some(status)
    })
    .await;
    assert_eq!(failed.reason.as_deref(), Some("PodSecurityForbidden"));
    let message = failed.message.unwrap();
    assert!(
        message.contains("violates PodSecurity \"restricted:latest\"")
            && message.contains("pod-security.kubernetes.io/enforce=privileged"),
        "{message}"
    );
    assert!(pods.get_opt(&format!("{docker}-build")).await.unwrap().is_none());
    controller.stop().await;
    ns.delete().await;
}
