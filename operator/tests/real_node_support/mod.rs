//! The build controller of a real-node test: in-process, watching one namespace, building with
//! the images of `make images` and pushing where the node's pods reach the dev registry.

use slipway_operator::build::controller::Settings;
use slipway_operator::build::pod::BuildImages;
use slipway_testkit::real_node::{LOCAL_REGISTRY, NODE_REGISTRY};

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
