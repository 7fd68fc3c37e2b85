//! The registry token service against the dev cluster's API server and a real distribution
//! registry (Debian's `docker-registry`, started by the test with token authentication that
//! trusts the test's signing certificate and sends clients to the token service, served
//! in-process). Pushes and pulls go through oci-client, as the builder's do; tokens are service
//! account tokens from the API server's TokenRequest. Played as an attacker: another project's
//! account, a token for another repository, an expired one, one signed by another key, a token
//! that is no Kubernetes token. The registry's notifications reach the same server: a push moves
//! its ImageStream tag, and a Deployment that follows the tag, at once; forged, malformed,
//! oversized and late notifications change nothing.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::time::Duration;

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::Client;
use kube::api::{Api, PostParams};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use serde_json::{Value, json};
use slipway_testkit::registry::TokenRegistry;
use slipway_testkit::*;
use slipway_webhook::registry::token::{Access, Action, Issuer};

const SERVICE: &str = "slipway-test-registry";
const ISSUER: &str = "slipway-test";

/// A signing key and certificate, and an issuer of tokens with it.
fn signer() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["slipway-registry-token-signer".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (key.serialize_pem(), cert.pem())
}

fn issuer(key: &str, cert: &str, lifetime: Duration) -> Issuer {
    Issuer::from_pem(key, cert, ISSUER, SERVICE, lifetime).unwrap()
}

/// `router` on a free loopback port over plain HTTP; its base URL.
async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

/// One test's world: a project `a` whose account `pusher` has the rules of
/// `system:image-pusher` there, the token service (and, given a registry host, the notification
/// endpoint recording pushes under it), and a registry that trusts the service's tokens (and
/// notifies it).
struct World {
    client: Client,
    a: TestNamespace,
    key: String,
    cert: String,
    realm: String,
    notify_url: String,
    secret: String,
    server: tokio::task::JoinHandle<()>,
    registry: TokenRegistry,
    pusher: String,
}

impl World {
    async fn start(prefix: &str, notify_host: Option<&str>) -> Self {
        let client = client().await;
        ensure_crds();
        let a = TestNamespace::new(&client, prefix).await;
        let (key, cert) = signer();
        let secret = format!("notify-{}", unique_name("s"));
        let mut router =
            slipway_webhook::registry::router(client.clone(), issuer(&key, &cert, Duration::from_secs(300)));
        if let Some(host) = notify_host {
            router = router.merge(slipway_webhook::registry::notify::router(
                client.clone(),
                slipway_webhook::registry::notify::Notifications {
                    registry: host.into(),
                    secret: secret.clone(),
                },
            ));
        }
        let (base, server) = serve(router).await;
        let realm = format!("{base}{}", slipway_webhook::registry::TOKEN_PATH);
        let notify_url = format!("{base}{}", slipway_webhook::registry::notify::NOTIFY_PATH);
        let notify = notify_host.map(|_| (notify_url.as_str(), secret.as_str()));
        let registry = TokenRegistry::start(&realm, SERVICE, ISSUER, &cert, notify);
        let pusher = account_token(&client, &a.name, "pusher").await;
        grant(
            &client,
            &a.name,
            "system:image-pusher",
            (&a.name, "pusher"),
            "update",
        )
        .await;
        Self {
            client,
            a,
            key,
            cert,
            realm,
            notify_url,
            secret,
            server,
            registry,
            pusher,
        }
    }

    async fn stop(self) {
        self.server.abort();
        self.a.delete().await;
    }
}

/// A token of service account `namespace/name` (made first), from the API server.
async fn account_token(client: &Client, namespace: &str, name: &str) -> String {
    service_account_token(client, namespace, name, 600).await
}

/// Binds the chart's ClusterRole `role`'s rules in `namespace` to `account` (`ns/name`) and waits
/// until the API server's authorizer allows `verb` on `imagestreams/layers` for it.
async fn grant(client: &Client, namespace: &str, role: &str, account: (&str, &str), verb: &str) {
    let local = chart_role_in(client, namespace, role).await;
    let attributes =
        json!({"group": "slipway.dev", "resource": "imagestreams", "subresource": "layers", "verb": verb});
    bind(client, namespace, &local, account, attributes).await;
}

