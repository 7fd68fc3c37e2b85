//! The API, against the real API server of the dev cluster: the CRDs install and are discoverable
//! with their printer columns and documentation; valid examples are accepted; invalid objects are
//! rejected by the API server itself with a message that names the field.
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use slipway_testkit::*;

#[tokio::test]
async fn crds_are_served_with_short_names_and_category() {
    ensure_crds();
    let client = client().await;
    let discovery = kube::Discovery::new(client)
        .filter(&["slipway.dev"])
        .run()
        .await
        .expect("discovery");
    let group = discovery
        .get("slipway.dev")
        .expect("the slipway.dev group is served");
    let mut kinds: Vec<String> = group
        .recommended_resources()
        .into_iter()
        .map(|(ar, _)| ar.kind)
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "Build",
            "BuildConfig",
            "DeploymentConfig",
            "ImagePrune",
            "ImageStream",
            "Project",
            "ProjectRequest",
            "Template",
            "TemplateInstance"
        ]
    );
    for (kind, short) in [
        ("BuildConfig", "bc"),
        ("ImageStream", "is"),
        ("DeploymentConfig", "dc"),
        ("Project", "proj"),
    ] {
        let crd = slipway_crds::crdgen::all()
            .into_iter()
            .find(|c| c.spec.names.kind == kind)
            .unwrap();
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&[short.to_string()][..]),
            "{kind}"
        );
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["slipway".to_string()][..]),
            "{kind}"
        );
    }
}

/// `kubectl get` asks the server for a Table; the columns it shows are these.
async fn table_columns(client: &kube::Client, path: &str) -> Vec<String> {
    let request = http::Request::get(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let table: Value = client.request(request).await.expect("table");
    table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn printer_columns_answer_is_it_working() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "columns").await;
    for file in ["buildconfig.yaml", "build.yaml", "deploymentconfig.yaml"] {
        let text = std::fs::read_to_string(repo_root().join("examples/manifests").join(file)).unwrap();
        for object in yaml_documents(&text) {
            let kind = object["kind"].as_str().unwrap();
            let obj = serde_json::from_value(object.clone()).unwrap();
            dynamic_api(&client, kind, &ns.name)
                .create(&PostParams::default(), &obj)
                .await
                .unwrap();
        }
    }
    let base = format!("/apis/slipway.dev/v1alpha1/namespaces/{}", ns.name);
    let build = table_columns(&client, &format!("{base}/builds")).await;
    for column in ["Name", "Type", "Status", "Started", "Duration"] {
        assert!(
            build.contains(&column.to_string()),
            "Build columns {build:?} lack {column}"
        );
    }
    let dc = table_columns(&client, &format!("{base}/deploymentconfigs")).await;
    for column in ["Revision", "Desired", "Current", "Triggered By"] {
        assert!(
            dc.contains(&column.to_string()),
            "DeploymentConfig columns {dc:?} lack {column}"
        );
    }
    // The operator writes the trigger summary into status; the column shows it.
    let dcs = dynamic_api(&client, "DeploymentConfig", &ns.name);
    let example = dcs.get("hello").await.unwrap();
    let spec: slipway_crds::DeploymentConfigSpec =
        serde_json::from_value(example.data["spec"].clone()).unwrap();
    let summary = slipway_crds::apps::trigger_summary(&spec);
    let status = json!({"status": {"triggerSummary": summary, "latestVersion": 3}});
    dcs.patch_status("hello", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let request = http::Request::get(format!("{base}/deploymentconfigs"))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let table: Value = client.request(request).await.unwrap();
    let index = dc.iter().position(|c| c == "Triggered By").unwrap();
    let cell = table["rows"][0]["cells"][index]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(cell, "config,image(hello:latest)");
    let revision = dc.iter().position(|c| c == "Revision").unwrap();
    assert_eq!(table["rows"][0]["cells"][revision], 3);
    for path in ["buildconfigs", "imagestreams", "templates", "templateinstances"] {
        let columns = table_columns(&client, &format!("{base}/{path}")).await;
        assert!(columns.len() >= 3, "{path} has columns {columns:?}");
    }
    ns.delete().await;
}

#[tokio::test]
async fn openapi_documents_the_fields_as_kubectl_explain_shows_them() {
    ensure_crds();
    let client = client().await;
    // kubectl explain reads the published OpenAPI v3 document of the group version.
    let doc: Value = eventually(
        "the OpenAPI v3 document to list BuildConfig",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            async move {
                let request = http::Request::get("/openapi/v3/apis/slipway.dev/v1alpha1")
                    .body(Vec::new())
                    .unwrap();
                let doc: Value = client.request(request).await.ok()?;
                doc["components"]["schemas"]["dev.slipway.v1alpha1.BuildConfig"]
                    .is_object()
                    .then_some(doc)
            }
        },
    )
    .await;
    let strategy = &doc["components"]["schemas"]["dev.slipway.v1alpha1.BuildConfig"]["properties"]["spec"]["properties"]
        ["strategy"];
    assert_eq!(strategy["description"], "How the image is built.");
    let fields = &strategy["properties"];
    for field in ["type", "sourceStrategy", "dockerStrategy"] {
        assert!(
            fields[field]["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{field} is documented"
        );
    }
    assert_eq!(
        fields["type"]["enum"],
        json!(["Source", "Docker", "Custom", "JenkinsPipeline"])
    );
}

#[tokio::test]
async fn every_example_manifest_is_accepted() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "examples").await;
    let dir = repo_root().join("examples/manifests");
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for mut object in yaml_documents(&text) {
            let kind = object["kind"].as_str().unwrap().to_string();
            // Cluster-scoped examples get this test's unique name, so they cannot collide with
            // objects of the same name elsewhere in the cluster (the demo's, for one).
            if cluster_scoped(&kind) {
                object["metadata"]["name"] = ns.name.clone().into();
            }
            kinds.insert(kind);
            if let Err(message) = dry_run_create(&client, &ns.name, &object).await {
                panic!("{} ({}) was rejected: {message}", path.display(), object["kind"]);
            }
        }
    }
    let all: std::collections::BTreeSet<String> = slipway_crds::crdgen::all()
        .into_iter()
        .map(|c| c.spec.names.kind)
        .collect();
    assert_eq!(kinds, all, "examples/manifests has a valid example of every kind");
    ns.delete().await;
}

