//! Deployments first-class, against the dev cluster: `slip new-app` makes a Deployment whose
//! `image.openshift.io/triggers` annotation the operator's image trigger controller (in-process,
//! this namespace only) resolves, the controller-manager rolling it out on kwok's nodes; `slip
//! rollout` status/history/undo/pause/resume/restart on a Deployment; `slip logs` of a
//! Deployment's and a pod's containers, and `slip status` with its warnings, on the real node.
//! alice administers the project; bob has no rights in it.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use slipway_crds::image::{ImageStream, TagEvent};
use slipway_testkit::*;

const WAIT: Duration = Duration::from_secs(180);
const IMAGE_1: &str =
    "127.0.0.1:15000/web@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const IMAGE_2: &str =
    "127.0.0.1:15000/web@sha256:2222222222222222222222222222222222222222222222222222222222222222";

struct Env {
    client: Client,
    ns: TestNamespace,
    _dir: tempfile::TempDir,
    alice: PathBuf,
    bob: PathBuf,
}

impl Env {
    async fn start(prefix: &str) -> Self {
        ensure_crds();
        let client = client().await;
        let ns = TestNamespace::new(&client, prefix).await;
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (
            kubeconfig_as(dir.path(), "alice"),
            kubeconfig_as(dir.path(), "bob"),
        );
        let env = Self {
            client,
            ns,
            _dir: dir,
            alice,
            bob,
        };
        let rbac = "rbac.authorization.k8s.io";
        env.create(
            &format!("{rbac}/v1"),
            "roles",
            json!({"apiVersion": format!("{rbac}/v1"), "kind": "Role",
            "metadata": {"name": "slipway-kinds"},
            "rules": [{"apiGroups": ["slipway.dev"], "resources": ["*"], "verbs": ["*"]}]}),
        )
        .await;
        for (name, kind, role) in [
            ("alice-admin", "ClusterRole", "admin"),
            ("alice-slipway", "Role", "slipway-kinds"),
        ] {
            env.create(
                &format!("{rbac}/v1"),
                "rolebindings",
                json!({"apiVersion": format!("{rbac}/v1"), "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": rbac, "kind": kind, "name": role},
                "subjects": [{"kind": "User", "apiGroup": rbac, "name": "alice"}]}),
            )
            .await;
        }
        env
    }

    fn n(&self) -> &str {
        &self.ns.name
    }

    async fn create(&self, api_version: &str, plural: &str, object: Value) {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
        let resource = kube::core::ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), self.n(), &resource);
        api.create(&PostParams::default(), &serde_json::from_value(object).unwrap())
            .await
            .unwrap();
    }

    async fn slip_as(&self, who: &std::path::Path, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.n()];
        all.extend(args);
        run_program(env!("CARGO_BIN_EXE_slip-under-test"), Some(who), &all).await
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.slip_as(&self.alice.clone(), args).await;
        assert!(out.status.success(), "slip {args:?}: {}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn refused(&self, who: &std::path::Path, args: &[&str], needle: &str) {
        let out = self.slip_as(who, args).await;
        let text = output_text(&out);
        assert!(!out.status.success(), "slip {args:?} was accepted: {text}");
        assert!(
            text.contains(needle),
            "slip {args:?}: expected {needle:?} in: {text}"
        );
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), self.n())
    }

    async fn image_of(&self, name: &str) -> String {
        let d = self.deployments().get(name).await.unwrap();
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default()
    }

    async fn wait_image(&self, name: &str, image: &str) {
        eventually(&format!("deployment/{name} to run {image}"), WAIT, || async {
            (self.image_of(name).await == image).then_some(())
        })
        .await;
    }

    /// Records `reference` as the newest image of `stream:latest`, as an import or a build would.
    async fn push_tag(&self, stream: &str, reference: &str) {
        let api: Api<ImageStream> = Api::namespaced(self.client.clone(), self.n());
        let mut status = api.get_status(stream).await.unwrap().status.unwrap_or_default();
        status.record(
            "latest",
            TagEvent {
                created: slipway_crds::common::Time(k8s_openapi::jiff::Timestamp::now()),
                docker_image_reference: reference.into(),
                image: reference.rsplit_once('@').unwrap().1.into(),
                generation: 1,
            },
        );
        api.patch_status(
            stream,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    }

    async fn stop(self) {
        self.ns.delete().await;
    }
}

