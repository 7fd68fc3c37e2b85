//! `make bench`: the S2I build of the sample app (slipway-builder in a runc container of the
//! builder image, pushing to the local registry) against `buildah build` of the equivalent
//! Dockerfile (FROM builder, COPY source, RUN assemble, CMD run — what OpenShift 4 runs), then
//! pushed the same way; and an incremental S2I rebuild against a clean one. Wall times, median
//! of a few runs, in one run on the same machine.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const RUNS: usize = 3;
/// The sample assemble "compiles" this many dependencies (CPU work that artifacts let it skip).
const DEPENDENCIES: &str = "DEPENDENCIES=40";
const TOOLS: &str = "/slipway/tools/slipway-builder";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn s2i_once(
    image: &BuilderImage,
    builder_ref: &str,
    output: &str,
    source: &Path,
    incremental: bool,
) -> Duration {
    // The kubelet's part (unpacking the builder image) is not timed; the build pod's is.
    let rootfs = tempfile::tempdir().unwrap();
    image.unpack(rootfs.path());
    let result = tempfile::tempdir().unwrap();
    std::fs::set_permissions(result.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut args: Vec<String> = [
        TOOLS,
        "s2i",
        "--builder-image",
        builder_ref,
        "--output-image",
        output,
        "--source",
        "/workspace/source",
        "--result-file",
        "/slipway/result/result.json",
        "--insecure-registry",
        REGISTRY,
        "--env",
        DEPENDENCIES,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if incremental {
        args.push("--incremental".into());
    }
    let mounts = [
        Mount {
            source: static_builder(),
            destination: TOOLS.into(),
            read_only: true,
        },
        Mount {
            source: source.to_path_buf(),
            destination: "/workspace/source".into(),
            read_only: true,
        },
        Mount {
            source: result.path().to_path_buf(),
            destination: "/slipway/result".into(),
            read_only: false,
        },
    ];
    let env = image_env(&image.config, &BTreeMap::new());
    let c = Container::new(rootfs.path(), &args, &env, "/tmp", 1001, 0, &mounts);
    let t = Instant::now();
    let (code, out, err) = c.run();
    let d = t.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    d
}

fn buildah_once(context: &Path, storage: &Path, output: &str) -> Duration {
    let result = storage.join("result.json");
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_slipway-builder"))
        .arg("docker")
        .arg("--context")
        .arg(context)
        .args([
            "--output-image",
            output,
            "--insecure-registry",
            REGISTRY,
            "--no-cache",
        ])
        .arg("--storage-root")
        .arg(storage.join("root"))
        .arg("--run-root")
        .arg(storage.join("runroot"))
        .arg("--result-file")
        .arg(&result)
        .env("STORAGE_DRIVER", "vfs")
        .output()
        .unwrap();
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let image = BuilderImage::new();
    let builder_ref = image.push(&unique("slipway-bench/s2i-busybox"));
    let source = tempfile::tempdir().unwrap();
    let app = workspace_root().join("examples/apps/httpd-app");
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", app.display()))
        .arg(source.path())
        .status()
        .unwrap();
    assert!(status.success());
    open_up(source.path());

    // The Dockerfile OpenShift 4 generates for this build.
    let context = tempfile::tempdir().unwrap();
    Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", app.display()))
        .arg(context.path())
        .status()
        .unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {builder_ref}\nUSER 0\nCOPY . /tmp/src\nRUN chown -R 1001:0 /tmp/src\nUSER 1001\nENV {DEPENDENCIES}\nRUN /usr/libexec/s2i/assemble\nCMD [\"/usr/libexec/s2i/run\"]\n"
        ),
    )
    .unwrap();
    let storage = tempfile::tempdir().unwrap();
    let output = format!("{REGISTRY}/{}:latest", unique("slipway-bench/app"));

    // Warm-up: the builder image is in buildah's storage (as the kubelet has it for S2I).
    buildah_once(context.path(), storage.path(), &format!("{output}-warmup"));
    let _ = s2i_once(
        &image,
        &builder_ref,
        &format!("{output}-warmup"),
        source.path(),
        false,
    );

    let s2i: Vec<Duration> = (0..RUNS)
        .map(|_| s2i_once(&image, &builder_ref, &output, source.path(), false))
        .collect();
    let buildah: Vec<Duration> = (0..RUNS)
        .map(|_| buildah_once(context.path(), storage.path(), &format!("{output}-buildah")))
        .collect();
    let incremental_ref = format!("{output}-incremental");
    s2i_once(&image, &builder_ref, &incremental_ref, source.path(), true);
    let incremental: Vec<Duration> = (0..RUNS)
        .map(|_| s2i_once(&image, &builder_ref, &incremental_ref, source.path(), true))
        .collect();
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(storage.path())
        .status();

    let (s, b, i) = (median(s2i), median(buildah), median(incremental));
    println!(
        "s2i build + push (runc, static slipway-builder): {:>8.3} s",
        s.as_secs_f64()
    );
    println!(
        "buildah build + push (chroot, vfs):             {:>8.3} s",
        b.as_secs_f64()
    );
    println!(
        "s2i incremental rebuild + push:                  {:>8.3} s",
        i.as_secs_f64()
    );
    println!(
        "ratio s2i / buildah:          {:.2}",
        s.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "ratio incremental / clean:    {:.2}",
        i.as_secs_f64() / s.as_secs_f64()
    );
}
