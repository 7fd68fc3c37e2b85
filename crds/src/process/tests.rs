//! Tests of `process` as a whole.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::*;
use crate::template::TemplateObject;

const SHOP: &str = r#"
apiVersion: template.openshift.io/v1
kind: Template
metadata:
  name: shop
message: "Shop ${NAME} is ready; the admin password is ${ADMIN_PASSWORD}."
labels:
  app: ${NAME}
  template: shop
parameters:
- name: NAME
  value: shop
  required: true
- name: REPLICAS
  value: "2"
- name: ADMIN_PASSWORD
  generate: expression
  from: "[a-zA-Z0-9]{16}"
- name: NAMESPACE
  value: openshift
- name: HOST
objects:
- apiVersion: v1
  kind: Service
  metadata:
    name: ${NAME}
    namespace: written-by-the-author
  spec:
    ports:
    - name: web
      port: 8080
      targetPort: 8080
    selector:
      name: ${NAME}
- apiVersion: apps.openshift.io/v1
  kind: DeploymentConfig
  metadata:
    name: ${NAME}
    labels:
      app: own-label
      tier: web
  spec:
    replicas: ${{REPLICAS}}
    selector:
      name: ${NAME}
    template:
      metadata:
        labels:
          name: ${NAME}
      spec:
        containers:
        - name: web
          image: " "
          env:
          - name: ADMIN_PASSWORD
            value: ${ADMIN_PASSWORD}
          - name: UNDECLARED
            value: ${NOPE}
    triggers:
    - type: ImageChange
      imageChangeParams:
        from:
          kind: ImageStreamTag
          name: nodejs:latest
          namespace: ${NAMESPACE}
- apiVersion: route.openshift.io/v1
  kind: Route
  metadata:
    name: ${NAME}
  spec:
    host: ${HOST}
    to:
      kind: Service
      name: ${NAME}
- apiVersion: v1
  kind: Secret
  metadata:
    name: ${NAME}-admin
  stringData:
    password: ${ADMIN_PASSWORD}
"#;

