//! The webhook's certificates against the dev cluster: replicas share them through a Secret in a
//! namespace of the test, renew them while serving, and survive a damaged Secret. The admission
//! hooks a test registers are limited to the objects it labels, and removed at the end.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, PostParams};
use kube::core::DynamicObject;
use kube::{Client, ResourceExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use slipway_testkit::*;
use slipway_webhook::certs::{self, Settings, State};
use slipway_webhook::register::{Endpoint, Registration, register, unregister};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const SECRET: &str = "slipway-webhook-tls";

fn names() -> Vec<String> {
    vec!["127.0.0.1".to_string()]
}

/// Short lives, as the flags can set them: a serving certificate renewed every 4 s, a CA
/// rotated after 10 s (the next one made then, signing 2 s later, at the next renewal).
fn quick() -> Settings {
    Settings {
        ca_validity: Duration::from_secs(15),
        cert_validity: Duration::from_secs(6),
        check_interval: Duration::from_millis(200),
        trust_delay: Duration::from_secs(2),
    }
}

fn selector(id: &str) -> LabelSelector {
    serde_json::from_value(json!({"matchLabels": {"slipway.dev/test-run": id}})).unwrap()
}

fn url(addr: SocketAddr) -> Endpoint {
    Endpoint::Url(format!("https://127.0.0.1:{}", addr.port()))
}

/// The caBundle the API server has for the hooks `id`.
async fn registered_bundle(client: &Client, id: &str) -> String {
    let config = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(id)
        .await
        .unwrap();
    let bundle = config.webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap();
    String::from_utf8(bundle.0).unwrap()
}

fn certificates_in(bundle: &str) -> usize {
    CertificateDer::pem_slice_iter(bundle.as_bytes()).count()
}

/// The certificate the server at `addr` presents, if it verifies with `bundle` for 127.0.0.1.
async fn presented(addr: SocketAddr, bundle: &str) -> Result<CertificateDer<'static>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(bundle.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned())
}

fn issuer(cert: &CertificateDer<'_>) -> String {
    let (_, x509) = x509_parser::parse_x509_certificate(cert).unwrap();
    x509.issuer().to_string()
}

/// The Secret's parts, which must all read.
async fn read_secret(client: &Client, namespace: &str) -> State {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(SECRET)
        .await
        .unwrap();
    let (state, problems) = State::from_data(secret.data.as_ref().unwrap());
    assert!(problems.is_empty(), "{problems:?}");
    state
}

/// Waits until the API server calls the hooks `id` and gets an answer: a dry-run ProjectRequest
/// comes back stamped with its requester.
async fn await_stamped(client: &Client, id: &str) {
    let api = dynamic_api(client, "ProjectRequest", "");
    let probe: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest",
        "metadata": {"name": format!("{id}-probe"), "labels": {"slipway.dev/test-run": id}},
    }))
    .unwrap();
    let params = PostParams {
        dry_run: true,
        field_manager: None,
    };
    eventually(
        "the API server to get an answer from the hook",
        Duration::from_secs(30),
        || {
            let (api, probe, params) = (api.clone(), probe.clone(), params.clone());
            async move {
                let created = api.create(&params, &probe).await.ok()?;
                created
                    .annotations()
                    .contains_key("slipway.dev/requester")
                    .then_some(())
            }
        },
    )
    .await;
}

