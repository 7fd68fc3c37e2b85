//! Dockerfile builds through Debian's buildah (chroot isolation, vfs storage in a temporary
//! root), pushed to the real local registry, the digest checked, the image pulled back and run.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use slipway_builder::result::{FailureReason, StageResult};
use support::*;

fn dockerfile_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = workspace_root().join("examples/apps/dockerfile-app");
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

fn docker(context: &Path, output: &str, extra: &[&str]) -> (i32, StageResult, String) {
    let work = tempfile::tempdir().unwrap();
    let result_file = work.path().join("result.json");
    let out = Command::new(env!("CARGO_BIN_EXE_slipway-builder"))
        .arg("docker")
        .arg("--context")
        .arg(context)
        .args(["--output-image", output, "--insecure-registry", REGISTRY])
        .arg("--storage-root")
        .arg(work.path().join("root"))
        .arg("--run-root")
        .arg(work.path().join("runroot"))
        .arg("--result-file")
        .arg(&result_file)
        .args(extra)
        // Overlay over the sandbox's own overlay is not always possible; vfs always is.
        .env("STORAGE_DRIVER", "vfs")
        .output()
        .unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&result_file).unwrap_or_else(|e| panic!("no result ({e}):\n{logs}"));
    // buildah leaves read-only files in vfs storage; make them removable for the tempdir.
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(work.path())
        .status();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&text).unwrap(),
        logs,
    )
}

fn base() -> String {
    BuilderImage::new().push(&unique("slipway-test/docker-base"))
}

#[test]
fn dockerfile_build_is_pushed_verified_and_runs() {
    let base = base();
    let app = dockerfile_app();
    let output = format!("{REGISTRY}/{}:v1", unique("slipway-test/dockerfile-app"));
    let build_arg = format!("BASE={base}");
    let (code, result, logs) = docker(
        app.path(),
        &output,
        &[
            "--build-arg",
            &build_arg,
            "--build-arg",
            "MESSAGE=salut",
            "--no-cache",
        ],
    );
    assert_eq!(code, 0, "{logs}");
    assert!(result.success);
    let reg = registry();
    let digest = rt()
        .block_on(reg.manifest_digest(&slipway_builder::registry::parse_reference(&output).unwrap()))
        .unwrap();
    assert_eq!(result.digest.as_deref(), Some(digest.as_str()));
    assert!(result.durations.contains_key("build") && result.durations.contains_key("push"));

    let rootfs = tempfile::tempdir().unwrap();
    let pulled = pull_and_unpack(&reg, &output, rootfs.path());
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("srv/www/message.txt")).unwrap(),
        "salut from a Dockerfile\n"
    );
    // Run its CMD.
    let port = free_port();
    let mut cmd: Vec<String> = serde_json::from_value(pulled.config["config"]["Cmd"].clone()).unwrap();
    let p = cmd.iter().position(|a| a == "8080").unwrap();
    cmd[p] = port.to_string();
    let env = image_env(&pulled.config, &BTreeMap::new());
    let c = Container::new(rootfs.path(), &cmd, &env, "/", 1001, 0, &[]);
    let child = c.start();
    let body = http_get(port, "/message.txt");
    c.stop(child);
    assert!(body.ends_with("salut from a Dockerfile\n"), "{body}");
}

#[test]
fn from_override_replaces_the_first_from() {
    let base = base();
    let app = dockerfile_app();
    let output = format!("{REGISTRY}/{}:v1", unique("slipway-test/dockerfile-from"));
    // The Dockerfile's default BASE does not exist in the registry; --from replaces it.
    let (code, result, logs) = docker(app.path(), &output, &["--from", &base]);
    assert_eq!(code, 0, "{logs}");
    assert!(result.digest.is_some());
}

#[test]
fn failing_dockerfile_and_bad_input_push_nothing() {
    let base = base();
    let app = dockerfile_app();
    std::fs::write(
        app.path().join("Dockerfile.broken"),
        "ARG BASE\nFROM ${BASE}\nRUN echo breaking && exit 7\n",
    )
    .unwrap();
    let output = format!("{REGISTRY}/{}:v1", unique("slipway-test/dockerfile-broken"));
    let build_arg = format!("BASE={base}");
    let (code, result, logs) = docker(
        app.path(),
        &output,
        &["--dockerfile", "Dockerfile.broken", "--build-arg", &build_arg],
    );
    assert_ne!(code, 0);
    assert_eq!(result.reason, Some(FailureReason::DockerBuildFailed), "{logs}");
    assert!(
        result.log_tail.iter().any(|l| l.contains("breaking")),
        "{:?}",
        result.log_tail
    );
    assert!(!tag_exists(&registry(), &output));

    for bad in ["../Dockerfile", "/etc/passwd", "missing/Dockerfile"] {
        let (code, result, _) = docker(app.path(), &output, &["--dockerfile", bad]);
        assert_ne!(code, 0);
        assert_eq!(result.reason, Some(FailureReason::DockerBuildFailed), "{bad}");
    }
}
