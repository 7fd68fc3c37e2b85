//! Shared support of Slipway's integration tests: a client for the dev cluster (`KUBECONFIG`), the
//! CRDs installed once per test binary, and a namespace per test so tests run in parallel and leave
//! no trace. Internal to the workspace; never published.

pub mod git_http;
pub mod real_node;
pub mod registry;
pub mod ssh_git;

use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};

/// A client for the dev cluster, or a panic that says how to start one.
pub async fn client() -> Client {
    match Client::try_default().await {
        Ok(client) => client,
        Err(e) => panic!(
            "no Kubernetes cluster to test against ({e}); run `make test` (it starts the dev \
             cluster) or `make cluster-up` and export the KUBECONFIG it prints"
        ),
    }
}

/// Installs the CRDs once per test binary (server-side apply, then wait until Established).
/// Runs on its own thread and runtime, because a kube Client belongs to the runtime it was made on
/// and every `#[tokio::test]` has its own.
pub fn ensure_crds() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(install_crds()).map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the CRD installer panicked".into()))
    });
    if let Err(e) = result {
        panic!("installing the CRDs failed: {e}");
    }
}

/// The requester key the tests share between an in-process admission webhook and an in-process
/// operator (what the Secret `slipway-requester-keys` holds in a cluster).
pub const TEST_REQUESTER_KEY: &[u8] = b"slipway-tests-requester-key-0123456789";

/// A file holding [`TEST_REQUESTER_KEY`], for `slipway_webhook::admission::use_requester_keys`
/// (written once per test binary, kept until it ends).
pub fn requester_key_file() -> std::path::PathBuf {
    static FILE: OnceLock<std::path::PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("slipway-test-requester-keys-{}", std::process::id()));
        let mut text = TEST_REQUESTER_KEY.to_vec();
        text.push(b'\n');
        std::fs::write(&path, text).expect("writing the test requester key");
        path
    })
    .clone()
}

/// The annotations admission stamps on ProjectRequest `name` of `username` (the requester and
/// its proof under [`TEST_REQUESTER_KEY`]).
pub fn stamped_project_request(name: &str, username: &str) -> serde_json::Value {
    let proof = slipway_crds::requester::sign(
        TEST_REQUESTER_KEY,
        &slipway_crds::requester::Stamp::project_request(name, username),
    );
    serde_json::json!({
        "slipway.dev/requester": username,
        slipway_crds::requester::PROOF_ANNOTATION: proof,
    })
}

/// Installs the Gateway API's CRDs (standard channel, the version `dev/go/gateway-api` pins) once
/// per test binary, as a cluster with the Gateway API has them; no Gateway controller runs.
pub fn ensure_gateway_api() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(". dev/lib.sh && dev/build-tools.sh gateway-api >&2 && tool_dir gateway-api")
            .current_dir(repo_root())
            .output()
            .map_err(|e| format!("running dev/build-tools.sh gateway-api: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "dev/build-tools.sh gateway-api failed (it needs go and the Go module proxy):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let mut crds = Vec::new();
        for kind in ["gatewayclasses", "gateways", "httproutes", "referencegrants"] {
            let path = dir.join(format!("gateway.networking.k8s.io_{kind}.yaml"));
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let crd: CustomResourceDefinition =
                serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            crds.push(crd);
        }
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(apply_established(crds)).map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the Gateway API installer panicked".into()))
    });
    if let Err(e) = result {
        panic!("installing the Gateway API's CRDs failed: {e}");
    }
}

/// Waits until CRD `name` is Established (30 s at most).
async fn await_established(crds: &Api<CustomResourceDefinition>, name: &str) -> Result<(), kube::Error> {
    let cond = kube::runtime::wait::conditions::is_crd_established();
    tokio::time::timeout(
        Duration::from_secs(30),
        kube::runtime::wait::await_condition(crds.clone(), name, cond),
    )
    .await
    .map_err(|_| kube::Error::Service(format!("CRD {name} not Established after 30 s").into()))?
    .map_err(|e| kube::Error::Service(e.to_string().into()))?;
    Ok(())
}

