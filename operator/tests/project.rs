//! The project controllers against the dev cluster with real RBAC; users by impersonation.
//! Projects are cluster-scoped, so every test uses unique project names and runs its own
//! controller, limited by a label to the requests of that test.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use slipway_crds::project::{ProjectPhase, ProjectRequestPhase};
use slipway_crds::{Project, ProjectRequest};
use slipway_operator::project::Settings;
use slipway_testkit::*;
use support::Controller;

struct Run {
    id: String,
    client: Client,
    /// The project controller, limited by a label to this run's requests.
    controller: Controller,
}

impl Run {
    async fn start(settings: Settings) -> Self {
        ensure_crds();
        let client = client().await;
        let run_id = unique_name("proj");
        let settings = Settings {
            label_selector: Some(format!("slipway.dev/test-run={run_id}")),
            ..settings
        };
        let mut ctx = support::context().await;
        ctx.requester_keys = std::sync::Arc::new(slipway_operator::requester::RequesterKeys::Fixed(vec![
            TEST_REQUESTER_KEY.to_vec(),
        ]));
        let controller = Controller::start_with(ctx, |ctx| slipway_operator::project::run(ctx, settings));
        Self {
            id: run_id,
            client,
            controller,
        }
    }

    /// A project name unique to this run.
    fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.id)
    }

    /// Creates a request as if the admission webhook had stamped `requester` (with its proof).
    async fn request(&self, name: &str, requester: &str) -> Api<ProjectRequest> {
        self.request_annotated(name, stamped_project_request(name, requester))
            .await
    }

    /// Creates a request with these annotations, as a client would with admission out of the way.
    async fn request_annotated(&self, name: &str, annotations: serde_json::Value) -> Api<ProjectRequest> {
        let api: Api<ProjectRequest> = Api::all(self.client.clone());
        let request = json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest",
            "metadata": {"name": name, "labels": {"slipway.dev/test-run": self.id},
                         "annotations": annotations},
            "displayName": "Team A", "description": "Where team A works"
        });
        api.create(&PostParams::default(), &serde_json::from_value(request).unwrap())
            .await
            .unwrap();
        api
    }

    async fn phase(&self, name: &str, phase: ProjectRequestPhase) -> String {
        let api: Api<ProjectRequest> = Api::all(self.client.clone());
        eventually(
            &format!("request {name} to be {phase:?}"),
            Duration::from_secs(60),
            || async {
                let status = api.get(name).await.ok()?.status?;
                (status.phase == phase).then(|| status.message.unwrap_or_default())
            },
        )
        .await
    }

    fn as_user(&self, user: &str) -> Client {
        self.controller
            .ctx
            .impersonating(user, &["system:authenticated".to_string()])
            .unwrap()
    }

    async fn project_exists(&self, name: &str) -> bool {
        Api::<Project>::all(self.client.clone())
            .get_opt(name)
            .await
            .unwrap()
            .is_some()
    }

    async fn delete_request(&self, name: &str) {
        Api::<ProjectRequest>::all(self.client.clone())
            .delete(name, &Default::default())
            .await
            .unwrap();
    }

    async fn delete_project(&self, name: &str) {
        let _ = Api::<Project>::all(self.client.clone())
            .delete(name, &DeleteParams::background())
            .await;
    }

    async fn gone(&self, name: &str) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let projects: Api<Project> = Api::all(self.client.clone());
        let requests: Api<ProjectRequest> = Api::all(self.client.clone());
        eventually(
            &format!("project {name} to be gone"),
            Duration::from_secs(90),
            || async {
                let left = namespaces.get_opt(name).await.ok()?.is_some()
                    || projects.get_opt(name).await.ok()?.is_some()
                    || requests.get_opt(name).await.ok()?.is_some();
                (!left).then_some(())
            },
        )
        .await;
    }
}

