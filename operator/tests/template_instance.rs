//! The TemplateInstance controller against the dev cluster: objects come up as the requester and
//! the instance becomes Ready; deleting it removes them; a requester without rights gets
//! InstantiateFailure and nothing is created; a requester stamp without a valid proof, or naming
//! a privileged group, is never acted on. Each test runs its own controller, limited to the test's
//! namespace, with a test key standing in for the requester keys admission and the operator share.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use slipway_crds::TemplateInstance;
use slipway_crds::requester::{PROOF_ANNOTATION, Stamp};
use slipway_operator::requester::RequesterKeys;
use slipway_operator::template_instance::{INSTANCE_LABEL, INSTANTIATE_FAILURE, READY};
use slipway_testkit::*;
use support::{Controller, Fixture};

/// The requester key of the tests (what the Secret `slipway-requester-keys` holds in a cluster).
const TEST_KEY: &[u8] = b"slipway-tests-requester-key-0123456789";

/// Runs the controller for one namespace, verifying stamps with [`TEST_KEY`].
async fn controller(namespace: &str) -> Controller {
    let mut ctx = support::context().await;
    ctx.requester_keys = std::sync::Arc::new(RequesterKeys::Fixed(vec![TEST_KEY.to_vec()]));
    let namespace = namespace.to_string();
    Controller::start_with(ctx, |ctx| async move {
        slipway_operator::template_instance::run(ctx, Some(&namespace)).await
    })
}

/// A user who may do anything in the namespace (and nothing elsewhere); the operator never acts
/// as the dev cluster's own admin (`system:masters`).
const ADMIN: (&str, &[&str]) = ("ti-admin", &["system:authenticated"]);

/// Lets [`ADMIN`] do anything in `namespace`.
async fn admin_in(client: &kube::Client, namespace: &str) {
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(json!({
        "metadata": {"name": "everything"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "ti-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "everything"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ADMIN.0}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

fn requester(user: &str, groups: &[&str]) -> Value {
    json!({"username": user, "groups": groups})
}

/// The proof admission would add to an instance `namespace/name` of `requester`, under `key`.
fn proof(key: &[u8], namespace: &str, name: &str, requester: &Value) -> String {
    let groups: Vec<String> = serde_json::from_value(requester["groups"].clone()).unwrap_or_default();
    let stamp = Stamp {
        namespace,
        name,
        username: requester["username"].as_str().unwrap(),
        uid: requester["uid"].as_str().unwrap_or_default(),
        groups: &groups,
    };
    slipway_crds::requester::sign(key, &stamp)
}

fn inline_template() -> Value {
    json!({
        "metadata": {"name": "web-app"},
        "labels": {"app": "${NAME}"},
        "parameters": [
            {"name": "NAME", "value": "web"},
            {"name": "REPLICAS", "value": "2"},
            {"name": "PASSWORD", "generate": "expression", "from": "[a-z0-9]{24}"}
        ],
        "objects": [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "${NAME}-db"}, "stringData": {"password": "${PASSWORD}"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "${NAME}-config"}, "data": {"greeting": "hello"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "${NAME}"}, "spec": {
                "replicas": "${{REPLICAS}}",
                "selector": {"matchLabels": {"component": "${NAME}"}},
                "template": {"metadata": {"labels": {"component": "${NAME}"}},
                             "spec": {"containers": [{"name": "web", "image": "127.0.0.1:15000/examples/hello:1.0"}]}}
            }}
        ]
    })
}

/// Creates the instance as admission would stamp it: its requester with a proof under [`TEST_KEY`].
async fn create_instance(client: &kube::Client, ns: &str, name: &str, spec: Value) -> Api<TemplateInstance> {
    let annotations = match spec.get("requester") {
        Some(requester) => json!({PROOF_ANNOTATION: proof(TEST_KEY, ns, name, requester)}),
        None => json!({}),
    };
    create_annotated(client, ns, name, spec, annotations).await
}

/// Creates the instance with these annotations, as a client would with admission out of the way.
async fn create_annotated(
    client: &kube::Client,
    ns: &str,
    name: &str,
    spec: Value,
    annotations: Value,
) -> Api<TemplateInstance> {
    let api: Api<TemplateInstance> = Api::namespaced(client.clone(), ns);
    let object = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "TemplateInstance",
                        "metadata": {"name": name, "annotations": annotations}, "spec": spec});
    api.create(&PostParams::default(), &serde_json::from_value(object).unwrap())
        .await
        .unwrap();
    api
}

/// How many Secrets, ConfigMaps and Deployments an instance made in a namespace.
async fn made_by(client: &kube::Client, namespace: &str, instance: &str) -> usize {
    let selector = ListParams::default().labels(&format!("{INSTANCE_LABEL}={instance}"));
    Api::<Secret>::namespaced(client.clone(), namespace)
        .list(&selector)
        .await
        .unwrap()
        .items
        .len()
        + Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .list(&selector)
            .await
            .unwrap()
            .items
            .len()
        + Api::<Deployment>::namespaced(client.clone(), namespace)
            .list(&selector)
            .await
            .unwrap()
            .items
            .len()
}

/// Waits for a condition of the instance to have `status`; returns the condition's message.
async fn condition(api: &Api<TemplateInstance>, name: &str, type_: &str, status: &str) -> String {
    eventually(
        &format!("{name}: {type_}={status}"),
        Duration::from_secs(60),
        || async {
            let ti = api.get(name).await.ok()?;
            let c = ti
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == type_ && c.status == status)?;
            Some(c.message)
        },
    )
    .await
}

