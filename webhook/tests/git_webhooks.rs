//! Git webhooks against the dev cluster: the server runs in-process on a loopback port, deliveries
//! are the providers' documented payloads (tests/fixtures/), signed as each provider signs, and
//! the Builds are real objects in a namespace of the test's own.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use std::collections::BTreeSet;

use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use slipway_crds::{Build, BuildConfig};
use slipway_testkit::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

fn commit_of(build: &Build) -> String {
    build
        .spec
        .common
        .revision
        .as_ref()
        .unwrap()
        .git
        .as_ref()
        .unwrap()
        .commit
        .clone()
}

#[tokio::test]
async fn each_providers_push_builds_its_head_commit() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hooks").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    let hook = Hook::start(client.clone()).await;
    // (provider, event, fixture, head commit, author email, message)
    let cases = [
        (
            "github",
            "push",
            "github-push.json",
            "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "mona@github.com",
            "Fix the greeting\n\nThe greeting said hello to nobody.",
        ),
        (
            "gitlab",
            "Push Hook",
            "gitlab-push.json",
            "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "gitlabdev@dv6700.(none)",
            "fixed readme",
        ),
        (
            "bitbucket",
            "repo:push",
            "bitbucket-push.json",
            "f0a1c2b3d4e5f60718293a4b5c6d7e8f90a1b2c3",
            "ann@example.org",
            "Release 2.0: bump the version",
        ),
        (
            "gitea",
            "push",
            "gitea-push.json",
            "bffeb74224043ba2feb48d137756c8a9331c449a",
            "someone@gitea.io",
            "Webhooks Yay!",
        ),
        (
            "generic",
            "",
            "generic.json",
            "5a7f2c1e9b8d4f3a2c1b0e9d8c7b6a5f4e3d2c1b",
            "bot@example.com",
            "Nightly rebuild",
        ),
    ];
    let api: Api<Build> = Api::namespaced(client.clone(), &ns.name);
    for (i, (provider, event, file, commit, email, message)) in cases.into_iter().enumerate() {
        let body = fixture(file);
        let (status, answer) = hook
            .post(
                &format!("/webhooks/{}/app/{provider}", ns.name),
                &signed(provider, event, &body, SECRET),
                &body,
            )
            .await;
        assert_eq!(status, 201, "{provider}: {answer}");
        let name = answer["build"].as_str().unwrap().to_string();
        assert_eq!(name, format!("app-{}", i + 1), "{provider}");
        let build = api.get(&name).await.unwrap();
        assert_eq!(
            commit_of(&build),
            commit,
            "{provider}: the head commit is built, never commits[0]"
        );
        let revision = build.spec.common.revision.clone().unwrap().git.unwrap();
        assert_eq!(revision.author.unwrap().email, email, "{provider}");
        assert_eq!(revision.message, message, "{provider}");
        let cause = serde_json::to_value(&build.spec.triggered_by[0]).unwrap();
        let slot = match provider {
            "github" => "githubWebHook",
            "gitlab" => "gitlabWebHook",
            "bitbucket" => "bitbucketWebHook",
            "gitea" => "giteaWebHook",
            _ => "genericWebHook",
        };
        assert_eq!(
            cause[slot]["revision"]["git"]["commit"], commit,
            "{provider}: {cause}"
        );
        if provider != "generic" {
            assert!(
                cause[slot]["deliveryId"].is_string(),
                "{provider}: the delivery id is recorded"
            );
        }
        assert!(build.labels().contains_key(slipway_webhook::git::DELIVERY_LABEL));
    }
    // The generic trigger allows env: the payload's variable reached the strategy.
    let generic = api.get("app-5").await.unwrap();
    let env = &generic.spec.common.strategy.source_strategy.as_ref().unwrap().env;
    assert!(
        env.iter()
            .any(|e| e.name == "RELEASE_CHANNEL" && e.value.as_deref() == Some("nightly"))
    );
    assert_eq!(last_version(&client, &ns.name, "app").await, 5);
    ns.delete().await;
}

