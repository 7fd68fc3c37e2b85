//! A private git repository built on the dev cluster's real node, as a user's BuildConfig names
//! it: over http with Basic credentials (`kubernetes.io/basic-auth`), and over ssh with a key
//! (`kubernetes.io/ssh-auth` with `known_hosts`) from an sshd this test starts, both through
//! `source.sourceSecret`. The build controller runs in-process for this namespace; the build pods
//! are the ones a cluster runs, unprivileged: every container as a non-root user. Refused, with
//! the reason in the Build: a wrong password, and an ssh server whose key the secret does not
//! know. And a Docker build's base image from a registry that wants a password, pulled with the
//! Secret the build's service account links.
//!
//! Needs the images of `make images` (dev/images.sh) and sshd (Debian's openssh-server, which
//! `make prereqs` installs); part of `make e2e` (alone: `make e2e-builds`).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use slipway_client::instantiate::instantiate;
use slipway_crds::BuildConfig;
use slipway_crds::build::{BuildPhase, BuildRequest};
use slipway_operator::build::pod::pod_name;
use slipway_testkit::real_node::*;
use slipway_testkit::ssh_git::SshGit;
use slipway_testkit::*;

mod real_node_support;

const USER: &str = "builder";
const PASSWORD: &str = "pr1vate-s3cret";

async fn create_secret(client: &kube::Client, ns: &str, secret: Value) {
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(secret).unwrap())
        .await
        .unwrap();
}

/// Every container of the build pod (init containers too) is told to run as non-root
/// (runAsNonRoot, by the pod's security context or its own) and names no root user: the kubelet
/// started it only after checking that the image's user is not root.
fn assert_non_root(pod: &Pod) {
    let spec = pod.spec.as_ref().unwrap();
    let pod_context = spec.security_context.clone().unwrap_or_default();
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        let own = c.security_context.clone().unwrap_or_default();
        let user = own.run_as_user.or(pod_context.run_as_user);
        let non_root = own.run_as_non_root.or(pod_context.run_as_non_root);
        assert!(
            user != Some(0) && non_root == Some(true),
            "container {} of {} runs as {user:?} (runAsNonRoot {non_root:?})",
            c.name,
            pod.name_any()
        );
    }
}

#[ignore = "needs `make images`; run with `make e2e-builds`"]
#[tokio::test(flavor = "multi_thread")]
async fn a_private_repository_is_built_with_basic_credentials_and_with_an_ssh_key() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "private").await;
    let n = ns.name.clone();
    pin_to_real_node(&client, &n).await;
    let dir = tempfile::tempdir().unwrap();
    let files = BTreeMap::from([("html/index.html", "from a private repository\n".to_string())]);
    let commit = git_repository(dir.path(), "app", &files);
    let http = git_http::GitHttp::start_with_auth(
        dir.path(),
        format!("{NODE_IP}:0").parse().unwrap(),
        Some((USER, PASSWORD)),
    )
    .await
    .unwrap();
    let ssh = SshGit::start(NODE_IP.parse().unwrap()).unwrap();
    let ssh_url = ssh.url(&dir.path().join("app.git"));

    let basic = |password: &str| json!({"type": "kubernetes.io/basic-auth", "stringData": {"username": USER, "password": password}});
    for (name, mut secret) in [
        ("basic", basic(PASSWORD)),
        ("basic-wrong", basic("not-the-password")),
        (
            "ssh",
            json!({"type": "kubernetes.io/ssh-auth",
                   "stringData": {"ssh-privatekey": ssh.client_key(), "known_hosts": ssh.known_hosts()}}),
        ),
        (
            "ssh-unknown-host",
            json!({"type": "kubernetes.io/ssh-auth", "stringData": {"ssh-privatekey": ssh.client_key()}}),
        ),
    ] {
        secret["metadata"] = json!({"name": name});
        create_secret(&client, &n, secret).await;
    }
    let builder = format!("{NODE_REGISTRY}/slipway/s2i-busybox:latest");
    let repository = format!("slipway-test/{n}");
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &n);
    let http_url = http.url(NODE_IP, "app");
    for (name, uri) in [
        ("basic", &http_url),
        ("basic-wrong", &http_url),
        ("ssh", &ssh_url),
        ("ssh-unknown-host", &ssh_url),
    ] {
        let bc: BuildConfig = serde_json::from_value(json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": name},
            "spec": {
                "source": {"type": "Git", "git": {"uri": uri, "ref": "main"}, "sourceSecret": {"name": name}},
                "strategy": {"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": builder}}},
                "output": {"to": {"kind": "DockerImage", "name": format!("{NODE_REGISTRY}/{repository}/{name}:latest")}},
                "completionDeadlineSeconds": 600,
            }
        }))
        .unwrap();
        configs.create(&PostParams::default(), &bc).await.unwrap();
    }
    let controller = real_node_support::start_build_controller(&n).await;
    let builds = real_node_support::Builds {
        client: client.clone(),
        ns: n.clone(),
        repository,
    };
    let mut started = BTreeMap::new();
    for name in ["basic", "basic-wrong", "ssh", "ssh-unknown-host"] {
        let build = instantiate(&client, &n, name, &BuildRequest::default())
            .await
            .unwrap();
        started.insert(name, build.name_any());
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), &n);
    for name in ["basic", "ssh"] {
        let build = &started[name];
        let digest = builds.complete(build).await;
        assert!(digest.starts_with("sha256:"), "{name}: {digest}");
        let recorded = Api::<slipway_crds::Build>::namespaced(client.clone(), &n)
            .get(build)
            .await
            .unwrap();
        let fetched = recorded
            .spec
            .common
            .revision
            .and_then(|r| r.git)
            .map(|g| g.commit)
            .unwrap_or_default();
        assert_eq!(fetched, commit, "{name} built the private repository's commit");
        let pod = pods.get(&pod_name(build)).await.unwrap();
        assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some("real-node"));
        assert_non_root(&pod);
    }
    for (name, says) in [
        ("basic-wrong", "credentials"),
        ("ssh-unknown-host", "known_hosts"),
    ] {
        let status = builds.finished(&started[name]).await;
        assert_eq!(status.phase, BuildPhase::Failed, "{name}: {status:?}");
        let told = format!(
            "{} {}",
            status.message.clone().unwrap_or_default(),
            status.log_snippet.clone().unwrap_or_default()
        );
        assert!(
            told.contains(says),
            "{name}: the Build should say {says:?}: {told}\nsshd: {}",
            ssh.log()
        );
        assert!(status.output.is_none(), "{name} pushed nothing");
    }
    // The server saw the key it was given, and nothing else got in.
    let log = ssh.log();
    assert!(log.contains("Accepted publickey"), "sshd log:\n{log}");

    controller.abort();
    drop(http);
    drop(ssh);
    ns.delete().await;
}

