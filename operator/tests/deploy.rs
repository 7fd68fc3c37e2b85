//! DeploymentConfig rollouts against the dev cluster: the real ReplicaSet controller makes the
//! pods, kwok makes them Ready, and the test decides hook pods' outcomes through kwok's
//! annotations. Each test runs its own deploy controller, limited to its own namespace.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod deploy_support;
mod support;

use std::time::Duration;

use deploy_support::*;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::json;
use slipway_crds::apps::labels;
use slipway_testkit::*;

async fn rolling_bounds_hold(
    surge: serde_json::Value,
    unavailable: serde_json::Value,
    max_pods: i32,
    min_ready: i32,
) {
    let env = Env::start("dep-roll").await;
    let strategy = json!({"type": "Rolling", "rollingParams": {
        "maxSurge": surge, "maxUnavailable": unavailable, "updatePeriodSeconds": 1, "intervalSeconds": 1}});
    env.create_dc("web", 4, strategy, json!({})).await;
    env.wait_complete("web", 1, 4).await;
    let monitor = PodMonitor::start(&env, "web").await;
    env.set_env("web", "2").await;
    env.wait_complete("web", 2, 4).await;
    let seen = monitor.stop().await;
    assert!(seen.steps >= 3, "the watch saw the rollout: {seen:?}");
    assert!(
        seen.max_pods <= max_pods,
        "more than desired + maxSurge pods: {seen:?}"
    );
    assert!(
        seen.min_ready >= min_ready,
        "fewer than desired − maxUnavailable ready: {seen:?}"
    );
    assert_eq!(env.replicas("web-1").await, 0);
    let dc = env.dc("web").await;
    let status = dc.status.unwrap();
    assert_eq!(status.latest_version, 2);
    assert_eq!(status.details.unwrap().causes[0].type_, "ConfigChange");
    env.stop().await;
}

#[tokio::test]
async fn rolling_surge_one_unavailable_zero_keeps_its_bounds() {
    rolling_bounds_hold(json!(1), json!(0), 5, 4).await;
}

#[tokio::test]
async fn rolling_surge_zero_unavailable_one_keeps_its_bounds() {
    rolling_bounds_hold(json!(0), json!(1), 4, 3).await;
}

#[tokio::test]
async fn rolling_percentages_keep_their_bounds() {
    // 50% of 4 up (2), 25% of 4 down (1).
    rolling_bounds_hold(json!("50%"), json!("25%"), 6, 3).await;
}

fn hook(point_policy: &str) -> serde_json::Value {
    json!({"failurePolicy": point_policy, "execNewPod": {"command": ["/bin/migrate"], "containerName": "web"}})
}

#[tokio::test]
async fn recreate_runs_pre_mid_and_post_hooks_in_order() {
    let env = Env::start("dep-recr").await;
    let strategy = json!({"type": "Recreate", "recreateParams": {
        "pre": hook("Abort"), "mid": hook("Abort"), "post": hook("Abort")}});
    env.create_dc("web", 2, strategy, json!({})).await;
    // Version 1 runs its hooks too (there is no old version to stop).
    let decider = HookDecider::start(&env, |_, _| "Succeeded").await;
    env.wait_complete("web", 1, 2).await;
    env.set_env("web", "2").await;
    env.wait_complete("web", 2, 2).await;
    let log = decider.stop().await;
    let v2: Vec<&HookSeen> = log.iter().filter(|h| h.version == "web-2").collect();
    let points: Vec<&str> = v2.iter().map(|h| h.point.as_str()).collect();
    assert_eq!(points, ["pre", "mid", "post"], "{log:?}");
    // pre: the old version still runs; mid: nothing runs; post: the new version runs.
    assert_eq!(
        (v2[0].pods_of["web-1"], v2[0].pods_of["web-2"]),
        (2, 0),
        "{log:?}"
    );
    assert_eq!(
        (v2[1].pods_of["web-1"], v2[1].pods_of["web-2"]),
        (0, 0),
        "{log:?}"
    );
    assert_eq!(
        (v2[2].pods_of["web-1"], v2[2].pods_of["web-2"]),
        (0, 2),
        "{log:?}"
    );
    // Hook pods take the container's image and carry no label a ReplicaSet selects.
    let pod = Api::<Pod>::namespaced(env.client.clone(), &env.ns.name)
        .get("web-2-hook-mid")
        .await
        .unwrap();
    assert!(!pod.labels().contains_key(labels::DEPLOYMENT));
    assert_eq!(
        pod.spec.unwrap().containers[0].command,
        Some(vec!["/bin/migrate".to_string()])
    );
    env.stop().await;
}

