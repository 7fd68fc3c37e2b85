//! ImageStreams and workload image triggers against the dev cluster and its registry: images are
//! pushed by the tests (tiny random OCI images), imports go to the real registry, and the real
//! kube-controller-manager turns a changed Deployment into a new ReplicaSet. Each test runs its
//! own image controller, limited to the test's namespace.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod deploy_support;
mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use serde_json::{Value, json};
use slipway_crds::ImageStream;
use slipway_crds::common::Time;
use slipway_crds::image::{ImportMode, TagEvent, TagEventCondition};
use slipway_operator::image::{Settings, registry};
use slipway_testkit::*;
use support::{Controller, Fixture};

const REGISTRY: &str = "127.0.0.1:15000";

/// Pushes a tiny image with random content to `REGISTRY/<repository>:<tag>`; returns its digest.
async fn push_image(repository: &str, tag: &str) -> String {
    push_image_to(REGISTRY, repository, tag, &RegistryAuth::Anonymous).await
}

/// Pushes a tiny image with random content to `<registry>/<repository>:<tag>` (plain HTTP) as
/// `auth`; returns its digest.
async fn push_image_to(registry: &str, repository: &str, tag: &str, auth: &RegistryAuth) -> String {
    registry::ensure_crypto_provider();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let reference: oci_client::Reference = format!("{registry}/{repository}:{tag}").parse().unwrap();
    let nonce = unique_name("layer");
    let layer = ImageLayer::oci_v1(nonce.clone().into_bytes(), None);
    let config = Config::oci_v1(
        serde_json::to_vec(
            &json!({"architecture": "amd64", "os": "linux", "config": {"Labels": {"nonce": nonce}}}),
        )
        .unwrap(),
        None,
    );
    client
        .push(&reference, &[layer], config, auth, None)
        .await
        .unwrap();
    registry::resolve_with(
        &format!("{registry}/{repository}:{tag}"),
        true,
        ImportMode::Legacy,
        auth,
    )
    .await
    .unwrap()
    .digest
}

/// The image controller of one namespace, importing scheduled tags every second.
async fn image_controller(namespace: &str) -> Controller {
    let settings = Settings {
        registry: REGISTRY.into(),
        import_interval: Duration::from_secs(1),
        namespace: Some(namespace.to_string()),
        label_selector: None,
    };
    Controller::start(|ctx| slipway_operator::image::run(ctx, settings)).await
}

/// The image stream controller's name in the metrics.
const STREAMS: &str = "image";

/// A stream `name` whose `latest` follows `REGISTRY/<source>:v1`, imported on a schedule.
fn scheduled_stream(name: &str, source: &str) -> ImageStream {
    serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
        "metadata": {"name": name},
        "spec": {"tags": [{
            "name": "latest",
            "from": {"kind": "DockerImage", "name": format!("{REGISTRY}/{source}:v1")},
            "importPolicy": {"scheduled": true, "insecure": true}
        }]}
    }))
    .unwrap()
}

struct Run {
    client: Client,
    ns: TestNamespace,
    controller: Controller,
}

impl Run {
    async fn start(prefix: &str) -> Self {
        let Fixture { client, ns } = Fixture::start(prefix).await;
        let controller = image_controller(&ns.name).await;
        Self {
            client,
            ns,
            controller,
        }
    }

    async fn stop(mut self) {
        self.controller.stop().await;
        self.ns.delete().await;
    }

