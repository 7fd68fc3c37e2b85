//! OpenShift's quickstarts on Slipway, unchanged: each corpus template the catalog covers is
//! instantiated as a TemplateInstance (the template inline, a Secret with only the source URL and
//! the parameters that have no default) by a user in a project of their own, with Slipway
//! installed by its chart on the dev cluster's real node and the catalog's ImageStreams in
//! `openshift` importing the stand-in images of `dev/catalog-images.sh`. For each: the instance
//! gets Ready (every object it made is, by OpenShift's readiness rules), every Build is Complete,
//! every DeploymentConfig and Deployment is available, the app's page is served through its
//! Service, its Ingress (made from the Route) points at that Service's port, the database round
//! trip works, and for `-persistent` templates the data survives the database pod's deletion.
//! It prints a table: template, build time, time to serving, result.
//!
//! `SLIPWAY_CONFORMANCE` picks the templates (comma-separated names, or `all`, the default);
//! `make conformance` runs them all, `make e2e` a representative part. Needs `make images` and
//! `dev/catalog-images.sh`.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use slipway_crds::build::BuildPhase;
use slipway_crds::template::TemplateInstance;
use slipway_crds::{Build, DeploymentConfig};
use slipway_testkit::real_node::run_pod;
use slipway_testkit::*;
use support::*;

/// How a quickstart's database is checked.
#[derive(Clone, Copy, Debug)]
enum Database {
    None,
    /// The app's page writes a row on every visit and shows the count read back
    /// (`Page views: N`); the database runs behind Service `DATABASE_SERVICE_NAME`.
    Counter,
    /// A database alone: a client pod of the same image writes a row and reads the count.
    Client(Engine),
}

#[derive(Clone, Copy, Debug)]
enum Engine {
    PostgreSql,
    MySql,
    Redis,
}

#[derive(Clone, Copy, Debug)]
struct Quickstart {
    /// The corpus file, under openshift-templates/.
    template: &'static str,
    /// The sample source under examples/quickstarts/ (served by git over http).
    source: Option<&'static str>,
    /// The path of the app's page and a text it must contain.
    page: Option<(&'static str, &'static str)>,
    database: Database,
    persistent: bool,
    /// The catalog's ImageStreams it uses.
    streams: &'static [&'static str],
    /// Parameters given besides the source URL (none but where the template's default names a
    /// branch of the original repository).
    parameters: &'static [(&'static str, &'static str)],
}

/// An app built from the sample `source`, without a database: its page at `/` must contain `text`.
/// Ephemeral, no parameters.
const fn app(
    template: &'static str,
    source: &'static str,
    text: &'static str,
    streams: &'static [&'static str],
) -> Quickstart {
    Quickstart {
        template,
        source: Some(source),
        page: Some(("/", text)),
        database: Database::None,
        persistent: false,
        streams,
        parameters: &[],
    }
}

/// An app like [`app`] whose page counts its visits in its database ([`Database::Counter`]).
const fn counter(
    template: &'static str,
    source: &'static str,
    text: &'static str,
    streams: &'static [&'static str],
) -> Quickstart {
    Quickstart {
        database: Database::Counter,
        ..app(template, source, text, streams)
    }
}