/// A Docker build whose base image is in a registry that wants a password (a docker-registry
/// with htpasswd this test starts, on the node's address): with no `pullSecret` of its own, the
/// build pulls it with the Secret its service account (`builder`) links as an image pull secret,
/// as OpenShift's builds do; a build run as an account that links nothing is refused by the
/// registry, and says so.
#[ignore = "needs `make images`; run with `make e2e-builds`"]
#[tokio::test(flavor = "multi_thread")]
async fn a_base_image_from_a_private_registry_is_pulled_with_the_service_accounts_pull_secret() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "pullsa").await;
    let n = ns.name.clone();
    pin_to_real_node(&client, &n).await;
    let private = registry::AuthRegistry::start_on("0.0.0.0", NODE_IP);
    let base = format!("{}/team/busybox:latest", private.addr);
    registry::copy_image(
        &format!("{LOCAL_REGISTRY}/slipway/busybox:latest"),
        &base,
        Some((&private.user, &private.password)),
    )
    .await
    .unwrap();
    create_secret(
        &client,
        &n,
        json!({"metadata": {"name": "private-pull"}, "type": "kubernetes.io/dockerconfigjson",
               "stringData": {".dockerconfigjson": private.docker_config(None)}}),
    )
    .await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &n);
    for (name, pull_secrets) in [
        ("builder", json!([{"name": "private-pull"}])),
        ("nolink", json!([])),
    ] {
        let account = json!({"metadata": {"name": name}, "imagePullSecrets": pull_secrets});
        accounts
            .create(&PostParams::default(), &serde_json::from_value(account).unwrap())
            .await
            .unwrap();
    }
    let repository = format!("slipway-test/{n}");
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &n);
    for (name, account) in [("linked", "builder"), ("unlinked", "nolink")] {
        let bc: BuildConfig = serde_json::from_value(json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": name},
            "spec": {
                "serviceAccount": account,
                "source": {"type": "Dockerfile", "dockerfile": "FROM busybox\nRUN echo built-on-the-private-base > /built\n"},
                "strategy": {"type": "Docker", "dockerStrategy": {"from": {"kind": "DockerImage", "name": base}}},
                "output": {"to": {"kind": "DockerImage", "name": format!("{NODE_REGISTRY}/{repository}/{name}:latest")}},
                "completionDeadlineSeconds": 600,
            }
        }))
        .unwrap();
        configs.create(&PostParams::default(), &bc).await.unwrap();
    }
    let private_addr = private.addr.clone();
    let controller = real_node_support::start_build_controller_with(&n, move |images| {
        images.insecure_registries.push(private_addr);
    })
    .await;
    let builds = real_node_support::Builds {
        client: client.clone(),
        ns: n.clone(),
        repository,
    };
    let linked = instantiate(&client, &n, "linked", &BuildRequest::default())
        .await
        .unwrap();
    let unlinked = instantiate(&client, &n, "unlinked", &BuildRequest::default())
        .await
        .unwrap();

    let digest = builds.complete(&linked.name_any()).await;
    assert!(digest.starts_with("sha256:"), "{digest}");
    let status = builds.finished(&unlinked.name_any()).await;
    assert_eq!(status.phase, BuildPhase::Failed, "{status:?}");
    let told = format!(
        "{:?} {} {}",
        status.reason,
        status.message.clone().unwrap_or_default(),
        builds.log(&unlinked.name_any()).await
    );
    assert!(
        told.to_lowercase().contains("unauthorized") || told.contains("authentication required"),
        "the unlinked build should say the registry refused it: {told}"
    );
    assert!(status.output.is_none(), "the unlinked build pushed nothing");

    controller.abort();
    drop(private);
    ns.delete().await;
}