fn shop() -> TemplateFields {
    parse_template(SHOP).unwrap().fields
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn fields_with_objects(objects: Vec<Value>, parameters: &[(&str, &str)]) -> TemplateFields {
    TemplateFields {
        objects: objects.into_iter().map(TemplateObject).collect(),
        parameters: parameters
            .iter()
            .map(|(name, value)| Parameter {
                name: (*name).to_owned(),
                value: Some((*value).to_owned()),
                ..Parameter::default()
            })
            .collect(),
        ..TemplateFields::default()
    }
}

fn process_error(fields: &TemplateFields) -> String {
    process(fields, &BTreeMap::new(), &ProcessOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn processes_a_whole_template() {
    let result = process(&shop(), &values(&[("NAME", "store")]), &ProcessOptions::default()).unwrap();
    let password = result.parameters[2].value.clone().unwrap();
    assert_eq!(password.len(), 16);
    assert_eq!(
        result
            .parameters
            .iter()
            .map(|p| p.value.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["store", "2", password.as_str(), "openshift", ""]
    );
    assert_eq!(
        result.message.as_deref().unwrap(),
        format!("Shop store is ready; the admin password is {password}.")
    );
    assert_eq!(result.objects.len(), 4);

    let [service, dc, ingress, secret] = &result.objects[..] else {
        panic!("four objects")
    };
    assert_eq!(
        service["metadata"],
        json!({"name": "store", "labels": {"app": "store", "template": "shop"}}),
        "hard-coded namespace dropped, labels added"
    );
    assert_eq!(dc["apiVersion"], "slipway.dev/v1alpha1");
    assert_eq!(dc["spec"]["replicas"], json!(2));
    assert_eq!(
        dc["metadata"]["labels"],
        json!({"app": "store", "template": "shop", "tier": "web"})
    );
    assert_eq!(
        dc["spec"]["selector"],
        json!({"name": "store"}),
        "selectors are never labelled"
    );
    assert_eq!(
        dc["spec"]["template"]["metadata"]["labels"],
        json!({"name": "store", "app": "store", "template": "shop"})
    );
    let env = &dc["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env[0]["value"],
        json!(password),
        "one generated value, used everywhere"
    );
    assert_eq!(env[1]["value"], "${NOPE}");
    assert_eq!(
        dc["spec"]["triggers"][0]["imageChangeParams"]["from"]["namespace"],
        "openshift"
    );
    assert_eq!(secret["stringData"]["password"], json!(password));

    assert_eq!(
        ingress,
        &json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "store", "labels": {"app": "store", "template": "shop"}},
            "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "store", "port": {"number": 8080}}}}]}}]},
        }),
        "the port comes from the Service in the template"
    );

    let translations: Vec<String> = result.translations.iter().map(ToString::to_string).collect();
    assert_eq!(
        translations,
        [
            "DeploymentConfig/store: apps.openshift.io/v1 DeploymentConfig -> slipway.dev/v1alpha1 DeploymentConfig",
            "Route/store: route.openshift.io/v1 Route -> networking.k8s.io/v1 Ingress",
        ]
    );
    assert_eq!(result.to_list()["items"].as_array().unwrap().len(), 4);
    assert_eq!(result.to_list()["kind"], "List");
}

#[test]
fn generated_values_differ_between_runs() {
    let first = process(&shop(), &BTreeMap::new(), &ProcessOptions::default()).unwrap();
    let second = process(&shop(), &BTreeMap::new(), &ProcessOptions::default()).unwrap();
    assert_ne!(first.parameters[2].value, second.parameters[2].value);
}

#[test]
fn without_translation_objects_keep_their_kinds() {
    let options = ProcessOptions {
        translate: false,
        ..ProcessOptions::default()
    };
    let result = process(&shop(), &BTreeMap::new(), &options).unwrap();
    assert_eq!(result.objects[1]["apiVersion"], "apps.openshift.io/v1");
    assert_eq!(result.objects[2]["kind"], "Route");
    assert!(result.translations.is_empty());
}

#[test]
fn extra_labels_win_over_template_labels() {
    let options = ProcessOptions {
        extra_labels: BTreeMap::from([
            ("template".to_owned(), "mine".to_owned()),
            ("team".to_owned(), "a".to_owned()),
        ]),
        ..ProcessOptions::default()
    };
    let result = process(&shop(), &BTreeMap::new(), &options).unwrap();
    assert_eq!(
        result.objects[3]["metadata"]["labels"],
        json!({"app": "shop", "template": "mine", "team": "a"})
    );
}

#[test]
fn namespaces() {
    let fields = fields_with_objects(
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "fixed"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "${NS}"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "${NS}-x"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d", "namespace": "${EMPTY}"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e", "namespace": null}}),
            // A whole `${{NAME}}` is no `${NAME}` reference: OpenShift drops it before substituting.
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "namespace": "${{NS}}"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "g", "namespace": "${UNDECLARED}"}}),
        ],
        &[("NS", "team"), ("EMPTY", "")],
    );
    let result = process(&fields, &BTreeMap::new(), &ProcessOptions::default()).unwrap();
    let namespaces: Vec<&Value> = result
        .objects
        .iter()
        .map(|o| &o["metadata"]["namespace"])
        .collect();
    assert_eq!(
        namespaces,
        [
            &Value::Null,
            &json!("team"),
            &json!("team-x"),
            &Value::Null,
            &Value::Null,
            &Value::Null,
            &json!("${UNDECLARED}")
        ]
    );
    assert!(result.objects[0]["metadata"].get("namespace").is_none());
    assert!(result.objects[5]["metadata"].get("namespace").is_none());
}

#[test]
fn non_string_substitution_in_objects() {
    let fields = fields_with_objects(
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"port": "${{PORT}}", "on": "${{ON}}", "obj": "${{OBJ}}", "text": "${{TEXT}}", "inline": "x-${{PORT}}"}}),
        ],
        &[
            ("PORT", "8080"),
            ("ON", "true"),
            ("OBJ", r#"{"a": [1]}"#),
            ("TEXT", "plain words"),
        ],
    );
    let result = process(&fields, &BTreeMap::new(), &ProcessOptions::default()).unwrap();
    assert_eq!(
        result.objects[0]["data"],
        json!({"port": 8080, "on": true, "obj": {"a": [1]}, "text": "plain words", "inline": "x-8080"})
    );
}