#[tokio::test]
async fn an_instance_brings_up_its_objects_becomes_ready_and_takes_them_away() {
    let Fixture { client, ns } = Fixture::start("ti-ready").await;
    admin_in(&client, &ns.name).await;
    let mut running = controller(&ns.name).await;
    let (user, groups) = ADMIN;
    let api = create_instance(
        &client,
        &ns.name,
        "web",
        json!({"template": inline_template(), "parameters": {"REPLICAS": "3"}, "requester": requester(user, groups)}),
    )
    .await;
    condition(&api, "web", READY, "True").await;
    let ti = api.get("web").await.unwrap();
    let status = ti.status.unwrap();
    let made: Vec<String> = status
        .objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o.ref_.kind.as_deref().unwrap(),
                o.ref_.name.as_deref().unwrap()
            )
        })
        .collect();
    assert_eq!(made, ["Secret/web-db", "ConfigMap/web-config", "Deployment/web"]);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == INSTANTIATE_FAILURE && c.status == "False")
    );

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let deployment = deployments.get("web").await.unwrap();
    assert_eq!(
        deployment.spec.as_ref().unwrap().replicas,
        Some(3),
        "the inline parameter won over the default"
    );
    assert_eq!(deployment.status.unwrap().available_replicas, Some(3));
    let labels = deployment.metadata.labels.unwrap();
    assert_eq!(labels[INSTANCE_LABEL], "web");
    assert_eq!(labels["app"], "web");
    let owner = &deployment.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("TemplateInstance", "web")
    );
    let secret = Api::<Secret>::namespaced(client.clone(), &ns.name)
        .get("web-db")
        .await
        .unwrap();
    let password = &secret.data.unwrap()["password"].0;
    assert_eq!(password.len(), 24);

    // Deleting the instance deletes what it made (garbage collection through owner references).
    api.delete("web", &DeleteParams::foreground()).await.unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    eventually("the objects to be gone", Duration::from_secs(60), || async {
        let selector = ListParams::default().labels(&format!("{INSTANCE_LABEL}=web"));
        let left = deployments.list(&selector).await.ok()?.items.len()
            + configmaps.list(&selector).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    running.stop().await;
    ns.delete().await;
}

#[tokio::test]
async fn a_requester_without_rights_gets_instantiate_failure_and_nothing_is_created() {
    let Fixture { client, ns } = Fixture::start("ti-forbidden").await;
    let mut running = controller(&ns.name).await;
    let api = create_instance(
        &client,
        &ns.name,
        "sneaky",
        json!({"template": inline_template(), "requester": requester("bob", &["system:authenticated"])}),
    )
    .await;
    let message = condition(&api, "sneaky", INSTANTIATE_FAILURE, "True").await;
    // The API server's own words: which object, which user, which permission.
    assert!(message.contains("Secret/web-db"), "{message}");
    assert!(message.contains("User \"bob\" cannot"), "{message}");
    assert!(message.contains("secrets"), "{message}");
    let ti = api.get("sneaky").await.unwrap();
    assert!(ti.status.unwrap().objects.is_empty());
    // Nothing at all was created: not even the objects bob would have been allowed to make.
    assert_eq!(made_by(&client, &ns.name, "sneaky").await, 0);
    running.stop().await;
    ns.delete().await;
}

#[tokio::test]
async fn a_stored_template_with_parameters_from_a_secret() {
    let Fixture { client, ns } = Fixture::start("ti-stored").await;
    admin_in(&client, &ns.name).await;
    let mut running = controller(&ns.name).await;
    let mut template = inline_template();
    template["apiVersion"] = "slipway.dev/v1alpha1".into();
    template["kind"] = "Template".into();
    template["metadata"] = json!({"name": "web-app"});
    dynamic_api(&client, "Template", &ns.name)
        .create(&PostParams::default(), &serde_json::from_value(template).unwrap())
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "web-params"},
        "stringData": {"NAME": "shop", "REPLICAS": "1", "UNRELATED": "ignored"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let (user, groups) = ADMIN;
    let api = create_instance(
        &client,
        &ns.name,
        "shop",
        json!({"templateRef": {"name": "web-app"}, "secret": {"name": "web-params"}, "requester": requester(user, groups)}),
    )
    .await;
    condition(&api, "shop", READY, "True").await;
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .get("shop")
        .await
        .unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(1));
    running.stop().await;
    ns.delete().await;
}

