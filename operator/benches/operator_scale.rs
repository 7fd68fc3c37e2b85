//! `make bench` (needs the dev cluster): the release `slipway-operator` binary, run as a
//! subprocess against the dev cluster with 1,000 projects, 5,000 BuildConfigs and 5,000
//! DeploymentConfigs (targets in DESIGN.md):
//!
//! - memory: VmRSS (now) and VmHWM (peak) from /proc/PID/status, after the first rollout of every
//!   DeploymentConfig and after each restart (target RSS ≤ 64 MiB);
//! - restart convergence: the operator killed (SIGKILL) and started again; converged when its
//!   metrics say every controller's initial sync is done (`slipway_initial_sync_done` 1: the
//!   cache holds the initial list and each listed object has been reconciled once) and no
//!   reconcile is running (`slipway_reconciles_in_flight` 0), timed from the process start,
//!   metrics polled every 20 ms (target ≤ 10 s);
//! - API writes by the restarted operator with nothing changed: the resourceVersions of every
//!   object it could write (Projects, Namespaces, BuildConfigs, Builds, DeploymentConfigs,
//!   ReplicaSets, Events it reports) before the restarts and after them, plus 10 s of quiet
//!   (target 0).
//!
//! Everything carries the label `slipway.dev/bench=operator-scale`; the operator runs with
//! `--selector` on that label, so it leaves other users of the cluster alone. What an interrupted
//! run left is deleted first, and everything is deleted at the end.
//! `SLIPWAY_SCALE_PROJECTS` (default 1000) scales the run down for a quick look;
//! `SLIPWAY_SCALE_KEEP` keeps the objects at the end (to profile an operator against them), and
//! uses them again in the next run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks may panic on broken fixtures

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, ObjectList, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use slipway_crds::{Build, BuildConfig, DeploymentConfig, Project};
use slipway_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LABEL: &str = "slipway.dev/bench";
const VALUE: &str = "operator-scale";
const PREFIX: &str = "scale-";
const PER_PROJECT: usize = 5;
/// Every this many DeploymentConfigs has one replica (on kwok's nodes); the others have none.
const ONE_REPLICA_EVERY: usize = 20;
const RESTARTS: usize = 3;
/// Requests at once while creating and deleting.
const PARALLEL: usize = 48;
/// The controllers whose initial sync is followed (see operator/src/metrics.rs).
const CONTROLLERS: &[&str] = &[
    "build",
    "build-trigger",
    "image",
    "image-trigger",
    "deploy",
    "template",
    "project-request",
    "project",
];

fn selector() -> String {
    format!("{LABEL}={VALUE}")
}

fn project_name(i: usize) -> String {
    format!("{PREFIX}{i:04}")
}

fn from_json<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// Every page of a list.
async fn list_all<K>(api: &Api<K>, params: &ListParams) -> Vec<K>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut params = params.clone().limit(500);
    loop {
        let page: ObjectList<K> = api.list(&params).await.unwrap();
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return items,
        }
    }
}

/// Runs `futures` with at most PARALLEL at once.
async fn parallel<F: std::future::Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    futures::stream::iter(futures)
        .buffer_unordered(PARALLEL)
        .collect::<Vec<()>>()
        .await;
}

