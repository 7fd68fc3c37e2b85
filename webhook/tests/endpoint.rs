//! The public git webhook endpoint as an attacker meets it, against the dev cluster: a generic
//! caller cannot set the builder's variables; a delivery is checked before its body is read;
//! replays after pruning and the same delivery to two replicas make one Build; and a flood of
//! slow uploads and idle connections on the git listener leaves the admission listener answering.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Value, json};
use slipway_crds::{Build, BuildConfig};
use slipway_testkit::*;
use support::*;
use tokio::io::AsyncWriteExt;

async fn builds(client: &kube::Client, namespace: &str) -> Vec<Build> {
    Api::<Build>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

async fn last_version(client: &kube::Client, namespace: &str, name: &str) -> i64 {
    let config = Api::<BuildConfig>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap();
    config.status.map_or(0, |s| s.last_version)
}

fn generic_with_env(env: Value) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("generic.json")).unwrap();
    body["env"] = env;
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn allow_env_cannot_set_a_reserved_variable() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hookenv").await;
    setup(&client, &ns.name, "app", "Parallel").await; // its generic trigger has allowEnv
    let hook = Hook::start(client.clone()).await;
    let path = format!("/webhooks/{}/app/generic", ns.name);
    for (name, value) in [
        ("OUTPUT_IMAGE", "attacker.example/app:latest"),
        ("INSECURE_REGISTRIES", "attacker.example"),
        ("SCRIPTS_URL", "http://attacker.example/s2i"),
        ("https_proxy", "http://attacker.example:3128"),
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("SOURCE_URI", "https://attacker.example/other.git"),
    ] {
        let body = generic_with_env(json!([
            {"name": "RELEASE_CHANNEL", "value": "nightly"},
            {"name": name, "value": value}
        ]));
        let headers = signed("generic", "", &body, SECRET);
        let (status, answer) = hook.post(&path, &headers, &body).await;
        assert_eq!(status, 400, "{name}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(name), "{message}");
        assert!(!message.contains("RELEASE_CHANNEL"), "{message}");
        assert!(answer["build"].is_null(), "{answer}");
    }
    assert!(builds(&client, &ns.name).await.is_empty());
    assert_eq!(last_version(&client, &ns.name, "app").await, 0);
    // An ordinary variable still reaches the build.
    let body = generic_with_env(json!([{"name": "RELEASE_CHANNEL", "value": "nightly"}]));
    let (status, answer) = hook
        .post(&path, &signed("generic", "", &body, SECRET), &body)
        .await;
    assert_eq!(status, 201, "{answer}");
    ns.delete().await;
}

/// Headers that promise a 3 MiB body, and no body: the server must answer from the headers.
fn promising_headers(headers: &[(String, String)]) -> String {
    let mut request = String::new();
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", 3 * 1024 * 1024));
    request
}

#[tokio::test]
async fn a_delivery_without_a_buildconfig_or_credentials_is_refused_before_its_body() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hookbody").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    let hook = Hook::start(client.clone()).await;
    let body = github_push("refs/heads/main", "3333333333333333333333333333333333333333");
    let good = signed("github", "push", &body, SECRET);
    let gitlab_wrong = signed("gitlab", "Push Hook", &body, "not-the-secret");
    let unsigned: Vec<(String, String)> = good
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("x-hub-signature-256"))
        .cloned()
        .collect();
    let cases = [
        (format!("/webhooks/{}/no-such-config/github", ns.name), &good),
        (
            format!("/webhooks/no-such-namespace-{}/app/github", ns.name),
            &good,
        ),
        (format!("/webhooks/{}/app/github", ns.name), &unsigned),
        (format!("/webhooks/{}/app/gitlab", ns.name), &gitlab_wrong),
    ];
    for (path, headers) in cases {
        // The body never comes: an answer other than 408 was given without reading it.
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{}",
            promising_headers(headers)
        );
        let (status, answer) = hook.exchange(request.as_bytes()).await;
        assert_eq!(status, 401, "{path}: {answer}");
    }
    // The same headers to the BuildConfig, well signed: the server waits for the body.
    let path = format!("/webhooks/{}/app/github", ns.name);
    let (status, answer) = hook.post(&path, &good, &body).await;
    assert_eq!(status, 201, "{answer}");
    ns.delete().await;
}

