//! `slip tag`, `slip import-image` and `slip set triggers` against the dev cluster, with the
//! operator's image controller running in-process for the test's namespace and images pushed to
//! the dev registry by the test.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use serde_json::json;
use slipway_crds::{DeploymentConfig, ImageStream};
use slipway_operator::image::{Settings, registry};
use slipway_testkit::*;

const REGISTRY: &str = "127.0.0.1:15000";

/// Pushes a tiny image with random content; returns its digest.
async fn push_image(repository: &str, tag: &str) -> String {
    registry::ensure_crypto_provider();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let spec = format!("{REGISTRY}/{repository}:{tag}");
    let nonce = unique_name("layer");
    let config = json!({"architecture": "amd64", "os": "linux", "config": {"Labels": {"nonce": nonce}}});
    client
        .push(
            &spec.parse().unwrap(),
            &[ImageLayer::oci_v1(nonce.into_bytes(), None)],
            Config::oci_v1(serde_json::to_vec(&config).unwrap(), None),
            &RegistryAuth::Anonymous,
            None,
        )
        .await
        .unwrap();
    registry::resolve(&spec, true).await.unwrap().digest
}

async fn slip(args: &[&str]) -> Output {
    run_program(env!("CARGO_BIN_EXE_slip-under-test"), None, args).await
}

fn text(out: &Output) -> String {
    output_text(out)
}

async fn fails_with(args: &[&str], expected: &str) {
    let out = slip(args).await;
    assert!(!out.status.success(), "slip {args:?} should fail: {}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(expected),
        "slip {args:?} should say {expected:?}: {said}"
    );
    assert!(!said.contains("panicked"), "{said}");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_precise_message() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "slip-img-bad").await;
    let n = ns.name.as_str();
    let long = "a".repeat(5000);
    fails_with(&["-n", n, "tag", "src:v1", "Bad:tag"], "not an image stream tag").await;
    fails_with(&["-n", n, "tag", "src:v1", "app:"], "not an image stream tag").await;
    fails_with(
        &["-n", n, "tag", "a b", "app:v1"],
        "not an image or image stream tag",
    )
    .await;
    fails_with(
        &["-n", n, "tag", &long, "app:v1"],
        "not an image or image stream tag",
    )
    .await;
    fails_with(
        &["-n", n, "tag", "other:v1", "app:v1", "--scheduled"],
        "apply to images from a registry",
    )
    .await;
    fails_with(&["-n", n, "tag", "app:v1", "app:v1"], "cannot follow itself").await;
    fails_with(
        &["-n", n, "import-image", "app:v1"],
        "does not exist; give --from",
    )
    .await;
    fails_with(
        &["-n", n, "import-image", "app:v1", "--from", "a b"],
        "not an image",
    )
    .await;
    fails_with(
        &[
            "-n",
            n,
            "set",
            "triggers",
            "pod/web",
            "--from-image",
            "app:v1",
            "-c",
            "web",
        ],
        "cannot set image triggers",
    )
    .await;
    fails_with(&["-n", n, "set", "triggers", "web"], "not KIND/NAME").await;
    fails_with(
        &["-n", n, "set", "triggers", "dc/web", "--from-github"],
        "are for bc/NAME",
    )
    .await;
    fails_with(
        &["-n", n, "set", "triggers", "bc/web", "--from-image", "app:v1"],
        "set triggers bc/NAME takes one of --from-github",
    )
    .await;
    fails_with(
        &["-n", n, "set", "triggers", "dc/web", "--from-image", "app:v1"],
        "needs the containers",
    )
    .await;
    fails_with(
        &["-n", n, "set", "triggers", "dc/web", "-c", "web"],
        "go with --from-image",
    )
    .await;
    fails_with(
        &[
            "-n",
            n,
            "set",
            "triggers",
            "dc/web",
            "--from-image",
            "app:v1",
            "-c",
            "W!",
        ],
        "not a valid container name",
    )
    .await;
    fails_with(
        &[
            "-n",
            n,
            "set",
            "triggers",
            "dc/web",
            "--from-image",
            "app:v1",
            "-c",
            "web",
            "--manual",
            "--auto",
        ],
        "cannot be used with",
    )
    .await;
    fails_with(
        &[
            "-n",
            n,
            "set",
            "triggers",
            "deployment/missing",
            "--from-image",
            "app:v1",
            "-c",
            "web",
        ],
        "not found",
    )
    .await;
    // Nothing was half-written.
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), n);
    assert!(streams.list(&Default::default()).await.unwrap().items.is_empty());
    ns.delete().await;
}

