//! The chart's rights for the webhook suffice for git deliveries: the server, run as a user bound
//! to a copy of the chart's `slipway-webhook` ClusterRole (rendered by helm), fills its caches and
//! builds from a delivery; with `webhook.cacheSecrets=false` (get on Secrets, no list or watch) it
//! still builds, reading the Secret at each delivery. The webhook binary takes the flags the chart
//! gives it, in both certificate modes.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use slipway_testkit::*;
use support::*;
use tracing_subscriber::layer::SubscriberExt;

/// The rules of the chart's `slipway-webhook` ClusterRole with `values` set.
fn webhook_rules(values: &[&str]) -> serde_json::Value {
    render_chart("slipway-system", values)
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "slipway-webhook")
        .unwrap()["rules"]
        .clone()
}

/// The messages of the `tracing` events of this thread: the test's runtime (current-thread) runs
/// the webhook's tasks on it, so what the webhook logs is heard here.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<String>>>);

impl Heard {
    fn any(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|m| m.contains(needle))
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Heard {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().unwrap().push(message.0);
    }
}

async fn client_as(user: &str) -> kube::Client {
    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(user.to_string());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn the_charts_rights_suffice_for_git_deliveries() {
    let heard = Heard::default();
    let _listening = tracing::subscriber::set_default(tracing_subscriber::registry().with(heard.clone()));
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
            // Not allowed to list Secrets: once the webhook has been refused the list (and says
            // so), that cache stays empty and the Secret is read at delivery.
            eventually(
                "the webhook to be refused the list of Secrets",
                Duration::from_secs(30),
                || async { heard.any("not allowed to list and watch").then_some(()) },
            )
            .await;
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

/// Whether the webhook binary accepts `flags` (`--check-flags`), and what it said.
fn check_flags(flags: &[String]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway-webhook"))
        .args(flags)
        .arg("--check-flags")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The webhook binary accepts exactly the flags the chart gives it (`--check-flags` exits after
/// checking them), with its own certificates and with cert-manager's; and refuses a wrong one.
#[test]
fn the_webhook_takes_the_charts_flags() {
    for values in [vec![], vec!["webhook.certManager.enabled=true"]] {
        let objects = render_chart("slipway-system", &values);
        let webhook = objects
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "slipway-webhook")
            .unwrap();
        let flags: Vec<String> = webhook["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            flags.iter().any(|f| f == "--certificates=external"),
            !values.is_empty(),
            "{flags:?}"
        );
        let (ok, err) = check_flags(&flags);
        assert!(ok, "{values:?} {flags:?}: {err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway-webhook"))
        .args([
            "--service=ns/hook:443",
            "--certificates=cert-manager",
            "--check-flags",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("possible values: self-managed, external"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The registry flags are read and checked before anything is served: a matching key and
/// certificate and a long enough notification secret pass `--check-flags`; a key of another
/// certificate, a short secret, a token lifetime out of bounds and a key without its
/// certificate are refused, each saying why.
#[test]
fn the_registry_flags_are_checked_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let signer = |name: &str| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["signer".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (key_path, cert_path) = (
            dir.path().join(format!("{name}.key")),
            dir.path().join(format!("{name}.crt")),
        );
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        std::fs::write(&cert_path, cert.pem()).unwrap();
        (key_path.display().to_string(), cert_path.display().to_string())
    };
    let (key, cert) = signer("a");
    let (other_key, _) = signer("b");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a-notification-secret-of-32-char\n").unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "short\n").unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway-webhook"))
            .args(["--service=ns/hook:443", "--check-flags"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let secret = secret.display().to_string();
    let (ok, err) = run(&[
        "--registry-token-key",
        &key,
        "--registry-token-cert",
        &cert,
        "--registry-notify-secret",
        &secret,
        "--registry-host",
        "registry.example:5000",
    ]);
    assert!(ok, "{err}");
    let refusals = [
        (
            vec![
                "--registry-token-key",
                &other_key[..],
                "--registry-token-cert",
                &cert[..],
            ],
            "not the signing key's",
        ),
        (
            vec![
                "--registry-token-key",
                &key[..],
                "--registry-token-cert",
                &cert[..],
                "--registry-token-lifetime",
                "0s",
            ],
            "outside",
        ),
        (vec!["--registry-token-key", &key[..]], "--registry-token-cert"),
    ];
    for (flags, says) in refusals {
        let (ok, err) = run(&flags);
        assert!(!ok && err.contains(says), "{flags:?}: {err}");
    }
    let short = short.display().to_string();
    let (ok, err) = run(&["--registry-notify-secret", &short, "--registry-host", "r:5000"]);
    assert!(!ok && err.contains("at least 16 characters"), "{err}");
}

/// The rows of the README's rights table: (role, resources, verbs, why).
fn rights_table() -> Vec<[String; 4]> {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/slipway/README.md"
    ))
    .unwrap();
    let section = readme
        .split("## Rights of each component")
        .nth(1)
        .expect("the README has a section 'Rights of each component'");
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l.split('|').map(|c| c.trim().to_string()).collect();
            [
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
                cells[4].clone(),
            ]
        })
        .collect()
}

/// Every Role and ClusterRole the chart renders, with any values that add rights: no wildcard
/// verb, resource or API group, and `escalate`, `bind` or `impersonate` only where the README's
/// table names the role, the resource and the verb and gives a reason.
#[test]
fn the_chart_grants_no_wildcard_and_no_unexplained_escalation() {
    let table = rights_table();
    let explained = |role: &str, resource: &str, verb: &str| {
        table.iter().any(|[r, resources, verbs, why]| {
            r.contains(&format!("`{role}`"))
                && resources.contains(&format!("`{resource}`"))
                && verbs.contains(&format!("`{verb}`"))
                && why.len() > 20
        })
    };
    let mut failures = Vec::new();
    let mut roles = 0;
    for values in [
        vec![],
        vec!["webhook.cacheSecrets=true"],
        vec!["webhook.certManager.enabled=true"],
        vec![
            "registry.enabled=true",
            "ingress.enabled=true",
            "ingress.host=hooks.example.com",
        ],
    ] {
        for object in render_chart("slipway-system", &values) {
            if object["kind"] != "Role" && object["kind"] != "ClusterRole" {
                continue;
            }
            roles += 1;
            let role = object["metadata"]["name"].as_str().unwrap().to_string();
            for rule in object["rules"].as_array().into_iter().flatten() {
                let list = |key: &str| -> Vec<String> {
                    rule[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                };
                for key in ["verbs", "resources", "apiGroups", "nonResourceURLs"] {
                    if list(key).iter().any(|v| v.contains('*')) {
                        failures.push(format!("{values:?} {role}: a wildcard in {key}: {rule}"));
                    }
                }
                for verb in list("verbs")
                    .iter()
                    .filter(|v| ["escalate", "bind", "impersonate"].contains(&v.as_str()))
                {
                    for resource in list("resources") {
                        if !explained(&role, &resource, verb) {
                            failures.push(format!(
                                "{values:?} {role}: {verb} on {resource} has no reason in the README's rights table"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(roles > 5, "only {roles} roles rendered");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The webhook may change only its own admission configurations and APIService, and without
/// `webhook.cacheSecrets` may only get Secrets (not list or watch them).
#[test]
fn the_webhook_changes_only_its_own_registrations_and_gets_secrets_by_name() {
    let rules = webhook_rules(&[]);
    for rule in rules.as_array().unwrap() {
        let has = |key: &str, value: &str| rule[key].as_array().unwrap().iter().any(|v| v == value);
        let named = rule.get("resourceNames").is_some();
        for kind in [
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
            "apiservices",
        ] {
            if has("resources", kind) {
                for verb in ["patch", "update", "delete"] {
                    assert!(!has("verbs", verb) || named, "{verb} on every {kind}: {rule}");
                }
            }
        }
        if has("resources", "secrets") {
            assert!(!has("verbs", "list") && !has("verbs", "watch"), "{rule}");
        }
    }
}

/// The files of the chart's registry Secrets (rendered by helm: its CA and certificate, its
/// ECDSA token signing key as Helm writes it, SEC1, and the notification secret) at the paths the
/// registry pod mounts them under `root`.
fn registry_files(objects: &[serde_json::Value], root: &std::path::Path) {
    use base64::Engine;
    let secret = |name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Secret {name}"))
            .clone()
    };
    let decoded = |value: &serde_json::Value| {
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap()
    };
    for (secret_name, dir) in [
        ("slipway-registry-tls", "tls"),
        ("slipway-registry-token", "token"),
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        for (key, value) in secret(secret_name)["data"].as_object().unwrap() {
            std::fs::write(root.join(dir).join(key), decoded(value)).unwrap();
        }
    }
    let config = secret("slipway-registry-config");
    std::fs::create_dir_all(root.join("notify")).unwrap();
    std::fs::write(
        root.join("notify/notify-secret"),
        config["stringData"]["notify-secret"].as_str().unwrap(),
    )
    .unwrap();
}

/// The registry pod's `auth` container (slipway-webhook --registry-only) accepts the flags and
/// the files the chart gives it: the certificate helm made for the registry, the token signing
/// key helm made (SEC1, which the token service converts), the notification secret. The
/// registry's configuration sends clients to that container for tokens, trusts its signing
/// certificate and sends it notifications with the same secret; the certificate names the
/// registry's address.
#[test]
fn the_registry_auth_container_takes_the_charts_flags_and_files() {
    let objects = render_chart(
        "slipway-system",
        &["registry.enabled=true", "registry.service.clusterIP=10.96.0.50"],
    );
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "slipway-registry")
        .unwrap();
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let auth = containers.iter().find(|c| c["name"] == "auth").unwrap();
    let dir = tempfile::tempdir().unwrap();
    registry_files(&objects, dir.path());
    let root = format!("{}/", dir.path().display());
    let flags: Vec<String> = auth["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace("/etc/slipway/", &root)
                .replace("/var/lib/registry", &format!("{root}data"))
        })
        .collect();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    assert!(
        flags.contains(&"--registry-host=10.96.0.50:5000".to_string()),
        "{flags:?}"
    );
    let (ok, err) = check_flags(&flags);
    assert!(ok, "{flags:?}: {err}");

    // The registry container has no API token; the auth container has one.
    let spec = &deployment["spec"]["template"]["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false);
    let registry = containers.iter().find(|c| c["name"] == "registry").unwrap();
    let mounts = |c: &serde_json::Value| -> Vec<String> {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!mounts(registry).contains(&"api-token".to_string()));
    assert!(mounts(auth).contains(&"api-token".to_string()));

    // The registry's configuration agrees with the auth container.
    let config_secret = objects
        .iter()
        .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "slipway-registry-config")
        .unwrap();
    let config: serde_json::Value =
        serde_yaml_ng::from_str(config_secret["stringData"]["config.yml"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["auth"]["token"]["realm"],
        "https://10.96.0.50:5001/registry/token"
    );
    assert_eq!(config["auth"]["token"]["service"], "slipway-registry");
    assert_eq!(
        config["auth"]["token"]["rootcertbundle"],
        "/etc/slipway/token/tls.crt"
    );
    let endpoint = &config["notifications"]["endpoints"][0];
    assert_eq!(endpoint["url"], "http://127.0.0.1:5002/registry/notifications");
    let secret = config_secret["stringData"]["notify-secret"].as_str().unwrap();
    assert!(secret.len() >= 32);
    assert_eq!(
        endpoint["headers"]["Authorization"][0],
        format!("Bearer {secret}")
    );
    // The serving certificate names the registry's address.
    let pem = std::fs::read(dir.path().join("tls/tls.crt")).unwrap();
    let (_, der) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let certificate = der.parse_x509().unwrap();
    let names = format!(
        "{:?}",
        certificate.subject_alternative_name().unwrap().unwrap().value
    );
    assert!(
        names.contains("10.96.0.50") || names.contains("[10, 96, 0, 50]"),
        "{names}"
    );
    assert!(names.contains("slipway-registry.slipway-system.svc"), "{names}");
}
