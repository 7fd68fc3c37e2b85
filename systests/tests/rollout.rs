//! `slip rollout` against the dev cluster, with the deploy controller running in-process for the
//! test's namespace: undo (and its image triggers turned off), pause/resume, latest, status,
//! cancel, retry and history, and malformed targets.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

#[path = "../../operator/tests/support/mod.rs"]
mod support;

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use slipway_crds::DeploymentConfig;
use slipway_crds::apps::labels;
use slipway_crds::image::{ImageStream, TagEvent};
use slipway_testkit::*;
use support::{Controller, Fixture};

struct Env {
    client: Client,
    ns: TestNamespace,
    controller: Controller,
}

impl Env {
    async fn start(prefix: &str) -> Self {
        let Fixture { client, ns } = Fixture::start(prefix).await;
        let namespace = ns.name.clone();
        let controller =
            Controller::start(
                |ctx| async move { slipway_operator::deploy::run(ctx, Some(&namespace)).await },
            )
            .await;
        Self {
            client,
            ns,
            controller,
        }
    }

    async fn stop(mut self) {
        self.controller.stop().await;
        self.ns.delete().await;
    }

    async fn slip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.ns.name.as_str()];
        all.extend(args);
        run_program(env!("CARGO_BIN_EXE_slip-under-test"), None, &all).await
    }

    fn dcs(&self) -> Api<DeploymentConfig> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    fn rss(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    async fn create_dc(&self, extra: serde_json::Value) {
        let mut spec = json!({
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"app": "web"},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "registry.invalid/app:1"}]}}
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let dc = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig",
                        "metadata": {"name": "web"}, "spec": spec});
        self.dcs()
            .create(&PostParams::default(), &serde_json::from_value(dc).unwrap())
            .await
            .unwrap();
    }

    async fn wait_phase(&self, rs: &str, phase: &str) {
        let api = self.rss();
        eventually(
            &format!("{rs} to be {phase}"),
            Duration::from_secs(120),
            || async {
                let rs = api.get_opt(rs).await.ok()??;
                let available = rs.status.as_ref()?.available_replicas.unwrap_or(0);
                let replicas = rs.spec.as_ref()?.replicas?;
                let phase_now = rs.annotations().get(labels::DEPLOYMENT_PHASE)?.clone();
                (phase_now == phase && (phase != "Complete" || available == replicas)).then_some(())
            },
        )
        .await;
    }

    async fn push_tag(&self, reference: &str) {
        let api: Api<ImageStream> = Api::namespaced(self.client.clone(), &self.ns.name);
        if api.get_opt("app").await.unwrap().is_none() {
            let is = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
                            "metadata": {"name": "app"}, "spec": {}});
            api.create(&PostParams::default(), &serde_json::from_value(is).unwrap())
                .await
                .unwrap();
        }
        let mut status = api.get_status("app").await.unwrap().status.unwrap_or_default();
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
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    }

    async fn image_of(&self, rs: &str) -> String {
        let rs = self.rss().get(rs).await.unwrap();
        rs.spec.unwrap().template.unwrap().spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    }

    /// Decides the outcome of the hook pod `name` once it exists.
    async fn decide_hook(&self, name: &str, outcome: &str) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns.name);
        eventually(&format!("hook pod {name}"), Duration::from_secs(60), || async {
            let pod = pods.get_opt(name).await.ok()??;
            pod.metadata.deletion_timestamp.is_none().then_some(())
        })
        .await;
        pods.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"kwok.slipway.dev/outcome": outcome}}})),
        )
        .await
        .unwrap();
    }
}

fn text(out: &Output) -> String {
    output_text(out)
}

const IMAGE_1: &str =
    "127.0.0.1:15000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const IMAGE_2: &str =
    "127.0.0.1:15000/app@sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[tokio::test]