#[test]
fn object_errors_name_the_object() {
    let ok = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}});
    let fields = fields_with_objects(vec![ok.clone(), json!("just a string")], &[]);
    assert_eq!(
        process_error(&fields),
        "objects[1]: must be a mapping, found a string"
    );

    let fields = fields_with_objects(
        vec![ok.clone(), json!({"apiVersion": "v1", "metadata": {"name": "x"}})],
        &[],
    );
    assert_eq!(
        process_error(&fields),
        "objects[1] (object/x): kind is missing or not a string"
    );

    let fields = fields_with_objects(
        vec![json!({"kind": "Secret", "metadata": {"name": "${N}"}})],
        &[("N", "s")],
    );
    assert_eq!(
        process_error(&fields),
        "objects[0] (Secret/s): apiVersion is missing or not a string"
    );

    let fields = fields_with_objects(
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"${K}": "1", "k": "2"}}),
        ],
        &[("K", "k")],
    );
    assert_eq!(
        process_error(&fields),
        "objects[0] (ConfigMap/c): two keys of one mapping become \"k\" after substitution"
    );

    let mut fields = fields_with_objects(
        vec![
            ok,
            json!({"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "r"}, "spec": {}}),
        ],
        &[],
    );
    assert_eq!(
        process_error(&fields),
        "cannot translate objects[1] (Route/r): spec.to, the Service to route to, is missing"
    );
    fields.labels = Some(BTreeMap::from([("a".to_owned(), "b".to_owned())]));
    fields.objects[0].0["metadata"]["labels"] = json!(["not", "a", "map"]);
    assert_eq!(
        process_error(&fields),
        "objects[0] (ConfigMap/fine): metadata.labels must be a mapping"
    );
}

#[test]
fn parameter_errors_come_before_any_output() {
    let mut fields = shop();
    fields.parameters.push(Parameter {
        name: "TOKEN".to_owned(),
        required: true,
        ..Parameter::default()
    });
    assert_eq!(
        process_error(&fields),
        r#"required parameter "TOKEN" has no value"#
    );
    assert_eq!(
        process(&shop(), &values(&[("NAMEE", "x")]), &ProcessOptions::default())
            .unwrap_err()
            .to_string(),
        r#"unknown parameter "NAMEE": the template does not declare it"#
    );
    let options = ProcessOptions {
        ignore_unknown_parameters: true,
        ..ProcessOptions::default()
    };
    assert!(process(&shop(), &values(&[("NAMEE", "x")]), &options).is_ok());
}

#[test]
fn empty_templates_process_to_nothing() {
    let result = process(
        &TemplateFields::default(),
        &BTreeMap::new(),
        &ProcessOptions::default(),
    )
    .unwrap();
    assert_eq!(
        result,
        ProcessedTemplate {
            objects: vec![],
            parameters: vec![],
            message: None,
            translations: vec![]
        }
    );
}

#[test]
fn default_options() {
    let options = ProcessOptions::default();
    assert!(options.translate);
    assert!(!options.ignore_unknown_parameters);
    assert!(options.extra_labels.is_empty());
}

#[test]
fn plausible_values() {
    for (name, value) in [
        ("MEMORY_LIMIT", "512Mi"),
        ("MEMORY_POSTGRESQL_LIMIT", "512Mi"),
        ("VOLUME_CAPACITY", "1Gi"),
        ("DB_CAPACITY", "1Gi"),
        ("REPLICAS", "1"),
        ("NUMBER_OF_REPLICAS", "1"),
        ("NAMESPACE", "openshift"),
        ("IMAGE_STREAM_NAMESPACE", "openshift"),
        ("PORT", "8080"),
        ("SERVICE_PORT", "8080"),
        ("IMPORT_URL", "example"),
        ("APPLICATION_USER", "example"),
    ] {
        assert_eq!(plausible_value(name), value, "{name}");
    }
}

/// A synthetic template: 100 objects referencing 20 generated parameters.
fn synthetic_template() -> TemplateFields {
    let parameters = (0..20)
        .map(|i| Parameter {
            name: format!("SECRET_{i}"),
            generate: Some("expression".to_owned()),
            from: Some("[a-zA-Z0-9]{16}".to_owned()),
            ..Parameter::default()
        })
        .collect();
    let objects = (0..100)
        .map(|i| {
            let env: Vec<Value> =
                (0..20).map(|p| json!({"name": format!("S{p}"), "value": format!("${{SECRET_{p}}}")})).collect();
            TemplateObject(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("app-{i}-${{SECRET_0}}"), "namespace": "x", "labels": {"app": "a"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}},
                    "template": {"metadata": {"labels": {"app": "a"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox", "env": env}]}}},
            }))
        })
        .collect();
    TemplateFields {
        message: None,
        objects,
        parameters,
        labels: Some(BTreeMap::from([("template".to_owned(), "synthetic".to_owned())])),
    }
}

#[test]
fn synthetic_template_processes() {
    let result = process(
        &synthetic_template(),
        &BTreeMap::new(),
        &ProcessOptions::default(),
    )
    .unwrap();
    assert_eq!(result.objects.len(), 100);
    assert!(!serde_json::to_string(&result.objects).unwrap().contains("${"));
}

/// Not a test: `cargo test -p slipway-crds --release --lib process::tests::measure -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn measure_processing_time() {
    let fields = synthetic_template();
    let options = ProcessOptions::default();
    let runs = 200;
    for _ in 0..10 {
        process(&fields, &BTreeMap::new(), &options).unwrap();
    }
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(process(&fields, &BTreeMap::new(), &options).unwrap());
    }
    let mean = start.elapsed() / runs;
    println!("processing 100 objects with 20 generated parameters: mean {mean:?} over {runs} runs");
}