fn start_trigger_controller(namespace: &str) -> tokio::task::JoinHandle<()> {
    let namespace = namespace.to_string();
    tokio::spawn(async move {
        let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
        let settings = slipway_operator::image::Settings {
            namespace: Some(namespace),
            ..Default::default()
        };
        slipway_operator::image::triggers::run(ctx, settings).await;
    })
}

#[tokio::test]
async fn new_app_makes_a_deployment_that_its_image_trigger_rolls_out() {
    let env = Env::start("slip-deploy").await;
    let controller = start_trigger_controller(env.n());
    let out = env
        .ok(&[
            "new-app",
            "registry.example.com/team/web:1",
            "--name",
            "web",
            "--replicas",
            "2",
        ])
        .await;
    assert!(
        out.contains("app web created") && out.contains("slip rollout status deployment/web"),
        "{out}"
    );
    let web = env.deployments().get("web").await.unwrap();
    let triggers: Value = serde_json::from_str(&web.annotations()["image.openshift.io/triggers"]).unwrap();
    assert_eq!(
        triggers[0]["from"],
        json!({"kind": "ImageStreamTag", "name": "web:latest"})
    );
    assert_eq!(
        triggers[0]["fieldPath"],
        "spec.template.spec.containers[?(@.name==\"web\")].image"
    );
    let svc = Api::<Service>::namespaced(env.client.clone(), env.n())
        .get("web")
        .await
        .unwrap();
    assert_eq!(svc.spec.unwrap().selector.unwrap()["deployment"], "web");
    let dcs = dynamic_api(&env.client, "DeploymentConfig", env.n());
    assert!(
        dcs.list(&Default::default()).await.unwrap().items.is_empty(),
        "no DeploymentConfig by default"
    );

    // The tag moves: the trigger sets the image, the Deployment rolls out.
    env.push_tag("web", IMAGE_1).await;
    env.wait_image("web", IMAGE_1).await;
    let out = env.ok(&["rollout", "status", "deployment/web"]).await;
    assert!(
        out.ends_with("deployment \"web\" successfully rolled out\n"),
        "{out}"
    );
    env.push_tag("web", IMAGE_2).await;
    env.wait_image("web", IMAGE_2).await;
    env.ok(&["rollout", "status", "deployment/web"]).await;
    let history = env.ok(&["rollout", "history", "deployment/web"]).await;
    assert!(history.contains("\n1 ") && history.contains("\n2 "), "{history}");
    controller.abort();

    // --as-deployment-config keeps the DeploymentConfig.
    env.ok(&[
        "new-app",
        "registry.example.com/team/api:1",
        "--name",
        "api",
        "--as-deployment-config",
    ])
    .await;
    assert!(dcs.get_opt("api").await.unwrap().is_some());
    assert!(env.deployments().get_opt("api").await.unwrap().is_none());
    env.stop().await;
}