async fn undo_rolls_back_and_turns_automatic_image_triggers_off() {
    let env = Env::start("roll-undo").await;
    env.create_dc(json!({"triggers": [
        {"type": "ConfigChange"},
        {"type": "ImageChange", "imageChangeParams": {"automatic": true, "containerNames": ["web"],
            "from": {"kind": "ImageStreamTag", "name": "app:latest"}}}
    ]}))
    .await;
    env.push_tag(IMAGE_1).await;
    env.wait_phase("web-1", "Complete").await;
    env.push_tag(IMAGE_2).await;
    env.wait_phase("web-2", "Complete").await;

    let out = env.slip(&["rollout", "undo", "dc/web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("rolled back to revision 1"), "{}", text(&out));
    assert!(
        text(&out).contains("image triggers were disabled: app:latest"),
        "{}",
        text(&out)
    );
    env.wait_phase("web-3", "Complete").await;
    assert_eq!(env.image_of("web-3").await, IMAGE_1);
    let dc = env.dcs().get("web").await.unwrap();
    let params = dc.spec.triggers.unwrap()[1].image_change_params.clone().unwrap();
    assert!(!params.automatic);
    // The rollback stays even when the tag moves again: the controller (which follows the
    // stream of every image trigger, automatic or not) reconciles the config after the move and
    // makes no version.
    let mark = env.controller.started("deploy");
    env.push_tag(
        "127.0.0.1:15000/app@sha256:3333333333333333333333333333333333333333333333333333333333333333",
    )
    .await;
    env.controller.reconciled_since("deploy", mark).await;
    assert!(env.rss().get_opt("web-4").await.unwrap().is_none());

    let history = env.slip(&["rollout", "history", "dc/web"]).await;
    let history = text(&history);
    assert!(history.contains("REVISION"), "{history}");
    assert!(history.contains("rollback to revision 1"), "{history}");
    assert!(history.contains("image change"), "{history}");
    let one = env
        .slip(&["rollout", "history", "dc/web", "--revision", "2"])
        .await;
    assert!(text(&one).contains(IMAGE_2), "{}", text(&one));
    // Back to revision 2 explicitly.
    let out = env
        .slip(&["rollout", "undo", "dc/web", "--to-revision", "2"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    env.wait_phase("web-4", "Complete").await;
    assert_eq!(env.image_of("web-4").await, IMAGE_2);
    env.stop().await;
}

#[tokio::test]
async fn pause_resume_latest_and_status() {
    let env = Env::start("roll-pause").await;
    env.create_dc(json!({})).await;
    env.wait_phase("web-1", "Complete").await;
    let out = env.slip(&["rollout", "pause", "dc/web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let again = env.slip(&["rollout", "pause", "dc/web"]).await;
    assert!(
        !again.status.success() && text(&again).contains("already paused"),
        "{}",
        text(&again)
    );
    let latest = env.slip(&["rollout", "latest", "dc/web"]).await;
    assert!(!latest.status.success(), "{}", text(&latest));
    assert!(text(&latest).contains("paused"), "{}", text(&latest));
    let out = env.slip(&["rollout", "resume", "dc/web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let latest = env.slip(&["rollout", "latest", "dc/web"]).await;
    assert!(latest.status.success(), "{}", text(&latest));
    let status = env.slip(&["rollout", "status", "dc/web"]).await;
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("\"web-2\" successfully rolled out"),
        "{}",
        text(&status)
    );
    let history = text(&env.slip(&["rollout", "history", "dc/web"]).await);
    assert!(history.contains("manual change"), "{history}");
    env.stop().await;
}

/// `--dry-run` on the rollout verbs that write: client and server dry runs report what would be
/// done and change nothing (the DC's generation, its latest version, its ReplicaSets); the
/// checks still apply (a paused DC cannot be rolled out, even in a dry run); the verbs that
/// only read refuse the flag.
#[tokio::test]
async fn dry_runs_change_nothing() {
    let env = Env::start("roll-dry").await;
    env.create_dc(json!({})).await;
    env.wait_phase("web-1", "Complete").await;
    let out = env.slip(&["rollout", "latest", "dc/web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    env.wait_phase("web-2", "Complete").await;
    let state = || async {
        let dc = env.dcs().get("web").await.unwrap();
        let sets = env.rss().list(&Default::default()).await.unwrap().items.len();
        (
            dc.metadata.generation,
            dc.status.map(|s| s.latest_version),
            dc.spec.paused,
            sets,
        )
    };
    let before = state().await;
    assert_eq!(before.1, Some(2));
    for (args, says) in [
        (
            vec!["rollout", "latest", "dc/web", "--dry-run"],
            "deploymentconfig.slipway.dev/web rolled out (version 3) (dry run)",
        ),
        (
            vec!["rollout", "latest", "dc/web", "--dry-run=server"],
            "deploymentconfig.slipway.dev/web rolled out (version 3) (server dry run)",
        ),
        (
            vec!["rollout", "restart", "dc/web", "--dry-run=server"],
            "(server dry run)",
        ),
        (
            vec!["rollout", "undo", "dc/web", "--dry-run=server"],
            "deploymentconfig.slipway.dev/web rolled back to revision 1 (server dry run)",
        ),
        (
            vec!["rollout", "--dry-run", "undo", "dc/web"],
            "rolled back to revision 1 (dry run)",
        ),
        (
            vec!["rollout", "pause", "dc/web", "--dry-run=server"],
            "deploymentconfig.slipway.dev/web paused (server dry run)",
        ),
    ] {
        let out = env.slip(&args).await;
        assert!(
            out.status.success() && text(&out).contains(says),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert_eq!(state().await, before, "a dry run changed the DeploymentConfig");
    assert!(env.rss().get_opt("web-3").await.unwrap().is_none());
    for (args, says) in [
        (
            vec!["rollout", "status", "dc/web", "--dry-run"],
            "status and history only read",
        ),
        (
            vec!["rollout", "cancel", "dc/web", "--dry-run=server"],
            "no rollout of dc/web in progress",
        ),
        (
            vec!["rollout", "retry", "dc/web", "--dry-run"],
            "only a failed rollout",
        ),
        (
            vec!["rollout", "latest", "dc/web", "--dry-run=maybe"],
            "invalid value",
        ),
    ] {
        let out = env.slip(&args).await;
        assert!(
            !out.status.success() && text(&out).contains(says),
            "{args:?}: {}",
            text(&out)
        );
    }
    // The checks hold in a dry run: paused, a rollout is refused.
    let out = env.slip(&["rollout", "pause", "dc/web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = env
        .slip(&["rollout", "latest", "dc/web", "--dry-run=server"])
        .await;
    assert!(
        !out.status.success() && text(&out).contains("resume it first"),
        "{}",
        text(&out)
    );
    env.stop().await;
}

#[tokio::test]
async fn cancel_restores_the_previous_version_and_retry_runs_it_again() {
    let env = Env::start("roll-cancel").await;
    env.create_dc(json!({})).await;
    env.wait_phase("web-1", "Complete").await;
    // Version 2 has a pre hook nobody decides yet: the rollout waits on it.
    let strategy = json!({"type": "Recreate", "recreateParams": {"pre": {"failurePolicy": "Abort",
        "execNewPod": {"command": ["/bin/true"], "containerName": "web"}}}});
    env.dcs()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"strategy": strategy}})),
        )
        .await
        .unwrap();
    let out = env.slip(&["rollout", "latest", "dc/web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    env.wait_phase("web-2", "Running").await;
    let busy = env.slip(&["rollout", "latest", "dc/web"]).await;
    assert!(
        !busy.status.success() && text(&busy).contains("already in progress"),
        "{}",
        text(&busy)
    );
    let out = env.slip(&["rollout", "cancel", "dc/web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    env.wait_phase("web-2", "Failed").await;
    let status = env.slip(&["rollout", "status", "dc/web"]).await;
    assert!(!status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("RolloutCancelled"), "{}", text(&status));
    env.wait_phase("web-1", "Complete").await;
    let nothing = env.slip(&["rollout", "cancel", "dc/web"]).await;
    assert!(!nothing.status.success(), "{}", text(&nothing));

    let out = env.slip(&["rollout", "retry", "dc/web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    env.wait_phase("web-2", "Running").await;
    env.decide_hook("web-2-hook-pre", "Succeeded").await;
    env.wait_phase("web-2", "Complete").await;
    let twice = env.slip(&["rollout", "retry", "dc/web"]).await;
    assert!(
        !twice.status.success() && text(&twice).contains("only a failed rollout"),
        "{}",
        text(&twice)
    );
    env.stop().await;
}

#[tokio::test]
async fn malformed_targets_and_revisions_are_refused() {
    let env = Env::start("roll-bad").await;
    env.create_dc(json!({})).await;
    env.wait_phase("web-1", "Complete").await;
    for (args, says) in [
        (vec!["rollout", "latest", "web"], "expected dc/NAME"),
        (
            vec!["rollout", "latest", "bc/web"],
            "DeploymentConfigs (dc/NAME) and Deployments",
        ),
        (
            vec!["rollout", "latest", "deployment/web"],
            "deployment \"web\" not found",
        ),
        (vec!["rollout", "latest", "dc/No_Such"], "not a valid name"),
        (vec!["rollout", "latest", "dc/nope"], "not found"),
        (
            vec!["rollout", "undo", "dc/web", "--to-revision", "99"],
            "no revision 99",
        ),
        (
            vec!["rollout", "undo", "dc/web", "--to-revision=0"],
            "takes a revision number",
        ),
        (vec!["rollout", "undo", "dc/web"], "no earlier revision"),
        (
            vec!["rollout", "history", "dc/web", "--revision", "7"],
            "no revision 7",
        ),
    ] {
        let out = env.slip(&args).await;
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{args:?}: {}", text(&out));
    }
    env.stop().await;
}
