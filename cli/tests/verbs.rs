//! `slip policy`, `slip secrets`, `slip expose` and `slip set` against the dev cluster, run as
//! alice, the project's admin (the `admin` ClusterRole in the namespace, and a Role for Slipway's
//! kinds), and as bob, who has no rights there; both through impersonating kubeconfigs. Every
//! effect is read back from the API server; every refusal exits non-zero and leaves the objects
//! as they were (same resourceVersion).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use slipway_testkit::*;

struct Env {
    client: Client,
    ns: TestNamespace,
    _dir: tempfile::TempDir,
    alice: PathBuf,
    bob: PathBuf,
}

impl Env {
    async fn start(prefix: &str) -> Self {
        ensure_crds();
        let client = client().await;
        let ns = TestNamespace::new(&client, prefix).await;
        let dir = tempfile::tempdir().unwrap();
        let alice = kubeconfig_as(dir.path(), "alice");
        let bob = kubeconfig_as(dir.path(), "bob");
        let env = Self {
            client,
            ns,
            _dir: dir,
            alice,
            bob,
        };
        // alice administers the project: Kubernetes' admin role, and Slipway's kinds.
        env.create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "slipway-kinds"},
            "rules": [{"apiGroups": ["slipway.dev"], "resources": ["*"], "verbs": ["*"]}]}),
        )
        .await;
        for (name, kind, role) in [
            ("alice-admin", "ClusterRole", "admin"),
            ("alice-slipway", "Role", "slipway-kinds"),
        ] {
            env.create(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]}),
            )
            .await;
        }
        env
    }

    fn n(&self) -> &str {
        &self.ns.name
    }

    fn api(&self, kind: &str) -> Api<DynamicObject> {
        use kube::core::ApiResource;
        let resource = match kind {
            "DeploymentConfig" | "BuildConfig" | "ImageStream" => {
                return dynamic_api(&self.client, kind, self.n());
            }
            "Deployment" => ApiResource::erase::<Deployment>(&()),
            "ServiceAccount" => ApiResource::erase::<ServiceAccount>(&()),
            "Service" => ApiResource::erase::<Service>(&()),
            "Secret" => ApiResource::erase::<Secret>(&()),
            "Role" => ApiResource::erase::<Role>(&()),
            "RoleBinding" => ApiResource::erase::<RoleBinding>(&()),
            other => panic!("a kind this test does not know: {other}"),
        };
        Api::namespaced_with(self.client.clone(), self.n(), &resource)
    }

    async fn create(&self, object: Value) {
        let kind = object["kind"].as_str().unwrap().to_string();
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        self.api(&kind)
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("creating {kind}: {e}"));
    }

    async fn slip(&self, who: &Path, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.n()];
        all.extend(args);
        run_program(env!("CARGO_BIN_EXE_slip"), Some(who), &all).await
    }

    /// As alice; asserts success.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.slip(&self.alice.clone(), args).await;
        assert!(out.status.success(), "slip {args:?}: {}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// As `who`; asserts a non-zero exit whose message holds `needle`, and no panic.
    async fn refused(&self, who: &Path, args: &[&str], needle: &str) {
        let out = self.slip(who, args).await;
        let text = output_text(&out);
        assert!(!out.status.success(), "slip {args:?} was accepted: {text}");
        assert!(
            text.contains(needle),
            "slip {args:?}: expected {needle:?} in: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }

    async fn get(&self, kind: &str, name: &str) -> Value {
        serde_json::to_value(self.api(kind).get(name).await.unwrap()).unwrap()
    }

    async fn stop(self) {
        self.ns.delete().await;
    }
}

fn bindings(client: &Client, ns: &str) -> Api<RoleBinding> {
    Api::namespaced(client.clone(), ns)
}

fn subjects(binding: &RoleBinding) -> Vec<String> {
    binding
        .subjects
        .iter()
        .flatten()
        .map(|s| format!("{}:{}", s.kind, s.name))
        .collect()
}

#[tokio::test]
async fn policy_grants_and_takes_roles_and_who_can_reads_rbac() {
    let env = Env::start("slip-policy").await;
    let (n, alice, bob) = (env.n().to_string(), env.alice.clone(), env.bob.clone());
    let api = bindings(&env.client, &n);

    let out = env
        .ok(&["policy", "add-role-to-user", "edit", "bob", "carol"])
        .await;
    assert_eq!(
        out,
        "clusterrole.rbac.authorization.k8s.io/edit added: \"bob\", \"carol\"\n"
    );
    let edit = api.get("edit").await.unwrap();
    assert_eq!(edit.role_ref.name, "edit");
    assert_eq!(subjects(&edit), ["User:bob", "User:carol"]);
    // Again: idempotent, one binding, each subject once.
    env.ok(&["policy", "add-role-to-user", "edit", "bob"]).await;
    assert_eq!(
        subjects(&api.get("edit").await.unwrap()),
        ["User:bob", "User:carol"]
    );
    env.ok(&["policy", "add-role-to-group", "view", "devs"]).await;
    assert_eq!(subjects(&api.get("view").await.unwrap()), ["Group:devs"]);
    // A Role of the project, and a ServiceAccount as a user.
    env.create(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
    )
    .await;
    let sa_user = format!("system:serviceaccount:{n}:robot");
    env.ok(&[
        "policy",
        "add-role-to-user",
        "reader",
        &sa_user,
        "--role-namespace",
        &n,
    ])
    .await;
    let reader = api.get("reader").await.unwrap();
    assert_eq!(reader.role_ref.kind, "Role");
    assert_eq!(subjects(&reader), ["ServiceAccount:robot"]);

    // who-can reads the bindings (as the cluster's admin: alice may not list ClusterRoleBindings).
    let out = run_program(
        env!("CARGO_BIN_EXE_slip"),
        None,
        &["-n", &n, "policy", "who-can", "get", "pods", "-o", "json"],
    )
    .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let users: Vec<&str> = answer["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    for user in ["alice", "bob", "carol"] {
        assert!(users.contains(&user), "{user} may get pods: {answer}");
    }
    assert!(
        answer["groups"].as_array().unwrap().contains(&json!("devs")),
        "{answer}"
    );
    assert!(
        !users.contains(&sa_user.as_str()),
        "reader grants configmaps only: {answer}"
    );
    let out = run_program(
        env!("CARGO_BIN_EXE_slip"),
        None,
        &["-n", &n, "policy", "who-can", "get", "configmaps"],
    )
    .await;
    assert!(output_text(&out).contains(&sa_user), "{}", output_text(&out));
    env.refused(
        &bob,
        &["policy", "who-can", "get", "pods"],
        "reading ClusterRoles",
    )
    .await;

    // Removing: the subject goes; a binding left empty is deleted; removing again is no error.
    env.ok(&["policy", "remove-role-from-user", "edit", "carol"])
        .await;
    assert_eq!(subjects(&api.get("edit").await.unwrap()), ["User:bob"]);
    env.ok(&["policy", "remove-role-from-user", "edit", "bob"]).await;
    assert!(api.get_opt("edit").await.unwrap().is_none());
    env.ok(&["policy", "remove-role-from-user", "edit", "bob"]).await;
    env.ok(&["policy", "remove-role-from-group", "view", "devs"])
        .await;
    assert!(api.get_opt("view").await.unwrap().is_none());

    // Dry runs write nothing; -o prints the binding.
    let out = env
        .ok(&[
            "policy",
            "add-role-to-user",
            "view",
            "dave",
            "--dry-run=server",
            "-o",
            "json",
        ])
        .await;
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["kind"], "RoleBinding");
    assert_eq!(printed["subjects"][0]["name"], "dave");
    let out = env
        .ok(&["policy", "add-role-to-user", "view", "dave", "--dry-run"])
        .await;
    assert!(out.ends_with("(dry run)\n"), "{out}");
    assert!(api.get_opt("view").await.unwrap().is_none());

    // Bad input and no rights: precise errors, nothing written.
    let before = api.list(&Default::default()).await.unwrap().items.len();
    env.refused(
        &alice,
        &[
            "policy",
            "add-role-to-user",
            "no-such-role",
            "bob",
            "--role-namespace",
            &n,
        ],
        "role no-such-role not found",
    )
    .await;
    env.refused(
        &alice,
        &[
            "policy",
            "add-role-to-user",
            "edit",
            "bob",
            "--role-namespace",
            "elsewhere",
        ],
        "can only refer to a Role of",
    )
    .await;
    env.refused(
        &alice,
        &["policy", "add-role-to-user", "bad/role", "bob"],
        "is not a valid role name",
    )
    .await;
    env.refused(&alice, &["policy", "add-role-to-user", "edit"], "NAMES")
        .await;
    env.refused(&bob, &["policy", "add-role-to-user", "edit", "bob"], "forbidden")
        .await;
    let out = run_program(
        env!("CARGO_BIN_EXE_slip"),
        None,
        &["-n", &n, "policy", "add-role-to-user", "no-such-clusterrole", "x"],
    )
    .await;
    assert!(
        !out.status.success() && output_text(&out).contains("clusterrole no-such-clusterrole not found"),
        "{}",
        output_text(&out)
    );
    assert_eq!(api.list(&Default::default()).await.unwrap().items.len(), before);
    env.stop().await;
}

#[tokio::test]
async fn secrets_link_and_unlink_service_accounts() {
    let env = Env::start("slip-secrets").await;
    let bob = env.bob.clone();
    for name in ["pull-me", "mount-me"] {
        env.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}})).await;
    }
    env.create(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}))
        .await;
    let names = |sa: &Value, field: &str| -> Vec<String> {
        sa[field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };

    env.ok(&["secrets", "link", "robot", "pull-me", "--for", "pull,mount"])
        .await;
    env.ok(&["secrets", "link", "sa/robot", "secret/mount-me"]).await;
    let sa = env.get("ServiceAccount", "robot").await;
    assert_eq!(names(&sa, "imagePullSecrets"), ["pull-me"]);
    assert_eq!(names(&sa, "secrets"), ["pull-me", "mount-me"]);
    env.ok(&["secrets", "link", "robot", "pull-me", "--for", "pull"])
        .await;
    assert_eq!(
        names(&env.get("ServiceAccount", "robot").await, "imagePullSecrets"),
        ["pull-me"],
        "idempotent"
    );
    let out = env
        .ok(&["secrets", "unlink", "robot", "pull-me", "-o", "name"])
        .await;
    assert_eq!(out, "serviceaccount/robot\n");
    let sa = env.get("ServiceAccount", "robot").await;
    assert!(names(&sa, "imagePullSecrets").is_empty());
    assert_eq!(names(&sa, "secrets"), ["mount-me"]);

    let version = |sa: &Value| sa["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let before = version(&env.get("ServiceAccount", "robot").await);
    env.ok(&["secrets", "link", "robot", "pull-me", "--dry-run=server"])
        .await;
    env.refused(
        &env.alice.clone(),
        &["secrets", "link", "robot", "pull-me", "missing"],
        "secret missing not found",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["secrets", "link", "nobody", "pull-me"],
        "serviceaccount nobody not found",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["secrets", "link", "robot", "pull-me", "--for", "push"],
        "push",
    )
    .await;
    env.refused(
        &env.alice.clone(),
        &["secrets", "link", "pod/robot", "pull-me"],
        "expected a ServiceAccount",
    )
    .await;
    env.refused(&bob, &["secrets", "link", "robot", "pull-me"], "forbidden")
        .await;
    assert_eq!(
        version(&env.get("ServiceAccount", "robot").await),
        before,
        "nothing was written"
    );
    env.stop().await;
}

fn web_deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1", "ports": [{"containerPort": 8080}]},
                                        {"name": "side", "image": "registry.invalid/side:1"}]}}}})
}

