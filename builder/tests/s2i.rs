//! S2I builds as in a build pod: a runc container made from the busybox builder image's unpacked
//! rootfs, running as uid 1001, with the static slipway-builder and the source bind-mounted,
//! pushing to the real local registry. The results are pulled back, unpacked and run with runc.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::json;
use slipway_builder::result::{FailureReason, StageResult};
use support::*;

const TOOLS: &str = "/slipway/tools/slipway-builder";

/// The builder image, pushed once per test binary.
fn builder() -> &'static (BuilderImage, String) {
    static B: OnceLock<(BuilderImage, String)> = OnceLock::new();
    B.get_or_init(|| {
        let image = BuilderImage::new();
        let reference = image.push(&unique("slipway-test/s2i-busybox"));
        (image, reference)
    })
}

/// The httpd sample app, copied so that tests may change it.
fn sample_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = workspace_root().join("examples/apps/httpd-app");
    for e in walkdir::WalkDir::new(&from) {
        let e = e.unwrap();
        let to = dir.path().join(e.path().strip_prefix(&from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
    dir
}

struct Outcome {
    code: i32,
    result: StageResult,
    logs: String,
}

/// Runs `slipway-builder s2i` in a container of the builder image, as uid 1001.
fn s2i(output: &str, source: &Path, extra: &[&str], docker_config: Option<&str>) -> Outcome {
    s2i_as(&builder().1, output, source, extra, docker_config)
}

/// As [`s2i`], with `--builder-image builder_ref` (the container is still the real builder's).
fn s2i_as(
    builder_ref: &str,
    output: &str,
    source: &Path,
    extra: &[&str],
    docker_config: Option<&str>,
) -> Outcome {
    let (image, _) = builder();
    let rootfs = tempfile::tempdir().unwrap();
    image.unpack(rootfs.path());
    open_up(source);
    let result_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        result_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut mounts = vec![
        Mount {
            source: static_builder(),
            destination: TOOLS.into(),
            read_only: true,
        },
        Mount {
            source: source.to_path_buf(),
            destination: "/workspace/source".into(),
            read_only: true,
        },
        Mount {
            source: result_dir.path().to_path_buf(),
            destination: "/slipway/result".into(),
            read_only: false,
        },
    ];
    let secret_dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        TOOLS,
        "s2i",
        "--builder-image",
        builder_ref,
        "--output-image",
        output,
        "--source",
        "/workspace/source",
        "--result-file",
        "/slipway/result/result.json",
        "--insecure-registry",
        REGISTRY,
        "--commit",
        "0123456789abcdef0123456789abcdef01234567",
        "--source-uri",
        "https://git.example.com/app.git",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(cfg) = docker_config {
        std::fs::write(secret_dir.path().join(".dockerconfigjson"), cfg).unwrap();
        open_up(secret_dir.path());
        mounts.push(Mount {
            source: secret_dir.path().to_path_buf(),
            destination: "/var/run/secrets/slipway.dev/push".into(),
            read_only: true,
        });
        args.extend([
            "--docker-config".into(),
            "/var/run/secrets/slipway.dev/push".into(),
        ]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let env = image_env(&image.config, &BTreeMap::new());
    let c = Container::new(rootfs.path(), &args, &env, "/tmp", 1001, 0, &mounts);
    let (code, stdout, stderr) = c.run();
    let logs = format!("{stdout}{stderr}");
    let text = std::fs::read_to_string(result_dir.path().join("result.json"))
        .unwrap_or_else(|e| panic!("no result ({e}); logs:\n{logs}"));
    assert!(text.len() < 4096);
    let result: StageResult = serde_json::from_str(&text).unwrap();
    Outcome { code, result, logs }
}

fn output_ref(registry: &str) -> String {
    format!("{registry}/{}:latest", unique("slipway-test/app"))
}

/// Runs the image's `Cmd` in a runc container and GETs `paths` from it.
fn serve(rootfs: &Path, config: &serde_json::Value, paths: &[&str]) -> Vec<String> {
    let port = free_port();
    let env = image_env(config, &BTreeMap::from([("PORT", port.to_string())]));
    let cmd: Vec<String> = serde_json::from_value(config["config"]["Cmd"].clone()).unwrap();
    let c = Container::new(rootfs, &cmd, &env, "/tmp", 1001, 0, &[]);
    let child = c.start();
    let bodies = paths.iter().map(|p| http_get(port, p)).collect();
    c.stop(child);
    bodies
}

#[test]
fn s2i_build_in_a_container_pushes_one_layer_and_the_image_serves_the_app() {
    let (image, builder_ref) = builder();
    let app = sample_app();
    let output = output_ref(REGISTRY);
    let out = s2i(&output, app.path(), &["--env", "GREETING=bonjour"], None);
    assert_eq!(out.code, 0, "{}\n{:?}", out.logs, out.result);
    assert!(out.result.success);
    assert_eq!(out.result.image.as_deref(), Some(output.as_str()));
    for step in ["pull", "assemble", "commit", "push"] {
        assert!(
            out.result.durations.contains_key(step),
            "{:?}",
            out.result.durations
        );
    }
    assert!(
        out.logs.contains("[s2i] ---> installing the application"),
        "{}",
        out.logs
    );
    assert!(
        out.logs.contains(": mounted"),
        "builder layers are mounted: {}",
        out.logs
    );

    // The registry holds what the result says.
    let reg = registry();
    let digest = rt()
        .block_on(reg.manifest_digest(&slipway_builder::registry::parse_reference(&output).unwrap()))
        .unwrap();
    assert_eq!(out.result.digest.as_deref(), Some(digest.as_str()));

    // Pulled back: the builder's layers plus exactly one.
    let rootfs = tempfile::tempdir().unwrap();
    let pulled = pull_and_unpack(&reg, &output, rootfs.path());
    let builder_digests: Vec<String> = image.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(pulled.layer_digests.len(), builder_digests.len() + 1);
    assert_eq!(pulled.layer_digests[..builder_digests.len()], builder_digests[..]);
    let cfg = &pulled.config["config"];
    assert_eq!(cfg["Cmd"], json!(["/usr/libexec/s2i/run"]));
    assert_eq!(cfg["User"], "1001");
    assert_eq!(
        cfg["Labels"]["io.openshift.s2i.build.image"],
        builder_ref.as_str()
    );
    assert_eq!(
        cfg["Labels"]["io.openshift.s2i.build.commit.id"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        cfg["Labels"]["io.openshift.s2i.build.source-location"],
        "https://git.example.com/app.git"
    );
    assert_eq!(
        cfg["Labels"]["io.openshift.s2i.scripts-url"],
        "image:///usr/libexec/s2i"
    );
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    assert!(env.contains(&"GREETING=bonjour".to_owned()), "{env:?}");
    assert_eq!(pulled.config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    // The layer has what assemble made, owned by the image's user, and nothing of the pod.
    let app_dir = rootfs.path().join("tmp/app");
    assert_eq!(
        std::fs::read_to_string(app_dir.join("greeting.txt")).unwrap(),
        "bonjour from build 1\n"
    );
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&app_dir).unwrap()),
        1001
    );
    assert!(
        !rootfs.path().join("tmp/src").exists(),
        "assemble removed the source"
    );
    for absent in ["slipway", "workspace", "proc/self", "var/run/secrets"] {
        assert!(!rootfs.path().join(absent).exists(), "{absent} is in the image");
    }

    // And it runs: `run` serves the app.
    let bodies = serve(rootfs.path(), &pulled.config, &["/", "/greeting.txt"]);
    assert!(bodies[0].contains("Hello from Slipway"), "{}", bodies[0]);
    assert!(bodies[1].ends_with("bonjour from build 1\n"), "{}", bodies[1]);
}

#[test]
fn scripts_and_environment_from_the_source_win_over_the_image() {
    let app = sample_app();
    let bin = app.path().join(".s2i/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("run"),
        "#!/bin/sh\necho \"custom run: $GREETING $FROM_STRATEGY\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let output = output_ref(REGISTRY);
    let out = s2i(&output, app.path(), &["--env", "FROM_STRATEGY=yes"], None);
    assert_eq!(out.code, 0, "{}", out.logs);
    let rootfs = tempfile::tempdir().unwrap();
    let pulled = pull_and_unpack(&registry(), &output, rootfs.path());
    assert_eq!(pulled.config["config"]["Cmd"], json!(["/tmp/scripts/run"]));
    // .s2i/environment's GREETING reached assemble and the image.
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("tmp/app/greeting.txt")).unwrap(),
        "hello from build 1\n"
    );
    let cmd: Vec<String> = serde_json::from_value(pulled.config["config"]["Cmd"].clone()).unwrap();
    let env = image_env(&pulled.config, &BTreeMap::new());
    let c = Container::new(rootfs.path(), &cmd, &env, "/tmp", 1001, 0, &[]);
    let (code, stdout, stderr) = c.run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "custom run: hello yes\n");
}

#[test]
fn incremental_rebuild_sees_the_previous_artifacts() {
    let app = sample_app();
    let output = output_ref(REGISTRY);
    let first = s2i(&output, app.path(), &["--incremental"], None);
    assert_eq!(first.code, 0, "{}", first.logs);
    assert!(
        first.logs.contains("no previous artifacts: a clean build"),
        "{}",
        first.logs
    );
    assert!(first.result.warnings.is_empty(), "{:?}", first.result.warnings);
    let second = s2i(&output, app.path(), &["--incremental"], None);
    assert_eq!(second.code, 0, "{}", second.logs);
    assert!(
        second
            .logs
            .contains("restoring artifacts from the previous build"),
        "{}",
        second.logs
    );
    let rootfs = tempfile::tempdir().unwrap();
    let pulled = pull_and_unpack(&registry(), &output, rootfs.path());
    assert!(pulled.manifest["annotations"]["dev.slipway.s2i.artifacts"].is_string());
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("tmp/app/greeting.txt")).unwrap(),
        "hello from build 2\n"
    );
    assert_eq!(pulled.layer_digests.len(), 3, "still one layer on the builder's");
}

