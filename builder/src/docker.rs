//! `docker`: Dockerfile builds through buildah (chroot isolation, no daemon), then a push with
//! buildah whose digest is checked against the registry, and the same result as `s2i`.

use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::progress::{Progress, format_duration};
use crate::registry::{self, Credentials, Registry};
use crate::result::{FailureReason, StageResult, write_result};
use crate::s2i::{BuildError, run_logged};

const STAGE: &str = "docker";

/// Command-line flags of `docker`.
#[derive(clap::Args, Debug, Clone)]
pub struct DockerArgs {
    /// The build context (the fetched source's context directory).
    #[arg(long, env = "SOURCE_DIR", default_value = "/workspace/source")]
    pub context: PathBuf,
    /// The Dockerfile, relative to the context.
    #[arg(long, env = "DOCKERFILE_PATH", default_value = "Dockerfile")]
    pub dockerfile: String,
    /// A build argument `NAME=value`; repeat for several.
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// Build every step again.
    #[arg(long, env = "NO_CACHE")]
    pub no_cache: bool,
    /// Replaces the image of the first FROM.
    #[arg(long, env = "FROM_IMAGE")]
    pub from: Option<String>,
    /// A repository holding the layer cache (read and written); only when asked.
    #[arg(long, env = "LAYER_CACHE")]
    pub layer_cache: Option<String>,
    /// Where the result goes: `registry/repository:tag`.
    #[arg(long, env = "OUTPUT_IMAGE")]
    pub output_image: String,
    /// A docker config JSON with the registry credentials (file or mounted secret directory).
    #[arg(long, env = "PUSH_DOCKERCFG_PATH")]
    pub docker_config: Option<PathBuf>,
    /// A registry (`host:port`) reached over plain http; repeat for several (or a comma-separated
    /// list in INSECURE_REGISTRIES, as the operator sets it in build pods).
    #[arg(
        long = "insecure-registry",
        value_name = "HOST:PORT",
        env = "INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// buildah's storage root (`--root`); its default when absent.
    #[arg(long, env = "BUILDAH_ROOT")]
    pub storage_root: Option<PathBuf>,
    /// buildah's run root (`--runroot`).
    #[arg(long, env = "BUILDAH_RUNROOT")]
    pub run_root: Option<PathBuf>,
    /// The commit id, recorded in the result.
    #[arg(long, env = "SOURCE_COMMIT")]
    pub commit: Option<String>,
    /// Where the JSON result goes.
    #[arg(long, env = "RESULT_FILE", default_value = "/dev/termination-log")]
    pub result_file: PathBuf,
}

/// Runs `docker`; the exit code of the subcommand.
pub fn run(args: &DockerArgs) -> u8 {
    let progress = Progress::new(STAGE);
    let mut result = StageResult::success(STAGE);
    let code = match build(args, &progress, &mut result) {
        Ok(()) => 0,
        Err(e) => {
            let message = progress.redact(&e.message);
            progress.line(format!("failed: {}: {message}", e.reason));
            let durations = std::mem::take(&mut result.durations);
            result = StageResult::failure(STAGE, e.reason, &message, progress.tail());
            result.durations = durations;
            result.commit = args.commit.clone();
            1
        }
    };
    if let Err(e) = write_result(&args.result_file, &result) {
        eprintln!(
            "slipway-builder docker: cannot write the result to {}: {e}",
            args.result_file.display()
        );
    }
    code
}

fn failed(reason: FailureReason) -> impl Fn(String) -> BuildError {
    move |m| BuildError::new(reason, m)
}

/// The authfile for buildah: the docker config file itself (a directory is resolved).
fn authfile(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        [".dockerconfigjson", "config.json"]
            .iter()
            .map(|n| path.join(n))
            .find(|p| p.is_file())
    } else {
        Some(path.to_path_buf())
    }
}

/// A registries.conf that marks the insecure registries (and nothing else) as http.
pub fn registries_conf(insecure: &[String]) -> String {
    let mut s = String::from("unqualified-search-registries = []\n");
    for r in insecure {
        s.push_str(&format!(
            "\n[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            r.replace(['"', '\\', '\n'], "")
        ));
    }
    s
}

