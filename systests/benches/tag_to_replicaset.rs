//! `make bench`: a new image on an ImageStream tag → the new ReplicaSet of a Deployment that
//! follows the tag (trigger annotation), against the dev cluster: the image controller runs
//! in-process, the real kube-controller-manager makes the ReplicaSet. The clock starts before the
//! tag event is written to the stream's status (as a Build does) and stops when a watch on
//! ReplicaSets sees one with the new image.
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use slipway_crds::ImageStream;
use slipway_crds::common::Time;
use slipway_crds::image::TagEvent;

const RUNS: usize = 30;

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let Ok(client) = kube::Client::try_default().await else {
            println!("tag → ReplicaSet: no cluster (KUBECONFIG); nothing measured");
            return;
        };
        slipway_testkit::ensure_crds();
        let ns = slipway_testkit::TestNamespace::new(&client, "bench-tag").await;
        let n = ns.name.clone();
        let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
        let controller = tokio::spawn(slipway_operator::image::run(
            ctx,
            slipway_operator::image::Settings {
                namespace: Some(n.clone()),
                ..Default::default()
            },
        ));
        let streams: Api<ImageStream> = Api::namespaced(client.clone(), &n);
        streams
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
                    "metadata": {"name": "app"}, "spec": {"tags": []}
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        let trigger = json!([{"from": {"kind": "ImageStreamTag", "name": "app:latest"},
                              "fieldPath": "spec.template.spec.containers[?(@.name==\"web\")].image"}]);
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"image.openshift.io/triggers": trigger.to_string()}},
            "spec": {"replicas": 0, "revisionHistoryLimit": 100, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "placeholder:0"}]}}}
        });
        Api::<Deployment>::namespaced(client.clone(), &n)
            .create(&PostParams::default(), &serde_json::from_value(deployment).unwrap())
            .await
            .unwrap();
        // Every image a ReplicaSet of the namespace is seen with, and when.
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &n);
        let watch = tokio::spawn(async move {
            let mut events = watcher(sets, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = events.next().await {
                if let watcher::Event::Apply(rs) | watcher::Event::InitApply(rs) = event {
                    for c in rs.spec.and_then(|s| s.template).and_then(|t| t.spec).map(|s| s.containers).unwrap_or_default() {
                        let _ = seen_tx.send(c.image.unwrap_or_default());
                    }
                }
            }
        });
        let mut samples = Vec::new();
        for i in 0..=RUNS {
            let digest = format!("sha256:{:064x}", i + 1);
            let reference = format!("127.0.0.1:15000/{n}/app@{digest}");
            let mut status = streams.get("app").await.unwrap().status.unwrap_or_default();
            status.record(
                "latest",
                TagEvent {
                    created: Time(Timestamp::now()),
                    docker_image_reference: reference.clone(),
                    image: digest,
                    generation: 1,
                },
            );
            let start = Instant::now();
            streams
                .patch_status("app", &PatchParams::default(), &Patch::Merge(&json!({"status": status})))
                .await
                .unwrap();
            let found = tokio::time::timeout(Duration::from_secs(30), async {
                while let Some(image) = seen_rx.recv().await {
                    if image == reference {
                        return true;
                    }
                }
                false
            })
            .await;
            assert_eq!(found, Ok(true), "no ReplicaSet with {reference} within 30 s");
            // The first run warms caches and connections.
            if i > 0 {
                samples.push(start.elapsed());
            }
        }
        watch.abort();
        controller.abort();
        ns.delete().await;
        samples.sort();
        println!(
            "tag moved → new ReplicaSet (Deployment with a trigger annotation): p50 {:.1?}, p90 {:.1?}, max {:.1?} over {} runs",
            samples[samples.len() / 2],
            samples[samples.len() * 9 / 10],
            samples[samples.len() - 1],
            samples.len()
        );
    });
}