    fn streams(&self) -> Api<ImageStream> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    async fn create_stream(&self, name: &str, tags: Value) {
        let stream = json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
            "metadata": {"name": name}, "spec": {"tags": tags}
        });
        self.streams()
            .create(&PostParams::default(), &serde_json::from_value(stream).unwrap())
            .await
            .unwrap();
    }

    /// Waits until `stream`'s `tag` has the image `digest` (by digest).
    async fn tag_is(&self, stream: &str, tag: &str, digest: &str) -> ImageStream {
        let api = self.streams();
        eventually(
            &format!("{stream}:{tag} to be {digest}"),
            Duration::from_secs(60),
            || async {
                let s = api.get(stream).await.ok()?;
                (s.status.as_ref()?.latest(tag)?.image == digest).then_some(s)
            },
        )
        .await
    }

    async fn create_deployment(&self, name: &str, annotation: (&str, &str)) {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "annotations": {annotation.0: annotation.1}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [
                        {"name": "sidecar", "image": "sidecar:1"},
                        {"name": "web", "image": "placeholder:0"},
                    ]}
                }
            }
        });
        self.deployments()
            .create(
                &PostParams::default(),
                &serde_json::from_value(deployment).unwrap(),
            )
            .await
            .unwrap();
    }

    /// Waits until the Deployment's `web` container is `image` and a ReplicaSet of it runs that
    /// image (the controller-manager made it); returns the ReplicaSet's name.
    async fn rolled_to(&self, deployment: &str, image: &str) -> String {
        let deployments = self.deployments();
        eventually(
            &format!("deployment {deployment} to have image {image}"),
            Duration::from_secs(60),
            || async {
                let d = deployments.get(deployment).await.ok()?;
                let containers = d.spec?.template.spec?.containers;
                let web = containers.iter().find(|c| c.name == "web")?;
                let sidecar = containers.iter().find(|c| c.name == "sidecar")?;
                assert_eq!(
                    sidecar.image.as_deref(),
                    Some("sidecar:1"),
                    "only web's image is set"
                );
                (web.image.as_deref() == Some(image)).then_some(())
            },
        )
        .await;
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.ns.name);
        eventually(
            &format!("a ReplicaSet of {deployment} with image {image}"),
            Duration::from_secs(60),
            || async {
                let list = sets
                    .list(&ListParams::default().labels(&format!("app={deployment}")))
                    .await
                    .ok()?;
                list.items.into_iter().find_map(|rs| {
                    let spec = rs.spec.as_ref()?.template.as_ref()?.spec.as_ref()?;
                    spec.containers
                        .iter()
                        .any(|c| c.image.as_deref() == Some(image))
                        .then(|| rs.name_any())
                })
            },
        )
        .await
    }

    async fn replica_sets(&self, deployment: &str) -> usize {
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.ns.name);
        sets.list(&ListParams::default().labels(&format!("app={deployment}")))
            .await
            .unwrap()
            .items
            .len()
    }

    /// Waits for an Event with `reason` about `name`; returns its note.
    async fn event(&self, name: &str, reason: &str) -> String {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns.name);
        eventually(
            &format!("an event {reason} about {name}"),
            Duration::from_secs(60),
            || async {
                events
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .find_map(|e| {
                        (e.reason.as_deref() == Some(reason)
                            && e.regarding.as_ref()?.name.as_deref() == Some(name))
                        .then(|| e.note.unwrap_or_default())
                    })
            },
        )
        .await
    }
}

fn trigger(stream_tag: &str, container: &str) -> String {
    json!([{
        "from": {"kind": "ImageStreamTag", "name": stream_tag},
        "fieldPath": format!("spec.template.spec.containers[?(@.name==\"{container}\")].image"),
        "paused": false
    }])
    .to_string()
}

#[tokio::test]
async fn a_new_digest_under_a_scheduled_tag_rolls_a_deployment() {
    let run = Run::start("img-sched").await;
    let ns = run.ns.name.clone();
    let source = format!("{ns}/upstream");
    let first = push_image(&source, "v1").await;
    run.streams()
        .create(&PostParams::default(), &scheduled_stream("app", &source))
        .await
        .unwrap();
    let stream = run.tag_is("app", "latest", &first).await;
    let status = stream.status.unwrap();
    assert_eq!(status.docker_image_repository, format!("{REGISTRY}/{ns}/app"));
    let first_ref = format!("{REGISTRY}/{source}@{first}");
    assert_eq!(status.latest("latest").unwrap().docker_image_reference, first_ref);

    run.create_deployment(
        "web",
        ("image.openshift.io/triggers", &trigger("app:latest", "web")),
    )
    .await;
    let first_set = run.rolled_to("web", &first_ref).await;
    let sets_before = run.replica_sets("web").await;

    // A new image under the same tag: the scheduled import sees the new digest.
    let second = push_image(&source, "v1").await;
    assert_ne!(first, second);
    let stream = run.tag_is("app", "latest", &second).await;
    let items = &stream.status.unwrap().tags[0].items;
    assert_eq!(items.len(), 2, "one new item per new digest: {items:?}");
    let second_set = run
        .rolled_to("web", &format!("{REGISTRY}/{source}@{second}"))
        .await;
    assert_ne!(
        first_set, second_set,
        "the controller-manager made a new ReplicaSet"
    );
    assert_eq!(run.replica_sets("web").await, sets_before + 1);
    let note = run.event("app", "TagUpdated").await;
    assert!(note.contains("latest"), "{note}");

    // Unchanged digests record nothing new: the stream is reconciled again (each reconcile is
    // due an import, a second apart) and its resourceVersion stays.
    let before = run.streams().get("app").await.unwrap().resource_version();
    let reconciled = run.controller.reconciles(STREAMS);
    run.controller.reconciled(STREAMS, reconciled, 3).await;
    let after = run.streams().get("app").await.unwrap().resource_version();
    assert_eq!(
        before, after,
        "a scheduled import of the same digest writes nothing"
    );
    run.stop().await;
}

