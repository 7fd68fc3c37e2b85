//! Every field of a BuildConfig carried out where a user sees it: one BuildConfig per row, built
//! by the build controller (in-process, this namespace only) in pods on the dev cluster's real
//! node from a git repository served over http, pushed to the dev registry, then the image read
//! back (its config, its layers) or run.
//!
//! Rows: contextDir (Source and Docker), `.s2i/bin` over the image's scripts and the strategy's
//! scripts URL over `.s2i/bin`, incremental (the second build sees the first's artifacts),
//! postCommit pass and fail (no push on failure; Source and Docker), Docker dockerfilePath /
//! buildArgs (from the BuildConfig and from the start request, as `slip start-build --build-arg`
//! sends them) / noCache / from (the last FROM) / env / SkipLayers, an inline Dockerfile, a build
//! secret present during the build and in no layer of the image, a configMap input, imageLabels
//! and `io.openshift.build.*` labels in the image config, a Custom build with a custom builder
//! image made by this test, source images (a file and a directory's contents copied out of
//! another image; a path it lacks), and what is refused: a missing build secret, an unsupported
//! field.
//!
//! Needs the images of `make images` (dev/images.sh; it records their tag); part of `make e2e`
//! (alone: `make e2e-builds`).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::collections::BTreeMap;
use std::io::Read;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use slipway_client::instantiate::instantiate;
use slipway_crds::BuildConfig;
use slipway_crds::build::{BuildPhase, BuildRequest};
use slipway_operator::build::pod::pod_name;
use slipway_testkit::real_node::*;
use slipway_testkit::*;

mod real_node_support;

const SECRET_VALUE: &str = "s3cr3t-value-never-in-a-layer";

/// The application repository of every row.
fn sources() -> BTreeMap<&'static str, String> {
    let base = format!("{NODE_REGISTRY}/slipway/busybox:latest");
    BTreeMap::from([
        ("html/index.html", "from the root\n".into()),
        ("app/html/index.html", "from app\n".into()),
        // `.s2i/bin` wins over the image's scripts; a scripts URL wins over `.s2i/bin`.
        (
            "override/.s2i/bin/assemble",
            "#!/bin/sh\nmkdir -p /tmp/app && echo 'assembled by .s2i/bin' > /tmp/app/index.html\n".into(),
        ),
        ("override/html/index.html", "assembled by the image\n".into()),
        // Build inputs, seen by assemble; the secret's value must not reach a layer.
        (
            "inputs/.s2i/bin/assemble",
            "#!/bin/sh\nset -e\nmkdir -p /tmp/app\nwc -c < /tmp/src/creds/token | tr -d ' ' > /tmp/app/secret-length\n\
             cat /tmp/src/settings/mode > /tmp/app/mode\n"
                .into(),
        ),
        (
            "docker/Dockerfile.custom",
            format!(
                "FROM {base}\nUSER 0\nARG V=unset\nRUN echo \"$V\" > /v && echo \"${{GREETING:-none}}\" > /g\n\
                 COPY page.txt /page.txt\nRUN echo second > /second\n"
            ),
        ),
        ("docker/page.txt", "a page from the context\n".into()),
    ])
}

/// The custom builder this test writes: a shell script that shows what a Custom build gets.
const CUSTOM_BUILDER: &str = r#"#!/bin/sh
echo "custom builder: OUTPUT_IMAGE=$OUTPUT_IMAGE OUTPUT_REGISTRY=$OUTPUT_REGISTRY"
echo "custom builder: SOURCE_URI=$SOURCE_URI MODE=$MODE"
test -f "$PUSH_DOCKERCFG_PATH/.dockerconfigjson" && echo "custom builder: push secret mounted"
test -f /var/run/custom/token && echo "custom builder: strategy secret mounted"
case "$BUILD" in *'"kind":"Build"'*) echo "custom builder: BUILD carries the Build";; esac
printf '{"stage":"custom","success":true}' > /dev/termination-log
"#;

/// The custom builder image: s2i-busybox plus the script.
fn custom_builder_image() -> String {
    test_image(
        "slipway-test/custom-builder",
        &format!(
            "FROM {LOCAL_REGISTRY}/slipway/s2i-busybox:latest\nCOPY custom-build /usr/local/bin/custom-build\n\
             ENTRYPOINT [\"/usr/local/bin/custom-build\"]\n"
        ),
        &[("custom-build", CUSTOM_BUILDER)],
    )
}

fn s2i(from: &str) -> Value {
    json!({"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": from}}})
}

