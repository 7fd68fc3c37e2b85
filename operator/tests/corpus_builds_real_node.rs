//! BuildConfigs of OpenShift's own templates (the shared corpus) that use `contextDir`,
//! `postCommit` and `incremental`, processed as `slip process` does and built on the real node by
//! the build controller (in-process, this namespace only).
//!
//! What cannot be here is stood in for, and nothing else is changed: the repository (on GitHub)
//! by a local one with the template's context directory, the builder image (PHP, Perl, EAP) by
//! s2i-busybox with stand-in `php`, `perl`, `npm` and `python` commands that say they ran, the
//! output by the dev registry. Each build must complete with the context directory's files (and
//! not the repository root's), its post-commit hook seen in the build's log, and an incremental
//! BuildConfig's second build seeing the first one's artifacts.
//!
//! Needs the images of `make images`; part of `make e2e` (alone: `make e2e-builds`).
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use slipway_client::instantiate::instantiate;
use slipway_crds::BuildConfig;
use slipway_crds::build::BuildRequest;
use slipway_crds::process::{ProcessOptions, parse_template, process};
use slipway_testkit::real_node::*;
use slipway_testkit::*;

mod real_node_support;

/// The templates and the parameters given (the rest keep their defaults).
const TEMPLATES: &[(&str, &[(&str, &str)])] = &[
    // contextDir + postCommit `./vendor/bin/phpunit`
    (
        "openshift-templates/cakephp--cakephp-example.json",
        &[("CONTEXT_DIR", "php-app")],
    ),
    // contextDir + postCommit `perl -I extlib/lib/perl5 -I lib t/*`
    (
        "openshift-templates/dancer--dancer-example.json",
        &[("CONTEXT_DIR", "perl-app")],
    ),
    // contextDir `kitchensink` (its default) + incremental
    ("openshift-templates/eap--eap74-basic-s2i.json", &[]),
];

/// Stand-ins for the language tools the templates' hooks call.
const STAND_IN_TOOL: &str = "#!/bin/sh\necho \"stand-in $(basename \"$0\") ran in $(pwd): $*\"\n";

/// s2i-busybox with the stand-in tools, working in the application's folder.
fn stand_in_builder() -> String {
    test_image(
        "slipway-test/corpus-stand-in",
        &format!(
            "FROM {LOCAL_REGISTRY}/slipway/s2i-busybox:latest\n\
             COPY tool /usr/local/bin/php\nCOPY tool /usr/local/bin/perl\n\
             COPY tool /usr/local/bin/npm\nCOPY tool /usr/local/bin/python\nWORKDIR /tmp/app\n"
        ),
        &[("tool", STAND_IN_TOOL)],
    )
}

/// The Source BuildConfigs of a template, processed with its parameters.
fn source_build_configs(template: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let text = shared_file(template);
    let document = parse_template(&text).unwrap();
    let values: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let options = ProcessOptions {
        ignore_unknown_parameters: true,
        ..ProcessOptions::default()
    };
    let processed = process(&document.fields, &values, &options).unwrap();
    processed
        .objects
        .into_iter()
        .filter(|o| o["kind"] == "BuildConfig" && o["spec"]["strategy"]["type"] == "Source")
        .collect()
}

/// The application repository: for each context directory, a marker, the files the hooks run,
/// and a file at the root that must not reach the image.
fn repository_files(context_dirs: &[String]) -> BTreeMap<&'static str, String> {
    let mut files = BTreeMap::from([("root-only.txt", "the repository's root\n".to_string())]);
    for dir in context_dirs {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        files.insert(leak(format!("{dir}/marker.txt")), format!("context {dir}\n"));
        files.insert(
            leak(format!("{dir}/vendor/bin/phpunit")),
            "#!/bin/sh\necho \"phpunit ran in $(pwd)\"\n".into(),
        );
        files.insert(leak(format!("{dir}/t/basic.t")), "ok 1\n".into());
    }
    files
}