/// A database alone, checked by a client pod of `engine` ([`Database::Client`]). Ephemeral, no
/// parameters.
const fn database(template: &'static str, engine: Engine, streams: &'static [&'static str]) -> Quickstart {
    Quickstart {
        template,
        source: None,
        page: None,
        database: Database::Client(engine),
        persistent: false,
        streams,
        parameters: &[],
    }
}

impl Quickstart {
    /// The same quickstart, `-persistent`: its data must survive the database pod's deletion.
    const fn persistent(self) -> Self {
        Self {
            persistent: true,
            ..self
        }
    }

    /// The same quickstart, given `parameters` besides the source URL.
    const fn parameters(self, parameters: &'static [(&'static str, &'static str)]) -> Self {
        Self { parameters, ..self }
    }
}

/// Every quickstart of the corpus that the catalog covers. See docs/src/user-guide/quickstarts.md for the
/// corpus templates left out and why. A row: the template, then for an app its sample source, the
/// text of its page at `/` and the catalog's ImageStreams it uses; for a database alone its
/// engine and ImageStream.
#[rustfmt::skip]
const QUICKSTARTS: &[Quickstart] = &[
    counter("django--django-psql-persistent.json", "django-psql", "Database: postgresql",
        &["python", "postgresql"]).persistent(),
    counter("django--django-psql-example.json", "django-psql", "Database: postgresql",
        &["python", "postgresql"]),
    counter("django--django-example.json", "django-psql", "Database: sqlite", &["python"]),
    counter("nodejs--nodejs-postgresql-persistent.json", "nodejs-psql", "Page views: ",
        &["nodejs", "postgresql"]).persistent(),
    counter("nodejs--nodejs-postgresql-example.json", "nodejs-psql", "Page views: ",
        &["nodejs", "postgresql"]),
    app("nodejs--nodejs-example.json", "nodejs-psql", "No database is configured", &["nodejs"]),
    app("nodejs--react-web-app-example.json", "react-web-app", "React on Slipway", &["nodejs"]),
    database("postgresql--postgresql-persistent.json", Engine::PostgreSql, &["postgresql"]).persistent(),
    database("postgresql--postgresql-ephemeral.json", Engine::PostgreSql, &["postgresql"]),
    counter("dancer--dancer-mysql-persistent.json", "dancer-mysql", "Page views: ",
        &["perl", "mysql"]).persistent(),
    counter("dancer--dancer-mysql-example.json", "dancer-mysql", "Page views: ", &["perl", "mysql"]),
    app("dancer--dancer-example.json", "dancer-mysql", "No database is configured", &["perl"]),
    counter("cakephp--cakephp-mysql-persistent.json", "cakephp-mysql", "Page views: ",
        &["php", "mysql"]).persistent(),
    counter("cakephp--cakephp-mysql-example.json", "cakephp-mysql", "Page views: ", &["php", "mysql"]),
    app("cakephp--cakephp-example.json", "cakephp-mysql", "No database is configured", &["php"]),
    counter("rails--rails-pgsql-persistent.json", "rails-postgresql", "Page views: ",
        &["ruby", "postgresql"]).persistent().parameters(&[("SOURCE_REPOSITORY_REF", "main")]),
    counter("rails--rails-postgresql-example.json", "rails-postgresql", "Page views: ",
        &["ruby", "postgresql"]).parameters(&[("SOURCE_REPOSITORY_REF", "main")]),
    app("httpd--httpd-example.json", "httpd-site", "Welcome to your static httpd site on Slipway",
        &["httpd"]),
    app("nginx--nginx-example.json", "nginx-site", "Welcome to your static nginx site on Slipway",
        &["nginx"]),
    database("mysql--mysql-persistent.json", Engine::MySql, &["mysql"]).persistent(),
    database("mysql--mysql-ephemeral.json", Engine::MySql, &["mysql"]),
    database("mariadb--mariadb-persistent.json", Engine::MySql, &["mariadb"]).persistent(),
    database("mariadb--mariadb-ephemeral.json", Engine::MySql, &["mariadb"]),
    database("redis--redis-persistent.json", Engine::Redis, &["redis"]).persistent(),
    database("redis--redis-ephemeral.json", Engine::Redis, &["redis"]),
];

/// The template's name: its file name without the folder prefix and `.json`.
fn short_name(template: &str) -> &str {
    let stem = template.trim_end_matches(".json");
    stem.split_once("--").map_or(stem, |(_, name)| name)
}

/// One row of the table.
struct Outcome {
    template: String,
    build: Option<Duration>,
    serving: Option<Duration>,
    result: Result<String, String>,
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or("-".to_owned(), |d| format!("{:.0} s", d.as_secs_f64()))
}

fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::from("| template | build | time to serving | result |\n|---|---|---|---|\n");
    for o in outcomes {
        let result = match &o.result {
            Ok(what) => format!("pass: {what}"),
            Err(why) => format!("FAIL: {}", why.lines().next().unwrap_or_default()),
        };
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            o.template,
            seconds(o.build),
            seconds(o.serving),
            result
        )
        .unwrap();
    }
    out
}