/// The BuildConfigs of the matrix, by name (`output` is added to each).
fn rows(git: &str, builder: &str, custom: &str) -> Vec<(&'static str, Value)> {
    let git_source = |dir: Option<&str>| match dir {
        Some(d) => json!({"type": "Git", "git": {"uri": git, "ref": "main"}, "contextDir": d}),
        None => json!({"type": "Git", "git": {"uri": git, "ref": "main"}}),
    };
    let mut scripts = s2i(builder);
    scripts["sourceStrategy"]["scripts"] = json!("image:///usr/libexec/s2i");
    let mut incremental = s2i(builder);
    incremental["sourceStrategy"]["incremental"] = json!(true);
    let docker = json!({"type": "Docker", "dockerStrategy": {
        "dockerfilePath": "Dockerfile.custom", "noCache": true,
        "from": {"kind": "DockerImage", "name": builder},
        "buildArgs": [{"name": "V", "value": "from-the-buildconfig"}],
        "env": [{"name": "GREETING", "value": "hello \"docker\""}],
        "imageOptimizationPolicy": "SkipLayers"}});
    vec![
        (
            "context",
            json!({"source": git_source(Some("app")), "strategy": s2i(builder),
            "output": {"imageLabels": [{"name": "team", "value": "blue"}]},
            "postCommit": {"script": "test -s /tmp/app/index.html"}}),
        ),
        (
            "dotbin",
            json!({"source": git_source(Some("override")), "strategy": s2i(builder)}),
        ),
        (
            "scripts",
            json!({"source": git_source(Some("override")), "strategy": scripts}),
        ),
        (
            "incremental",
            json!({"source": git_source(Some("app")), "strategy": incremental}),
        ),
        (
            "hookfail",
            json!({"source": git_source(Some("app")), "strategy": s2i(builder),
            "postCommit": {"script": "echo failing on purpose; exit 3"}}),
        ),
        (
            "inputs",
            json!({"source": {"type": "Git", "git": {"uri": git, "ref": "main"}, "contextDir": "inputs",
                "secrets": [{"secret": {"name": "build-token"}, "destinationDir": "creds"}],
                "configMaps": [{"configMap": {"name": "build-settings"}, "destinationDir": "settings"}]},
            "strategy": s2i(builder)}),
        ),
        (
            "missing",
            json!({"source": {"type": "Git", "git": {"uri": git, "ref": "main"},
                "secrets": [{"secret": {"name": "no-such-secret"}}]}, "strategy": s2i(builder)}),
        ),
        (
            "docker",
            json!({"source": git_source(Some("docker")), "strategy": docker,
            "postCommit": {"command": ["/bin/sh", "-c", "test -s /page.txt"]}}),
        ),
        (
            "dockerhook",
            json!({"source": git_source(Some("docker")),
            "strategy": {"type": "Docker", "dockerStrategy": {"dockerfilePath": "Dockerfile.custom"}},
            "postCommit": {"args": ["/bin/sh", "-c", "exit 4"]}}),
        ),
        (
            "inline",
            json!({"source": {"type": "Dockerfile",
                "dockerfile": format!("FROM {NODE_REGISTRY}/slipway/busybox:latest\nRUN echo inline > /inline\nRUN echo two > /two\n")},
            "strategy": {"type": "Docker", "dockerStrategy": {}}}),
        ),
        (
            "custom",
            json!({"source": git_source(None),
            "strategy": {"type": "Custom", "customStrategy": {"from": {"kind": "DockerImage", "name": custom},
                "env": [{"name": "MODE", "value": "matrix"}],
                "secrets": [{"secretSource": {"name": "build-token"}, "mountPath": "/var/run/custom"}]}},
            "output": {"pushSecret": {"name": "push-creds"}}}),
        ),
        (
            "imagesrc",
            json!({"source": {"type": "Dockerfile",
                "dockerfile": format!("FROM {NODE_REGISTRY}/slipway/busybox:latest\nCOPY copied/ /copied/\nCOPY scripts/ /scripts/\n"),
                "images": [{"from": {"kind": "DockerImage", "name": builder},
                    "paths": [{"sourcePath": "/usr/libexec/s2i/run", "destinationDir": "copied"},
                              {"sourcePath": "/usr/libexec/s2i/.", "destinationDir": "scripts"}]}]},
            "strategy": {"type": "Docker", "dockerStrategy": {}}}),
        ),
        (
            "imagemissing",
            json!({"source": {"type": "Git", "git": {"uri": git, "ref": "main"}, "contextDir": "app",
                "images": [{"from": {"kind": "DockerImage", "name": builder},
                    "paths": [{"sourcePath": "/no/such/path", "destinationDir": "copied"}]}]},
            "strategy": s2i(builder)}),
        ),
        (
            "unsupported",
            json!({"source": {"type": "Git", "git": {"uri": git, "ref": "main"},
                "images": [{"from": {"kind": "DockerImage", "name": builder}, "as": ["builder"],
                    "paths": [{"sourcePath": "/usr/libexec/s2i/run", "destinationDir": "copied"}]}]},
            "strategy": s2i(builder)}),
        ),
    ]
}

