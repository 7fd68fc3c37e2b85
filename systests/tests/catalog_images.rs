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
use slipway_testkit::real_node::{NODE_REGISTRY, pin_to_real_node, registry_image, run_pod};
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

/// A pod of `image` with `env` in a container `c`, run once; `container` adds to the container.
fn pod(name: &str, image: &str, env: &[(&str, &str)], container: Value) -> Pod {
    let env: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    let mut c = json!({"name": "c", "image": image, "env": env});
    c.as_object_mut()
        .unwrap()
        .extend(container.as_object().cloned().unwrap_or_default());
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [c]}
    }))
    .unwrap()
}

/// Runs `image` in a pod to its end: `script` with `bash -c` (or the image's own command when
/// None), with `env`, as the image's user. The phase it ended in and its log.
pub async fn run(
    pods: &Api<Pod>,
    name: &str,
    image: &str,
    env: &[(&str, &str)],
    script: Option<&str>,
) -> (String, String) {
    let command = script.map_or(
        json!({}),
        |script| json!({"command": ["/bin/bash", "-c", script]}),
    );
    run_pod(pods, &pod(name, image, env, command), Duration::from_secs(300)).await
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

/// Runs `script` in `image` (its own command when None) and asserts that it failed, and that its
/// log says each of `says` and none of `never`; its log.
pub async fn fails_saying(
    pods: &Api<Pod>,
    name: &str,
    image: &str,
    env: &[(&str, &str)],
    script: Option<&str>,
    says: &[&str],
    never: &[&str],
) -> String {
    let (phase, log) = run(pods, name, image, env, script).await;
    assert_eq!(phase, "Failed", "{name} in {image} did not fail:\n{log}");
    assert_says(&log, says);
    for text in never {
        assert!(!log.contains(text), "{name} in {image} says {text:?}:\n{log}");
    }
    log
}

/// Asserts that `log` says each of `texts`.
pub fn assert_says(log: &str, texts: &[&str]) {
    for text in texts {
        assert!(log.contains(text), "no {text:?} in:\n{log}");
    }
}

/// Asserts that `log` says each text of `texts`, the other half of each pair telling what that
/// text shows.
pub fn assert_shows(log: &str, texts: &[(&str, &str)]) {
    for (text, what) in texts {
        assert!(log.contains(text), "{what}: no {text:?} in:\n{log}");
    }
}

/// Starts `image` with its own command and `env` in a pod, and waits until `probe` (a readiness
/// probe run with `/bin/sh -i -c`, as the templates declare theirs) passes. The pod's IP.
pub async fn serve(pods: &Api<Pod>, name: &str, image: &str, env: &[(&str, &str)], probe: &str) -> String {
    let probe_spec = json!({"readinessProbe": {
        "exec": {"command": ["/bin/sh", "-i", "-c", probe]},
        "initialDelaySeconds": 2, "periodSeconds": 2, "timeoutSeconds": 10
    }});
    pods.create(&PostParams::default(), &pod(name, image, env, probe_spec))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let status = pods.get(name).await.ok().and_then(|p| p.status);
        let ready = status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            return status.and_then(|s| s.pod_ip).unwrap();
        }
        let ended = status
            .and_then(|s| s.phase)
            .is_some_and(|p| p == "Failed" || p == "Succeeded");
        if ended || tokio::time::Instant::now() > deadline {
            let log = pods.logs(name, &LogParams::default()).await.unwrap_or_default();
            panic!("pod {name} never became ready (probe: {probe}):\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What every catalog image shows at runtime: its user's uid and gid (`uid=N gid=N`).
pub const IDENTITY: &str = r#"echo "uid=$(id -u) gid=$(id -g)"; "#;

/// Runs, in a builder, [`IDENTITY`], a listing of `/usr/libexec/s2i` and a write to
/// `/opt/app-root/src`, then `more`; asserts what every builder of the catalog shows (user 1001
/// in group 0, each of `scripts` in `/usr/libexec/s2i`, a home it may write). Its log.
pub async fn builder_identity(pods: &Api<Pod>, image: &str, scripts: &[&str], more: &str) -> String {
    let script =
        format!("{IDENTITY} ls /usr/libexec/s2i; touch /opt/app-root/src/w && echo writable; {more}");
    let log = succeeds(pods, "identity", image, &[], &script).await;
    assert!(log.contains("uid=1001 gid=0"), "{log}");
    for script in scripts {
        assert!(
            log.lines().any(|l| l == *script),
            "no {script} in /usr/libexec/s2i:\n{log}"
        );
    }
    assert!(log.contains("writable"), "{log}");
    log
}

/// Waits for the application a builder's `run` started on 8080 and fetches `path`.
pub fn fetch(path: &str) -> String {
    format!("for i in $(seq 1 150); do curl -fs localhost:8080{path} && break; sleep 0.2; done; echo\n")
}
