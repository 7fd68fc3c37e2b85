//! Image references across projects, played as an attacker: a tenant's Build or DeploymentConfig
//! names another project's ImageStream. The operator (in-process, limited to the attacker's
//! namespace, with the test's cluster-admin rights) must ask as the tenant's service account and
//! refuse, leaving the victim's ImageStream exactly as it was; once the victim binds the rules of
//! OpenShift's `system:image-pusher` / `system:image-puller` (as the chart renders them) to that
//! account, the same reference goes through.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod deploy_support;
mod support;

use std::time::Duration;

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use slipway_client::instantiate::instantiate;
use slipway_crds::build::{BuildPhase, BuildRequest, BuildTriggerCause};
use slipway_crds::common::Time;
use slipway_crds::image::TagEvent;
use slipway_crds::{Build, BuildConfig, ImageStream};
use slipway_operator::access::{self, ImageAccess, ServiceAccount};
use slipway_operator::build::controller::Settings;
use slipway_testkit::*;
use support::{Controller, Fixture};

const WAIT: Duration = Duration::from_secs(120);
const REGISTRY: &str = "127.0.0.1:15000";
const DIGEST: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";

/// Binds the chart's ClusterRole `role`'s rules in `namespace` to `account`, and waits until the
/// API server's authorizer says so (it reads RBAC from a cache).
async fn grant(client: &Client, namespace: &str, role: &str, account: &ServiceAccount, access: ImageAccess) {
    let local = slipway_testkit::chart_role_in(client, namespace, role).await;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{}-{}", account.namespace, access.verb())},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": local},
        "subjects": [{"kind": "ServiceAccount", "name": account.name, "namespace": account.namespace}],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    eventually("the binding to take effect", WAIT, || async {
        let review = access::review(account, namespace, access);
        let answer = reviews.create(&PostParams::default(), &review).await.ok()?;
        answer.status?.allowed.then_some(())
    })
    .await;
}

/// The victim's ImageStream `name`, with an image on `latest` (what its own build pushed).
async fn victim_stream(client: &Client, namespace: &str, name: &str) {
    let api: Api<ImageStream> = Api::namespaced(client.clone(), namespace);
    let is: ImageStream = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
        "metadata": {"name": name}, "spec": {"tags": [{"name": "prod"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &is).await.unwrap();
    let mut status = slipway_crds::ImageStreamStatus::default();
    status.record(
        "latest",
        TagEvent {
            created: Time(k8s_openapi::jiff::Timestamp::now()),
            docker_image_reference: format!("{REGISTRY}/{namespace}/{name}@sha256:{}", "1".repeat(64)),
            image: format!("sha256:{}", "1".repeat(64)),
            generation: 1,
        },
    );
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap();
}

/// Everything of an ImageStream an attacker could change: resourceVersion, spec and status.
async fn snapshot(client: &Client, namespace: &str, name: &str) -> (Option<String>, Value, Value) {
    let is = Api::<ImageStream>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap();
    (
        is.resource_version(),
        serde_json::to_value(&is.spec).unwrap(),
        serde_json::to_value(&is.status).unwrap(),
    )
}

/// The attacker's project, running the build controller; and the victim's.
struct Builds {
    client: Client,
    attacker: TestNamespace,
    victim: TestNamespace,
    controller: Controller,
}

impl Builds {
    async fn start(prefix: &str) -> Self {
        let Fixture { client, ns: attacker } = Fixture::start(&format!("{prefix}-a")).await;
        let victim = TestNamespace::new(&client, &format!("{prefix}-v")).await;
        let settings = Settings {
            registry: REGISTRY.into(),
            namespace: Some(attacker.name.clone()),
            ..Default::default()
        };
        let controller =
            Controller::start(|ctx| slipway_operator::build::controller::run(ctx, settings)).await;
        victim_stream(&client, &victim.name, "web").await;
        Self {
            client,
            attacker,
            victim,
            controller,
        }
    }

    async fn stop(mut self) {
        self.controller.stop().await;
        self.attacker.delete().await;
        self.victim.delete().await;
    }

    fn builder(&self) -> ServiceAccount {
        ServiceAccount::new(&self.attacker.name, "builder")
    }

    /// A BuildConfig `name` of the attacker with `strategy` and `output`.
    async fn config(&self, name: &str, strategy: Value, output: Value) {
        let bc: BuildConfig = serde_json::from_value(json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": name},
            "spec": {
                "source": {"type": "Git", "git": {"uri": "https://example.com/evil.git"}},
                "strategy": strategy, "output": output,
                "nodeSelector": {"type": "kwok"},
            },
        }))
        .unwrap();
        Api::<BuildConfig>::namespaced(self.client.clone(), &self.attacker.name)
            .create(&PostParams::default(), &bc)
            .await
            .unwrap();
    }

    async fn start_build(&self, bc: &str) -> String {
        let request = BuildRequest {
            cause: BuildTriggerCause {
                message: "Manually triggered".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        instantiate(&self.client, &self.attacker.name, bc, &request)
            .await
            .unwrap()
            .name_any()
    }

    async fn await_phase(&self, build: &str, phase: BuildPhase) -> Build {
        let builds: Api<Build> = Api::namespaced(self.client.clone(), &self.attacker.name);
        eventually(&format!("{build} to be {phase:?}"), WAIT, || async {
            let b = builds.get_opt(build).await.ok()??;
            (b.status.as_ref()?.phase == phase).then_some(b)
        })
        .await
    }

    async fn pod(&self, build: &str) -> Option<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), &self.attacker.name)
            .get_opt(&format!("{build}-build"))
            .await
            .unwrap()
    }
}

