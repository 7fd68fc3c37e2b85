//! What the deploy tests share: a namespace with its own deploy controller, DeploymentConfigs
//! made from a small template, waits on versions, a watch over pods that records the bounds of a
//! rollout, and a decider of hook pods' outcomes (through kwok's annotations).
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use slipway_crds::apps::labels;
use slipway_crds::image::{ImageStream, TagEvent};
use slipway_crds::{DeploymentConfig, common::Time};
use slipway_testkit::*;

use crate::support::{Controller, Fixture};

pub const WAIT: Duration = Duration::from_secs(120);

pub struct Env {
    pub client: Client,
    pub ns: TestNamespace,
    /// The deploy controller of the namespace (its metrics say what it has reconciled).
    pub controller: Controller,
}

/// The deploy controller's name in the metrics.
pub const DEPLOY: &str = "deploy";

impl Env {
    pub async fn start(prefix: &str) -> Self {
        let Fixture { client, ns } = Fixture::start(prefix).await;
        let controller = Self::controller(&ns.name).await;
        Self {
            client,
            ns,
            controller,
        }
    }

    /// A deploy controller limited to `namespace`, on a Context of its own.
    pub async fn controller(namespace: &str) -> Controller {
        let namespace = namespace.to_string();
        Controller::start(|ctx| async move { slipway_operator::deploy::run(ctx, Some(&namespace)).await })
            .await
    }

    /// Stops the controller and starts a new one, as a restarted operator.
    pub async fn restart(mut self) -> Self {
        self.controller.stop().await;
        self.controller = Self::controller(&self.ns.name).await;
        self
    }

    pub async fn stop(mut self) {
        self.controller.stop().await;
        self.ns.delete().await;
    }