/// One invalid object and what the API server must say about it.
struct Invalid {
    what: &'static str,
    object: Value,
    /// Every one of these must appear in the message: the field path and the reason.
    expect: &'static [&'static str],
}

fn bc(spec: Value) -> Value {
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": "bad"}, "spec": spec})
}

fn source_strategy() -> Value {
    json!({"type": "Source", "sourceStrategy": {"from": {"kind": "ImageStreamTag", "name": "builder:latest"}}})
}

fn build(spec: Value) -> Value {
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "Build", "metadata": {"name": "bad-1"}, "spec": spec})
}

fn is(spec: Value) -> Value {
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream", "metadata": {"name": "bad"}, "spec": spec})
}

fn dc(mut spec: Value) -> Value {
    let base = json!({
        "replicas": 1,
        "selector": {"app": "x"},
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "web", "image": "busybox"}]}}
    });
    for (k, v) in base.as_object().unwrap() {
        if spec.get(k).is_none() {
            spec[k] = v.clone();
        }
    }
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig", "metadata": {"name": "bad"}, "spec": spec})
}

fn template(fields: Value) -> Value {
    let mut t = json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "Template", "metadata": {"name": "bad"}, "objects": []});
    for (k, v) in fields.as_object().unwrap() {
        t[k] = v.clone();
    }
    t
}

fn ti(spec: Value) -> Value {
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "TemplateInstance", "metadata": {"name": "bad"}, "spec": spec})
}