fn source_from_docker_image() -> Value {
    json!({"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "example.com/builder:1"}}})
}

#[tokio::test]
async fn a_build_cannot_push_into_another_project_until_its_builder_may() {
    let run = Builds::start("iso-out").await;
    let before = snapshot(&run.client, &run.victim.name, "web").await;
    let output =
        json!({"to": {"kind": "ImageStreamTag", "name": "web:latest", "namespace": run.victim.name}});
    run.config("evil", source_from_docker_image(), output).await;

    let refused = run.start_build("evil").await;
    let build = run.await_phase(&refused, BuildPhase::Failed).await;
    let status = build.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("OutputImageForbidden"));
    let message = status.message.unwrap();
    assert!(
        message.contains(&format!(
            "may not update imagestreams/layers in namespace {}",
            run.victim.name
        )) && message.contains("system:image-pusher"),
        "{message}"
    );
    assert!(run.pod(&refused).await.is_none(), "a refused build has no pod");
    assert_eq!(snapshot(&run.client, &run.victim.name, "web").await, before);

    // The victim lets the attacker's builder push: the next build runs and moves the tag.
    grant(
        &run.client,
        &run.victim.name,
        "system:image-pusher",
        &run.builder(),
        ImageAccess::Push,
    )
    .await;
    let allowed = run.start_build("evil").await;
    let build = run.await_phase(&allowed, BuildPhase::Running).await;
    assert_eq!(
        build.status.unwrap().output_docker_image_reference,
        Some(format!("{REGISTRY}/{}/web:latest", run.victim.name))
    );
    let result = json!({"stage": "s2i", "success": true, "digest": DIGEST}).to_string();
    Api::<Pod>::namespaced(run.client.clone(), &run.attacker.name)
        .patch(
            &format!("{allowed}-build"),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "kwok.slipway.dev/outcome": "Succeeded",
                "kwok.slipway.dev/termination-message": result}}})),
        )
        .await
        .unwrap();
    run.await_phase(&allowed, BuildPhase::Complete).await;
    let is = Api::<ImageStream>::namespaced(run.client.clone(), &run.victim.name)
        .get("web")
        .await
        .unwrap();
    assert_eq!(is.status.unwrap().latest("latest").unwrap().image, DIGEST);
    run.stop().await;
}

