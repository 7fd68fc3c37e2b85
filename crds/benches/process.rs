//! `make bench`: template processing speed (target from DESIGN.md: a 100-object template with 20
//! generated parameters in ≤ 5 ms). A plain harness: many runs, then the median and the 99th
//! percentile, printed in a form the README and the issue notes quote.
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use slipway_crds::process::{ProcessOptions, process};
use slipway_crds::template::{Parameter, TemplateFields, TemplateObject};

/// A template of `objects` objects (Deployments, Services, Secrets in turn) and `generated`
/// generated parameters, each referenced from every object.
fn synthetic_template(objects: usize, generated: usize) -> TemplateFields {
    let mut parameters: Vec<Parameter> = (0..generated)
        .map(|i| Parameter {
            name: format!("SECRET_{i}"),
            generate: Some("expression".into()),
            from: Some("[a-zA-Z0-9]{16}".into()),
            ..Default::default()
        })
        .collect();
    parameters.push(Parameter {
        name: "NAME".into(),
        value: Some("app".into()),
        ..Default::default()
    });
    parameters.push(Parameter {
        name: "REPLICAS".into(),
        value: Some("2".into()),
        ..Default::default()
    });
    let env: Vec<_> = (0..generated)
        .map(|i| json!({"name": format!("S{i}"), "value": format!("${{SECRET_{i}}}")}))
        .collect();
    let objects = (0..objects)
        .map(|i| {
            TemplateObject(match i % 3 {
                0 => json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": format!("${{NAME}}-{i}"), "namespace": "hard-coded"},
                    "spec": {
                        "replicas": "${{REPLICAS}}",
                        "selector": {"matchLabels": {"app": format!("${{NAME}}-{i}")}},
                        "template": {
                            "metadata": {"labels": {"app": format!("${{NAME}}-{i}")}},
                            "spec": {"containers": [{"name": "web", "image": "registry/app:1", "env": env}]}
                        }
                    }
                }),
                1 => json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("${{NAME}}-{i}")},
                    "spec": {"selector": {"app": format!("${{NAME}}-{i}")}, "ports": [{"port": 8080}]}
                }),
                _ => json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": format!("${{NAME}}-{i}")},
                    "stringData": (0..generated).map(|j| (format!("k{j}"), json!(format!("${{SECRET_{j}}}")))).collect::<serde_json::Map<_, _>>()
                }),
            })
        })
        .collect();
    TemplateFields {
        message: Some("${NAME} is ready".into()),
        objects,
        parameters,
        labels: Some(BTreeMap::from([("app".into(), "${NAME}".into())])),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(what: &str, mut samples: Vec<Duration>, target: Option<Duration>) {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    let p99 = percentile(&samples, 0.99);
    let verdict = match target {
        Some(t) if p99 <= t => format!("  (target ≤ {t:?}: met)"),
        Some(t) => format!("  (target ≤ {t:?}: MISSED)"),
        None => String::new(),
    };
    println!(
        "{what}: p50 {p50:.2?}, p99 {p99:.2?} over {} runs{verdict}",
        samples.len()
    );
}

fn main() {
    let template = synthetic_template(100, 20);
    let options = ProcessOptions::default();
    let values = BTreeMap::new();
    // Warm up, then measure.
    for _ in 0..20 {
        process(&template, &values, &options).expect("the synthetic template processes");
    }
    let samples: Vec<Duration> = (0..500)
        .map(|_| {
            let start = Instant::now();
            let processed = process(&template, &values, &options).expect("processes");
            let elapsed = start.elapsed();
            assert_eq!(processed.objects.len(), 100);
            elapsed
        })
        .collect();
    report(
        "process: 100 objects, 20 generated parameters",
        samples,
        Some(Duration::from_millis(5)),
    );
}