#[tokio::test]
async fn a_new_digest_under_a_scheduled_tag_rolls_a_deployment_config() {
    // The deploy controller (deploy_support) and the image controller, in one namespace.
    let env = deploy_support::Env::start("img-sched-dc").await;
    let mut images = image_controller(&env.ns.name).await;
    let source = format!("{}/upstream", env.ns.name);
    let first = push_image(&source, "v1").await;
    Api::<ImageStream>::namespaced(env.client.clone(), &env.ns.name)
        .create(&PostParams::default(), &scheduled_stream("app", &source))
        .await
        .unwrap();
    let triggers = deploy_support::config_and_image_triggers("app:latest");
    env.create_dc(
        "web",
        1,
        json!({"type": "Rolling"}),
        json!({"triggers": triggers}),
    )
    .await;
    env.wait_complete("web", 1, 1).await;
    assert_eq!(
        env.image_of("web-1").await,
        format!("{REGISTRY}/{source}@{first}")
    );

    // A new image pushed under the same tag: the scheduled import records the new digest, and
    // the DeploymentConfig rolls a new version with it.
    let second = push_image(&source, "v1").await;
    assert_ne!(first, second);
    let second_ref = format!("{REGISTRY}/{source}@{second}");
    env.wait_complete("web", 2, 1).await;
    assert_eq!(env.image_of("web-2").await, second_ref);
    assert_eq!(env.replicas("web-1").await, 0, "the old version scaled down");
    let dc = env.dc("web").await;
    let cause = &dc.status.unwrap().details.unwrap().causes[0];
    assert_eq!(cause.type_, "ImageChange");
    assert_eq!(cause.image_trigger.as_ref().unwrap().from.name, "app:latest");
    let params = dc.spec.triggers.unwrap()[1].image_change_params.clone().unwrap();
    assert_eq!(params.last_triggered_image.as_deref(), Some(second_ref.as_str()));

    // Imports of the unchanged digest (every second) roll nothing more: the stream is reconciled
    // again, and the deploy controller has seen the config as it is.
    let reconciled = images.reconciles(STREAMS);
    images.reconciled(STREAMS, reconciled, 3).await;
    env.observed("web", "after the imports", |_| true).await;
    assert!(
        env.rs_opt("web-3").await.is_none(),
        "no version without a new digest"
    );
    images.stop().await;
    env.stop().await;
}