/// The same attacks through the integrated registry's pull specs instead of ImageStream
/// references: a DockerImage output `<registry>/<victim>/web:latest` is the victim's stream's
/// repository, and a DockerImage `from` there is the victim's image; both are checked as the
/// stream would be. A pull spec of another registry is not Slipway's to check.
#[tokio::test]
async fn a_build_cannot_reach_another_project_through_the_registrys_pull_specs() {
    let run = Builds::start("iso-spec").await;
    let before = snapshot(&run.client, &run.victim.name, "web").await;
    let victim_repository = format!("{REGISTRY}/{}/web", run.victim.name);
    let output = json!({"to": {"kind": "DockerImage", "name": format!("{victim_repository}:latest")}});
    run.config("evil-push", source_from_docker_image(), output).await;
    let from_victim = json!({"type": "Source", "sourceStrategy": {"from": {
        "kind": "DockerImage", "name": format!("{victim_repository}@{DIGEST}")}}});
    let own_output = json!({"to": {"kind": "ImageStreamTag", "name": "mine:latest"}});
    run.config("evil-pull", from_victim, own_output.clone()).await;
    let elsewhere = json!({"to": {"kind": "DockerImage", "name": "registry.example.com/victim/web:latest"}});
    run.config("elsewhere", source_from_docker_image(), elsewhere)
        .await;

    for (bc, reason, right) in [
        (
            "evil-push",
            "OutputImageForbidden",
            "may not update imagestreams/layers",
        ),
        (
            "evil-pull",
            "BuilderImageForbidden",
            "may not get imagestreams/layers",
        ),
    ] {
        let refused = run.start_build(bc).await;
        let status = run
            .await_phase(&refused, BuildPhase::Failed)
            .await
            .status
            .unwrap();
        assert_eq!(status.reason.as_deref(), Some(reason), "{bc}");
        let message = status.message.unwrap();
        assert!(
            message.contains(&victim_repository)
                && message.contains(&format!("{right} in namespace {}", run.victim.name)),
            "{bc}: {message}"
        );
        assert!(
            run.pod(&refused).await.is_none(),
            "{bc}: a refused build has no pod"
        );
    }
    assert_eq!(snapshot(&run.client, &run.victim.name, "web").await, before);
    // Another registry's repository is the pull spec's owner's business: the build goes ahead.
    let other = run.start_build("elsewhere").await;
    run.await_phase(&other, BuildPhase::Running).await;
    run.stop().await;
}

#[tokio::test]
async fn a_build_cannot_start_from_another_projects_image_until_its_builder_may() {
    let run = Builds::start("iso-from").await;
    let before = snapshot(&run.client, &run.victim.name, "web").await;
    let strategy = json!({"type": "Source", "sourceStrategy": {"from": {
        "kind": "ImageStreamTag", "name": "web:latest", "namespace": run.victim.name}}});
    let output =
        json!({"to": {"kind": "DockerImage", "name": format!("{REGISTRY}/{}/out:1", run.attacker.name)}});
    run.config("steal", strategy, output).await;

    let refused = run.start_build("steal").await;
    let status = run
        .await_phase(&refused, BuildPhase::Failed)
        .await
        .status
        .unwrap();
    assert_eq!(status.reason.as_deref(), Some("BuilderImageForbidden"));
    let message = status.message.unwrap();
    assert!(
        message.contains("may not get imagestreams/layers") && message.contains("system:image-puller"),
        "{message}"
    );
    assert!(run.pod(&refused).await.is_none());
    assert_eq!(snapshot(&run.client, &run.victim.name, "web").await, before);

    grant(
        &run.client,
        &run.victim.name,
        "system:image-puller",
        &run.builder(),
        ImageAccess::Pull,
    )
    .await;
    let allowed = run.start_build("steal").await;
    run.await_phase(&allowed, BuildPhase::Running).await;
    let pod = run.pod(&allowed).await.unwrap();
    assert_eq!(
        pod.spec.unwrap().containers[0].image,
        Some(format!(
            "{REGISTRY}/{}/web@sha256:{}",
            run.victim.name,
            "1".repeat(64)
        ))
    );
    assert_eq!(snapshot(&run.client, &run.victim.name, "web").await, before);
    run.stop().await;
}

