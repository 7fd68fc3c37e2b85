#![allow(clippy::unwrap_used)]

use super::*;
use crate::build::BuildSpec;
use serde_json::json;

fn spec(v: serde_json::Value) -> CommonSpec {
    serde_json::from_value(v).unwrap()
}

fn refused(v: serde_json::Value) -> Vec<String> {
    plan(&spec(v)).unwrap_err().into_iter().map(|u| u.field).collect()
}

#[test]
fn every_source_field_reaches_the_plan() {
    let p = plan(&spec(json!({
        "source": {"type": "Git", "git": {"uri": "https://example.com/a.git"}, "contextDir": "./app/",
                   "secrets": [{"secret": {"name": "s"}, "destinationDir": "certs"}, {"secret": {"name": "t"}}],
                   "configMaps": [{"configMap": {"name": "c"}, "destinationDir": "conf/x"}]},
        "strategy": {"type": "Source", "sourceStrategy": {
            "from": {"kind": "ImageStreamTag", "name": "python:3"},
            "pullSecret": {"name": "p"}, "scripts": "image:///opt/s2i", "incremental": true, "forcePull": true,
            "env": [{"name": "A", "value": "1"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}},
        "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"},
                   "imageLabels": [{"name": "team", "value": "blue"}]},
        "postCommit": {"script": "make test $1", "args": ["-v"]},
    })))
    .unwrap();
    assert!(p.git && p.push && p.incremental && p.force_pull && p.pull_secret);
    assert_eq!(p.context_dir, "app");
    assert_eq!(p.scripts_url.as_deref(), Some("image:///opt/s2i"));
    assert_eq!(p.env, [("A".to_string(), "1".to_string())]);
    assert_eq!(p.env_from_pod, ["TOKEN"]);
    assert_eq!(p.image_labels, [("team".to_string(), "blue".to_string())]);
    let mounts: Vec<_> = p
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.mount.as_str(), i.destination.as_str()))
        .collect();
    assert_eq!(
        mounts,
        [
            ("s", "/var/run/secrets/slipway.dev/inputs/secret-0", "certs"),
            ("t", "/var/run/secrets/slipway.dev/inputs/secret-1", ""),
            ("c", "/var/run/secrets/slipway.dev/inputs/configmap-0", "conf/x"),
        ]
    );
    assert_eq!(
        p.post_commit.unwrap().argv(&[]),
        ["/bin/sh", "-c", "make test $1", "/bin/sh", "-v"]
    );
}

#[test]
fn every_docker_field_reaches_the_plan() {
    let p = plan(&spec(json!({
        "source": {"type": "Dockerfile", "dockerfile": "FROM x\n"},
        "strategy": {"type": "Docker", "dockerStrategy": {
            "from": {"kind": "DockerImage", "name": "reg/base:1"}, "noCache": true, "forcePull": true,
            "dockerfilePath": "build/Dockerfile.prod", "imageOptimizationPolicy": "SkipLayers",
            "env": [{"name": "E", "value": "e"}], "buildArgs": [{"name": "V", "value": "2"}]}},
        "postCommit": {"command": ["./test"], "args": ["--fast"]},
    })))
    .unwrap();
    assert!(!p.git && !p.push && p.no_cache && p.force_pull && p.replace_from);
    assert_eq!(p.dockerfile.as_deref(), Some("FROM x\n"));
    assert_eq!(p.dockerfile_path, "build/Dockerfile.prod");
    assert_eq!(p.layers, Layers::Squash);
    assert_eq!(p.env, [("E".to_string(), "e".to_string())]);
    assert_eq!(p.build_args, [("V".to_string(), "2".to_string())]);
    assert_eq!(p.post_commit.unwrap().argv(&[]), ["./test", "--fast"]);
}

#[test]
fn hooks_read_as_openshift_runs_them() {
    let args_only = BuildPostCommitSpec {
        args: vec!["test".into()],
        ..Default::default()
    };
    let entry = ["/usr/bin/entry".to_string()];
    assert_eq!(
        Hook::of(Some(&args_only)).unwrap().argv(&entry),
        ["/usr/bin/entry", "test"]
    );
    assert_eq!(Hook::of(Some(&BuildPostCommitSpec::default())), None);
    assert_eq!(Hook::of(None), None);
}

