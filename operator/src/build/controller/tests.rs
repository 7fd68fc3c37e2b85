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

#[test]
fn a_pull_spec_in_the_integrated_registry_names_its_streams_namespace() {
    use slipway_crds::common::{ImageReference, ImageReferenceKind};
    let reference = |kind: ImageReferenceKind, name: &str, namespace: Option<&str>| ImageReference {
        kind,
        name: name.into(),
        namespace: namespace.map(String::from),
    };
    let registry = "10.250.0.1:15000";
    let docker = |name: &str| reference(ImageReferenceKind::DockerImage, name, None);
    for (spec, expected) in [
        ("10.250.0.1:15000/victim/web:latest", Some("victim")),
        ("10.250.0.1:15000/victim/web@sha256:abc", Some("victim")),
        ("10.250.0.1:15000/own/web", Some("own")),
        // Not the integrated registry, or not a stream's repository in it.
        ("10.250.0.1:15001/victim/web:latest", None),
        ("10.250.0.1:150000/victim/web", None),
        ("registry.example.com/victim/web:1", None),
        ("10.250.0.1:15000/web:latest", None),
        ("10.250.0.1:15000//web", None),
        ("10.250.0.1", None),
    ] {
        assert_eq!(
            stream_namespace(&docker(spec), "own", registry),
            expected,
            "{spec}"
        );
    }
    // ImageStream references: their namespace, else the build's own.
    let tag = reference(ImageReferenceKind::ImageStreamTag, "web:latest", Some("victim"));
    assert_eq!(stream_namespace(&tag, "own", registry), Some("victim"));
    let local = reference(ImageReferenceKind::ImageStreamTag, "web:latest", None);
    assert_eq!(stream_namespace(&local, "own", registry), Some("own"));
    // Without an integrated registry, a pull spec names no stream.
    assert_eq!(
        stream_namespace(&docker("10.250.0.1:15000/victim/web"), "own", ""),
        None
    );
}
