//! One object the API server accepts but the operator's types cannot decode must not stall a
//! controller for the other objects of its kind: the watch leaves it out (`cache::watch`).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use std::time::Duration;

use kube::api::{Api, PostParams};
use serde_json::json;
use slipway_crds::{Build, BuildConfig};
use slipway_testkit::*;
use support::{Controller, Fixture};

const WAIT: Duration = Duration::from_secs(90);

fn build_config(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "source": {"type": "Git", "git": {"uri": "https://example.com/app.git"}},
        "strategy": {"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "example.com/builder:1"}}},
        "output": {"to": {"kind": "DockerImage", "name": "example.com/app:1"}},
        "triggers": [{"type": "ConfigChange"}],
        "nodeSelector": {"type": "kwok"},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn an_undecodable_build_config_does_not_stall_the_others() {
    let Fixture { client, ns } = Fixture::start("undecodable").await;
    // The schema says integer (format int32, minimum 0) and the API server keeps any integer;
    // the operator's type is an i32.
    let bad = build_config("bad", json!({"failedBuildsHistoryLimit": 4_294_967_296_i64}));
    let dynamic = dynamic_api(&client, "BuildConfig", &ns.name);
    let stored = dynamic
        .create(&PostParams::default(), &serde_json::from_value(bad).unwrap())
        .await
        .unwrap();
    let decoded = serde_json::from_value::<BuildConfig>(serde_json::to_value(&stored).unwrap());
    assert!(decoded.is_err(), "the premise: the stored object does not decode");

    // Started with the bad object already there: its first list holds it.
    let namespace = Some(ns.name.clone());
    let mut controller = Controller::start(|ctx| slipway_operator::build::trigger::run(ctx, namespace)).await;
    dynamic
        .create(
            &PostParams::default(),
            &serde_json::from_value(build_config("good", json!({}))).unwrap(),
        )
        .await
        .unwrap();
    let builds: Api<Build> = Api::namespaced(client.clone(), &ns.name);
    eventually("the good BuildConfig's ConfigChange build", WAIT, || async {
        builds.get_opt("good-1").await.ok().flatten().map(|_| ())
    })
    .await;
    controller.stop().await;
    ns.delete().await;
}
