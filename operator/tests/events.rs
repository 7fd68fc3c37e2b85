//! The operator's Events against the dev cluster: a repeat joins the first Event's series, a
//! different reason or object makes its own.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::EventType;
use serde_json::json;
use support::Fixture;

#[tokio::test]
async fn a_repeated_event_is_one_event_with_a_series() {
    let Fixture { client, ns } = Fixture::start("events").await;
    let ctx = support::context().await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let mut regarding = Vec::new();
    for name in ["a", "b"] {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        regarding.push(
            config_maps
                .create(&PostParams::default(), &cm)
                .await
                .unwrap()
                .object_ref(&()),
        );
    }
    for _ in 0..3 {
        ctx.publish(&regarding[0], EventType::Normal, "Sync", "Synced", "once more")
            .await;
    }
    ctx.publish(&regarding[0], EventType::Warning, "Sync", "Failed", "no")
        .await;
    ctx.publish(&regarding[1], EventType::Normal, "Sync", "Synced", "the other")
        .await;

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let mut found: Vec<(String, String, Option<i32>)> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("slipway-operator"))
        .map(|e| {
            (
                e.regarding.and_then(|r| r.name).unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.series.map(|s| s.count),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("a".to_string(), "Failed".to_string(), None),
            ("a".to_string(), "Synced".to_string(), Some(3)),
            ("b".to_string(), "Synced".to_string(), None),
        ]
    );
    ns.delete().await;
}