#[test]
fn unusable_previous_artifacts_mean_a_clean_build_with_a_warning() {
    // The previous image points at an artifacts blob the registry does not have.
    let app = sample_app();
    let output = output_ref(REGISTRY);
    let first = s2i(&output, app.path(), &["--incremental"], None);
    assert_eq!(first.code, 0, "{}", first.logs);
    let reg = registry();
    let r = slipway_builder::registry::parse_reference(&output).unwrap();
    rt().block_on(async {
        let mut img = reg.pull_image(&r).await.unwrap();
        img.manifest["annotations"]["dev.slipway.s2i.artifacts"] =
            json!(format!("sha256:{}", "0".repeat(64)));
        let bytes = serde_json::to_vec(&img.manifest).unwrap();
        reg.push_manifest(&r, &bytes, slipway_builder::registry::OCI_MANIFEST)
            .await
            .unwrap();
    });
    let second = s2i(&output, app.path(), &["--incremental"], None);
    assert_eq!(second.code, 0, "{}", second.logs);
    assert_eq!(second.result.warnings.len(), 1, "{:?}", second.result.warnings);
    assert!(second.result.warnings[0].contains("previous artifacts unusable"));
    let rootfs = tempfile::tempdir().unwrap();
    pull_and_unpack(&reg, &output, rootfs.path());
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("tmp/app/greeting.txt")).unwrap(),
        "hello from build 1\n"
    );
}