/// The matrix's builds, and what only it needs.
struct Matrix {
    builds: real_node_support::Builds,
    commit: String,
}

impl std::ops::Deref for Matrix {
    type Target = real_node_support::Builds;
    fn deref(&self) -> &Self::Target {
        &self.builds
    }
}

impl Matrix {
    fn output(&self, row: &str) -> String {
        format!("{NODE_REGISTRY}/{}/{row}:latest", self.repository)
    }

    async fn start(&self, row: &str, request: &BuildRequest) -> String {
        instantiate(&self.client, &self.ns, row, request)
            .await
            .unwrap()
            .name_any()
    }

    fn config(&self, row: &str, digest: &str) -> (Value, Value) {
        registry_image(&format!("{}/{row}", self.repository), digest).unwrap()
    }
}

async fn setup(client: &kube::Client, n: &str, root: &std::path::Path) -> (git_http::GitHttp, String) {
    pin_to_real_node(client, n).await;
    let commit = git_repository(root, "app", &sources());
    let server = git_http::GitHttp::start(root, format!("{NODE_IP}:0").parse().unwrap())
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "build-token"},
        "stringData": {"token": SECRET_VALUE}}))
    .unwrap();
    let config: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "build-settings"}, "data": {"mode": "matrix"}}))
            .unwrap();
    let push: Secret = serde_json::from_value(json!({"metadata": {"name": "push-creds"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": "{\"auths\":{}}"}}))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), n)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    Api::<Secret>::namespaced(client.clone(), n)
        .create(&PostParams::default(), &push)
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), n)
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
    (server, commit)
}

#[ignore = "needs `make images`; run with `make e2e-builds`"]
#[tokio::test(flavor = "multi_thread")]
async fn every_buildconfig_field_is_carried_out_on_the_real_node() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "fields").await;
    let n = ns.name.clone();
    let dir = tempfile::tempdir().unwrap();
    let (server, commit) = setup(&client, &n, dir.path()).await;
    let m = Matrix {
        builds: real_node_support::Builds {
            client: client.clone(),
            ns: n.clone(),
            repository: format!("slipway-test/{n}"),
        },
        commit,
    };
    let builder = format!("{NODE_REGISTRY}/slipway/s2i-busybox:latest");
    let custom = custom_builder_image();
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &n);
    for (row, mut spec) in rows(&server.url(NODE_IP, "app"), &builder, &custom) {
        spec["output"]["to"] = json!({"kind": "DockerImage", "name": m.output(row)});
        spec["completionDeadlineSeconds"] = json!(900);
        let bc: BuildConfig = serde_json::from_value(json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": row}, "spec": spec}))
        .unwrap();
        configs.create(&PostParams::default(), &bc).await.unwrap();
    }
    let controller = real_node_support::start_build_controller(&n).await;

    let request = BuildRequest::default();
    let mut started = BTreeMap::new();
    for row in [
        "context",
        "dotbin",
        "scripts",
        "incremental",
        "hookfail",
        "inputs",
        "missing",
        "inline",
        "custom",
        "unsupported",
        "imagesrc",
        "imagemissing",
        "dockerhook",
    ] {
        started.insert(row, m.start(row, &request).await);
    }
    // `slip start-build --build-arg V=...` sends this request: it wins over the BuildConfig's.
    let with_arg = BuildRequest {
        build_args: vec![k8s_openapi::api::core::v1::EnvVar {
            name: "V".into(),
            value: Some("from-the-request".into()),
            value_from: None,
        }],
        ..BuildRequest::default()
    };
    started.insert("docker", m.start("docker", &with_arg).await);

    check_source_rows(&m, &started).await;
    check_docker_rows(&m, &started).await;
    check_image_sources(&m, &started).await;
    check_refusals(&m, &started).await;

    controller.abort();
    drop(server);
    ns.delete().await;
}

