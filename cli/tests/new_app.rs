//! `slip new-app` against the dev cluster: the objects an app is made of, names already taken
//! refused before anything is made, and bad input refused with a precise message.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::process::Output;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::json;
use slipway_crds::{BuildConfig, DeploymentConfig, ImageStream};
use slipway_testkit::*;

async fn slip(args: &[&str]) -> Output {
    run_program(env!("CARGO_BIN_EXE_slip"), None, args).await
}

#[tokio::test]
async fn an_app_is_made_whole_or_not_at_all() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "slip-new-app").await;
    let n = ns.name.as_str();
    let source = "registry.example.com/s2i/busybox:1~https://git.example.com/team/web.git";

    let out = slip(&[
        "-n",
        n,
        "new-app",
        source,
        "--replicas",
        "2",
        "-e",
        "MODE=prod",
        "--as-deployment-config",
    ])
    .await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("app web created"),
        "{}",
        output_text(&out)
    );
    let stream = Api::<ImageStream>::namespaced(client.clone(), n)
        .get("web")
        .await
        .unwrap();
    let bc = Api::<BuildConfig>::namespaced(client.clone(), n)
        .get("web")
        .await
        .unwrap();
    let dc = Api::<DeploymentConfig>::namespaced(client.clone(), n)
        .get("web")
        .await
        .unwrap();
    let svc = Api::<Service>::namespaced(client.clone(), n)
        .get("web")
        .await
        .unwrap();
    let secret = Api::<Secret>::namespaced(client.clone(), n)
        .get("web-webhook")
        .await
        .unwrap();
    for labels in [
        stream.labels(),
        bc.labels(),
        dc.labels(),
        svc.labels(),
        secret.labels(),
    ] {
        assert_eq!(labels["app"], "web");
    }
    assert_eq!(dc.spec.replicas, 2);
    let owner = &secret.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("BuildConfig", "web"));
    assert_eq!(secret.data.unwrap()["WebHookSecretKey"].0.len(), 64);

    // The same app again: refused, nothing changed.
    let again = slip(&["-n", n, "new-app", source]).await;
    assert!(!again.status.success());
    assert!(
        output_text(&again).contains("already exists"),
        "{}",
        output_text(&again)
    );

    // A name taken by one object of the app (a Service): refused before anything is made.
    let taken: Service = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {"ports": [{"port": 80}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), n)
        .create(&PostParams::default(), &taken)
        .await
        .unwrap();
    let clash = slip(&["-n", n, "new-app", source, "--name", "api"]).await;
    assert!(!clash.status.success());
    let text = output_text(&clash);
    assert!(
        text.contains("service api already exists") && text.contains("nothing was created"),
        "{text}"
    );
    for missing in [
        Api::<ImageStream>::namespaced(client.clone(), n)
            .get_opt("api")
            .await
            .unwrap()
            .is_none(),
        Api::<BuildConfig>::namespaced(client.clone(), n)
            .get_opt("api")
            .await
            .unwrap()
            .is_none(),
        Api::<Secret>::namespaced(client.clone(), n)
            .get_opt("api-webhook")
            .await
            .unwrap()
            .is_none(),
    ] {
        assert!(missing, "a refused app left an object behind");
    }

    // A builder image stream that is not there.
    let no_stream = slip(&["-n", n, "new-app", "nodejs:18~https://git.example.com/x.git"]).await;
    assert!(!no_stream.status.success());
    assert!(
        output_text(&no_stream).contains("no image stream"),
        "{}",
        output_text(&no_stream)
    );

    // Malformed and hostile input: a precise message, a non-zero exit, nothing made.
    let long = "a".repeat(5000);
    for (args, expected) in [
        (vec!["new-app", "not a url"], "is not a git URL or an image"),
        (vec!["new-app", "b/c~ftp://x/y"], "is not a git URL"),
        (
            vec!["new-app", source, "--name", "Bad_Name"],
            "is not a valid app name",
        ),
        (
            vec!["new-app", source, "-e", "1X=y"],
            "is not a valid variable name",
        ),
        (vec!["new-app", source, "--replicas", "5000"], "--replicas"),
        (vec!["new-app", source, "--port", "70000"], "--port"),
        (vec!["new-app", &long], "is not a git URL or an image"),
        (
            vec!["new-app", "https://git.example.com/x.git", "--strategy", "source"],
            "needs a builder",
        ),
    ] {
        let mut all = vec!["-n", n];
        all.extend(args.iter().copied());
        let out = slip(&all).await;
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            output_text(&out).contains(expected),
            "{args:?}: {}",
            output_text(&out)
        );
    }
    // Dry runs: the API server checks every object (server) or nothing is sent (client); nothing
    // is created either way, and a taken name is still refused.
    let out = slip(&["-n", n, "new-app", source, "--name", "dry", "--dry-run=server"]).await;
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("app dry checked in") && text.contains("(server dry run, nothing created)"),
        "{text}"
    );
    let out = slip(&["-n", n, "new-app", "registry.example.com/team/dry:1", "--dry-run"]).await;
    assert!(
        output_text(&out).contains("app dry would be created in"),
        "{}",
        output_text(&out)
    );
    assert!(
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), n)
            .get_opt("dry")
            .await
            .unwrap()
            .is_none()
    );
    let out = slip(&["-n", n, "new-app", source, "--dry-run=server"]).await;
    assert!(!out.status.success() && output_text(&out).contains("already exists"));
    let out = slip(&["-n", n, "new-app", source, "--name", "dry", "--dry-run=later"]).await;
    assert!(!out.status.success() && output_text(&out).contains("later"));
    let streams = Api::<ImageStream>::namespaced(client.clone(), n)
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(streams.items.len(), 1, "only the first app's stream exists");

    // Build secrets: the source's and the build's, checked to exist before anything is made.
    for secret in ["git-creds", "certs"] {
        let object: Secret =
            serde_json::from_value(json!({"metadata": {"name": secret}, "stringData": {"k": "v"}})).unwrap();
        Api::<Secret>::namespaced(client.clone(), n)
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    let out = slip(&[
        "-n",
        n,
        "new-app",
        source,
        "--name",
        "sec",
        "--source-secret",
        "git-creds",
        "--build-secret",
        "certs:etc/certs",
    ])
    .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let bc = serde_json::to_value(
        Api::<BuildConfig>::namespaced(client.clone(), n)
            .get("sec")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(bc["spec"]["source"]["sourceSecret"], json!({"name": "git-creds"}));
    assert_eq!(
        bc["spec"]["source"]["secrets"],
        json!([{"secret": {"name": "certs"}, "destinationDir": "etc/certs"}])
    );
    let out = slip(&[
        "-n",
        n,
        "new-build",
        "https://git.example.com/team/nb.git",
        "--strategy",
        "docker",
        "--context-dir",
        "app",
        "-e",
        "MODE=ci",
        "--source-secret",
        "git-creds",
        "--build-secret",
        "certs",
    ])
    .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let nb = serde_json::to_value(
        Api::<BuildConfig>::namespaced(client.clone(), n)
            .get("nb")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(nb["spec"]["source"]["contextDir"], "app");
    assert_eq!(nb["spec"]["source"]["sourceSecret"], json!({"name": "git-creds"}));
    assert_eq!(
        nb["spec"]["source"]["secrets"],
        json!([{"secret": {"name": "certs"}}])
    );
    assert_eq!(
        nb["spec"]["strategy"]["dockerStrategy"]["env"],
        json!([{"name": "MODE", "value": "ci"}])
    );
    for (args, needle) in [
        (
            vec!["new-app", source, "--name", "nosec", "--source-secret", "missing"],
            "secret missing not found",
        ),
        (
            vec![
                "new-build",
                "https://git.example.com/team/x.git",
                "--strategy",
                "docker",
                "--build-secret",
                "missing",
            ],
            "secret missing not found",
        ),
        (
            vec![
                "new-app",
                source,
                "--name",
                "nosec",
                "--build-secret",
                "certs:/abs",
            ],
            "DIR must be a relative path",
        ),
        (
            vec![
                "new-app",
                "registry.example.com/team/img:1",
                "--source-secret",
                "git-creds",
            ],
            "are for apps built from git",
        ),
    ] {
        let mut all = vec!["-n", n];
        all.extend(args.iter().copied());
        let out = slip(&all).await;
        assert!(
            !out.status.success() && output_text(&out).contains(needle),
            "{args:?}: {}",
            output_text(&out)
        );
    }
    for missing in ["nosec", "x", "img"] {
        assert!(
            Api::<ImageStream>::namespaced(client.clone(), n)
                .get_opt(missing)
                .await
                .unwrap()
                .is_none(),
            "{missing}"
        );
    }
    ns.delete().await;
}

#[tokio::test]
async fn an_app_from_a_template_is_a_template_instance() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "slip-new-app-t").await;
    let n = ns.name.as_str();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.yaml");
    std::fs::write(
        &file,
        "apiVersion: template.openshift.io/v1\nkind: Template\nmetadata: {name: greeter}\n\
         parameters:\n- {name: GREETING, required: true}\n\
         objects:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: greeting}, data: {text: '${GREETING}'}}\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let instances = dynamic_api(&client, "TemplateInstance", n);

    let out = slip(&["-n", n, "new-app", "-f", &file, "-p", "GREETING=hello"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("templateinstance.slipway.dev/greeter created: 1 objects"),
        "{}",
        output_text(&out)
    );
    let instance = serde_json::to_value(instances.get("greeter").await.unwrap()).unwrap();
    assert_eq!(instance["spec"]["parameters"], json!({"GREETING": "hello"}));
    assert_eq!(instance["spec"]["template"]["metadata"]["name"], "greeter");
    assert_eq!(instance["spec"]["template"]["objects"][0]["kind"], "ConfigMap");

    // A stored Template, by name.
    let template = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "Template", "metadata": {"name": "stored"},
        "parameters": [{"name": "GREETING", "required": true}],
        "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "g2"}, "data": {"t": "${GREETING}"}}]});
    dynamic_api(&client, "Template", n)
        .create(&PostParams::default(), &serde_json::from_value(template).unwrap())
        .await
        .unwrap();
    let out = slip(&[
        "-n",
        n,
        "new-app",
        "--template",
        "stored",
        "-p",
        "GREETING=hi",
        "--name",
        "from-stored",
    ])
    .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let instance = serde_json::to_value(instances.get("from-stored").await.unwrap()).unwrap();
    assert_eq!(instance["spec"]["templateRef"], json!({"name": "stored"}));

    // Refused before anything is created: a required parameter left out, an unknown one, a
    // template that is not there, a source and a template at once, -p without a template.
    for (args, needle) in [
        (vec!["new-app", "-f", &file, "--name", "bad"], "GREETING"),
        (
            vec![
                "new-app",
                "-f",
                &file,
                "-p",
                "GREETING=x",
                "-p",
                "NOPE=1",
                "--name",
                "bad",
            ],
            "NOPE",
        ),
        (
            vec!["new-app", "--template", "missing"],
            "template missing not found",
        ),
        (
            vec!["new-app", "registry.example.com/a:1", "--template", "stored"],
            "cannot be used with",
        ),
        (
            vec!["new-app", "registry.example.com/a:1", "-p", "A=1"],
            "-p goes with a template (TEMPLATE, --template or -f)",
        ),
        (vec!["new-app"], "required"),
    ] {
        let mut all = vec!["-n", n];
        all.extend(args.iter().copied());
        let out = slip(&all).await;
        assert!(
            !out.status.success() && output_text(&out).contains(needle),
            "{args:?}: {}",
            output_text(&out)
        );
    }
    let out = slip(&[
        "-n",
        n,
        "new-app",
        "-f",
        &file,
        "-p",
        "GREETING=x",
        "--name",
        "dry",
        "--dry-run=server",
    ])
    .await;
    assert!(
        out.status.success() && output_text(&out).contains("(server dry run)"),
        "{}",
        output_text(&out)
    );
    let names: Vec<String> = instances
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i.name_any())
        .collect();
    assert_eq!(names, ["from-stored", "greeter"]);
    ns.delete().await;
}

/// `slip new-app TEMPLATE`, as `oc new-app` finds it: a Template of that name in the project
/// first, then in the catalog namespace (`openshift`; here a namespace of the test's own, named by
/// `SLIPWAY_CATALOG_NAMESPACE`). The instance refers to the Template where it was found; a name
/// that is no template anywhere is an image, and refuses `-p`.
#[tokio::test]
async fn a_positional_template_is_found_in_the_project_then_in_the_catalog() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "slip-new-app-pos").await;
    let catalog = TestNamespace::new(&client, "slip-catalog").await;
    let n = ns.name.as_str();
    let template = |name: &str, key: &str| {
        serde_json::from_value(json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "Template",
            "metadata": {"name": name},
            "parameters": [{"name": "GREETING", "required": true}],
            "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": key}, "data": {"t": "${GREETING}"}}]}))
        .unwrap()
    };
    dynamic_api(&client, "Template", &catalog.name)
        .create(&PostParams::default(), &template("greeter", "from-catalog"))
        .await
        .unwrap();
    dynamic_api(&client, "Template", &catalog.name)
        .create(&PostParams::default(), &template("shadowed", "from-catalog"))
        .await
        .unwrap();
    dynamic_api(&client, "Template", n)
        .create(&PostParams::default(), &template("shadowed", "from-project"))
        .await
        .unwrap();
    let slip_with_catalog = |args: Vec<String>| {
        let catalog = catalog.name.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_slip"))
                    .args(&args)
                    .env("SLIPWAY_CATALOG_NAMESPACE", catalog)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let args = |list: &[&str]| -> Vec<String> {
        let mut all = vec!["-n".to_string(), n.to_string()];
        all.extend(list.iter().map(|a| a.to_string()));
        all
    };
    let instances = dynamic_api(&client, "TemplateInstance", n);

    let out = slip_with_catalog(args(&["new-app", "greeter", "-p", "GREETING=hello"])).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains(&format!(
            "templateinstance.slipway.dev/greeter created: 1 objects from template {}/greeter",
            catalog.name
        )),
        "{}",
        output_text(&out)
    );
    let instance = serde_json::to_value(instances.get("greeter").await.unwrap()).unwrap();
    assert_eq!(
        instance["spec"]["templateRef"],
        json!({"name": "greeter", "namespace": catalog.name})
    );
    assert_eq!(instance["spec"]["parameters"], json!({"GREETING": "hello"}));

    // The project's own Template wins over the catalog's of the same name.
    let out = slip_with_catalog(args(&["new-app", "shadowed", "-p", "GREETING=hi"])).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let instance = serde_json::to_value(instances.get("shadowed").await.unwrap()).unwrap();
    assert_eq!(instance["spec"]["templateRef"], json!({"name": "shadowed"}));

    // Refused before anything is created: a required parameter left out, -p on a name that
    // is no template (an image), and a client dry run creates nothing.
    for (list, needle) in [
        (vec!["new-app", "greeter", "--name", "bad"], "GREETING"),
        (
            vec!["new-app", "nosuch", "-p", "GREETING=x"],
            "no template \"nosuch\" in the project or in",
        ),
    ] {
        let out = slip_with_catalog(args(&list)).await;
        assert!(
            !out.status.success() && output_text(&out).contains(needle),
            "{list:?}: {}",
            output_text(&out)
        );
    }
    let out = slip_with_catalog(args(&[
        "new-app",
        "greeter",
        "-p",
        "GREETING=x",
        "--name",
        "dry",
        "--dry-run",
    ]))
    .await;
    assert!(
        out.status.success() && output_text(&out).contains("(dry run)"),
        "{}",
        output_text(&out)
    );
    let mut names: Vec<String> = instances
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i.name_any())
        .collect();
    names.sort();
    assert_eq!(names, ["greeter", "shadowed"]);
    catalog.delete().await;
    ns.delete().await;
}