fn project(name: &str) -> Value {
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "Project", "metadata": {"name": name}, "spec": {}})
}

fn project_request(name: &str, extra: Value) -> Value {
    let mut p =
        json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest", "metadata": {"name": name}});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

fn image_prune(spec: Value) -> Value {
    json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "ImagePrune", "metadata": {"name": "bad-prune"}, "spec": spec})
}

fn invalid_objects() -> Vec<Invalid> {
    let hook = json!({"failurePolicy": "Abort", "execNewPod": {"containerName": "web", "command": ["true"]}});
    vec![
        // BuildConfig
        Invalid {
            what: "ImagePrune keeping a negative number of revisions",
            object: image_prune(json!({"keepTagRevisions": -1})),
            expect: &["spec.keepTagRevisions", "greater than or equal to 0"],
        },
        Invalid {
            what: "ImagePrune with a duration in days",
            object: image_prune(json!({"keepYoungerThan": "1d"})),
            expect: &["spec.keepYoungerThan", "should match"],
        },
        Invalid {
            what: "ImagePrune whose dryRun is a word",
            object: image_prune(json!({"dryRun": "yes"})),
            expect: &["spec.dryRun", "boolean"],
        },
        Invalid {
            what: "ImagePrune keeping over 1000 revisions",
            object: image_prune(json!({"keepTagRevisions": 5000})),
            expect: &["spec.keepTagRevisions", "less than or equal to 1000"],
        },
        Invalid {
            what: "BuildConfig without a strategy",
            object: bc(json!({})),
            expect: &["spec.strategy", "Required value"],
        },
        Invalid {
            what: "BuildConfig with an unknown strategy type",
            object: bc(json!({"strategy": {"type": "Magic"}})),
            expect: &["spec.strategy.type", "Unsupported value: \"Magic\""],
        },
        Invalid {
            what: "BuildConfig Source strategy without sourceStrategy",
            object: bc(json!({"strategy": {"type": "Source"}})),
            expect: &[
                "spec.strategy",
                "sourceStrategy is required when strategy.type is Source",
            ],
        },
        Invalid {
            what: "BuildConfig GitHub trigger without its github object",
            object: bc(
                json!({"strategy": source_strategy(), "triggers": [{"type": "GitHub", "generic": {"secret": "x"}}]}),
            ),
            expect: &["spec.triggers[0]", "github is set exactly when type is GitHub"],
        },
        Invalid {
            what: "BuildConfig trigger with a 60,000-character ref pattern",
            object: bc(json!({"strategy": source_strategy(), "triggers": [
                {"type": "GitHub", "github": {"refs": ["*a".repeat(30_000)]}}
            ]})),
            expect: &[
                "spec.triggers[0].github.refs[0]",
                "Too long: may not be more than 256 bytes",
            ],
        },
        Invalid {
            what: "BuildConfig trigger with 33 ref patterns",
            object: bc(json!({"strategy": source_strategy(), "triggers": [
                {"type": "Generic", "generic": {"refs": vec!["main"; 33]}}
            ]})),
            expect: &[
                "spec.triggers[0].generic.refs",
                "Too many: 33: must have at most 32 items",
            ],
        },
        Invalid {
            what: "BuildConfig Git source without git",
            object: bc(json!({"strategy": source_strategy(), "source": {"type": "Git"}})),
            expect: &["spec.source", "source.git is required when source.type is Git"],
        },
        Invalid {
            what: "BuildConfig contextDir escaping the repository",
            object: bc(
                json!({"strategy": source_strategy(), "source": {"type": "Git", "git": {"uri": "https://example.com/r.git"}, "contextDir": "app/../../etc"}}),
            ),
            expect: &[
                "spec.source.contextDir",
                "contextDir must be a relative path inside the repository",
            ],
        },
        Invalid {
            what: "BuildConfig git uri that is no URL",
            object: bc(
                json!({"strategy": source_strategy(), "source": {"type": "Git", "git": {"uri": "not a url"}}}),
            ),
            expect: &[
                "spec.source.git.uri",
                "uri must be an https, http, ssh, git or file URL",
            ],
        },
        Invalid {
            what: "BuildConfig with an unknown run policy",
            object: bc(json!({"strategy": source_strategy(), "runPolicy": "Sometimes"})),
            expect: &["spec.runPolicy", "Unsupported value: \"Sometimes\""],
        },
        Invalid {
            what: "BuildConfig output to an ImageStreamImage",
            object: bc(
                json!({"strategy": source_strategy(), "output": {"to": {"kind": "ImageStreamImage", "name": "app@sha256:abc"}}}),
            ),
            expect: &[
                "spec.output.to",
                "output.to must be an ImageStreamTag or a DockerImage",
            ],
        },
        // Build
        Invalid {
            what: "Build without a strategy",
            object: build(json!({})),
            expect: &["spec.strategy", "Required value"],
        },
        Invalid {
            what: "Build Docker strategy carrying sourceStrategy",
            object: build(
                json!({"strategy": {"type": "Docker", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "x"}}}}),
            ),
            expect: &[
                "spec.strategy",
                "sourceStrategy may only be set when strategy.type is Source",
            ],
        },
        Invalid {
            what: "Build with a zero completion deadline",
            object: build(json!({"strategy": source_strategy(), "completionDeadlineSeconds": 0})),
            expect: &[
                "spec.completionDeadlineSeconds",
                "should be greater than or equal to 1",
            ],
        },
        Invalid {
            what: "Build with an ImageStreamTag builder that lacks a tag",
            object: build(
                json!({"strategy": {"type": "Source", "sourceStrategy": {"from": {"kind": "ImageStreamTag", "name": "builder"}}}}),
            ),
            expect: &[
                "spec.strategy.sourceStrategy.from",
                "an ImageStreamTag name must be <imagestream>:<tag>",
            ],
        },
        // ImageStream
        Invalid {
            what: "ImageStream tag name with a space",
            object: is(json!({"tags": [{"name": "bad tag"}]})),
            expect: &["spec.tags[0].name", "should match"],
        },
        Invalid {
            what: "ImageStream with a duplicate tag",
            object: is(json!({"tags": [{"name": "latest"}, {"name": "latest"}]})),
            expect: &["spec.tags[1]", "Duplicate value"],
        },
        Invalid {
            what: "ImageStream tag from a Pod",
            object: is(json!({"tags": [{"name": "latest", "from": {"kind": "Pod", "name": "x"}}]})),
            expect: &["spec.tags[0].from.kind", "Unsupported value: \"Pod\""],
        },
        // DeploymentConfig
        Invalid {
            what: "DeploymentConfig with negative replicas",
            object: dc(json!({"replicas": -1})),
            expect: &["spec.replicas", "should be greater than or equal to 0"],
        },
        Invalid {
            what: "DeploymentConfig whose selector does not match its template",
            object: dc(json!({"selector": {"app": "other"}})),
            expect: &["spec", "selector must match the labels of the pod template"],
        },
        Invalid {
            what: "DeploymentConfig ImageChange trigger without params",
            object: dc(json!({"triggers": [{"type": "ImageChange"}]})),
            expect: &[
                "spec.triggers[0]",
                "imageChangeParams is set exactly when type is ImageChange",
            ],
        },
        Invalid {
            what: "DeploymentConfig with zero surge and zero unavailability",
            object: dc(
                json!({"strategy": {"type": "Rolling", "rollingParams": {"maxSurge": 0, "maxUnavailable": "0%"}}}),
            ),
            expect: &[
                "spec.strategy.rollingParams",
                "maxSurge and maxUnavailable cannot both be zero",
            ],
        },
        Invalid {
            what: "DeploymentConfig Recreate strategy with rollingParams",
            object: dc(json!({"strategy": {"type": "Recreate", "rollingParams": {"timeoutSeconds": 60}}})),
            expect: &[
                "spec.strategy",
                "rollingParams may only be set when strategy.type is Rolling",
            ],
        },
        Invalid {
            what: "DeploymentConfig maxSurge that is no number or percentage",
            object: dc(json!({"strategy": {"type": "Rolling", "rollingParams": {"maxSurge": "lots"}}})),
            expect: &[
                "spec.strategy.rollingParams.maxSurge",
                "maxSurge must be a non-negative number or a percentage",
            ],
        },
        Invalid {
            what: "DeploymentConfig hook with both execNewPod and tagImages",
            object: dc(
                json!({"strategy": {"type": "Recreate", "recreateParams": {"pre": {
                    "failurePolicy": "Abort",
                    "execNewPod": hook["execNewPod"],
                    "tagImages": [{"containerName": "web", "to": {"kind": "ImageStreamTag", "name": "x:y"}}]
                }}}}),
            ),
            expect: &[
                "spec.strategy.recreateParams.pre",
                "a hook takes exactly one of execNewPod or tagImages",
            ],
        },
        Invalid {
            what: "DeploymentConfig hook with an unknown failure policy",
            object: dc(
                json!({"strategy": {"type": "Recreate", "recreateParams": {"mid": {"failurePolicy": "Shrug", "execNewPod": hook["execNewPod"]}}}}),
            ),
            expect: &[
                "spec.strategy.recreateParams.mid.failurePolicy",
                "Unsupported value: \"Shrug\"",
            ],
        },
        // Template
        Invalid {
            what: "Template parameter with a dash in its name",
            object: template(json!({"parameters": [{"name": "BAD-NAME"}]})),
            expect: &["parameters[0].name", "should match '^[a-zA-Z0-9_]+$'"],
        },
        Invalid {
            what: "Template parameter with an unknown generator",
            object: template(
                json!({"parameters": [{"name": "P", "generate": "random", "from": "[a-z]{3}"}]}),
            ),
            expect: &["parameters[0]", "generate must be 'expression'"],
        },
        Invalid {
            what: "Template generated parameter without from",
            object: template(json!({"parameters": [{"name": "P", "generate": "expression"}]})),
            expect: &["parameters[0]", "a generated parameter needs 'from'"],
        },
        Invalid {
            what: "Template with a duplicate parameter",
            object: template(json!({"parameters": [{"name": "P"}, {"name": "P"}]})),
            expect: &["parameters[1]", "Duplicate value"],
        },
        Invalid {
            what: "Template object that is not an object",
            object: template(json!({"objects": ["just a string"]})),
            expect: &["objects[0]", "must be of type object"],
        },
        // TemplateInstance
        Invalid {
            what: "TemplateInstance with no template",
            object: ti(json!({})),
            expect: &["spec", "give exactly one of template (inline) or templateRef"],
        },
        Invalid {
            what: "TemplateInstance with both an inline template and a reference",
            object: ti(json!({"template": {"objects": []}, "templateRef": {"name": "t"}})),
            expect: &["spec", "give exactly one of template (inline) or templateRef"],
        },
        Invalid {
            what: "TemplateInstance with an empty template name",
            object: ti(json!({"templateRef": {"name": ""}})),
            expect: &["spec.templateRef.name", "should be at least 1 chars long"],
        },
        // Project
        Invalid {
            what: "Project named kube-*",
            object: project("kube-team"),
            expect: &["are reserved"],
        },
        Invalid {
            what: "Project named default",
            object: project("default"),
            expect: &["are reserved"],
        },
        Invalid {
            what: "Project named like a subdomain",
            object: project("team.a"),
            expect: &["must be a DNS label"],
        },
        // ProjectRequest
        Invalid {
            what: "ProjectRequest named openshift-*",
            object: project_request("openshift-x", json!({})),
            expect: &["are reserved"],
        },
        Invalid {
            what: "ProjectRequest named slipway-*",
            object: project_request("slipway-ops", json!({})),
            expect: &["are reserved"],
        },
        Invalid {
            what: "ProjectRequest with an overlong display name",
            object: project_request("team-b", json!({"displayName": "x".repeat(300)})),
            expect: &["displayName", "may not be more than 256 bytes"],
        },
    ]
}