/// Deletes what this bench made (a previous run's leftovers, or this run's objects), and waits
/// until the namespaces are gone (up to `wait`); returns how many are left.
async fn delete_everything(client: &Client, wait: Duration) -> usize {
    let labelled = ListParams::default().labels(&selector());
    let projects: Api<Project> = Api::all(client.clone());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // The Projects' finalizer needs a running operator; this bench removes it itself.
    let found = list_all(&projects, &labelled).await;
    parallel(found.iter().map(|p| {
        let projects = projects.clone();
        async move {
            let unfinalized = json!({"metadata": {"finalizers": null}});
            let _ = projects
                .patch(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&unfinalized),
                )
                .await;
            let _ = projects.delete(&p.name_any(), &DeleteParams::background()).await;
        }
    }))
    .await;
    let found = list_all(&namespaces, &labelled).await;
    parallel(
        found
            .iter()
            .filter(|ns| ns.metadata.deletion_timestamp.is_none())
            .map(|ns| {
                let namespaces = namespaces.clone();
                async move {
                    let _ = namespaces
                        .delete(&ns.name_any(), &DeleteParams::background())
                        .await;
                }
            }),
    )
    .await;
    let start = Instant::now();
    let mut said = Instant::now();
    loop {
        let left = list_all(&namespaces, &labelled).await.len() + list_all(&projects, &labelled).await.len();
        if left == 0 || start.elapsed() > wait {
            return left;
        }
        if said.elapsed() > Duration::from_secs(30) {
            println!(
                "  … {left} namespaces and projects still being deleted ({:.0} s)",
                start.elapsed().as_secs_f64()
            );
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// A namespace and its Project, as the project controller makes them from a ProjectRequest.
async fn create_project(client: &Client, i: usize) {
    let name = project_name(i);
    let ns: Namespace = from_json(json!({"metadata": {"name": name,
        "labels": {LABEL: VALUE, "slipway.dev/project": name},
        "annotations": {"slipway.dev/requester": format!("user-{}", i % 50),
            "slipway.dev/display-name": format!("Bench project {i}"),
            "slipway.dev/description": "made by the operator_scale benchmark"}}}));
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    let project: Project = from_json(json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": name, "labels": {LABEL: VALUE}, "finalizers": [slipway_operator::project::FINALIZER]},
        "spec": {"finalizers": ["kubernetes"]}}));
    Api::<Project>::all(client.clone())
        .create(&PostParams::default(), &project)
        .await
        .unwrap_or_else(|e| panic!("creating project {name}: {e}"));
}

/// A source BuildConfig started only by git webhooks (no ConfigChange or ImageChange trigger).
fn build_config(n: usize) -> BuildConfig {
    from_json(
        json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": format!("app-{n}"), "labels": {LABEL: VALUE, "app": format!("app-{n}")}},
        "spec": {"runPolicy": "Serial",
            "source": {"type": "Git", "git": {"uri": format!("https://git.example.com/team/app-{n}.git"), "ref": "main"}},
            "strategy": {"type": "Source", "sourceStrategy": {
                "from": {"kind": "DockerImage", "name": "127.0.0.1:15000/builders/busybox-builder:latest"},
                "env": [{"name": "GREETING", "value": "hello"}]}},
            "output": {"to": {"kind": "DockerImage", "name": format!("127.0.0.1:15000/bench/app-{n}:latest")}},
            "triggers": [
                {"type": "GitHub", "github": {"secretReference": {"name": "webhook"}, "refs": ["main"]}},
                {"type": "Generic", "generic": {"secretReference": {"name": "webhook"}}}],
            "successfulBuildsHistoryLimit": 3, "failedBuildsHistoryLimit": 3}}),
    )
}

/// A DeploymentConfig rolled out once by its ConfigChange trigger; no replicas but one in
/// ONE_REPLICA_EVERY (on kwok's nodes).
fn deployment_config(n: usize, global: usize) -> DeploymentConfig {
    let replicas = i32::from(global.is_multiple_of(ONE_REPLICA_EVERY));
    let app = format!("web-{n}");
    from_json(
        json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig",
        "metadata": {"name": app, "labels": {LABEL: VALUE, "app": app}},
        "spec": {"replicas": replicas, "selector": {"app": app},
            // A slow controller-manager (thousands of new ReplicaSets at once) must not fail rollouts.
            "strategy": {"type": "Rolling", "rollingParams": {"maxSurge": "25%", "maxUnavailable": "25%",
                "timeoutSeconds": 3600}},
            "triggers": [{"type": "ConfigChange"}],
            "revisionHistoryLimit": 5,
            "template": {"metadata": {"labels": {"app": app}},
                "spec": {"nodeSelector": {"type": "kwok"},
                    "containers": [{"name": "web", "image": format!("127.0.0.1:15000/bench/{app}:latest"),
                        "ports": [{"containerPort": 8080}],
                        "env": [{"name": "PORT", "value": "8080"}],
                        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}}}]}}}}),
    )
}

async fn create_everything(client: &Client, projects: usize) {
    parallel((0..projects).map(|i| create_project(client, i))).await;
    let objects = (0..projects).flat_map(|i| (0..PER_PROJECT).map(move |n| (i, n)));
    parallel(objects.map(|(i, n)| async move {
        let ns = project_name(i);
        let bcs: Api<BuildConfig> = Api::namespaced(client.clone(), &ns);
        let dcs: Api<DeploymentConfig> = Api::namespaced(client.clone(), &ns);
        bcs.create(&PostParams::default(), &build_config(n))
            .await
            .unwrap_or_else(|e| panic!("creating a BuildConfig in {ns}: {e}"));
        dcs.create(&PostParams::default(), &deployment_config(n, i * PER_PROJECT + n))
            .await
            .unwrap_or_else(|e| panic!("creating a DeploymentConfig in {ns}: {e}"));
    }))
    .await;
}