/// The quickstarts `SLIPWAY_CONFORMANCE` names (all by default).
fn selected() -> Vec<Quickstart> {
    let wanted = std::env::var("SLIPWAY_CONFORMANCE").unwrap_or_else(|_| "all".into());
    if wanted == "all" {
        return QUICKSTARTS.to_vec();
    }
    wanted
        .split(',')
        .map(|name| {
            *QUICKSTARTS
                .iter()
                .find(|q| short_name(q.template) == name.trim())
                .unwrap_or_else(|| {
                    panic!("SLIPWAY_CONFORMANCE names {name:?}, which is not a covered quickstart")
                })
        })
        .collect()
}

/// A bare repository `NAME.git` under `root` holding the sample source at one commit on `main`.
fn source_repository(root: &Path, work_root: &Path, sample: &str) -> PathBuf {
    // Quickstarts that share a sample make it once.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let bare = root.join(format!("{sample}.git"));
    if bare.exists() {
        return bare;
    }
    ok(
        run(
            Path::new("git"),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
            None,
        ),
        "git init --bare",
    );
    let work = work_root.join(sample);
    let examples = repo_root().join("examples/quickstarts").join(sample);
    copy_tree(&examples, &work);
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", &format!("the {sample} sample")]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    bare
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The template's parameter values: the default of `name`, or what `given` says.
fn parameter(template: &Value, name: &str) -> Option<String> {
    template["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?
        .get("value")?
        .as_str()
        .map(str::to_owned)
}

/// The first number after `Page views: ` in a page.
fn page_views(body: &str) -> Option<u64> {
    let rest = &body[body.find("Page views: ")? + "Page views: ".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Waits for a page of `service` whose body contains `expected`; the body.
async fn page(
    client: &kube::Client,
    ns: &str,
    service: &str,
    path: &str,
    expected: &str,
    timeout: Duration,
) -> String {
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get(service)
        .await
        .unwrap();
    let port = svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port;
    let addr = service_addr(client, ns, service, port as u16).await;
    eventually(
        &format!("{service}{path} to answer {expected:?}"),
        timeout,
        || async {
            match get(addr, path).await {
                Ok((200, body)) if body.contains(expected) => Some(body),
                _ => None,
            }
        },
    )
    .await
}

/// The Ingress made from the template's Route points at `service` and at a port it has.
async fn assert_ingress(client: &kube::Client, ns: &str, service: &str) {
    let ingresses = Api::<Ingress>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get(service)
        .await
        .unwrap();
    let ports = svc.spec.unwrap().ports.unwrap_or_default();
    let backend = ingresses
        .items
        .iter()
        .flat_map(|i| i.spec.clone().unwrap_or_default().rules.unwrap_or_default())
        .flat_map(|r| r.http.map(|h| h.paths).unwrap_or_default())
        .filter_map(|p| p.backend.service)
        .find(|b| b.name == service)
        .unwrap_or_else(|| panic!("no Ingress (from the template's Route) points at Service {service}"));
    let port = backend.port.unwrap();
    assert!(
        ports
            .iter()
            .any(|p| Some(p.port) == port.number || (p.name.is_some() && p.name == port.name)),
        "the Ingress's port {port:?} is not one of Service {service}'s {ports:?}"
    );
}

/// The pods of `label`=`value` that are ready.
async fn ready_pods(client: &kube::Client, ns: &str, selector: &str) -> Vec<Pod> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    pods.items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect()
}

/// Deletes the database's pod and waits until another one is ready.
async fn restart_database(client: &kube::Client, ns: &str, service: &str) {
    let selector = format!("name={service}");
    let before = ready_pods(client, ns, &selector).await;
    assert_eq!(before.len(), 1, "one ready pod of {service}");
    let old = before[0].metadata.uid.clone();
    Api::<Pod>::namespaced(client.clone(), ns)
        .delete(
            before[0].metadata.name.as_deref().unwrap(),
            &DeleteParams::default(),
        )
        .await
        .unwrap();
    eventually(
        &format!("a new ready pod of {service}"),
        Duration::from_secs(300),
        || async {
            let now = ready_pods(client, ns, &selector).await;
            now.iter().any(|p| p.metadata.uid != old).then_some(())
        },
    )
    .await;
}

/// Runs `script` with the database image's client in a pod of the project; its log.
async fn client_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    image: &str,
    env: &[(&str, String)],
    script: &str,
) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let env: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "client", "image": image, "env": env, "command": ["/bin/bash", "-c", script]}]}
    }))
    .unwrap();
    let (phase, log) = run_pod(&pods, &pod, Duration::from_secs(180)).await;
    assert_eq!(phase, "Succeeded", "client pod {name}:\n{log}");
    log
}