#[tokio::test]
async fn a_tag_recorded_by_a_build_rolls_deployments_and_followers() {
    let run = Run::start("img-build").await;
    // `built` has no spec tags: builds push to it. `prod:live` follows `built:latest`.
    run.create_stream("built", json!([])).await;
    run.create_stream(
        "prod",
        json!([{"name": "live", "from": {"kind": "ImageStreamTag", "name": "built:latest"}}]),
    )
    .await;
    run.create_deployment(
        "direct",
        ("slipway.dev/triggers", &trigger("built:latest", "web")),
    )
    .await;
    run.create_deployment(
        "follower",
        ("image.openshift.io/triggers", &trigger("prod:live", "web")),
    )
    .await;
    let cron = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "annotations": {"image.openshift.io/triggers": json!([{
            "from": {"kind": "ImageStreamTag", "name": "built:latest"},
            "fieldPath": "spec.jobTemplate.spec.template.spec.containers[0].image"
        }]).to_string()}},
        "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "job", "image": "placeholder:0"}]
        }}}}}
    });
    let cronjobs: Api<CronJob> = Api::namespaced(run.client.clone(), &run.ns.name);
    cronjobs
        .create(&PostParams::default(), &serde_json::from_value(cron).unwrap())
        .await
        .unwrap();
    // A StatefulSet and a DaemonSet follow the same tag (by index and by name).
    let pod_template = json!({"metadata": {"labels": {"app": "kept"}},
        "spec": {"containers": [{"name": "web", "image": "placeholder:0"}]}});
    let annotation = json!({"slipway.dev/triggers": trigger("built:latest", "web")});
    let sets = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "kept", "annotations": annotation},
        "spec": {"serviceName": "kept", "replicas": 0, "selector": {"matchLabels": {"app": "kept"}},
                 "template": pod_template}
    });
    let statefulsets: Api<StatefulSet> = Api::namespaced(run.client.clone(), &run.ns.name);
    statefulsets
        .create(&PostParams::default(), &serde_json::from_value(sets).unwrap())
        .await
        .unwrap();
    let daemons = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kept", "annotations": {"image.openshift.io/triggers": json!([{
            "from": {"kind": "ImageStreamTag", "name": "built:latest"},
            "fieldPath": "spec.template.spec.containers[0].image"}]).to_string()}},
        "spec": {"selector": {"matchLabels": {"app": "kept"}}, "template": pod_template}
    });
    let daemonsets: Api<DaemonSet> = Api::namespaced(run.client.clone(), &run.ns.name);
    daemonsets
        .create(&PostParams::default(), &serde_json::from_value(daemons).unwrap())
        .await
        .unwrap();

    for n in 1..=2 {
        // What the Build controller does after a push: record a tag event in status.
        let digest = format!("sha256:{}", format!("{n:x}").repeat(64).get(..64).unwrap());
        let reference = format!("{REGISTRY}/{}/built@{digest}", run.ns.name);
        let mut status = run
            .streams()
            .get("built")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        assert!(status.record(
            "latest",
            TagEvent {
                created: Time(Timestamp::now()),
                docker_image_reference: reference.clone(),
                image: digest.clone(),
                generation: 1,
            }
        ));
        run.streams()
            .patch_status(
                "built",
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
            .unwrap();
        run.rolled_to("direct", &reference).await;
        run.tag_is("prod", "live", &digest).await;
        run.rolled_to("follower", &reference).await;
        eventually("the CronJob's image", Duration::from_secs(60), || async {
            let c = cronjobs.get("nightly").await.ok()?;
            let image = c.spec?.job_template.spec?.template.spec?.containers[0]
                .image
                .clone()?;
            (image == reference).then_some(())
        })
        .await;
        eventually(
            "the StatefulSet's and DaemonSet's image",
            Duration::from_secs(60),
            || async {
                let s = statefulsets.get("kept").await.ok()?;
                let d = daemonsets.get("kept").await.ok()?;
                let s_image = s.spec?.template.spec?.containers[0].image.clone()?;
                let d_image = d.spec?.template.spec?.containers[0].image.clone()?;
                (s_image == reference && d_image == reference).then_some(())
            },
        )
        .await;
    }
    // The placeholder's ReplicaSet and one per recorded image.
    assert_eq!(run.replica_sets("direct").await, 3);
    assert_eq!(run.replica_sets("follower").await, 3);
    run.stop().await;
}