#[tokio::test]
async fn a_failing_abort_hook_fails_the_rollout_and_restores_the_previous_version() {
    let env = Env::start("dep-abrt").await;
    env.create_dc("web", 2, json!({"type": "Recreate"}), json!({}))
        .await;
    env.wait_complete("web", 1, 2).await;
    let strategy = json!({"type": "Recreate", "recreateParams": {"mid": hook("Abort")}});
    let decider = HookDecider::start(&env, |_, _| "Failed").await;
    env.patch_spec("web", json!({"strategy": strategy})).await;
    env.set_env("web", "2").await;
    env.wait_phase("web-2", "Failed").await;
    // The mid hook ran with the old version down; the old version comes back.
    env.wait_available("web-1", 2).await;
    assert_eq!(env.replicas("web-2").await, 0);
    let log = decider.stop().await;
    assert_eq!(log.len(), 1, "{log:?}");
    let dc = env.dc("web").await;
    let progressing = dc
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("False", "ProgressDeadlineExceeded")
    );
    env.stop().await;
}

#[tokio::test]
async fn a_retry_hook_runs_again_until_it_succeeds() {
    let env = Env::start("dep-rtry").await;
    let strategy = json!({"type": "Recreate", "recreateParams": {"pre": hook("Retry")}});
    // The first two attempts fail, the third succeeds.
    let decider = HookDecider::start(
        &env,
        |_, attempt| if attempt < 2 { "Failed" } else { "Succeeded" },
    )
    .await;
    env.create_dc("web", 1, strategy, json!({})).await;
    env.wait_complete("web", 1, 1).await;
    let log = decider.stop().await;
    assert_eq!(log.len(), 3, "{log:?}");
    env.stop().await;
}

#[tokio::test]
async fn an_ignored_hook_failure_lets_the_rollout_complete() {
    let env = Env::start("dep-ignr").await;
    let strategy = json!({"type": "Rolling", "rollingParams": {"post": hook("Ignore")}});
    let decider = HookDecider::start(&env, |_, _| "Failed").await;
    env.create_dc("web", 1, strategy, json!({})).await;
    env.wait_complete("web", 1, 1).await;
    assert_eq!(decider.stop().await.len(), 1);
    let rs = env.rs("web-1").await;
    assert_eq!(rs.annotations()["slipway.dev/hook.post"], "Failed");
    env.stop().await;
}

#[tokio::test]
async fn a_tag_update_in_an_image_stream_rolls_the_deployment_config() {
    let env = Env::start("dep-img").await;
    env.create_image_stream("app").await;
    let triggers = config_and_image_triggers("app:latest");
    env.create_dc(
        "web",
        1,
        json!({"type": "Rolling"}),
        json!({"triggers": triggers}),
    )
    .await;
    // The first version waits for the image: the controller has reconciled the config (the
    // status of its generation is written) and made no version.
    let waiting = env.observed("web", "waiting for its image", |_| true).await;
    assert_eq!(waiting.status.unwrap().latest_version, 0);
    assert!(
        env.rs_opt("web-1").await.is_none(),
        "no version before the tag has an image"
    );
    let first = "127.0.0.1:15000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    env.push_tag("app", "latest", first).await;
    env.wait_complete("web", 1, 1).await;
    assert_eq!(env.image_of("web-1").await, first);
    let second =
        "127.0.0.1:15000/app@sha256:2222222222222222222222222222222222222222222222222222222222222222";
    env.push_tag("app", "latest", second).await;
    env.wait_complete("web", 2, 1).await;
    assert_eq!(env.image_of("web-2").await, second);
    let dc = env.dc("web").await;
    let status = dc.status.unwrap();
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(cause.type_, "ImageChange");
    assert_eq!(cause.image_trigger.as_ref().unwrap().from.name, "app:latest");
    let params = dc.spec.triggers.unwrap()[1].image_change_params.clone().unwrap();
    assert_eq!(params.last_triggered_image.as_deref(), Some(second));
    env.stop().await;
}

#[tokio::test]
async fn test_mode_scales_to_zero_after_a_successful_rollout() {
    let env = Env::start("dep-test").await;
    env.create_dc("web", 2, json!({"type": "Rolling"}), json!({"test": true}))
        .await;
    env.wait_phase("web-1", "Complete").await;
    env.wait_replicas("web-1", 0).await;
    env.stop().await;
}

#[tokio::test]
async fn history_is_pruned_to_the_limit_but_not_the_serving_version() {
    let env = Env::start("dep-hist").await;
    env.create_dc(
        "web",
        1,
        json!({"type": "Recreate"}),
        json!({"revisionHistoryLimit": 1}),
    )
    .await;
    env.wait_complete("web", 1, 1).await;
    for n in 2..=4 {
        env.set_env("web", &n.to_string()).await;
        env.wait_complete("web", n, 1).await;
    }
    // Kept: the latest (4) and one older (3).
    let rs_api = env.rs_api();
    eventually("old versions to be pruned", Duration::from_secs(30), || async {
        let names: Vec<String> = rs_api
            .list(&ListParams::default())
            .await
            .ok()?
            .into_iter()
            .map(|rs| rs.name_any())
            .collect();
        (names.len() == 2).then_some(())
    })
    .await;
    assert!(env.rs_opt("web-3").await.is_some() && env.rs_opt("web-4").await.is_some());
    env.stop().await;
}

