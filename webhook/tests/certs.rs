//! The webhook's certificates against the dev cluster: replicas share them through a Secret in a
//! namespace of the test, renew them while serving, and survive a damaged Secret; or they serve
//! and follow the certificates another party (cert-manager) writes into it, never writing it. The
//! admission hooks a test registers are limited to the objects it labels, and removed at the end.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::{Client, ResourceExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use slipway_testkit::*;
use slipway_webhook::certs::{self, Settings, State};
use slipway_webhook::register::{Endpoint, Registration, register, unregister};
use slipway_webhook::tls::{Ca, Serving, Tls};
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

/// The webhook server on `addr` with `tls`, registered as `id` for the objects `selector(id)` picks.
async fn serve(client: &Client, addr: SocketAddr, tls: &Tls, id: &str) -> slipway_webhook::Running {
    slipway_webhook::start_with(
        client.clone(),
        addr,
        tls.clone(),
        id,
        url(addr),
        Some(selector(id)),
    )
    .await
    .unwrap()
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
    let running_a = serve(&client, addr_a, &a.tls, &id).await;
    let running_b = serve(&client, addr_b, &b.tls, &id).await;
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
    let running = serve(&client, addr, &rotating.tls, &id).await;

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

/// The chart's Role for the Secret (with `values` set), bound to a ServiceAccount of a test
/// namespace.
async fn bind_the_charts_role(client: &Client, namespace: &str, values: &[&str]) -> String {
    let objects = render_chart(namespace, values);
    let in_namespace = |kind: &str| {
        objects
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["namespace"] == namespace
                    && o["metadata"]["name"] == "slipway-webhook"
            })
            .unwrap_or_else(|| panic!("no {kind} slipway-webhook in the release namespace"))
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
    let user = bind_the_charts_role(&client, &ns.name, &[]).await;
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

// --- Certificates another party writes (`--certificates external`, cert-manager) ---------------

const DAY: Duration = Duration::from_secs(24 * 3600);
/// The field manager the test writes the Secret as, standing in for cert-manager.
const CERT_MANAGER: &str = "test-as-cert-manager";

/// What the tracing events of this test's thread say (a `#[tokio::test]` runs its tasks, the
/// webhook's certificate watch among them, on its own thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// The lines that contain `text`.
    fn lines_with(&self, text: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|line| line.contains(text))
            .map(str::to_string)
            .collect()
    }
}