#[tokio::test]
async fn failed_imports_say_what_the_registry_answered() {
    let run = Run::start("img-fail").await;
    let ns = run.ns.name.clone();
    let closed = free_loopback_addr();
    run.create_stream(
        "broken",
        json!([
            {"name": "unknown", "from": {"kind": "DockerImage", "name": format!("{REGISTRY}/{ns}/nothing-here:v1")},
             "importPolicy": {"insecure": true}},
            {"name": "unreachable", "from": {"kind": "DockerImage", "name": format!("{closed}/x/y:v1")},
             "importPolicy": {"insecure": true}},
        ]),
    )
    .await;
    let api = run.streams();
    let conditions = eventually(
        "both tags to report their failures",
        Duration::from_secs(60),
        || async {
            let status = api.get("broken").await.ok()?.status?;
            let condition = |tag: &str| {
                status
                    .tags
                    .iter()
                    .find(|t| t.tag == tag)?
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "ImportSuccess")
                    .cloned()
            };
            Some((condition("unknown")?, condition("unreachable")?))
        },
    )
    .await;
    let (unknown, unreachable) = conditions;
    assert_eq!(unknown.status, "False");
    assert_eq!(unknown.reason.as_deref(), Some("NotFound"), "{unknown:?}");
    let message = unknown.message.unwrap();
    assert!(message.contains("nothing-here"), "{message}");
    assert_eq!(unreachable.status, "False");
    assert_eq!(
        unreachable.reason.as_deref(),
        Some("Unreachable"),
        "{unreachable:?}"
    );
    let message = unreachable.message.unwrap();
    assert!(message.to_lowercase().contains("connect"), "{message}");
    let note = run.event("broken", "ImportFailed").await;
    assert!(note.contains("unknown") || note.contains("unreachable"), "{note}");

    // Pushing the missing image heals the tag: the retry imports it and the condition turns True.
    let digest = push_image(&format!("{ns}/nothing-here"), "v1").await;
    let healed = run.tag_is("broken", "unknown", &digest).await;
    let tag = healed
        .status
        .unwrap()
        .tags
        .into_iter()
        .find(|t| t.tag == "unknown")
        .unwrap();
    assert_eq!(tag.conditions.len(), 1, "{:?}", tag.conditions);
    assert_eq!(tag.conditions[0].status, "True", "{:?}", tag.conditions);
    run.stop().await;
}

/// The ImportSuccess condition of `stream`'s `tag` once it is False with a message containing
/// `expected`.
async fn refused(run: &Run, stream: &str, tag: &str, expected: &str) -> TagEventCondition {
    let api = run.streams();
    eventually(
        &format!("{stream}:{tag} to fail saying {expected:?}"),
        Duration::from_secs(60),
        || async {
            let status = api.get(stream).await.ok()?.status?;
            let condition = status
                .tags
                .iter()
                .find(|t| t.tag == tag)?
                .conditions
                .iter()
                .find(|c| c.type_ == "ImportSuccess")?
                .clone();
            (condition.status == "False" && condition.message.as_deref()?.contains(expected))
                .then_some(condition)
        },
    )
    .await
}

/// Sets `stream`'s tag `name` to generation `generation` (as `slip import-image` does): a fresh
/// import.
async fn import_again(run: &Run, stream: &str, name: &str, from: &str, generation: i64) {
    let patch = json!({"spec": {"tags": [{
        "name": name, "generation": generation,
        "from": {"kind": "DockerImage", "name": from}, "importPolicy": {"insecure": true}
    }]}});
    run.streams()
        .patch(stream, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_private_registry_import_uses_the_projects_secret_and_says_why_without_it() {
    let run = Run::start("img-private").await;
    let private = slipway_testkit::registry::AuthRegistry::start();
    let owner = RegistryAuth::Basic(private.user.clone(), private.password.clone());
    let digest = push_image_to(&private.addr, "team/app", "v1", &owner).await;
    let from = format!("{}/team/app:v1", private.addr);
    run.create_stream(
        "private",
        json!([{"name": "v1", "from": {"kind": "DockerImage", "name": from}, "importPolicy": {"insecure": true}}]),
    )
    .await;

    // No Secret: refused, and the message says what to create.
    let condition = refused(&run, "private", "v1", "no docker-config Secret").await;
    assert_eq!(condition.reason.as_deref(), Some("Unauthorized"), "{condition:?}");
    let message = condition.message.unwrap();
    assert!(
        message.contains(&format!("--docker-server={}", private.addr)),
        "{message}"
    );

    // A Secret for another registry is not sent here; a wrong password is refused by name.
    let secrets: Api<Secret> = Api::namespaced(run.client.clone(), &run.ns.name);
    let secret = |name: &str, config: String| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": config}
        }))
        .unwrap()
    };
    secrets
        .create(
            &PostParams::default(),
            &secret(
                "elsewhere",
                slipway_testkit::registry::docker_config("registry.example:5000", "u", &private.password),
            ),
        )
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &secret("pull", private.docker_config(Some("wrong"))),
        )
        .await
        .unwrap();
    import_again(&run, "private", "v1", &from, 2).await;
    let condition = refused(&run, "private", "v1", "in Secret pull").await;
    assert_eq!(condition.reason.as_deref(), Some("Unauthorized"), "{condition:?}");
    assert!(!condition.message.unwrap().contains("wrong"));

    // The right password: imported by digest, the condition True again.
    secrets
        .replace(
            "pull",
            &PostParams::default(),
            &secret("pull", private.docker_config(None)),
        )
        .await
        .unwrap();
    import_again(&run, "private", "v1", &from, 3).await;
    let imported = run.tag_is("private", "v1", &digest).await;
    let tag = imported
        .status
        .unwrap()
        .tags
        .into_iter()
        .find(|t| t.tag == "v1")
        .unwrap();
    assert_eq!(
        tag.items[0].docker_image_reference,
        format!("{}/team/app@{digest}", private.addr)
    );
    assert!(
        tag.conditions.iter().all(|c| c.status == "True"),
        "{:?}",
        tag.conditions
    );
    run.stop().await;
}

