//! `slip process` as a user runs it: the real binary, real files and standard input, and a
//! Template stored in the dev cluster.
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use slipway_testkit::*;

fn slip(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slip"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slip runs");
    if let Some(input) = stdin {
        // A process that refuses early may close stdin first; that is its answer, not a test error.
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn example() -> String {
    repo_root()
        .join("examples/templates/hello-openshift.yaml")
        .display()
        .to_string()
}

/// Asserts a failure: non-zero exit, nothing on stdout, and each needle in the error.
fn assert_refused(output: &Output, needles: &[&str]) {
    assert!(
        !output.status.success(),
        "expected a failure; stdout: {}",
        stdout(output)
    );
    assert_eq!(stdout(output), "", "a refused template prints nothing on stdout");
    let err = stderr(output);
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn processes_an_openshift_template_into_a_list_of_translated_objects() {
    let out = slip(
        &[
            "process",
            "-f",
            &example(),
            "-p",
            "GIT_URI=https://git.example.com/hello.git",
            "REPLICAS=3",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).expect("a JSON List");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["apiVersion"], "v1");
    let items = list["items"].as_array().unwrap();
    let kinds: Vec<String> = items
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "slipway.dev/v1alpha1 ImageStream",
            "v1 Secret",
            "slipway.dev/v1alpha1 BuildConfig",
            "slipway.dev/v1alpha1 DeploymentConfig",
            "v1 Service",
            "networking.k8s.io/v1 Ingress"
        ]
    );
    let dc = &items[3];
    assert_eq!(dc["spec"]["replicas"], 3, "${{{{REPLICAS}}}} became a number");
    assert_eq!(dc["metadata"]["labels"]["app.kubernetes.io/part-of"], "hello");
    assert_eq!(
        dc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"],
        "hello"
    );
    let secret = items[1]["stringData"]["WebHookSecretKey"].as_str().unwrap();
    assert_eq!(secret.len(), 40);
    assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
    // Every translation is reported on stderr.
    let err = stderr(&out);
    for kind in ["ImageStream", "BuildConfig", "DeploymentConfig", "Route"] {
        assert!(err.contains(kind), "stderr reports the {kind} translation: {err}");
    }
}

#[test]
fn reads_standard_input_and_prints_yaml_names_and_raw_objects() {
    let text = std::fs::read(example()).unwrap();
    let out = slip(
        &["process", "-f", "-", "-p", "GIT_URI=file:///src", "-o", "name"],
        Some(&text),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "imagestream.slipway.dev/hello\nsecret/hello-webhook\nbuildconfig.slipway.dev/hello\n\
         deploymentconfig.slipway.dev/hello\nservice/hello\ningress.networking.k8s.io/hello\n"
    );
    let out = slip(
        &[
            "process",
            "-f",
            "-",
            "-p",
            "GIT_URI=file:///src",
            "-o",
            "yaml",
            "--raw",
        ],
        Some(&text),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = yaml_documents(&stdout(&out));
    assert_eq!(docs.len(), 6);
    assert_eq!(docs[4]["kind"], "Service");
    let out = slip(
        &["process", "-f", "-", "-p", "GIT_URI=file:///src", "-o", "yaml"],
        Some(&text),
    );
    assert_eq!(yaml_documents(&stdout(&out))[0]["kind"], "List");
}

#[test]
fn no_translate_keeps_openshift_kinds_and_labels_are_added() {
    let out = slip(
        &[
            "process",
            "-f",
            &example(),
            "GIT_URI=x://y",
            "--no-translate",
            "-l",
            "team=a,tier=web",
            "-o",
            "json",
            "--raw",
        ],
        None,
    );
    // x://y is no git URL the API server would take, but processing does not validate objects.
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("\"apiVersion\": \"route.openshift.io/v1\""));
    assert!(text.contains("\"team\": \"a\"") && text.contains("\"tier\": \"web\""));
    assert!(!stderr(&out).contains("translated"));
}