#[test]
fn binary_and_image_sources_reach_the_plan() {
    let s2i = json!({"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "b"}}});
    let p = plan(&spec(
        json!({"source": {"type": "Binary", "binary": {"asFile": "app.jar"}, "contextDir": "web"},
        "strategy": s2i.clone()}),
    ))
    .unwrap();
    assert!(!p.git);
    assert_eq!(
        p.binary,
        Some(BinaryInput {
            as_file: Some("app.jar".into())
        })
    );
    assert_eq!(p.context_dir, "web");
    let p = plan(&spec(json!({"source": {"type": "Git", "git": {"uri": "https://e/a.git"},
        "images": [{"from": {"kind": "ImageStreamTag", "name": "assets:1"}, "pullSecret": {"name": "p"},
                    "paths": [{"sourcePath": "/opt/assets/.", "destinationDir": "./static/"}, {"sourcePath": "/app.jar"}]},
                   {"from": {"kind": "DockerImage", "name": "x"}, "paths": [{"sourcePath": "/x"}]}]},
        "strategy": s2i})))
    .unwrap();
    assert_eq!(
        p.images,
        [
            ImageInput {
                paths: vec![
                    ("/opt/assets/.".into(), "static".into()),
                    ("/app.jar".into(), String::new())
                ],
                pull_secret: Some("/var/run/secrets/slipway.dev/inputs/image-pull-0".into()),
            },
            ImageInput {
                paths: vec![("/x".into(), String::new())],
                pull_secret: None,
            },
        ]
    );
}

#[test]
fn what_is_not_carried_out_is_named() {
    let base = |source: serde_json::Value, strategy: serde_json::Value| json!({"source": source, "strategy": strategy});
    let s2i = json!({"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "b"}}});
    assert_eq!(
        refused(base(
            json!({"type": "Binary", "binary": {"asFile": "../x"}, "git": {"uri": "https://e/a.git"}}),
            s2i.clone()
        )),
        ["spec.source.binary.asFile", "spec.source.git"]
    );
    assert_eq!(
        refused(base(
            json!({"type": "Binary", "binary": {}}),
            json!({"type": "Custom", "customStrategy": {"from": {"kind": "DockerImage", "name": "c"}}})
        )),
        ["spec.source.binary"]
    );
    assert_eq!(
        refused(base(
            json!({"type": "Image", "images": [{"from": {"kind": "DockerImage", "name": "x"}, "paths": []}]}),
            s2i.clone()
        )),
        ["spec.source.images[0].paths"]
    );
    assert_eq!(
        refused(base(
            json!({"images": [{"from": {"kind": "DockerImage", "name": "x"}, "as": ["y"],
                "paths": [{"sourcePath": "rel/path"}, {"sourcePath": "/a/../b"}, {"sourcePath": "/ok", "destinationDir": "/abs"}]}]}),
            s2i.clone()
        )),
        [
            "spec.source.images[0].as",
            "spec.source.images[0].paths[0].sourcePath",
            "spec.source.images[0].paths[1].sourcePath",
            "spec.source.images[0].paths[2].destinationDir"
        ]
    );
    assert_eq!(
        refused(base(json!({"contextDir": "../up"}), s2i.clone())),
        ["spec.source.contextDir"]
    );
    assert_eq!(
        refused(base(
            json!({"secrets": [{"secret": {"name": "s"}, "destinationDir": "/etc"}]}),
            s2i.clone()
        )),
        ["spec.source.secrets[0].destinationDir"]
    );
    assert_eq!(
        refused(base(
            json!({}),
            json!({"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "b"}, "scripts": "https://x/s"}})
        )),
        ["spec.strategy.sourceStrategy.scripts"]
    );
    assert_eq!(
        refused(base(
            json!({}),
            json!({"type": "Docker", "dockerStrategy": {"imageOptimizationPolicy": "Flat"}})
        )),
        ["spec.strategy.dockerStrategy.imageOptimizationPolicy"]
    );
    assert_eq!(
        refused(base(
            json!({}),
            json!({"type": "Docker", "dockerStrategy": {"buildArgs": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]}})
        )),
        ["spec.strategy.dockerStrategy.buildArgs[0].valueFrom"]
    );
    assert_eq!(
        refused(base(
            json!({}),
            json!({"type": "Custom", "customStrategy": {"from": {"kind": "DockerImage", "name": "c"}, "exposeDockerSocket": true}})
        )),
        ["spec.strategy.customStrategy.exposeDockerSocket"]
    );
    assert_eq!(
        refused(base(
            json!({}),
            json!({"type": "Custom", "customStrategy": {"from": {"kind": "DockerImage", "name": "c"},
                "secrets": [{"secretSource": {"name": "ok"}, "mountPath": "/etc/ok"},
                            {"secretSource": {"name": "a"}, "mountPath": "/var/run/secrets/slipway.dev/push"},
                            {"secretSource": {"name": "b"}, "mountPath": "relative"},
                            {"secretSource": {"name": "c"}, "mountPath": "/etc/../proc"}]}})
        )),
        [
            "spec.strategy.customStrategy.secrets[1].mountPath",
            "spec.strategy.customStrategy.secrets[2].mountPath",
            "spec.strategy.customStrategy.secrets[3].mountPath"
        ]
    );
    assert_eq!(
        refused(base(
            json!({}),
            json!({"type": "JenkinsPipeline", "jenkinsPipelineStrategy": {}})
        )),
        ["spec.strategy.jenkinsPipelineStrategy"]
    );
    // Several at once: all of them, so the user fixes them in one go.
    assert_eq!(
        refused(base(
            json!({"images": [{"from": {"kind": "DockerImage", "name": "x"}, "paths": []}], "contextDir": "/abs"}),
            s2i
        ))
        .len(),
        2
    );
}

#[test]
fn context_dirs_are_normalised_or_refused() {
    assert_eq!(normalize_context_dir(" ./a//b/ ").unwrap(), "a/b");
    assert_eq!(normalize_context_dir("").unwrap(), "");
    assert!(normalize_context_dir("a/../../b").is_err());
    assert!(normalize_context_dir("/etc").is_err());
}

#[test]
fn images_carry_openshifts_build_labels_without_credentials() {
    let mut b = Build::new(
        "web-3",
        BuildSpec {
            common: spec(json!({
                "source": {"git": {"uri": "https://bob:hunter2@git.example.com/web.git", "ref": "main"}, "contextDir": "app"},
                "strategy": {"type": "Docker"},
                "output": {"imageLabels": [{"name": "io.openshift.build.name", "value": "mine"}, {"name": "tier", "value": "web"}]},
            })),
            triggered_by: vec![],
        },
    );
    b.metadata.namespace = Some("team".into());
    let fetched = result::StageResult {
        commit: Some("abc123".into()),
        commit_date: Some("2026-12-06T04:00:00Z".into()),
        author: Some(result::Person {
            name: "Alice".into(),
            email: "a@x".into(),
        }),
        message: Some("first line\n\nbody".into()),
        ..Default::default()
    };
    let labels = image_labels(&b, Some(&fetched));
    let get = |k: &str| labels.get(k).map(String::as_str);
    assert_eq!(get("io.openshift.build.commit.id"), Some("abc123"));
    assert_eq!(get("io.openshift.build.commit.author"), Some("Alice <a@x>"));
    assert_eq!(
        get("io.openshift.build.commit.date"),
        Some("2026-12-06T04:00:00Z")
    );
    assert_eq!(get("io.openshift.build.commit.message"), Some("first line"));
    assert_eq!(get("io.openshift.build.commit.ref"), Some("main"));
    assert_eq!(
        get("io.openshift.build.source-location"),
        Some("https://git.example.com/web.git")
    );
    assert_eq!(get("io.openshift.build.source-context-dir"), Some("app"));
    assert_eq!(get("io.openshift.build.namespace"), Some("team"));
    // output.imageLabels win.
    assert_eq!(get("io.openshift.build.name"), Some("mine"));
    assert_eq!(get("tier"), Some("web"));
}