/// Pushes one tiny image per `(os/architecture)` (each with its own content) and an OCI image
/// index of them, in that order, as `REGISTRY/<repository>:v1`; returns the index's digest and
/// the images' digests, as the registry reports them.
async fn push_index(repository: &str, platforms: &[&str]) -> (String, Vec<String>) {
    registry::ensure_crypto_provider();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for platform in platforms {
        let (os, architecture) = platform.split_once('/').unwrap();
        let tag = architecture.to_string();
        let reference: oci_client::Reference = format!("{REGISTRY}/{repository}:{tag}").parse().unwrap();
        let layer = ImageLayer::oci_v1(format!("built for {platform}").into_bytes(), None);
        let config = Config::oci_v1(
            serde_json::to_vec(&json!({"architecture": architecture, "os": os})).unwrap(),
            None,
        );
        client
            .push(&reference, &[layer], config, &RegistryAuth::Anonymous, None)
            .await
            .unwrap();
        let digest = client
            .fetch_manifest_digest(&reference, &RegistryAuth::Anonymous)
            .await
            .unwrap();
        let (bytes, _) = client
            .pull_manifest_raw(
                &reference,
                &RegistryAuth::Anonymous,
                &["application/vnd.oci.image.manifest.v1+json"],
            )
            .await
            .unwrap();
        entries.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": bytes.len(),
            "platform": {"os": os, "architecture": architecture}}));
        digests.push(digest);
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries});
    let reference: oci_client::Reference = format!("{REGISTRY}/{repository}:v1").parse().unwrap();
    client
        .push_manifest_raw(
            &reference,
            serde_json::to_vec(&index).unwrap(),
            "application/vnd.oci.image.index.v1+json".parse().unwrap(),
        )
        .await
        .unwrap();
    let index_digest = client
        .fetch_manifest_digest(&reference, &RegistryAuth::Anonymous)
        .await
        .unwrap();
    (index_digest, digests)
}