#[test]
fn parameters_prints_the_table_and_nothing_else() {
    let out = slip(&["process", "-f", &example(), "--parameters"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("GENERATOR") && lines[0].ends_with("VALUE"));
    assert_eq!(lines.len(), 8, "a header and seven parameters:\n{text}");
    assert!(
        text.contains("WEBHOOK_SECRET") && text.contains("expression") && text.contains("[a-zA-Z0-9]{40}")
    );
}

#[test]
fn param_files_lose_to_the_command_line_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("params.env");
    std::fs::write(
        &file,
        "# values\nGIT_URI=https://from.file/repo.git\nGREETING=from the file\n",
    )
    .unwrap();
    let out = slip(
        &[
            "process",
            "-f",
            &example(),
            "--param-file",
            file.to_str().unwrap(),
            "-p",
            "GREETING=from the flag",
            "--raw",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("https://from.file/repo.git")
            && text.contains("from the flag")
            && !text.contains("from the file")
    );
    assert!(
        stderr(&out).contains("warning: GREETING from --param-file is overridden"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_input_is_refused_with_a_precise_message_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let example = example();
    // A required parameter left empty names the parameter and the file.
    assert_refused(&slip(&["process", "-f", &example], None), &[&example, "GIT_URI"]);
    // A parameter the template does not declare, unless told to ignore it.
    let out = slip(&["process", "-f", &example, "GIT_URI=u", "NOPE=1"], None);
    assert_refused(&out, &["NOPE"]);
    let out = slip(
        &[
            "process",
            "-f",
            &example,
            "GIT_URI=u",
            "NOPE=1",
            "--ignore-unknown-parameters",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The same parameter twice.
    assert_refused(
        &slip(&["process", "-f", &example, "-p", "GIT_URI=a", "GIT_URI=b"], None),
        &["GIT_URI is given more than once"],
    );
    assert_refused(
        &slip(&["process", "-f", &example, "-p", "novalue"], None),
        &["invalid parameter \"novalue\""],
    );
    // A file that does not exist; no template at all; both a file and a name.
    assert_refused(
        &slip(&["process", "-f", "/nonexistent/t.yaml"], None),
        &["/nonexistent/t.yaml"],
    );
    assert_refused(&slip(&["process"], None), &["no template"]);
    assert_refused(&slip(&["process", "-f", &example, "stored"], None), &["not both"]);
    // A malformed generator expression is quoted.
    let bad_generator = write(
        "gen.yaml",
        "apiVersion: v1\nkind: Template\nmetadata: {name: t}\nobjects: []\nparameters:\n- {name: P, generate: expression, from: '[Z-A]{3}'}\n",
    );
    assert_refused(
        &slip(&["process", "-f", &bad_generator], None),
        &[&bad_generator, "[Z-A]{3}"],
    );
    // An unknown generator names the parameter.
    let unknown = write(
        "unknown.yaml",
        "apiVersion: v1\nkind: Template\nmetadata: {name: t}\nobjects: []\nparameters:\n- {name: SECRET, generate: random, from: 'x'}\n",
    );
    assert_refused(&slip(&["process", "-f", &unknown], None), &["SECRET", "random"]);
    // Not a template; not YAML; binary garbage; empty input.
    let not_template = write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    assert_refused(
        &slip(&["process", "-f", &not_template], None),
        &[&not_template, "ConfigMap"],
    );
    let broken = write("broken.yaml", "kind: Template\nobjects: [\n");
    assert_refused(&slip(&["process", "-f", &broken], None), &[&broken]);
    assert_refused(
        &slip(&["process", "-f", "-"], Some(&[0xff, 0xfe, 0x00, 0x9c, 0x80][..])),
        &["<stdin>"],
    );
    assert_refused(&slip(&["process", "-f", "-"], Some(b"")), &["<stdin>"]);
    // Oversized input is refused without reading it all.
    let huge = vec![b'#'; 9 * 1024 * 1024];
    assert_refused(
        &slip(&["process", "-f", "-"], Some(&huge)),
        &["larger than 8 MiB"],
    );
    // A bad output format is a usage error.
    let out = slip(&["process", "-f", &example, "GIT_URI=u", "-o", "xml"], None);
    assert_refused(&out, &["xml"]);
}

#[tokio::test]
async fn processes_a_template_stored_in_the_cluster() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "slip-process").await;
    let text = std::fs::read_to_string(repo_root().join("examples/manifests/template.yaml")).unwrap();
    let template = yaml_documents(&text).remove(0);
    dynamic_api(&client, "Template", &ns.name)
        .create(&Default::default(), &serde_json::from_value(template).unwrap())
        .await
        .unwrap();
    let namespace = ns.name.clone();
    let out = tokio::task::spawn_blocking(move || {
        slip(
            &["process", "hello", "-n", &namespace, "REPLICAS=4", "-o", "json"],
            None,
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let deployment = &list["items"][1];
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["spec"]["replicas"], json!(4));
    assert_eq!(deployment["metadata"]["labels"]["template"], "hello");
    let namespace = ns.name.clone();
    let out = tokio::task::spawn_blocking(move || slip(&["process", "missing", "-n", &namespace], None))
        .await
        .unwrap();
    assert_refused(&out, &["template missing not found in namespace"]);
    ns.delete().await;
}

#[test]
fn every_corpus_template_processes_with_its_required_parameters_given() {
    for file in shared_corpus(OPENSHIFT_TEMPLATES) {
        let text = std::fs::read_to_string(&file).unwrap();
        let document = slipway_crds::process::parse_template(&text).unwrap();
        let mut args = vec!["process".to_string(), "-f".into(), file.display().to_string()];
        for p in &document.fields.parameters {
            if p.required && p.value.as_deref().unwrap_or_default().is_empty() && p.generate.is_none() {
                args.push("-p".into());
                args.push(format!(
                    "{}={}",
                    p.name,
                    slipway_crds::process::plausible_value(&p.name)
                ));
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = slip(&args, None);
        assert!(out.status.success(), "{}: {}", file.display(), stderr(&out));
        let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            list["items"].as_array().unwrap().len(),
            document.fields.objects.len(),
            "{}",
            file.display()
        );
        let text = stdout(&out);
        for p in &document.fields.parameters {
            let name = &p.name;
            for reference in [format!("${{{name}}}"), format!("${{{{{name}}}}}")] {
                assert!(
                    !text.contains(&reference),
                    "{}: {reference} is left unsubstituted",
                    file.display()
                );
            }
        }
    }
}

/// The apiVersion `oc process` writes for an object of the template: a legacy `v1` OpenShift
/// kind gets its group's, everything else stays.
fn oc_api_version(api_version: &str, kind: &str) -> String {
    let group = match kind {
        "DeploymentConfig" => "apps.openshift.io/v1",
        "BuildConfig" | "Build" => "build.openshift.io/v1",
        "ImageStream" | "ImageStreamTag" => "image.openshift.io/v1",
        "Route" => "route.openshift.io/v1",
        "RoleBinding" | "Role" => "authorization.openshift.io/v1",
        "OAuthClient" => "oauth.openshift.io/v1",
        "Template" => "template.openshift.io/v1",
        _ => return api_version.to_string(),
    };
    if api_version == "v1" {
        group.to_string()
    } else {
        api_version.to_string()
    }
}

/// Both corpus folders: 62 + 60 templates.
fn corpus_files() -> Vec<std::path::PathBuf> {
    let mut files = shared_corpus(OPENSHIFT_TEMPLATES);
    files.extend(shared_corpus(OPENSHIFT_TEMPLATES_EXTRA));
    files.sort();
    files
}

#[test]
fn no_translate_writes_every_corpus_object_with_the_apiversion_oc_writes() {
    let files = corpus_files();
    let mut legacy = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let document = slipway_crds::process::parse_template(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut args = vec![
            "process".to_string(),
            "--no-translate".into(),
            "-f".into(),
            file.display().to_string(),
        ];
        for p in &document.fields.parameters {
            if p.required && p.value.as_deref().unwrap_or_default().is_empty() && p.generate.is_none() {
                args.push("-p".into());
                args.push(format!(
                    "{}={}",
                    p.name,
                    slipway_crds::process::plausible_value(&p.name)
                ));
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = slip(&args, None);
        assert!(out.status.success(), "{}: {}", file.display(), stderr(&out));
        assert_eq!(stderr(&out), "", "{}: nothing is translated", file.display());
        let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), document.fields.objects.len(), "{}", file.display());
        for (item, original) in items.iter().zip(&document.fields.objects) {
            let original = &original.0;
            let (version, kind) = (
                original["apiVersion"].as_str().unwrap(),
                original["kind"].as_str().unwrap(),
            );
            assert_eq!(item["kind"], kind, "{}", file.display());
            assert_eq!(
                item["apiVersion"],
                oc_api_version(version, kind).as_str(),
                "{} {kind}",
                file.display()
            );
            if version == "v1" && item["apiVersion"] != "v1" {
                legacy += 1;
            }
            let namespace = original["metadata"]["namespace"].as_str().unwrap_or_default();
            if !namespace.contains("${") || namespace.starts_with("${{") {
                assert!(
                    item["metadata"].get("namespace").is_none(),
                    "{}: {item}",
                    file.display()
                );
            }
        }
    }
    assert!(
        legacy >= 99 + 84,
        "the legacy DeploymentConfigs and Routes of the corpus at least: {legacy}"
    );
}

#[test]
fn namespaces_are_stripped_as_oc_strips_them() {
    let template = r#"{"apiVersion": "v1", "kind": "Template", "metadata": {"name": "t"},
      "parameters": [{"name": "NS", "value": "team"}],
      "objects": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fixed", "namespace": "somewhere"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "text", "namespace": "${NS}"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "whole", "namespace": "${{NS}}"}},
        {"apiVersion": "v1", "kind": "DeploymentConfig", "metadata": {"name": "dc"}, "spec": {}}
      ]}"#;
    let out = slip(
        &["process", "-f", "-", "--no-translate"],
        Some(template.as_bytes()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let namespaces: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["metadata"]["namespace"])
        .collect();
    assert_eq!(
        namespaces,
        [&Value::Null, &json!("team"), &Value::Null, &Value::Null]
    );
    assert_eq!(list["items"][3]["apiVersion"], "apps.openshift.io/v1");
}
