//! `make bench`: wall time of `slip process` (the release binary, start to exit) on the largest
//! template of the OpenShift corpus, with its required parameters given.
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

use std::process::Command;
use std::time::{Duration, Instant};

use slipway_crds::process::{parse_template, plausible_value};

fn main() {
    // A missing corpus fails the bench (naming the path): a bench that measured nothing must not
    // look like one that ran.
    let largest = slipway_testkit::shared_corpus(slipway_testkit::OPENSHIFT_TEMPLATES)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a corpus of 62 templates has a largest");
    let text = std::fs::read_to_string(&largest).expect("readable corpus template");
    let document = parse_template(&text).expect("a template");
    let mut args = vec!["process".to_string(), "-f".into(), largest.display().to_string()];
    for p in &document.fields.parameters {
        if p.value.as_deref().unwrap_or_default().is_empty() && p.generate.is_none() {
            args.push("-p".into());
            args.push(format!("{}={}", p.name, plausible_value(&p.name)));
        }
    }
    let run = || {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_slip"))
            .args(&args)
            .output()
            .expect("slip runs");
        let elapsed = start.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        elapsed
    };
    run();
    let mut samples: Vec<Duration> = (0..30).map(|_| run()).collect();
    samples.sort();
    let name = largest.file_name().unwrap_or_default().to_string_lossy();
    let size = std::fs::metadata(&largest).map(|m| m.len()).unwrap_or(0);
    println!(
        "slip process {name} ({} KiB, {} objects): p50 {:.1?}, max {:.1?} over {} runs",
        size / 1024,
        document.fields.objects.len(),
        samples[samples.len() / 2],
        samples[samples.len() - 1],
        samples.len()
    );
}
