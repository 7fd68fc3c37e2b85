//! The build and trigger controllers against the dev cluster; kwok plays the build pods, and a
//! test decides each pod's end by annotating it (dev/kwok/stages.yaml). Each test runs its own
//! controllers limited to its own namespace.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use slipway_client::instantiate::{InstantiateError, instantiate};
use slipway_crds::build::{BuildPhase, BuildRequest, BuildTriggerCause};
use slipway_crds::{Build, BuildConfig, ImageStream};
use slipway_operator::build::controller::Settings;
use slipway_testkit::*;
use support::{Controller, Fixture};

const WAIT: Duration = Duration::from_secs(90);
const REGISTRY: &str = "127.0.0.1:15000";

struct Run {
    client: Client,
    ns: TestNamespace,
    ctx: slipway_operator::Context,
    controllers: Vec<Controller>,
}

impl Run {
    async fn start(prefix: &str) -> Self {
        let Fixture { client, ns } = Fixture::start(prefix).await;
        let ctx = support::context().await;
        let settings = Settings {
            registry: REGISTRY.into(),
            namespace: Some(ns.name.clone()),
            ..Default::default()
        };
        let namespace = Some(ns.name.clone());
        let controllers = vec![
            Controller::start_with(ctx.clone(), |ctx| {
                slipway_operator::build::controller::run(ctx, settings)
            }),
            Controller::start_with(ctx.clone(), |ctx| {
                slipway_operator::build::trigger::run(ctx, namespace)
            }),
        ];
        Self {
            client,
            ns,
            ctx,
            controllers,
        }
    }

    async fn stop(mut self) {
        for c in &mut self.controllers {
            c.stop().await;
        }
        self.ns.delete().await;
    }

