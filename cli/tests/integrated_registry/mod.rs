//! The integrated registry the chart installs (dev/slipway-values.yaml: at 10.96.0.50:5000, TLS
//! with the chart's CA, token authentication served by the registry pod's `auth` container),
//! driven as its users drive it: `buildah push` with a Kubernetes token as the password, the
//! ImageStream tag moved by the registry's notification, a DeploymentConfig following the tag
//! rolled out on the real node (the kubelet pulling with the project's `default-dockercfg`), and
//! another project's accounts refused until `slip policy add-role-to-user system:image-puller`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use slipway_crds::{DeploymentConfig, ImageStream};
use slipway_testkit::*;

use crate::support::*;

/// The integrated registry's address in dev/slipway-values.yaml.
pub const REGISTRY: &str = "10.96.0.50:5000";
/// Its token endpoint (the realm its 401s name).
const TOKEN_URL: &str = "https://10.96.0.50:5001/registry/token";
const SYSTEM_NAMESPACE: &str = "slipway-system";

/// What a run measured: push answered → tag moved → the DeploymentConfig's new ReplicaSet.
#[derive(Debug, Default)]
pub struct Timings {
    pub tag_moved: Vec<f64>,
    pub replica_set: Vec<f64>,
}

/// The chart's CA in a directory buildah takes as `--cert-dir` (and curl as `--cacert`).
pub async fn ca_dir(client: &kube::Client, dir: &Path) -> std::path::PathBuf {
    let secret = Api::<Secret>::namespaced(client.clone(), SYSTEM_NAMESPACE)
        .get("slipway-registry-tls")
        .await
        .unwrap();
    let ca = secret.data.unwrap()["ca.crt"].0.clone();
    let certs = dir.join("registry-certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), ca).unwrap();
    certs
}

/// A token of the service account `name` (made when missing) for the API server's audience.
pub async fn account_token(client: &kube::Client, namespace: &str, name: &str) -> String {
    service_account_token(client, namespace, name, 3600).await
}

/// Binds `cluster_role` in `namespace` to the account `account_namespace/account`.
async fn bind(client: &kube::Client, namespace: &str, cluster_role: &str, account: (&str, &str)) {
    let name = format!("{}-{}", account.1, cluster_role.replace(':', "-"));
    bind_service_account(client, namespace, &name, "ClusterRole", cluster_role, account).await;
}

/// Runs buildah; its status and what it printed.
fn buildah(args: &[&str]) -> (bool, String) {
    let out = Command::new("buildah")
        .args(args)
        .env("BUILDAH_ISOLATION", "chroot")
        .output()
        .expect("running buildah");
    (out.status.success(), output_text(&out))
}

/// A local image made from busybox with a label of `version`: each version has its own digest.
fn local_image(version: &str) -> String {
    image_from_busybox(version, None)
}

/// A local image made from busybox with a layer of its own (64 KiB of random bytes), so that
/// removing it frees a layer blob too.
fn image_with_layer(dir: &Path, version: &str) -> String {
    let file = dir.join(unique_name("layer"));
    // 64 KiB that do not compress: the layer's blob is that big.
    let mut random = vec![0u8; 64 * 1024];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut random).unwrap();
    std::fs::write(&file, random).unwrap();
    image_from_busybox(version, Some(&file))
}

fn image_from_busybox(version: &str, layer: Option<&Path>) -> String {
    let base = format!(
        "{}/slipway/busybox:latest",
        slipway_testkit::real_node::LOCAL_REGISTRY
    );
    let (pulled, text) = buildah(&["pull", "-q", "--tls-verify=false", &base]);
    assert!(pulled, "buildah pull {base}: {text}");
    let name = format!("localhost/{}:{version}", unique_name("registry-e2e"));
    let (made, container) = buildah(&["from", "--pull=never", &base]);
    assert!(made, "buildah from: {container}");
    let container = container.trim().lines().last().unwrap().to_string();
    let label = format!("slipway.dev/test-version={version}");
    let (configured, text) = buildah(&["config", "--label", &label, &container]);
    assert!(configured, "buildah config: {text}");
    if let Some(file) = layer {
        let (copied, text) = buildah(&["copy", &container, file.to_str().unwrap(), "/unique"]);
        assert!(copied, "buildah copy: {text}");
    }
    let (committed, text) = buildah(&["commit", "-q", "--rm", &container, &name]);
    assert!(committed, "buildah commit: {text}");
    name
}