#[ignore = "needs `make images`; run with `make e2e`"]
#[tokio::test(flavor = "multi_thread")]
async fn corpus_build_configs_with_context_dirs_hooks_and_incremental_builds() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "corpus").await;
    let n = ns.name.clone();
    pin_to_real_node(&client, &n).await;
    let builder = stand_in_builder();

    let mut configs = Vec::new();
    for (template, params) in TEMPLATES {
        let found = source_build_configs(template, params);
        assert!(!found.is_empty(), "{template} has a Source BuildConfig");
        configs.extend(found);
    }
    let context_dirs: Vec<String> = configs
        .iter()
        .map(|c| {
            c["spec"]["source"]["contextDir"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(context_dirs.iter().all(|d| !d.is_empty()), "{context_dirs:?}");
    assert!(
        configs
            .iter()
            .any(|c| c["spec"]["postCommit"]["script"].is_string())
    );
    assert!(
        configs
            .iter()
            .any(|c| c["spec"]["strategy"]["sourceStrategy"]["incremental"] == true)
    );

    let dir = tempfile::tempdir().unwrap();
    // `./vendor/bin/phpunit`, the hook's own path, is an executable of the repository.
    git_repository(dir.path(), "app", &repository_files(&context_dirs));
    let server = git_http::GitHttp::start(dir.path(), format!("{NODE_IP}:0").parse().unwrap())
        .await
        .unwrap();

    let api: Api<BuildConfig> = Api::namespaced(client.clone(), &n);
    let mut names = Vec::new();
    for mut config in configs {
        let name = config["metadata"]["name"].as_str().unwrap().to_string();
        let spec = &mut config["spec"];
        spec["source"]["git"] = json!({"uri": server.url(NODE_IP, "app"), "ref": "main"});
        spec["strategy"]["sourceStrategy"]["from"] = json!({"kind": "DockerImage", "name": builder});
        spec["output"]["to"] = json!({"kind": "DockerImage",
            "name": format!("{NODE_REGISTRY}/slipway-test/{n}/{name}:latest")});
        // Started here, not by the template's triggers (no trigger controller runs).
        spec["triggers"] = json!([]);
        config["metadata"]["namespace"] = json!(n);
        let bc: BuildConfig = serde_json::from_value(config).unwrap();
        api.create(&PostParams::default(), &bc).await.unwrap();
        names.push(name);
    }
    let controller = real_node_support::start_build_controller(&n).await;
    let run = real_node_support::Builds {
        client: client.clone(),
        ns: n.clone(),
        repository: format!("slipway-test/{n}"),
    };
    let mut builds = BTreeMap::new();
    for name in &names {
        let build = instantiate(&client, &n, name, &BuildRequest::default())
            .await
            .unwrap();
        builds.insert(name.clone(), build.name_any());
    }
    for name in &names {
        let bc = api.get(name).await.unwrap();
        let context = bc.spec.common.source.context_dir.clone().unwrap();
        let digest = run.complete(&builds[name]).await;
        // The context directory's files, not the root's.
        assert_eq!(
            run.run(
                name,
                &digest,
                "cat /tmp/app/marker.txt; test -e /tmp/app/root-only.txt || echo no-root"
            )
            .await,
            format!("context {context}\nno-root\n"),
            "{name}"
        );
        // The template's own post-commit hook ran in the built image.
        if let Some(script) = bc.spec.common.post_commit.as_ref().and_then(|p| p.script.clone()) {
            let log = run.log(&builds[name]).await;
            let expected = if script.contains("phpunit") {
                "phpunit ran in /tmp/app".to_string()
            } else {
                let tool = script.split_whitespace().next().unwrap();
                format!("stand-in {tool} ran in /tmp/app")
            };
            assert!(log.contains(&expected), "{name}: hook {script:?}: {log}");
        }
        // Incremental: the second build restores the first one's artifacts.
        if bc
            .spec
            .common
            .strategy
            .source_strategy
            .as_ref()
            .and_then(|s| s.incremental)
            == Some(true)
        {
            let second = instantiate(&client, &n, name, &BuildRequest::default())
                .await
                .unwrap();
            let digest = run.complete(&second.name_any()).await;
            assert_eq!(
                run.run(name, &digest, "cat /tmp/app/build-count").await.trim(),
                "2"
            );
        }
    }

    controller.abort();
    drop(server);
    ns.delete().await;
}