/// The operator binary, running.
struct Operator {
    child: Child,
    metrics: SocketAddr,
    started: Instant,
}

impl Operator {
    fn start(run: usize) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
        let log_path = std::env::temp_dir().join(format!("slipway-operator-scale-{run}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_slipway-operator"))
            .args([
                "--selector",
                &selector(),
                "--metrics-listen",
                &metrics.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting slipway-operator");
        Self {
            child,
            metrics,
            started,
        }
    }

    /// The metrics text, or None while the server is not up.
    async fn scrape(&self) -> Option<String> {
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        Some(response)
    }

    /// VmRSS and VmHWM in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no graceful shutdown, as a crash or an OOM kill.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then SIGKILL after 10 s.
    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bench that fails or panics leaves no operator behind.
impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `metric{controller="x"} value` lines of one metric, per controller.
fn per_controller(text: &str, metric: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{metric}{{controller=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (controller, rest) = rest.split_once('"')?;
            let value = rest.rsplit(' ').next()?.parse().ok()?;
            Some((controller.to_string(), value))
        })
        .collect()
}

fn total(text: &str, metric: &str) -> f64 {
    per_controller(text, metric).values().fold(0.0, |a, b| a + b)
}

fn converged(text: &str) -> bool {
    let done = per_controller(text, "slipway_initial_sync_done");
    CONTROLLERS.iter().all(|c| done.get(*c) == Some(&1.0))
        && total(text, "slipway_reconciles_in_flight") == 0.0
}

fn failures(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("slipway_reconcile_failures_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// Waits until the operator has converged; the time since its start.
async fn wait_converged(operator: &mut Operator, timeout: Duration) -> (Duration, String) {
    loop {
        if let Some(text) = operator.scrape().await
            && converged(&text)
        {
            return (operator.started.elapsed(), text);
        }
        assert!(
            operator.alive(),
            "the operator exited; see its log in the temp directory"
        );
        assert!(
            operator.started.elapsed() < timeout,
            "the operator did not converge in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no reconcile has started for `quiet`.
async fn wait_quiet(operator: &Operator, quiet: Duration) {
    let mut last = f64::NAN;
    let mut since = Instant::now();
    loop {
        let count = total(
            &operator.scrape().await.unwrap_or_default(),
            "slipway_reconciliations_total",
        );
        if count != last {
            last = count;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How many Projects, BuildConfigs and DeploymentConfigs of this bench there are.
async fn existing(client: &Client) -> (usize, usize, usize) {
    let labelled = ListParams::default().labels(&selector());
    (
        list_all(&Api::<Project>::all(client.clone()), &labelled)
            .await
            .len(),
        list_all(&Api::<BuildConfig>::all(client.clone()), &labelled)
            .await
            .len(),
        list_all(&Api::<DeploymentConfig>::all(client.clone()), &labelled)
            .await
            .len(),
    )
}

/// How many DeploymentConfigs have rolled out their latest version (Progressing, reason
/// NewReplicationControllerAvailable), and how many failed to (ProgressDeadlineExceeded).
async fn rolled_out(client: &Client) -> (usize, usize) {
    let dcs: Api<DeploymentConfig> = Api::all(client.clone());
    let reasons: Vec<String> = list_all(&dcs, &ListParams::default().labels(&selector()))
        .await
        .iter()
        .filter_map(|dc| {
            let status = dc.status.as_ref()?;
            let progressing = status.conditions.iter().find(|c| c.type_ == "Progressing")?;
            Some(progressing.reason.clone())
        })
        .collect();
    let count = |reason: &str| reasons.iter().filter(|r| *r == reason).count();
    (
        count("NewReplicationControllerAvailable"),
        count("ProgressDeadlineExceeded"),
    )
}

fn ours(namespace: Option<&str>) -> bool {
    namespace.is_some_and(|ns| ns.starts_with(PREFIX))
}

/// The resourceVersion of every object the operator could write, by "kind namespace/name".
async fn versions(client: &Client) -> BTreeMap<String, String> {
    fn add<K: Resource>(into: &mut BTreeMap<String, String>, kind: &str, items: Vec<K>) {
        for o in items {
            let key = format!(
                "{kind} {}/{}",
                o.meta().namespace.clone().unwrap_or_default(),
                o.meta().name.clone().unwrap_or_default()
            );
            into.insert(key, o.meta().resource_version.clone().unwrap_or_default());
        }
    }
    let labelled = ListParams::default().labels(&selector());
    let mut all = BTreeMap::new();
    add(
        &mut all,
        "Project",
        list_all(&Api::<Project>::all(client.clone()), &labelled).await,
    );
    add(
        &mut all,
        "Namespace",
        list_all(&Api::<Namespace>::all(client.clone()), &labelled).await,
    );
    add(
        &mut all,
        "BuildConfig",
        list_all(&Api::<BuildConfig>::all(client.clone()), &labelled).await,
    );
    add(
        &mut all,
        "DeploymentConfig",
        list_all(&Api::<DeploymentConfig>::all(client.clone()), &labelled).await,
    );
    let builds = list_all(&Api::<Build>::all(client.clone()), &ListParams::default()).await;
    add(
        &mut all,
        "Build",
        builds
            .into_iter()
            .filter(|b| ours(b.meta().namespace.as_deref()))
            .collect(),
    );
    let rs_params = ListParams::default().labels(slipway_crds::apps::labels::DEPLOYMENT_CONFIG);
    let rss = list_all(&Api::<ReplicaSet>::all(client.clone()), &rs_params).await;
    add(
        &mut all,
        "ReplicaSet",
        rss.into_iter()
            .filter(|r| ours(r.meta().namespace.as_deref()))
            .collect(),
    );
    let events = list_all(&Api::<Event>::all(client.clone()), &ListParams::default()).await;
    let events = events
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("slipway-operator"))
        .filter(|e| {
            let regarding = e.regarding.as_ref();
            ours(regarding.and_then(|r| r.namespace.as_deref()))
                || regarding
                    .and_then(|r| r.name.as_deref())
                    .is_some_and(|n| n.starts_with(PREFIX))
        })
        .collect();
    add(&mut all, "Event", events);
    all
}

/// The objects written between two snapshots, per kind: made, changed or deleted; Events made or
/// changed only (the API server deletes them an hour after their last change).
fn written(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let keys = before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>();
    for key in keys {
        let expired = key.starts_with("Event ") && !after.contains_key(key);
        if before.get(key) != after.get(key) && !expired {
            let kind = key.split(' ').next().unwrap_or_default().to_string();
            *counts.entry(kind).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::main]
async fn main() {
    if std::env::var("KUBECONFIG").is_err() {
        println!("operator scale bench: no KUBECONFIG (start the dev cluster); nothing measured");
        return;
    }
    let projects: usize = std::env::var("SLIPWAY_SCALE_PROJECTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let objects = projects * PER_PROJECT;
    ensure_crds();
    let client = client().await;

    if std::env::var("SLIPWAY_SCALE_KEEP").is_ok() && existing(&client).await == (projects, objects, objects)
    {
        println!("SLIPWAY_SCALE_KEEP: the objects a kept run left are used again");
    } else {
        let start = Instant::now();
        let left = delete_everything(&client, Duration::from_secs(20 * 60)).await;
        assert_eq!(left, 0, "a previous run's namespaces are still being deleted");
        if start.elapsed() > Duration::from_secs(5) {
            println!(
                "a previous run's objects deleted in {:.0} s",
                start.elapsed().as_secs_f64()
            );
        }
        let start = Instant::now();
        create_everything(&client, projects).await;
        println!(
            "created {projects} projects (namespace + Project), {objects} BuildConfigs and {objects} DeploymentConfigs in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }

    // The first run: every DeploymentConfig rolls out its first version.
    let mut operator = Operator::start(0);
    let start = Instant::now();
    let mut said = Instant::now();
    let failed = loop {
        let (done, failed) = rolled_out(&client).await;
        if done + failed == objects {
            break failed;
        }
        assert!(
            operator.alive(),
            "the operator exited; see its log in the temp directory"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30 * 60),
            "only {done} of {objects} DeploymentConfigs rolled out in 30 min ({failed} failed)"
        );
        if said.elapsed() > Duration::from_secs(30) {
            println!("  … {done} of {objects} DeploymentConfigs rolled out ({failed} failed)");
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let first_rollout = start.elapsed();
    wait_quiet(&operator, Duration::from_secs(10)).await;
    let (first_rss, first_hwm) = operator.memory();

    // Restarts with nothing changed.
    let before = versions(&client).await;
    let restarts_began = Instant::now();
    let mut rows = Vec::new();
    for run in 1..=RESTARTS {
        operator.kill();
        operator = Operator::start(run);
        let (took, text) = wait_converged(&mut operator, Duration::from_secs(300)).await;
        let (rss_converged, _) = operator.memory();
        let reconciles = total(&text, "slipway_reconciliations_total");
        tokio::time::sleep(Duration::from_secs(10)).await;
        let later = operator.scrape().await.unwrap_or_default();
        let (rss, hwm) = operator.memory();
        rows.push((
            took,
            per_controller(&text, "slipway_initial_sync_seconds"),
            reconciles,
            total(&later, "slipway_reconciliations_total") - reconciles,
            failures(&later),
            rss_converged,
            rss,
            hwm,
        ));
    }
    let after = versions(&client).await;
    let writes = written(&before, &after);
    let restart_span = restarts_began.elapsed();

    println!();
    println!(
        "operator scale: {projects} projects, {objects} BuildConfigs, {objects} DeploymentConfigs ({} with one replica)",
        objects.div_ceil(ONE_REPLICA_EVERY)
    );
    println!(
        "first run: every DeploymentConfig rolled out in {:.1} s ({failed} failed: progress deadline); then RSS {first_rss:.1} MiB, peak (HWM) {first_hwm:.1} MiB",
        first_rollout.as_secs_f64()
    );
    println!();
    println!(
        "| restart | converged | slowest controller | reconciles | after converged (10 s) | failures | RSS at convergence | RSS 10 s later | peak RSS (HWM) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, (took, syncs, reconciles, later, failed, rss_converged, rss, hwm)) in rows.iter().enumerate() {
        let slowest = syncs
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(c, s)| format!("{c} {s:.2} s"))
            .unwrap_or_default();
        println!(
            "| {} | {:.2} s | {slowest} | {reconciles:.0} | {later:.0} | {failed:.0} | {rss_converged:.1} MiB | {rss:.1} MiB | {hwm:.1} MiB |",
            i + 1,
            took.as_secs_f64()
        );
    }
    let mut converge: Vec<f64> = rows.iter().map(|r| r.0.as_secs_f64()).collect();
    converge.sort_by(f64::total_cmp);
    let worst_rss = rows.iter().map(|r| r.6).fold(first_rss, f64::max);
    let worst_hwm = rows.iter().map(|r| r.7).fold(first_hwm, f64::max);
    let total_writes: usize = writes.values().sum();
    println!();
    println!("| what | measured | target |");
    println!("|---|---|---|");
    println!(
        "| operator RSS, steady (worst of {} runs) | {worst_rss:.1} MiB (peak {worst_hwm:.1} MiB) | ≤ 64 MiB |",
        RESTARTS + 1
    );
    println!(
        "| restart → converged (median of {RESTARTS}, worst) | {:.2} s, {:.2} s | ≤ 10 s |",
        converge[converge.len() / 2],
        converge[converge.len() - 1]
    );
    println!(
        "| API writes by {RESTARTS} restarts, nothing changed ({:.0} s watched) | {total_writes} {writes:?} | 0 |",
        restart_span.as_secs_f64()
    );
    println!("(a shared 2-core machine with other builds and tests running: times are upper bounds)");

    operator.terminate();
    if std::env::var("SLIPWAY_SCALE_KEEP").is_ok() {
        println!("SLIPWAY_SCALE_KEEP: the objects stay (the next run deletes them first)");
        return;
    }
    // The namespace controller takes seconds per namespace: wait a little, not for all.
    let start = Instant::now();
    let left = delete_everything(&client, Duration::from_secs(3 * 60)).await;
    if left == 0 {
        println!("cleaned up in {:.0} s", start.elapsed().as_secs_f64());
    } else {
        println!(
            "{left} namespaces and projects are still being deleted by the controller-manager; the next run waits for them"
        );
    }
}