/// `slip new-app TEMPLATE` refers to a Template in the catalog namespace (`openshift`): the
/// operator reads it with the requester's rights, never its own. Refused while the requester may
/// not read it there (the catalog's Templates stay out of reach and nothing is made); once the
/// catalog grants read, the same reference brings the app up.
#[tokio::test]
async fn a_template_in_another_namespace_is_read_as_the_requester() {
    let Fixture { client, ns } = Fixture::start("ti-catalog").await;
    let catalog = TestNamespace::new(&client, "ti-catalog-shared").await;
    admin_in(&client, &ns.name).await;
    let mut template = inline_template();
    template["apiVersion"] = "slipway.dev/v1alpha1".into();
    template["kind"] = "Template".into();
    template["metadata"] = json!({"name": "web-app"});
    dynamic_api(&client, "Template", &catalog.name)
        .create(&PostParams::default(), &serde_json::from_value(template).unwrap())
        .await
        .unwrap();
    let mut running = controller(&ns.name).await;
    let (user, groups) = ADMIN;
    let reference = json!({"name": "web-app", "namespace": catalog.name});
    let refused = create_instance(
        &client,
        &ns.name,
        "refused",
        json!({"templateRef": reference, "parameters": {"NAME": "refused"}, "requester": requester(user, groups)}),
    )
    .await;
    let message = condition(&refused, "refused", INSTANTIATE_FAILURE, "True").await;
    assert!(
        message.contains("reading template web-app") && message.contains("forbidden"),
        "{message}"
    );
    assert_eq!(made_by(&client, &ns.name, "refused").await, 0);

    // The catalog lets every authenticated user read its Templates, as OpenShift's does.
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(json!({
        "metadata": {"name": "template-reader"},
        "rules": [{"apiGroups": ["slipway.dev"], "resources": ["templates"], "verbs": ["get", "list"]}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(client.clone(), &catalog.name)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "authenticated-read"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "template-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(client.clone(), &catalog.name)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let granted = create_instance(
        &client,
        &ns.name,
        "granted",
        json!({"templateRef": reference, "parameters": {"NAME": "granted"}, "requester": requester(user, groups)}),
    )
    .await;
    condition(&granted, "granted", READY, "True").await;
    assert!(
        Api::<Deployment>::namespaced(client.clone(), &ns.name)
            .get_opt("granted")
            .await
            .unwrap()
            .is_some(),
        "the catalog template's Deployment was made in the project"
    );
    // Nothing was made in the catalog.
    assert_eq!(made_by(&client, &catalog.name, "granted").await, 0);
    running.stop().await;
    catalog.delete().await;
    ns.delete().await;
}

#[tokio::test]
async fn what_cannot_be_instantiated_says_why() {
    let Fixture { client, ns } = Fixture::start("ti-broken").await;
    admin_in(&client, &ns.name).await;
    let mut running = controller(&ns.name).await;
    let (user, groups) = ADMIN;
    let missing_template = create_instance(
        &client,
        &ns.name,
        "missing",
        json!({"templateRef": {"name": "nope"}, "requester": requester(user, groups)}),
    )
    .await;
    let message = condition(&missing_template, "missing", INSTANTIATE_FAILURE, "True").await;
    assert_eq!(
        message,
        format!("template nope not found in namespace {}", ns.name)
    );

    let mut template = inline_template();
    template["parameters"][0] = json!({"name": "NAME", "required": true});
    let required = create_instance(
        &client,
        &ns.name,
        "required",
        json!({"template": template, "requester": requester(user, groups)}),
    )
    .await;
    let message = condition(&required, "required", INSTANTIATE_FAILURE, "True").await;
    assert!(message.contains("NAME"), "{message}");

    let no_requester = create_instance(
        &client,
        &ns.name,
        "anonymous",
        json!({"template": inline_template()}),
    )
    .await;
    let message = condition(&no_requester, "anonymous", INSTANTIATE_FAILURE, "True").await;
    assert!(message.contains("no requester"), "{message}");
    // None of them made anything.
    let all = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(all.items.is_empty());
    running.stop().await;
    ns.delete().await;
}

#[tokio::test]
async fn alice_cannot_reach_into_a_namespace_she_does_not_own() {
    ensure_crds();
    let client = client().await;
    let mine = TestNamespace::new(&client, "ti-alice").await;
    let theirs = TestNamespace::new(&client, "ti-bob").await;
    // alice administers her namespace, and nothing else.
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "alice-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(client.clone(), &mine.name)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let mut running = controller(&mine.name).await;
    // A namespace chosen by a parameter is kept by processing, so this aims at bob's namespace.
    let template = json!({
        "parameters": [{"name": "TARGET", "required": true}],
        "objects": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine"}, "data": {"a": "b"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "planted", "namespace": "${TARGET}"}, "data": {"a": "b"}}
        ]
    });
    let api = create_instance(
        &client,
        &mine.name,
        "reach",
        json!({"template": template, "parameters": {"TARGET": theirs.name}, "requester": requester("alice", &["system:authenticated"])}),
    )
    .await;
    let message = condition(&api, "reach", INSTANTIATE_FAILURE, "True").await;
    assert!(message.contains("ConfigMap/planted"), "{message}");
    assert!(
        message.contains("User \"alice\" cannot") && message.contains(&theirs.name),
        "{message}"
    );
    // Nothing was made, in either namespace.
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), &theirs.name)
            .get_opt("planted")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), &mine.name)
            .get_opt("mine")
            .await
            .unwrap()
            .is_none()
    );
    running.stop().await;
    mine.delete().await;
    theirs.delete().await;
}

