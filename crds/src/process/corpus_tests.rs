//! Every template of OpenShift's library (a copy in the shared test data) parses and processes.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::substitute::references_any;
use super::*;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/openshift-templates"
);

/// Values for the required parameters that have neither a default nor a generator.
fn required_values(fields: &TemplateFields) -> BTreeMap<String, String> {
    fields
        .parameters
        .iter()
        .filter(|p| p.required && p.value.as_deref().unwrap_or_default().is_empty() && p.generate.is_none())
        .map(|p| (p.name.clone(), plausible_value(&p.name)))
        .collect()
}

fn strings<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => map.iter().for_each(|(key, item)| {
            out.push(key);
            strings(item, out);
        }),
        _ => {}
    }
}

#[test]
fn every_corpus_template_processes() {
    let entries = std::fs::read_dir(CORPUS)
        .unwrap_or_else(|e| panic!("the OpenShift template corpus {CORPUS} is missing: {e}"));
    let mut paths: Vec<_> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert_eq!(
        paths.len(),
        62,
        "the corpus {CORPUS} should hold 62 JSON templates"
    );

    let mut counts = BTreeMap::<String, usize>::new();
    let mut notes = BTreeMap::<String, usize>::new();
    for path in &paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let document = parse_template(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let values = required_values(&document.fields);
        let result = process(&document.fields, &values, &ProcessOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check(Path::new(&name), &document, &result, &mut counts);
        for translation in &result.translations {
            for note in &translation.notes {
                *notes
                    .entry(note.split(':').next().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
    }
    println!(
        "processed {} corpus templates; objects out: {counts:?}",
        paths.len()
    );
    println!("translation notes, by kind: {notes:?}");
}

fn check(
    name: &Path,
    document: &TemplateDocument,
    result: &ProcessedTemplate,
    counts: &mut BTreeMap<String, usize>,
) {
    let name = name.display();
    assert_eq!(result.objects.len(), document.fields.objects.len(), "{name}");
    let declared: Vec<&str> = document
        .fields
        .parameters
        .iter()
        .map(|p| p.name.as_str())
        .collect();

    let mut texts = Vec::new();
    for object in &result.objects {
        strings(object, &mut texts);
    }
    texts.extend(result.message.as_deref());
    for text in texts {
        assert!(
            !references_any(text, &declared),
            "{name}: a declared parameter is left in {text:?}"
        );
    }

    for (original, object) in document.fields.objects.iter().zip(&result.objects) {
        let original_kind = original.0["kind"].as_str().unwrap_or_default();
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        match original_kind {
            "BuildConfig" | "DeploymentConfig" | "ImageStream" => {
                assert_eq!(api_version, "slipway.dev/v1alpha1", "{name}: {original_kind}");
                assert_eq!(kind, original_kind, "{name}");
            }
            "Route" => {
                assert_eq!((api_version, kind), ("networking.k8s.io/v1", "Ingress"), "{name}");
                let backend = &object["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
                assert!(
                    backend["name"].as_str().is_some_and(|s| !s.is_empty()),
                    "{name}: {object}"
                );
                assert!(backend["port"].is_object(), "{name}: {object}");
            }
            "RoleBinding" => {
                assert_eq!(
                    (api_version, kind),
                    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
                    "{name}"
                );
            }
            _ => {}
        }
        if let Some(labels) = &document.fields.labels {
            for key in labels.keys() {
                assert!(
                    object["metadata"]["labels"].get(key).is_some(),
                    "{name}: label {key} on {kind}"
                );
            }
        }
        *counts.entry(format!("{api_version} {kind}")).or_default() += 1;
    }
}