/// Server-side applies foreign CRDs and waits until each is Established.
async fn apply_established(defs: Vec<CustomResourceDefinition>) -> Result<(), kube::Error> {
    let client = client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let params = PatchParams::apply("slipway-tests").force();
    for crd in &defs {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &params, &Patch::Apply(crd)).await?;
        await_established(&crds, &name).await?;
    }
    Ok(())
}

async fn install_crds() -> Result<(), kube::Error> {
    let client = client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("slipway-tests").force();
    let mut changed = Vec::new();
    for crd in slipway_crds::crdgen::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let before = crds
            .get_opt(&name)
            .await?
            .and_then(|c| c.metadata.resource_version);
        let after = crds
            .patch(&name, &params, &Patch::Apply(&crd))
            .await?
            .metadata
            .resource_version;
        if before != after {
            changed.push(crd);
        }
    }
    for crd in &changed {
        let name = crd.metadata.name.clone().unwrap_or_default();
        await_established(&crds, &name).await?;
        // An updated CRD is served by a new handler a moment later; wait until its printer columns
        // are the ones just applied, so no test sees the old definition.
        let mut wanted = vec!["Name".to_string()];
        let version = &crd.spec.versions[0];
        wanted.extend(
            version
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| c.name.clone()),
        );
        let path = format!(
            "/apis/{}/{}/{}?limit=1",
            crd.spec.group, version.name, crd.spec.names.plural
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let request = http::Request::get(&path)
                .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
                .body(Vec::new())
                .map_err(|e| kube::Error::Service(e.to_string().into()))?;
            let table: serde_json::Value = client.request(request).await?;
            let served: Vec<String> = table["columnDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect();
            if served == wanted {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(kube::Error::Service(
                    format!("{name} still serves columns {served:?}").into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// A name no other test uses: `t-<prefix>-<six random letters>` (a valid DNS label for short
/// prefixes).
pub fn unique_name(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect();
    format!("t-{prefix}-{suffix}")
}

/// A namespace of one test, labelled `slipway.dev/test`. It is deleted when the value drops, at
/// the end of the test or while a failing test unwinds (a panic in the test's body or in a task
/// that owns it); [`TestNamespace::delete`] does the same without blocking and may still be
/// called. With `SLIPWAY_KEEP_TEST_NAMESPACES=1`, the namespace of a failed test is kept (and
/// named on stderr) for a look; `make test` removes what is left before the next run.
pub struct TestNamespace {
    pub name: String,
    client: Client,
    /// Set by [`TestNamespace::delete`]: nothing left for `drop` to do.
    deleted: bool,
}

/// How long dropping a [`TestNamespace`] waits for its delete request to be answered.
const DROP_DELETE_TIMEOUT: Duration = Duration::from_secs(15);

impl TestNamespace {
    /// A new namespace `t-<prefix>-<six random letters>`, once its `default` ServiceAccount exists.
    pub async fn new(client: &Client, prefix: &str) -> Self {
        Self::create(client, &unique_name(prefix), serde_json::json!({})).await
    }

    /// A new namespace of exactly this name (a test that needs a name chosen in advance, say the
    /// name of a project it then asks for), with `labels` besides `slipway.dev/test`.
    pub async fn named(client: &Client, name: &str, labels: serde_json::Value) -> Self {
        Self::create(client, name, labels).await
    }

    async fn create(client: &Client, name: &str, labels: serde_json::Value) -> Self {
        let mut all = serde_json::json!({"slipway.dev/test": "true"});
        for (key, value) in labels.as_object().into_iter().flatten() {
            all[key.as_str()] = value.clone();
        }
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": all}
        }))
        .expect("namespace object");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        // From here on, a panic drops the namespace, and so deletes it.
        let namespace = Self {
            name: name.to_string(),
            client: client.clone(),
            deleted: false,
        };
        // Pods need the namespace's default ServiceAccount (made by the controller-manager).
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
        let made = |sa: Option<&ServiceAccount>| sa.is_some();
        match tokio::time::timeout(
            Duration::from_secs(30),
            kube::runtime::wait::await_condition(sas, "default", made),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("watching for the default ServiceAccount of {name}: {e}"),
            Err(_) => panic!("namespace {name} has no default ServiceAccount after 30 s"),
        }
        namespace
    }

    /// Deletes the namespace (in the background: this returns once the API server took the
    /// request, while the namespace is Terminating).
    pub async fn delete(mut self) {
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await;
        self.deleted = true;
    }
}

impl Drop for TestNamespace {
    /// Deletes the namespace unless [`TestNamespace::delete`] did. `drop` cannot await, and the
    /// test's runtime may be the one unwinding: the request goes out on a thread of its own, with
    /// a runtime and a client of its own (a kube Client works only on the runtime that made it),
    /// and `drop` waits for the answer up to [`DROP_DELETE_TIMEOUT`]. Never panics (a panic in a
    /// `drop` during unwinding aborts the test binary): a failure is told on stderr.
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        if std::thread::panicking() && std::env::var("SLIPWAY_KEEP_TEST_NAMESPACES").is_ok_and(|v| v == "1") {
            eprintln!("kept the namespace {} of a failed test", self.name);
            return;
        }
        let name = self.name.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("delete-{name}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
                    .and_then(|rt| rt.block_on(delete_namespace(&name)));
                let _ = done_tx.send(result);
            });
        if let Err(e) = spawned {
            eprintln!("namespace {} left behind: no thread to delete it: {e}", self.name);
            return;
        }
        match done_rx.recv_timeout(DROP_DELETE_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("namespace {} left behind: {e}", self.name),
            Err(_) => eprintln!(
                "namespace {} may be left behind: no answer to its delete in {DROP_DELETE_TIMEOUT:?}",
                self.name
            ),
        }
    }
}