/// `buildah push` of `image` to `target` (repository:tag in the integrated registry) with the
/// token as the password.
fn push(image: &str, target: &str, certs: &Path, user: &str, token: &str) -> (bool, String) {
    let creds = format!("{user}:{token}");
    let digest_file = tempfile::NamedTempFile::new().unwrap();
    let (ok, text) = buildah(&[
        "push",
        "--cert-dir",
        certs.to_str().unwrap(),
        "--creds",
        &creds,
        "--digestfile",
        digest_file.path().to_str().unwrap(),
        image,
        &format!("docker://{REGISTRY}/{target}"),
    ]);
    let digest = std::fs::read_to_string(digest_file.path()).unwrap_or_default();
    (ok, if ok { digest.trim().to_string() } else { text })
}

/// `buildah pull` of `reference` from the integrated registry with the token as the password.
fn pull(reference: &str, certs: &Path, user: &str, token: &str) -> (bool, String) {
    let creds = format!("{user}:{token}");
    buildah(&[
        "pull",
        "-q",
        "--cert-dir",
        certs.to_str().unwrap(),
        "--creds",
        &creds,
        &format!("docker://{REGISTRY}/{reference}"),
    ])
}

/// The token service's answer for `scope` with the Basic password `token`: the status, and the
/// repository actions the registry token grants.
fn token_actions(certs: &Path, token: &str, scope: &str) -> (u16, Vec<String>) {
    let url = format!("{TOKEN_URL}?service=slipway-registry&scope={scope}");
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(certs.join("ca.crt"))
        .args(["-u", &format!("someone:{token}"), &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    let code: u16 = code.trim().parse().unwrap();
    if code != 200 {
        return (code, Vec::new());
    }
    let answer: serde_json::Value = serde_json::from_str(body).unwrap();
    let jwt = answer["token"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let actions = claims["access"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    (code, actions)
}

/// The registry's answer (HTTP status) to a HEAD of `repository@digest`, asked with a registry
/// token for `pull` obtained with the Kubernetes token `token`.
fn manifest_status(certs: &Path, token: &str, repository: &str, digest: &str) -> u16 {
    let url = format!("{TOKEN_URL}?service=slipway-registry&scope=repository:{repository}:pull");
    let out = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(certs.join("ca.crt"))
        .args(["-u", &format!("someone:{token}"), &url])
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bearer = answer["token"].as_str().unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", "--cacert"])
        .arg(certs.join("ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {bearer}")])
        .args([
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        ])
        .arg(format!("https://{REGISTRY}/v2/{repository}/manifests/{digest}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// A number after `label` in slip's report (`blobs before: 12,` → 12).
fn reported(report: &str, label: &str) -> u64 {
    let at = report
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"))
        + label.len();
    report[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in:\n{report}"))
}

/// `slip adm prune images`, as the cluster's admin (the test's own kubeconfig).
async fn prune(args: &[&str]) -> String {
    let mut all = vec![
        "adm",
        "prune",
        "images",
        "--keep-tag-revisions",
        "1",
        "--keep-younger-than",
        "0s",
    ];
    all.extend_from_slice(args);
    let out = run_program(env!("CARGO_BIN_EXE_slip"), None, &all).await;
    let text = output_text(&out);
    assert!(out.status.success(), "slip {}:\n{text}", all.join(" "));
    text
}

/// Pruning: three images pushed to a tag nothing else uses; with one revision kept and no grace,
/// a dry run removes nothing, then the two older images go (manifests and their own blobs, as
/// the report counts them), and what the stream keeps or a workload names stays pullable.
pub async fn pruning(client: &kube::Client, alice: &Path, dir: &Path, project: &str) {
    use slipway_crds::ImagePrune;
    // A project's admin is no cluster admin: refused by RBAC, nothing made.
    let refused = run_program(
        env!("CARGO_BIN_EXE_slip"),
        Some(alice),
        &["adm", "prune", "images", "--confirm"],
    )
    .await;
    let text = output_text(&refused);
    assert!(!refused.status.success() && text.contains("forbidden"), "{text}");
    let certs = dir.join("registry-certs");
    let admin_token = account_token(client, project, "pusher").await;
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), project);
    let mut pushed = Vec::new();
    for n in 1..=3 {
        let image = image_with_layer(dir, &format!("scratch-{n}"));
        let (ok, digest) = push(
            &image,
            &format!("{project}/scratch:a"),
            &certs,
            "pusher",
            &admin_token,
        );
        assert!(ok, "push scratch {n}: {digest}");
        tag_moves(&streams, "scratch", "a", &digest, Instant::now()).await;
        pushed.push(digest);
    }
    let repository = format!("{project}/scratch");
    // An image the DeploymentConfig's first version (its ReplicaSet) names: it stays, although
    // the stream's history keeps only the newest.
    let first_live = Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(client.clone(), project)
        .get("pulled-1")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .unwrap()
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap();
    let first_live_digest = first_live.rsplit_once('@').unwrap().1.to_string();
    for digest in &pushed {
        assert_eq!(manifest_status(&certs, &admin_token, &repository, digest), 200);
    }

    let dry = prune(&[]).await;
    assert!(dry.contains("dry run") && dry.contains("Complete"), "{dry}");
    assert!(reported(&dry, "manifests kept:") > 0, "{dry}");
    assert!(reported(&dry, ", would remove:") >= 2, "{dry}");
    for digest in &pushed {
        assert_eq!(
            manifest_status(&certs, &admin_token, &repository, digest),
            200,
            "a dry run removed {digest}"
        );
    }

    let done = prune(&["--confirm"]).await;
    assert!(done.contains("Complete") && !done.contains("dry run"), "{done}");
    let before = reported(&done, "blobs before:");
    let bytes_freed = reported(&done, "(");
    let blobs_removed = {
        let at = done.find("blobs before:").unwrap();
        reported(&done[at..], ", removed:")
    };
    let after = reported(&done, "after:");
    println!("pruning: {done}");
    // Each removed image frees its manifest, its config and its own layer.
    assert!(blobs_removed >= 6, "{done}");
    assert_eq!(after, before - blobs_removed, "{done}");
    assert!(
        bytes_freed >= 2 * 64 * 1024,
        "the layers' bytes are counted: {done}"
    );
    for digest in &pushed[..2] {
        assert_eq!(
            manifest_status(&certs, &admin_token, &repository, digest),
            404,
            "{digest} still served"
        );
    }
    assert_eq!(
        manifest_status(&certs, &admin_token, &repository, &pushed[2]),
        200,
        "the newest stays"
    );
    assert_eq!(
        manifest_status(
            &certs,
            &admin_token,
            &format!("{project}/pushed"),
            &first_live_digest
        ),
        200,
        "an image a ReplicaSet names stays"
    );
    let history = streams.get("scratch").await.unwrap().status.unwrap();
    assert_eq!(history.tags.iter().find(|t| t.tag == "a").unwrap().items.len(), 1);
    // The running version still runs; the prunes made here go.
    let dc = Api::<DeploymentConfig>::namespaced(client.clone(), project)
        .get("pulled")
        .await
        .unwrap();
    assert!(dc.status.unwrap().ready_replicas >= 1);
    let prunes: Api<ImagePrune> = Api::all(client.clone());
    for p in prunes.list(&ListParams::default()).await.unwrap() {
        if p.metadata
            .labels
            .unwrap_or_default()
            .contains_key("slipway.dev/scheduled")
        {
            continue;
        }
        let _ = prunes
            .delete(&p.metadata.name.unwrap(), &Default::default())
            .await;
    }
}

/// The HTTP status the API server answers `token` with.
fn api_status(token: &str) -> String {
    let out = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg("https://127.0.0.1:16443/api")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The password in an account's registry credentials Secret, once it is written and linked.
pub async fn registry_password(client: &kube::Client, namespace: &str, account: &str) -> String {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let name = format!("{account}-dockercfg");
    let secret = eventually(
        &format!("{namespace}/{name}, linked to {account}"),
        Duration::from_secs(60),
        || async {
            let linked = accounts
                .get_opt(account)
                .await
                .ok()??
                .image_pull_secrets?
                .iter()
                .any(|r| r.name == name);
            let secret = secrets.get_opt(&name).await.ok()??;
            linked.then_some(secret)
        },
    )
    .await;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
    let config = String::from_utf8(secret.data.unwrap()[".dockerconfigjson"].0.clone()).unwrap();
    let parsed = slipway_crds::dockercfg::Credentials::parse(&config).unwrap();
    let (_, password) = parsed
        .for_registry(REGISTRY)
        .unwrap_or_else(|| panic!("{name} has no credentials for {REGISTRY}: {config}"));
    password.to_string()
}

/// The digest the tag `stream:tag` points at, when it does.
async fn tag_digest(streams: &Api<ImageStream>, stream: &str, tag: &str) -> Option<String> {
    let status = streams.get_opt(stream).await.ok()??.status?;
    Some(status.latest(tag)?.image.clone())
}

/// Waits until `stream:tag` points at `digest`; the seconds since `since`.
async fn tag_moves(streams: &Api<ImageStream>, stream: &str, tag: &str, digest: &str, since: Instant) -> f64 {
    eventually(
        &format!("{stream}:{tag} at {digest}"),
        Duration::from_secs(30),
        || async {
            (tag_digest(streams, stream, tag).await.as_deref() == Some(digest))
                .then(|| since.elapsed().as_secs_f64())
        },
    )
    .await
}

/// Waits until the DeploymentConfig `name` has `version` rolled out with a ready pod on the real
/// node running `image`; the seconds from `since` until its ReplicaSet existed.
async fn rolled_out(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    version: i64,
    image: &str,
    since: Instant,
) -> f64 {
    let replica_sets = Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(client.clone(), namespace);
    let rs_name = format!("{name}-{version}");
    let created = eventually(
        &format!("ReplicaSet {rs_name}"),
        Duration::from_secs(60),
        || async {
            replica_sets
                .get_opt(&rs_name)
                .await
                .ok()?
                .map(|_| since.elapsed().as_secs_f64())
        },
    )
    .await;
    let dcs = Api::<DeploymentConfig>::namespaced(client.clone(), namespace);
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let selector = ListParams::default().labels(&format!("slipway.dev/deployment.name={rs_name}"));
    eventually(
        &format!("{name} version {version} ready on the real node"),
        Duration::from_secs(180),
        || async {
            let status = dcs.get(name).await.ok()?.status?;
            if status.latest_version != version || status.ready_replicas < 1 {
                return None;
            }
            let ready = pods.list(&selector).await.ok()?.items.into_iter().any(|p| {
                let spec = p.spec.unwrap_or_default();
                let ready = p
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                ready
                    && spec.node_name.as_deref() == Some("real-node")
                    && spec.containers[0].image.as_deref() == Some(image)
            });
            ready.then_some(())
        },
    )
    .await;
    created
}

/// A pod of `image` as the restricted Pod Security level wants it.
fn pod_spec(image: &str) -> serde_json::Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 1,
        "containers": [{
            "name": "main", "image": image, "command": ["sleep", "3600"],
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
        }],
    })
}

/// A project admin (the account `pusher`, bound to `admin`) pushes a first image with buildah;
/// its tag `pushed:live` moves, and a DeploymentConfig following it rolls out on the real node,
/// the kubelet pulling with the project's `default-dockercfg`. The admin's token, and the
/// repository:tag pushed to.
pub async fn follow_pushes(
    client: &kube::Client,
    project: &str,
    certs: &Path,
    timings: &mut Timings,
) -> (String, String) {
    bind(client, project, "admin", (project, "pusher")).await;
    let admin_token = account_token(client, project, "pusher").await;
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), project);
    let v1 = local_image("1");
    let target = format!("{project}/pushed:live");
    let (pushed, digest1) = eventually(
        "the admin's push (RBAC seen)",
        Duration::from_secs(30),
        || async {
            let (ok, out) = push(&v1, &target, certs, "pusher", &admin_token);
            ok.then(|| (Instant::now(), out))
        },
    )
    .await;
    assert!(digest1.starts_with("sha256:"), "{digest1}");
    timings
        .tag_moved
        .push(tag_moves(&streams, "pushed", "live", &digest1, pushed).await);
    let stream = streams.get("pushed").await.unwrap();
    let reference = stream
        .status
        .unwrap()
        .latest("live")
        .unwrap()
        .docker_image_reference
        .clone();
    assert_eq!(reference, format!("{REGISTRY}/{project}/pushed@{digest1}"));

    let dc: DeploymentConfig = serde_json::from_value(json!({
        "metadata": {"name": "pulled"},
        "spec": {
            "replicas": 1,
            "selector": {"app": "pulled"},
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": {"app": "pulled"}}, "spec": pod_spec(" ")},
            "triggers": [{"type": "ImageChange", "imageChangeParams": {
                "automatic": true, "containerNames": ["main"],
                "from": {"kind": "ImageStreamTag", "name": "pushed:live"},
            }}],
        },
    }))
    .unwrap();
    Api::<DeploymentConfig>::namespaced(client.clone(), project)
        .create(&PostParams::default(), &dc)
        .await
        .unwrap();
    // The kubelet pulls over TLS (dev/registry-trust.sh) with the default account's credentials.
    rolled_out(client, project, "pulled", 1, &reference, Instant::now()).await;
    (admin_token, target)
}

/// Pushes of new images as the admin, one per version in `versions` (the DeploymentConfig's
/// versions they make): each time, push answered → tag moved, and → the version's ReplicaSet.
pub async fn pushes(
    client: &kube::Client,
    project: &str,
    certs: &Path,
    admin_token: &str,
    versions: std::ops::RangeInclusive<i64>,
    timings: &mut Timings,
) {
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), project);
    let target = format!("{project}/pushed:live");
    for n in versions {
        let image = local_image(&n.to_string());
        let (ok, digest) = push(&image, &target, certs, "pusher", admin_token);
        let pushed = Instant::now();
        assert!(ok, "push {n}: {digest}");
        timings
            .tag_moved
            .push(tag_moves(&streams, "pushed", "live", &digest, pushed).await);
        let image = format!("{REGISTRY}/{project}/pushed@{digest}");
        timings
            .replica_set
            .push(rolled_out(client, project, "pulled", n, &image, pushed).await);
    }
}