#[tokio::test]
async fn a_build_cannot_copy_files_out_of_another_projects_image_until_its_builder_may() {
    let run = Builds::start("iso-src").await;
    let before = snapshot(&run.client, &run.victim.name, "web").await;
    let bc: BuildConfig = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "copy"},
        "spec": {
            "source": {"type": "Git", "git": {"uri": "https://example.com/evil.git"},
                "images": [{"from": {"kind": "ImageStreamTag", "name": "web:latest", "namespace": run.victim.name},
                            "paths": [{"sourcePath": "/app/secret.conf", "destinationDir": "stolen"}]}]},
            "strategy": source_from_docker_image(),
            "output": {"to": {"kind": "DockerImage", "name": format!("{REGISTRY}/{}/out:1", run.attacker.name)}},
            "nodeSelector": {"type": "kwok"},
        },
    }))
    .unwrap();
    Api::<BuildConfig>::namespaced(run.client.clone(), &run.attacker.name)
        .create(&PostParams::default(), &bc)
        .await
        .unwrap();

    let refused = run.start_build("copy").await;
    let status = run
        .await_phase(&refused, BuildPhase::Failed)
        .await
        .status
        .unwrap();
    assert_eq!(status.reason.as_deref(), Some("SourceImageForbidden"));
    let message = status.message.unwrap();
    assert!(
        message.contains("source image") && message.contains("may not get imagestreams/layers"),
        "{message}"
    );
    assert!(run.pod(&refused).await.is_none(), "a refused build has no pod");

    grant(
        &run.client,
        &run.victim.name,
        "system:image-puller",
        &run.builder(),
        ImageAccess::Pull,
    )
    .await;
    let allowed = run.start_build("copy").await;
    run.await_phase(&allowed, BuildPhase::Running).await;
    let pod = run.pod(&allowed).await.unwrap();
    let env = pod.spec.unwrap().containers[0].env.clone().unwrap_or_default();
    let images = env.iter().find(|e| e.name == "SOURCE_IMAGES").unwrap();
    assert_eq!(
        images.value.as_deref(),
        Some(
            format!(
                "[\"{REGISTRY}/{}/web@sha256:{}\"]",
                run.victim.name,
                "1".repeat(64)
            )
            .as_str()
        )
    );
    assert_eq!(snapshot(&run.client, &run.victim.name, "web").await, before);
    run.stop().await;
}