/// Deletes a namespace with a client of the current runtime; a namespace already gone is fine.
async fn delete_namespace(name: &str) -> Result<(), String> {
    let config = kube::Config::infer().await.map_err(|e| e.to_string())?;
    let client = Client::try_from(config).map_err(|e| e.to_string())?;
    match Api::<Namespace>::all(client)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits, on a watch, until the object `name` of `api` meets `condition` (it is given `None`
/// while the object does not exist), and returns it; panics with `what` after `timeout`.
pub async fn watch_until<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    condition: impl Fn(&K) -> bool,
) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let wanted = move |object: Option<&K>| object.is_some_and(&condition);
    match tokio::time::timeout(
        timeout,
        kube::runtime::wait::await_condition(api.clone(), name, wanted),
    )
    .await
    {
        Ok(Ok(Some(object))) => object,
        Ok(Ok(None)) => panic!("waiting for {what}: the object {name} is gone"),
        Ok(Err(e)) => panic!("waiting for {what}: the watch failed: {e}"),
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// The ApiResource of a Slipway kind, from the CRDs crdgen makes.
pub fn slipway_resource(kind: &str) -> ApiResource {
    let crd = slipway_crds::crdgen::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no Slipway kind {kind}"));
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(slipway_crds::GROUP, slipway_crds::VERSION, kind),
        &crd.spec.names.plural,
    )
}

/// Whether a kind of Slipway is cluster-scoped.
pub fn cluster_scoped(kind: &str) -> bool {
    slipway_crds::crdgen::all()
        .iter()
        .any(|c| c.spec.names.kind == kind && c.spec.scope == "Cluster")
}

/// A dynamic Api for a Slipway object in a namespace (or cluster-wide for cluster-scoped kinds).
pub fn dynamic_api(client: &Client, kind: &str, namespace: &str) -> Api<DynamicObject> {
    let ar = slipway_resource(kind);
    if cluster_scoped(kind) {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), namespace, &ar)
    }
}

