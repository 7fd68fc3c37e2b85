//! `slip logs` against real logs. A build pod — named and laid out by the operator's own
//! `build_pod` (init container `fetch`, which places the tools first, then `build`), its containers running
//! busybox scripts in place of `slipway-builder` — runs on the dev cluster's real node, next to a
//! Build made the way `slip start-build` makes it. `slip logs build/NAME` prints the containers'
//! lines in order; `--follow`, started before the pod runs (or before it exists), waits for it and
//! for each container, streams the lines as they are written and exits when the pod ends; a
//! missing build or BuildConfig, or (without `--follow`) a build without a pod, is a clear error
//! with a non-zero exit.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, PodSchedulingGate, Toleration};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use slipway_client::instantiate::instantiate;
use slipway_crds::BuildConfig;
use slipway_crds::build::{BuildRequest, new_build};
use slipway_operator::build::pod::{BuildImages, PodInputs, build_pod, pod_name};
use slipway_testkit::*;

const WAIT: Duration = Duration::from_secs(120);

/// The build container writes these, a second apart.
const BUILD_LINES: usize = 6;

fn busybox() -> String {
    let registry = std::env::var("SLIPWAY_REGISTRY").unwrap_or_else(|_| "127.0.0.1:15000".into());
    format!("{registry}/slipway/busybox:latest")
}

/// What `slip logs build/NAME` should print for a pod of [`scripted_pod`].
fn expected_lines(build: &str) -> Vec<String> {
    let mut lines = vec![
        "placing tools".to_string(),
        "fetching https://example.com/team/app.git".to_string(),
        "fetched".to_string(),
    ];
    lines.extend((1..=BUILD_LINES).map(|i| format!("{build} line {i}")));
    lines
}

/// The pod of build `number` of `config` as the operator makes it (`build_pod`), on the real
/// node, each container's command a script: the build container writes [`BUILD_LINES`] lines a
/// second apart.
fn scripted_pod(config: &BuildConfig, number: i64) -> Pod {
    let mut planned = new_build(config, number, &BuildRequest::default());
    planned.metadata.namespace = config.metadata.namespace.clone();
    let build = planned.name_any();
    let images = BuildImages {
        builder_tools: busybox(),
        buildah: busybox(),
        ..Default::default()
    };
    let inputs = PodInputs {
        builder_image: busybox(),
        ..Default::default()
    };
    let mut pod = build_pod(&planned, &images, &inputs);
    let spec = pod.spec.as_mut().unwrap();
    let build_script = format!("for i in $(seq 1 {BUILD_LINES}); do echo \"{build} line $i\"; sleep 1; done");
    let scripts = [
        (
            "fetch",
            "echo 'placing tools'; echo \"fetching $SOURCE_URI\"; sleep 1; echo fetched".to_string(),
        ),
        ("build", build_script),
    ];
    let containers = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut());
    let mut names = Vec::new();
    for container in containers {
        let (_, script) = scripts
            .iter()
            .find(|(name, _)| *name == container.name)
            .unwrap_or_else(|| {
                panic!(
                    "a build pod container this test does not know: {}",
                    container.name
                )
            });
        container.command = Some(vec!["sh".into(), "-c".into(), script.clone()]);
        // busybox's user is root; the build pod's containers must not run as root (the real
        // images' users are 65532 and the builder image's own), so the scripts run as 1001.
        container
            .security_context
            .get_or_insert_with(Default::default)
            .run_as_user = Some(1001);
        names.push(container.name.clone());
    }
    assert_eq!(names, ["fetch", "build"]);
    spec.node_selector = Some([("slipway.dev/node".to_string(), "real".to_string())].into());
    spec.tolerations = Some(vec![Toleration {
        key: Some("slipway.dev/node".into()),
        operator: Some("Equal".into()),
        value: Some("real".into()),
        effect: Some("NoSchedule".into()),
        ..Default::default()
    }]);
    assert_eq!(pod.name_any(), pod_name(&build));
    pod
}

/// `slip logs -f build/NAME` in `namespace`, on a thread of its own; and its stderr lines as
/// they come.
fn follow(
    namespace: &str,
    build: &str,
) -> (
    tokio::task::JoinHandle<Followed>,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let args = ["-n", namespace, "logs", "-f", &format!("build/{build}")].map(String::from);
    let (stderr_tx, stderr_rx) = tokio::sync::mpsc::unbounded_channel();
    let running = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        slip_streaming(&args, stderr_tx)
    });
    (running, stderr_rx)
}

/// Waits until a `slip logs -f` says `needle` on stderr.
async fn says(stderr: &mut tokio::sync::mpsc::UnboundedReceiver<String>, needle: &str) {
    let heard = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = stderr.recv().await {
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        heard == Ok(true),
        "slip logs -f never said {needle:?} (it ended, or 60 s passed)"
    );
}

/// Checks what a `--follow` printed: the lines of `build`'s pod, in order, streamed as they were
/// written (a second apart), and an end not long after the last.
fn streamed(build: &str, followed: &Followed) {
    let Followed {
        lines,
        stderr,
        succeeded,
        ended,
    } = followed;
    let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert!(
        succeeded,
        "slip logs -f build/{build} failed: {stderr}; printed {texts:?}"
    );
    assert_eq!(texts, expected_lines(build), "stderr: {stderr}");
    let arrival = |line: &str| lines.iter().find(|(_, l)| l == line).unwrap().0;
    let first = arrival(&format!("{build} line 1"));
    let last = arrival(&format!("{build} line {BUILD_LINES}"));
    assert!(
        last - first >= Duration::from_secs(3),
        "{build}'s lines arrived within {:?} of each other: not streamed",
        last - first
    );
    assert!(
        *ended - last < Duration::from_secs(10),
        "slip logs -f build/{build} ran on {:?} after the last line",
        *ended - last
    );
}