fn app_dc() -> Value {
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig", "metadata": {"name": "app"},
        "spec": {"replicas": 0, "selector": {"app": "app"},
            "template": {"metadata": {"labels": {"app": "app", "deploymentconfig": "app"}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}}})
}

fn app_bc() -> Value {
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": "app"},
        "spec": {"source": {"type": "Git", "git": {"uri": "https://git.example.com/app.git"}},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}}}})
}

#[tokio::test]
async fn expose_makes_ingresses_and_services() {
    let env = Env::start("slip-expose").await;
    let (n, alice, bob) = (env.n().to_string(), env.alice.clone(), env.bob.clone());
    env.create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front", "labels": {"app": "front"}},
        "spec": {"selector": {"app": "front"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "admin", "port": 9000}]}})).await;
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &n);
    let services: Api<Service> = Api::namespaced(env.client.clone(), &n);

    let out = env
        .ok(&[
            "expose",
            "svc/front",
            "--hostname",
            "front.example.com",
            "--path",
            "/app",
            "--tls-secret",
            "front-tls",
        ])
        .await;
    assert_eq!(out, "ingress.networking.k8s.io/front exposed\n");
    let ingress = serde_json::to_value(ingresses.get("front").await.unwrap()).unwrap();
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "front.example.com");
    assert_eq!(rule["http"]["paths"][0]["path"], "/app");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"],
        json!({"name": "front", "port": {"number": 80}})
    );
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{"hosts": ["front.example.com"], "secretName": "front-tls"}])
    );
    assert_eq!(ingress["metadata"]["labels"]["app"], "front");
    env.ok(&["expose", "svc/front", "--name", "front-admin", "--port", "admin"])
        .await;
    let admin = serde_json::to_value(ingresses.get("front-admin").await.unwrap()).unwrap();
    assert_eq!(
        admin["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"],
        9000
    );
    assert!(admin["spec"]["rules"][0].get("host").is_none());

    // A Deployment: the Service first, selecting the pod template's labels.
    env.create(web_deployment()).await;
    env.ok(&["expose", "deployment/web"]).await;
    let web = serde_json::to_value(services.get("web").await.unwrap()).unwrap();
    assert_eq!(web["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(web["spec"]["ports"][0]["targetPort"], 8080);
    assert!(
        ingresses.get_opt("web").await.unwrap().is_none(),
        "no host, no path: a Service only"
    );
    // A DC with a host: the Service and the Ingress.
    env.create(app_dc()).await;
    let out = env
        .ok(&[
            "expose",
            "dc/app",
            "--port",
            "9000",
            "--hostname",
            "app.example.com",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(out, "service/app\ningress.networking.k8s.io/app\n");
    let app = serde_json::to_value(services.get("app").await.unwrap()).unwrap();
    assert_eq!(
        app["spec"]["selector"],
        json!({"app": "app", "deploymentconfig": "app"})
    );
    assert_eq!(
        ingresses.get("app").await.unwrap().spec.unwrap().rules.unwrap()[0]
            .host
            .as_deref(),
        Some("app.example.com")
    );

    // Dry runs and refusals write nothing.
    let out = env
        .ok(&[
            "expose",
            "svc/front",
            "--name",
            "dry",
            "--dry-run=server",
            "-o",
            "yaml",
        ])
        .await;
    assert!(
        out.contains("kind: Ingress") && out.contains("name: dry"),
        "{out}"
    );
    assert!(ingresses.get_opt("dry").await.unwrap().is_none());
    env.refused(
        &alice,
        &["expose", "svc/missing"],
        "svc/missing not found in namespace",
    )
    .await;
    env.refused(&alice, &["expose", "bc/app"], "unknown kind \"bc\"")
        .await;
    env.refused(
        &alice,
        &["expose", "svc/front", "--name", "x", "--port", "8443"],
        "service front has no port 8443",
    )
    .await;
    env.refused(
        &alice,
        &["expose", "svc/front", "--name", "x", "--path", "app"],
        "must start with /",
    )
    .await;
    env.refused(
        &alice,
        &["expose", "dc/app", "--name", "noport"],
        "declares no container port",
    )
    .await;
    // The Service name is taken: the Ingress is checked first too, so neither is made.
    env.refused(
        &alice,
        &["expose", "deployment/web", "--hostname", "w.example.com"],
        "already exists",
    )
    .await;
    env.refused(&bob, &["expose", "svc/front", "--name", "bobs"], "forbidden")
        .await;
    let names: Vec<String> = ingresses
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i.name_any())
        .collect();
    assert_eq!(names, ["app", "front", "front-admin"]);
    assert_eq!(services.list(&Default::default()).await.unwrap().items.len(), 3);
    env.stop().await;
}

/// The Gateway API's kinds in `ns` (installed by [`ensure_gateway_api`]).
fn gateway_api(client: &Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = kube::core::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind);
    Api::namespaced_with(
        client.clone(),
        ns,
        &kube::core::ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// `slip expose --gateway`: with the Gateway API's CRDs in the cluster (no controller), an
/// HTTPRoute attached to the Gateway, read back from the API server; a Gateway of the project
/// that does not exist, a certificate on a route and an IngressClass beside a Gateway are refused
/// and write nothing; a shared Gateway the user may not read is attached to as named.
#[tokio::test]
async fn expose_through_a_gateway_makes_an_http_route() {
    ensure_gateway_api();
    let env = Env::start("slip-expose-gw").await;
    let (n, alice, bob) = (env.n().to_string(), env.alice.clone(), env.bob.clone());
    // What the chart aggregates into admin and edit when the cluster has the Gateway API.
    env.create(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "gateway-routes"},
        "rules": [{"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": ["*"]},
                  {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways"], "verbs": ["get", "list", "watch"]}]}))
        .await;
    env.create(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice-gateway-routes"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gateway-routes"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]}),
    )
    .await;
    env.create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front", "labels": {"app": "front"}},
        "spec": {"selector": {"app": "front"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "admin", "port": 9000}]}})).await;
    let routes = gateway_api(&env.client, &n, "HTTPRoute", "httproutes");

    env.refused(
        &alice,
        &["expose", "svc/front", "--gateway", "gw"],
        &format!("gateway gw not found in namespace {n}"),
    )
    .await;
    let gateway = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {"gatewayClassName": "example", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}});
    gateway_api(&env.client, &n, "Gateway", "gateways")
        .create(&PostParams::default(), &serde_json::from_value(gateway).unwrap())
        .await
        .unwrap();

    let out = env
        .ok(&[
            "expose",
            "svc/front",
            "--gateway",
            "gw",
            "--hostname",
            "front.example.com",
            "--path",
            "/app",
        ])
        .await;
    assert_eq!(out, "httproute.gateway.networking.k8s.io/front exposed\n");
    let route = serde_json::to_value(routes.get("front").await.unwrap()).unwrap();
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "gw");
    assert_eq!(route["spec"]["hostnames"], json!(["front.example.com"]));
    assert_eq!(
        route["spec"]["rules"][0]["matches"][0]["path"],
        json!({"type": "PathPrefix", "value": "/app"})
    );
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["name"], "front");
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["port"], 80);
    assert_eq!(route["metadata"]["labels"]["app"], "front");

    // A Deployment: the Service first, then the route to it.
    env.create(web_deployment()).await;
    let out = env
        .ok(&["expose", "deployment/web", "--gateway", "gw", "-o", "name"])
        .await;
    assert_eq!(out, "service/web\nhttproute.gateway.networking.k8s.io/web\n");
    let web = serde_json::to_value(routes.get("web").await.unwrap()).unwrap();
    assert_eq!(web["spec"]["rules"][0]["backendRefs"][0]["port"], 8080);

    // A shared Gateway in a namespace alice may not read: attached as named, left to its
    // controller (the route's status) to accept or not.
    env.ok(&[
        "expose",
        "svc/front",
        "--name",
        "shared",
        "--gateway",
        "infra/edge",
    ])
    .await;
    let shared = serde_json::to_value(routes.get("shared").await.unwrap()).unwrap();
    assert_eq!(
        shared["spec"]["parentRefs"][0],
        json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge", "namespace": "infra"})
    );

    // Dry runs and refusals write nothing.
    let out = env
        .ok(&[
            "expose",
            "svc/front",
            "--name",
            "dry",
            "--gateway",
            "gw",
            "--dry-run=server",
            "-o",
            "yaml",
        ])
        .await;
    assert!(
        out.contains("kind: HTTPRoute") && out.contains("name: dry"),
        "{out}"
    );
    env.refused(
        &alice,
        &[
            "expose",
            "svc/front",
            "--name",
            "x",
            "--gateway",
            "gw",
            "--tls-secret",
            "t",
        ],
        "Gateway's HTTPS listener",
    )
    .await;
    env.refused(
        &alice,
        &[
            "expose",
            "svc/front",
            "--name",
            "x",
            "--gateway",
            "gw",
            "--ingress-class",
            "nginx",
        ],
        "cannot be used with",
    )
    .await;
    env.refused(
        &alice,
        &["expose", "svc/front", "--name", "x", "--gateway", "a/b/c"],
        "--gateway \"a/b/c\"",
    )
    .await;
    env.refused(
        &bob,
        &["expose", "svc/front", "--name", "bobs", "--gateway", "gw"],
        "forbidden",
    )
    .await;
    let names: Vec<String> = routes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.name_any())
        .collect();
    assert_eq!(names, ["front", "shared", "web"]);
    env.stop().await;
}