/// Creates an object with a server-side dry run (nothing is stored), as the API server would
/// create it; returns the server's error message on rejection.
pub async fn dry_run_create(
    client: &Client,
    namespace: &str,
    object: &serde_json::Value,
) -> Result<(), String> {
    let (group, version) = match object["apiVersion"].as_str().unwrap_or_default().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap_or_default().to_string(),
        ),
    };
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let gvk = GroupVersionKind::gvk(&group, &version, &kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("discovery of {kind}: {e}"))?;
    let api: Api<DynamicObject> = if caps.scope == kube::discovery::Scope::Cluster {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), namespace, &ar)
    };
    let obj: DynamicObject =
        serde_json::from_value(object.clone()).map_err(|e| format!("not an object: {e}"))?;
    let params = PostParams {
        dry_run: true,
        field_manager: Some("slipway-tests".into()),
    };
    api.create(&params, &obj).await.map(|_| ()).map_err(|e| match e {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    })
}

/// Reads a YAML file of one or more documents into JSON values.
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| serde_json::Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The repository's root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of the shared test data (the OpenShift template corpus), beside the repository.
pub fn shared_testdata() -> std::path::PathBuf {
    repo_root().join("../shared/testdata")
}

/// The templates of OpenShift's library, in the shared test data (`*.json`, 62 of them).
pub const OPENSHIFT_TEMPLATES: (&str, usize) = ("openshift-templates", 62);
/// More templates from elsewhere, in the shared test data (`*.json`, `*.yaml`, `*.yml`, 60).
pub const OPENSHIFT_TEMPLATES_EXTRA: (&str, usize) = ("openshift-templates-extra", 60);

/// The template files (`*.json`, `*.yaml`, `*.yml`; sorted) of a folder of the shared test data,
/// given as (folder, how many it holds). A missing, unreadable or incomplete corpus fails the test
/// that asked, naming the path: a test of the corpus never passes without it.
pub fn shared_corpus((folder, expected): (&str, usize)) -> Vec<std::path::PathBuf> {
    let dir = shared_testdata().join(folder);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the corpus {} is missing ({e}): it is the shared test data beside the repository",
            dir.display()
        )
    });
    let mut files: Vec<std::path::PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("reading the corpus {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
        })
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        expected,
        "the corpus {} has {} templates, not the {expected} it holds",
        dir.display(),
        files.len()
    );
    files
}

/// A file of the shared test data, read; a missing one fails the test, naming the path.
pub fn shared_file(path: &str) -> String {
    let path = shared_testdata().join(path);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the shared test data {} is missing: {e}", path.display()))
}

/// The rules of the chart's ClusterRole `role` (`system:image-puller`, say) as a Role of
/// `namespace` (a ClusterRole would outlive the test and clash with the chart's); its name.
pub async fn chart_role_in(client: &Client, namespace: &str, role: &str) -> String {
    use k8s_openapi::api::rbac::v1::Role;
    let rendered = render_chart("slipway-system", &[])
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == role)
        .unwrap_or_else(|| panic!("the chart has no ClusterRole {role}"));
    let name = role.replace(':', "-");
    let local: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "rules": rendered["rules"],
    }))
    .expect("a Role");
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    if roles.get_opt(&name).await.expect("reading Roles").is_none() {
        roles
            .create(&PostParams::default(), &local)
            .await
            .expect("creating a Role");
    }
    name
}

