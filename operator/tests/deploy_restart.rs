//! The deploy controller killed at random moments of many rollouts and started again: every
//! rollout completes, no version is made twice, none is lost. The controller runs in-process;
//! a kill is an abort of its task, in the middle of whatever it was doing.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod deploy_support;
mod support;

use std::time::Duration;

use deploy_support::*;
use kube::ResourceExt;
use kube::api::ListParams;
use rand::Rng;
use serde_json::json;
use slipway_crds::apps::labels;
use slipway_testkit::*;

const CONFIGS: usize = 8;
const KILLS: usize = 24;

#[tokio::test]
async fn rollouts_survive_the_operator_killed_at_random_points() {
    let mut env = Env::start("dep-kill").await;
    let names: Vec<String> = (0..CONFIGS).map(|i| format!("web{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let strategy = if i % 2 == 0 {
            json!({"type": "Rolling", "rollingParams": {"maxSurge": 1, "maxUnavailable": 1, "updatePeriodSeconds": 1}})
        } else {
            json!({"type": "Recreate"})
        };
        env.create_dc(name, 2, strategy, json!({})).await;
    }
    // Config changes land at random moments while the controller dies and comes back: some
    // while a rollout runs (the newer version cancels it), some in between.
    let mut changes = [1usize; CONFIGS];
    for kill in 0..KILLS {
        let pause = rand::rng().random_range(50..1200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if kill % 3 == 0 {
            let i = rand::rng().random_range(0..CONFIGS);
            changes[i] += 1;
            env.set_env(&names[i], &changes[i].to_string()).await;
        }
        env = env.restart().await;
    }
    // The last controller runs to the end.
    for name in &names {
        let rs_api = env.rs_api();
        let dcs = env.dcs();
        let (latest, rss) = eventually(
            &format!("{name} to converge"),
            Duration::from_secs(180),
            || async {
                let dc = dcs.get(name).await.ok()?;
                let latest = dc.status?.latest_version;
                let rss = rs_api
                    .list(&ListParams::default().labels(&format!("{}={name}", labels::DEPLOYMENT_CONFIG)))
                    .await
                    .ok()?
                    .items;
                let newest = rss
                    .iter()
                    .find(|rs| rs.name_any() == format!("{name}-{latest}"))?;
                let done = newest
                    .annotations()
                    .get(labels::DEPLOYMENT_PHASE)
                    .map(String::as_str)
                    == Some("Complete")
                    && newest.status.as_ref()?.available_replicas == Some(2);
                done.then_some((latest, rss))
            },
        )
        .await;
        // One ReplicaSet per version, 1..=latest, none missing, none twice, none beyond.
        let mut versions: Vec<i64> = rss
            .iter()
            .map(|rs| rs.annotations()[labels::LATEST_VERSION].parse().unwrap())
            .collect();
        versions.sort();
        assert_eq!(versions, (1..=latest).collect::<Vec<_>>(), "{name}");
        for rs in &rss {
            let n = &rs.annotations()[labels::LATEST_VERSION];
            assert_eq!(rs.name_any(), format!("{name}-{n}"));
        }
        // No lost change: the newest version runs the newest template.
        let dc = env.dc(name).await;
        let newest = rss
            .iter()
            .find(|rs| rs.name_any() == format!("{name}-{latest}"))
            .unwrap();
        let template: k8s_openapi::api::core::v1::PodTemplateSpec =
            serde_json::from_str(&newest.annotations()[labels::ENCODED_TEMPLATE]).unwrap();
        assert_eq!(Some(template), dc.spec.template, "{name}");
        // Only the newest version has pods.
        eventually(
            &format!("{name}'s old versions to be scaled down"),
            Duration::from_secs(60),
            || async {
                let rss = env
                    .rs_api()
                    .list(&ListParams::default().labels(&format!("{}={name}", labels::DEPLOYMENT_CONFIG)))
                    .await
                    .ok()?;
                rss.iter()
                    .filter(|rs| rs.name_any() != format!("{name}-{latest}"))
                    .all(|rs| rs.spec.as_ref().and_then(|s| s.replicas) == Some(0))
                    .then_some(())
            },
        )
        .await;
    }
    env.stop().await;
}
