//! `docker`: Dockerfile builds through buildah (chroot isolation, no daemon), then a push with
//! buildah whose digest is checked against the registry, and the same result as `s2i`.

use std::collections::BTreeMap;
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
    /// What only the Build says (read from `BUILD`).
    #[arg(skip)]
    pub extras: DockerExtras,
}

/// What the Build adds to the flags.
#[derive(Debug, Clone, Default)]
pub struct DockerExtras {
    /// Labels of the image (`io.openshift.build.*`, `output.imageLabels`).
    pub labels: BTreeMap<String, String>,
    /// Secrets and ConfigMaps placed in the context for the build.
    pub inputs: Vec<slipway_crds::contract::BuildInput>,
    /// `ENV` after every FROM.
    pub env: Vec<(String, String)>,
    /// An inline Dockerfile (`source.dockerfile`), written to `dockerfile` in the context.
    pub inline_dockerfile: Option<String>,
    /// Replaces the image of the last FROM (the strategy's resolved `from`).
    pub last_from: Option<String>,
    /// The post-commit hook, run in the built image before the push.
    pub hook: Option<slipway_crds::contract::Hook>,
    /// The new layers squashed into one (`imageOptimizationPolicy: SkipLayers`).
    pub squash: bool,
    /// A layer per step (`imageOptimizationPolicy: None`, the Build's default).
    pub layered: bool,
    /// Pull the base images even when present.
    pub force_pull: bool,
    /// The strategy's pull secret (docker config JSON).
    pub pull_config: Option<PathBuf>,
    /// `source.images`: paths copied into the context, and the images' resolved pull specs.
    pub images: Vec<slipway_crds::contract::ImageInput>,
    pub image_specs: Vec<String>,
}

impl DockerArgs {
    /// The flags as the Build in `BUILD` says, or as given when there is none.
    pub fn from_build(&self) -> Result<Self, BuildError> {
        let Some(loaded) = crate::contract::Loaded::from_env()? else {
            return Ok(self.clone());
        };
        let plan = &loaded.plan;
        let mut args = self.clone();
        args.context = loaded.context(&self.context)?;
        args.dockerfile = plan.dockerfile_path.clone();
        args.build_args = plan.build_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.no_cache = plan.no_cache;
        args.commit = loaded.commit().or(args.commit);
        // The resolved `from` (BUILDER_IMAGE) replaces the last FROM (OpenShift's rule), not
        // buildah's first.
        let resolved = std::env::var(slipway_crds::contract::env::BUILDER_IMAGE)
            .ok()
            .filter(|i| !i.is_empty());
        args.extras.last_from = resolved.or(args.from.take()).filter(|_| plan.replace_from);
        args.from = None;
        args.extras.labels = loaded.labels();
        args.extras.inputs = plan.inputs.clone();
        args.extras.env = loaded.env().into_iter().map(|(k, v, _)| (k, v)).collect();
        args.extras.inline_dockerfile = plan.dockerfile.clone();
        args.extras.hook = plan.post_commit.clone();
        args.extras.squash = plan.layers == slipway_crds::contract::Layers::Squash;
        args.extras.layered = plan.layers == slipway_crds::contract::Layers::Keep;
        args.extras.force_pull = plan.force_pull;
        args.extras.pull_config = crate::registry::pull_config(plan.pull_secret);
        args.extras.images = plan.images.clone();
        args.extras.image_specs = crate::source_images::specs_from_env()?;
        Ok(args)
    }
}