/// Polls `check` until it returns Some, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match within(timeout, check).await {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Polls `check` until it returns Some, or gives None after `timeout` (for a caller that reports
/// what it saw before failing).
pub async fn within<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a namespace's pods and events say, for a test's failure message: each pod's phase, node
/// and container states, and the last events, oldest first.
pub async fn namespace_report(client: &Client, namespace: &str) -> String {
    use k8s_openapi::api::core::v1::{Event, Pod};
    let mut out = String::new();
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    for pod in pods {
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        out += &format!(
            "pod {} {} on {}\n",
            pod.metadata.name.unwrap_or_default(),
            status.phase.unwrap_or_default(),
            spec.node_name.unwrap_or_else(|| "(unscheduled)".into())
        );
        let containers = status
            .init_container_statuses
            .unwrap_or_default()
            .into_iter()
            .chain(status.container_statuses.unwrap_or_default());
        for c in containers {
            out += &format!("  {}: {:?}\n", c.name, c.state.unwrap_or_default());
        }
    }
    let mut events = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    events.sort_by_key(|e| e.last_timestamp.clone().or_else(|| e.first_timestamp.clone()));
    for e in events.iter().rev().take(40).rev() {
        out += &format!(
            "event {} {}/{}: {} {}\n",
            e.type_.as_deref().unwrap_or(""),
            e.involved_object.kind.as_deref().unwrap_or(""),
            e.involved_object.name.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.message.as_deref().unwrap_or("")
        );
    }
    out
}

/// Waits until the API server sends objects labelled `slipway.dev/test-run=<run>` through the
/// admission webhook registered for them: a dry-run ProjectRequest comes back stamped with a
/// requester, or (for a webhook registered with nothing listening) the API server reports that it
/// failed calling the webhook. Webhook configurations take effect a moment after they are written.
pub async fn await_admission_webhook(client: &Client, run: &str) {
    let api = dynamic_api(client, "ProjectRequest", "");
    let probe: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest",
        "metadata": {"name": format!("{run}-probe"), "labels": {"slipway.dev/test-run": run}},
    }))
    .expect("probe object");
    let params = PostParams {
        dry_run: true,
        field_manager: None,
    };
    eventually(
        "the API server to call the admission webhook",
        Duration::from_secs(30),
        || {
            let (api, probe, params) = (api.clone(), probe.clone(), params.clone());
            async move {
                match api.create(&params, &probe).await {
                    Ok(created) => created
                        .metadata
                        .annotations?
                        .contains_key("slipway.dev/requester")
                        .then_some(()),
                    Err(e) => e.to_string().contains("failed calling webhook").then_some(()),
                }
            }
        },
    )
    .await;
}

/// Waits until a namespace (a project's, say) is gone, with everything in it.
pub async fn await_namespace_gone(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    eventually(
        &format!("namespace {name} to be gone"),
        Duration::from_secs(90),
        || async { namespaces.get_opt(name).await.ok()?.is_none().then_some(()) },
    )
    .await;
    // The Project that mirrors it goes last, when its controller lifts the finalizer: a test that
    // stopped its controller before that would leave the Project Terminating for ever.
    let projects: Api<slipway_crds::Project> = Api::all(client.clone());
    eventually(
        &format!("project {name} to be gone"),
        Duration::from_secs(30),
        || async { projects.get_opt(name).await.ok()?.is_none().then_some(()) },
    )
    .await;
}

/// A loopback address with a port nothing listens on right now (for a server a test starts).
pub fn free_loopback_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// A copy of the admin kubeconfig (`KUBECONFIG`) that acts as `user` in the group
/// `system:authenticated` (kubeconfig impersonation), written into `dir`.
pub fn kubeconfig_as(dir: &std::path::Path, user: &str) -> std::path::PathBuf {
    let admin = std::env::var("KUBECONFIG").expect("KUBECONFIG names the dev cluster's kubeconfig");
    let mut config: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(admin).expect("reading KUBECONFIG"))
            .expect("KUBECONFIG is YAML");
    for entry in config["users"].as_sequence_mut().expect("kubeconfig users") {
        let body = entry["user"].as_mapping_mut().expect("a kubeconfig user");
        body.insert("as".into(), user.into());
        body.insert(
            "as-groups".into(),
            serde_yaml_ng::to_value(["system:authenticated"]).expect("a group list"),
        );
    }
    // KUBECONFIG is a list separated by colons: no colon in the file name.
    let path = dir.join(format!("{}.kubeconfig", user.replace(':', "_")));
    std::fs::write(&path, serde_yaml_ng::to_string(&config).expect("kubeconfig YAML"))
        .expect("writing the kubeconfig");
    path
}