/// A template that makes its requester cluster-admin: what an attacker would instantiate.
fn escalation(user: &str) -> Value {
    json!({
        "objects": [{
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{user}-is-cluster-admin")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
        }]
    })
}

/// The InstantiateFailure condition's reason and message, once it is True.
async fn failure(api: &Api<TemplateInstance>, name: &str) -> (String, String) {
    condition(api, name, INSTANTIATE_FAILURE, "True").await;
    let ti = api.get(name).await.unwrap();
    assert!(ti.status.as_ref().unwrap().objects.is_empty());
    let c = ti
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == INSTANTIATE_FAILURE)
        .unwrap();
    (c.reason, c.message)
}

async fn cluster_role_binding_exists(client: &kube::Client, name: &str) -> bool {
    Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
        .get_opt(name)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_forged_requester_is_not_acted_on_without_admissions_proof() {
    let Fixture { client, ns } = Fixture::start("ti-forged").await;
    let mut running = controller(&ns.name).await;
    // No admission configuration is in the way here: the attacker writes the requester itself.
    let user = unique_name("mallory");
    let forged = requester(&user, &["system:masters"]);
    let spec = json!({"template": escalation(&user), "requester": forged});
    let api = create_annotated(&client, &ns.name, "no-proof", spec.clone(), json!({})).await;
    let (reason, message) = failure(&api, "no-proof").await;
    assert_eq!(reason, "RequesterUnverified");
    assert!(message.contains("carries no proof"), "{message}");

    // A proof made with a key the operator does not hold, or for another instance.
    let wrong_key = proof(
        b"not-the-operators-key-0123456789abcdef",
        &ns.name,
        "wrong-key",
        &forged,
    );
    create_annotated(
        &client,
        &ns.name,
        "wrong-key",
        spec.clone(),
        json!({PROOF_ANNOTATION: wrong_key}),
    )
    .await;
    let copied = proof(TEST_KEY, &ns.name, "elsewhere", &forged);
    create_annotated(
        &client,
        &ns.name,
        "copied",
        spec,
        json!({PROOF_ANNOTATION: copied}),
    )
    .await;
    for name in ["wrong-key", "copied"] {
        let (reason, message) = failure(&api, name).await;
        assert_eq!(reason, "RequesterUnverified", "{name}");
        assert!(message.contains("does not match its proof"), "{name}: {message}");
    }
    assert!(!cluster_role_binding_exists(&client, &format!("{user}-is-cluster-admin")).await);
    running.stop().await;
    ns.delete().await;
}

#[tokio::test]
async fn a_stamped_requester_in_system_masters_is_refused() {
    let Fixture { client, ns } = Fixture::start("ti-masters").await;
    let mut running = controller(&ns.name).await;
    let user = unique_name("root");
    // Even a valid stamp (a cluster admin's own instance) is not acted on with these groups.
    for (name, groups) in [
        ("masters", vec!["system:masters", "system:authenticated"]),
        ("nodes", vec!["system:nodes"]),
    ] {
        let spec = json!({"template": escalation(&user), "requester": requester(&user, &groups)});
        let api = create_instance(&client, &ns.name, name, spec).await;
        let (reason, message) = failure(&api, name).await;
        assert_eq!(reason, "RequesterRefused", "{name}");
        assert!(message.contains(groups[0]), "{name}: {message}");
    }
    let spec = json!({"template": escalation(&user), "requester": requester("system:admin", &[])});
    let api = create_instance(&client, &ns.name, "system-user", spec).await;
    let (reason, message) = failure(&api, "system-user").await;
    assert_eq!(reason, "RequesterRefused");
    assert!(message.contains("system:admin"), "{message}");
    assert!(!cluster_role_binding_exists(&client, &format!("{user}-is-cluster-admin")).await);
    running.stop().await;
    ns.delete().await;
}

#[tokio::test]
async fn a_template_that_would_make_gigabytes_is_refused_with_a_clear_error() {
    let Fixture { client, ns } = Fixture::start("ti-huge").await;
    admin_in(&client, &ns.name).await;
    let mut running = controller(&ns.name).await;
    // 150,000 references to a 100 kB value: 15 GB, from an instance of about 1 MB.
    let references = "${BIG}".repeat(1000);
    let data: serde_json::Map<String, Value> = (0..150)
        .map(|i| (format!("k{i}"), Value::String(references.clone())))
        .collect();
    let template = json!({
        "parameters": [{"name": "BIG", "required": true}],
        "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": data}]
    });
    let (user, groups) = ADMIN;
    let api = create_instance(
        &client,
        &ns.name,
        "huge",
        json!({"template": template, "parameters": {"BIG": "x".repeat(100_000)}, "requester": requester(user, groups)}),
    )
    .await;
    let (reason, message) = failure(&api, "huge").await;
    assert_eq!(reason, "ProcessingFailed");
    assert!(message.contains("more than 4194304 bytes (4 MiB)"), "{message}");
    assert_eq!(made_by(&client, &ns.name, "huge").await, 0);
    running.stop().await;
    ns.delete().await;
}