/// Writes the Secret as cert-manager does (server-side apply, type `kubernetes.io/tls`), with
/// exactly `parts`; returns its resourceVersion.
async fn write_as_cert_manager(secrets: &Api<Secret>, parts: &[(&str, &str)]) -> String {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(SECRET.into()),
            annotations: Some(BTreeMap::from([(
                "cert-manager.io/certificate-name".to_string(),
                "slipway-webhook".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(
            parts
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    };
    let written = secrets
        .patch(
            SECRET,
            &PatchParams::apply(CERT_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
    written.metadata.resource_version.unwrap()
}

fn issued<'a>(serving: &'a Serving, ca: &'a Ca) -> [(&'static str, &'a str); 3] {
    [
        ("tls.crt", &serving.cert_pem),
        ("tls.key", &serving.key_pem),
        ("ca.crt", &ca.cert_pem),
    ]
}

fn leaf(serving: &Serving) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).unwrap()
}

fn bundle_of(ca: &Ca) -> String {
    format!("{}\n", ca.cert_pem.trim())
}

/// Waits until a new log line (beyond the `before` there were) contains `text`.
async fn await_log(logs: &Logs, text: &str, before: usize) -> String {
    eventually(
        &format!("a log line with {text:?}"),
        Duration::from_secs(15),
        || async {
            let lines = logs.lines_with(text);
            (lines.len() > before).then(|| lines[lines.len() - 1].clone())
        },
    )
    .await
}

#[tokio::test]
async fn certificates_cert_manager_writes_are_served_followed_and_never_written() {
    ensure_crds();
    let (logs, _guard) = Logs::capture();
    let client = client().await;
    let ns = TestNamespace::new(&client, "certs-external").await;
    let id = unique_name("certs");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let now = SystemTime::now();
    // A check interval of a minute: within the test, only the watch makes it read the Secret.
    let interval = Duration::from_secs(60);

    // No Secret yet: it waits, and says why.
    let starting = {
        let (client, namespace) = (client.clone(), ns.name.clone());
        tokio::spawn(
            async move { certs::start_external(client, &namespace, SECRET, names(), interval).await },
        )
    };
    let waiting = await_log(&logs, "waiting for the secret", 0).await;
    assert!(waiting.contains(&format!("{}/{SECRET}", ns.name)), "{waiting}");
    // A certificate for other names does not do either.
    let ca = Ca::generate(now - 20 * DAY, 400 * DAY).unwrap();
    let elsewhere = ca.issue(&["other.example".to_string()], now, 90 * DAY).unwrap();
    write_as_cert_manager(&secrets, &issued(&elsewhere, &ca)).await;
    let line = await_log(&logs, "tls.crt is not for 127.0.0.1 (it is for other.example)", 0).await;
    assert!(line.contains("ERROR"), "{line}");
    assert!(!starting.is_finished(), "started without a usable certificate");

    // cert-manager issues: served, and ca.crt registered.
    let first = ca.issue(&names(), now, 90 * DAY).unwrap();
    write_as_cert_manager(&secrets, &issued(&first, &ca)).await;
    let rotating = tokio::time::timeout(Duration::from_secs(15), starting)
        .await
        .expect("started once the Secret held a usable certificate")
        .unwrap()
        .unwrap();
    assert_eq!(rotating.tls.resolver.current(), first);
    assert_eq!(*rotating.tls.ca_bundle.borrow(), bundle_of(&ca));
    let addr = free_loopback_addr();
    let running = serve(&client, addr, &rotating.tls, &id).await;
    assert_eq!(registered_bundle(&client, &id).await, bundle_of(&ca));
    assert_eq!(presented(addr, &ca.cert_pem).await.unwrap(), leaf(&first));
    await_stamped(&client, &id).await;

    // Renewed by the same CA: served at once by the same server.
    let second = ca.issue(&names(), now, 90 * DAY).unwrap();
    write_as_cert_manager(&secrets, &issued(&second, &ca)).await;
    eventually(
        "the renewed certificate to be served",
        Duration::from_secs(15),
        || async { (presented(addr, &ca.cert_pem).await.ok()? == leaf(&second)).then_some(()) },
    )
    .await;
    // Renewed by a new CA: its ca.crt is registered, and the API server trusts the new one.
    let new_ca = Ca::generate(now - 19 * DAY, 400 * DAY).unwrap();
    let third = new_ca.issue(&names(), now, 90 * DAY).unwrap();
    write_as_cert_manager(&secrets, &issued(&third, &new_ca)).await;
    eventually("the new CA to be registered", Duration::from_secs(15), || async {
        (registered_bundle(&client, &id).await == bundle_of(&new_ca)).then_some(())
    })
    .await;
    assert_eq!(presented(addr, &new_ca.cert_pem).await.unwrap(), leaf(&third));
    assert!(!running.server.is_finished());
    await_stamped(&client, &id).await;

    // Unusable Secrets: each logged as an error that says what is wrong, the last usable
    // certificate still served and its CA still registered.
    let other_key = new_ca.issue(&names(), now, DAY).unwrap().key_pem;
    let for_others = new_ca.issue(&["other.example".to_string()], now, DAY).unwrap();
    let expired = new_ca.issue(&names(), now - 10 * DAY, DAY).unwrap();
    let not_x509 = "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n";
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("tls.crt", &third.cert_pem),
                ("tls.key", ""),
                ("ca.crt", &new_ca.cert_pem),
            ],
            "tls.key missing or empty",
        ),
        (
            vec![("tls.crt", &third.cert_pem), ("tls.key", &third.key_pem)],
            "ca.crt missing or empty",
        ),
        (
            vec![
                ("tls.crt", "garbage"),
                ("tls.key", &third.key_pem),
                ("ca.crt", &new_ca.cert_pem),
            ],
            "tls.crt holds no PEM certificate",
        ),
        (
            vec![
                ("tls.crt", not_x509),
                ("tls.key", &third.key_pem),
                ("ca.crt", &new_ca.cert_pem),
            ],
            "tls.crt is not an X.509 certificate",
        ),
        (
            vec![
                ("tls.crt", &third.cert_pem),
                ("tls.key", "garbage"),
                ("ca.crt", &new_ca.cert_pem),
            ],
            "tls.key holds no PEM private key",
        ),
        (
            vec![
                ("tls.crt", &third.cert_pem),
                ("tls.key", &other_key),
                ("ca.crt", &new_ca.cert_pem),
            ],
            "tls.key is not the key of the certificate in tls.crt",
        ),
        (
            issued(&for_others, &new_ca).to_vec(),
            "tls.crt is not for 127.0.0.1 (it is for other.example)",
        ),
        (
            vec![
                ("tls.crt", &third.cert_pem),
                ("tls.key", &third.key_pem),
                ("ca.crt", &ca.cert_pem),
            ],
            "tls.crt is not signed by a CA of ca.crt",
        ),
        (issued(&expired, &new_ca).to_vec(), "tls.crt expired at"),
    ];
    for (parts, error) in &cases {
        let before = logs.lines_with(error).len();
        write_as_cert_manager(&secrets, parts).await;
        let line = await_log(&logs, error, before).await;
        assert!(
            line.contains("ERROR") && line.contains("still serving the last usable one"),
            "{line}"
        );
        assert_eq!(rotating.tls.resolver.current(), third, "{error}");
        assert_eq!(
            presented(addr, &new_ca.cert_pem).await.unwrap(),
            leaf(&third),
            "{error}"
        );
        assert_eq!(
            registered_bundle(&client, &id).await,
            bundle_of(&new_ca),
            "{error}"
        );
    }
    // Deleted: the same.
    let before = logs.lines_with("does not exist").len();
    secrets.delete(SECRET, &DeleteParams::default()).await.unwrap();
    await_log(&logs, "does not exist", before).await;
    assert_eq!(presented(addr, &new_ca.cert_pem).await.unwrap(), leaf(&third));
    // Usable again: served.
    let fourth = new_ca.issue(&names(), now, 90 * DAY).unwrap();
    let last_written = write_as_cert_manager(&secrets, &issued(&fourth, &new_ca)).await;
    eventually(
        "the new certificate to be served",
        Duration::from_secs(15),
        || async { (presented(addr, &new_ca.cert_pem).await.ok()? == leaf(&fourth)).then_some(()) },
    )
    .await;
    assert!(!running.server.is_finished());

    // The webhook never wrote the Secret: it is as last written, by cert-manager alone.
    let secret = secrets.get(SECRET).await.unwrap();
    assert_eq!(secret.metadata.resource_version, Some(last_written));
    let managers: Vec<String> = secret
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| entry.manager)
        .collect();
    assert_eq!(managers, [CERT_MANAGER]);

    unregister(&client, &id).await.unwrap();
    running.handle.shutdown();
    drop(rotating);
    ns.delete().await;
}