    fn builds(&self) -> Api<Build> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    /// A source BuildConfig `name` with `extra` merged into its spec.
    async fn config(&self, name: &str, policy: &str, extra: Value) -> BuildConfig {
        let mut spec = json!({
            "runPolicy": policy,
            "source": {"type": "Git", "git": {"uri": "https://example.com/app.git"}},
            "strategy": {"type": "Source", "sourceStrategy": {
                "from": {"kind": "DockerImage", "name": "example.com/builder:1"}}},
            "output": {"to": {"kind": "DockerImage", "name": format!("{REGISTRY}/{}/{name}:latest", self.ns.name)}},
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let bc: BuildConfig = serde_json::from_value(json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        Api::<BuildConfig>::namespaced(self.client.clone(), &self.ns.name)
            .create(&PostParams::default(), &bc)
            .await
            .unwrap()
    }

    async fn start_build(&self, bc: &str) -> String {
        let request = BuildRequest {
            cause: BuildTriggerCause {
                message: "Manually triggered".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        instantiate(&self.client, &self.ns.name, bc, &request)
            .await
            .unwrap()
            .name_any()
    }

    async fn phase(&self, build: &str) -> Option<BuildPhase> {
        // A build nobody has written status for yet is New.
        let build = self.builds().get_opt(build).await.ok()??;
        Some(build.status.map(|s| s.phase).unwrap_or_default())
    }

    async fn await_phase(&self, build: &str, phase: BuildPhase) -> Build {
        let builds = self.builds();
        eventually(&format!("{build} to be {phase:?}"), WAIT, || async {
            let b = builds.get_opt(build).await.ok()??;
            (b.status.as_ref()?.phase == phase).then_some(b)
        })
        .await
    }

    /// Decides the end of a build's pod (waits for the pod first).
    async fn end_pod(&self, build: &str, outcome: &str, extra: &[(&str, &str)]) {
        let pods = self.pods();
        let name = format!("{build}-build");
        eventually(&format!("pod {name}"), WAIT, || async {
            pods.get_opt(&name).await.ok()?.map(|_| ())
        })
        .await;
        let mut annotations = json!({"kwok.slipway.dev/outcome": outcome});
        for (k, v) in extra {
            annotations[format!("kwok.slipway.dev/{k}")] = json!(v);
        }
        pods.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await
        .unwrap();
    }

    async fn names(&self) -> BTreeSet<String> {
        self.builds()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|b| b.name_any())
            .collect()
    }

    /// Builds whose pod exists.
    async fn with_pods(&self) -> BTreeSet<String> {
        self.pods()
            .list(&ListParams::default().labels("slipway.dev/build.name"))
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.labels()["slipway.dev/build.name"].clone())
            .collect()
    }
}

fn success_result(digest: &str) -> String {
    json!({"stage": "s2i", "success": true, "digest": digest, "commit": "c0ffee",
           "durations": {"assemble": 1200, "push": 300}})
    .to_string()
}

#[tokio::test]
async fn serial_runs_ten_builds_one_at_a_time_lowest_first_and_keeps_five() {
    let run = Run::start("b-serial").await;
    run.config("app", "Serial", json!({})).await;
    for _ in 0..10 {
        run.start_build("app").await;
    }
    for n in 1..=10 {
        let build = format!("app-{n}");
        run.await_phase(&build, BuildPhase::Running).await;
        // No later build has a pod; they are all still New.
        let with_pods = run.with_pods().await;
        for later in n + 1..=10 {
            let later = format!("app-{later}");
            assert!(!with_pods.contains(&later), "{later} runs beside {build}");
            assert_eq!(run.phase(&later).await, Some(BuildPhase::New));
        }
        run.end_pod(
            &build,
            "Succeeded",
            &[("termination-message", &success_result("sha256:aa"))],
        )
        .await;
        run.await_phase(&build, BuildPhase::Complete).await;
    }
    // The default history limit keeps the five newest successful builds.
    let expected: BTreeSet<String> = (6..=10).map(|n| format!("app-{n}")).collect();
    eventually("builds 1-5 to be pruned", WAIT, || async {
        (run.names().await == expected).then_some(())
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn parallel_runs_ten_builds_at_once() {
    let run = Run::start("b-parallel").await;
    run.config("app", "Parallel", json!({})).await;
    for _ in 0..10 {
        run.start_build("app").await;
    }
    let all: BTreeSet<String> = (1..=10).map(|n| format!("app-{n}")).collect();
    eventually("all ten builds to have pods", WAIT, || async {
        (run.with_pods().await == all).then_some(())
    })
    .await;
    for n in 1..=10 {
        run.await_phase(&format!("app-{n}"), BuildPhase::Running).await;
    }
    run.stop().await;
}

#[tokio::test]
async fn serial_latest_only_cancels_the_older_queued_builds() {
    let run = Run::start("b-latest").await;
    // Cancelled builds count against the failed history limit (default 5); keep them all here.
    run.config("app", "SerialLatestOnly", json!({"failedBuildsHistoryLimit": 20}))
        .await;
    run.start_build("app").await;
    run.await_phase("app-1", BuildPhase::Running).await;
    for _ in 2..=10 {
        run.start_build("app").await;
    }
    for n in 2..=9 {
        let b = run.await_phase(&format!("app-{n}"), BuildPhase::Cancelled).await;
        assert_eq!(b.status.unwrap().reason.as_deref(), Some("CancelledBuild"));
    }
    assert_eq!(run.phase("app-10").await, Some(BuildPhase::New));
    assert_eq!(run.with_pods().await, BTreeSet::from(["app-1".to_string()]));
    run.end_pod("app-1", "Succeeded", &[]).await;
    run.await_phase("app-1", BuildPhase::Complete).await;
    run.await_phase("app-10", BuildPhase::Running).await;
    // The cancelled builds never had a pod.
    assert!(
        !run.with_pods()
            .await
            .iter()
            .any(|b| b != "app-1" && b != "app-10")
    );
    run.stop().await;
}

#[tokio::test]
async fn phases_follow_the_pod_success_failure_deletion_cancel_and_oom() {
    let run = Run::start("b-phases").await;
    let streams: Api<ImageStream> = Api::namespaced(run.client.clone(), &run.ns.name);
    let is: ImageStream = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream", "metadata": {"name": "app"}, "spec": {}
    }))
    .unwrap();
    streams.create(&PostParams::default(), &is).await.unwrap();
    run.config(
        "app",
        "Parallel",
        json!({"output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}},
               "completionDeadlineSeconds": 900, "nodeSelector": {"type": "kwok"}}),
    )
    .await;
    for _ in 0..5 {
        run.start_build("app").await;
    }
    // The pod is what the build asked for.
    let pod = eventually("pod app-1-build", WAIT, || async {
        run.pods().get_opt("app-1-build").await.ok()?
    })
    .await;
    let spec = pod.spec.unwrap();
    assert_eq!(spec.active_deadline_seconds, Some(900));
    // One init container places the tools and fetches.
    let init: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(init, ["fetch"]);
    let main = &spec.containers[0];
    assert_eq!(main.image.as_deref(), Some("example.com/builder:1"));
    assert_eq!(
        main.security_context.as_ref().unwrap().allow_privilege_escalation,
        Some(false)
    );

    // 1: success with a result → Complete, the digest on the build and on the ImageStream tag.
    run.await_phase("app-1", BuildPhase::Running).await;
    let digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    run.end_pod(
        "app-1",
        "Succeeded",
        &[("termination-message", &success_result(digest))],
    )
    .await;
    let done = run
        .await_phase("app-1", BuildPhase::Complete)
        .await
        .status
        .unwrap();
    assert_eq!(done.output.unwrap().to.unwrap().image_digest, digest);
    assert!(done.start_timestamp.is_some() && done.completion_timestamp.is_some());
    assert!(done.duration.is_some());
    assert_eq!(
        done.output_docker_image_reference.as_deref(),
        Some(format!("{REGISTRY}/{}/app:latest", run.ns.name).as_str())
    );
    assert!(
        done.conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
    );
    let tag = streams.get("app").await.unwrap().status.unwrap();
    let latest = tag.latest("latest").unwrap();
    assert_eq!(latest.image, digest);
    assert_eq!(
        latest.docker_image_reference,
        format!("{REGISTRY}/{}/app@{digest}", run.ns.name)
    );

    // 2: assemble fails → Failed with the builder's reason and log tail.
    let failure = json!({"stage": "s2i", "success": false, "reason": "AssembleFailed",
                         "message": "assemble exited with code 2", "logTail": ["[s2i] npm ERR!"]})
    .to_string();
    run.end_pod(
        "app-2",
        "Failed",
        &[("exit-code", "2"), ("termination-message", &failure)],
    )
    .await;
    let failed = run.await_phase("app-2", BuildPhase::Failed).await.status.unwrap();
    assert_eq!(failed.reason.as_deref(), Some("AssembleFailed"));
    assert_eq!(failed.message.as_deref(), Some("assemble exited with code 2"));
    assert_eq!(failed.log_snippet.as_deref(), Some("[s2i] npm ERR!"));

    // 3: the pod is deleted → Error BuildPodDeleted.
    run.await_phase("app-3", BuildPhase::Running).await;
    run.pods()
        .delete("app-3-build", &DeleteParams::default())
        .await
        .unwrap();
    let error = run.await_phase("app-3", BuildPhase::Error).await.status.unwrap();
    assert_eq!(error.reason.as_deref(), Some("BuildPodDeleted"));

    // 4: cancelled → the pod goes, Cancelled.
    run.await_phase("app-4", BuildPhase::Running).await;
    run.builds()
        .patch_status(
            "app-4",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"cancelled": true}})),
        )
        .await
        .unwrap();
    run.await_phase("app-4", BuildPhase::Cancelled).await;
    eventually("the cancelled build's pod to go", WAIT, || async {
        run.pods()
            .get_opt("app-4-build")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // 5: killed for memory → Failed OutOfMemoryKilled.
    run.end_pod(
        "app-5",
        "Failed",
        &[("exit-code", "137"), ("reason", "OOMKilled")],
    )
    .await;
    let oom = run.await_phase("app-5", BuildPhase::Failed).await.status.unwrap();
    assert_eq!(oom.reason.as_deref(), Some("OutOfMemoryKilled"));

    // Nothing leaves a terminal phase: a late pod for a cancelled build changes nothing.
    let mut pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app-4-build", "labels": {"slipway.dev/build.name": "app-4"}},
        "spec": {"containers": [{"name": "build", "image": "x"}]}
    }))
    .unwrap();
    pod.metadata.namespace = Some(run.ns.name.clone());
    run.pods().create(&PostParams::default(), &pod).await.unwrap();
    run.end_pod("app-4", "Succeeded", &[]).await;
    assert_eq!(run.phase("app-4").await, Some(BuildPhase::Cancelled));

    // Events say what happened.
    let events: Api<Event> = Api::namespaced(run.client.clone(), &run.ns.name);
    eventually("BuildCompleted and BuildFailed events", WAIT, || async {
        let reasons: BTreeSet<String> = events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter_map(|e| e.reason)
            .collect();
        (reasons.contains("BuildCompleted") && reasons.contains("BuildFailed")).then_some(())
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn history_limits_prune_the_oldest_builds_of_each_kind() {
    let run = Run::start("b-history").await;
    run.config(
        "app",
        "Parallel",
        json!({"successfulBuildsHistoryLimit": 2, "failedBuildsHistoryLimit": 1}),
    )
    .await;
    for _ in 0..6 {
        run.start_build("app").await;
    }
    for n in 1..=3 {
        run.end_pod(&format!("app-{n}"), "Succeeded", &[]).await;
        run.await_phase(&format!("app-{n}"), BuildPhase::Complete).await;
    }
    for n in 4..=5 {
        run.end_pod(&format!("app-{n}"), "Failed", &[]).await;
        run.await_phase(&format!("app-{n}"), BuildPhase::Failed).await;
    }
    run.builds()
        .patch_status(
            "app-6",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"cancelled": true}})),
        )
        .await
        .unwrap();
    let expected: BTreeSet<String> = ["app-2", "app-3", "app-6"].map(String::from).into();
    eventually("only builds 2, 3 and 6 to remain", WAIT, || async {
        (run.names().await == expected).then_some(())
    })
    .await;
    // The pruned builds' pods go with them (garbage collection of owned objects).
    eventually("the pruned builds' pods to go", WAIT, || async {
        let with_pods = run.with_pods().await;
        ["app-1", "app-4", "app-5"]
            .iter()
            .all(|b| !with_pods.contains(*b))
            .then_some(())
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn config_change_builds_once_and_an_image_change_on_the_builder_builds_exactly_once() {
    let run = Run::start("b-trigger").await;
    let streams: Api<ImageStream> = Api::namespaced(run.client.clone(), &run.ns.name);
    let is: ImageStream = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream", "metadata": {"name": "builder"}, "spec": {}
    }))
    .unwrap();
    streams.create(&PostParams::default(), &is).await.unwrap();
    let push = |digest: &'static str| {
        let streams = streams.clone();
        async move {
            let mut is = streams.get("builder").await.unwrap();
            let mut status = is.status.clone().unwrap_or_default();
            status.record(
                "latest",
                slipway_crds::image::TagEvent {
                    created: slipway_crds::common::Time(k8s_openapi::jiff::Timestamp::now()),
                    docker_image_reference: format!("{REGISTRY}/b/builder@{digest}"),
                    image: digest.into(),
                    generation: 1,
                },
            );
            is.status = Some(status);
            streams
                .replace_status("builder", &PostParams::default(), &is)
                .await
                .unwrap();
        }
    };
    push("sha256:aaaa").await;
    run.config(
        "app",
        "Parallel",
        json!({
            "strategy": {"type": "Source", "sourceStrategy": {
                "from": {"kind": "ImageStreamTag", "name": "builder:latest"}}},
            "triggers": [{"type": "ConfigChange"}, {"type": "ImageChange", "imageChange": {}}],
        }),
    )
    .await;
    let configs: Api<BuildConfig> = Api::namespaced(run.client.clone(), &run.ns.name);
    let first = run.await_phase("app-1", BuildPhase::Running).await;
    assert_eq!(first.spec.triggered_by[0].message, "Build configuration change");
    assert_eq!(
        first.status.unwrap().builder_image.as_deref(),
        Some(format!("{REGISTRY}/b/builder@sha256:aaaa").as_str())
    );
    let triggered = |image: &'static str| {
        let configs = configs.clone();
        async move {
            eventually(&format!("lastTriggeredImageID {image}"), WAIT, || async {
                let status = configs.get("app").await.ok()?.status?;
                (status.image_change_triggers.first()?.last_triggered_image_id
                    == format!("{REGISTRY}/b/builder@{image}"))
                .then_some(status.last_version)
            })
            .await
        }
    };
    assert_eq!(triggered("sha256:aaaa").await, 1);

    push("sha256:bbbb").await;
    assert_eq!(triggered("sha256:bbbb").await, 2);
    let second = run.await_phase("app-2", BuildPhase::Running).await;
    let cause = second.spec.triggered_by[0].image_change_build.clone().unwrap();
    assert_eq!(cause.image_id, format!("{REGISTRY}/b/builder@sha256:bbbb"));
    assert_eq!(run.names().await.len(), 2);
    run.stop().await;
}

