//! Admission against the dev cluster: the API server calls the webhook over TLS with the CA it
//! was registered with. Each test registers its own configurations, limited by an object selector
//! to the objects it labels, and removes them at the end.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, PostParams};
use kube::core::DynamicObject;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use slipway_crds::project::ProjectRequestPhase;
use slipway_crds::{ProjectRequest, TemplateInstance};
use slipway_testkit::*;
use slipway_webhook::register::{Endpoint, Registration, register, unregister};

struct Hooks {
    id: String,
    client: Client,
    ctx: slipway_operator::Context,
    handle: axum_server::Handle<std::net::SocketAddr>,
}

impl Hooks {
    /// Serves the hooks on a free loopback port and registers them for objects labelled with
    /// this test's id. With `serve: false` nothing listens: the API server cannot reach the hook.
    async fn start(serve: bool) -> Self {
        ensure_crds();
        let client = client().await;
        let id = unique_name("hook");
        let addr = free_loopback_addr();
        let port = addr.port();
        let endpoint = Endpoint::Url(format!("https://127.0.0.1:{port}"));
        let selector: LabelSelector =
            serde_json::from_value(json!({"matchLabels": {"slipway.dev/test-run": id}})).unwrap();
        // Admission signs requester stamps with the tests' key; the operator below verifies them.
        slipway_webhook::admission::use_requester_keys(requester_key_file());
        let handle = if serve {
            let names = ["127.0.0.1".to_string()];
            let running = slipway_webhook::start(client.clone(), addr, &names, &id, endpoint, Some(selector))
                .await
                .unwrap();
            running.handle
        } else {
            // Registered, but nothing listens: the API server cannot reach the hook.
            let certs = slipway_webhook::tls::generate(&["127.0.0.1".to_string()]).unwrap();
            let registration = Registration {
                name: id.clone(),
                endpoint,
                ca_pem: certs.ca_pem,
                object_selector: Some(selector),
            };
            register(&client, &registration).await.unwrap();
            axum_server::Handle::new()
        };
        let mut ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
        ctx.requester_keys = std::sync::Arc::new(slipway_operator::requester::RequesterKeys::Fixed(vec![
            TEST_REQUESTER_KEY.to_vec(),
        ]));
        await_admission_webhook(&client, &id).await;
        Self {
            id,
            client,
            ctx,
            handle,
        }
    }

    fn as_user(&self, user: &str) -> Client {
        // system:masters so that RBAC is not what this test is about; the user name is.
        self.ctx
            .impersonating(user, &["system:masters".to_string()])
            .unwrap()
    }

    fn project_request(&self, name: &str, annotations: Value) -> ProjectRequest {
        serde_json::from_value(json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest",
            "metadata": {"name": name, "labels": {"slipway.dev/test-run": self.id}, "annotations": annotations},
            "displayName": "Hooked"
        }))
        .unwrap()
    }

    async fn stop(self) {
        unregister(&self.client, &self.id).await.unwrap();
        self.handle.shutdown();
    }
}

#[tokio::test]
async fn the_requester_is_stamped_from_the_user_and_cannot_be_forged() {
    let hooks = Hooks::start(true).await;
    let requests: Api<ProjectRequest> = Api::all(hooks.as_user("alice"));

    // alice asks; the stamp says alice.
    let name = format!("{}-a", hooks.id);
    let created = requests
        .create(&PostParams::default(), &hooks.project_request(&name, json!({})))
        .await
        .unwrap();
    assert_eq!(created.annotations()["slipway.dev/requester"], "alice");
    // With its proof, which the operator verifies before it acts.
    assert_eq!(
        created.annotations()[slipway_crds::requester::PROOF_ANNOTATION],
        stamped_project_request(&name, "alice")[slipway_crds::requester::PROOF_ANNOTATION]
    );

    // alice cannot stamp bob.
    let forged = hooks.project_request(
        &format!("{}-b", hooks.id),
        json!({"slipway.dev/requester": "bob"}),
    );
    let err = requests
        .create(&PostParams::default(), &forged)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("slipway.dev/requester is set by Slipway from your identity"),
        "{err}"
    );

    // Nor change the stamp later.
    let mut changed = requests.get(&name).await.unwrap();
    changed
        .annotations_mut()
        .insert("slipway.dev/requester".into(), "bob".into());
    let err = requests
        .replace(&name, &PostParams::default(), &changed)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot change"), "{err}");

    // A request for an existing namespace is refused at admission.
    let taken = format!("{}-taken", hooks.id);
    let taken_namespace = TestNamespace::named(&hooks.client, &taken, json!({})).await;
    let err = requests
        .create(&PostParams::default(), &hooks.project_request(&taken, json!({})))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("namespace {taken} already exists")),
        "{err}"
    );
    taken_namespace.delete().await;

    // With the operator running, the stamped request becomes alice's project.
    let settings = slipway_operator::project::Settings {
        label_selector: Some(format!("slipway.dev/test-run={}", hooks.id)),
        ..Default::default()
    };
    let operator = tokio::spawn(slipway_operator::project::run(hooks.ctx.clone(), settings));
    let admin = Api::<ProjectRequest>::all(hooks.client.clone());
    eventually("alice's project", Duration::from_secs(60), || async {
        (admin.get(&name).await.ok()?.status?.phase == ProjectRequestPhase::Active).then_some(())
    })
    .await;
    let ns = Api::<Namespace>::all(hooks.client.clone())
        .get(&name)
        .await
        .unwrap();
    assert_eq!(ns.annotations()["slipway.dev/requester"], "alice");
    let project = Api::<slipway_crds::Project>::all(hooks.client.clone());
    project.delete(&name, &Default::default()).await.unwrap();
    await_namespace_gone(&hooks.client, &name).await;
    operator.abort();
    hooks.stop().await;
}