/// The database's client round trip: a row written, the count read back.
async fn database_round_trip(
    client: &kube::Client,
    ns: &str,
    engine: Engine,
    service: &str,
    credentials: &BTreeMap<String, String>,
    attempt: &str,
) -> u64 {
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get(service)
        .await
        .unwrap();
    let host = svc.spec.unwrap().cluster_ip.unwrap();
    let cred = |k: &str| credentials.get(k).cloned().unwrap_or_default();
    let (image, env, script) = match engine {
        Engine::PostgreSql => (
            "postgresql",
            vec![("PGPASSWORD", cred("database-password"))],
            format!(
                "psql -h {host} -U {} -d {} -Atc 'CREATE TABLE IF NOT EXISTS visits (at timestamptz DEFAULT now()); \
                 INSERT INTO visits DEFAULT VALUES; SELECT count(*) FROM visits'",
                cred("database-user"),
                cred("database-name")
            ),
        ),
        Engine::MySql => (
            "mariadb",
            vec![("MYSQL_PWD", cred("database-password"))],
            format!(
                "mysql -h {host} -u {} -D {} -N -e 'CREATE TABLE IF NOT EXISTS visits (at TIMESTAMP DEFAULT CURRENT_TIMESTAMP); \
                 INSERT INTO visits () VALUES (); SELECT count(*) FROM visits'",
                cred("database-user"),
                cred("database-name")
            ),
        ),
        Engine::Redis => (
            "redis",
            vec![("REDISCLI_AUTH", cred("database-password"))],
            format!("redis-cli -h {host} INCR visits"),
        ),
    };
    let image = format!("{}/slipway-catalog/{image}:latest", support::NODE_REGISTRY);
    let log = client_pod(client, ns, &format!("client-{attempt}"), &image, &env, &script).await;
    log.lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in the client's output:\n{log}"))
}

/// Every Build of the project Complete; the longest one's duration.
async fn builds_complete(client: &kube::Client, ns: &str) -> Option<Duration> {
    let builds = Api::<Build>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut longest = None;
    for build in &builds.items {
        let status = build.status.clone().unwrap_or_default();
        assert_eq!(
            status.phase,
            BuildPhase::Complete,
            "Build {} is {:?}: {:?}",
            build.metadata.name.as_deref().unwrap_or_default(),
            status.phase,
            status.message
        );
        let took = status.duration.map(|d| Duration::from_nanos(d.max(0) as u64));
        longest = longest.max(took);
    }
    longest
}

/// Every DeploymentConfig and Deployment of the project available.
async fn workloads_available(client: &kube::Client, ns: &str) -> usize {
    let dcs = Api::<DeploymentConfig>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    for dc in &dcs.items {
        let status = dc.status.clone().unwrap_or_default();
        let available = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True");
        assert!(
            available,
            "DeploymentConfig {:?} is not available: {status:?}",
            dc.metadata.name
        );
    }
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    for d in &deployments.items {
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let have = d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
        assert!(
            have >= want,
            "Deployment {:?} has {have} of {want} available",
            d.metadata.name
        );
    }
    dcs.items.len() + deployments.items.len()
}

