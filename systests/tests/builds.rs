//! `slip new-build | start-build | cancel-build | logs | set triggers` as alice (who may work
//! with builds in the test's namespace) and bob (who may not), through kubeconfigs that
//! impersonate them, with the build controllers running in-process and kwok playing build pods.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use slipway_crds::build::{BuildPhase, BuildTriggerType};
use slipway_crds::{Build, BuildConfig, ImageStream};
use slipway_testkit::*;

const WAIT: Duration = Duration::from_secs(90);

async fn slip(kubeconfig: &Path, args: &[&str]) -> Output {
    run_program(env!("CARGO_BIN_EXE_slip-under-test"), Some(kubeconfig), args).await
}

fn text(out: &Output) -> String {
    output_text(out)
}

fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "succeeded: {}", text(out));
    assert!(
        text(out).contains(needle),
        "expected {needle:?} in: {}",
        text(out)
    );
}

struct Fixture {
    client: kube::Client,
    ns: TestNamespace,
    alice: PathBuf,
    bob: PathBuf,
    _dir: tempfile::TempDir,
    controllers: Vec<tokio::task::JoinHandle<()>>,
}

impl Fixture {
    async fn new(prefix: &str) -> Self {
        ensure_crds();
        let client = client().await;
        let ns = TestNamespace::new(&client, prefix).await;
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": "builder"},
            "rules": [
                {"apiGroups": ["slipway.dev"], "resources": ["buildconfigs", "builds", "imagestreams"],
                 "verbs": ["get", "list", "watch", "create", "update", "patch"]},
                {"apiGroups": ["slipway.dev"], "resources": ["buildconfigs/status", "builds/status"],
                 "verbs": ["get", "update", "patch"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "patch", "update"]},
                {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}
            ]
        }))
        .unwrap();
        Api::<Role>::namespaced(client.clone(), &ns.name)
            .create(&PostParams::default(), &role)
            .await
            .unwrap();
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "alice"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "builder"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
        }))
        .unwrap();
        Api::<RoleBinding>::namespaced(client.clone(), &ns.name)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
        let ctx = slipway_operator::Context::new(kube::Config::infer().await.unwrap()).unwrap();
        let settings = slipway_operator::build::controller::Settings {
            registry: "127.0.0.1:15000".into(),
            namespace: Some(ns.name.clone()),
            ..Default::default()
        };
        let controllers = vec![
            tokio::spawn(slipway_operator::build::controller::run(ctx.clone(), settings)),
            tokio::spawn(slipway_operator::build::trigger::run(ctx, Some(ns.name.clone()))),
        ];
        let dir = tempfile::tempdir().unwrap();
        Self {
            alice: kubeconfig_as(dir.path(), "alice"),
            bob: kubeconfig_as(dir.path(), "bob"),
            _dir: dir,
            client,
            ns,
            controllers,
        }
    }

    async fn stop(self) {
        for c in &self.controllers {
            c.abort();
        }
        self.ns.delete().await;
    }

    async fn end_pod(&self, build: &str, outcome: &str, message: Option<&str>) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns.name);
        let name = format!("{build}-build");
        eventually(&format!("pod {name}"), WAIT, || async {
            pods.get_opt(&name).await.ok()?.map(|_| ())
        })
        .await;
        let mut annotations = json!({"kwok.slipway.dev/outcome": outcome});
        if let Some(m) = message {
            annotations["kwok.slipway.dev/termination-message"] = json!(m);
        }
        pods.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await
        .unwrap();
    }

    async fn phase(&self, build: &str, phase: BuildPhase) {
        let builds: Api<Build> = Api::namespaced(self.client.clone(), &self.ns.name);
        eventually(&format!("{build} to be {phase:?}"), WAIT, || async {
            (builds.get(build).await.ok()?.status?.phase == phase).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn new_build_start_follow_wait_cancel_and_triggers() {
    let f = Fixture::new("slip-build").await;
    let ns = f.ns.name.as_str();
    let out = slip(
        &f.alice,
        &[
            "-n",
            ns,
            "new-build",
            "https://example.com/team/My_App.git",
            "--image",
            "example.com/builder:1",
            "--to",
            "web:v1",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("imagestream.slipway.dev/web created"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("buildconfig.slipway.dev/my-app created"),
        "{}",
        text(&out)
    );
    let configs: Api<BuildConfig> = Api::namespaced(f.client.clone(), ns);
    let bc = configs.get("my-app").await.unwrap();
    assert_eq!(bc.spec.triggers[0].type_, BuildTriggerType::ConfigChange);
    assert_eq!(bc.spec.common.output.to.as_ref().unwrap().name, "web:v1");
    Api::<ImageStream>::namespaced(f.client.clone(), ns)
        .get("web")
        .await
        .unwrap();

    // The ConfigChange trigger started build 1; let it pass.
    f.end_pod("my-app-1", "Succeeded", None).await;
    f.phase("my-app-1", BuildPhase::Complete).await;

    // --follow shows the phases and fails when the build fails.
    let follow = {
        let alice = f.alice.clone();
        let ns = ns.to_string();
        tokio::spawn(async move {
            slip(
                &alice,
                &[
                    "-n",
                    &ns,
                    "start-build",
                    "my-app",
                    "--commit",
                    "c0ffee",
                    "-e",
                    "A=1",
                    "--follow",
                ],
            )
            .await
        })
    };
    let failure = json!({"stage": "s2i", "success": false, "reason": "AssembleFailed",
                         "message": "assemble exited with code 1", "logTail": ["[s2i] boom"]})
    .to_string();
    f.end_pod("my-app-2", "Failed", Some(&failure)).await;
    let out = follow.await.unwrap();
    fails_with(&out, "AssembleFailed");
    assert!(
        text(&out).contains("build.slipway.dev/my-app-2 started"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("[s2i] boom"), "{}", text(&out));
    let builds: Api<Build> = Api::namespaced(f.client.clone(), ns);
    let second = builds.get("my-app-2").await.unwrap();
    assert_eq!(second.spec.common.revision.unwrap().git.unwrap().commit, "c0ffee");
    let env = &second.spec.common.strategy.source_strategy.unwrap().env;
    assert!(
        env.iter()
            .any(|e| e.name == "A" && e.value.as_deref() == Some("1"))
    );

    // --wait succeeds when the build does.
    let wait = {
        let alice = f.alice.clone();
        let ns = ns.to_string();
        tokio::spawn(async move { slip(&alice, &["-n", &ns, "start-build", "bc/my-app", "--wait"]).await })
    };
    let ok = json!({"stage": "s2i", "success": true, "digest": "sha256:abcd"}).to_string();
    f.end_pod("my-app-3", "Succeeded", Some(&ok)).await;
    let out = wait.await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sha256:abcd"), "{}", text(&out));

    // Dry runs: the next build's name, checked (the server's validation and admission for
    // =server), and nothing written: no Build, no number taken.
    for (args, says) in [
        (
            vec!["start-build", "my-app", "--dry-run"],
            "build.slipway.dev/my-app-4 started (dry run)",
        ),
        (
            vec!["start-build", "my-app", "-e", "B=2", "--dry-run=server"],
            "build.slipway.dev/my-app-4 started (server dry run)",
        ),
    ] {
        let mut full = vec!["-n", ns];
        full.extend(&args);
        let out = slip(&f.alice, &full).await;
        assert!(
            out.status.success() && text(&out).contains(says),
            "{args:?}: {}",
            text(&out)
        );
    }
    fails_with(
        &slip(
            &f.alice,
            &["-n", ns, "start-build", "my-app", "--dry-run", "--wait"],
        )
        .await,
        "nothing to --follow or --wait for",
    );
    assert!(builds.get_opt("my-app-4").await.unwrap().is_none());
    let config = configs.get("my-app").await.unwrap();
    assert_eq!(config.status.map(|s| s.last_version), Some(3));

    // cancel-build
    let out = slip(&f.alice, &["-n", ns, "start-build", "my-app"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = slip(&f.alice, &["-n", ns, "cancel-build", "build/my-app-4"]).await;
    assert!(out.status.success(), "{}", text(&out));
    f.phase("my-app-4", BuildPhase::Cancelled).await;
    let out = slip(&f.alice, &["-n", ns, "cancel-build", "my-app-4"]).await;
    assert!(
        text(&out).contains("already finished (Cancelled)"),
        "{}",
        text(&out)
    );
    fails_with(
        &slip(&f.alice, &["-n", ns, "cancel-build", "nope-9"]).await,
        "build nope-9 not found",
    );

    // set triggers: a random secret in a Secret, the URL path and the secret printed.
    let out = slip(
        &f.alice,
        &["-n", ns, "set", "triggers", "bc/my-app", "--from-github"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        printed.contains(&format!("/webhooks/{ns}/my-app/github")),
        "{printed}"
    );
    let secret_line = printed.lines().find(|l| l.starts_with("Secret:")).unwrap();
    let secret_value = secret_line.trim_start_matches("Secret:").trim();
    assert_eq!(secret_value.len(), 64);
    let bc = configs.get("my-app").await.unwrap();
    let github = bc
        .spec
        .triggers
        .iter()
        .find(|t| t.type_ == BuildTriggerType::GitHub)
        .unwrap();
    let reference = github.github.as_ref().unwrap().secret_reference.as_ref().unwrap();
    let secret = Api::<Secret>::namespaced(f.client.clone(), ns)
        .get(&reference.name)
        .await
        .unwrap();
    assert_eq!(
        secret.data.unwrap()["WebHookSecretKey"].0,
        secret_value.as_bytes()
    );
    // Setting it again replaces the trigger (one GitHub trigger) with a new secret.
    let again = slip(
        &f.alice,
        &["-n", ns, "set", "triggers", "bc/my-app", "--from-github"],
    )
    .await;
    assert!(again.status.success(), "{}", text(&again));
    assert_ne!(String::from_utf8_lossy(&again.stdout), printed);
    let bc = configs.get("my-app").await.unwrap();
    assert_eq!(
        bc.spec
            .triggers
            .iter()
            .filter(|t| t.type_ == BuildTriggerType::GitHub)
            .count(),
        1
    );
    f.stop().await;
}

#[tokio::test]
async fn bad_inputs_and_missing_rights_fail_clearly_and_change_nothing() {
    let f = Fixture::new("slip-build-bad").await;
    let ns = f.ns.name.as_str();
    let a = &f.alice;
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["new-build", "github.com/no/scheme"], "is not a git URL"),
        (vec!["new-build", "https://x/app.git"], "needs a builder image"),
        (
            vec![
                "new-build",
                "https://x/app.git",
                "--image",
                "b:1",
                "--to",
                "Bad:Tag",
            ],
            "--to takes STREAM:TAG",
        ),
        (
            vec![
                "new-build",
                "https://x/app.git",
                "--image",
                "b:1",
                "--name",
                "Bad_Name",
            ],
            "not a valid name",
        ),
        (
            vec!["new-build", "https://x/app.git", "--strategy", "kaniko"],
            "invalid value 'kaniko'",
        ),
        (vec!["start-build", "nope"], "buildconfig nope not found"),
        (vec!["start-build", "nope", "-e", "NOEQUALS"], "-e takes K=V"),
        (
            vec!["start-build", "nope", "-e", "1X=2"],
            "not a valid variable name",
        ),
        (
            vec!["start-build", "nope", "--commit", "xyz!"],
            "--commit takes a commit id",
        ),
        (vec!["start-build", "dc/nope"], "expected bc/NAME"),
        (vec!["cancel-build"], "required"),
        (
            vec!["logs", "app-1"],
            "\"app-1\" is not KIND/NAME; use build/NAME, bc/NAME",
        ),
        (vec!["logs", "svc/app-1"], "unknown kind \"svc\""),
        (vec!["logs", "pod/app-1"], "pod app-1 not found"),
        (vec!["logs", "build/nope-1"], "build nope-1 not found"),
        (vec!["set", "triggers", "bc/nope"], "takes one of --from-github"),
        (vec!["set", "triggers", "app", "--from-gitlab"], "not KIND/NAME"),
        (
            vec!["set", "triggers", "bc/nope", "--from-gitea"],
            "buildconfig nope not found",
        ),
    ];
    for (args, needle) in &cases {
        let mut full = vec!["-n", ns];
        full.extend(args);
        fails_with(&slip(a, &full).await, needle);
    }
    // Dry runs of new-build: the objects printed, checked by the API server for =server, and
    // nothing stored.
    let out = slip(
        a,
        &[
            "-n",
            ns,
            "new-build",
            "https://x/dry.git",
            "--image",
            "b:1",
            "--dry-run=server",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(
        text(&out),
        "imagestream.slipway.dev/dry\nbuildconfig.slipway.dev/dry\n",
        "{}",
        text(&out)
    );
    let out = slip(
        a,
        &[
            "-n",
            ns,
            "new-build",
            "https://x/dry.git",
            "--image",
            "b:1",
            "--dry-run",
        ],
    )
    .await;
    assert!(
        out.status.success() && text(&out).contains("buildconfig.slipway.dev/dry created (dry run)"),
        "{}",
        text(&out)
    );
    // A Source BuildConfig refuses --build-arg.
    let out = slip(a, &["-n", ns, "new-build", "https://x/app.git", "--image", "b:1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out),
        "imagestream.slipway.dev/app created\nbuildconfig.slipway.dev/app created\n"
    );
    // set triggers --dry-run on a BuildConfig: no Secret, no trigger.
    let out = slip(
        a,
        &[
            "-n",
            ns,
            "set",
            "triggers",
            "bc/app",
            "--from-gitlab",
            "--dry-run=server",
        ],
    )
    .await;
    assert!(
        out.status.success() && text(&out).contains("triggers updated (server dry run)"),
        "{}",
        text(&out)
    );
    assert!(
        Api::<Secret>::namespaced(f.client.clone(), ns)
            .get_opt("app-gitlab-webhook")
            .await
            .unwrap()
            .is_none()
    );
    fails_with(
        &slip(a, &["-n", ns, "start-build", "app", "--build-arg", "X=1"]).await,
        "--build-arg applies to Docker builds only",
    );
    // A second new-build of the same name is refused before anything is written.
    fails_with(
        &slip(
            a,
            &[
                "-n",
                ns,
                "new-build",
                "https://x/app.git",
                "--image",
                "b:1",
                "--to",
                "other",
            ],
        )
        .await,
        "already exists",
    );
    assert!(
        Api::<ImageStream>::namespaced(f.client.clone(), ns)
            .get_opt("other")
            .await
            .unwrap()
            .is_none()
    );
    let configs: Api<BuildConfig> = Api::namespaced(f.client.clone(), ns);
    assert_eq!(configs.list(&ListParams::default()).await.unwrap().items.len(), 1);
    let bc = configs.get("app").await.unwrap();
    assert!(
        bc.spec
            .triggers
            .iter()
            .all(|t| format!("{:?}", t.type_) != "GitLab"),
        "a dry run added a trigger"
    );
    assert!(
        Api::<ImageStream>::namespaced(f.client.clone(), ns)
            .get_opt("dry")
            .await
            .unwrap()
            .is_none()
    );

    // bob has no rights here: every command is refused by the API server.
    for args in [
        vec!["start-build", "app"],
        vec!["start-build", "app", "--dry-run=server"],
        vec!["cancel-build", "app-1"],
        vec!["logs", "build/app-1"],
        vec!["new-build", "https://x/bob.git", "--image", "b:1"],
        vec!["set", "triggers", "bc/app", "--from-webhook"],
    ] {
        let mut full = vec!["-n", ns];
        full.extend(&args);
        fails_with(&slip(&f.bob, &full).await, "forbidden");
    }
    let builds: Api<Build> = Api::namespaced(f.client.clone(), ns);
    assert_eq!(builds.list(&ListParams::default()).await.unwrap().items.len(), 1);
    f.stop().await;
}
