//! The CRDs committed in charts/slipway/crds/ are exactly what crdgen produces from the code.
//! When this fails, run `make crds` and commit the result.
#![allow(clippy::unwrap_used)] // tests and benchmarks may panic on broken fixtures

#[test]
fn committed_crds_match_the_code() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/slipway/crds");
    let rendered = slipway_crds::crdgen::rendered().expect("CRDs render as YAML");
    let mut expected: Vec<String> = rendered.iter().map(|(name, _)| name.clone()).collect();
    expected.sort();
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .expect("charts/slipway/crds exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    committed.sort();
    assert_eq!(
        committed, expected,
        "the CRD files differ from the kinds: run `make crds`"
    );
    for (name, text) in rendered {
        let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(
            on_disk == text,
            "charts/slipway/crds/{name} is out of date: run `make crds` and commit it"
        );
    }
}