/// One quickstart, start to end; what it showed.
async fn quickstart(
    q: Quickstart,
    users: PathBuf,
    git_root: PathBuf,
    work_root: PathBuf,
    git_url: String,
) -> (Option<Duration>, Option<Duration>, String) {
    let client = client().await;
    let name = short_name(q.template);
    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(shared_testdata().join("openshift-templates").join(q.template)).unwrap(),
    )
    .unwrap();
    let project = unique_name(&format!(
        "qs-{}",
        name.chars().take(12).collect::<String>().trim_end_matches('-')
    ));
    // Alice's kubeconfig of her own for this quickstart: `slip new-project` rewrites it.
    let home = users.join(name);
    std::fs::create_dir_all(&home).unwrap();
    let alice = kubeconfig_as(&home, "alice");
    new_project(&alice, &project).await;
    // What `make clean-test-namespaces` removes if this run is killed before its guard acts.
    Api::<slipway_crds::Project>::all(client.clone())
        .patch(
            &project,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"labels": {"slipway.dev/test-run": "conformance"}}}),
            ),
        )
        .await
        .unwrap();
    let _guard = ProjectGuard {
        kubeconfig: alice.clone(),
        name: project.clone(),
    };

    // Only the source and what has no default: the template is otherwise unchanged.
    let mut parameters = BTreeMap::new();
    if let Some(sample) = q.source {
        source_repository(&git_root, &work_root, sample);
        parameters.insert(
            "SOURCE_REPOSITORY_URL".to_owned(),
            format!("{git_url}/{sample}.git"),
        );
    }
    for (name, value) in q.parameters {
        parameters.insert((*name).to_owned(), (*value).to_owned());
    }
    let as_alice = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&alice).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "parameters"},
        "stringData": parameters,
    }))
    .unwrap();
    Api::<Secret>::namespaced(as_alice.clone(), &project)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut embedded = template.clone();
    embedded.as_object_mut().unwrap().remove("apiVersion");
    embedded.as_object_mut().unwrap().remove("kind");
    let instance: TemplateInstance = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"template": embedded, "secret": {"name": "parameters"}},
    }))
    .unwrap();
    let started = Instant::now();
    let instances = Api::<TemplateInstance>::namespaced(as_alice.clone(), &project);
    instances.create(&PostParams::default(), &instance).await.unwrap();

    // Ready: every object it made is (Builds Complete, rollouts available).
    eventually(
        &format!("TemplateInstance {name} to be Ready"),
        Duration::from_secs(900),
        || async {
            let status = instances.get(name).await.ok()?.status?;
            for c in &status.conditions {
                if c.type_ == "InstantiateFailure" && c.status == "True" {
                    panic!("{name}: instantiation failed: {}", c.message);
                }
            }
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(())
        },
    )
    .await;
    let build = builds_complete(&client, &project).await;
    let workloads = workloads_available(&client, &project).await;
    let mut shown = vec![if workloads == 1 {
        "its workload available".to_owned()
    } else {
        format!("its {workloads} workloads available")
    }];

    let service = parameter(&template, "NAME")
        .or_else(|| parameter(&template, "DATABASE_SERVICE_NAME"))
        .unwrap();
    let serving: Option<Duration>;
    match q.database {
        Database::Counter | Database::None => {
            let (path, expected) = q.page.unwrap();
            let first = page(
                &client,
                &project,
                &service,
                path,
                expected,
                Duration::from_secs(120),
            )
            .await;
            serving = Some(started.elapsed());
            assert_ingress(&client, &project, &service).await;
            shown.push("page and Ingress".into());
            if matches!(q.database, Database::Counter) {
                let second = page(
                    &client,
                    &project,
                    &service,
                    path,
                    expected,
                    Duration::from_secs(30),
                )
                .await;
                let (a, b) = (page_views(&first).unwrap(), page_views(&second).unwrap());
                assert!(
                    b > a,
                    "a visit writes a row that the next one reads back: {a} then {b}"
                );
                shown.push("database round trip".into());
                if q.persistent {
                    let db = parameter(&template, "DATABASE_SERVICE_NAME").unwrap();
                    restart_database(&client, &project, &db).await;
                    let third = page(
                        &client,
                        &project,
                        &service,
                        path,
                        expected,
                        Duration::from_secs(180),
                    )
                    .await;
                    let c = page_views(&third).unwrap();
                    assert!(
                        c > b,
                        "the rows written before the database pod was deleted are kept: {b} then {c}"
                    );
                    shown.push("data kept across the database pod's deletion".into());
                }
            }
        }
        Database::Client(engine) => {
            let credentials: BTreeMap<String, String> = Api::<Secret>::namespaced(client.clone(), &project)
                .get(&service)
                .await
                .unwrap()
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
                .collect();
            let a = database_round_trip(&client, &project, engine, &service, &credentials, "1").await;
            serving = Some(started.elapsed());
            let b = database_round_trip(&client, &project, engine, &service, &credentials, "2").await;
            assert!(b > a, "a row written is read back: {a} then {b}");
            shown.push("database round trip".into());
            if q.persistent {
                restart_database(&client, &project, &service).await;
                let c = database_round_trip(&client, &project, engine, &service, &credentials, "3").await;
                assert!(
                    c > b,
                    "the rows written before the database pod was deleted are kept: {b} then {c}"
                );
                shown.push("data kept across the database pod's deletion".into());
            }
        }
    }
    (build, serving, shown.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs `make images` and dev/catalog-images.sh; run with `make conformance`"]
async fn quickstarts_run_unchanged() {
    ensure_crds();
    let client = client().await;
    let chosen = selected();
    let _release = ReleaseGuard;
    install(&[]);
    // The catalog's streams the chosen quickstarts use have imported their images.
    let streams = Api::<slipway_crds::ImageStream>::namespaced(client.clone(), "openshift");
    let mut needed: Vec<&str> = chosen.iter().flat_map(|q| q.streams.iter().copied()).collect();
    needed.sort_unstable();
    needed.dedup();
    for stream in needed {
        eventually(
            &format!("openshift/{stream} to import"),
            Duration::from_secs(120),
            || async {
                let s = streams.get_opt(stream).await.ok()??;
                s.status?.tags.iter().all(|t| !t.items.is_empty()).then_some(())
            },
        )
        .await;
    }

    // The chart installed every covered quickstart as a Template of the catalog's namespace too
    // (what `slip new-app django-psql-persistent` finds there).
    let templates = Api::<slipway_crds::Template>::namespaced(client.clone(), "openshift")
        .list(&ListParams::default().labels("slipway.dev/catalog=true"))
        .await
        .unwrap();
    let installed: Vec<String> = templates
        .items
        .iter()
        .filter_map(|t| t.metadata.name.clone())
        .collect();
    for q in QUICKSTARTS {
        assert!(
            installed.iter().any(|n| n == short_name(q.template)),
            "the catalog has no Template {} (it has {installed:?})",
            short_name(q.template)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let git_root = dir.path().join("git");
    let work_root = dir.path().join("work");
    std::fs::create_dir_all(&git_root).unwrap();
    let server = git_http::GitHttp::start(&git_root, format!("{NODE_IP}:0").parse().unwrap())
        .await
        .unwrap();
    let git_url = server.path_url(NODE_IP, "");
    let git_url = git_url.trim_end_matches('/').to_owned();

    // Two at a time: the machine has few cores, and builds are most of the time.
    let runs = futures::stream::iter(chosen.into_iter().map(|q| {
        let (users, git_root, work_root, git_url) = (
            users.clone(),
            git_root.clone(),
            work_root.clone(),
            git_url.clone(),
        );
        async move {
            let started = Instant::now();
            let handle = tokio::spawn(quickstart(q, users, git_root, work_root, git_url));
            let outcome = match handle.await {
                Ok((build, serving, shown)) => Outcome {
                    template: short_name(q.template).into(),
                    build,
                    serving,
                    result: Ok(shown),
                },
                Err(e) => {
                    let why = e.into_panic();
                    let why = why
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| why.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Outcome {
                        template: short_name(q.template).into(),
                        build: None,
                        serving: None,
                        result: Err(why),
                    }
                }
            };
            eprintln!(
                "{} done in {:.0} s: {:?}",
                outcome.template,
                started.elapsed().as_secs_f64(),
                outcome.result
            );
            outcome
        }
    }))
    .buffer_unordered(2)
    .collect::<Vec<_>>()
    .await;
    let mut outcomes = runs;
    outcomes.sort_by(|a, b| a.template.cmp(&b.template));
    let table = table(&outcomes);
    println!("{table}");
    let report = repo_root().join("target/conformance.md");
    std::fs::write(&report, &table).unwrap();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} quickstarts failed:\n{}",
        failed.len(),
        outcomes.len(),
        failed
            .iter()
            .map(|o| format!("{}: {}", o.template, o.result.as_ref().unwrap_err()))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