/// The attacker's project running the deploy controller, and the victim's with its stream.
/// The image-change trigger of a BuildConfig that follows another project's ImageStreamTag: the
/// operator asks as the build's service account, reads nothing of the victim's stream while
/// refused (no build, no image ID in the status, not even after the victim pushes), says why in
/// the `ImageAccess` condition, and triggers once the victim grants `system:image-puller`.
#[tokio::test]
async fn a_build_configs_image_trigger_cannot_follow_another_projects_stream_until_its_builder_may() {
    let run = Builds::start("iso-btrig").await;
    let ns = run.attacker.name.clone();
    let mut trigger =
        Controller::start(move |ctx| slipway_operator::build::trigger::run(ctx, Some(ns))).await;
    let configs: Api<BuildConfig> = Api::namespaced(run.client.clone(), &run.attacker.name);
    let bc: BuildConfig = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "spy"},
        "spec": {
            "source": {"type": "Git", "git": {"uri": "https://example.com/evil.git"}},
            "strategy": source_from_docker_image(),
            "nodeSelector": {"type": "kwok"},
            "triggers": [{"type": "ImageChange", "imageChange": {"from": {
                "kind": "ImageStreamTag", "name": "web:latest", "namespace": run.victim.name}}}],
        },
    }))
    .unwrap();
    configs.create(&PostParams::default(), &bc).await.unwrap();
    let condition = eventually("the ImageAccess condition", WAIT, || async {
        let status = configs.get("spy").await.ok()?.status?;
        status.conditions.into_iter().find(|c| c.type_ == "ImageAccess")
    })
    .await;
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "ImagePullForbidden")
    );
    assert!(
        condition.message.contains(&format!(
            "may not get imagestreams/layers in namespace {}",
            run.victim.name
        )) && condition.message.contains("system:image-puller"),
        "{}",
        condition.message
    );
    let builds: Api<Build> = Api::namespaced(run.client.clone(), &run.attacker.name);
    let leaked = |bc: &BuildConfig| {
        let text = serde_json::to_string(&bc.status).unwrap();
        text.contains("sha256:") || text.contains(&format!("{REGISTRY}/{}", run.victim.name))
    };

    // The victim pushes; the trigger looks again (it asks every REFUSED_RETRY) and still sees
    // nothing: no build, the BuildConfig not written.
    let seen = configs.get("spy").await.unwrap();
    assert!(!leaked(&seen), "{:?}", seen.status);
    let mark = trigger.started("build-trigger");
    let second = format!("{REGISTRY}/{}/web@sha256:{}", run.victim.name, "2".repeat(64));
    let streams: Api<ImageStream> = Api::namespaced(run.client.clone(), &run.victim.name);
    let mut status = streams.get("web").await.unwrap().status.unwrap();
    status.record(
        "latest",
        TagEvent {
            created: Time(k8s_openapi::jiff::Timestamp::now()),
            docker_image_reference: second.clone(),
            image: format!("sha256:{}", "2".repeat(64)),
            generation: 2,
        },
    );
    streams
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    trigger.reconciled_since("build-trigger", mark).await;
    let after = configs.get("spy").await.unwrap();
    assert_eq!(
        after.resource_version(),
        seen.resource_version(),
        "{:?}",
        after.status
    );
    assert!(builds.list(&Default::default()).await.unwrap().items.is_empty());

    // The victim lets the attacker's builder pull: the trigger builds the victim's current image.
    grant(
        &run.client,
        &run.victim.name,
        "system:image-puller",
        &run.builder(),
        ImageAccess::Pull,
    )
    .await;
    let build = eventually("the triggered build", WAIT, || async {
        builds.get_opt("spy-1").await.ok()?
    })
    .await;
    let cause = build.spec.triggered_by[0].image_change_build.clone().unwrap();
    assert_eq!(cause.image_id, second);
    eventually("the ImageAccess condition gone", WAIT, || async {
        let status = configs.get("spy").await.ok()?.status?;
        (!status.conditions.iter().any(|c| c.type_ == "ImageAccess")).then_some(())
    })
    .await;
    trigger.stop().await;
    run.stop().await;
}

async fn deploy_run(prefix: &str) -> (deploy_support::Env, TestNamespace) {
    let env = deploy_support::Env::start(&format!("{prefix}-a")).await;
    let victim = TestNamespace::new(&env.client, &format!("{prefix}-v")).await;
    victim_stream(&env.client, &victim.name, "web").await;
    (env, victim)
}