#[tokio::test]
async fn a_replay_after_its_build_was_pruned_builds_nothing() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hookreplay").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    let path = format!("/webhooks/{}/app/github", ns.name);
    let body = github_push("refs/heads/main", "4444444444444444444444444444444444444444");
    let headers = signed("github", "push", &body, SECRET);
    {
        let hook = Hook::start(client.clone()).await;
        let (status, answer) = hook.post(&path, &headers, &body).await;
        assert_eq!(status, 201, "{answer}");
    }
    // The Build is pruned; a server without memory of the delivery gets it again, with a new
    // delivery id (the header is not signed; the body is).
    let api: Api<Build> = Api::namespaced(client.clone(), &ns.name);
    api.delete("app-1", &DeleteParams::default()).await.unwrap();
    eventually(
        "the build to be gone",
        std::time::Duration::from_secs(30),
        || async { api.get_opt("app-1").await.unwrap().is_none().then_some(()) },
    )
    .await;
    let hook = Hook::start_synced(client.clone()).await;
    let replayed = signed("github", "push", &body, SECRET);
    assert_ne!(replayed, headers, "a fresh X-GitHub-Delivery");
    let (status, answer) = hook.post(&path, &replayed, &body).await;
    assert_eq!(status, 200, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("received before") && message.contains("no new build"),
        "{message}"
    );
    assert_eq!(answer["build"], "app-1");
    assert!(builds(&client, &ns.name).await.is_empty());
    assert_eq!(last_version(&client, &ns.name, "app").await, 1);
    let recorded = Api::<BuildConfig>::namespaced(client.clone(), &ns.name)
        .get("app")
        .await
        .unwrap()
        .status
        .unwrap()
        .webhook_deliveries;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].build, "app-1");
    ns.delete().await;
}

#[tokio::test]
async fn the_same_delivery_to_two_replicas_at_once_makes_one_build() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hookreplicas").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    let (a, b) = tokio::join!(Hook::start(client.clone()), Hook::start(client.clone()));
    let path = format!("/webhooks/{}/app/github", ns.name);
    for round in 0..5 {
        let body = github_push("refs/heads/main", &format!("{:040x}", 0xc0ffee + round));
        let headers = signed("github", "push", &body, SECRET);
        let copies = (0..8).map(|i| {
            let hook = if i % 2 == 0 { &a } else { &b };
            hook.post(&path, &headers, &body)
        });
        let answers = futures::future::join_all(copies).await;
        let created = answers.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(created, 1, "round {round}: {answers:?}");
        let named = &answers.iter().find(|(s, _)| *s == 201).unwrap().1["build"];
        assert!(
            answers
                .iter()
                .all(|(s, a)| (*s == 201 || *s == 200) && &a["build"] == named),
            "round {round}: {answers:?}"
        );
    }
    assert_eq!(builds(&client, &ns.name).await.len(), 5);
    assert_eq!(last_version(&client, &ns.name, "app").await, 5);
    ns.delete().await;
}

/// An AdmissionReview of a ProjectRequest created by `user`.
fn review(uid: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "slipway.dev", "version": "v1alpha1", "kind": "ProjectRequest"},
            "resource": {"group": "slipway.dev", "version": "v1alpha1", "resource": "projectrequests"},
            "name": "flooded", "operation": "CREATE",
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
            "object": {"apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest",
                "metadata": {"name": "flooded"}, "displayName": "Flooded"},
            "dryRun": false
        }
    }))
    .unwrap()
}