#[tokio::test]
async fn invalid_objects_are_rejected_with_a_message_that_names_the_field() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "invalid").await;
    let cases = invalid_objects();
    let mut per_kind = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for case in &cases {
        *per_kind
            .entry(case.object["kind"].as_str().unwrap().to_string())
            .or_default() += 1;
        match dry_run_create(&client, &ns.name, &case.object).await {
            Ok(()) => failures.push(format!("{}: accepted", case.what)),
            Err(message) => {
                for needle in case.expect {
                    if !message.contains(needle) {
                        failures.push(format!("{}: message lacks {needle:?}: {message}", case.what));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for crd in slipway_crds::crdgen::all() {
        let n = per_kind.get(&crd.spec.names.kind).copied().unwrap_or(0);
        assert!(
            n >= 3,
            "{} has {n} invalid cases; at least three per kind",
            crd.spec.names.kind
        );
    }
    ns.delete().await;
}

#[tokio::test]
async fn a_builds_spec_cannot_change_and_a_template_instance_cannot_either() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "immutable").await;
    let builds = dynamic_api(&client, "Build", &ns.name);
    let created = builds
        .create(
            &PostParams::default(),
            &serde_json::from_value(build(json!({"strategy": source_strategy()}))).unwrap(),
        )
        .await
        .expect("a valid build is created");
    let patch = json!({"spec": {"completionDeadlineSeconds": 60}});
    let err = builds
        .patch("bad-1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("changing a build's spec is refused");
    assert!(
        err.to_string()
            .contains("a Build's spec cannot change after creation"),
        "{err}"
    );
    // The fetched revision is recorded once, with nothing else changed...
    let revision = json!({"type": "Git", "git": {"commit": "abc123", "message": "first"}});
    let both = json!({"spec": {"revision": revision, "completionDeadlineSeconds": 60}});
    builds
        .patch("bad-1", &PatchParams::default(), &Patch::Merge(&both))
        .await
        .expect_err("recording a revision cannot carry other changes");
    let strategy =
        json!({"spec": {"revision": revision, "strategy": {"type": "Docker", "dockerStrategy": {}}}});
    builds
        .patch("bad-1", &PatchParams::default(), &Patch::Merge(&strategy))
        .await
        .expect_err("recording a revision cannot change the strategy");
    let recorded = builds
        .patch(
            "bad-1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"revision": revision}})),
        )
        .await
        .expect("the fetched revision is recorded");
    assert_eq!(recorded.data["spec"]["revision"]["git"]["commit"], "abc123");
    // ...and never changed after.
    let again = json!({"spec": {"revision": {"type": "Git", "git": {"commit": "def456"}}}});
    builds
        .patch("bad-1", &PatchParams::default(), &Patch::Merge(&again))
        .await
        .expect_err("a recorded revision cannot change");
    // Status may change (through the status subresource).
    let status = json!({"status": {"phase": "Running"}});
    let updated = builds
        .patch_status("bad-1", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(updated.data["status"]["phase"], "Running");
    assert_eq!(updated.metadata.uid, created.metadata.uid);

    let tis = dynamic_api(&client, "TemplateInstance", &ns.name);
    tis.create(
        &PostParams::default(),
        &serde_json::from_value(ti(json!({"templateRef": {"name": "t"}}))).unwrap(),
    )
    .await
    .unwrap();
    let err = tis
        .patch(
            "bad",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"templateRef": {"name": "other"}}})),
        )
        .await
        .expect_err("changing a TemplateInstance's spec is refused");
    assert!(
        err.to_string()
            .contains("a TemplateInstance's spec cannot change"),
        "{err}"
    );
    ns.delete().await;
}