#[tokio::test]
async fn nothing_is_written_when_nothing_changed() {
    let env = Env::start("dep-quiet").await;
    env.create_dc("web", 2, json!({"type": "Rolling"}), json!({}))
        .await;
    env.wait_complete("web", 1, 2).await;
    // The status of the finished rollout is written: the controller has nothing left to do.
    env.at_rest("web").await;
    let before = (
        env.dc("web").await.resource_version(),
        env.rs("web-1").await.resource_version(),
    );
    let env = env.restart().await;
    // The new controller has listed the config and ended a reconcile of it.
    env.controller.initial_sync(DEPLOY).await;
    assert!(env.controller.reconciles(DEPLOY) >= 1);
    let after = (
        env.dc("web").await.resource_version(),
        env.rs("web-1").await.resource_version(),
    );
    assert_eq!(before, after, "a reconcile with nothing to do wrote something");
    env.stop().await;
}

/// After a start, the first reconciles of a namespace share one read of its DeploymentConfigs and
/// ReplicaSets; what changed while the operator was down is still acted on, and what did not
/// stays unwritten.
#[tokio::test]
async fn changes_made_while_the_operator_was_down_are_acted_on_beside_those_at_rest() {
    let mut env = Env::start("dep-down").await;
    for name in ["web", "api", "db"] {
        env.create_dc(name, 2, json!({"type": "Rolling"}), json!({}))
            .await;
    }
    for name in ["web", "api", "db"] {
        env.wait_complete(name, 1, 2).await;
        env.at_rest(name).await;
    }
    env.controller.stop().await;
    // While it is down: web's template changes, api's version is scaled down behind its back.
    env.set_env("web", "2").await;
    env.rs_api()
        .patch(
            "api-1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    let before = (
        env.dc("db").await.resource_version(),
        env.rs("db-1").await.resource_version(),
    );
    env.controller = Env::controller(&env.ns.name).await;
    env.wait_complete("web", 2, 2).await;
    env.wait_available("api-1", 2).await;
    // Every config, db's included, has been reconciled once by the new controller.
    env.controller.initial_sync(DEPLOY).await;
    let after = (
        env.dc("db").await.resource_version(),
        env.rs("db-1").await.resource_version(),
    );
    assert_eq!(before, after, "a DeploymentConfig at rest was written");
    env.stop().await;
}

#[tokio::test]
async fn paused_makes_no_new_version_until_resumed() {
    let env = Env::start("dep-pause").await;
    env.create_dc("web", 1, json!({"type": "Rolling"}), json!({}))
        .await;
    env.wait_complete("web", 1, 1).await;
    env.patch_spec("web", json!({"paused": true})).await;
    env.set_env("web", "2").await;
    env.set_env("web", "3").await;
    // The controller has seen the last change (the status of its generation says paused) and
    // made no version of it.
    let paused = env
        .observed("web", "paused", |d| {
            d.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Progressing" && c.reason == "DeploymentConfigPaused")
            })
        })
        .await;
    assert_eq!(paused.status.unwrap().latest_version, 1);
    assert!(env.rs_opt("web-2").await.is_none());
    env.patch_spec("web", json!({"paused": false})).await;
    // One new version with every change made while paused.
    env.wait_complete("web", 2, 1).await;
    assert!(env.rs_opt("web-3").await.is_none());
    assert_eq!(env.dc("web").await.status.unwrap().latest_version, 2);
    env.stop().await;
}

#[tokio::test]
async fn a_tag_images_hook_points_a_tag_at_the_new_image() {
    let env = Env::start("dep-tag").await;
    env.create_image_stream("app").await;
    let post = json!({"failurePolicy": "Abort", "tagImages": [
        {"containerName": "web", "to": {"kind": "ImageStreamTag", "name": "app:deployed"}}]});
    let strategy = json!({"type": "Recreate", "recreateParams": {"post": post}});
    env.create_dc("web", 1, strategy, json!({})).await;
    env.wait_complete("web", 1, 1).await;
    let is = Api::<slipway_crds::ImageStream>::namespaced(env.client.clone(), &env.ns.name)
        .get("app")
        .await
        .unwrap();
    let tag = is.spec.tags.iter().find(|t| t.name == "deployed").unwrap();
    assert_eq!(tag.from.as_ref().unwrap().name, "registry.invalid/app:1");
    assert_eq!(
        env.rs("web-1").await.annotations()["slipway.dev/hook.post"],
        "Complete"
    );
    env.stop().await;
}