/// Runs `program` with `args` (and `KUBECONFIG` set to `kubeconfig`, if given) off the async
/// runtime, and returns what it did.
pub async fn run_program(
    program: &str,
    kubeconfig: Option<&std::path::Path>,
    args: &[&str],
) -> std::process::Output {
    let program = program.to_string();
    let kubeconfig = kubeconfig.map(std::path::Path::to_path_buf);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(&program);
        command.args(&args);
        if let Some(k) = kubeconfig {
            command.env("KUBECONFIG", k);
        }
        command.output().expect("running the program")
    })
    .await
    .expect("the program's task")
}

/// A program's standard output and error, together.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A program `dev/` builds (`helm`, `kubectl`: the versions the dev cluster pins), by path.
pub fn dev_tool(name: &str) -> std::path::PathBuf {
    let set = if name == "helm" { "helm" } else { "control-plane" };
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(". dev/lib.sh && tool_dir {set}"))
        .current_dir(repo_root())
        .output()
        .expect("running bash");
    let path = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(name);
    assert!(
        path.exists(),
        "{} is missing: `make cluster-up` builds it",
        path.display()
    );
    path
}

/// The tag of the images `make images` built last (dev/images.sh writes it into the dev cluster's
/// state directory).
pub fn images_tag() -> String {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(". dev/lib.sh && cat \"$SLIPWAY_STATE/images.tag\"")
        .current_dir(repo_root())
        .output()
        .expect("running bash");
    let tag = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !tag.is_empty(),
        "no images.tag: run `make images` first"
    );
    tag
}

/// The objects `helm template` renders from charts/slipway (CRDs left out) into `namespace`,
/// with each of `values` passed as `--set`.
pub fn render_chart(namespace: &str, values: &[&str]) -> Vec<serde_json::Value> {
    let mut command = std::process::Command::new(dev_tool("helm"));
    command
        .args([
            "template",
            "slipway",
            "charts/slipway",
            "--skip-crds",
            "--kube-version",
            "1.35.4",
        ])
        .args(["--namespace", namespace])
        .current_dir(repo_root());
    for v in values {
        command.args(["--set", v]);
    }
    let out = command.output().expect("running helm");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    yaml_documents(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// A token of the service account `namespace/name` (made when it is missing), from the API
/// server's TokenRequest, good for `seconds` (at least 600).
pub async fn service_account_token(client: &Client, namespace: &str, name: &str, seconds: i64) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    if accounts
        .get_opt(name)
        .await
        .expect("reading the service account")
        .is_none()
    {
        let account: ServiceAccount = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .expect("a ServiceAccount");
        accounts
            .create(&PostParams::default(), &account)
            .await
            .expect("creating the service account");
    }
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(serde_json::json!({"spec": {"expirationSeconds": seconds}}))
            .expect("a TokenRequest");
    accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("a token of the service account")
        .status
        .expect("the TokenRequest's status")
        .token
}

/// Binds `role_kind`/`role` (`Role` or `ClusterRole`) in `namespace` to the service account
/// `account` (its namespace, its name) with a RoleBinding named `name`.
pub async fn bind_service_account(
    client: &Client,
    namespace: &str,
    name: &str,
    role_kind: &str,
    role: &str,
    account: (&str, &str),
) {
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "namespace": account.0, "name": account.1}],
    }))
    .expect("a RoleBinding");
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .expect("creating the RoleBinding");
}
