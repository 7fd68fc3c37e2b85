//! The operator's metrics, scraped over HTTP as Prometheus would, after a real reconciliation.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use std::time::Duration;

use kube::api::{Api, PostParams};
use serde_json::json;
use slipway_crds::TemplateInstance;
use slipway_testkit::*;
use support::{Controller, Fixture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn reconciliations_are_counted_and_served() {
    let Fixture { client, ns } = Fixture::start("metrics").await;
    let namespace = ns.name.clone();
    let mut running = Controller::start(|ctx| async move {
        slipway_operator::template_instance::run(ctx, Some(&namespace)).await
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, running.ctx.metrics.router()).into_future());

    let instance: TemplateInstance = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "TemplateInstance",
        "metadata": {"name": "counted"}, "spec": {"templateRef": {"name": "none"}}
    }))
    .unwrap();
    Api::<TemplateInstance>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &instance)
        .await
        .unwrap();

    let text = eventually("a counted reconciliation", Duration::from_secs(30), || async {
        let response = get(addr, "/metrics").await;
        // The count goes up when a reconcile starts and the duration when it ends: wait for both.
        (response.contains("slipway_reconciliations_total{controller=\"template\"}")
            && response.contains("slipway_reconcile_duration_seconds_count{controller=\"template\"}"))
        .then_some(response)
    })
    .await;
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    assert!(
        text.contains("slipway_reconcile_duration_seconds_count{controller=\"template\"}"),
        "{text}"
    );
    assert!(text.contains("# EOF"), "OpenMetrics text ends with # EOF: {text}");
    for probe in ["/healthz", "/readyz"] {
        assert!(get(addr, probe).await.ends_with("ok"), "{probe}");
    }
    running.stop().await;
    ns.delete().await;
}