#[tokio::test]
async fn refused_and_ignored_deliveries_build_nothing() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hooks").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    // A BuildConfig with only a GitHub trigger: GitLab deliveries to it have no trigger.
    let mut only_github = setup(&client, &ns.name, "solo", "Parallel").await;
    only_github.spec.triggers.truncate(1);
    only_github.metadata.resource_version = None;
    Api::<BuildConfig>::namespaced(client.clone(), &ns.name)
        .replace("solo", &kube::api::PostParams::default(), &{
            let mut current = Api::<BuildConfig>::namespaced(client.clone(), &ns.name)
                .get("solo")
                .await
                .unwrap();
            current.spec.triggers = only_github.spec.triggers.clone();
            current
        })
        .await
        .unwrap();
    let hook = Hook::start(client.clone()).await;
    let path = |config: &str, provider: &str| format!("/webhooks/{}/{config}/{provider}", ns.name);
    let fixtures = [
        ("github", "push", "github-push.json"),
        ("gitlab", "Push Hook", "gitlab-push.json"),
        ("bitbucket", "repo:push", "bitbucket-push.json"),
        ("gitea", "push", "gitea-push.json"),
        ("generic", "", "generic.json"),
    ];
    let mut unauthorized = BTreeSet::new();
    for (provider, event, file) in fixtures {
        let body = fixture(file);
        let good = signed(provider, event, &body, SECRET);
        // Tampered body: one byte changed after signing (GitLab signs nothing, so its token passes
        // and the tampered body is simply another delivery — checked separately below).
        if provider != "gitlab" {
            let mut tampered = body.clone();
            let at = tampered.iter().position(|&b| b == b'0' || b == b'5').unwrap();
            tampered[at] = if tampered[at] == b'0' { b'1' } else { b'6' };
            let (status, answer) = hook.post(&path("app", provider), &good, &tampered).await;
            assert_eq!(status, 401, "{provider} tampered: {answer}");
            unauthorized.insert(answer.to_string());
        }
        // Wrong secret.
        let wrong = signed(provider, event, &body, "not-the-secret");
        let (status, answer) = hook.post(&path("app", provider), &wrong, &body).await;
        assert_eq!(status, 401, "{provider} wrong secret: {answer}");
        unauthorized.insert(answer.to_string());
        // Missing signature header.
        let stripped: Vec<_> = good
            .iter()
            .filter(|(k, _)| !(k.contains("Signature") || k.contains("Token")))
            .cloned()
            .collect();
        let (status, answer) = hook.post(&path("app", provider), &stripped, &body).await;
        assert_eq!(status, 401, "{provider} unsigned: {answer}");
        unauthorized.insert(answer.to_string());
        // Unknown BuildConfig and unknown namespace, correctly signed.
        let (status, answer) = hook.post(&path("nope", provider), &good, &body).await;
        assert_eq!(status, 401, "{provider} unknown bc: {answer}");
        unauthorized.insert(answer.to_string());
        let (status, answer) = hook
            .post(&format!("/webhooks/t-no-such-ns/app/{provider}"), &good, &body)
            .await;
        assert_eq!(status, 401, "{provider} unknown namespace: {answer}");
        unauthorized.insert(answer.to_string());
        // A BuildConfig without this provider's trigger.
        if provider != "github" {
            let (status, answer) = hook.post(&path("solo", provider), &good, &body).await;
            assert_eq!(status, 401, "{provider} no trigger: {answer}");
            unauthorized.insert(answer.to_string());
        }
        // Wrong content type (GitHub's form encoding, text).
        for content_type in ["application/x-www-form-urlencoded", "text/plain"] {
            let mut headers: Vec<_> = good
                .iter()
                .filter(|(k, _)| k != "Content-Type")
                .cloned()
                .collect();
            headers.push(("Content-Type".into(), content_type.into()));
            let (status, answer) = hook.post(&path("app", provider), &headers, &body).await;
            assert_eq!(status, 415, "{provider} {content_type}: {answer}");
        }
        // Oversized, declared: answered from the headers alone.
        let mut request = format!("POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\n", path("app", provider));
        for (k, v) in &good {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", 3 * 1024 * 1024 + 1));
        let (status, answer) = hook.exchange(request.as_bytes()).await;
        assert_eq!(status, 413, "{provider} oversized: {answer}");
        // Malformed JSON, correctly signed.
        let malformed = b"{\"ref\": \"refs/heads/main\", \"after\": ".to_vec();
        let (status, answer) = hook
            .post(
                &path("app", provider),
                &signed(provider, event, &malformed, SECRET),
                &malformed,
            )
            .await;
        assert_eq!(status, 400, "{provider} malformed: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("not valid JSON"),
            "{answer}"
        );
    }
    assert_eq!(
        unauthorized.len(),
        1,
        "every refusal looks the same: {unauthorized:?}"
    );

    // Oversized without a declared length (chunked): cut off at the limit.
    let body = github_push("refs/heads/main", "feedface");
    let mut big = body.clone();
    big.extend(std::iter::repeat_n(b' ', 3 * 1024 * 1024));
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n",
        path("app", "github")
    );
    for (k, v) in signed("github", "push", &big, SECRET) {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let mut tls = hook.connect().await;
    tls.write_all(request.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = tokio::io::split(tls);
    let writing = tokio::spawn(async move {
        for chunk in big.chunks(64 * 1024) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if writer.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let (status, answer) = read_response(&mut reader).await;
    assert_eq!(status, 413, "chunked oversized: {answer}");
    writing.abort();

    // A ping is answered and builds nothing; so are other events, other refs, tags not asked for.
    let ping = fixture("github-ping.json");
    let (status, answer) = hook
        .post(
            &path("app", "github"),
            &signed("github", "ping", &ping, SECRET),
            &ping,
        )
        .await;
    assert_eq!(status, 200, "ping: {answer}");
    let (status, answer) = hook
        .post(
            &path("app", "github"),
            &signed("github", "issues", b"{}", SECRET),
            b"{}",
        )
        .await;
    assert_eq!(status, 202, "issues: {answer}");
    for git_ref in ["refs/heads/feature/x", "refs/tags/v1.0"] {
        let body = github_push(git_ref, "abcdef0123");
        let (status, answer) = hook
            .post(
                &path("app", "github"),
                &signed("github", "push", &body, SECRET),
                &body,
            )
            .await;
        assert_eq!(status, 202, "{git_ref}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("does not match the trigger's refs (main, release/*)"),
            "{answer}"
        );
    }
    // The fixture's release/2.0 branch is not one the Gitea trigger follows (it follows main).
    let mut gitea: Value = serde_json::from_slice(&fixture("gitea-push.json")).unwrap();
    gitea["ref"] = json!("refs/heads/release/2.0");
    let gitea = serde_json::to_vec(&gitea).unwrap();
    let (status, _) = hook
        .post(
            &path("app", "gitea"),
            &signed("gitea", "push", &gitea, SECRET),
            &gitea,
        )
        .await;
    assert_eq!(status, 202);
    // A deleted branch builds nothing.
    let mut deleted: Value = serde_json::from_slice(&github_push(
        "refs/heads/main",
        "0000000000000000000000000000000000000000",
    ))
    .unwrap();
    deleted["deleted"] = json!(true);
    let deleted = serde_json::to_vec(&deleted).unwrap();
    let (status, answer) = hook
        .post(
            &path("app", "github"),
            &signed("github", "push", &deleted, SECRET),
            &deleted,
        )
        .await;
    assert_eq!(status, 202, "deleted: {answer}");
    // An unknown provider.
    let (status, _) = hook
        .post(
            &path("app", "svn"),
            &signed("github", "push", &body, SECRET),
            &body,
        )
        .await;
    assert_eq!(status, 404);

    assert!(
        builds(&client, &ns.name).await.is_empty(),
        "no delivery above builds"
    );
    assert_eq!(last_version(&client, &ns.name, "app").await, 0);
    assert_eq!(last_version(&client, &ns.name, "solo").await, 0);
    ns.delete().await;
}

/// Gogs' push as published by go-playground/webhooks, sent with the headers recorded beside it
/// (tests/fixtures/providers/README.md): the signature is theirs, over these exact bytes.
fn gogs_delivery() -> (Vec<u8>, Vec<(String, String)>) {
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Gogs-Event", "push"),
        ("X-Gogs-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"),
        (
            "X-Gogs-Signature",
            "83d4163fb936904aeb9ffd6ce22cf86e4b36273b2e1c63a57f5a6ddc371ce3ba",
        ),
    ];
    (
        fixture("providers/gogs-push.json"),
        headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[tokio::test]
async fn gogs_deliveries_build_at_the_gitea_and_github_endpoints() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hooks").await;
    // The recorded delivery was signed with `sampleToken!` and pushes `develop`.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns.name);
    let secret = serde_json::from_value(json!({
        "metadata": {"name": "gogs", "labels": {slipway_crds::build::labels::WEBHOOK_SECRET: "true"}},
        "stringData": {"WebHookSecretKey": "sampleToken!"}
    }))
    .unwrap();
    secrets.create(&Default::default(), &secret).await.unwrap();
    let trigger = json!({"secretReference": {"name": "gogs"}, "refs": ["develop"]});
    let config = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "app"},
        "spec": {
            "source": {"type": "Git", "git": {"uri": "http://localhost:3000/unknwon/webhooks.git"}},
            "strategy": {"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "registry.example.com/builder:1"}}},
            "output": {"to": {"kind": "DockerImage", "name": "registry.example.com/app:latest"}},
            "triggers": [{"type": "Gitea", "gitea": trigger}, {"type": "GitHub", "github": trigger}]
        }
    }))
    .unwrap();
    Api::<BuildConfig>::namespaced(client.clone(), &ns.name)
        .create(&Default::default(), &config)
        .await
        .unwrap();
    let hook = Hook::start(client.clone()).await;
    let path = |provider: &str| format!("/webhooks/{}/app/{provider}", ns.name);
    let (body, headers) = gogs_delivery();
    let api: Api<Build> = Api::namespaced(client.clone(), &ns.name);
    for (provider, slot, number) in [("gitea", "giteaWebHook", 1), ("github", "githubWebHook", 2)] {
        let (status, answer) = hook.post(&path(provider), &headers, &body).await;
        assert_eq!(status, 201, "{provider}: {answer}");
        assert_eq!(answer["build"], format!("app-{number}"), "{provider}");
        let build = api.get(&format!("app-{number}")).await.unwrap();
        assert_eq!(commit_of(&build), "bffeb74224043ba2feb48d137756c8a9331c449a");
        let revision = build.spec.common.revision.clone().unwrap().git.unwrap();
        assert_eq!(revision.author.unwrap().email, "u@gogs.io");
        assert_eq!(revision.message, "Add new feature");
        let cause = serde_json::to_value(&build.spec.triggered_by[0]).unwrap();
        assert_eq!(
            cause[slot]["deliveryId"], "f6266f16-1bf3-46a5-9ea4-602e06ead473",
            "{provider}: {cause}"
        );
        // Gogs redelivers with the same body: named, not built again.
        let (status, again) = hook.post(&path(provider), &headers, &body).await;
        assert_eq!((status, &again["build"]), (200, &answer["build"]), "{again}");
    }
    // Refused exactly as a Gitea delivery is: the same 401 answer for a wrong secret, a changed
    // body, a missing signature, and a Gitea delivery with a wrong secret.
    let mut refusals = BTreeSet::new();
    for provider in ["gitea", "github"] {
        let mut wrong = headers.clone();
        wrong[3].1 = slipway_webhook::git::verify::sign_hex(&body, b"not-the-secret");
        let mut tampered = body.clone();
        tampered[20] ^= 1;
        let unsigned: Vec<_> = headers[..3].to_vec();
        for (what, h, b) in [
            ("wrong secret", &wrong, &body),
            ("tampered", &headers, &tampered),
            ("unsigned", &unsigned, &body),
        ] {
            let (status, answer) = hook.post(&path(provider), h, b).await;
            assert_eq!(status, 401, "{provider} {what}: {answer}");
            refusals.insert(answer.to_string());
        }
    }
    let gitea_body = fixture("gitea-push.json");
    let (status, answer) = hook
        .post(
            &path("gitea"),
            &signed("gitea", "push", &gitea_body, "not-the-secret"),
            &gitea_body,
        )
        .await;
    assert_eq!(status, 401, "{answer}");
    refusals.insert(answer.to_string());
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    // Gogs' other events build nothing.
    let mut create = headers.clone();
    create[1].1 = "create".into();
    let (status, answer) = hook.post(&path("gitea"), &create, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(builds(&client, &ns.name).await.len(), 2);
    assert_eq!(last_version(&client, &ns.name, "app").await, 2);
    ns.delete().await;
}

#[tokio::test]
async fn generic_deliveries_may_be_yaml() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hooks").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    let hook = Hook::start(client.clone()).await;
    let path = |provider: &str| format!("/webhooks/{}/app/{provider}", ns.name);
    let yaml = fixture("generic.yaml");
    let with_type = |body: &[u8], media: &str, delivery: &str| {
        let mut headers: Vec<_> = signed("generic", "", body, SECRET)
            .into_iter()
            .filter(|(k, _)| k != "Content-Type")
            .collect();
        headers.push(("Content-Type".into(), media.into()));
        headers.push(("X-Slipway-Delivery".into(), delivery.into()));
        headers
    };
    let api: Api<Build> = Api::namespaced(client.clone(), &ns.name);
    // OpenShift's generic payload as YAML (with an alias), under each YAML media type.
    for (i, media) in [
        "application/yaml",
        "application/x-yaml",
        "text/yaml; charset=utf-8",
    ]
    .into_iter()
    .enumerate()
    {
        let (status, answer) = hook
            .post(&path("generic"), &with_type(&yaml, media, media), &yaml)
            .await;
        assert_eq!(status, 201, "{media}: {answer}");
        let name = format!("app-{}", i + 1);
        assert_eq!(answer["build"], name.as_str());
        let build = api.get(&name).await.unwrap();
        assert_eq!(commit_of(&build), "5a7f2c1e9b8d4f3a2c1b0e9d8c7b6a5f4e3d2c1b");
        let revision = build.spec.common.revision.clone().unwrap().git.unwrap();
        assert_eq!(revision.message, "Nightly rebuild");
        assert_eq!(revision.committer.unwrap().email, "bot@example.com", "the alias");
        let env = &build.spec.common.strategy.source_strategy.as_ref().unwrap().env;
        assert!(
            env.iter()
                .any(|e| e.name == "RELEASE_CHANNEL" && e.value.as_deref() == Some("nightly")),
            "{env:?}"
        );
    }
    // JSON stays accepted.
    let json = fixture("generic.json");
    let (status, answer) = hook
        .post(&path("generic"), &signed("generic", "", &json, SECRET), &json)
        .await;
    assert_eq!((status, &answer["build"]), (201, &json!("app-4")), "{answer}");
    // Malformed YAML: 400 naming where.
    let malformed = b"git:\n  ref: main\n   commit: x\n".to_vec();
    let (status, answer) = hook
        .post(
            &path("generic"),
            &with_type(&malformed, "application/yaml", "m"),
            &malformed,
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("the body is not valid YAML of a generic build event: ")
            && message.contains("line 3"),
        "{message}"
    );
    // The billion laughs: 10^9 strings once expanded, in under 1 KiB. Refused, not expanded.
    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        laughs.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    let (status, answer) = hook
        .post(
            &path("generic"),
            &with_type(laughs.as_bytes(), "application/yaml", "l"),
            laughs.as_bytes(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("expands, through its aliases, to more than 262144 bytes"),
        "{answer}"
    );
    // A YAML body over 64 KiB, declared: 413 from the headers alone; the same size as JSON is
    // within the JSON limit.
    let mut big = yaml.clone();
    big.extend(std::iter::repeat_n(b'\n', 64 * 1024));
    let (status, answer) = hook
        .post(&path("generic"), &with_type(&big, "application/yaml", "b"), &big)
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(
        answer["message"], "a YAML delivery is larger than 65536 bytes",
        "{answer}"
    );
    // Other media types are refused, and YAML only at the generic endpoint.
    let (status, answer) = hook
        .post(&path("generic"), &with_type(&yaml, "text/plain", "t"), &yaml)
        .await;
    assert_eq!(status, 415, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("application/json or application/yaml"),
        "{answer}"
    );
    let push = github_push("refs/heads/main", "abc");
    let mut as_yaml: Vec<_> = signed("github", "push", &push, SECRET)
        .into_iter()
        .filter(|(k, _)| k != "Content-Type")
        .collect();
    as_yaml.push(("Content-Type".into(), "application/yaml".into()));
    let (status, answer) = hook.post(&path("github"), &as_yaml, &push).await;
    assert_eq!(status, 415, "{answer}");
    assert_eq!(builds(&client, &ns.name).await.len(), 4);
    assert_eq!(last_version(&client, &ns.name, "app").await, 4);
    ns.delete().await;
}

#[tokio::test]
async fn a_redelivery_builds_once_and_names_the_build() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hooks").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    let hook = Hook::start(client.clone()).await;
    let path = format!("/webhooks/{}/app/github", ns.name);
    let body = github_push("refs/heads/main", "1111111111111111111111111111111111111111");
    let headers = signed("github", "push", &body, SECRET);
    let (status, first) = hook.post(&path, &headers, &body).await;
    assert_eq!(status, 201, "{first}");
    for _ in 0..3 {
        let (status, again) = hook.post(&path, &headers, &body).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["build"], first["build"]);
    }
    // Ten copies of another delivery at once: one Build, every answer names it.
    let body = github_push("refs/heads/main", "2222222222222222222222222222222222222222");
    let headers = signed("github", "push", &body, SECRET);
    let answers = futures::future::join_all((0..10).map(|_| hook.post(&path, &headers, &body))).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, a)| (*s == 201 || *s == 200) && a["build"] == answers[0].1["build"]),
        "{answers:?}"
    );
    // A server restarted in between (no in-process memory) still finds the Build by its label.
    drop(hook);
    let hook = Hook::start(client.clone()).await;
    let (status, again) = hook.post(&path, &headers, &body).await;
    assert_eq!(
        (status, &again["build"]),
        (200, &answers[0].1["build"]),
        "{again}"
    );
    assert_eq!(builds(&client, &ns.name).await.len(), 2);
    assert_eq!(last_version(&client, &ns.name, "app").await, 2);
    ns.delete().await;
}