#[tokio::test]
async fn alice_gets_her_project_and_bob_cannot_touch_it() {
    let run = Run::start(Settings::default()).await;
    let name = run.name("team-a");
    run.request(&name, "alice").await;
    run.phase(&name, ProjectRequestPhase::Active).await;

    // The namespace says who asked and what it is for.
    let ns = Api::<Namespace>::all(run.client.clone())
        .get(&name)
        .await
        .unwrap();
    assert_eq!(ns.annotations()["slipway.dev/requester"], "alice");
    assert_eq!(ns.annotations()["slipway.dev/display-name"], "Team A");
    assert_eq!(ns.annotations()["slipway.dev/description"], "Where team A works");
    // The Project mirrors it.
    let projects: Api<Project> = Api::all(run.client.clone());
    let status = eventually("the project's status", Duration::from_secs(30), || async {
        projects
            .get(&name)
            .await
            .ok()?
            .status
            .filter(|s| s.requester.is_some())
    })
    .await;
    assert_eq!(status.phase, ProjectPhase::Active);
    assert_eq!(
        (status.display_name.as_deref(), status.requester.as_deref()),
        (Some("Team A"), Some("alice"))
    );
    // Bindings, service accounts, and the default quota, limit range and network policy.
    let admin = Api::<RoleBinding>::namespaced(run.client.clone(), &name)
        .get("admin")
        .await
        .unwrap();
    assert_eq!(admin.role_ref.name, "admin");
    assert_eq!(admin.subjects.unwrap()[0].name, "alice");
    for sa in ["builder", "deployer"] {
        Api::<ServiceAccount>::namespaced(run.client.clone(), &name)
            .get(sa)
            .await
            .unwrap();
    }
    Api::<ResourceQuota>::namespaced(run.client.clone(), &name)
        .get("project-quota")
        .await
        .unwrap();
    Api::<LimitRange>::namespaced(run.client.clone(), &name)
        .get("project-limits")
        .await
        .unwrap();
    Api::<NetworkPolicy>::namespaced(run.client.clone(), &name)
        .get("project-isolation")
        .await
        .unwrap();

    // alice administers it; bob can neither read, list nor change anything in it.
    let config_map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"k": "v"}})).unwrap();
    let as_alice: Api<ConfigMap> = Api::namespaced(run.as_user("alice"), &name);
    as_alice
        .create(&PostParams::default(), &config_map)
        .await
        .expect("alice creates in her project");
    let as_bob: Api<ConfigMap> = Api::namespaced(run.as_user("bob"), &name);
    let forbidden = |e: kube::Error| matches!(e, kube::Error::Api(s) if s.code == 403);
    assert!(forbidden(as_bob.get("settings").await.unwrap_err()));
    assert!(forbidden(as_bob.list(&Default::default()).await.unwrap_err()));
    assert!(forbidden(
        as_bob.delete("settings", &Default::default()).await.unwrap_err()
    ));
    let mut other = config_map.clone();
    other.metadata.name = Some("bobs".into());
    assert!(forbidden(
        as_bob.create(&PostParams::default(), &other).await.unwrap_err()
    ));
    let bobs_namespace_view: Api<Namespace> = Api::all(run.as_user("bob"));
    assert!(forbidden(bobs_namespace_view.get(&name).await.unwrap_err()));
    // At cluster level alice sees her Project and its Namespace, bob does not.
    Api::<Project>::all(run.as_user("alice"))
        .get(&name)
        .await
        .expect("alice sees her project");
    Api::<Namespace>::all(run.as_user("alice"))
        .get(&name)
        .await
        .expect("alice sees her namespace");
    assert!(forbidden(
        Api::<Project>::all(run.as_user("bob"))
            .get(&name)
            .await
            .unwrap_err()
    ));
    assert!(forbidden(
        Api::<Project>::all(run.as_user("bob"))
            .delete(&name, &Default::default())
            .await
            .unwrap_err()
    ));

    // alice deletes her project: the namespace and everything in it go, then the project, its
    // request and her cluster-level role; it reports Terminating meanwhile.
    Api::<Project>::all(run.as_user("alice"))
        .delete(&name, &DeleteParams::background())
        .await
        .unwrap();
    eventually(
        "the project to be Terminating",
        Duration::from_secs(30),
        || async {
            match projects.get_opt(&name).await.ok()? {
                Some(p) => (p.status?.phase == ProjectPhase::Terminating).then_some(()),
                None => Some(()), // already gone: it went through Terminating faster than we looked
            }
        },
    )
    .await;
    run.gone(&name).await;
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(run.client.clone());
    assert!(
        roles
            .get_opt(&format!("slipway-project-{name}"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_existing_namespace_is_refused_and_left_alone() {
    let run = Run::start(Settings::default()).await;
    let name = run.name("taken");
    let taken = TestNamespace::named(&run.client, &name, json!({"owner": "someone"})).await;
    run.request(&name, "alice").await;
    let message = run.phase(&name, ProjectRequestPhase::Failed).await;
    assert_eq!(
        message,
        format!("namespace {name} already exists; choose another project name")
    );
    let ns = Api::<Namespace>::all(run.client.clone())
        .get(&name)
        .await
        .unwrap();
    assert_eq!(ns.labels()["owner"], "someone");
    assert!(!ns.annotations().contains_key("slipway.dev/requester"));
    assert!(!run.project_exists(&name).await);
    run.delete_request(&name).await;
    taken.delete().await;
}

/// Admission out of the way (deleted, not yet registered, bypassed): a request that names its
/// requester itself, or carries a proof made for another request or another user, is refused
/// with the reason, and no namespace, binding or Project is made for the named user.
#[tokio::test]
async fn a_requester_without_admissions_proof_gets_no_project() {
    let run = Run::start(Settings::default()).await;
    let other = run.name("other");
    let cases = [
        (
            "bare",
            json!({"slipway.dev/requester": "alice"}),
            "carries no proof",
        ),
        (
            "moved",
            // alice's genuine proof for another request.
            stamped_project_request(&other, "alice"),
            "does not match its proof",
        ),
        (
            "renamed",
            // A proof made for mallory, with alice's name put beside it.
            {
                let name = run.name("renamed");
                let mut a = stamped_project_request(&name, "mallory");
                a["slipway.dev/requester"] = json!("alice");
                a
            },
            "does not match its proof",
        ),
        (
            "forged",
            json!({"slipway.dev/requester": "alice", slipway_crds::requester::PROOF_ANNOTATION: "v1:00"}),
            "does not match its proof",
        ),
    ];
    for (suffix, annotations, says) in cases {
        let name = run.name(suffix);
        run.request_annotated(&name, annotations).await;
        let message = run.phase(&name, ProjectRequestPhase::Failed).await;
        assert!(message.contains(says), "{suffix}: {message}");
        let status = Api::<ProjectRequest>::all(run.client.clone())
            .get(&name)
            .await
            .unwrap()
            .status
            .unwrap();
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.reason == "RequesterUnverified"),
            "{suffix}: {:?}",
            status.conditions
        );
        assert!(
            Api::<Namespace>::all(run.client.clone())
                .get_opt(&name)
                .await
                .unwrap()
                .is_none(),
            "{suffix}: a namespace was made"
        );
        assert!(!run.project_exists(&name).await, "{suffix}");
        run.delete_request(&name).await;
    }
}

#[tokio::test]
async fn a_failure_half_way_leaves_nothing_behind() {
    // A project template whose second object the API server refuses.
    let template = serde_json::from_value(json!({
        "parameters": [{"name": "PROJECT_NAME"}],
        "objects": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Valid_Name"}}
        ]
    }))
    .unwrap();
    let run = Run::start(Settings {
        template: Some(template),
        ..Default::default()
    })
    .await;
    let name = run.name("half");
    run.request(&name, "alice").await;
    let message = run.phase(&name, ProjectRequestPhase::Failed).await;
    assert!(message.starts_with("ConfigMap/Not_A_Valid_Name:"), "{message}");
    assert!(message.ends_with("what was made has been removed"), "{message}");
    // The namespace (and the ConfigMap that made it in) and the Project are gone.
    await_namespace_gone(&run.client, &name).await;
    assert!(!run.project_exists(&name).await);
    run.delete_request(&name).await;
}

#[tokio::test]
async fn a_user_may_have_only_so_many_projects() {
    let run = Run::start(Settings {
        max_projects_per_user: Some(1),
        ..Default::default()
    })
    .await;
    let first = run.name("one");
    let second = run.name("two");
    run.request(&first, "carol").await;
    run.phase(&first, ProjectRequestPhase::Active).await;
    run.request(&second, "carol").await;
    let message = run.phase(&second, ProjectRequestPhase::Failed).await;
    assert!(message.starts_with("carol already has 1 projects"), "{message}");
    assert!(
        Api::<Namespace>::all(run.client.clone())
            .get_opt(&second)
            .await
            .unwrap()
            .is_none()
    );
    run.delete_request(&second).await;
    run.delete_project(&first).await;
    run.gone(&first).await;
}