/// Binds the Role `role` of `namespace` to `account` (`ns/name`) and waits until the API
/// server's authorizer allows it what `attributes` (a SubjectAccessReview's resourceAttributes,
/// without the namespace) say.
async fn bind(client: &Client, namespace: &str, role: &str, account: (&str, &str), mut attributes: Value) {
    let name = format!("{role}-{}-{}", account.0, account.1);
    bind_service_account(client, namespace, &name, "Role", role, account).await;
    attributes["namespace"] = json!(namespace);
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let review: SubjectAccessReview = serde_json::from_value(json!({"spec": {
        "user": format!("system:serviceaccount:{}:{}", account.0, account.1),
        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", account.0), "system:authenticated"],
        "resourceAttributes": attributes,
    }}))
    .unwrap();
    eventually("the binding to take effect", Duration::from_secs(60), || async {
        let answer = reviews.create(&PostParams::default(), &review).await.ok()?;
        answer.status?.allowed.then_some(())
    })
    .await;
}

fn registry_client() -> oci_client::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    })
}

/// Pushes a tiny image to `<registry>/<repository>:<tag>` with `token` as the password.
async fn push(registry: &str, repository: &str, tag: &str, token: &str) -> Result<String, String> {
    slipway_testkit::registry::push_random_image(registry, repository, tag, Some(("anyone", token))).await
}

/// Pulls the manifest of `<registry>/<repository>:<tag>` with `token` as the password; its digest.
async fn pull(registry: &str, repository: &str, tag: &str, token: &str) -> Result<String, String> {
    let reference: oci_client::Reference = format!("{registry}/{repository}:{tag}").parse().unwrap();
    registry_client()
        .pull_manifest_raw(
            &reference,
            &RegistryAuth::Basic("anyone".into(), token.into()),
            &["application/vnd.oci.image.manifest.v1+json"],
        )
        .await
        .map(|(_, digest)| digest)
        .map_err(|e| e.to_string())
}

/// GET `url` with `authorization`; the status and the body as JSON (or Null).
async fn get(url: &str, authorization: Option<String>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.get(url).timeout(Duration::from_secs(30));
    if let Some(a) = authorization {
        request = request.header("Authorization", a);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Whether a registry client's error is the registry's refusal (401), not another failure.
fn refused(error: &str) -> bool {
    error.starts_with("Not authorized") || error.contains("401") || error.contains("UNAUTHORIZED")
}

fn basic(token: &str) -> Option<String> {
    use base64::Engine;
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("unused:{token}"))
    ))
}

#[tokio::test]
async fn a_project_pushes_its_own_repositories_and_others_only_pull_when_granted() {
    let world = World::start("reg-a", None).await;
    let (client, a, realm, pusher) = (&world.client, &world.a, &world.realm, &world.pusher);
    let b = TestNamespace::new(client, "reg-b").await;
    let reg = world.registry.addr.as_str();
    let web = format!("{}/web", a.name);

    // A's pusher (the rules of system:image-pusher in A) pushes to A's repository and pulls it.
    push(reg, &web, "v1", pusher).await.unwrap();
    let digest = pull(reg, &web, "v1", pusher).await.unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");

    // B's account: neither push nor pull in A, and nothing it was refused changed A's tag.
    let outsider = account_token(client, &b.name, "builder").await;
    let pushed = push(reg, &web, "v1", &outsider).await.unwrap_err();
    assert!(refused(&pushed), "{pushed}");
    let pulled = pull(reg, &web, "v1", &outsider).await.unwrap_err();
    assert!(refused(&pulled), "{pulled}");
    assert_eq!(pull(reg, &web, "v1", pusher).await.unwrap(), digest);
    // B pushes to its own project only when B grants it too: here it has nothing at all.
    assert!(
        push(reg, &format!("{}/web", b.name), "v1", &outsider)
            .await
            .is_err()
    );

    // A grants B's account system:image-puller: it pulls, and still cannot push.
    grant(
        client,
        &a.name,
        "system:image-puller",
        (&b.name, "builder"),
        "get",
    )
    .await;
    assert_eq!(pull(reg, &web, "v1", &outsider).await.unwrap(), digest);
    let pushed = push(reg, &web, "v2", &outsider).await.unwrap_err();
    assert!(refused(&pushed), "{pushed}");
    assert_eq!(pull(reg, &web, "v1", pusher).await.unwrap(), digest);

    // The token service's answers: the granted actions only, for the repository asked.
    let asked = format!("{realm}?service={SERVICE}&scope=repository:{web}:pull,push");
    let (status, body) = get(&asked, basic(&outsider)).await;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(body["token"].as_str().unwrap());
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": web, "actions": ["pull"]}])
    );
    assert_eq!(claims["sub"], format!("system:serviceaccount:{}:builder", b.name));
    b.delete().await;
    world.stop().await;
}