#[tokio::test]
async fn a_hundred_concurrent_deliveries_make_builds_1_to_100() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hooks").await;
    setup(&client, &ns.name, "app", "Parallel").await;
    let hook = Hook::start(client.clone()).await;
    let path = format!("/webhooks/{}/app/github", ns.name);
    let commits: Vec<String> = (0..100).map(|i| format!("c0ffee{i:034x}")).collect();
    let answers = futures::future::join_all(commits.iter().map(|commit| {
        let body = github_push("refs/heads/main", commit);
        let headers = signed("github", "push", &body, SECRET);
        let (hook, path) = (&hook, &path);
        async move { hook.post(path, &headers, &body).await }
    }))
    .await;
    assert!(
        answers.iter().all(|(s, _)| *s == 201),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 201)
    );
    let all = builds(&client, &ns.name).await;
    let numbers: BTreeSet<i64> = all
        .iter()
        .map(|b| b.name_any().strip_prefix("app-").unwrap().parse().unwrap())
        .collect();
    assert_eq!(all.len(), 100);
    assert_eq!(numbers, (1..=100).collect(), "no gap, no duplicate");
    let built: BTreeSet<String> = all.iter().map(commit_of).collect();
    assert_eq!(
        built,
        commits.iter().cloned().collect(),
        "every commit built once"
    );
    assert_eq!(last_version(&client, &ns.name, "app").await, 100);
    ns.delete().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let client = client().await;
    let hook = Hook::start(client).await;
    let mut tls = hook.connect().await;
    tls.write_all(b"POST /webhooks/ns/app/github HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: pu")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    // The server closes the connection (after HEADER_READ_TIMEOUT); the bound here is generous.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(60), tls.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the server kept a half-sent request open");
}

