//! The chart's rights for the webhook suffice for git deliveries: the server, run as a user bound
//! to a copy of the chart's `slipway-webhook` ClusterRole (rendered by helm), fills its caches and
//! builds from a delivery; with `webhook.cacheSecrets=false` (get on Secrets, no list or watch) it
//! still builds, reading the Secret at each delivery.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use slipway_testkit::*;
use support::*;

/// The rules of the chart's `slipway-webhook` ClusterRole with `values` set.
fn webhook_rules(values: &[&str]) -> serde_json::Value {
    render_chart("slipway-system", values)
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "slipway-webhook")
        .unwrap()["rules"]
        .clone()
}

async fn client_as(user: &str) -> kube::Client {
    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(user.to_string());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn the_charts_rights_suffice_for_git_deliveries() {
    ensure_crds();
    let admin = client().await;
    let ns = TestNamespace::new(&admin, "hookrights").await;
    setup(&admin, &ns.name, "app", "Parallel").await; // its Secret is labelled
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let path = format!("/webhooks/{}/app/github", ns.name);

    for (n, cache_secrets) in [true, false].into_iter().enumerate() {
        let name = unique_name("hookrights");
        let values = format!("webhook.cacheSecrets={cache_secrets}");
        // Labelled as test namespaces are, so that one left by a failed run is found and removed.
        let metadata = json!({"name": name, "labels": {"slipway.dev/test": "true"}});
        let role: ClusterRole = serde_json::from_value(json!({
            "metadata": metadata, "rules": webhook_rules(&[&values])
        }))
        .unwrap();
        roles.create(&PostParams::default(), &role).await.unwrap();
        let binding: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]
        }))
        .unwrap();
        bindings.create(&PostParams::default(), &binding).await.unwrap();
        let client = client_as(&name).await;
        // RBAC takes a moment to see a new binding; a forbidden first list would park a cache.
        eventually("the binding to take effect", Duration::from_secs(30), || async {
            Api::<slipway_crds::Build>::all(client.clone())
                .list_metadata(&ListParams::default().limit(1))
                .await
                .ok()
        })
        .await;

        let hook = Hook::start(client.clone()).await;
        eventually("the BuildConfig cache", Duration::from_secs(30), || async {
            hook.caches.config(&ns.name, "app").map(|_| ())
        })
        .await;
        if cache_secrets {
            eventually("every cache to be listed", Duration::from_secs(30), || async {
                hook.caches.synced().then_some(())
            })
            .await;
            assert!(hook.caches.secret(&ns.name, "hook").is_some());
        } else {
            // Not allowed to list Secrets: that cache stays empty, the Secret is read at delivery.
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(!hook.caches.synced());
            assert!(hook.caches.secret(&ns.name, "hook").is_none());
        }
        let body = github_push("refs/heads/main", &format!("c4a27{n:035x}"));
        let (status, answer) = hook
            .post(&path, &signed("github", "push", &body, SECRET), &body)
            .await;
        assert_eq!(status, 201, "cacheSecrets={cache_secrets}: {answer}");
        drop(hook);
        bindings.delete(&name, &DeleteParams::default()).await.unwrap();
        roles.delete(&name, &DeleteParams::default()).await.unwrap();
    }
    ns.delete().await;
}