#[tokio::test]
async fn a_user_without_rights_cannot_start_cancel_or_read_builds() {
    let run = Run::start("b-rbac").await;
    run.config("app", "Parallel", json!({})).await;
    let build = run.start_build("app").await;
    // alice may work with builds here; mallory has no rights in this namespace.
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "builds"},
        "rules": [
            {"apiGroups": ["slipway.dev"], "resources": ["buildconfigs", "builds"], "verbs": ["get", "list", "create"]},
            {"apiGroups": ["slipway.dev"], "resources": ["buildconfigs/status", "builds/status"], "verbs": ["get", "update", "patch"]}
        ]
    }))
    .unwrap();
    Api::<Role>::namespaced(run.client.clone(), &run.ns.name)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "alice-builds"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "builds"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(run.client.clone(), &run.ns.name)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let groups = ["system:authenticated".to_string()];
    let mallory = run.ctx.impersonating("mallory", &groups).unwrap();
    let alice = run.ctx.impersonating("alice", &groups).unwrap();
    let request = BuildRequest::default();

    let forbidden = |e: kube::Error| matches!(e, kube::Error::Api(s) if s.code == 403);
    match instantiate(&mallory, &run.ns.name, "app", &request).await {
        Err(InstantiateError::Kube(e)) => assert!(forbidden(e)),
        other => panic!("mallory started a build: {other:?}"),
    }
    let as_mallory: Api<Build> = Api::namespaced(mallory.clone(), &run.ns.name);
    assert!(forbidden(as_mallory.get(&build).await.unwrap_err()));
    assert!(forbidden(
        as_mallory.list(&ListParams::default()).await.unwrap_err()
    ));
    let cancel = Patch::Merge(json!({"status": {"cancelled": true}}));
    assert!(forbidden(
        as_mallory
            .patch_status(&build, &PatchParams::default(), &cancel)
            .await
            .unwrap_err()
    ));
    // Nothing changed for her trying: still one build, not cancelled.
    assert_eq!(run.names().await.len(), 1);

    // alice can, with the same calls.
    let started = instantiate(&alice, &run.ns.name, "app", &request).await.unwrap();
    assert_eq!(started.name_any(), "app-2");
    let as_alice: Api<Build> = Api::namespaced(alice, &run.ns.name);
    as_alice
        .patch_status("app-2", &PatchParams::default(), &cancel)
        .await
        .unwrap();
    run.await_phase("app-2", BuildPhase::Cancelled).await;
    run.stop().await;
}

