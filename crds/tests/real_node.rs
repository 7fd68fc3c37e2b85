//! The dev cluster's real node (dev/node-up.sh) runs containers: a pod from the busybox image
//! built locally and pushed to the dev registry runs there and its log and exit code come back
//! through the API server, and a Deployment behind a Service answers HTTP through its ClusterIP,
//! which kube-proxy's iptables rules route to the pods; pods reach the API server through the
//! `kubernetes` Service as in any cluster.
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Client;
use kube::api::{Api, ListParams, LogParams, PostParams};
use serde_json::{Value, json};
use slipway_testkit::*;

/// The label and taint value that mark the real node; kwok's fake nodes carry `fake`.
const REAL_NODE: &str = "slipway.dev/node=real";

/// The API server must be started with the real node's flags (kubelet client certificate, node
/// addresses, an endpoint pods reach); one started by an older dev/cluster-up.sh lacks them.
const RESTART_HINT: &str = "is the API server older than the real node? restart the dev cluster \
     once (make cluster-down && make cluster-up)";

fn busybox() -> String {
    let registry = std::env::var("SLIPWAY_REGISTRY").unwrap_or_else(|_| "127.0.0.1:15000".into());
    format!("{registry}/slipway/busybox:latest")
}

/// What a pod needs to land on the real node: its label and a toleration of its taint.
fn on_the_real_node() -> Value {
    json!({
        "nodeSelector": {"slipway.dev/node": "real"},
        "tolerations": [{"key": "slipway.dev/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}]
    })
}

/// The name of the Ready real node, or a panic that says how to start one.
async fn real_node(client: &Client) -> String {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default().labels(REAL_NODE))
        .await
        .unwrap();
    let ready = list.items.into_iter().find(|n| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    match ready {
        Some(node) => node.metadata.name.unwrap(),
        None => panic!(
            "the dev cluster has no Ready node labelled {REAL_NODE}: start it with `make cluster-up` \
             (as root; NODE=none leaves the real node out)"
        ),
    }
}

/// Fails fast, with the kubelet's words, when an image cannot be pulled.
fn refuse_pull_errors(pod: &Pod) {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    for status in statuses.into_iter().flatten() {
        if let Some(waiting) = status.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or_default();
            assert!(
                !matches!(reason, "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"),
                "{}: {reason}: {} (dev/node-images.sh pushes the images)",
                status.image,
                waiting.message.as_deref().unwrap_or_default()
            );
        }
    }
}

#[tokio::test]
async fn a_pod_runs_on_the_real_node_and_its_log_and_exit_code_come_back() {
    let client = client().await;
    let node = real_node(&client).await;
    let ns = TestNamespace::new(&client, "real-pod").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let mut spec = on_the_real_node();
    spec["restartPolicy"] = json!("Never");
    spec["containers"] = json!([{
        "name": "main",
        "image": busybox(),
        "command": ["sh", "-c", "echo \"hello from $(hostname) as $(id -u)\"; echo to stderr >&2; exit 7"]
    }]);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "once"}, "spec": spec})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let terminated = eventually("the pod to end", Duration::from_secs(120), || async {
        let pod = pods.get("once").await.ok()?;
        refuse_pull_errors(&pod);
        let status = pod.status?;
        (status.phase.as_deref() == Some("Failed")).then_some(())?;
        status.container_statuses?.into_iter().next()?.state?.terminated
    })
    .await;
    assert_eq!(terminated.exit_code, 7);
    assert_eq!(terminated.reason.as_deref(), Some("Error"));
    let scheduled = pods.get("once").await.unwrap().spec.unwrap().node_name;
    assert_eq!(scheduled.as_deref(), Some(node.as_str()));
    // The log comes from the container's output on the node, through the API server and kubelet.
    let log = pods
        .logs("once", &LogParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}: {RESTART_HINT}"));
    // stdout and stderr are two pipes: their lines interleave in no set order.
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["hello from once as 0", "to stderr"], "log: {log:?}");
    ns.delete().await;
}

#[tokio::test]
async fn a_pod_on_the_real_node_reaches_the_api_server_through_the_kubernetes_service() {
    let client = client().await;
    real_node(&client).await;
    let ns = TestNamespace::new(&client, "real-api").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let mut spec = on_the_real_node();
    spec["restartPolicy"] = json!("Never");
    // busybox speaks too little TLS for the API server, so nc sends plain HTTP to the Service's
    // address (rewritten by kube-proxy to the API server's endpoint), and the API server's TLS
    // listener answers "Client sent an HTTP request to an HTTPS server".
    spec["containers"] = json!([{
        "name": "main",
        "image": busybox(),
        "command": ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 \"$KUBERNETES_SERVICE_HOST\" \"$KUBERNETES_SERVICE_PORT\" | grep 'HTTP request to an HTTPS server'"]
    }]);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "api"}, "spec": spec})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let terminated = eventually("the pod to end", Duration::from_secs(120), || async {
        let pod = pods.get("api").await.ok()?;
        refuse_pull_errors(&pod);
        pod.status?
            .container_statuses?
            .into_iter()
            .next()?
            .state?
            .terminated
    })
    .await;
    assert_eq!(
        terminated.exit_code, 0,
        "nothing answered at the kubernetes Service's address: {RESTART_HINT}"
    );
    ns.delete().await;
}

/// One HTTP/1.0 GET to `addr`, from this host; the body, or None when nothing answers yet.
fn http_get(addr: SocketAddr) -> Option<String> {
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    (status.starts_with("HTTP/1.") && status.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

#[tokio::test]
async fn a_deployment_behind_a_service_answers_through_its_cluster_ip() {
    let client = client().await;
    let node = real_node(&client).await;
    let ns = TestNamespace::new(&client, "real-svc").await;
    let mut spec = on_the_real_node();
    spec["containers"] = json!([{
        "name": "web",
        "image": busybox(),
        "command": ["sh", "-c", "echo \"hello from $(hostname)\" > /www/index.html && exec httpd -f -p 8080 -h /www"],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    }]);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}
        }
    }))
    .unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let cluster_ip = services
        .create(&PostParams::default(), &service)
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();

    let names: BTreeSet<String> = eventually("2 ready replicas", Duration::from_secs(120), || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        list.items.iter().for_each(refuse_pull_errors);
        let d = deployments.get("web").await.ok()?;
        (d.status?.ready_replicas? == 2).then_some(())?;
        let ready: BTreeSet<String> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str()))
            .filter_map(|p| p.metadata.name)
            .collect();
        (ready.len() == 2).then_some(ready)
    })
    .await;

    // kube-proxy spreads connections to the ClusterIP over both pods: every answer is one of
    // theirs, and both answer within a bounded number of requests.
    let addr: SocketAddr = format!("{cluster_ip}:80").parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut answered = BTreeSet::new();
    while answered.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {answered:?} of {names:?} answered through {addr} within 60 s"
        );
        let body = tokio::task::spawn_blocking(move || http_get(addr)).await.unwrap();
        let Some(body) = body else {
            // kube-proxy writes its rules a moment after the endpoints are ready.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let from = body
            .trim()
            .strip_prefix("hello from ")
            .unwrap_or_default()
            .to_string();
        assert!(names.contains(&from), "unexpected answer {body:?} from {addr}");
        answered.insert(from);
    }
    assert_eq!(answered, names);
    ns.delete().await;
}