#[tokio::test]
async fn rollout_verbs_work_on_deployments() {
    let env = Env::start("slip-roll-deploy").await;
    env.create(
        "apps/v1",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "plain"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "plain"}},
            "template": {"metadata": {"labels": {"app": "plain"}},
                "spec": {"containers": [{"name": "plain", "image": IMAGE_1}]}}}}),
    )
    .await;
    env.ok(&["rollout", "status", "deployment/plain"]).await;
    env.ok(&["set", "image", "deployment/plain", &format!("plain={IMAGE_2}")])
        .await;
    env.ok(&["rollout", "status", "deployment/plain"]).await;
    let history = env.ok(&["rollout", "history", "deployment/plain"]).await;
    assert_eq!(
        history,
        "deployment.apps \"plain\"\nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n"
    );
    let revision_one = env
        .ok(&["rollout", "history", "deployment/plain", "--revision", "1"])
        .await;
    assert!(revision_one.contains(IMAGE_1), "{revision_one}");

    // Dry runs: each verb checks and reports, the Deployment is not changed (its generation,
    // which counts spec changes, stays).
    let generation = || async { env.deployments().get("plain").await.unwrap().metadata.generation };
    let before = generation().await;
    for (args, says) in [
        (
            vec!["rollout", "undo", "deployment/plain", "--dry-run"],
            "deployment.apps/plain rolled back to revision 1 (dry run)\n",
        ),
        (
            vec!["rollout", "undo", "deployment/plain", "--dry-run=server"],
            "deployment.apps/plain rolled back to revision 1 (server dry run)\n",
        ),
        (
            vec!["rollout", "restart", "deployment/plain", "--dry-run=server"],
            "deployment.apps/plain restarted (server dry run)\n",
        ),
        (
            vec!["rollout", "pause", "deployment/plain", "--dry-run=server"],
            "deployment.apps/plain paused (server dry run)\n",
        ),
    ] {
        assert_eq!(env.ok(&args).await, says, "{args:?}");
    }
    assert_eq!(generation().await, before, "a dry run changed the Deployment");
    assert_eq!(env.image_of("plain").await, IMAGE_2);
    env.refused(
        &env.bob.clone(),
        &["rollout", "undo", "deployment/plain", "--dry-run=server"],
        "forbidden",
    )
    .await;

    let out = env.ok(&["rollout", "undo", "deployment/plain"]).await;
    assert_eq!(out, "deployment.apps/plain rolled back to revision 1\n");
    assert_eq!(env.image_of("plain").await, IMAGE_1);
    env.ok(&["rollout", "status", "deployment/plain"]).await;

    env.ok(&["rollout", "pause", "deploy/plain"]).await;
    assert_eq!(
        env.deployments().get("plain").await.unwrap().spec.unwrap().paused,
        Some(true)
    );
    env.refused(
        &env.alice.clone(),
        &["rollout", "pause", "deployment/plain"],
        "already paused",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["rollout", "restart", "deployment/plain"],
        "resume it first",
    )
    .await;
    env.ok(&["rollout", "resume", "deployment/plain"]).await;
    // false is the default, which the API server does not store.
    assert_ne!(
        env.deployments().get("plain").await.unwrap().spec.unwrap().paused,
        Some(true)
    );

    let out = env.ok(&["rollout", "restart", "deployment/plain"]).await;
    assert_eq!(out, "deployment.apps/plain restarted\n");
    let template = env
        .deployments()
        .get("plain")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template;
    assert!(
        template
            .metadata
            .unwrap()
            .annotations
            .unwrap()
            .contains_key("kubectl.kubernetes.io/restartedAt")
    );
    env.ok(&["rollout", "status", "deployment/plain"]).await;

    env.refused(
        &env.alice.clone(),
        &["rollout", "undo", "deployment/plain", "--to-revision", "9"],
        "has no revision 9",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["rollout", "status", "deployment/missing"],
        "deployment \"missing\" not found",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["rollout", "cancel", "deployment/plain"],
        "are for DeploymentConfigs",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["rollout", "status", "svc/plain"],
        "is neither",
    )
    .await;
    env.refused(
        &env.bob.clone(),
        &["rollout", "restart", "deployment/plain"],
        "forbidden",
    )
    .await;
    env.stop().await;
}

fn busybox() -> String {
    let registry = std::env::var("SLIPWAY_REGISTRY").unwrap_or_else(|_| "127.0.0.1:15000".into());
    format!("{registry}/slipway/busybox:latest")
}

/// A Deployment of busybox on the real node running `script`.
fn real_deployment(name: &str, script: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "nodeSelector": {"slipway.dev/node": "real"},
                "tolerations": [{"key": "slipway.dev/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}],
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": name, "image": busybox(), "command": ["sh", "-c", script]}]}}}})
}

async fn pod_of(env: &Env, app: &str, ready: impl Fn(&Pod) -> bool) -> Pod {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), env.n());
    eventually(&format!("a pod of {app}"), WAIT, || async {
        let list = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .ok()?;
        list.items.into_iter().find(|p| ready(p))
    })
    .await
}