fn build(args: &DockerArgs, progress: &Progress, result: &mut StageResult) -> Result<(), BuildError> {
    let generic = failed(FailureReason::DockerBuildFailed);
    let push_failed = failed(FailureReason::PushImageToRegistryFailed);
    let dockerfile = Path::new(&args.dockerfile);
    if dockerfile.is_absolute() || dockerfile.components().any(|c| c == Component::ParentDir) {
        return Err(generic(format!(
            "dockerfilePath {:?} must stay inside the context",
            args.dockerfile
        )));
    }
    if !args.context.join(dockerfile).is_file() {
        return Err(generic(format!("no {} in the context", args.dockerfile)));
    }
    for kv in &args.build_args {
        if kv.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            return Err(generic(format!("--build-arg {kv:?}: not NAME=value")));
        }
    }
    let output = registry::parse_reference(&args.output_image).map_err(&push_failed)?;
    let credentials = match &args.docker_config {
        Some(p) => Credentials::load(p).map_err(&push_failed)?,
        None => Credentials::default(),
    };
    for s in credentials.secrets() {
        progress.add_secret(&s);
    }
    let work = tempfile::Builder::new()
        .prefix("slipway-docker-")
        .tempdir()
        .map_err(|e| generic(format!("work directory: {e}")))?;
    let conf = work.path().join("registries.conf");
    std::fs::write(&conf, registries_conf(&args.insecure_registries)).map_err(|e| generic(e.to_string()))?;
    let auth = args.docker_config.as_deref().and_then(authfile);
    let buildah = |sub: &[&str]| {
        let mut c = Command::new("buildah");
        if let Some(r) = &args.storage_root {
            c.arg("--root").arg(r);
        }
        if let Some(r) = &args.run_root {
            c.arg("--runroot").arg(r);
        }
        c.args(sub)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .env("BUILDAH_ISOLATION", "chroot");
        if let Some(a) = &auth {
            c.arg("--authfile").arg(a);
        }
        c
    };
    let local = format!("localhost/slipway-build-{:016x}:latest", rand::random::<u64>());

    let t = Instant::now();
    let mut cmd = buildah(&[
        "build",
        "--isolation",
        "chroot",
        "--pull=missing",
        "-t",
        &local,
        "-f",
    ]);
    cmd.arg(args.context.join(dockerfile));
    for kv in &args.build_args {
        cmd.arg("--build-arg").arg(kv);
    }
    if args.no_cache {
        cmd.arg("--no-cache");
    }
    if let Some(f) = &args.from {
        cmd.arg("--from").arg(f);
    }
    if let Some(cache) = &args.layer_cache {
        cmd.args(["--layers", "--cache-from", cache, "--cache-to", cache]);
    }
    cmd.arg(&args.context);
    progress.line(format!("building {} with buildah", args.dockerfile));
    let status = run_logged(cmd, progress).map_err(&generic)?;
    if !status.success() {
        return Err(generic(format!("buildah build exited with {status}")));
    }
    record(result, progress, "build", t);

    let t = Instant::now();
    let digest_file = work.path().join("digest");
    let mut cmd = buildah(&["push", "--digestfile"]);
    cmd.arg(&digest_file)
        .arg(&local)
        .arg(format!("docker://{}", args.output_image));
    let status = run_logged(cmd, progress).map_err(&push_failed)?;
    // The local image is not needed any more, whatever the push did.
    let _ = buildah(&["rmi", "-f", &local]).output();
    if !status.success() {
        return Err(push_failed(format!("buildah push exited with {status}")));
    }
    let pushed = std::fs::read_to_string(&digest_file)
        .map_err(|e| push_failed(format!("buildah wrote no digest: {e}")))?
        .trim()
        .to_owned();
    let reg = Registry::new(credentials, &args.insecure_registries).map_err(&push_failed)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| generic(e.to_string()))?;
    let in_registry = rt
        .block_on(async {
            reg.login(&output, oci_client::RegistryOperation::Pull).await?;
            reg.manifest_digest(&output).await
        })
        .map_err(|e| push_failed(format!("reading back {}: {e}", args.output_image)))?;
    if in_registry != pushed {
        return Err(push_failed(format!(
            "the registry has {in_registry} under {}, buildah pushed {pushed}",
            args.output_image
        )));
    }
    record(result, progress, "push", t);
    progress.line(format!("pushed {}@{pushed}", args.output_image));
    result.image = Some(args.output_image.clone());
    result.digest = Some(pushed);
    result.commit = args.commit.clone();
    Ok(())
}

fn record(result: &mut StageResult, progress: &Progress, step: &str, started: Instant) {
    let d = started.elapsed();
    result
        .durations
        .insert(step.to_owned(), u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    progress.line(format!("{step} took {}", format_duration(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_conf_marks_only_the_insecure() {
        let c = registries_conf(&["127.0.0.1:15000".into(), "evil\"\n[x]".into()]);
        assert!(c.contains("location = \"127.0.0.1:15000\"\ninsecure = true"));
        assert!(c.contains("location = \"evil[x]\""));
        assert_eq!(registries_conf(&[]), "unqualified-search-registries = []\n");
    }
}
