//! What tests on the dev cluster's real node share: its addresses, pinning a namespace's pods to
//! it, git repositories served where its pods reach them, and reading images back from the dev
//! registry (plain HTTP/1.0 on loopback: the registry is this machine's).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, LogParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The node's address on the pod bridge: where build pods reach the registry and git servers.
pub const NODE_IP: &str = "10.250.0.1";
/// The dev registry as pods (and builds) reach it.
pub const NODE_REGISTRY: &str = "10.250.0.1:15000";
/// The dev registry as this machine (and containerd on the node) reaches it.
pub const LOCAL_REGISTRY: &str = "127.0.0.1:15000";

/// Sends the namespace's pods to the real node (PodNodeSelector, PodTolerationRestriction).
pub async fn pin_to_real_node(client: &Client, namespace: &str) {
    let pinned = json!({"metadata": {"annotations": {
        "scheduler.alpha.kubernetes.io/node-selector": "slipway.dev/node=real",
        "scheduler.alpha.kubernetes.io/defaultTolerations":
            r#"[{"key":"slipway.dev/node","operator":"Equal","value":"real","effect":"NoSchedule"}]"#,
    }}});
    Api::<Namespace>::all(client.clone())
        .patch(namespace, &PatchParams::default(), &Patch::Merge(&pinned))
        .await
        .unwrap_or_else(|e| panic!("pinning {namespace} to the real node: {e}"));
}

/// Runs git in `dir` as Alice.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Alice", "-c", "user.email=alice@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running git");
    assert!(out.status.success(), "git {args:?}: {}", crate::output_text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare repository `<root>/<name>.git` whose `main` holds `files` (path → content; a path
/// ending in `.sh` or in a `bin/` folder is executable). Returns the commit id.
pub fn git_repository(root: &Path, name: &str, files: &BTreeMap<&str, String>) -> String {
    let bare = root.join(format!("{name}.git"));
    std::fs::create_dir_all(&bare).expect("bare repository directory");
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).expect("work tree");
    git(&work, &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        let file = work.join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("directories");
        std::fs::write(&file, content).expect("a file");
        if path.ends_with(".sh") || path.starts_with("bin/") || path.contains("/bin/") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "the test's application"]);
    git(
        &work,
        &["push", "-q", bare.to_str().expect("a UTF-8 path"), "main"],
    );
    git(&work, &["rev-parse", "HEAD"])
}

/// GET (or HEAD) `path` of the dev registry: the status line's code, the headers (lower-case
/// names) and the body.
pub fn registry_request(method: &str, path: &str) -> Option<(u16, BTreeMap<String, String>, Vec<u8>)> {
    let mut stream = TcpStream::connect(LOCAL_REGISTRY).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let accept =
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {LOCAL_REGISTRY}\r\nAccept: {accept}\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let code = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((code, headers, body))
}

/// The digest the registry serves for `repository:tag` (its manifest's Docker-Content-Digest).
pub fn registry_digest(repository: &str, tag: &str) -> Option<String> {
    let (code, headers, _) = registry_request("HEAD", &format!("/v2/{repository}/manifests/{tag}"))?;
    (code == 200).then(|| headers.get("docker-content-digest").cloned())?
}

/// The manifest and config of `repository:reference` in the dev registry.
pub fn registry_image(repository: &str, reference: &str) -> Option<(Value, Value)> {
    let (code, _, body) = registry_request("GET", &format!("/v2/{repository}/manifests/{reference}"))?;
    if code != 200 {
        return None;
    }
    let manifest: Value = serde_json::from_slice(&body).ok()?;
    let config = manifest.pointer("/config/digest")?.as_str()?;
    let (_, _, body) = registry_request("GET", &format!("/v2/{repository}/blobs/{config}"))?;
    Some((manifest, serde_json::from_slice(&body).ok()?))
}

/// The bytes of each layer blob of `repository@digest`, as stored (gzip-compressed tars).
pub fn registry_layers(repository: &str, digest: &str) -> Vec<Vec<u8>> {
    let (manifest, _) = registry_image(repository, digest).expect("the image is in the registry");
    manifest["layers"]
        .as_array()
        .expect("a layer list")
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().expect("a layer digest");
            registry_request("GET", &format!("/v2/{repository}/blobs/{d}"))
                .expect("the layer")
                .2
        })
        .collect()
}

/// Runs `command` in `image` (as pulled by the node from [`LOCAL_REGISTRY`]) in a pod named
/// `name`; its phase and log.
pub async fn run_in_image(pods: &Api<Pod>, name: &str, image: &str, command: &[&str]) -> (String, String) {
    let mut container = json!({"name": "app", "image": image});
    if !command.is_empty() {
        container["command"] = json!(command);
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container]}
    }))
    .expect("a pod");
    run_pod(pods, &pod, Duration::from_secs(180)).await
}

/// Creates `pod` (restartPolicy Never) and waits up to `timeout` for it to end: the phase it
/// ended in (Succeeded or Failed) and its log.
pub async fn run_pod(pods: &Api<Pod>, pod: &Pod, timeout: Duration) -> (String, String) {
    let name = pod.metadata.name.as_deref().expect("a named pod");
    pods.create(&PostParams::default(), pod)
        .await
        .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
    let phase = crate::eventually(&format!("pod {name} to end"), timeout, || async {
        let phase = pods.get(name).await.ok()?.status?.phase?;
        matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
    })
    .await;
    let log = pods.logs(name, &LogParams::default()).await.unwrap_or_default();
    (phase, log)
}

/// An image made for a test with buildah on this machine from `containerfile` and `files` (name,
/// content; written executable), pushed to the dev registry as `<repository>:<hash of both>`:
/// made once per content. Returns its pull spec as pods reach it.
pub fn test_image(repository: &str, containerfile: &str, files: &[(&str, &str)]) -> String {
    let tag = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (containerfile, files).hash(&mut h);
        format!("{:016x}", h.finish())
    };
    if registry_digest(repository, &tag).is_none() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, content).expect("a file of the image");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        std::fs::write(dir.path().join("Containerfile"), containerfile).expect("the Containerfile");
        let local = format!("{LOCAL_REGISTRY}/{repository}:{tag}");
        let context = dir.path().to_str().expect("a UTF-8 path");
        let target = format!("docker://{local}");
        for args in [
            vec!["bud", "-q", "--tls-verify=false", "-t", &local, context],
            vec!["push", "-q", "--tls-verify=false", &local, &target],
        ] {
            let out = Command::new("buildah")
                .args(&args)
                .env("BUILDAH_ISOLATION", "chroot")
                .output()
                .expect("running buildah");
            assert!(
                out.status.success(),
                "buildah {args:?}: {}",
                crate::output_text(&out)
            );
        }
    }
    format!("{NODE_REGISTRY}/{repository}:{tag}")
}