#[tokio::test]
async fn an_image_index_imports_as_the_platforms_image_or_preserved_whole() {
    let run = Run::start("img-index").await;
    let ns = run.ns.name.clone();
    // arm64 first: Legacy chooses by platform, not by position.
    let (multi, images) = push_index(&format!("{ns}/multi"), &["linux/arm64", "linux/amd64"]).await;
    let (foreign, _) = push_index(&format!("{ns}/foreign"), &["linux/arm64", "linux/s390x"]).await;
    let from = |repo: &str| json!({"kind": "DockerImage", "name": format!("{REGISTRY}/{ns}/{repo}:v1")});
    run.create_stream(
        "app",
        json!([
            {"name": "legacy", "from": from("multi"), "importPolicy": {"insecure": true}},
            {"name": "explicit", "from": from("multi"), "importPolicy": {"insecure": true, "importMode": "Legacy"}},
            {"name": "preserved", "from": from("multi"), "importPolicy": {"insecure": true, "importMode": "PreserveOriginal"}},
            {"name": "foreign", "from": from("foreign"), "importPolicy": {"insecure": true}},
            {"name": "foreign-preserved", "from": from("foreign"), "importPolicy": {"insecure": true, "importMode": "PreserveOriginal"}},
        ]),
    )
    .await;
    run.tag_is("app", "legacy", &images[1]).await;
    run.tag_is("app", "explicit", &images[1]).await;
    run.tag_is("app", "preserved", &multi).await;
    let stream = run.tag_is("app", "foreign-preserved", &foreign).await;
    let status = stream.status.unwrap();
    let latest = status.latest("legacy").unwrap();
    assert_eq!(
        latest.docker_image_reference,
        format!("{REGISTRY}/{ns}/multi@{}", images[1])
    );
    // An index without the platform: not imported, and the condition names what it has.
    let condition = eventually("the foreign tag to fail", Duration::from_secs(60), || async {
        let status = run.streams().get("app").await.ok()?.status?;
        status
            .tags
            .iter()
            .find(|t| t.tag == "foreign")?
            .conditions
            .iter()
            .find(|c| c.type_ == "ImportSuccess" && c.status == "False")
            .cloned()
    })
    .await;
    assert_eq!(
        condition.reason.as_deref(),
        Some("NoMatchingPlatform"),
        "{condition:?}"
    );
    let message = condition.message.unwrap_or_default();
    assert!(
        message.contains("the image index has no linux/amd64 image; it has linux/arm64, linux/s390x"),
        "{message}"
    );
    // Changing the mode imports again: the foreign tag, preserved, gets the index.
    let streams = run.streams();
    let mut current = streams.get("app").await.unwrap();
    let tag = current
        .spec
        .tags
        .iter_mut()
        .find(|t| t.name == "foreign")
        .unwrap();
    tag.import_policy.as_mut().unwrap().import_mode = Some(slipway_crds::image::ImportMode::PreserveOriginal);
    streams
        .replace("app", &PostParams::default(), &current)
        .await
        .unwrap();
    run.tag_is("app", "foreign", &foreign).await;
    // An import mode OpenShift does not have is refused by the API server.
    let bad: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream", "metadata": {"name": "bad"},
        "spec": {"tags": [{"name": "x", "from": from("multi"), "importPolicy": {"importMode": "Everything"}}]}
    }))
    .unwrap();
    let refused = dynamic_api(&run.client, "ImageStream", &ns)
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("importMode") && refused.contains("PreserveOriginal"),
        "{refused}"
    );
    run.stop().await;
}

#[tokio::test]
async fn malformed_trigger_annotations_give_an_event_and_stop_nothing() {
    let run = Run::start("img-bad").await;
    run.create_stream("built", json!([])).await;
    run.create_deployment("garbage", ("image.openshift.io/triggers", "not json at all"))
        .await;
    run.create_deployment(
        "elsewhere",
        (
            "slipway.dev/triggers",
            &json!([{"from": {"kind": "ImageStreamTag", "name": "built:latest"},
                     "fieldPath": "spec.template.spec.containers[?(@.name==\"nope\")].image"}])
            .to_string(),
        ),
    )
    .await;
    run.create_deployment("good", ("slipway.dev/triggers", &trigger("built:latest", "web")))
        .await;
    let note = run.event("garbage", "InvalidImageTrigger").await;
    assert!(
        note.contains("image.openshift.io/triggers") && note.contains("JSON"),
        "{note}"
    );

    let reference = format!("{REGISTRY}/{}/built@sha256:{}", run.ns.name, "c".repeat(64));
    let mut status = slipway_crds::ImageStreamStatus::default();
    status.record(
        "latest",
        TagEvent {
            created: Time(Timestamp::now()),
            docker_image_reference: reference.clone(),
            image: format!("sha256:{}", "c".repeat(64)),
            generation: 1,
        },
    );
    run.streams()
        .patch_status(
            "built",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
        .unwrap();
    run.rolled_to("good", &reference).await;
    let note = run.event("elsewhere", "InvalidImageTrigger").await;
    assert!(note.contains("\"nope\""), "{note}");
    // The broken ones are left as they were.
    for name in ["garbage", "elsewhere"] {
        let d = run.deployments().get(name).await.unwrap();
        let image = d.spec.unwrap().template.spec.unwrap().containers[1].image.clone();
        assert_eq!(image.as_deref(), Some("placeholder:0"));
    }
    run.stop().await;
}