/// A template whose substitution would produce about 4 GB: a 4,080-character generated value
/// referenced a million times (an input of 4 MB).
fn gigabytes() -> TemplateFields {
    let references = "${BIG}".repeat(1000);
    let data: serde_json::Map<String, Value> = (0..1000)
        .map(|i| (format!("k{i}"), Value::String(references.clone())))
        .collect();
    let mut fields = fields_with_objects(
        vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": data})],
        &[],
    );
    fields.parameters = vec![crate::template::Parameter {
        name: "BIG".into(),
        generate: Some("expression".into()),
        from: Some("[a-z]{255}".repeat(16)),
        ..Default::default()
    }];
    fields
}

#[test]
fn output_is_bounded_however_often_a_value_is_referenced() {
    let message = process_error(&gigabytes());
    assert_eq!(
        message,
        "processing would produce more than 4194304 bytes (4 MiB) of objects: parameter values are substituted too often or are too long"
    );
    // A given value (not generated) is bounded the same way.
    let mut fields = gigabytes();
    fields.parameters[0].generate = None;
    fields.parameters[0].from = None;
    let big = "x".repeat(1 << 20);
    let error = process(&fields, &values(&[("BIG", &big)]), &ProcessOptions::default()).unwrap_err();
    assert!(matches!(error, ProcessError::OutputTooLarge { .. }), "{error}");
}

#[test]
fn generator_expressions_are_bounded() {
    use super::generator::Expression;
    let long = Expression::parse(&"[a-z]{255}".repeat(17))
        .unwrap_err()
        .to_string();
    assert!(
        long.contains("it generates 4335 characters, more than the limit of 4096"),
        "{long}"
    );
    let huge = Expression::parse(&"a".repeat(2000)).unwrap_err().to_string();
    assert!(
        huge.contains("2000 bytes long, more than the limit of 1024"),
        "{huge}"
    );
    assert!(Expression::parse(&"[a-z]{255}".repeat(16)).is_ok());
}