/// The scenario; `project` is alice's, `other` bob's.
pub async fn integrated_registry(
    client: &kube::Client,
    alice: &Path,
    dir: &Path,
    project: &str,
    other: &str,
) -> Timings {
    let certs = ca_dir(client, dir).await;
    let mut timings = Timings::default();

    // --- The project's credentials: for the registry's audience, refused by the API server ---
    for account in ["builder", "deployer"] {
        registry_password(client, project, account).await;
    }
    let default_password = registry_password(client, project, "default").await;
    assert_eq!(
        api_status(&default_password),
        "401",
        "the registry credentials' token is refused by the API server"
    );

    // --- A project admin pushes with buildah; the tag moves; a DeploymentConfig follows -------
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), project);
    let (admin_token, target) = follow_pushes(client, project, &certs, &mut timings).await;
    pushes(client, project, &certs, &admin_token, 2..=4, &mut timings).await;
    let v1 = local_image("intruder");
    let live = tag_digest(&streams, "pushed", "live").await.unwrap();

    // --- Another project's accounts: refused, until granted system:image-puller ------------
    bind(client, other, "admin", (other, "intruder")).await;
    let intruder = account_token(client, other, "intruder").await;
    let (status, actions) = token_actions(
        &certs,
        &intruder,
        &format!("repository:{project}/pushed:pull,push"),
    );
    assert_eq!(
        (status, actions),
        (200, Vec::<String>::new()),
        "no action on another project"
    );
    let (ok, text) = push(&v1, &target, &certs, "intruder", &intruder);
    assert!(!ok, "another project's admin pushed into {project}");
    assert!(
        text.contains("denied")
            || text.contains("unauthorized")
            || text.contains("401")
            || text.contains("403"),
        "{text}"
    );
    let (ok, text) = pull(&format!("{project}/pushed:live"), &certs, "intruder", &intruder);
    assert!(!ok, "another project's admin pulled from {project}: {text}");
    assert_eq!(
        tag_digest(&streams, "pushed", "live").await.as_deref(),
        Some(live.as_str()),
        "the refused push moved nothing"
    );
    let (status, actions) = token_actions(
        &certs,
        "not-a-token",
        &format!("repository:{project}/pushed:pull"),
    );
    assert_eq!((status, actions.len()), (401, 0));

    let other_default = registry_password(client, other, "default").await;
    let (ok, _) = pull(
        &format!("{project}/pushed:live"),
        &certs,
        "default",
        &other_default,
    );
    assert!(
        !ok,
        "{other}'s default account pulled from {project} before being granted"
    );
    let member = format!("system:serviceaccount:{other}:default");
    slip(
        alice,
        &[
            "-n",
            project,
            "policy",
            "add-role-to-user",
            "system:image-puller",
            &member,
        ],
    )
    .await;
    eventually(
        "the puller role to take effect",
        Duration::from_secs(30),
        || async {
            pull(
                &format!("{project}/pushed:live"),
                &certs,
                "default",
                &other_default,
            )
            .0
            .then_some(())
        },
    )
    .await;
    let (_, actions) = token_actions(
        &certs,
        &other_default,
        &format!("repository:{project}/pushed:pull,push"),
    );
    assert_eq!(actions, vec!["pull".to_string()], "pull only, never push");
    // And the kubelet pulls it into the other project with that project's own credentials.
    let image = format!("{REGISTRY}/{project}/pushed@{live}");
    let pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": "borrowed"}, "spec": pod_spec(&image)})).unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), other);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually(
        "the other project's pod of the granted image running",
        Duration::from_secs(120),
        || async {
            let phase = pods.get("borrowed").await.ok()?.status?.phase?;
            (phase == "Running").then_some(())
        },
    )
    .await;
    timings
}