/// The claims of a JWT (not verified: the registry does that).
fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let world = World::start("reg-forge", None).await;
    let (a, realm, pusher, key, cert) = (&world.a, &world.realm, &world.pusher, &world.key, &world.cert);
    let reg = world.registry.addr.as_str();
    let web = format!("{}/web", a.name);
    push(reg, &web, "v1", pusher).await.unwrap();
    let manifest = format!("http://{reg}/v2/{web}/manifests/v1");
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    let accept_status = |url: &str, token: String| {
        let url = url.to_string();
        async move {
            let client = reqwest::Client::new();
            client
                .head(&url)
                .header("Authorization", format!("Bearer {token}"))
                .header("Accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    // A token from the service for this repository works.
    let (status, body) = get(
        &format!("{realm}?service={SERVICE}&scope=repository:{web}:pull"),
        basic(pusher),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let good = body["token"].as_str().unwrap().to_string();
    assert_eq!(accept_status(&manifest, good.clone()).await, 200);

    // ... but not for another repository of the same project.
    push(reg, &format!("{}/api", a.name), "v1", pusher).await.unwrap();
    let other = format!("http://{reg}/v2/{}/api/manifests/v1", a.name);
    assert_eq!(accept_status(&other, good.clone()).await, 401);

    // Expired (beyond the registry's minute of leeway), signed by another key, for another
    // service: refused.
    let same_key = issuer(key, cert, Duration::from_secs(300));
    let mut expired = same_key.claims("system:admin", vec![Access::repository(&web, &[Action::Pull])]);
    expired.exp = expired.iat - 120;
    expired.nbf = expired.iat - 600;
    assert_eq!(
        accept_status(&manifest, same_key.sign(&expired).unwrap()).await,
        401
    );
    let (other_key, other_cert) = signer();
    let forger = issuer(&other_key, &other_cert, Duration::from_secs(300));
    let forged = forger.claims(
        "system:admin",
        vec![Access::repository(&web, &[Action::Pull, Action::Push])],
    );
    assert_eq!(accept_status(&manifest, forger.sign(&forged).unwrap()).await, 401);
    let elsewhere =
        Issuer::from_pem(key, cert, ISSUER, "another-registry", Duration::from_secs(300)).unwrap();
    let misdirected = elsewhere.claims("system:admin", vec![Access::repository(&web, &[Action::Pull])]);
    assert_eq!(
        accept_status(&manifest, elsewhere.sign(&misdirected).unwrap()).await,
        401
    );
    // Garbage as a bearer token, and no token at all.
    let (status, _) = get(&manifest, bearer("not.a.token")).await;
    assert_eq!(status, 401);

    // The token service: a password that is no Kubernetes token, none at all, another service,
    // a malformed scope, the catalog.
    let scope = format!("service={SERVICE}&scope=repository:{web}:pull");
    let (status, body) = get(&format!("{realm}?{scope}"), basic("not-a-kubernetes-token")).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("did not accept the token"), "{body}");
    let (status, _) = get(&format!("{realm}?{scope}"), None).await;
    assert_eq!(status, 401);
    let (status, body) = get(
        &format!("{realm}?service=other&scope=repository:{web}:pull"),
        basic(pusher),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get(
        &format!("{realm}?service={SERVICE}&scope=repository:a/b/c:pull"),
        basic(pusher),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get(
        &format!("{realm}?service={SERVICE}&scope=registry:catalog:*"),
        basic(pusher),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let catalog = body["token"].as_str().unwrap().to_string();
    assert_eq!(claims_of(&catalog)["access"], json!([]));
    let (status, _) = get(&format!("http://{reg}/v2/_catalog"), bearer(&catalog)).await;
    assert_eq!(status, 401, "the catalog lists every project's repositories");
    world.stop().await;
}

/// Grants `account` (`ns/name`) the right to create ImageStreams in `namespace`, and waits for it.
async fn grant_stream_creation(client: &Client, namespace: &str, account: (&str, &str)) {
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(json!({
        "metadata": {"name": "stream-creator"},
        "rules": [{"apiGroups": ["slipway.dev"], "resources": ["imagestreams"], "verbs": ["create"]}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let attributes = json!({"group": "slipway.dev", "resource": "imagestreams", "verb": "create"});
    bind(client, namespace, "stream-creator", account, attributes).await;
}

/// The newest image of `stream:tag` in `namespace` once it is `digest`.
async fn tag_moves_to(
    client: &Client,
    namespace: &str,
    stream: &str,
    tag: &str,
    digest: &str,
) -> slipway_crds::ImageStream {
    let streams: Api<slipway_crds::ImageStream> = Api::namespaced(client.clone(), namespace);
    eventually(
        &format!("{stream}:{tag} to be {digest}"),
        Duration::from_secs(60),
        || async {
            let is = streams.get_opt(stream).await.ok()??;
            (is.status.as_ref()?.latest(tag)?.image == digest).then_some(is)
        },
    )
    .await
}

#[tokio::test]
async fn a_push_moves_its_image_stream_tag_and_rolls_a_deployment_without_a_poll() {
    let registry_host = "registry.slipway.test:5000";
    let world = World::start("reg-notify", Some(registry_host)).await;
    let (client, a, pusher) = (&world.client, &world.a, &world.pusher);
    let (notify_url, secret) = (&world.notify_url, &world.secret);
    let reg = world.registry.addr.as_str();

    // The image trigger controller (in-process, this namespace only) and a Deployment following web:v1.
    let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
    let settings = slipway_operator::image::Settings {
        registry: registry_host.into(),
        import_interval: Duration::from_secs(3600),
        namespace: Some(a.name.clone()),
        label_selector: None,
    };
    let controller = tokio::spawn(slipway_operator::image::run(ctx, settings));
    let streams: Api<slipway_crds::ImageStream> = Api::namespaced(client.clone(), &a.name);
    let web: slipway_crds::ImageStream = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream", "metadata": {"name": "web"}, "spec": {}
    }))
    .unwrap();
    streams.create(&PostParams::default(), &web).await.unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), &a.name);
    let deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"image.openshift.io/triggers":
            json!([{"from": {"kind": "ImageStreamTag", "name": "web:v1"}, "fieldPath": "spec.template.spec.containers[?(@.name==\"web\")].image"}]).to_string()}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "placeholder:0"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    // A push to the existing stream: the tag moves, the Deployment follows.
    push(reg, &format!("{}/web", a.name), "v1", pusher).await.unwrap();
    let digest = pull(reg, &format!("{}/web", a.name), "v1", pusher).await.unwrap();
    let is = tag_moves_to(client, &a.name, "web", "v1", &digest).await;
    let expected = format!("{registry_host}/{}/web@{digest}", a.name);
    assert_eq!(
        is.status.unwrap().latest("v1").unwrap().docker_image_reference,
        expected
    );
    eventually(
        "the Deployment to follow the pushed image",
        Duration::from_secs(60),
        || async {
            let d = deployments.get("web").await.ok()?;
            let image = d.spec?.template.spec?.containers[0].image.clone()?;
            (image == expected).then_some(())
        },
    )
    .await;

    // A push to a stream that does not exist: not created for a pusher who may not create
    // streams; created (and tagged) once the pusher may.
    push(reg, &format!("{}/api", a.name), "v1", pusher).await.unwrap();
    let api_digest = pull(reg, &format!("{}/api", a.name), "v1", pusher).await.unwrap();
    // The same push moves web:v1 again (a tag whose digest is unchanged records nothing), so by
    // the time a second notification about web is through, the first about api was handled.
    push(reg, &format!("{}/web", a.name), "v2", pusher).await.unwrap();
    let v2 = pull(reg, &format!("{}/web", a.name), "v2", pusher).await.unwrap();
    tag_moves_to(client, &a.name, "web", "v2", &v2).await;
    assert!(
        streams.get_opt("api").await.unwrap().is_none(),
        "api was created for a pusher who may not"
    );
    grant_stream_creation(client, &a.name, (&a.name, "pusher")).await;
    push(reg, &format!("{}/api", a.name), "v2", pusher).await.unwrap();
    let api_v2 = pull(reg, &format!("{}/api", a.name), "v2", pusher).await.unwrap();
    let created = tag_moves_to(client, &a.name, "api", "v2", &api_v2).await;
    assert_eq!(
        created.metadata.annotations.unwrap()["slipway.dev/created-by-push"],
        format!("system:serviceaccount:{}:pusher", a.name)
    );
    assert_ne!(api_digest, "", "the first push of api reached the registry");

    // Notifications from anyone but the registry, and malformed ones: refused, nothing moved.
    let before = streams.get("web").await.unwrap().status;
    let forged = json!({"events": [{"action": "push", "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "6".repeat(64)), "repository": format!("{}/web", a.name), "tag": "v1"},
        "actor": {"name": "mallory"}}]});
    let http = reqwest::Client::new();
    let sent = |body: String, auth: Option<String>| {
        let mut request = http
            .post(notify_url.as_str())
            .body(body)
            .header("Content-Type", "application/json");
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(sent(forged.to_string(), None).await, 401);
    assert_eq!(sent(forged.to_string(), Some("Bearer guessed".into())).await, 401);
    assert_eq!(
        sent("{not json".into(), Some(format!("Bearer {secret}"))).await,
        400
    );
    let huge = format!("{{\"events\": [], \"pad\": \"{}\"}}", "x".repeat(2 << 20));
    assert_eq!(sent(huge, Some(format!("Bearer {secret}"))).await, 413);
    assert_eq!(streams.get("web").await.unwrap().status, before);

    // From the registry itself: a push delivered again an hour late (an older image) does not move
    // the tag back; a push to a project that does not exist is skipped, answered 200 so that the
    // registry's queue goes on, and the next push in the same envelope is recorded.
    let envelope = |events: Vec<Value>| json!({"events": events}).to_string();
    let event = |repository: String, tag: &str, digest: String, at: String| {
        json!({"action": "push", "timestamp": at, "actor": {"name": format!("system:serviceaccount:{}:pusher", a.name)},
               "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                          "repository": repository, "tag": tag}})
    };
    let an_hour_ago =
        (k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(1)).to_string();
    let late = envelope(vec![event(
        format!("{}/web", a.name),
        "v1",
        format!("sha256:{}", "7".repeat(64)),
        an_hour_ago,
    )]);
    assert_eq!(sent(late, Some(format!("Bearer {secret}"))).await, 200);
    assert_eq!(
        streams.get("web").await.unwrap().status,
        before,
        "a late push moved the tag back"
    );
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let fresh = format!("sha256:{}", "8".repeat(64));
    let mixed = envelope(vec![
        event(
            "t-no-such-project-zz/web".into(),
            "v1",
            fresh.clone(),
            now.clone(),
        ),
        event(format!("{}/web", a.name), "v3", fresh.clone(), now),
    ]);
    assert_eq!(sent(mixed, Some(format!("Bearer {secret}"))).await, 200);
    let moved = streams.get("web").await.unwrap().status.unwrap();
    assert_eq!(moved.latest("v3").unwrap().image, fresh);

    controller.abort();
    world.stop().await;
}
