//! `make bench` (needs the dev cluster): an ImageStream tag moved → the DeploymentConfig's new
//! ReplicaSet created, p50 over 20 moves (target ≤ 200 ms); and the writes the deploy controller
//! makes in a steady state with nothing changing (target zero). The controller runs in-process.
#![allow(clippy::unwrap_used)] // benchmarks may panic on broken fixtures

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use slipway_crds::DeploymentConfig;
use slipway_crds::image::{ImageStream, TagEvent};
use slipway_testkit::*;

const MOVES: usize = 20;

async fn push(client: &Client, ns: &str, n: usize) {
    let api: Api<ImageStream> = Api::namespaced(client.clone(), ns);
    let mut status = api.get_status("app").await.unwrap().status.unwrap_or_default();
    let digest = format!("sha256:{n:064x}");
    status.record(
        "latest",
        TagEvent {
            created: slipway_crds::common::Time(k8s_openapi::jiff::Timestamp::now()),
            docker_image_reference: format!("127.0.0.1:15000/app@{digest}"),
            image: digest,
            generation: 1,
        },
    );
    api.patch_status(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap();
}

async fn wait_for(rss: &Api<ReplicaSet>, name: &str, complete: bool) {
    loop {
        if let Some(rs) = rss.get_opt(name).await.unwrap() {
            let phase = rs.annotations().get("slipway.dev/deployment.phase").cloned();
            if !complete || phase.as_deref() == Some("Complete") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(if complete { 50 } else { 2 })).await;
    }
}

#[tokio::main]
async fn main() {
    if std::env::var("KUBECONFIG").is_err() {
        println!("deploy trigger bench: no KUBECONFIG (start the dev cluster); nothing measured");
        return;
    }
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "bench-dep").await;
    let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
    let namespace = ns.name.clone();
    let controller = tokio::spawn(async move { slipway_operator::deploy::run(ctx, Some(&namespace)).await });
    let is = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream", "metadata": {"name": "app"}, "spec": {}});
    Api::<ImageStream>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &serde_json::from_value(is).unwrap())
        .await
        .unwrap();
    let dc = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"app": "web"},
            "triggers": [{"type": "ImageChange", "imageChangeParams": {"automatic": true, "containerNames": ["web"],
                "from": {"kind": "ImageStreamTag", "name": "app:latest"}}}],
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "placeholder"}]}}}});
    let dcs: Api<DeploymentConfig> = Api::namespaced(client.clone(), &ns.name);
    dcs.create(&PostParams::default(), &serde_json::from_value(dc).unwrap())
        .await
        .unwrap();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns.name);
    push(&client, &ns.name, 1).await;
    wait_for(&rss, "web-1", true).await;
    let mut samples = Vec::new();
    for n in 2..=MOVES + 1 {
        let start = Instant::now();
        push(&client, &ns.name, n).await;
        wait_for(&rss, &format!("web-{n}"), false).await;
        samples.push(start.elapsed());
        wait_for(&rss, &format!("web-{n}"), true).await;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "tag moved → new ReplicaSet created ({MOVES} moves): p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms (target p50 ≤ 200 ms)",
        ms(samples[MOVES / 2]),
        ms(samples[MOVES * 9 / 10]),
        ms(samples[MOVES - 1])
    );
    // Steady state: nothing changes for 10 s; count the objects the controller wrote.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let versions = |dc: DeploymentConfig, list: Vec<ReplicaSet>| {
        let mut v: Vec<(String, Option<String>)> = list
            .into_iter()
            .map(|r| (r.name_any(), r.resource_version()))
            .collect();
        v.push(("dc".into(), dc.resource_version()));
        v
    };
    let before = versions(
        dcs.get("web").await.unwrap(),
        rss.list(&ListParams::default()).await.unwrap().items,
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = versions(
        dcs.get("web").await.unwrap(),
        rss.list(&ListParams::default()).await.unwrap().items,
    );
    let writes =
        before.iter().zip(&after).filter(|(a, b)| a != b).count() + before.len().abs_diff(after.len());
    println!("steady state, 10 s with nothing changing: {writes} objects written (target 0)");
    controller.abort();
    ns.delete().await;
}