#[tokio::test]
async fn a_deployment_configs_trigger_cannot_follow_another_projects_stream_until_it_may() {
    let (env, victim) = deploy_run("iso-trig").await;
    let before = snapshot(&env.client, &victim.name, "web").await;
    let triggers = json!([{"type": "ImageChange", "imageChangeParams": {"automatic": true,
        "containerNames": ["web"],
        "from": {"kind": "ImageStreamTag", "name": "web:latest", "namespace": victim.name}}}]);
    env.create_dc(
        "web",
        1,
        json!({"type": "Recreate"}),
        json!({"triggers": triggers}),
    )
    .await;
    let dcs = env.dcs();
    let condition = eventually("the ImageAccess condition", WAIT, || async {
        let dc = dcs.get("web").await.ok()?;
        let status = dc.status?;
        status.conditions.into_iter().find(|c| c.type_ == "ImageAccess")
    })
    .await;
    assert_eq!(condition.status, "False");
    assert_eq!(condition.reason, "ImagePullForbidden");
    assert!(
        condition.message.contains("may not get imagestreams/layers")
            && condition.message.contains(&victim.name),
        "{}",
        condition.message
    );
    assert!(
        env.rs_opt("web-1").await.is_none(),
        "a refused trigger rolls nothing out"
    );
    assert_eq!(snapshot(&env.client, &victim.name, "web").await, before);

    let account = ServiceAccount::new(&env.ns.name, "default");
    grant(
        &env.client,
        &victim.name,
        "system:image-puller",
        &account,
        ImageAccess::Pull,
    )
    .await;
    env.wait_complete("web", 1, 1).await;
    assert_eq!(
        env.image_of("web-1").await,
        format!("{REGISTRY}/{}/web@sha256:{}", victim.name, "1".repeat(64))
    );
    let dc = env.dc("web").await;
    assert!(
        !dc.status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.type_ == "ImageAccess")
    );
    env.stop().await;
    victim.delete().await;
}

#[tokio::test]
async fn a_tag_images_hook_cannot_tag_into_another_project_until_it_may() {
    let (env, victim) = deploy_run("iso-tag").await;
    let before = snapshot(&env.client, &victim.name, "web").await;
    let post = json!({"failurePolicy": "Abort", "tagImages": [{"containerName": "web",
        "to": {"kind": "ImageStreamTag", "name": "web:prod", "namespace": victim.name}}]});
    env.create_dc(
        "web",
        1,
        json!({"type": "Recreate", "recreateParams": {"post": post}}),
        json!({}),
    )
    .await;
    env.wait_phase("web-1", "Failed").await;
    let rs = env.rs("web-1").await;
    let cause = &rs.annotations()["slipway.dev/deployment.status-reason"];
    assert!(
        cause.contains("ImagePushForbidden") && cause.contains("may not update imagestreams/layers"),
        "{cause}"
    );
    let dcs = env.dcs();
    eventually("the Progressing condition to say why", WAIT, || async {
        let dc = dcs.get("web").await.ok()?;
        let status = dc.status?;
        let progressing = status.conditions.into_iter().find(|c| c.type_ == "Progressing")?;
        (progressing.status == "False" && progressing.message.contains("ImagePushForbidden")).then_some(())
    })
    .await;
    assert_eq!(snapshot(&env.client, &victim.name, "web").await, before);

    let account = ServiceAccount::new(&env.ns.name, "default");
    grant(
        &env.client,
        &victim.name,
        "system:image-pusher",
        &account,
        ImageAccess::Push,
    )
    .await;
    env.set_env("web", "2").await;
    env.wait_complete("web", 2, 1).await;
    let is = Api::<ImageStream>::namespaced(env.client.clone(), &victim.name)
        .get("web")
        .await
        .unwrap();
    let prod = is.spec.tags.iter().find(|t| t.name == "prod").unwrap();
    assert_eq!(prod.from.as_ref().unwrap().name, "registry.invalid/app:1");
    env.stop().await;
    victim.delete().await;
}

