//! What the tests that install Slipway's chart on the dev cluster's real node share (the
//! end-to-end test and the quickstart conformance run): running programs, helm, the release and
//! project guards, a project requested by a user, HTTP GETs to Services.
#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use slipway_crds::Build;
use slipway_crds::build::BuildPhase;
use slipway_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const RELEASE: &str = "slipway";
pub const SYSTEM_NS: &str = "slipway-system";

/// The registry as pods on the real node reach it (dev/lib.sh's NODE_REGISTRY_ADDR).
pub const NODE_REGISTRY: &str = "10.250.0.1:15000";

/// The node's address on the pod bridge: where build pods reach the git server.
pub const NODE_IP: &str = "10.250.0.1";

pub fn run(program: &Path, args: &[&str], dir: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir.map(Path::to_path_buf).unwrap_or_else(repo_root));
    command
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

pub fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\n{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["-c", "user.name=Alice", "-c", "user.email=alice@example.com"];
    all.extend_from_slice(args);
    ok(
        run(Path::new("git"), &all, Some(dir)),
        &format!("git {}", args.join(" ")),
    )
}

pub fn helm(args: &[&str]) -> String {
    ok(
        run(&dev_tool("helm"), args, None),
        &format!("helm {}", args.join(" ")),
    )
}

pub fn install(extra: &[&str]) {
    let tag = format!("image.tag={}", images_tag());
    let mut args = vec![
        "upgrade",
        "--install",
        RELEASE,
        "charts/slipway",
        "--namespace",
        SYSTEM_NS,
        "--create-namespace",
        "-f",
        "dev/slipway-values.yaml",
        "--wait",
        "--timeout",
        "240s",
        "--set",
        &tag,
    ];
    args.extend_from_slice(extra);
    helm(&args);
    // The real node trusts the integrated registry's CA (made by the chart at its first install).
    ok(
        run(&repo_root().join("dev/registry-trust.sh"), &[], None),
        "dev/registry-trust.sh",
    );
}

pub async fn slip(kubeconfig: &Path, args: &[&str]) -> String {
    let out = run_program(env!("CARGO_BIN_EXE_slip"), Some(kubeconfig), args).await;
    assert!(
        out.status.success(),
        "slip {} failed:\n{}",
        args.join(" "),
        output_text(&out)
    );
    output_text(&out)
}

/// One HTTP/1.0 GET on a new connection: the status code and the body.
pub async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: app\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("no status")?;
        Ok((code, body.trim().to_string()))
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

pub async fn service_addr(client: &kube::Client, ns: &str, name: &str, port: u16) -> SocketAddr {
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap();
    let ip = svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    format!("{ip}:{port}").parse().unwrap()
}

/// Waits until `path` on `addr` answers 200 with `expected` in its body.
pub async fn await_answer(addr: SocketAddr, path: &str, expected: &str, timeout: Duration) {
    eventually(
        &format!("{addr}{path} to answer {expected:?}"),
        timeout,
        || async {
            match get(addr, path).await {
                Ok((200, body)) if body.contains(expected) => Some(()),
                _ => None,
            }
        },
    )
    .await;
}

pub async fn build_phase(api: &Api<Build>, name: &str) -> Option<BuildPhase> {
    api.get_opt(name).await.ok().flatten()?.status.map(|s| s.phase)
}

/// `slip new-project NAME` as the user of `kubeconfig`. The first admission calls after an
/// install can meet a webhook endpoint not yet in every proxy rule; the request is refused whole
/// then, and repeated.
pub async fn new_project(kubeconfig: &Path, project: &str) {
    eventually("slip new-project", Duration::from_secs(60), || async {
        let out = run_program(
            env!("CARGO_BIN_EXE_slip"),
            Some(kubeconfig),
            &["new-project", project],
        )
        .await;
        let text = output_text(&out);
        if out.status.success() {
            return Some(());
        }
        assert!(
            text.contains("failed calling webhook"),
            "slip new-project failed:\n{text}"
        );
        None
    })
    .await;
}

/// Waits until build `name` completes; a build that fails ends the test with its status.
pub async fn await_complete(builds: &Api<Build>, name: &str) {
    eventually(
        &format!("build {name} to complete"),
        Duration::from_secs(300),
        || async {
            match build_phase(builds, name).await {
                Some(BuildPhase::Complete) => Some(()),
                Some(p @ (BuildPhase::Failed | BuildPhase::Error | BuildPhase::Cancelled)) => {
                    panic!(
                        "{name} ended {p:?}: {:?}",
                        builds.get(name).await.ok().and_then(|b| b.status)
                    )
                }
                _ => None,
            }
        },
    )
    .await;
}

/// The release goes away however the test ends: left installed, its cluster-wide admission hooks
/// and controllers would act in the namespaces of the test binaries that run after this one.
pub struct ReleaseGuard;

impl Drop for ReleaseGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What Slipway was doing, for whoever reads the failure.
            for (what, args) in [
                ("pods", vec!["get", "pods", "-A", "-o", "wide"]),
                (
                    "operator",
                    vec!["logs", "-n", SYSTEM_NS, "deploy/slipway-operator", "--tail", "60"],
                ),
                (
                    "webhook",
                    vec!["logs", "-n", SYSTEM_NS, "deploy/slipway-webhook", "--tail", "30"],
                ),
                (
                    "events",
                    vec!["get", "events", "-A", "--sort-by", ".lastTimestamp"],
                ),
            ] {
                if let Ok(out) = Command::new(dev_tool("kubectl")).args(&args).output() {
                    let text = output_text(&out);
                    let tail: Vec<&str> = text.lines().rev().take(60).collect();
                    eprintln!("--- {what}:");
                    for line in tail.into_iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
        let _ = Command::new(dev_tool("helm"))
            .args([
                "uninstall",
                RELEASE,
                "--namespace",
                SYSTEM_NS,
                "--ignore-not-found",
                "--wait",
                "--timeout",
                "120s",
            ])
            .current_dir(repo_root())
            .output();
    }
}

/// The project goes away however the test ends.
pub struct ProjectGuard {
    pub kubeconfig: PathBuf,
    pub name: String,
}

impl Drop for ProjectGuard {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_slip"))
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["delete-project", &self.name])
            .output();
        // Gone before the release is: its finalizer needs the operator.
        let _ = Command::new(dev_tool("kubectl"))
            .args([
                "wait",
                "--for=delete",
                &format!("namespace/{}", self.name),
                "--timeout=180s",
            ])
            .output();
    }
}