#[tokio::test]
async fn a_template_instance_records_the_whole_requester() {
    let hooks = Hooks::start(true).await;
    let ns = TestNamespace::new(&hooks.client, "hook-ti").await;
    let instances: Api<TemplateInstance> = Api::namespaced(hooks.as_user("alice"), &ns.name);
    let instance: TemplateInstance = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "TemplateInstance",
        "metadata": {"name": "t", "labels": {"slipway.dev/test-run": hooks.id}},
        "spec": {"templateRef": {"name": "anything"}}
    }))
    .unwrap();
    let created = instances.create(&PostParams::default(), &instance).await.unwrap();
    let requester = created.spec.requester.unwrap();
    assert_eq!(requester.username, "alice");
    assert!(
        requester.groups.contains(&"system:masters".to_string()),
        "{:?}",
        requester.groups
    );
    let mut forged = instance.clone();
    forged.metadata.name = Some("forged".into());
    forged.spec.requester = Some(slipway_crds::template::TemplateInstanceRequester {
        username: "bob".into(),
        ..Default::default()
    });
    let err = instances
        .create(&PostParams::default(), &forged)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.requester is set by Slipway"), "{err}");
    ns.delete().await;
    hooks.stop().await;
}

#[tokio::test]
async fn when_the_webhook_is_down_project_requests_are_refused_and_nothing_is_made() {
    let hooks = Hooks::start(false).await;
    let name = format!("{}-down", hooks.id);
    let requests: Api<ProjectRequest> = Api::all(hooks.as_user("alice"));
    let err = requests
        .create(&PostParams::default(), &hooks.project_request(&name, json!({})))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed calling webhook"), "{err}");
    let admin: Api<DynamicObject> = dynamic_api(&hooks.client, "ProjectRequest", "");
    assert!(admin.get_opt(&name).await.unwrap().is_none());
    assert!(
        Api::<Namespace>::all(hooks.client.clone())
            .get_opt(&name)
            .await
            .unwrap()
            .is_none()
    );
    hooks.stop().await;
}

/// A project that enforces Pod Security's `restricted` level runs pods that say nothing about
/// security, as OpenShift's templates write them: the webhook fills in what `restricted` needs
/// (and Pod Security then admits the pod); a pod that asks for privileges keeps asking and is
/// refused by Pod Security; a Deployment's pods come up the same way; a `baseline` project's pods
/// are left as written.
#[tokio::test]
async fn pods_of_restricted_projects_get_the_restricted_defaults() {
    let hooks = Hooks::start(true).await;
    let project = |level: &str| {
        let name = unique_name(&format!("hook-psa-{level}"));
        let labels = json!({"slipway.dev/project": name, "pod-security.kubernetes.io/enforce": level});
        (name, labels)
    };
    let (restricted, labels) = project("restricted");
    let restricted_ns = TestNamespace::named(&hooks.client, &restricted, labels).await;
    let (baseline, labels) = project("baseline");
    let baseline_ns = TestNamespace::named(&hooks.client, &baseline, labels).await;
    let pod = |name: &str, container: Value| -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"slipway.dev/test-run": hooks.id}},
            "spec": {"containers": [container]}
        }))
        .unwrap()
    };
    let plain = json!({"name": "web", "image": "registry.invalid/web:1"});
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(hooks.client.clone(), &restricted);
    let created = pods
        .create(&PostParams::default(), &pod("plain", plain.clone()))
        .await
        .expect("Pod Security admits the defaulted pod");
    let spec = serde_json::to_value(created.spec.unwrap()).unwrap();
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        spec["containers"][0]["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    );

    // Asking for privileges is not overridden: Pod Security refuses it, naming what.
    let privileged = json!({"name": "web", "image": "registry.invalid/web:1",
        "securityContext": {"privileged": true}});
    let err = pods
        .create(&PostParams::default(), &pod("privileged", privileged))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("violates PodSecurity \"restricted") && err.contains("privileged"),
        "{err}"
    );

    // A Deployment as OpenShift's templates write it: its ReplicaSet's pods are admitted.
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "quickstart"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "quickstart"}},
            "template": {"metadata": {"labels": {"app": "quickstart", "slipway.dev/test-run": hooks.id}},
                "spec": {"containers": [plain.clone()]}}}
    }))
    .unwrap();
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(hooks.client.clone(), &restricted)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let made = eventually("the Deployment's pod", Duration::from_secs(60), || async {
        let list = pods
            .list(&kube::api::ListParams::default().labels("app=quickstart"))
            .await
            .ok()?;
        list.items.into_iter().next()
    })
    .await;
    assert_eq!(
        made.spec.unwrap().security_context.unwrap().run_as_non_root,
        Some(true)
    );

    // A baseline project: nothing added.
    let left = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(hooks.client.clone(), &baseline)
        .create(&PostParams::default(), &pod("plain", plain))
        .await
        .unwrap();
    let spec = left.spec.unwrap();
    assert!(
        spec.security_context.is_none_or(|c| c.run_as_non_root.is_none()),
        "a baseline project's pod was changed"
    );
    assert!(spec.containers[0].security_context.is_none());
    restricted_ns.delete().await;
    baseline_ns.delete().await;
    hooks.stop().await;
}
