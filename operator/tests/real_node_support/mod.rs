//! The build controller of a real-node test: in-process, watching one namespace, building with
//! the images of `make images` and pushing where the node's pods reach the dev registry.

use slipway_operator::build::controller::Settings;
use slipway_operator::build::pod::BuildImages;
use slipway_testkit::real_node::{LOCAL_REGISTRY, NODE_REGISTRY};

/// Starts the build controller for `namespace`; abort the handle to stop it.
pub async fn start_build_controller(namespace: &str) -> tokio::task::JoinHandle<()> {
    let tag = slipway_testkit::images_tag();
    let ctx = slipway_operator::Context::new(kube::Config::infer().await.expect("a kubeconfig"))
        .expect("an operator context");
    let settings = Settings {
        images: BuildImages {
            builder_tools: format!("{LOCAL_REGISTRY}/slipway/slipway-builder:{tag}"),
            buildah: format!("{LOCAL_REGISTRY}/slipway/slipway-buildah:{tag}"),
            insecure_registries: vec![NODE_REGISTRY.into()],
        },
        registry: NODE_REGISTRY.into(),
        namespace: Some(namespace.to_string()),
    };
    tokio::spawn(slipway_operator::build::controller::run(ctx, settings))
}