    pub fn dcs(&self) -> Api<DeploymentConfig> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    pub fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    pub async fn create_dc(
        &self,
        name: &str,
        replicas: i32,
        strategy: serde_json::Value,
        extra: serde_json::Value,
    ) {
        let mut spec = json!({
            "replicas": replicas,
            "strategy": strategy,
            "selector": {"app": name},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container("1")]}
            }
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let dc = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig",
                        "metadata": {"name": name}, "spec": spec});
        self.dcs()
            .create(&PostParams::default(), &serde_json::from_value(dc).unwrap())
            .await
            .unwrap();
    }

    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) {
        self.dcs()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .unwrap();
    }

    /// A config change: the container's environment (keeping its image).
    pub async fn set_env(&self, name: &str, value: &str) {
        let dc = self.dc(name).await;
        let mut template = dc.spec.template.unwrap();
        let pod = template.spec.as_mut().unwrap();
        let image = pod.containers[0].image.clone();
        let mut c: k8s_openapi::api::core::v1::Container = serde_json::from_value(container(value)).unwrap();
        c.image = image;
        pod.containers[0] = c;
        self.patch_spec(name, json!({"template": template})).await;
    }

    pub async fn dc(&self, name: &str) -> DeploymentConfig {
        self.dcs().get(name).await.unwrap()
    }

    pub async fn rs(&self, name: &str) -> ReplicaSet {
        self.rs_api().get(name).await.unwrap()
    }

    pub async fn rs_opt(&self, name: &str) -> Option<ReplicaSet> {
        self.rs_api().get_opt(name).await.unwrap()
    }

    pub async fn replicas(&self, name: &str) -> i32 {
        self.rs(name).await.spec.unwrap().replicas.unwrap()
    }

    pub async fn image_of(&self, name: &str) -> String {
        let rs = self.rs(name).await;
        rs.spec.unwrap().template.unwrap().spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    }

    pub async fn wait_phase(&self, rs: &str, phase: &str) {
        let api = self.rs_api();
        eventually(&format!("{rs} to be {phase}"), WAIT, || async {
            let rs = api.get_opt(rs).await.ok()??;
            (rs.annotations().get(labels::DEPLOYMENT_PHASE)? == phase).then_some(())
        })
        .await;
    }

    pub async fn wait_available(&self, rs: &str, n: i32) {
        let api = self.rs_api();
        eventually(&format!("{rs} to have {n} available"), WAIT, || async {
            let rs = api.get_opt(rs).await.ok()??;
            let replicas = rs.spec?.replicas?;
            let available = rs.status?.available_replicas.unwrap_or(0);
            (replicas == n && available == n).then_some(())
        })
        .await;
    }

    pub async fn wait_replicas(&self, rs: &str, n: i32) {
        let api = self.rs_api();
        eventually(&format!("{rs} to have {n} replicas"), WAIT, || async {
            let rs = api.get_opt(rs).await.ok()??;
            (rs.spec?.replicas? == n && rs.status?.replicas == n).then_some(())
        })
        .await;
    }

    /// Version `n` of `dc` rolled out with `replicas` available.
    pub async fn wait_complete(&self, dc: &str, n: i64, replicas: i32) {
        let name = format!("{dc}-{n}");
        self.wait_phase(&name, "Complete").await;
        self.wait_available(&name, replicas).await;
    }

    /// Waits, on a watch, until the controller has written the status of `dc`'s current
    /// generation (`status.observedGeneration == metadata.generation`, which every status it
    /// writes carries), and `done` holds for it; returns it.
    pub async fn observed(
        &self,
        dc: &str,
        what: &str,
        done: impl Fn(&DeploymentConfig) -> bool,
    ) -> DeploymentConfig {
        watch_until(
            &self.dcs(),
            dc,
            &format!("the deploy controller to observe {dc} ({what})"),
            WAIT,
            |d: &DeploymentConfig| {
                d.status
                    .as_ref()
                    .is_some_and(|s| Some(s.observed_generation) == d.metadata.generation)
                    && done(d)
            },
        )
        .await
    }

    /// Waits until `dc` is at rest after a complete rollout: its current generation observed,
    /// all its `spec.replicas` updated and available, no old pod left, and the conditions of a
    /// version rolled out. The controller has nothing left to write about it.
    pub async fn at_rest(&self, dc: &str) -> DeploymentConfig {
        self.observed(dc, "at rest after its rollout", |d| {
            let (Some(status), wanted) = (d.status.as_ref(), d.spec.replicas) else {
                return false;
            };
            let condition = |type_: &str| {
                status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == type_)
                    .map(|c| (c.status.as_str(), c.reason.as_str()))
            };
            status.replicas == wanted
                && status.updated_replicas == wanted
                && status.available_replicas == wanted
                && status.unavailable_replicas == 0
                && condition("Available") == Some(("True", "MinimumReplicasAvailable"))
                && condition("Progressing") == Some(("True", "NewReplicationControllerAvailable"))
        })
        .await
    }

    pub async fn create_image_stream(&self, name: &str) {
        let is = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
                        "metadata": {"name": name}, "spec": {}});
        Api::<ImageStream>::namespaced(self.client.clone(), &self.ns.name)
            .create(&PostParams::default(), &serde_json::from_value(is).unwrap())
            .await
            .unwrap();
    }

    /// What a build or an import does: a new image recorded on the tag (status written here).
    pub async fn push_tag(&self, stream: &str, tag: &str, reference: &str) {
        let api: Api<ImageStream> = Api::namespaced(self.client.clone(), &self.ns.name);
        let mut is = api.get_status(stream).await.unwrap();
        let mut status = is.status.take().unwrap_or_default();
        let digest = reference.rsplit_once('@').unwrap().1.to_string();
        status.record(
            tag,
            TagEvent {
                created: Time(k8s_openapi::jiff::Timestamp::now()),
                docker_image_reference: reference.into(),
                image: digest,
                generation: 1,
            },
        );
        api.patch_status(
            stream,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    }
}

/// OpenShift's usual triggers: ConfigChange, and an automatic ImageChange of container `web`
/// from the ImageStreamTag `tag`.
pub fn config_and_image_triggers(tag: &str) -> serde_json::Value {
    serde_json::json!([
        {"type": "ConfigChange"},
        {"type": "ImageChange", "imageChangeParams": {"automatic": true, "containerNames": ["web"],
            "from": {"kind": "ImageStreamTag", "name": tag}}}
    ])
}

pub fn container(value: &str) -> serde_json::Value {
    json!({"name": "web", "image": "registry.invalid/app:1", "env": [{"name": "V", "value": value}]})
}

/// What a watch over a DeploymentConfig's pods saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub steps: usize,
    pub max_pods: i32,
    pub min_ready: i32,
}

