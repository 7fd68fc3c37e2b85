//! The build controller of a real-node test: in-process, watching one namespace, building with
//! the images of `make images` and pushing where the node's pods reach the dev registry.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use slipway_crds::Build;
use slipway_crds::build::{BuildPhase, BuildStatus};
use slipway_operator::build::controller::Settings;
use slipway_operator::build::pod::{BUILD_CONTAINER, BuildImages, pod_name};
use slipway_testkit::real_node::{LOCAL_REGISTRY, NODE_REGISTRY, run_in_image};

/// Starts the build controller for `namespace`; abort the handle to stop it.
#[allow(dead_code)]
pub async fn start_build_controller(namespace: &str) -> tokio::task::JoinHandle<()> {
    start_build_controller_with(namespace, |_| {}).await
}

/// [`start_build_controller`] with build pod settings changed by `adjust`.
pub async fn start_build_controller_with(
    namespace: &str,
    adjust: impl FnOnce(&mut BuildImages),
) -> tokio::task::JoinHandle<()> {
    let tag = slipway_testkit::images_tag();
    let ctx = slipway_operator::Context::new(kube::Config::infer().await.expect("a kubeconfig"))
        .expect("an operator context");
    let mut images = BuildImages {
        builder_tools: format!("{LOCAL_REGISTRY}/slipway/slipway-builder:{tag}"),
        buildah: format!("{LOCAL_REGISTRY}/slipway/slipway-buildah:{tag}"),
        insecure_registries: vec![NODE_REGISTRY.into()],
        ..BuildImages::default()
    };
    adjust(&mut images);
    let settings = Settings {
        images,
        registry: NODE_REGISTRY.into(),
        namespace: Some(namespace.to_string()),
    };
    tokio::spawn(slipway_operator::build::controller::run(ctx, settings))
}

/// The builds of one test's namespace, and the images they push under `repository` (a path of
/// the dev registry).
pub struct Builds {
    pub client: kube::Client,
    pub ns: String,
    pub repository: String,
}

#[allow(dead_code)]
impl Builds {
    /// The status of `build` once it has ended.
    pub async fn finished(&self, build: &str) -> BuildStatus {
        let builds: Api<Build> = Api::namespaced(self.client.clone(), &self.ns);
        let timeout = Duration::from_secs(900);
        let ended = slipway_testkit::within(timeout, || async {
            let status = builds.get(build).await.ok()?.status?;
            status.phase.is_terminal().then_some(status)
        })
        .await;
        match ended {
            Some(status) => status,
            None => panic!(
                "timed out after {timeout:?} waiting for {build} to end: {:?}\n{}",
                builds.get(build).await.ok().and_then(|b| b.status),
                slipway_testkit::namespace_report(&self.client, &self.ns).await
            ),
        }
    }

    /// The log of the build container of `build`.
    pub async fn log(&self, build: &str) -> String {
        Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .logs(
                &pod_name(build),
                &LogParams {
                    container: Some(BUILD_CONTAINER.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_default()
    }

    /// The digest `build` pushed; a panic with its status and log when it did not complete.
    pub async fn complete(&self, build: &str) -> String {
        let status = self.finished(build).await;
        if status.phase != BuildPhase::Complete {
            panic!(
                "{build}: {:?} {:?} {:?}\n{}",
                status.phase,
                status.reason,
                status.message,
                self.log(build).await
            );
        }
        status
            .output
            .and_then(|o| o.to)
            .map(|t| t.image_digest)
            .expect("a completed build's digest")
    }

    /// Runs `command` in the image `<repository>/<name>@<digest>` on the real node; its log.
    pub async fn run(&self, name: &str, digest: &str, command: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let image = format!("{LOCAL_REGISTRY}/{}/{name}@{digest}", self.repository);
        let pod = format!("run-{name}-{}", &digest[7..15]);
        let (phase, log) = run_in_image(&pods, &pod, &image, &["/bin/sh", "-c", command]).await;
        assert_eq!(phase, "Succeeded", "{name}: {command}: {log}");
        log
    }
}
