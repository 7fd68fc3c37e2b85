//! Field compatibility with real OpenShift input: every object of the 62 templates in
//! `../shared/testdata/openshift-templates/`, processed with plausible parameter values and
//! translated to Slipway and Kubernetes kinds, passes a server-side dry run in the dev cluster.
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use slipway_crds::process::{ProcessOptions, parse_template, plausible_value, process};
use slipway_testkit::*;

/// Every template processed: (file, objects).
fn processed_corpus() -> Vec<(String, Vec<serde_json::Value>)> {
    let files: Vec<PathBuf> = shared_corpus(OPENSHIFT_TEMPLATES);
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let document = parse_template(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Plausible values for the parameters that have neither a value nor a generator.
            let values: BTreeMap<String, String> = document
                .fields
                .parameters
                .iter()
                .filter(|p| p.value.as_deref().unwrap_or_default().is_empty() && p.generate.is_none())
                .map(|p| (p.name.clone(), plausible_value(&p.name)))
                .collect();
            let processed = process(&document.fields, &values, &ProcessOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, processed.objects)
        })
        .collect()
}

#[tokio::test]
async fn every_buildconfig_deploymentconfig_and_imagestream_of_the_corpus_passes_a_dry_run() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "corpus").await;
    let corpus = processed_corpus();
    assert_eq!(corpus.len(), 62, "the corpus has 62 templates");

    let mut checked = BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    let mut other = BTreeMap::<String, (usize, Vec<String>)>::new();
    let mut unserved = BTreeSet::new();
    for (file, objects) in &corpus {
        for object in objects {
            let mut object = object.clone();
            // The test's namespace stands in for whatever namespace a template names.
            if let Some(meta) = object["metadata"].as_object_mut() {
                meta.remove("namespace");
            }
            let kind = object["kind"].as_str().unwrap_or_default().to_string();
            let api_version = object["apiVersion"].as_str().unwrap_or_default().to_string();
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let result = dry_run_create(&client, &ns.name, &object).await;
            if ["BuildConfig", "DeploymentConfig", "ImageStream"].contains(&kind.as_str()) {
                assert_eq!(
                    api_version, "slipway.dev/v1alpha1",
                    "{file}: {kind}/{name} was translated"
                );
                *checked.entry(kind.clone()).or_default() += 1;
                if let Err(message) = result {
                    failures.push(format!("{file}: {kind}/{name}: {message}"));
                }
            } else {
                let entry = other.entry(format!("{api_version} {kind}")).or_default();
                match result {
                    Ok(()) => entry.0 += 1,
                    Err(message) if message.starts_with("discovery of") => {
                        unserved.insert(format!("{api_version} {kind}"));
                    }
                    Err(message) => entry.1.push(format!("{file}: {kind}/{name}: {message}")),
                }
            }
        }
    }
    // The whole corpus, for the README and the issue note.
    eprintln!("dry-run of the corpus after translation:");
    for (kind, n) in &checked {
        eprintln!("  slipway.dev/v1alpha1 {kind}: {n} checked");
    }
    for (kind, (passed, failed)) in &other {
        eprintln!("  {kind}: {passed} passed, {} failed", failed.len());
        for f in failed {
            eprintln!("    {f}");
        }
    }
    for kind in &unserved {
        eprintln!("  {kind}: not served by this cluster (no CRD), not checked");
    }
    assert!(
        failures.is_empty(),
        "{} rejected:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked.get("BuildConfig"), Some(&36));
    assert_eq!(checked.get("DeploymentConfig"), Some(&53));
    assert_eq!(checked.get("ImageStream"), Some(&38));
    // Every other object of a kind the cluster serves passes as well: the one defect of the corpus
    // itself (dancer-mysql-example's database Deployment, whose selector is a DeploymentConfig's,
    // which no Kubernetes accepts as written) is translated to matchLabels.
    let other_failures: Vec<&String> = other.values().flat_map(|(_, f)| f).collect();
    assert!(other_failures.is_empty(), "{other_failures:#?}");
    assert_eq!(
        other.get("apps/v1 Deployment").map(|(passed, _)| *passed),
        Some(25)
    );
    ns.delete().await;
}
