//! Contract tests of the catalog's stand-in images (dev/catalog/, built by
//! `dev/catalog-images.sh`): each honours what sclorg's image of the same name promises and the
//! quickstart templates rely on — the user (1001 in group 0 for builders; the database's own
//! uid), the paths (`/usr/libexec/s2i`, `/opt/app-root/src`, the data directories the templates
//! mount), the labels, the environment variables their scripts read, the S2I scripts'
//! behaviour, the probe commands the templates call, and the message a database image gives
//! when started without its required variables. Each test reads the image from the dev registry
//! and runs it in pods on the real node, in a namespace of its own.
//!
//! Needs the images of `dev/catalog-images.sh`; part of `make e2e` (alone: `make catalog-test`).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod catalog;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use serde_json::{Value, json};
use slipway_testkit::real_node::{NODE_REGISTRY, pin_to_real_node, registry_image};
use slipway_testkit::*;

/// The pull spec of a stand-in as pods reach it, and its image config from the registry.
pub fn stand_in(name: &str) -> (String, Value) {
    let (_, config) = registry_image(&format!("slipway-catalog/{name}"), "latest").unwrap_or_else(|| {
        panic!("slipway-catalog/{name}:latest is not in the dev registry: run dev/catalog-images.sh")
    });
    (format!("{NODE_REGISTRY}/slipway-catalog/{name}:latest"), config)
}

/// The image's labels.
pub fn labels(config: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(config.pointer("/config/Labels").cloned().unwrap_or(json!({}))).unwrap()
}

/// The image's environment, as NAME → value.
pub fn environment(config: &Value) -> BTreeMap<String, String> {
    config
        .pointer("/config/Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e.as_str()?
                .split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The labels every S2I builder of the catalog carries, as sclorg's do.
pub fn assert_builder_labels(config: &Value) {
    let labels = labels(config);
    assert_eq!(labels["io.openshift.s2i.scripts-url"], "image:///usr/libexec/s2i");
    assert_eq!(labels["io.openshift.expose-services"], "8080:http");
    assert!(labels["io.openshift.tags"].contains("builder"), "{labels:?}");
    assert!(!labels["io.k8s.description"].is_empty());
    assert_eq!(
        config.pointer("/config/User").and_then(Value::as_str),
        Some("1001")
    );
    let env = environment(config);
    assert_eq!(env["HOME"], "/opt/app-root/src");
    assert_eq!(env["APP_ROOT"], "/opt/app-root");
    assert_eq!(env["STI_SCRIPTS_PATH"], "/usr/libexec/s2i");
    assert!(env["PATH"].starts_with("/opt/app-root/src/bin:/opt/app-root/bin:"));
    assert_eq!(
        config.pointer("/config/WorkingDir").and_then(Value::as_str),
        Some("/opt/app-root/src")
    );
}

/// A namespace for one test, its pods on the real node.
pub async fn namespace(prefix: &str) -> (kube::Client, TestNamespace, Api<Pod>) {
    let client = client().await;
    let ns = TestNamespace::new(&client, prefix).await;
    pin_to_real_node(&client, &ns.name).await;
    let pods = Api::namespaced(client.clone(), &ns.name);
    (client, ns, pods)
}

/// Runs `image` in a pod to its end: `script` with `sh -c` (or the image's own command when
/// None), with `env`, as the image's user. The phase it ended in and its log.
pub async fn run(
    pods: &Api<Pod>,
    name: &str,
    image: &str,
    env: &[(&str, &str)],
    script: Option<&str>,
) -> (String, String) {
    let env: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    let mut container = json!({"name": "c", "image": image, "env": env});
    if let Some(script) = script {
        container["command"] = json!(["/bin/bash", "-c", script]);
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let phase = eventually(
        &format!("pod {name} to end"),
        Duration::from_secs(300),
        || async {
            let phase = pods.get(name).await.ok()?.status?.phase?;
            matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
        },
    )
    .await;
    let log = pods.logs(name, &LogParams::default()).await.unwrap_or_default();
    (phase, log)
}

/// Runs `script` in `image` and asserts that it succeeded; its log.
pub async fn succeeds(
    pods: &Api<Pod>,
    name: &str,
    image: &str,
    env: &[(&str, &str)],
    script: &str,
) -> String {
    let (phase, log) = run(pods, name, image, env, Some(script)).await;
    assert_eq!(phase, "Succeeded", "{name} in {image} failed:\n{log}");
    log
}

/// What every catalog image shows at runtime: its user's uid and gid, and whether group 0 may
/// write `path`.
pub const IDENTITY: &str = r#"echo "uid=$(id -u) gid=$(id -g)"; "#;