#[tokio::test]
async fn logs_and_status_on_the_real_node() {
    let env = Env::start("slip-status").await;
    env.create(
        "apps/v1",
        "deployments",
        real_deployment("talker", "echo hello from talker; exec sleep 3600"),
    )
    .await;
    env.create(
        "apps/v1",
        "deployments",
        real_deployment("crashy", "echo boom; exit 3"),
    )
    .await;
    env.create(
        "v1",
        "services",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lonely"},
        "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]}}),
    )
    .await;
    env.create("slipway.dev/v1alpha1", "buildconfigs", json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "app"}, "spec": {"source": {"type": "Git", "git": {"uri": "https://git.example.com/app.git"}},
            "strategy": {"type": "Docker", "dockerStrategy": {}}, "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}}}})).await;
    env.create("slipway.dev/v1alpha1", "builds", json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": "app-1", "labels": {"slipway.dev/build-config.name": "app", "slipway.dev/build.number": "1"}},
        "spec": {"source": {"type": "Git", "git": {"uri": "https://git.example.com/app.git"}},
            "strategy": {"type": "Docker", "dockerStrategy": {}}, "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}}}})).await;
    // The build ends Failed, as the build controller records it.
    dynamic_api(&env.client, "Build", env.n())
        .patch_status("app-1", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Failed", "reason": "DockerBuildFailed", "message": "the Dockerfile's RUN exited 2"}})))
        .await
        .unwrap();

    let talker = pod_of(&env, "talker", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|c| c[0].ready)
    })
    .await;
    let out = env.ok(&["logs", "deployment/talker"]).await;
    assert_eq!(out, "hello from talker\n");
    let out = env
        .ok(&["logs", &format!("pod/{}", talker.name_any()), "-c", "talker"])
        .await;
    assert_eq!(out, "hello from talker\n");
    env.refused(
        &env.alice.clone(),
        &["logs", &format!("pod/{}", talker.name_any()), "-c", "nope"],
        "has no container \"nope\"",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["logs", "svc/lonely"],
        "unknown kind \"svc\"",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["logs", "deployment/missing"],
        "deployment missing not found",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["logs", "build/app-1", "--previous"],
        "are for pods",
    )
    .await;
    env.refused(&env.bob.clone(), &["logs", "deployment/talker"], "forbidden")
        .await;

    // A DeploymentConfig's latest version's pods, rolled out by the deploy controller.
    let namespace = env.n().to_string();
    let deployer = tokio::spawn(async move {
        let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
        slipway_operator::deploy::run(ctx, Some(&namespace)).await;
    });
    let mut dc = real_deployment("dctalker", "echo hello from the dc; exec sleep 3600");
    dc["apiVersion"] = json!("slipway.dev/v1alpha1");
    dc["kind"] = json!("DeploymentConfig");
    dc["spec"]["selector"] = json!({"app": "dctalker"});
    env.create("slipway.dev/v1alpha1", "deploymentconfigs", dc).await;
    pod_of(&env, "dctalker", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|c| c[0].ready)
    })
    .await;
    assert_eq!(env.ok(&["logs", "dc/dctalker"]).await, "hello from the dc\n");
    deployer.abort();

    // Crash-looping: restarted twice (between back-offs it may run for a moment).
    let crashy = pod_of(&env, "crashy", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|c| c[0].restart_count >= 2)
    })
    .await;
    // While the kubelet swaps the crashed container for the next one, the previous one's log
    // can be briefly out of reach ("unable to retrieve container logs"): ask until it answers.
    eventually("the crashed container's log", WAIT, || async {
        let out = env.ok(&["logs", "deployment/crashy", "--previous"]).await;
        (out == "boom\n").then_some(())
    })
    .await;

    let status = env.ok(&["status"]).await;
    for needle in [
        "svc/lonely - ",
        "deployment/talker deploys ",
        "bc/app docker builds https://git.example.com/app.git -> istag/app:latest",
        "build #1 failed",
        "  * build/app-1 of bc/app failed: the Dockerfile's RUN exited 2",
        &format!(
            "  * pod/{} is crash-looping: container crashy restarted",
            crashy.name_any()
        ),
        "  * svc/lonely has no ready endpoints: 0 pods match its selector app=nobody",
        "use 'slip status --suggest' to see details.",
    ] {
        assert!(status.contains(needle), "slip status lacks {needle:?}:\n{status}");
    }
    let suggested = env.ok(&["status", "--suggest"]).await;
    for needle in [
        "read its log: slip logs build/app-1",
        &format!("slip logs pod/{} -c crashy --previous", crashy.name_any()),
        "start pods with the labels app=nobody",
    ] {
        assert!(
            suggested.contains(needle),
            "slip status --suggest lacks {needle:?}:\n{suggested}"
        );
    }
    env.refused(&env.bob.clone(), &["status"], "forbidden").await;
    env.stop().await;
}