/// What a slip run printed and when.
struct Followed {
    /// Its stdout lines, each with when it arrived.
    lines: Vec<(Instant, String)>,
    stderr: String,
    succeeded: bool,
    ended: Instant,
}

/// Runs slip (with the test's KUBECONFIG), noting when each line of its output arrives.
/// Its stderr lines go to `stderr_tx` as they come, besides.
fn slip_streaming(args: &[&str], stderr_tx: tokio::sync::mpsc::UnboundedSender<String>) -> Followed {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slip-under-test"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = stderr_tx.send(line);
        }
        all
    });
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<(Instant, String)> = stdout
        .lines()
        .map(|line| (Instant::now(), line.unwrap()))
        .collect();
    let status = child.wait().unwrap();
    Followed {
        lines,
        stderr: stderr.join().unwrap(),
        succeeded: status.success(),
        ended: Instant::now(),
    }
}

async fn slip(args: &[&str]) -> std::process::Output {
    run_program(env!("CARGO_BIN_EXE_slip-under-test"), None, args).await
}

fn fails_with(out: &std::process::Output, needle: &str) {
    let text = output_text(out);
    assert!(!out.status.success(), "succeeded: {text}");
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slip_logs_prints_and_follows_a_build_pods_real_logs() {
    ensure_crds();
    let client = client().await;
    let real = Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels("slipway.dev/node=real"))
        .await
        .unwrap();
    assert!(
        !real.items.is_empty(),
        "the dev cluster has no real node: `make cluster-up` (as root) starts one"
    );
    let ns = TestNamespace::new(&client, "slip-logs").await;
    let n = ns.name.as_str();
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), n);
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    // Serial: while build 1 runs, build 2 waits without a pod (whatever operator may be running).
    let config: BuildConfig = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "app"},
        "spec": {
            "runPolicy": "Serial",
            "source": {"type": "Git", "git": {"uri": "https://example.com/team/app.git", "ref": "main"}},
            "strategy": {"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": busybox()}}},
            "output": {}
        }
    }))
    .unwrap();
    let config = configs.create(&PostParams::default(), &config).await.unwrap();

    // Build 1's pod, created before the Build, so that an operator watching the cluster finds it
    // there and keeps it.
    pods.create(&PostParams::default(), &scripted_pod(&config, 1))
        .await
        .unwrap();
    let build = instantiate(&client, n, "app", &BuildRequest::default())
        .await
        .unwrap();
    assert_eq!(build.name_any(), "app-1");
    // --follow, from before the pod runs until it ends.
    let (first, _) = follow(n, "app-1");

    // Meanwhile build 2, which has no pod (Serial: it waits for build 1): without --follow that
    // is an error, as for bc/app (its latest build); so are an unknown build and BuildConfig.
    let second = instantiate(&client, n, "app", &BuildRequest::default())
        .await
        .unwrap();
    assert_eq!(second.name_any(), "app-2");
    for (args, needle) in [
        (vec!["logs", "build/app-2"], "build app-2 has no pod"),
        (vec!["logs", "bc/app"], "build app-2 has no pod"),
        (vec!["logs", "build/nope-1"], "build nope-1 not found"),
        (vec!["logs", "--follow", "build/nope-1"], "build nope-1 not found"),
        (vec!["logs", "bc/nope"], "buildconfig nope not found"),
    ] {
        let mut full = vec!["-n", n];
        full.extend(&args);
        fails_with(&slip(&full).await, needle);
    }
    // With --follow, build 2 is waited for until its pod comes (made here while build 1 still
    // runs, before any operator would start it), and the pod until it is scheduled (held back by
    // a scheduling gate meanwhile: its log reads empty then, and must not end the following).
    let (second, mut second_stderr) = follow(n, "app-2");
    says(&mut second_stderr, "waiting for build app-2 to start").await;
    let mut gated = scripted_pod(&config, 2);
    gated.spec.as_mut().unwrap().scheduling_gates = Some(vec![PodSchedulingGate {
        name: "slipway.dev/test-hold".into(),
    }]);
    pods.create(&PostParams::default(), &gated).await.unwrap();
    watch_until(
        &pods,
        &pod_name("app-2"),
        "the pod of build 2 held back by its scheduling gate",
        Duration::from_secs(30),
        |pod: &Pod| {
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"))
                })
        },
    )
    .await;
    // A window, not an observation: slip finds the pod within half a second (it polls twice a
    // second) and prints nothing while it waits for a container to start, so only time shows
    // that it does not end meanwhile. Three seconds is six of its polls.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !second.is_finished(),
        "slip logs -f build/app-2 ended while its pod was not scheduled"
    );
    let release = json!({"spec": {"schedulingGates": null}});
    pods.patch(
        &pod_name("app-2"),
        &PatchParams::default(),
        &Patch::Merge(&release),
    )
    .await
    .unwrap();

    let first = first.await.unwrap();
    streamed("app-1", &first);
    let second = second.await.unwrap();
    streamed("app-2", &second);
    assert!(
        second.stderr.contains("waiting for build app-2 to start"),
        "stderr: {}",
        second.stderr
    );
    let phase = eventually("the build pod to succeed", WAIT, || async {
        let phase = pods.get(&pod_name("app-1")).await.ok()?.status?.phase?;
        matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
    })
    .await;
    assert_eq!(phase, "Succeeded");

    // Afterwards, without --follow: everything, in container order.
    let out = slip(&["-n", n, "logs", "build/app-1"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(printed, expected_lines("app-1"));
    ns.delete().await;
}