/// Runs `docker`; the exit code of the subcommand.
pub fn run(args: &DockerArgs) -> u8 {
    let progress = Progress::new(STAGE);
    let mut result = StageResult::success(STAGE);
    let outcome = args
        .from_build()
        .and_then(|args| build(&args, &progress, &mut result));
    let code = match outcome {
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

/// buildah with the build's storage, registries and credentials.
struct Buildah<'a> {
    args: &'a DockerArgs,
    conf: PathBuf,
    auth: Option<PathBuf>,
    /// A directory with `ca.crt`: the CA certificates of `REGISTRY_CA`, trusted besides the
    /// system's for every registry buildah reaches (`--cert-dir`).
    cert_dir: Option<PathBuf>,
}

impl Buildah<'_> {
    fn cmd(&self, sub: &[&str]) -> Command {
        let mut c = Command::new("buildah");
        if let Some(r) = &self.args.storage_root {
            c.arg("--root").arg(r);
        }
        if let Some(r) = &self.args.run_root {
            c.arg("--runroot").arg(r);
        }
        c.args(sub)
            .env("CONTAINERS_REGISTRIES_CONF", &self.conf)
            .env("BUILDAH_ISOLATION", "chroot");
        c
    }

    /// A subcommand that talks to registries: with the authfile, right after the subcommand's
    /// name (after the rest, a flag that takes a value would take `--authfile` as its value).
    fn with_auth(&self, sub: &[&str]) -> Command {
        let (name, rest) = sub.split_first().map_or(("", &[][..]), |(n, r)| (*n, r));
        let mut c = self.cmd(&[name]);
        if let Some(a) = &self.auth {
            c.arg("--authfile").arg(a);
        }
        if let Some(d) = &self.cert_dir {
            c.arg("--cert-dir").arg(d);
        }
        c.args(rest);
        c
    }

    /// Runs a subcommand and returns its standard output.
    fn output(&self, sub: &[&str]) -> Result<String, String> {
        let out = self
            .cmd(sub)
            .output()
            .map_err(|e| format!("cannot start buildah: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "buildah {}: {}",
                sub.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// The Dockerfile to build, in the context (checked to stay inside it), after the inline
/// Dockerfile replaced it.
fn dockerfile_in_context(args: &DockerArgs) -> Result<PathBuf, BuildError> {
    let generic = failed(FailureReason::DockerBuildFailed);
    let dockerfile = Path::new(&args.dockerfile);
    if dockerfile.is_absolute() || dockerfile.components().any(|c| c == Component::ParentDir) {
        return Err(generic(format!(
            "dockerfilePath {:?} must stay inside the context",
            args.dockerfile
        )));
    }
    let path = args.context.join(dockerfile);
    if let Some(text) = &args.extras.inline_dockerfile {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| generic(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text).map_err(|e| generic(format!("writing {}: {e}", args.dockerfile)))?;
    }
    if !path.is_file() {
        return Err(generic(format!("no {} in the context", args.dockerfile)));
    }
    Ok(path)
}

/// The registries.conf and the authfile (push and pull credentials in one) in `work`.
fn prepare(
    args: &DockerArgs,
    work: &Path,
    progress: &Progress,
) -> Result<(PathBuf, Option<PathBuf>), BuildError> {
    let generic = failed(FailureReason::DockerBuildFailed);
    let mut credentials = match &args.docker_config {
        Some(p) => Credentials::load(p).map_err(failed(FailureReason::PushImageToRegistryFailed))?,
        None => Credentials::default(),
    };
    if let Some(p) = &args.extras.pull_config {
        let pull = Credentials::load(p).map_err(failed(FailureReason::PullBuilderImageFailed))?;
        credentials = credentials.merge(pull);
    }
    for s in credentials.secrets() {
        progress.add_secret(&s);
    }
    let conf = work.join("registries.conf");
    std::fs::write(&conf, registries_conf(&args.insecure_registries)).map_err(|e| generic(e.to_string()))?;
    let auth = if args.extras.pull_config.is_some() {
        let path = work.join("auth.json");
        std::fs::write(&path, credentials.to_docker_config()).map_err(|e| generic(e.to_string()))?;
        Some(path)
    } else {
        args.docker_config.as_deref().and_then(authfile)
    };
    Ok((conf, auth))
}

/// The CA certificates of `REGISTRY_CA` as a `--cert-dir` (`ca.crt` in a directory of `work`),
/// when the operator set it.
fn registry_ca_dir(work: &Path) -> Result<Option<PathBuf>, String> {
    let Ok(pem) = std::env::var(slipway_crds::contract::env::REGISTRY_CA) else {
        return Ok(None);
    };
    if pem.trim().is_empty() {
        return Ok(None);
    }
    let dir = work.join("certs");
    std::fs::create_dir_all(&dir).map_err(|e| format!("the registry CA directory: {e}"))?;
    std::fs::write(dir.join("ca.crt"), pem).map_err(|e| format!("the registry CA: {e}"))?;
    Ok(Some(dir))
}

/// Builds the image: check the flags → prepare the context (Dockerfile, `source.images`, build
/// inputs) → registries and credentials for buildah → the Dockerfile as the Build rewrites it →
/// `buildah build` → the post-commit hook → push, checked against the registry.
fn build(args: &DockerArgs, progress: &Progress, result: &mut StageResult) -> Result<(), BuildError> {
    let generic = failed(FailureReason::DockerBuildFailed);
    let push_failed = failed(FailureReason::PushImageToRegistryFailed);
    check_build_args(args)?;
    let output = registry::parse_reference(&args.output_image).map_err(&push_failed)?;
    let (dockerfile, placed) = prepare_context(args, progress)?;
    let work = tempfile::Builder::new()
        .prefix("slipway-docker-")
        .tempdir()
        .map_err(|e| generic(format!("work directory: {e}")))?;
    let (conf, auth) = prepare(args, work.path(), progress)?;
    let dockerfile = rewrite_dockerfile(args, dockerfile, work.path())?;
    let cert_dir = registry_ca_dir(work.path()).map_err(&generic)?;
    let buildah = Buildah {
        args,
        conf,
        auth,
        cert_dir,
    };
    let local = format!("localhost/slipway-build-{:016x}:latest", rand::random::<u64>());

    let t = Instant::now();
    let status = run_logged(build_command(&buildah, &dockerfile, &local), progress).map_err(&generic)?;
    crate::contract::remove_inputs(&placed).map_err(&generic)?;
    if !status.success() {
        return Err(generic(format!("buildah build exited with {status}")));
    }
    record(result, progress, "build", t);
    if let Some(hook) = &args.extras.hook {
        let t = Instant::now();
        let hooked = post_commit(&buildah, &local, hook, progress);
        if hooked.is_err() {
            let _ = buildah.cmd(&["rmi", "-f", &local]).output();
        }
        hooked?;
        record(result, progress, "post-commit", t);
    }

    let t = Instant::now();
    let pushed = push(&buildah, &local, work.path(), progress)?;
    check_pushed(args, &output, &pushed)?;
    record(result, progress, "push", t);
    progress.line(format!("pushed {}@{pushed}", args.output_image));
    result.image = Some(args.output_image.clone());
    result.digest = Some(pushed);
    result.commit = args.commit.clone();
    Ok(())
}

/// Refuses a `--build-arg` that is not `NAME=value`.
fn check_build_args(args: &DockerArgs) -> Result<(), BuildError> {
    let generic = failed(FailureReason::DockerBuildFailed);
    for kv in &args.build_args {
        if kv.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            return Err(generic(format!("--build-arg {kv:?}: not NAME=value")));
        }
    }
    Ok(())
}

/// Finds (or writes) the Dockerfile in the context and places `source.images` and the build
/// inputs there; the Dockerfile and the inputs placed.
fn prepare_context(args: &DockerArgs, progress: &Progress) -> Result<(PathBuf, Vec<PathBuf>), BuildError> {
    let dockerfile = dockerfile_in_context(args)?;
    if !args.extras.images.is_empty() {
        let credentials = Credentials::load_optional(args.docker_config.as_deref())
            .and_then(|c| Ok(c.merge(Credentials::load_optional(args.extras.pull_config.as_deref())?)))
            .map_err(failed(FailureReason::DockerBuildFailed))?;
        crate::source_images::place_images(
            &args.extras.images,
            &args.extras.image_specs,
            &args.context,
            &credentials,
            &args.insecure_registries,
            progress,
        )?;
    }
    let placed = crate::contract::place_inputs(&args.extras.inputs, &args.context)?;
    Ok((dockerfile, placed))
}

/// The Dockerfile buildah reads: `dockerfile` itself, or a copy in `work` with the last FROM and
/// the Build's environment rewritten in, when the Build asks for either.
fn rewrite_dockerfile(args: &DockerArgs, dockerfile: PathBuf, work: &Path) -> Result<PathBuf, BuildError> {
    if args.extras.last_from.is_none() && args.extras.env.is_empty() {
        return Ok(dockerfile);
    }
    let generic = failed(FailureReason::DockerBuildFailed);
    let text = std::fs::read_to_string(&dockerfile).map_err(|e| generic(e.to_string()))?;
    let rewritten = crate::dockerfile::rewrite(&text, args.extras.last_from.as_deref(), &args.extras.env)
        .map_err(|e| generic(format!("{}: {e}", args.dockerfile)))?;
    let path = work.join("Dockerfile");
    std::fs::write(&path, rewritten).map_err(|e| generic(e.to_string()))?;
    Ok(path)
}

/// Reads the output image's digest back from the registry; it must be what buildah pushed.
fn check_pushed(args: &DockerArgs, output: &oci_client::Reference, pushed: &str) -> Result<(), BuildError> {
    let push_failed = failed(FailureReason::PushImageToRegistryFailed);
    let reg = Registry::new(
        Credentials::load_optional(args.docker_config.as_deref()).map_err(&push_failed)?,
        &args.insecure_registries,
    )
    .map_err(&push_failed)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(FailureReason::DockerBuildFailed)(e.to_string()))?;
    let in_registry = rt
        .block_on(async {
            reg.login(output, oci_client::RegistryOperation::Pull).await?;
            reg.manifest_digest(output).await
        })
        .map_err(|e| push_failed(format!("reading back {}: {e}", args.output_image)))?;
    if in_registry != pushed {
        return Err(push_failed(format!(
            "the registry has {in_registry} under {}, buildah pushed {pushed}",
            args.output_image
        )));
    }
    Ok(())
}

/// `buildah build` as the flags and the Build say.
fn build_command(buildah: &Buildah<'_>, dockerfile: &Path, local: &str) -> Command {
    let args = buildah.args;
    let pull = if args.extras.force_pull {
        "--pull=always"
    } else {
        "--pull=missing"
    };
    // The authfile flag follows these: `-f` takes the next argument as its value.
    let mut cmd = buildah.with_auth(&["build", "--isolation", "chroot", pull, "-t", local]);
    cmd.arg("-f").arg(dockerfile);
    for kv in &args.build_args {
        cmd.arg("--build-arg").arg(kv);
    }
    for (k, v) in &args.extras.labels {
        cmd.arg("--label").arg(format!("{k}={v}"));
    }
    if args.no_cache {
        cmd.arg("--no-cache");
    }
    // OpenShift's imageOptimizationPolicy: SkipLayers puts the new layers into one on top of the
    // base, which is what `buildah build` does without `--layers` (its `--squash` would merge the
    // base's layers too: seen on the real node); None keeps a layer per step.
    if args.extras.layered && !args.extras.squash && args.layer_cache.is_none() {
        cmd.arg("--layers");
    }
    if let Some(f) = &args.from {
        cmd.arg("--from").arg(f);
    }
    if let Some(cache) = &args.layer_cache {
        cmd.args(["--layers", "--cache-from", cache, "--cache-to", cache]);
    }
    cmd.arg(&args.context);
    cmd
}

/// Runs the post-commit hook in a container of the built image; its failure fails the build.
fn post_commit(
    buildah: &Buildah<'_>,
    local: &str,
    hook: &slipway_crds::contract::Hook,
    progress: &Progress,
) -> Result<(), BuildError> {
    let failed = failed(FailureReason::PostCommitHookFailed);
    let entrypoint: Vec<String> = buildah
        .output(&[
            "inspect",
            "--type",
            "image",
            "--format",
            "{{json .OCIv1.Config.Entrypoint}}",
            local,
        ])
        .ok()
        .and_then(|j| serde_json::from_str::<Option<Vec<String>>>(&j).ok())
        .flatten()
        .unwrap_or_default();
    let argv = hook.argv(&entrypoint);
    if argv.is_empty() {
        return Err(failed(
            "the hook has only arguments and the image has no entrypoint".into(),
        ));
    }
    let container = buildah
        .output(&["from", "--pull-never", local])
        .map_err(&failed)?;
    progress.line("running the post-commit hook");
    let mut cmd = buildah.cmd(&["run", "--isolation", "chroot", &container, "--"]);
    cmd.args(&argv);
    let status = run_logged(cmd, progress);
    let _ = buildah.cmd(&["rm", &container]).output();
    let status = status.map_err(&failed)?;
    if !status.success() {
        return Err(failed(format!("the post-commit hook exited with {status}")));
    }
    Ok(())
}

/// Pushes the local image; its digest as buildah wrote it. The local image goes either way.
fn push(buildah: &Buildah<'_>, local: &str, work: &Path, progress: &Progress) -> Result<String, BuildError> {
    let push_failed = failed(FailureReason::PushImageToRegistryFailed);
    let digest_file = work.join("digest");
    let mut cmd = buildah.with_auth(&["push"]);
    cmd.arg("--digestfile")
        .arg(&digest_file)
        .arg(local)
        .arg(format!("docker://{}", buildah.args.output_image));
    let status = run_logged(cmd, progress).map_err(&push_failed)?;
    let _ = buildah.cmd(&["rmi", "-f", local]).output();
    if !status.success() {
        return Err(push_failed(format!("buildah push exited with {status}")));
    }
    Ok(std::fs::read_to_string(&digest_file)
        .map_err(|e| push_failed(format!("buildah wrote no digest: {e}")))?
        .trim()
        .to_owned())
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