/// Overwrites the Secret's data with garbage.
async fn damage(client: &Client, namespace: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secret = secrets.get(SECRET).await.unwrap();
    let garbage = |text: &str| ByteString(text.as_bytes().to_vec());
    secret.data = Some(
        [
            ("tls.crt", garbage("garbage")),
            ("tls.key", garbage("garbage")),
            (
                "ca.crt",
                garbage("-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n"),
            ),
            ("ca.key", ByteString(vec![0xff, 0x00, 0xfe])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    secrets
        .replace(SECRET, &PostParams::default(), &secret)
        .await
        .unwrap();
}

#[tokio::test]
async fn two_replicas_share_one_certificate_that_the_registered_bundle_verifies() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "certs-two").await;
    let id = unique_name("certs");

    // Both start at once on a missing Secret: one makes it, the other reads it.
    let (a, b) = tokio::join!(
        certs::start(client.clone(), &ns.name, SECRET, names(), Settings::default()),
        certs::start(client.clone(), &ns.name, SECRET, names(), Settings::default()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.tls.resolver.current(), b.tls.resolver.current());
    assert_eq!(*a.tls.ca_bundle.borrow(), *b.tls.ca_bundle.borrow());
    let secret = Api::<Secret>::namespaced(client.clone(), &ns.name)
        .get(SECRET)
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let state = read_secret(&client, &ns.name).await;
    assert_eq!(state.serving.as_ref(), Some(&a.tls.resolver.current()));
    assert_eq!(state.ca_bundle(), *a.tls.ca_bundle.borrow());

    // Two servers register the same hooks, each with its own address, as replicas do (here the
    // last registration names B).
    let (addr_a, addr_b) = (free_loopback_addr(), free_loopback_addr());
    let running_a = slipway_webhook::start_with(
        client.clone(),
        addr_a,
        a.tls.clone(),
        &id,
        url(addr_a),
        Some(selector(&id)),
    )
    .await
    .unwrap();
    let running_b = slipway_webhook::start_with(
        client.clone(),
        addr_b,
        b.tls.clone(),
        &id,
        url(addr_b),
        Some(selector(&id)),
    )
    .await
    .unwrap();
    let bundle = registered_bundle(&client, &id).await;
    let cert_a = presented(addr_a, &bundle).await.unwrap();
    let cert_b = presented(addr_b, &bundle).await.unwrap();
    assert_eq!(cert_a, cert_b);

    // The API server, with the bundle B registered, calls A (B stopped): A answers.
    let registration = Registration {
        name: id.clone(),
        endpoint: url(addr_a),
        ca_pem: bundle,
        object_selector: Some(selector(&id)),
    };
    register(&client, &registration).await.unwrap();
    running_b.handle.shutdown();
    await_stamped(&client, &id).await;

    unregister(&client, &id).await.unwrap();
    running_a.handle.shutdown();
    drop((a, b));
    ns.delete().await;
}

#[tokio::test]
async fn certificates_about_to_expire_are_renewed_and_served_without_a_restart() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "certs-renew").await;
    let id = unique_name("certs");
    let addr = free_loopback_addr();
    let rotating = certs::start(client.clone(), &ns.name, SECRET, names(), quick())
        .await
        .unwrap();
    let running = slipway_webhook::start_with(
        client.clone(),
        addr,
        rotating.tls.clone(),
        &id,
        url(addr),
        Some(selector(&id)),
    )
    .await
    .unwrap();

    // Through two CA lifetimes' worth of renewals, whatever the server presents verifies with
    // the caBundle registered at that moment.
    let mut served = BTreeSet::new();
    let mut issuers = BTreeSet::new();
    let mut most_cas = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while served.len() < 4 || issuers.len() < 2 || most_cas < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "in 30 s: {} certificates, {} CAs, at most {most_cas} CAs in the bundle",
            served.len(),
            issuers.len()
        );
        let bundle = registered_bundle(&client, &id).await;
        let cert = presented(addr, &bundle).await.unwrap_or_else(|e| {
            panic!("the server's certificate does not verify with the registered caBundle: {e}")
        });
        most_cas = most_cas.max(certificates_in(&bundle));
        issuers.insert(issuer(&cert));
        served.insert(cert.to_vec());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same server all along, answering the API server.
    assert!(!running.server.is_finished());
    await_stamped(&client, &id).await;
    // The Secret holds what is served.
    let state = read_secret(&client, &ns.name).await;
    let now = SystemTime::now();
    let ca = state.ca.clone().unwrap();
    state.serving.unwrap().check(&ca, &names(), now).unwrap();

    unregister(&client, &id).await.unwrap();
    running.handle.shutdown();
    drop(rotating);
    ns.delete().await;
}