async fn check_source_rows(m: &Matrix, started: &BTreeMap<&str, String>) {
    // contextDir: the app directory's page, not the root's; labels in the image config.
    let digest = m.complete(&started["context"]).await;
    assert_eq!(
        m.run("context", &digest, "cat /tmp/app/index.html").await.trim(),
        "from app"
    );
    let (_, config) = m.config("context", &digest);
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["team"], "blue");
    assert_eq!(labels["io.openshift.build.commit.id"], m.commit.as_str());
    assert_eq!(
        labels["io.openshift.build.commit.author"],
        "Alice <alice@example.com>"
    );
    assert_eq!(
        labels["io.openshift.build.commit.message"],
        "the test's application"
    );
    assert_eq!(labels["io.openshift.build.source-context-dir"], "app");
    assert_eq!(labels["io.openshift.build.name"], started["context"].as_str());
    assert_eq!(labels["io.openshift.build.namespace"], m.ns.as_str());
    assert!(
        labels["io.openshift.build.commit.date"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
    // `.s2i/bin` over the image's scripts; the strategy's scripts URL over `.s2i/bin`.
    let digest = m.complete(&started["dotbin"]).await;
    assert_eq!(
        m.run("dotbin", &digest, "cat /tmp/app/index.html").await.trim(),
        "assembled by .s2i/bin"
    );
    let digest = m.complete(&started["scripts"]).await;
    assert_eq!(
        m.run("scripts", &digest, "cat /tmp/app/index.html").await.trim(),
        "assembled by the image"
    );
    // Incremental: the second build restores the first one's artifacts.
    m.complete(&started["incremental"]).await;
    let second = m.start("incremental", &BuildRequest::default()).await;
    let digest = m.complete(&second).await;
    assert_eq!(
        m.run("incremental", &digest, "cat /tmp/app/build-count")
            .await
            .trim(),
        "2"
    );
    // A failing post-commit hook: Failed, nothing pushed.
    let status = m.finished(&started["hookfail"]).await;
    assert_eq!(status.phase, BuildPhase::Failed);
    assert_eq!(
        status.reason.as_deref(),
        Some("PostCommitHookFailed"),
        "{status:?}"
    );
    assert!(m.log(&started["hookfail"]).await.contains("failing on purpose"));
    assert!(registry_digest(&format!("{}/hookfail", m.repository), "latest").is_none());
    // Build inputs: there for assemble, in no layer of the image.
    let digest = m.complete(&started["inputs"]).await;
    let out = m
        .run(
            "inputs",
            &digest,
            "cat /tmp/app/secret-length /tmp/app/mode; ls /tmp/src/creds 2>&1 || true",
        )
        .await;
    assert!(
        out.starts_with(&format!("{}\nmatrix", SECRET_VALUE.len())),
        "{out}"
    );
    assert!(
        out.contains("No such file"),
        "the secret stayed in the image: {out}"
    );
    for layer in registry_layers(&format!("{}/inputs", m.repository), &digest) {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert!(
            !tar.windows(SECRET_VALUE.len())
                .any(|w| w == SECRET_VALUE.as_bytes()),
            "a layer holds the build secret"
        );
    }
}

async fn check_docker_rows(m: &Matrix, started: &BTreeMap<&str, String>) {
    // dockerfilePath, buildArgs (the request's), env as ENV, from replacing the last FROM,
    // SkipLayers, the post-commit command, and the labels.
    let digest = m.complete(&started["docker"]).await;
    let out = m.run("docker", &digest, "cat /v /g /page.txt /second").await;
    assert_eq!(
        out,
        "from-the-request\nhello \"docker\"\na page from the context\nsecond\n"
    );
    let (manifest, config) = m.config("docker", &digest);
    let labels = &config["config"]["Labels"];
    assert_eq!(
        labels["io.openshift.s2i.scripts-url"], "image:///usr/libexec/s2i",
        "the base is the strategy's from, not the Dockerfile's: {labels}"
    );
    assert_eq!(labels["io.openshift.build.source-context-dir"], "docker");
    let (base, _) = registry_image("slipway/s2i-busybox", "latest").unwrap();
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        base["layers"].as_array().unwrap().len() + 1,
        "SkipLayers: one layer on top of the base"
    );
    // Arguments alone go to the image's entrypoint (none here: they are the command): exit 4.
    let status = m.finished(&started["dockerhook"]).await;
    assert_eq!(
        status.reason.as_deref(),
        Some("PostCommitHookFailed"),
        "{status:?}"
    );
    assert!(registry_digest(&format!("{}/dockerhook", m.repository), "latest").is_none());
    // An inline Dockerfile, with no repository at all; imageOptimizationPolicy None keeps a
    // layer per step.
    let digest = m.complete(&started["inline"]).await;
    assert_eq!(
        m.run("inline", &digest, "cat /inline /two").await,
        "inline\ntwo\n"
    );
    let (manifest, _) = m.config("inline", &digest);
    let (busybox, _) = registry_image("slipway/busybox", "latest").unwrap();
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        busybox["layers"].as_array().unwrap().len() + 2,
        "a layer per RUN"
    );
    // A Custom build: the custom image ran with the Build, the output and the push secret.
    let status = m.finished(&started["custom"]).await;
    let log = m.log(&started["custom"]).await;
    assert_eq!(status.phase, BuildPhase::Complete, "{status:?}\n{log}");
    assert!(
        log.contains(&format!("OUTPUT_IMAGE={}", m.output("custom"))),
        "{log}"
    );
    assert!(log.contains(&format!("OUTPUT_REGISTRY={NODE_REGISTRY}")), "{log}");
    assert!(
        log.contains("MODE=matrix") && log.contains("push secret mounted"),
        "{log}"
    );
    assert!(log.contains("BUILD carries the Build"), "{log}");
    assert!(log.contains("strategy secret mounted"), "{log}");
}