fn assert_failed(
    out: &Outcome,
    reason: FailureReason,
    output: &str,
    reg: &slipway_builder::registry::Registry,
) {
    assert_ne!(out.code, 0, "{}", out.logs);
    assert!(!out.result.success);
    assert_eq!(out.result.reason, Some(reason), "{}\n{:?}", out.logs, out.result);
    assert!(!out.result.log_tail.is_empty());
    assert!(out.result.digest.is_none());
    assert!(!tag_exists(reg, output), "{output} was pushed");
}

#[test]
fn failing_assemble_pushes_nothing() {
    let app = sample_app();
    let bin = app.path().join(".s2i/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("assemble"), "#!/bin/sh\necho compiling\nexit 3\n").unwrap();
    std::fs::set_permissions(
        bin.join("assemble"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let output = output_ref(REGISTRY);
    let out = s2i(&output, app.path(), &[], None);
    assert_failed(&out, FailureReason::AssembleFailed, &output, &registry());
    assert!(
        out.result.log_tail.iter().any(|l| l.contains("compiling")),
        "{:?}",
        out.result.log_tail
    );
}

#[test]
fn failing_post_commit_hook_pushes_nothing() {
    let app = sample_app();
    let output = output_ref(REGISTRY);
    let out = s2i(
        &output,
        app.path(),
        &[
            "--post-commit-script",
            "test -f /tmp/app/index.html && echo tests failed && exit 4",
        ],
        None,
    );
    assert_failed(&out, FailureReason::PostCommitHookFailed, &output, &registry());
    assert!(out.logs.contains("tests failed"), "{}", out.logs);

    // A hook command that passes lets the build through.
    let out = s2i(
        &output,
        app.path(),
        &[
            "--post-commit-command=/bin/test",
            "--post-commit-command=-f",
            "--post-commit-command=/tmp/app/index.html",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.logs);
}

#[test]
fn registry_credentials_are_used_refused_and_never_leak() {
    let auth = AuthRegistry::start();
    let reg = slipway_builder::registry::Registry::new(
        slipway_builder::registry::Credentials::parse(&docker_config(&auth.addr, "builder", &auth.password))
            .unwrap(),
        std::slice::from_ref(&auth.addr),
    )
    .unwrap();
    let app = sample_app();

    // Wrong password: refused before anything is tagged.
    let output = output_ref(&auth.addr);
    let wrong = docker_config(&auth.addr, "builder", "not-the-password");
    let out = s2i(
        &output,
        app.path(),
        &["--insecure-registry", &auth.addr],
        Some(&wrong),
    );
    assert_failed(&out, FailureReason::PushImageToRegistryFailed, &output, &reg);
    assert!(!out.logs.contains("not-the-password"), "{}", out.logs);

    // The right password: the builder's layers are copied across registries, the image pushed.
    let right = docker_config(&auth.addr, "builder", &auth.password);
    let out = s2i(
        &output,
        app.path(),
        &["--insecure-registry", &auth.addr],
        Some(&right),
    );
    assert_eq!(out.code, 0, "{}", out.logs);
    assert!(out.logs.contains(": copied"), "{}", out.logs);
    assert!(!out.logs.contains(&auth.password));
    let json = serde_json::to_string(&out.result).unwrap();
    assert!(!json.contains(&auth.password));
    let r = slipway_builder::registry::parse_reference(&output).unwrap();
    let new_layer = rt().block_on(async {
        let img = reg.pull_image(&r).await.unwrap();
        let layers = img.layers();
        let d = layers.last().unwrap()["digest"].as_str().unwrap().to_owned();
        reg.pull_blob(&r, &d).await.unwrap()
    });
    let rootfs = tempfile::tempdir().unwrap();
    slipway_builder::layer::unpack_layer(&new_layer, rootfs.path()).unwrap();
    for e in walkdir::WalkDir::new(rootfs.path()) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let data = std::fs::read(e.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&data).contains(&auth.password),
                "{} holds the password",
                e.path().display()
            );
        }
    }
}

#[test]
fn unreachable_registry_fails_the_push() {
    let app = sample_app();
    let closed = format!("127.0.0.1:{}", free_port());
    let output = output_ref(&closed);
    let out = s2i(&output, app.path(), &["--insecure-registry", &closed], None);
    assert_ne!(out.code, 0);
    assert_eq!(
        out.result.reason,
        Some(FailureReason::PushImageToRegistryFailed),
        "{}",
        out.logs
    );
}

#[test]
fn a_builder_image_that_does_not_exist_is_reported() {
    let app = sample_app();
    let output = output_ref(REGISTRY);
    // A container of the real builder image, told to use a builder reference that is not there.
    let missing = format!("{REGISTRY}/{}:nope", unique("slipway-test/missing"));
    let out = s2i_as(&missing, &output, app.path(), &[], None);
    assert_ne!(out.code, 0);
    assert_eq!(
        out.result.reason,
        Some(FailureReason::PullBuilderImageFailed),
        "{}",
        out.logs
    );
}

#[test]
fn a_multi_arch_builder_index_builds_from_the_entry_of_this_platform() {
    let (image, _) = builder();
    // arm64 first: the entry is chosen by platform, not by position.
    let (index, entries) = image.push_index(
        &unique("slipway-test/multiarch"),
        &[
            ("linux/arm64", "built from linux/arm64"),
            ("linux/amd64", "built from linux/amd64"),
        ],
    );
    let reg = registry();
    let r = slipway_builder::registry::parse_reference(&index).unwrap();
    // The registry code resolves the index per platform.
    let amd64 = slipway_crds::platform::Platform::current();
    assert_eq!(
        amd64.to_string(),
        "linux/amd64",
        "the test builds amd64 containers"
    );
    let pulled = rt().block_on(reg.pull_image(&r)).unwrap();
    assert_eq!(pulled.manifest_digest, entries[1]);
    assert_eq!(pulled.config["architecture"], "amd64");
    let arm64 = slipway_crds::platform::Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: None,
    };
    let pulled = rt().block_on(reg.pull_image_for(&r, &arm64)).unwrap();
    assert_eq!(pulled.manifest_digest, entries[0]);

    // An S2I build from the index, in a container of this platform's builder, as a node of
    // this platform runs it: the output holds the amd64 entry's layers, not the arm64 one's.
    let app = sample_app();
    let output = output_ref(REGISTRY);
    let out = s2i_as(&index, &output, app.path(), &[], None);
    assert_eq!(out.code, 0, "{}\n{:?}", out.logs, out.result);
    let rootfs = tempfile::tempdir().unwrap();
    let back = pull_and_unpack(&reg, &output, rootfs.path());
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("etc/slipway-platform")).unwrap(),
        "built from linux/amd64"
    );
    assert_eq!(back.config["architecture"], "amd64");
    assert_eq!(back.layer_digests.len(), image.layers.len() + 2);
    assert_eq!(
        back.config["config"]["Labels"]["io.openshift.s2i.build.image"],
        index.as_str()
    );
}

#[test]
fn a_builder_index_without_this_platform_fails_naming_the_platforms_it_has() {
    let (image, _) = builder();
    let (index, _) = image.push_index(
        &unique("slipway-test/multiarch"),
        &[("linux/arm64", "arm64"), ("linux/s390x", "s390x")],
    );
    let app = sample_app();
    let output = output_ref(REGISTRY);
    let out = s2i_as(&index, &output, app.path(), &[], None);
    assert_failed(&out, FailureReason::PullBuilderImageFailed, &output, &registry());
    let message = out.result.message.unwrap_or_default();
    assert!(
        message.contains(&format!(
            "{index}: the image index has no linux/amd64 image; it has linux/arm64, linux/s390x"
        )),
        "{message}"
    );
}
