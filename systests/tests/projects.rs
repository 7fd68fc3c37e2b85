//! `slip whoami | new-project | project | delete-project` as alice and bob, through kubeconfigs
//! that impersonate them, against the dev cluster with the admission webhook and the project
//! controller running (both limited to this test's label).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, PostParams};
use serde_json::json;
use slipway_testkit::*;
use slipway_webhook::register::{Endpoint, unregister};

/// A kubeconfig that acts as `user` without naming groups (the API server adds its own).
fn kubeconfig_as_without_groups(dir: &Path, user: &str) -> PathBuf {
    let path = kubeconfig_as(dir, user);
    let mut config: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for entry in config["users"].as_sequence_mut().unwrap() {
        entry["user"].as_mapping_mut().unwrap().remove("as-groups");
    }
    std::fs::write(&path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    path
}

/// Removes the APIService however the test ends: one whose server is gone would keep namespaces
/// from finishing their deletion, cluster-wide.
struct AccessApiGuard;

impl Drop for AccessApiGuard {
    fn drop(&mut self) {
        let _ = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = client().await;
                let api: Api<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService> =
                    Api::all(client);
                let _ = api
                    .delete(slipway_webhook::access::API_SERVICE, &Default::default())
                    .await;
            });
        })
        .join();
    }
}

async fn slip(kubeconfig: &Path, args: &[&str]) -> Output {
    run_program(env!("CARGO_BIN_EXE_slip-under-test"), Some(kubeconfig), args).await
}

fn text(out: &Output) -> String {
    output_text(out)
}

#[tokio::test]
async fn alice_makes_uses_and_deletes_her_project_and_bob_cannot_see_it() {
    ensure_crds();
    let client = client().await;
    let id = unique_name("slip-proj");
    let label = format!("slipway.dev/test-run={id}");

    // What the chart's self-provisioner role grants every user: request a project, read the request.
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": id},
        "rules": [
            {"apiGroups": ["slipway.dev"], "resources": ["projectrequests"], "verbs": ["create", "get"]},
            {"apiGroups": ["access.slipway.dev"], "resources": ["projects"], "verbs": ["get", "list"]}
        ]
    }))
    .unwrap();
    Api::<ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": id},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": id},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // The admission webhook and the project controller, for this test's objects.
    let addr = free_loopback_addr();
    let port = addr.port();
    let selector: LabelSelector =
        serde_json::from_value(json!({"matchLabels": {"slipway.dev/test-run": id}})).unwrap();
    let endpoint = Endpoint::Url(format!("https://127.0.0.1:{port}"));
    let names = ["127.0.0.1".to_string()];
    // Admission signs requester stamps with the tests' key; the operator verifies them.
    slipway_webhook::admission::use_requester_keys(requester_key_file());
    let webhook = slipway_webhook::start(client.clone(), addr, &names, &id, endpoint, Some(selector))
        .await
        .unwrap();
    let mut ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
    ctx.requester_keys = std::sync::Arc::new(slipway_operator::requester::RequesterKeys::Fixed(vec![
        TEST_REQUESTER_KEY.to_vec(),
    ]));
    let settings = slipway_operator::project::Settings {
        label_selector: Some(label.clone()),
        ..Default::default()
    };
    let operator = tokio::spawn(slipway_operator::project::run(ctx, settings));
    await_admission_webhook(&client, &id).await;
    // The access.slipway.dev API, reached by the API server through an ExternalName Service.
    let access = slipway_webhook::start_access(
        client.clone(),
        free_loopback_addr(),
        "default",
        "slipway-access-test",
        Some("localhost"),
    )
    .await
    .unwrap();
    let _unregister = AccessApiGuard;

    let dir = tempfile::tempdir().unwrap();
    let alice = kubeconfig_as(dir.path(), "alice");
    let bob = kubeconfig_as(dir.path(), "bob");
    let out = slip(&alice, &["whoami"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice\n", "{}", text(&out));

    let project = format!("{id}-a");
    let out = slip(
        &alice,
        &["new-project", &project, "--display-name", "Alice's", "-l", &label],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Now using project \"{project}\".\n")
    );
    // The kubeconfig now points at the project.
    let out = slip(&alice, &["project"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Using project \"{project}\".\n")
    );
    let ns = Api::<Namespace>::all(client.clone()).get(&project).await.unwrap();
    assert_eq!(ns.metadata.annotations.unwrap()["slipway.dev/requester"], "alice");

    // bob makes his own; each lists only their own, and carol, who has none, sees neither.
    let bobs = format!("{id}-b");
    let out = slip(&bob, &["new-project", &bobs, "--skip-config-write", "-l", &label]).await;
    assert!(out.status.success(), "{}", text(&out));
    let carol = kubeconfig_as(dir.path(), "carol");
    for (who, mine, theirs) in [(&alice, &project, &bobs), (&bob, &bobs, &project)] {
        let out = slip(who, &["projects"]).await;
        assert!(out.status.success(), "{}", text(&out));
        let listed = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(listed.contains(&format!(" {mine}")), "{listed}");
        assert!(!listed.contains(theirs.as_str()), "{listed}");
    }
    let out = slip(&alice, &["projects"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("* {project} - Alice's")),
        "the current project is marked, with its display name: {}",
        text(&out)
    );
    let out = slip(&carol, &["projects"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!listed.contains(&project) && !listed.contains(&bobs), "{listed}");
    // Someone the role does not cover (not authenticated) is refused by the API server itself.
    let out = slip(
        &kubeconfig_as_without_groups(dir.path(), "system:anonymous"),
        &["projects"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("you may not list your projects"),
        "{}",
        text(&out)
    );
    let out = slip(&bob, &["delete-project", &bobs]).await;
    assert!(out.status.success(), "{}", text(&out));

    // bob cannot switch to it, nor delete it; a project that does not exist reads the same.
    for args in [
        vec!["project", project.as_str()],
        vec!["delete-project", project.as_str()],
    ] {
        let out = slip(&bob, &args).await;
        assert!(!out.status.success());
        assert!(text(&out).contains("does not exist or you"), "{}", text(&out));
    }
    let out = slip(&alice, &["project", "no-such-project-anywhere"]).await;
    assert!(
        text(&out).contains("project no-such-project-anywhere does not exist or you have no access"),
        "{}",
        text(&out)
    );
    // A name the API refuses comes back with the API server's reason, as an error.
    let out = slip(&alice, &["new-project", "kube-mine", "-l", &label]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("reserved"), "{}", text(&out));

    // alice deletes it; everything goes.
    let out = slip(&alice, &["delete-project", &project]).await;
    assert!(out.status.success(), "{}", text(&out));
    await_namespace_gone(&client, &project).await;

    operator.abort();
    access.handle.shutdown();
    webhook.handle.shutdown();
    unregister(&client, &id).await.unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&id, &Default::default())
        .await
        .unwrap();
    Api::<ClusterRole>::all(client.clone())
        .delete(&id, &Default::default())
        .await
        .unwrap();
}