#[tokio::test]
async fn a_pod_the_api_server_refuses_gives_error_cannot_create_build_pod() {
    let run = Run::start("b-nopod").await;
    // The ServiceAccount admission plugin refuses pods of a service account that does not exist.
    run.config("app", "Serial", json!({"serviceAccount": "nobody-here"}))
        .await;
    run.start_build("app").await;
    let b = run.await_phase("app-1", BuildPhase::Error).await.status.unwrap();
    assert_eq!(b.reason.as_deref(), Some("CannotCreateBuildPod"));
    assert!(b.message.unwrap().contains("nobody-here"));
    run.stop().await;
}

/// A template's BuildConfig whose builder ImageStream is missing (as the quickstarts' are without a
/// catalog): the Build says which image cannot be resolved and makes no pod, rather than a pod
/// stuck pulling; once the stream has the image, the same Build goes ahead.
#[tokio::test]
async fn a_build_whose_builder_stream_is_missing_says_so_and_makes_no_pod() {
    let run = Run::start("b-nobuilder").await;
    run.config(
        "app",
        "Serial",
        json!({"strategy": {"type": "Source", "sourceStrategy": {
            "from": {"kind": "ImageStreamTag", "name": "python:3.9-ubi8"}}}}),
    )
    .await;
    let build = run.start_build("app").await;
    let told = eventually("the build to say why it waits", WAIT, || async {
        let status = run.builds().get(&build).await.ok()?.status?;
        (status.reason.as_deref() == Some("InvalidImageReference")).then_some(status)
    })
    .await;
    assert_eq!(told.phase, BuildPhase::New);
    let message = told.message.unwrap_or_default();
    assert!(message.contains("ImageStreamTag python:3.9-ubi8"), "{message}");
    assert!(
        run.with_pods().await.is_empty(),
        "no pod for an unresolved builder"
    );

    // The stream appears with an image: the waiting Build gets its pod.
    let streams: Api<ImageStream> = Api::namespaced(run.client.clone(), &run.ns.name);
    let is: ImageStream = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream", "metadata": {"name": "python"}, "spec": {}
    }))
    .unwrap();
    let mut is = streams.create(&PostParams::default(), &is).await.unwrap();
    let mut status = is.status.clone().unwrap_or_default();
    status.record(
        "3.9-ubi8",
        slipway_crds::image::TagEvent {
            created: slipway_crds::common::Time(k8s_openapi::jiff::Timestamp::now()),
            docker_image_reference: format!("{REGISTRY}/catalog/python@sha256:cccc"),
            image: "sha256:cccc".into(),
            generation: 1,
        },
    );
    is.status = Some(status);
    streams
        .replace_status("python", &PostParams::default(), &is)
        .await
        .unwrap();
    let running = run.await_phase(&build, BuildPhase::Running).await;
    assert_eq!(
        running.status.unwrap().builder_image.as_deref(),
        Some(format!("{REGISTRY}/catalog/python@sha256:cccc").as_str())
    );
    run.stop().await;
}