/// Watches the pods of a DeploymentConfig (not its hook pods) and records, after every event,
/// how many exist (not terminating) and how many are Ready.
pub struct PodMonitor {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodMonitor {
    pub async fn start(env: &Env, dc: &str) -> Self {
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns.name);
        let selector = format!("{}={dc},!{}", labels::DEPLOYMENT_CONFIG, labels::HOOK_FOR);
        let seen = Arc::new(Mutex::new(Seen {
            steps: 0,
            max_pods: 0,
            min_ready: i32::MAX,
        }));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut state: BTreeMap<String, (bool, bool)> = BTreeMap::new();
            let mut initialised = false;
            let mut stream = watcher::watcher(pods, watcher::Config::default().labels(&selector)).boxed();
            while let Some(Ok(event)) = stream.next().await {
                match event {
                    watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                        let terminating = pod.metadata.deletion_timestamp.is_some();
                        let ready = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                        state.insert(pod.name_any(), (terminating, ready));
                    }
                    watcher::Event::Delete(pod) => {
                        state.remove(&pod.name_any());
                    }
                    watcher::Event::Init => state.clear(),
                    watcher::Event::InitDone => {
                        initialised = true;
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
                if !initialised {
                    continue;
                }
                let live = state.values().filter(|(t, _)| !t).count() as i32;
                let ready = state.values().filter(|(t, r)| !t && *r).count() as i32;
                let mut s = record.lock().unwrap();
                s.steps += 1;
                s.max_pods = s.max_pods.max(live);
                s.min_ready = s.min_ready.min(ready);
            }
        });
        let _ = ready_rx.await;
        Self { seen, task }
    }

    pub async fn stop(self) -> Seen {
        self.task.abort();
        self.seen.lock().unwrap().clone()
    }
}

/// A hook pod as the decider saw it start, with the pods of each version at that moment.
#[derive(Debug, Clone)]
pub struct HookSeen {
    pub version: String,
    pub point: String,
    pub pods_of: BTreeMap<String, usize>,
}

/// Decides each hook pod's outcome (`Succeeded` or `Failed`, from the version's hook point and
/// how many pods of that hook came before) and logs the hook pods in the order they appeared.
pub struct HookDecider {
    log: Arc<Mutex<Vec<HookSeen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HookDecider {
    pub async fn start(env: &Env, outcome: fn(&str, usize) -> &'static str) -> Self {
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns.name);
        let log = Arc::new(Mutex::new(Vec::new()));
        let record = log.clone();
        let task = tokio::spawn(async move {
            let mut decided = std::collections::BTreeSet::new();
            let mut stream =
                watcher::watcher(pods.clone(), watcher::Config::default().labels(labels::HOOK_FOR)).boxed();
            while let Some(Ok(event)) = stream.next().await {
                let (watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event else {
                    continue;
                };
                let uid = pod.uid().unwrap_or_default();
                if decided.contains(&uid) || pod.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                decided.insert(uid);
                let version = pod.labels()[labels::HOOK_FOR].clone();
                let point = pod.labels()[labels::HOOK_POINT].clone();
                // The pods of every version right now.
                let all = pods
                    .list(&kube::api::ListParams::default().labels(labels::DEPLOYMENT))
                    .await
                    .unwrap();
                let mut pods_of = BTreeMap::new();
                let dc = version.rsplit_once('-').unwrap().0;
                let n: i64 = version.rsplit_once('-').unwrap().1.parse().unwrap();
                for v in 1..=n {
                    pods_of.insert(format!("{dc}-{v}"), 0);
                }
                for p in all.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                    *pods_of.entry(p.labels()[labels::DEPLOYMENT].clone()).or_insert(0) += 1;
                }
                let attempt = {
                    let mut log = record.lock().unwrap();
                    let attempt = log
                        .iter()
                        .filter(|h: &&HookSeen| h.version == version && h.point == point)
                        .count();
                    log.push(HookSeen {
                        version: version.clone(),
                        point: point.clone(),
                        pods_of,
                    });
                    attempt
                };
                let value = outcome(&point, attempt);
                let _ = pods
                    .patch(
                        &pod.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(
                            json!({"metadata": {"annotations": {"kwok.slipway.dev/outcome": value}}}),
                        ),
                    )
                    .await;
            }
        });
        Self { log, task }
    }

    pub async fn stop(self) -> Vec<HookSeen> {
        self.task.abort();
        self.log.lock().unwrap().clone()
    }
}