#[tokio::test]
async fn a_push_right_revoked_while_the_build_runs_leaves_the_tag_alone() {
    let run = Builds::start("iso-revoke").await;
    let output =
        json!({"to": {"kind": "ImageStreamTag", "name": "web:latest", "namespace": run.victim.name}});
    run.config("evil", source_from_docker_image(), output).await;
    grant(
        &run.client,
        &run.victim.name,
        "system:image-pusher",
        &run.builder(),
        ImageAccess::Push,
    )
    .await;
    let build = run.start_build("evil").await;
    run.await_phase(&build, BuildPhase::Running).await;
    // The victim takes the right back while the build runs.
    Api::<RoleBinding>::namespaced(run.client.clone(), &run.victim.name)
        .delete(&format!("{}-update", run.attacker.name), &Default::default())
        .await
        .unwrap();
    let reviews: Api<SubjectAccessReview> = Api::all(run.client.clone());
    eventually("the revocation to take effect", WAIT, || async {
        let review = access::review(&run.builder(), &run.victim.name, ImageAccess::Push);
        let answer = reviews.create(&PostParams::default(), &review).await.ok()?;
        (!answer.status?.allowed).then_some(())
    })
    .await;
    let before = snapshot(&run.client, &run.victim.name, "web").await;
    let result = json!({"stage": "s2i", "success": true, "digest": DIGEST}).to_string();
    Api::<Pod>::namespaced(run.client.clone(), &run.attacker.name)
        .patch(
            &format!("{build}-build"),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "kwok.slipway.dev/outcome": "Succeeded",
                "kwok.slipway.dev/termination-message": result}}})),
        )
        .await
        .unwrap();
    let failed = run.await_phase(&build, BuildPhase::Failed).await;
    assert_eq!(
        failed.status.unwrap().reason.as_deref(),
        Some("OutputImageForbidden")
    );
    assert_eq!(snapshot(&run.client, &run.victim.name, "web").await, before);
    run.stop().await;
}

#[tokio::test]
async fn a_deployments_trigger_annotation_cannot_follow_another_projects_stream_until_its_pods_may() {
    let client = client().await;
    let attacker = TestNamespace::new(&client, "iso-wl-a").await;
    let victim = TestNamespace::new(&client, "iso-wl-v").await;
    victim_stream(&client, &victim.name, "web").await;
    let before = snapshot(&client, &victim.name, "web").await;
    // The workload trigger controller, for the attacker's namespace only.
    let controller = {
        let namespace = attacker.name.clone();
        tokio::spawn(async move {
            let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
            let settings = slipway_operator::image::Settings {
                namespace: Some(namespace),
                ..Default::default()
            };
            slipway_operator::image::triggers::run(ctx, settings).await;
        })
    };
    let trigger = json!([{"from": {"kind": "ImageStreamTag", "name": "web:latest", "namespace": victim.name},
        "fieldPath": "spec.template.spec.containers[?(@.name==\"web\")].image"}]);
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "annotations": {"image.openshift.io/triggers": trigger.to_string()}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "placeholder"}]}}}
    }))
    .unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &attacker.name);
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &attacker.name);
    let refusal = eventually("the refusal's Warning event", WAIT, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("InvalidImageTrigger"))
            .and_then(|e| e.message)
    })
    .await;
    assert!(
        refusal.contains("service account")
            && refusal.contains("/default may not get imagestreams/layers")
            && refusal.contains(&victim.name),
        "{refusal}"
    );
    let image = |d: k8s_openapi::api::apps::v1::Deployment| {
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(
        image(deployments.get("web").await.unwrap()),
        "placeholder",
        "a refused trigger sets nothing"
    );
    assert_eq!(snapshot(&client, &victim.name, "web").await, before);

    // Granted to the pods' service account (as the catalog grants every authenticated one), the
    // trigger follows the stream (asked again within access::REFUSED_RETRY).
    let account = ServiceAccount::new(&attacker.name, "default");
    grant(
        &client,
        &victim.name,
        "system:image-puller",
        &account,
        ImageAccess::Pull,
    )
    .await;
    let expected = format!("{REGISTRY}/{}/web@sha256:{}", victim.name, "1".repeat(64));
    eventually("the trigger to set the image", WAIT, || async {
        (image(deployments.get("web").await.ok()?) == expected).then_some(())
    })
    .await;
    controller.abort();
    attacker.delete().await;
    victim.delete().await;
}
