use super::*;

#[test]
fn elapsed_reads_like_oc() {
    assert_eq!(elapsed(0), "0s");
    assert_eq!(elapsed(72_000_000_000), "1m12s");
    assert_eq!(elapsed(3_723_000_000_000), "1h2m3s");
}

#[test]
fn strip_tag_keeps_the_port() {
    assert_eq!(strip_tag("127.0.0.1:5000/ns/app:latest"), "127.0.0.1:5000/ns/app");
    assert_eq!(strip_tag("127.0.0.1:5000/ns/app"), "127.0.0.1:5000/ns/app");
    assert_eq!(strip_tag("reg/ns/app@sha256:1"), "reg/ns/app");
}

#[test]
fn status_patch_is_quiet_and_never_sends_cancelled() {
    let mut build = Build::new("app-1", Default::default());
    build.metadata.resource_version = Some("7".into());
    let before = BuildStatus {
        cancelled: true,
        ..Default::default()
    };
    assert!(status_patch(&build, &before, before.clone()).is_none());
    let next = BuildStatus {
        phase: BuildPhase::Cancelled,
        reason: Some("CancelledBuild".into()),
        ..before.clone()
    };
    let patch = status_patch(&build, &before, next).unwrap();
    assert_eq!(patch["metadata"]["resourceVersion"], "7");
    assert_eq!(patch["status"]["phase"], "Cancelled");
    assert!(patch["status"].get("cancelled").is_none());
    assert!(patch["status"]["message"].is_null());
    let conditions = patch["status"]["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0]["type"], "Cancelled");
    assert_eq!(conditions[0]["status"], "True");
}