#[tokio::test]
async fn a_damaged_secret_is_replaced_not_crashed_on() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "certs-damaged").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let damaged: Secret = serde_json::from_value(json!({
        "metadata": {"name": SECRET},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "garbage", "tls.key": "garbage", "ca.crt": "garbage", "ca.key": "garbage"}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &damaged).await.unwrap();

    // At start: replaced.
    let rotating = certs::start(client.clone(), &ns.name, SECRET, names(), Settings::default())
        .await
        .unwrap();
    let state = read_secret(&client, &ns.name).await;
    let ca = state.ca.clone().unwrap();
    assert_eq!(state.serving.as_ref(), Some(&rotating.tls.resolver.current()));
    let addr = free_loopback_addr();
    let handle = axum_server::Handle::new();
    tokio::spawn(slipway_webhook::server::serve_tls(
        addr,
        rotating.tls.resolver.clone(),
        client.clone(),
        handle.clone(),
    ));
    let bundle = rotating.tls.ca_bundle.borrow().clone();
    eventually("the server to serve", Duration::from_secs(10), || async {
        presented(addr, &bundle).await.ok()
    })
    .await;

    // While running (the check interval is a minute: the watch sees it): written back with the
    // CA this replica had, which the API server already trusts.
    damage(&client, &ns.name).await;
    let repaired = eventually("the secret to be repaired", Duration::from_secs(20), || async {
        let secret = secrets.get(SECRET).await.ok()?;
        let (state, problems) = State::from_data(secret.data.as_ref()?);
        (problems.is_empty() && state.serving.is_some()).then_some(state)
    })
    .await;
    assert_eq!(repaired.ca.as_ref(), Some(&ca));
    assert_eq!(*rotating.tls.ca_bundle.borrow(), bundle);
    presented(addr, &bundle).await.unwrap();

    // Deleted: made again, and served.
    secrets.delete(SECRET, &DeleteParams::default()).await.unwrap();
    let remade = eventually("the secret to be made again", Duration::from_secs(20), || async {
        let secret = secrets.get_opt(SECRET).await.ok()??;
        let (state, problems) = State::from_data(secret.data.as_ref()?);
        (problems.is_empty() && state.ca.as_ref() != Some(&ca)).then_some(state)
    })
    .await;
    let new_bundle = remade.ca_bundle();
    eventually(
        "the new certificate to be served",
        Duration::from_secs(10),
        || async { presented(addr, &new_bundle).await.ok() },
    )
    .await;
    assert_eq!(*rotating.tls.ca_bundle.borrow(), new_bundle);

    handle.shutdown();
    drop(rotating);
    ns.delete().await;
}

/// The chart's Role for the Secret, bound to a ServiceAccount of a test namespace.
async fn bind_the_charts_role(client: &Client, namespace: &str) -> String {
    let out = Command::new(dev_tool("helm"))
        .args([
            "template",
            "slipway",
            "charts/slipway",
            "--skip-crds",
            "--kube-version",
            "1.35.4",
        ])
        .args(["--namespace", namespace])
        .args(["--show-only", "templates/rbac-webhook.yaml"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let objects = yaml_documents(&String::from_utf8(out.stdout).unwrap());
    let in_namespace = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["namespace"] == namespace)
            .unwrap_or_else(|| panic!("no {kind} in the release namespace"))
            .clone()
    };
    let role: Role = serde_json::from_value(in_namespace("Role")).unwrap();
    let binding: RoleBinding = serde_json::from_value(in_namespace("RoleBinding")).unwrap();
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "slipway-webhook"}})).unwrap();
    let params = PostParams::default();
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&params, &account)
        .await
        .unwrap();
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&params, &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&params, &binding)
        .await
        .unwrap();
    format!("system:serviceaccount:{namespace}:slipway-webhook")
}

#[tokio::test]
async fn the_charts_role_is_all_the_certificates_need() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "certs-rbac").await;
    let user = bind_the_charts_role(&client, &ns.name).await;
    let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
    let groups = [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{}", ns.name),
        "system:authenticated".to_string(),
    ];
    let webhook = ctx.impersonating(&user, &groups).unwrap();
    // The Role takes a moment to apply.
    let rotating = eventually(
        "the Role to let the webhook make its Secret",
        Duration::from_secs(10),
        || {
            let (webhook, namespace) = (webhook.clone(), ns.name.clone());
            async move {
                certs::start(webhook, &namespace, SECRET, names(), quick())
                    .await
                    .ok()
            }
        },
    )
    .await;
    // Renewed (update) and noticed (watch) as the ServiceAccount.
    let first = rotating.tls.resolver.current();
    eventually("a renewal", Duration::from_secs(15), || async {
        (rotating.tls.resolver.current() != first).then_some(())
    })
    .await;
    damage(&client, &ns.name).await;
    eventually("the secret to be repaired", Duration::from_secs(15), || async {
        let secret = Api::<Secret>::namespaced(client.clone(), &ns.name)
            .get(SECRET)
            .await
            .ok()?;
        State::from_data(secret.data.as_ref()?).1.is_empty().then_some(())
    })
    .await;
    // Nothing more: another Secret of the namespace is not the webhook's to write.
    let other: Secret =
        serde_json::from_value(json!({"metadata": {"name": "other"}, "stringData": {"a": "b"}})).unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    let err = Api::<Secret>::namespaced(webhook.clone(), &ns.name)
        .replace("other", &PostParams::default(), &other)
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");
    drop(rotating);
    ns.delete().await;
}