async fn check_image_sources(m: &Matrix, started: &BTreeMap<&str, String>) {
    // A file and a directory's contents copied out of another image into the context.
    let digest = m.complete(&started["imagesrc"]).await;
    assert_eq!(
        m.run(
            "imagesrc",
            &digest,
            "ls /copied && test -x /scripts/assemble && test -f /scripts/run && echo scripts-copied"
        )
        .await,
        "run\nscripts-copied\n"
    );
    // A path the image does not have: Failed, naming it.
    let status = m.finished(&started["imagemissing"]).await;
    assert_eq!(status.phase, BuildPhase::Failed);
    assert_eq!(status.reason.as_deref(), Some("MissingBuildInput"), "{status:?}");
    assert!(
        status
            .message
            .unwrap_or_default()
            .contains("has no /no/such/path")
    );
}

async fn check_refusals(m: &Matrix, started: &BTreeMap<&str, String>) {
    // A contextDir that leaves the repository: the API server refuses the BuildConfig.
    let escape = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "escape"},
        "spec": {"source": {"type": "Git", "git": {"uri": "https://example.com/a.git"}, "contextDir": "app/../../etc"},
                 "strategy": {"type": "Docker", "dockerStrategy": {}}}});
    let refused = dry_run_create(&m.client, &m.ns, &escape).await.unwrap_err();
    assert!(
        refused.contains("contextDir must be a relative path inside the repository"),
        "{refused}"
    );
    // A missing build secret: Failed with its name, no pod left waiting.
    let status = m.finished(&started["missing"]).await;
    assert_eq!(status.phase, BuildPhase::Failed);
    assert_eq!(status.reason.as_deref(), Some("MissingBuildInput"), "{status:?}");
    assert!(status.message.unwrap_or_default().contains("no-such-secret"));
    // A field Slipway does not carry out: Failed at once, naming it, and no pod at all.
    let status = m.finished(&started["unsupported"]).await;
    assert_eq!(status.phase, BuildPhase::Failed);
    assert_eq!(status.reason.as_deref(), Some("UnsupportedBuildField"));
    assert!(
        status
            .message
            .unwrap_or_default()
            .contains("spec.source.images[0].as")
    );
    // ... and said on the BuildConfig too.
    let config = Api::<BuildConfig>::namespaced(m.client.clone(), &m.ns)
        .get("unsupported")
        .await
        .unwrap();
    let conditions = config.status.unwrap().conditions;
    let condition = conditions
        .iter()
        .find(|c| c.type_ == "UnsupportedBuildField")
        .expect("the BuildConfig's UnsupportedBuildField condition");
    assert_eq!(condition.status, "True");
    assert!(
        condition.message.contains("spec.source.images[0].as"),
        "{condition:?}"
    );
    let pods: Api<Pod> = Api::namespaced(m.client.clone(), &m.ns);
    assert!(
        pods.get_opt(&pod_name(&started["unsupported"]))
            .await
            .unwrap()
            .is_none()
    );
}
