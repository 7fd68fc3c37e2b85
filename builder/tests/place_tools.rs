//! `slipway-builder place-tools DIR` with the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::run_builder;

#[test]
fn places_a_runnable_copy() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("tools/bin");
    let (code, stdout, stderr) = run_builder(&["place-tools".into(), dir.display().to_string()], work.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let placed = dir.join("slipway-builder");
    let meta = std::fs::metadata(&placed).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    let original = std::fs::read(env!("CARGO_BIN_EXE_slipway-builder")).unwrap();
    assert_eq!(std::fs::read(&placed).unwrap(), original);
    // Nothing else (no temporary file) is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // The copy runs.
    let out = std::process::Command::new(&placed)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());

    // Placing again replaces the file.
    let (code, _, _) = run_builder(&["place-tools".into(), dir.display().to_string()], work.path());
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn unwritable_directory_fails_clearly() {
    let work = tempfile::tempdir().unwrap();
    // A directory below a regular file cannot be created, even by root.
    let file = work.path().join("file");
    std::fs::write(&file, "").unwrap();
    let dir = file.join("bin");
    let (code, _, stderr) = run_builder(&["place-tools".into(), dir.display().to_string()], work.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot create directory"), "{stderr}");

    // A read-only directory (only meaningful when not running as root).
    let ro = work.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let writable_anyway = std::fs::write(ro.join("probe"), "").is_ok();
    if !writable_anyway {
        let (code, _, stderr) = run_builder(&["place-tools".into(), ro.display().to_string()], work.path());
        assert_ne!(code, 0);
        assert!(stderr.contains("cannot write"), "{stderr}");
        assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0);
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}