#[tokio::test]
async fn with_cert_manager_the_charts_role_reads_the_secret_and_cannot_write_it() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "certs-cm-rbac").await;
    let user = bind_the_charts_role(&client, &ns.name, &["webhook.certManager.enabled=true"]).await;
    let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
    let groups = [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{}", ns.name),
        "system:authenticated".to_string(),
    ];
    let webhook = ctx.impersonating(&user, &groups).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let now = SystemTime::now();
    let ca = Ca::generate(now, 400 * DAY).unwrap();
    let first = ca.issue(&names(), now, 90 * DAY).unwrap();
    write_as_cert_manager(&secrets, &issued(&first, &ca)).await;

    // Read (get) and followed (watch) as the ServiceAccount: a renewal is served within the test,
    // though the check interval is a minute. (The Role takes a moment to apply: the start waits.)
    let rotating = tokio::time::timeout(
        Duration::from_secs(30),
        certs::start_external(
            webhook.clone(),
            &ns.name,
            SECRET,
            names(),
            Duration::from_secs(60),
        ),
    )
    .await
    .expect("the Secret read as the ServiceAccount")
    .unwrap();
    assert_eq!(rotating.tls.resolver.current(), first);
    let second = ca.issue(&names(), now, 90 * DAY).unwrap();
    write_as_cert_manager(&secrets, &issued(&second, &ca)).await;
    eventually("the renewal to be served", Duration::from_secs(15), || async {
        (rotating.tls.resolver.current() == second).then_some(())
    })
    .await;
    // Nothing more: neither that Secret nor any other is the webhook's to write.
    let as_webhook: Api<Secret> = Api::namespaced(webhook.clone(), &ns.name);
    let mut secret = secrets.get(SECRET).await.unwrap();
    secret.metadata.managed_fields = None;
    let err = as_webhook
        .replace(SECRET, &PostParams::default(), &secret)
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");
    let other: Secret =
        serde_json::from_value(json!({"metadata": {"name": "other"}, "stringData": {"a": "b"}})).unwrap();
    let err = as_webhook
        .create(&PostParams::default(), &other)
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");
    drop(rotating);
    ns.delete().await;
}
