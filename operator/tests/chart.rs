//! The Helm chart: lint-clean, and every object it renders (with the defaults and with every
//! option on) is accepted by the real API server (server-side dry run; cert-manager's kinds, whose
//! CRDs the dev cluster lacks, are checked as rendered). The ClusterRoles the operator binds in
//! every project are the chart's.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::json;
use slipway_testkit::*;

fn helm() -> std::path::PathBuf {
    dev_tool("helm")
}

#[test]
fn the_chart_is_lint_clean() {
    for values in [
        "",
        "registry.enabled=true,ingress.enabled=true,selfProvisioning.enabled=false",
        "webhook.certManager.enabled=true",
        "webhook.certManager.enabled=true,webhook.certManager.issuerRef.name=corp-ca,webhook.certManager.issuerRef.kind=ClusterIssuer",
    ] {
        let mut command = Command::new(helm());
        command.args(["lint", "charts/slipway"]).current_dir(repo_root());
        if !values.is_empty() {
            command.args(["--set", values]);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn every_rendered_object_is_accepted_by_the_api_server() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "chart").await;
    // cert-manager's kinds can only be dry-run where its CRDs are installed; the dev cluster has
    // none, so there they are left out here, and `cert_manager_mode_renders_its_issuers_and_the_flag`
    // checks them as rendered.
    let cert_manager_served = kube::discovery::group(&client, CERT_MANAGER).await.is_ok();
    let mut left_out = 0;
    // The catalog's objects go to the test namespace (the default `openshift` may not exist; its
    // Namespace object is checked as rendered below).
    let catalog_here = format!("catalog.namespace={}", ns.name);
    for values in [
        vec![catalog_here.as_str(), "catalog.createNamespace=false"],
        vec![
            catalog_here.as_str(),
            "catalog.createNamespace=false",
            "catalog.standIns=10.250.0.1:15000/slipway-catalog",
            "catalog.insecure=true",
            "registry.enabled=true",
            "ingress.enabled=true",
            "operator.maxProjectsPerUser=3",
            "webhook.certManager.enabled=true",
        ],
    ] {
        let objects = render_chart(&ns.name, &values);
        assert!(objects.len() >= 20, "{} objects", objects.len());
        for object in &objects {
            let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
            if !cert_manager_served && api_group(object) == CERT_MANAGER {
                left_out += 1;
                continue;
            }
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or(&ns.name);
            dry_run_create(&client, namespace, object)
                .await
                .unwrap_or_else(|e| panic!("{what} ({values:?}): {e}"));
        }
    }
    // By default the catalog makes its namespace, kept when the chart is uninstalled, and every
    // authenticated user may read and pull from it.
    let objects = render_chart(&ns.name, &[]);
    let namespace = find(&objects, "Namespace", "openshift");
    assert_eq!(
        namespace["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let binding = find(&objects, "RoleBinding", "slipway-catalog-readers");
    assert_eq!(binding["metadata"]["namespace"], "openshift");
    assert_eq!(binding["subjects"][0]["name"], "system:authenticated");
    // The covered quickstarts, as Templates there, unchanged but for their kind's group.
    let templates = objects
        .iter()
        .filter(|o| o["kind"] == "Template" && o["metadata"]["labels"]["slipway.dev/catalog"] == "true")
        .count();
    assert_eq!(templates, 25);
    let django = find(&objects, "Template", "django-psql-persistent");
    assert_eq!(django["apiVersion"], "slipway.dev/v1alpha1");
    assert_eq!(django["metadata"]["namespace"], "openshift");
    let corpus: serde_json::Value = serde_json::from_str(&shared_file(
        "openshift-templates/django--django-psql-persistent.json",
    ))
    .unwrap();
    assert_eq!(django["objects"], corpus["objects"]);
    assert_eq!(django["parameters"], corpus["parameters"]);
    let python = find(&objects, "ImageStream", "python");
    assert!(
        python["spec"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "3.9-ubi8"
                && t["from"]["name"] == "registry.access.redhat.com/ubi8/python-39:latest"),
        "{python}"
    );
    // The chart's two Issuers and two Certificates.
    assert!(
        cert_manager_served || left_out == 4,
        "{left_out} objects of cert-manager"
    );
    ns.delete().await;
}

const CERT_MANAGER: &str = "cert-manager.io";

fn api_group(object: &serde_json::Value) -> &str {
    object["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .map_or("", |(group, _)| group)
}

/// The rendered object of `kind` named `name`.
fn find<'a>(objects: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn webhook_args(objects: &[serde_json::Value]) -> Vec<String> {
    find(objects, "Deployment", "slipway-webhook")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The rules of the webhook's Role (release namespace) on Secrets.
fn secret_rules(objects: &[serde_json::Value]) -> Vec<serde_json::Value> {
    find(objects, "Role", "slipway-webhook")["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resources"].as_array().unwrap().contains(&"secrets".into()))
        .cloned()
        .collect()
}

/// With `webhook.certManager.enabled`, cert-manager makes the webhook's certificates: a
/// self-signed Issuer → a CA Certificate → a CA Issuer → the serving Certificate, written into the
/// Secret the webhook reads with `--certificates=external`, which its Role only lets it read; or
/// the serving Certificate alone, from the issuer the user names.
#[test]
fn cert_manager_mode_renders_its_issuers_and_the_flag() {
    let ns = "slipway-system";

    // Off (the default): no cert-manager object, the webhook makes its own.
    let objects = render_chart(ns, &[]);
    assert!(!objects.iter().any(|o| api_group(o) == CERT_MANAGER));
    let args = webhook_args(&objects);
    assert!(!args.iter().any(|a| a.starts_with("--certificates")), "{args:?}");
    assert!(args.contains(&"--ca-validity=1825d".to_string()), "{args:?}");
    assert!(
        secret_rules(&objects)
            .iter()
            .any(|r| r["verbs"].as_array().unwrap().contains(&"create".into()))
    );

    let objects = render_chart(
        ns,
        &[
            "webhook.certManager.enabled=true",
            "webhook.certificates.secretName=hook-tls",
        ],
    );
    let ours: Vec<(String, String)> = objects
        .iter()
        .filter(|o| api_group(o) == CERT_MANAGER)
        .map(|o| {
            assert_eq!(o["apiVersion"], "cert-manager.io/v1");
            assert_eq!(o["metadata"]["namespace"], ns);
            (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ours.len(), 4, "{ours:?}");
    let selfsigned = find(&objects, "Issuer", "slipway-selfsigned");
    assert_eq!(selfsigned["spec"], json!({"selfSigned": {}}));
    let ca = find(&objects, "Certificate", "slipway-webhook-ca");
    assert_eq!(ca["spec"]["isCA"], true);
    assert_eq!(ca["spec"]["duration"], "43800h");
    assert_eq!(
        ca["spec"]["issuerRef"],
        json!({"name": "slipway-selfsigned", "kind": "Issuer", "group": "cert-manager.io"})
    );
    let ca_issuer = find(&objects, "Issuer", "slipway-webhook-ca");
    assert_eq!(ca_issuer["spec"]["ca"]["secretName"], ca["spec"]["secretName"]);
    let serving = find(&objects, "Certificate", "slipway-webhook");
    assert_eq!(serving["spec"]["secretName"], "hook-tls");
    assert!(serving["spec"]["isCA"].is_null());
    assert_eq!(serving["spec"]["duration"], "2160h");
    assert_eq!(
        serving["spec"]["dnsNames"],
        json!([
            "slipway-webhook",
            "slipway-webhook.slipway-system",
            "slipway-webhook.slipway-system.svc",
            "slipway-access",
            "slipway-access.slipway-system",
            "slipway-access.slipway-system.svc",
        ])
    );
    assert!(
        serving["spec"]["usages"]
            .as_array()
            .unwrap()
            .contains(&"server auth".into())
    );
    assert_eq!(
        serving["spec"]["issuerRef"],
        json!({"name": "slipway-webhook-ca", "kind": "Issuer", "group": "cert-manager.io"})
    );
    // The Services the certificate names are the chart's.
    for service in ["slipway-webhook", "slipway-access"] {
        find(&objects, "Service", service);
    }
    // The webhook reads that Secret, and only reads it.
    let args = webhook_args(&objects);
    assert!(args.contains(&"--certificates=external".to_string()), "{args:?}");
    assert!(args.contains(&format!("--tls-secret={ns}/hook-tls")), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--ca-validity")), "{args:?}");
    assert_eq!(
        secret_rules(&objects),
        vec![json!({
            "apiGroups": [""], "resources": ["secrets"],
            "resourceNames": ["hook-tls"], "verbs": ["get", "watch"],
        })]
    );

    // The user's issuer: the serving Certificate alone, issued by it.
    let objects = render_chart(
        ns,
        &[
            "webhook.certManager.enabled=true",
            "webhook.certManager.issuerRef.name=corp-ca",
            "webhook.certManager.issuerRef.kind=ClusterIssuer",
        ],
    );
    let kinds: Vec<&str> = objects
        .iter()
        .filter(|o| api_group(o) == CERT_MANAGER)
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Certificate"]);
    assert_eq!(
        find(&objects, "Certificate", "slipway-webhook")["spec"]["issuerRef"],
        json!({"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
    assert!(webhook_args(&objects).contains(&"--certificates=external".to_string()));
}

#[test]
fn the_roles_the_operator_binds_are_the_charts() {
    let objects = render_chart("slipway-system", &[]);
    let cluster_roles: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    for role in [
        slipway_operator::project::BUILDER_CLUSTER_ROLE,
        slipway_operator::project::DEPLOYER_CLUSTER_ROLE,
        "slipway-self-provisioner",
    ] {
        assert!(cluster_roles.contains(&role), "{role} not in {cluster_roles:?}");
    }
    // The operator runs with leader election and the chart's project template.
    let operator = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "slipway-operator")
        .unwrap();
    let args = operator["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("--leader-elect"), "{args}");
    assert!(
        args.contains("--project-template=slipway-system/slipway-project-template"),
        "{args}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o["kind"] == "Template" && o["metadata"]["name"] == "slipway-project-template")
    );
    // The operator binary accepts exactly the flags the chart gives it (`--list` exits after
    // parsing them).
    let flags: Vec<String> = operator["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_slipway-operator"))
        .args(&flags)
        .arg("--list")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{flags:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