/// Opens an upload of 3 MiB, signed in form, to a BuildConfig that exists, sends 1 KiB and
/// stalls; returns the status if the server answers before the body (503 past the budget).
async fn slow_upload(hook: &Hook, path: String, headers: Vec<(String, String)>) -> Option<u16> {
    let mut tls = hook.connect().await;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}",
        promising_headers(&headers)
    );
    tls.write_all(request.as_bytes()).await.ok()?;
    tls.write_all(&[b' '; 1024]).await.ok()?;
    tls.flush().await.ok()?;
    let answered = tokio::time::timeout(std::time::Duration::from_secs(2), read_response(&mut tls)).await;
    // Still held open (reading, within its budget): hold the connection until the test ends.
    if answered.is_err() {
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(120)).await;
            drop(tls);
        });
    }
    answered.ok().map(|(status, _)| status)
}

#[tokio::test]
async fn a_flood_of_the_git_listener_leaves_admission_answering() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hookflood").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    let (git, admission) = tokio::join!(Hook::start(client.clone()), Hook::admission(client.clone()));
    // 40 slow uploads that pass the checks before the body (a BuildConfig and a signature header
    // of the right form), each promising 3 MiB: the body budget holds a few, the rest get 503.
    let path = format!("/webhooks/{}/app/github", ns.name);
    let body = github_push("refs/heads/main", "5555555555555555555555555555555555555555");
    let forged = signed("github", "push", &body, "not-the-secret");
    let uploads =
        futures::future::join_all((0..40).map(|_| slow_upload(&git, path.clone(), forged.clone()))).await;
    let refused = uploads.iter().filter(|s| **s == Some(503)).count();
    let held = uploads.iter().filter(|s| s.is_none()).count();
    assert!(refused >= 30, "{uploads:?}");
    assert!(held <= 8, "at most the budget is held: {uploads:?}");
    // And 300 idle TCP connections (no TLS handshake) to the git listener, past its cap.
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(stream) = tokio::net::TcpStream::connect(git.addr).await {
            idle.push(stream);
        }
    }
    // Meanwhile admission answers every review, correctly.
    for i in 0..20 {
        let uid = format!("flood-{i}");
        let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let (status, answer) = admission
            .post("/admission/mutate", &headers, &review(&uid, "alice"))
            .await;
        assert_eq!(status, 200, "{answer}");
        let response = &answer["response"];
        assert_eq!(response["uid"], uid, "{answer}");
        assert_eq!(response["allowed"], true, "{answer}");
        assert!(!response["patch"].is_null(), "the requester is stamped: {answer}");
    }
    drop(idle);
    ns.delete().await;
}

/// One HTTP/2 frame: length, type, flags, stream and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// HTTP/2 has no header timeout in hyper: a client that completes one request, then begins a
/// second stream's headers and goes silent, is cut off by the git listener's limits.
#[tokio::test]
async fn an_http2_client_that_stops_inside_its_headers_is_cut_off() {
    let client = client().await;
    let hook = Hook::start(client).await;
    let mut tls = hook.connect().await;
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(0x4, 0, 0, &[])); // SETTINGS
    // GET /healthz, whole (END_STREAM | END_HEADERS): HPACK with static-table names.
    let mut block = vec![0x82, 0x87, 0x44, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x41, 9]);
    block.extend_from_slice(b"127.0.0.1");
    hello.extend(h2_frame(0x1, 0x5, 1, &block));
    // Stream 3: the start of a header block, without END_HEADERS, and nothing more.
    hello.extend(h2_frame(0x1, 0x0, 3, &block[..3]));
    tls.write_all(&hello).await.unwrap();
    tls.flush().await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut rest),
    )
    .await;
    assert!(
        closed.is_ok(),
        "the server kept a half-sent HTTP/2 header block open"
    );
    assert!(!rest.is_empty(), "the first request was answered before");
}