/// Under SerialLatestOnly, 100 concurrent deliveries still make Builds 1..100, one per commit; the
/// build controller (in-process, this namespace only) runs one at a time while kwok pods are
/// finished as they appear, and collapses the queue: the builds that ran are an increasing
/// sequence ending at the newest (100, Complete), every other build is Cancelled (CancelledBuild,
/// superseded by a newer build) and never had a pod.
#[tokio::test]
async fn a_hundred_concurrent_deliveries_collapse_under_serial_latest_only() {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::watcher;
    use slipway_crds::build::BuildPhase;

    const WAIT: std::time::Duration = std::time::Duration::from_secs(180);
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "hooks").await;
    setup(&client, &ns.name, "app", "SerialLatestOnly").await;
    // Cancelled builds count against the failed history limit: keep every build to look at.
    Api::<BuildConfig>::namespaced(client.clone(), &ns.name)
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"failedBuildsHistoryLimit": 200, "successfulBuildsHistoryLimit": 200}}),
            ),
        )
        .await
        .unwrap();

    // Watch the builds: the watch gives every change in the API server's order, so the number of
    // active (Pending or Running) builds after each event is the true number at that revision.
    #[derive(Default)]
    struct Seen {
        phases: BTreeMap<String, BuildPhase>,
        most_active: usize,
        /// Builds in the order they first became active.
        ran: Vec<i64>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let api: Api<Build> = Api::namespaced(client.clone(), &ns.name);
    let watching = tokio::spawn({
        let (seen, api) = (seen.clone(), api.clone());
        async move {
            let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
            while let Some(event) = events.next().await {
                let build = match event {
                    Ok(watcher::Event::Apply(b) | watcher::Event::InitApply(b)) => b,
                    _ => continue,
                };
                let phase = build.status.as_ref().map(|s| s.phase).unwrap_or_default();
                let name = build.name_any();
                let mut seen = seen.lock().unwrap();
                let before = seen.phases.insert(name.clone(), phase).unwrap_or_default();
                let active = |p: &BuildPhase| matches!(p, BuildPhase::Pending | BuildPhase::Running);
                if before == BuildPhase::New && phase != BuildPhase::New && phase != BuildPhase::Cancelled {
                    seen.ran.push(name.strip_prefix("app-").unwrap().parse().unwrap());
                }
                let now_active = seen.phases.values().filter(|p| active(p)).count();
                seen.most_active = seen.most_active.max(now_active);
            }
        }
    });

    // The build controller for this namespace.
    let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
    let controller = tokio::spawn(slipway_operator::build::controller::run(
        ctx,
        slipway_operator::build::controller::Settings {
            namespace: Some(ns.name.clone()),
            ..Default::default()
        },
    ));

    // kwok plays each build pod; it succeeds (with a builder result) as soon as it exists.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let finishing = tokio::spawn({
        let pods = pods.clone();
        async move {
            let result = json!({"stage": "s2i", "success": true,
                "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                "durations": {"assemble": 10, "push": 5}})
            .to_string();
            let outcome = Patch::Merge(json!({"metadata": {"annotations": {
                "kwok.slipway.dev/outcome": "Succeeded",
                "kwok.slipway.dev/termination-message": result}}}));
            loop {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    for pod in list.items {
                        if !pod.annotations().contains_key("kwok.slipway.dev/outcome") {
                            let _ = pods
                                .patch(&pod.name_any(), &PatchParams::default(), &outcome)
                                .await;
                        }
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    });

    let hook = Hook::start(client.clone()).await;
    let path = format!("/webhooks/{}/app/github", ns.name);
    let commits: Vec<String> = (0..100).map(|i| format!("5e1a7e{i:034x}")).collect();
    let answers = futures::future::join_all(commits.iter().map(|commit| {
        let body = github_push("refs/heads/main", commit);
        let headers = signed("github", "push", &body, SECRET);
        let (hook, path) = (&hook, &path);
        async move { hook.post(path, &headers, &body).await }
    }))
    .await;
    assert!(
        answers.iter().all(|(s, _)| *s == 201),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 201)
    );

    // Every build ends; the newest ran to Complete.
    let all = eventually("every build to be terminal, app-100 Complete", WAIT, || async {
        let all = builds(&client, &ns.name).await;
        let phase = |b: &Build| b.status.as_ref().map(|s| s.phase).unwrap_or_default();
        (all.len() == 100
            && all.iter().all(|b| phase(b).is_terminal())
            && all
                .iter()
                .any(|b| b.name_any() == "app-100" && phase(b) == BuildPhase::Complete))
        .then_some(all)
    })
    .await;
    finishing.abort();
    controller.abort();

    let number = |b: &Build| -> i64 { b.name_any().strip_prefix("app-").unwrap().parse().unwrap() };
    let numbers: BTreeSet<i64> = all.iter().map(number).collect();
    assert_eq!(numbers, (1..=100).collect(), "no gap, no duplicate");
    let built: BTreeSet<String> = all.iter().map(commit_of).collect();
    assert_eq!(built, commits.iter().cloned().collect(), "every commit once");
    assert_eq!(last_version(&client, &ns.name, "app").await, 100);

    // The collapse: what ran completed, everything else was cancelled as superseded.
    let mut complete = BTreeSet::new();
    for b in &all {
        let status = b.status.clone().unwrap();
        match status.phase {
            BuildPhase::Complete => {
                complete.insert(number(b));
            }
            BuildPhase::Cancelled => {
                assert_eq!(
                    status.reason.as_deref(),
                    Some("CancelledBuild"),
                    "{}",
                    b.name_any()
                );
                // Superseded by a newer build, named in the message.
                let message = status.message.unwrap_or_default();
                let by: i64 = message
                    .split_once("(app-")
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .and_then(|(n, _)| n.parse().ok())
                    .unwrap_or_else(|| panic!("{}: {message}", b.name_any()));
                assert!(by > number(b), "{} superseded by older app-{by}", b.name_any());
            }
            other => panic!("{} ended {other:?}", b.name_any()),
        }
    }
    // Let the watch catch up with the last writes before reading what it saw.
    eventually("the watch to see every build end", WAIT, || async {
        let seen = seen.lock().unwrap();
        (seen.phases.len() == 100 && seen.phases.values().all(|p| p.is_terminal())).then_some(())
    })
    .await;
    watching.abort();
    let (most_active, ran) = {
        let seen = seen.lock().unwrap();
        (seen.most_active, seen.ran.clone())
    };
    assert_eq!(most_active, 1, "never more than one build active at once");
    assert_eq!(
        ran.iter().copied().collect::<BTreeSet<_>>(),
        complete,
        "what ran is what completed"
    );
    assert!(
        ran.windows(2).all(|w| w[0] < w[1]),
        "builds ran oldest to newest, never an older after a newer: {ran:?}"
    );
    assert_eq!(ran.last(), Some(&100));
    assert!(complete.len() < 100, "the queue collapsed: {ran:?}");
    // Cancelled builds never had a pod.
    let with_pods: BTreeSet<i64> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| {
            p.name_any()
                .strip_prefix("app-")?
                .strip_suffix("-build")?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(with_pods, complete, "only the builds that ran had pods");
    ns.delete().await;
}

#[tokio::test]
async fn mirrored_objects_serve_deliveries_and_changes_count_at_once() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams, PostParams};
    use slipway_crds::build::labels;
    use slipway_webhook::git::{Provider, delivery_key};
    const SOON: std::time::Duration = std::time::Duration::from_secs(30);

    ensure_crds();
    let client = client().await;
    let hook = Hook::start_synced(client.clone()).await;
    let ns = TestNamespace::new(&client, "hookcache").await;
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &ns.name);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let path = format!("/webhooks/{}/app/github", ns.name);
    let push = |n: u32| github_push("refs/heads/main", &format!("{n:040x}"));
    async fn deliver_to(hook: &Hook, path: &str, body: Vec<u8>, secret: &str) -> (u16, Value) {
        hook.post(path, &signed("github", "push", &body, secret), &body)
            .await
    }

    // A BuildConfig created a moment ago (the mirror may not have it yet) builds.
    setup(&client, &ns.name, "app", "Parallel").await;
    let unlabelled = json!({"metadata": {"labels": {labels::WEBHOOK_SECRET: null}}});
    secrets
        .patch("hook", &PatchParams::default(), &Patch::Merge(&unlabelled))
        .await
        .unwrap();
    let (status, answer) = deliver_to(&hook, &path, push(1), SECRET).await;
    assert_eq!(status, 201, "{answer}");

    // Mirrored, the BuildConfig is read from the mirror; its Secret, unlabelled, is not mirrored
    // (it is read from the API server at each delivery).
    eventually("the mirror to have the BuildConfig", SOON, || async {
        hook.caches.config(&ns.name, "app").map(|_| ())
    })
    .await;
    assert!(hook.caches.secret(&ns.name, "hook").is_none());
    let (status, answer) = deliver_to(&hook, &path, push(2), SECRET).await;
    assert_eq!(status, 201, "{answer}");

    // Labelled, the Secret is mirrored — its key alone.
    let label = json!({"metadata": {"labels": {labels::WEBHOOK_SECRET: "true"}}});
    secrets
        .patch("hook", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    eventually("the mirror to have the Secret", SOON, || async {
        (hook.caches.secret(&ns.name, "hook").as_deref() == Some(SECRET.as_bytes())).then_some(())
    })
    .await;
    let (status, answer) = deliver_to(&hook, &path, push(3), SECRET).await;
    assert_eq!(status, 201, "{answer}");

    // A server whose mirrors stopped just now (they lag as far as they can): what changes
    // counts at once all the same.
    let lagging = Hook::start_synced(client.clone()).await;
    lagging.caches.freeze();
    assert!(lagging.caches.secret(&ns.name, "hook").is_some());

    // A new secret: the mirrored one does not verify the delivery, so the API server is asked.
    // (The old one is refused once the watch has brought the change.)
    let rotated = json!({"stringData": {"WebHookSecretKey": "rotated"}});
    secrets
        .patch("hook", &PatchParams::default(), &Patch::Merge(&rotated))
        .await
        .unwrap();
    let (status, fourth) = deliver_to(&lagging, &path, push(4), "rotated").await;
    assert_eq!(status, 201, "{fourth}");
    eventually("the mirror to have the new secret", SOON, || async {
        (hook.caches.secret(&ns.name, "hook").as_deref() == Some(&b"rotated"[..])).then_some(())
    })
    .await;
    let (status, answer) = deliver_to(&hook, &path, push(5), SECRET).await;
    assert_eq!(status, 401, "{answer}");

    // Another server, started after these Builds, finds a redelivery in its mirror.
    let other = Hook::start_synced(client.clone()).await;
    let key = delivery_key(&ns.name, "app", Provider::GitHub, None, &push(4));
    assert_eq!(
        other.caches.delivered_build(&ns.name, "app", &key),
        Some(fourth["build"].as_str().map(String::from))
    );
    let (status, answer) = deliver_to(&other, &path, push(4), "rotated").await;
    assert_eq!((status, &answer["build"]), (200, &fourth["build"]), "{answer}");
    drop(other);

    // Another lagging server, whose mirrors have the new secret.
    let lagging = Hook::start_synced(client.clone()).await;
    lagging.caches.freeze();
    assert_eq!(
        lagging.caches.secret(&ns.name, "hook").as_deref(),
        Some(&b"rotated"[..])
    );

    // Paused: refused, though the lagging mirror's copy is not paused.
    let paused = json!({"metadata": {"annotations": {labels::BUILD_CONFIG_PAUSED: "true"}}});
    configs
        .patch("app", &PatchParams::default(), &Patch::Merge(&paused))
        .await
        .unwrap();
    let (status, answer) = deliver_to(&lagging, &path, push(6), "rotated").await;
    assert_eq!(status, 409, "{answer}");
    let resumed = json!({"metadata": {"annotations": {labels::BUILD_CONFIG_PAUSED: null}}});
    configs
        .patch("app", &PatchParams::default(), &Patch::Merge(&resumed))
        .await
        .unwrap();

    // The GitHub trigger removed: refused like any delivery without a trigger, though the
    // lagging mirror's copy still has it (and verifies the delivery with it).
    let mut current = configs.get("app").await.unwrap();
    current.spec.triggers.retain(|t| t.github.is_none());
    configs
        .replace("app", &PostParams::default(), &current)
        .await
        .unwrap();
    for server in [&lagging, &hook] {
        let (status, answer) = deliver_to(server, &path, push(7), "rotated").await;
        assert_eq!(status, 401, "{answer}");
    }

    assert_eq!(builds(&client, &ns.name).await.len(), 4);
    assert_eq!(last_version(&client, &ns.name, "app").await, 4);
    ns.delete().await;
}
