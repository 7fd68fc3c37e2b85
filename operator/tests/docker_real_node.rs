//! A Docker-strategy build on the dev cluster's real node. The build controller (in-process, this
//! test's namespace only) makes the build pod: `fetch` (placing the tools first) from the
//! slipway-builder image, then the slipway-buildah image (dev/buildah-image.sh) running
//! `slipway-builder docker` — buildah with chroot isolation and vfs storage, in the securityContext `build_pod` gives it —
//! on a Dockerfile fetched over http from this machine. The image is pushed to the dev registry at
//! the node's address, 10.250.0.1:15000, the Build completes with the digest the registry serves,
//! and the image runs.
//!
//! Needs the images of `make images` (dev/images.sh; it records their tag).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, LogParams, PostParams};
use serde_json::json;
use slipway_client::instantiate::instantiate;
use slipway_crds::build::{BuildPhase, BuildRequest};
use slipway_crds::{Build, BuildConfig};
use slipway_operator::build::pod::{BUILD_CONTAINER, buildah_security_context, pod_name};
use slipway_testkit::real_node::*;
use slipway_testkit::*;

mod real_node_support;

#[ignore = "needs `make images`; run with `make e2e`"]
#[tokio::test(flavor = "multi_thread")]
async fn a_dockerfile_builds_with_buildah_on_the_real_node_and_pushes() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "docker-real").await;
    let n = ns.name.as_str();
    pin_to_real_node(&client, n).await;

    // A repository with a Dockerfile, served over http where the pod reaches this machine.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("git");
    let files = std::collections::BTreeMap::from([(
        "Dockerfile",
        format!(
            "FROM {NODE_REGISTRY}/slipway/busybox:latest\n\
             RUN echo \"built by buildah as $(id -u)\" > /hello.txt\n\
             CMD [\"cat\", \"/hello.txt\"]\n"
        ),
    )]);
    git_repository(&root, "app", &files);
    let server = git_http::GitHttp::start(&root, format!("{NODE_IP}:0").parse().unwrap())
        .await
        .unwrap();

    let repository = format!("slipway-test/{n}");
    let config: BuildConfig = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "app"},
        "spec": {
            "source": {"type": "Git", "git": {"uri": server.url(NODE_IP, "app"), "ref": "main"}},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": format!("{NODE_REGISTRY}/{repository}:latest")}},
            "completionDeadlineSeconds": 600,
        }
    }))
    .unwrap();
    Api::<BuildConfig>::namespaced(client.clone(), n)
        .create(&PostParams::default(), &config)
        .await
        .unwrap();

    let controller = real_node_support::start_build_controller(n).await;

    let build = instantiate(&client, n, "app", &BuildRequest::default())
        .await
        .unwrap();
    let name = build.name_any();
    let builds: Api<Build> = Api::namespaced(client.clone(), n);
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    let status = eventually("the build to end", Duration::from_secs(600), || async {
        let status = builds.get(&name).await.ok()?.status?;
        status.phase.is_terminal().then_some(status)
    })
    .await;
    if status.phase != BuildPhase::Complete {
        let log = pods
            .logs(
                &pod_name(&name),
                &LogParams {
                    container: Some(BUILD_CONTAINER.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_default();
        panic!(
            "{name} {:?}: {:?} {:?}\n{log}",
            status.phase, status.reason, status.message
        );
    }

    // It ran on the real node, as the operator's pod says, and not privileged.
    let pod = pods.get(&pod_name(&name)).await.unwrap();
    let spec = pod.spec.unwrap();
    let node = spec.node_name.clone().unwrap();
    let real = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&ListParams::default().labels("slipway.dev/node=real"))
        .await
        .unwrap();
    assert!(real.items.iter().any(|r| r.name_any() == node), "ran on {node}");
    let main = spec
        .containers
        .iter()
        .find(|c| c.name == BUILD_CONTAINER)
        .unwrap();
    assert_eq!(main.security_context, Some(buildah_security_context()));
    assert!(
        main.image
            .as_deref()
            .unwrap()
            .contains("/slipway/slipway-buildah:")
    );

    // The Build's digest is what the registry serves under the output tag.
    let digest = status.output.clone().unwrap().to.unwrap().image_digest;
    println!(
        "{name} on {node}: pushed {NODE_REGISTRY}/{repository}@{digest}; stages {:?}",
        status
            .stages
            .iter()
            .map(|s| (s.name.as_str(), s.duration_milliseconds))
            .collect::<Vec<_>>()
    );
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(
        registry_digest(&repository, "latest").as_deref(),
        Some(digest.as_str())
    );

    // And the image runs: its RUN step's file is there.
    let (phase, log) = run_in_image(
        &pods,
        "run",
        &format!("{LOCAL_REGISTRY}/{repository}@{digest}"),
        &[],
    )
    .await;
    assert_eq!(phase, "Succeeded");
    assert_eq!(log.trim(), "built by buildah as 0");
    controller.abort();
    ns.delete().await;
}