#[tokio::test]
async fn tag_import_and_triggers_reach_a_deployment_and_a_dc() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "slip-img").await;
    let n = ns.name.clone();
    let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
    let controller = tokio::spawn(slipway_operator::image::run(
        ctx,
        Settings {
            registry: REGISTRY.into(),
            import_interval: Duration::from_secs(2),
            namespace: Some(n.clone()),
            label_selector: None,
        },
    ));
    let source = format!("{n}/upstream");
    let digest = push_image(&source, "v1").await;

    // slip tag: a scheduled, insecure DockerImage tag, and a tag that follows it.
    let out = slip(&[
        "-n",
        &n,
        "tag",
        &format!("{REGISTRY}/{source}:v1"),
        "app:latest",
        "--scheduled",
        "--insecure",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Tag app:latest set to DockerImage"),
        "{}",
        text(&out)
    );
    let out = slip(&["-n", &n, "tag", "app:latest", "app:stable"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), &n);
    let stream = streams.get("app").await.unwrap();
    let latest = stream.spec.tags.iter().find(|t| t.name == "latest").unwrap();
    assert!(latest.import_policy.as_ref().unwrap().scheduled);
    let stable = stream.spec.tags.iter().find(|t| t.name == "stable").unwrap();
    assert_eq!(stable.from.as_ref().unwrap().name, "app:latest");
    // Dry runs: a changed tag, a new tag and a new stream, reported and not written.
    let generation = stream.metadata.generation;
    for (args, says) in [
        (
            vec!["tag", "app:stable", "app:latest", "--dry-run"],
            "Tag app:latest set to ImageStreamTag app:stable. (dry run)",
        ),
        (
            vec!["tag", "app:latest", "app:canary", "--dry-run=server"],
            "Tag app:canary set to ImageStreamTag app:latest. (server dry run)",
        ),
        (
            vec!["tag", "app:latest", "other:v1", "--dry-run=server"],
            "Tag other:v1 set to ImageStreamTag app:latest. (server dry run)",
        ),
    ] {
        let mut all = vec!["-n", n.as_str()];
        all.extend(args.iter().copied());
        let out = slip(&all).await;
        assert!(
            out.status.success() && text(&out).contains(says),
            "{args:?}: {}",
            text(&out)
        );
    }
    let stream = streams.get("app").await.unwrap();
    assert_eq!(
        stream.metadata.generation, generation,
        "a dry run changed the stream"
    );
    assert!(stream.spec.tags.iter().all(|t| t.name != "canary"));
    assert!(streams.get_opt("other").await.unwrap().is_none());

    // slip import-image waits for the import and prints the digest reference.
    let out = slip(&[
        "-n",
        &n,
        "import-image",
        "app:v1",
        "--from",
        &format!("{REGISTRY}/{source}:v1"),
        "--insecure",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{REGISTRY}/{source}@{digest}")),
        "{}",
        text(&out)
    );
    // Again, with nothing new: it still answers (the tag's generation asks for a fresh import).
    let out = slip(&["-n", &n, "import-image", "app:v1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    // A repository the registry does not have: the registry's answer, and a failure exit.
    let out = slip(&[
        "-n",
        &n,
        "import-image",
        "app:missing",
        "--from",
        &format!("{REGISTRY}/{n}/missing:v1"),
        "--insecure",
    ])
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("NotFound") && text(&out).contains("manifest unknown"),
        "{}",
        text(&out)
    );

    // slip set triggers deployment/web: the annotation, which the operator follows.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "placeholder:0"}]}}}
    });
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &n);
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment).unwrap(),
        )
        .await
        .unwrap();
    fails_with(
        &[
            "-n",
            &n,
            "set",
            "triggers",
            "deployment/web",
            "--from-image",
            "app:stable",
            "-c",
            "nope",
        ],
        "has no container \"nope\"",
    )
    .await;
    // A dry run first: reported, the Deployment unchanged.
    let out = slip(&[
        "-n",
        &n,
        "set",
        "triggers",
        "deployment/web",
        "--from-image",
        "app:stable",
        "-c",
        "web",
        "--dry-run=server",
    ])
    .await;
    assert!(
        out.status.success() && text(&out).contains("deployments/web triggers updated (server dry run)"),
        "{}",
        text(&out)
    );
    let annotations = deployments.get("web").await.unwrap().metadata.annotations;
    assert!(
        !annotations
            .unwrap_or_default()
            .contains_key("image.openshift.io/triggers"),
        "a dry run set the trigger"
    );
    fails_with(
        &["-n", &n, "set", "triggers", "deployment/web", "--dry-run"],
        "--dry-run goes with --from-image",
    )
    .await;
    let out = slip(&[
        "-n",
        &n,
        "set",
        "triggers",
        "deployment/web",
        "--from-image",
        "app:stable",
        "-c",
        "web",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let expected = format!("{REGISTRY}/{source}@{digest}");
    eventually(
        "the deployment to follow app:stable",
        Duration::from_secs(60),
        || async {
            let d = deployments.get("web").await.ok()?;
            (d.spec?.template.spec?.containers[0].image.as_deref() == Some(expected.as_str())).then_some(())
        },
    )
    .await;
    let out = slip(&["-n", &n, "set", "triggers", "deployment/web"]).await;
    assert!(
        out.status.success() && text(&out).contains("app:stable"),
        "{}",
        text(&out)
    );

    // slip set triggers dc/web: spec.triggers, ConfigChange kept, --manual means not automatic.
    let dc = json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"app": "web"}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "placeholder:0"}]}}}
    });
    let dcs: Api<DeploymentConfig> = Api::namespaced(client.clone(), &n);
    dcs.create(&PostParams::default(), &serde_json::from_value(dc).unwrap())
        .await
        .unwrap();
    let out = slip(&[
        "-n",
        &n,
        "set",
        "triggers",
        "dc/web",
        "--from-image",
        "app:latest",
        "-c",
        "web",
        "--manual",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let triggers = serde_json::to_value(dcs.get("web").await.unwrap().spec.triggers).unwrap();
    assert_eq!(triggers[0]["type"], "ConfigChange");
    assert_eq!(triggers[1]["imageChangeParams"]["from"]["name"], "app:latest");
    assert_eq!(triggers[1]["imageChangeParams"]["containerNames"], json!(["web"]));
    assert!(
        triggers[1]["imageChangeParams"]
            .get("automatic")
            .is_none_or(|a| a == false)
    );
    let out = slip(&[
        "-n",
        &n,
        "set",
        "triggers",
        "dc/web",
        "--from-image",
        "app:latest",
        "-c",
        "web",
        "--auto",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let triggers = serde_json::to_value(dcs.get("web").await.unwrap().spec.triggers).unwrap();
    assert_eq!(
        triggers.as_array().unwrap().len(),
        2,
        "the same tag's trigger is replaced"
    );
    assert_eq!(triggers[1]["imageChangeParams"]["automatic"], true);

    controller.abort();
    ns.delete().await;
}
