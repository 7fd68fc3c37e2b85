//! The Helm chart: lint-clean, and every object it renders (with the defaults and with every
//! option on) is accepted by the real API server (server-side dry run). The ClusterRoles the
//! operator binds in every project are the chart's.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use slipway_testkit::*;

fn helm() -> std::path::PathBuf {
    dev_tool("helm")
}

#[test]
fn the_chart_is_lint_clean() {
    for values in [
        "",
        "registry.enabled=true,ingress.enabled=true,selfProvisioning.enabled=false",
    ] {
        let mut command = Command::new(helm());
        command.args(["lint", "charts/slipway"]).current_dir(repo_root());
        if !values.is_empty() {
            command.args(["--set", values]);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn every_rendered_object_is_accepted_by_the_api_server() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "chart").await;
    for values in [
        vec![],
        vec![
            "registry.enabled=true",
            "ingress.enabled=true",
            "operator.maxProjectsPerUser=3",
        ],
    ] {
        let objects = render_chart(&ns.name, &values);
        assert!(objects.len() >= 20, "{} objects", objects.len());
        for object in &objects {
            let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or(&ns.name);
            dry_run_create(&client, namespace, object)
                .await
                .unwrap_or_else(|e| panic!("{what} ({values:?}): {e}"));
        }
    }
    ns.delete().await;
}

#[test]
fn the_roles_the_operator_binds_are_the_charts() {
    let objects = render_chart("slipway-system", &[]);
    let cluster_roles: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    for role in [
        slipway_operator::project::BUILDER_CLUSTER_ROLE,
        slipway_operator::project::DEPLOYER_CLUSTER_ROLE,
        "slipway-self-provisioner",
    ] {
        assert!(cluster_roles.contains(&role), "{role} not in {cluster_roles:?}");
    }
    // The operator runs with leader election and the chart's project template.
    let operator = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "slipway-operator")
        .unwrap();
    let args = operator["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("--leader-elect"), "{args}");
    assert!(
        args.contains("--project-template=slipway-system/slipway-project-template"),
        "{args}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o["kind"] == "Template" && o["metadata"]["name"] == "slipway-project-template")
    );
    // The operator binary accepts exactly the flags the chart gives it (`--list` exits after
    // parsing them).
    let flags: Vec<String> = operator["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_slipway-operator"))
        .args(&flags)
        .arg("--list")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{flags:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