/// A project with a Deployment, a DC, a BC, an ImageStream and a ServiceAccount to set things on.
async fn set_project(prefix: &str) -> Env {
    let env = Env::start(prefix).await;
    env.create(web_deployment()).await;
    env.create(app_dc()).await;
    env.create(app_bc()).await;
    env.create(json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream", "metadata": {"name": "app"}, "spec": {}}))
        .await;
    env.create(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}))
        .await;
    env
}

fn container(object: &Value, i: usize) -> Value {
    object["spec"]["template"]["spec"]["containers"][i].clone()
}

#[tokio::test]
async fn set_env_image_resources_serviceaccount_and_probes() {
    let env = set_project("slip-set-a").await;
    // env: set, replace, remove, list; a bc's is its strategy's.
    env.ok(&["set", "env", "deployment/web", "A=1", "B=two words", "-c", "web"])
        .await;
    env.ok(&["set", "env", "deployment/web", "A-", "C=3"]).await;
    let web = env.get("Deployment", "web").await;
    assert_eq!(
        container(&web, 0)["env"],
        json!([{"name": "B", "value": "two words"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(container(&web, 1)["env"], json!([{"name": "C", "value": "3"}]));
    let listed = env
        .ok(&["set", "env", "deployment/web", "--list", "-c", "web"])
        .await;
    assert_eq!(listed, "# deployments/web, container web\nB=two words\nC=3\n");
    env.ok(&["set", "env", "dc/app", "MODE=prod"]).await;
    assert_eq!(
        container(&env.get("DeploymentConfig", "app").await, 0)["env"],
        json!([{"name": "MODE", "value": "prod"}])
    );
    env.ok(&["set", "env", "bc/app", "BUILD_FLAG=on"]).await;
    let bc = env.get("BuildConfig", "app").await;
    assert_eq!(
        bc["spec"]["strategy"]["dockerStrategy"]["env"],
        json!([{"name": "BUILD_FLAG", "value": "on"}])
    );

    // image, resources, serviceaccount.
    env.ok(&["set", "image", "deployment/web", "side=registry.invalid/side:2"])
        .await;
    assert_eq!(
        container(&env.get("Deployment", "web").await, 1)["image"],
        "registry.invalid/side:2"
    );
    env.ok(&[
        "set",
        "resources",
        "dc/app",
        "--limits",
        "cpu=200m,memory=256Mi",
        "--requests",
        "cpu=100m",
    ])
    .await;
    assert_eq!(
        container(&env.get("DeploymentConfig", "app").await, 0)["resources"],
        json!({"limits": {"cpu": "200m", "memory": "256Mi"}, "requests": {"cpu": "100m"}})
    );
    env.ok(&["set", "resources", "bc/app", "--limits", "memory=1Gi"])
        .await;
    assert_eq!(
        env.get("BuildConfig", "app").await["spec"]["resources"],
        json!({"limits": {"memory": "1Gi"}})
    );
    env.ok(&["set", "serviceaccount", "dc/app", "robot"]).await;
    assert_eq!(
        env.get("DeploymentConfig", "app").await["spec"]["template"]["spec"]["serviceAccountName"],
        "robot"
    );

    // probes.
    env.ok(&[
        "set",
        "probe",
        "deployment/web",
        "--readiness",
        "--get-url",
        "http://:8080/healthz",
        "-c",
        "web",
        "--period-seconds",
        "5",
    ])
    .await;
    env.ok(&[
        "set",
        "probe",
        "deployment/web",
        "--liveness",
        "-c",
        "side",
        "--",
        "cat",
        "/tmp/ok",
    ])
    .await;
    let web = env.get("Deployment", "web").await;
    assert_eq!(
        container(&web, 0)["readinessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": 8080, "scheme": "HTTP"})
    );
    assert_eq!(container(&web, 0)["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(
        container(&web, 1)["livenessProbe"]["exec"]["command"],
        json!(["cat", "/tmp/ok"])
    );
    env.ok(&["set", "probe", "dc/app", "--liveness", "--open-tcp", "8080"])
        .await;
    assert_eq!(
        container(&env.get("DeploymentConfig", "app").await, 0)["livenessProbe"]["tcpSocket"]["port"],
        8080
    );
    env.ok(&["set", "probe", "deployment/web", "--readiness", "--remove"])
        .await;
    assert!(
        container(&env.get("Deployment", "web").await, 0)
            .get("readinessProbe")
            .is_none()
    );

    env.stop().await;
}

#[tokio::test]
async fn set_hooks_secrets_image_lookup_and_volumes() {
    let env = set_project("slip-set-b").await;
    // build hook and image lookup.
    env.ok(&[
        "set",
        "build-hook",
        "bc/app",
        "--post-commit",
        "--script",
        "make test",
    ])
    .await;
    assert_eq!(
        env.get("BuildConfig", "app").await["spec"]["postCommit"],
        json!({"script": "make test"})
    );
    env.ok(&[
        "set",
        "build-hook",
        "bc/app",
        "--post-commit",
        "--command",
        "--",
        "./run-tests",
        "--quick",
    ])
    .await;
    assert_eq!(
        env.get("BuildConfig", "app").await["spec"]["postCommit"],
        json!({"command": ["./run-tests", "--quick"]})
    );
    env.ok(&["set", "build-hook", "bc/app", "--post-commit", "--remove"])
        .await;
    assert!(
        env.get("BuildConfig", "app").await["spec"]
            .get("postCommit")
            .is_none()
    );
    env.ok(&["set", "image-lookup", "app"]).await;
    assert_eq!(
        env.get("ImageStream", "app").await["spec"]["lookupPolicy"],
        json!({"local": true})
    );
    env.ok(&["set", "image-lookup", "is/app", "--enabled=false"])
        .await;
    assert_eq!(
        env.get("ImageStream", "app").await["spec"]["lookupPolicy"],
        json!({"local": false})
    );

    // build secrets: source, push, pull; then removed.
    env.ok(&["set", "build-secret", "bc/app", "git-creds", "--source"])
        .await;
    env.ok(&[
        "set",
        "build-secret",
        "bc/app",
        "registry-creds",
        "--push",
        "--pull",
    ])
    .await;
    let bc = env.get("BuildConfig", "app").await;
    assert_eq!(bc["spec"]["source"]["sourceSecret"], json!({"name": "git-creds"}));
    assert_eq!(
        bc["spec"]["output"]["pushSecret"],
        json!({"name": "registry-creds"})
    );
    assert_eq!(
        bc["spec"]["strategy"]["dockerStrategy"]["pullSecret"],
        json!({"name": "registry-creds"})
    );
    env.ok(&["set", "build-secret", "bc/app", "--pull", "--source", "--remove"])
        .await;
    let bc = env.get("BuildConfig", "app").await;
    assert!(bc["spec"]["source"].get("sourceSecret").is_none());
    assert!(
        bc["spec"]["strategy"]["dockerStrategy"]
            .get("pullSecret")
            .is_none()
    );
    assert_eq!(
        bc["spec"]["output"]["pushSecret"],
        json!({"name": "registry-creds"})
    );

    // deployment hooks of a dc (Rolling: pre and post).
    env.ok(&[
        "set",
        "deployment-hook",
        "dc/app",
        "--pre",
        "-c",
        "app",
        "--failure-policy",
        "retry",
        "-e",
        "MODE=migrate",
        "--",
        "./migrate.sh",
        "--fast",
    ])
    .await;
    let strategy = env.get("DeploymentConfig", "app").await["spec"]["strategy"].clone();
    assert_eq!(
        strategy["rollingParams"]["pre"],
        json!({"failurePolicy": "Retry", "execNewPod": {"command": ["./migrate.sh", "--fast"],
            "containerName": "app", "env": [{"name": "MODE", "value": "migrate"}]}})
    );
    env.ok(&["set", "deployment-hook", "dc/app", "--pre", "--remove"])
        .await;
    let strategy = env.get("DeploymentConfig", "app").await["spec"]["strategy"].clone();
    assert!(strategy["rollingParams"].get("pre").is_none(), "{strategy}");

    // volumes: added and mounted, listed, removed with their mounts.
    env.ok(&[
        "set",
        "volumes",
        "deployment/web",
        "--add",
        "--name",
        "data",
        "-t",
        "emptyDir",
        "-m",
        "/data",
        "-c",
        "web",
    ])
    .await;
    let web = env.get("Deployment", "web").await;
    assert_eq!(
        web["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "emptyDir": {}}])
    );
    assert_eq!(
        container(&web, 0)["volumeMounts"],
        json!([{"name": "data", "mountPath": "/data"}])
    );
    assert!(container(&web, 1).get("volumeMounts").is_none());
    env.ok(&[
        "set",
        "volume",
        "dc/app",
        "--add",
        "--name",
        "creds",
        "--type",
        "secret",
        "--secret-name",
        "db",
        "-m",
        "/etc/db",
        "--read-only",
    ])
    .await;
    let app = env.get("DeploymentConfig", "app").await;
    assert_eq!(
        app["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "db"
    );
    assert_eq!(
        container(&app, 0)["volumeMounts"],
        json!([{"name": "creds", "mountPath": "/etc/db", "readOnly": true}])
    );
    let listed = env.ok(&["set", "volumes", "deployment/web"]).await;
    assert_eq!(listed, "data (emptyDir)\n  mounted at /data in container web\n");
    env.ok(&["set", "volumes", "deployment/web", "--remove", "--name", "data"])
        .await;
    let web = env.get("Deployment", "web").await;
    assert!(
        web["spec"]["template"]["spec"]
            .get("volumes")
            .is_none_or(|v| v == &json!([])),
        "{web}"
    );
    assert!(
        container(&web, 0)["volumeMounts"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );

    env.stop().await;
}

#[tokio::test]
async fn set_dry_runs_and_bad_input_write_nothing() {
    let env = set_project("slip-set-c").await;
    let (alice, bob) = (env.alice.clone(), env.bob.clone());
    // What some refusals below are about: a volume mounted at /etc/db, a liveness probe on side.
    env.ok(&[
        "set",
        "volumes",
        "dc/app",
        "--add",
        "--name",
        "creds",
        "-t",
        "secret",
        "--secret-name",
        "db",
        "-m",
        "/etc/db",
    ])
    .await;
    env.ok(&[
        "set",
        "probe",
        "deployment/web",
        "--liveness",
        "-c",
        "side",
        "--",
        "cat",
        "/tmp/ok",
    ])
    .await;

    // -o prints the object written; dry runs write nothing.
    // The generation counts spec changes only (the Deployment controller writes its status).
    let version = |o: &Value| o["metadata"]["generation"].as_i64().unwrap();
    let before = version(&env.get("Deployment", "web").await);
    let out = env
        .ok(&[
            "set",
            "env",
            "deployment/web",
            "DRY=1",
            "--dry-run=server",
            "-o",
            "json",
        ])
        .await;
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert!(
        printed["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "DRY", "value": "1"}))
    );
    let out = env
        .ok(&["set", "env", "deployment/web", "DRY=1", "--dry-run"])
        .await;
    assert_eq!(out, "deployment.apps/web updated (dry run)\n");

    // Bad input for each verb, and a user without rights: precise, non-zero, nothing written.
    for (args, needle) in [
        (
            vec!["set", "env", "deployment/web", "NOEQUALS"],
            "malformed environment change \"NOEQUALS\"",
        ),
        (
            vec!["set", "env", "deployment/web", "1A=x"],
            "invalid environment variable name",
        ),
        (vec!["set", "env", "svc/web", "A=1"], "unknown kind \"svc\""),
        (
            vec!["set", "env", "deployment/web", "A=1", "-c", "nope"],
            "no container \"nope\"",
        ),
        (
            vec!["set", "env", "deployment/missing", "A=1"],
            "deployment/missing not found",
        ),
        (
            vec!["set", "image", "deployment/web", "nope=x:1"],
            "no container \"nope\"",
        ),
        (
            vec!["set", "image", "deployment/web", "web"],
            "expected CONTAINER=IMAGE",
        ),
        (vec!["set", "image", "bc/app", "app=x:1"], "unknown kind \"bc\""),
        (
            vec!["set", "resources", "deployment/web", "--limits", "memory=lots"],
            "\"lots\" is not a quantity for memory",
        ),
        (
            vec!["set", "resources", "deployment/web"],
            "give --limits and/or --requests",
        ),
        (
            vec![
                "set",
                "probe",
                "deployment/web",
                "--readiness",
                "--get-url",
                "http://localhost/healthz",
            ],
            "names no port",
        ),
        (
            vec!["set", "probe", "deployment/web", "--liveness", "--open-tcp", "0"],
            "port 0 is not between 1 and 65535",
        ),
        (
            vec!["set", "probe", "deployment/web", "--get-url", "http://:80/"],
            "give --readiness and/or --liveness",
        ),
        (
            vec![
                "set",
                "probe",
                "deployment/web",
                "--readiness",
                "-c",
                "side",
                "--period-seconds",
                "3",
            ],
            "there is no probe to change",
        ),
        (
            vec!["set", "serviceaccount", "deployment/web", "Not_A_Name"],
            "is not a valid name",
        ),
        (
            vec!["set", "build-hook", "bc/app", "--post-commit"],
            "give --script SCRIPT",
        ),
        (
            vec!["set", "build-hook", "dc/app", "--post-commit", "--script", "x"],
            "unknown kind \"dc\"",
        ),
        (
            vec!["set", "image-lookup", "missing"],
            "imagestream missing not found",
        ),
        (
            vec!["set", "build-secret", "bc/app", "x"],
            "give --source, --push and/or --pull",
        ),
        (
            vec!["set", "build-secret", "bc/app", "--source"],
            "give a SECRET, or --remove",
        ),
        (
            vec!["set", "build-secret", "deployment/web", "x", "--pull"],
            "unknown kind \"deployment\"",
        ),
        (
            vec!["set", "deployment-hook", "dc/app", "--mid", "--", "x"],
            "a Rolling strategy has no mid hook",
        ),
        (
            vec![
                "set",
                "deployment-hook",
                "dc/app",
                "--post",
                "-c",
                "nope",
                "--",
                "x",
            ],
            "no container \"nope\"",
        ),
        (
            vec!["set", "deployment-hook", "dc/app", "--pre"],
            "give the hook's command after --",
        ),
        (
            vec!["set", "deployment-hook", "dc/app", "--", "x"],
            "give --pre, --mid or --post",
        ),
        (
            vec!["set", "deployment-hook", "deployment/web", "--pre", "--", "x"],
            "unknown kind \"deployment\"",
        ),
        (
            vec![
                "set", "volumes", "dc/app", "--add", "--name", "x", "-t", "secret", "-m", "/x",
            ],
            "a secret volume needs --secret-name",
        ),
        (
            vec![
                "set", "volumes", "dc/app", "--add", "--name", "x", "-m", "relative",
            ],
            "must be an absolute path",
        ),
        (
            vec!["set", "volumes", "dc/app", "--add", "--name", "creds", "-m", "/y"],
            "there is a volume \"creds\" already",
        ),
        (
            vec![
                "set", "volumes", "dc/app", "--add", "--name", "other", "-m", "/etc/db",
            ],
            "mounts something at \"/etc/db\" already",
        ),
        (
            vec!["set", "volumes", "dc/app", "--remove", "--name", "nope"],
            "there is no volume \"nope\"",
        ),
        (vec!["set", "volumes", "dc/app", "--add", "-m", "/x"], "--name"),
        (
            vec!["set", "volumes", "bc/app", "--add", "--name", "x", "-m", "/x"],
            "unknown kind \"bc\"",
        ),
        (vec!["set", "image-lookup", "dc/app"], "works on ImageStreams"),
    ] {
        env.refused(&alice, &args, needle).await;
    }
    env.refused(&bob, &["set", "env", "deployment/web", "A=1"], "forbidden")
        .await;
    assert_eq!(
        version(&env.get("Deployment", "web").await),
        before,
        "no refused change was written"
    );
    env.stop().await;
}
