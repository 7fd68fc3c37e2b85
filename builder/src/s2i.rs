//! `s2i`: source-to-image without privileges and without a daemon. The builder binary runs in a
//! container of the builder image itself: it copies the source in, runs `assemble`, and turns
//! what `assemble` changed into one new layer on top of the builder's, then pushes only that
//! layer, the config and the manifest.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use oci_client::{Reference, RegistryOperation};
use serde_json::Value;

use crate::image::{self, ANNOTATION_ARTIFACTS, Blob, LABEL_DESTINATION, LABEL_SCRIPTS_URL};
use crate::layer::{self, sha256_digest};
use crate::progress::{Progress, format_duration};
use crate::registry::{self, Credentials, PulledImage, Registry};
use crate::result::{FailureReason, StageResult, write_result};

const STAGE: &str = "s2i";

/// Where scripts live when nothing else says (OpenShift's default).
pub const DEFAULT_SCRIPTS_DIR: &str = "/usr/libexec/s2i";

/// The largest `.s2i/environment` or `.s2iignore` read.
const MAX_SMALL_FILE: u64 = 64 << 10;

/// Command-line flags of `s2i`.
#[derive(clap::Args, Debug, Clone)]
pub struct S2iArgs {
    /// The builder image this container runs (its manifest and config are read from the registry).
    #[arg(long, env = "BUILDER_IMAGE")]
    pub builder_image: String,
    /// Where the result goes: `registry/repository:tag`.
    #[arg(long, env = "OUTPUT_IMAGE")]
    pub output_image: String,
    /// The fetched source (the context directory).
    #[arg(long, env = "SOURCE_DIR", default_value = "/workspace/source")]
    pub source: PathBuf,
    /// The strategy's scripts URL: `image:///path` or `file:///path`.
    #[arg(long, env = "SCRIPTS_URL")]
    pub scripts_url: Option<String>,
    /// Build environment `NAME=value` (overrides `.s2i/environment`).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// The commit id, for the `io.openshift.s2i.build.commit.id` label.
    #[arg(long, env = "SOURCE_COMMIT")]
    pub commit: Option<String>,
    /// The source location, for the `io.openshift.s2i.build.source-location` label.
    #[arg(long, env = "SOURCE_URI")]
    pub source_uri: Option<String>,
    /// Reuse the previous image's saved artifacts and save new ones.
    #[arg(long, env = "INCREMENTAL")]
    pub incremental: bool,
    /// A post-commit hook run with `/bin/sh -c`.
    #[arg(long, env = "POST_COMMIT_SCRIPT")]
    pub post_commit_script: Option<String>,
    /// A post-commit hook command (repeat for each argument).
    #[arg(long = "post-commit-command", value_name = "ARG", allow_hyphen_values = true)]
    pub post_commit_command: Vec<String>,
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
    /// Where the tools (this binary) are mounted; never part of the image.
    #[arg(long, env = "TOOLS_DIR", default_value = "/slipway/tools")]
    pub tools_dir: PathBuf,
    /// Further paths left out of the snapshot (secret mounts, caches); mount points are left out
    /// anyway.
    #[arg(long = "exclude", value_name = "PATH")]
    pub exclude: Vec<PathBuf>,
    /// Where the JSON result goes.
    #[arg(long, env = "RESULT_FILE", default_value = "/dev/termination-log")]
    pub result_file: PathBuf,
    /// What only the Build says (read from `BUILD`).
    #[arg(skip)]
    pub extras: Extras,
}

/// What the Build adds to the flags: labels, inputs, variables for the build only, the hook and
/// the pull secret.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Labels of the image (`io.openshift.build.*`, `output.imageLabels`).
    pub labels: BTreeMap<String, String>,
    /// Secrets and ConfigMaps placed in the source for assemble, and taken out before commit.
    pub inputs: Vec<slipway_crds::contract::BuildInput>,
    /// Variables for assemble and the hook that never go into the image (`valueFrom`).
    pub build_env: Vec<(String, String)>,
    /// The post-commit hook.
    pub hook: Option<slipway_crds::contract::Hook>,
    /// The strategy's pull secret (docker config JSON).
    pub pull_config: Option<PathBuf>,
    /// `source.images`: paths copied into the source, and the images' resolved pull specs.
    pub images: Vec<slipway_crds::contract::ImageInput>,
    pub image_specs: Vec<String>,
}

impl S2iArgs {
    /// The flags as the Build in `BUILD` says, or as given when there is none.
    pub fn from_build(&self) -> Result<Self, BuildError> {
        let Some(loaded) = crate::contract::Loaded::from_env()? else {
            return Ok(self.clone());
        };
        let mut args = self.clone();
        let plan = &loaded.plan;
        args.source = loaded.context(&self.source)?;
        args.scripts_url = plan.scripts_url.clone().or(args.scripts_url);
        args.incremental = plan.incremental;
        for (k, v, into_image) in loaded.env() {
            if into_image {
                args.env.push(format!("{k}={v}"));
            } else {
                args.extras.build_env.push((k, v));
            }
        }
        args.commit = loaded.commit().or(args.commit);
        args.source_uri = loaded
            .build
            .spec
            .common
            .source
            .git
            .as_ref()
            .map(|g| g.uri.clone());
        args.extras.labels = loaded.labels();
        args.extras.inputs = plan.inputs.clone();
        args.extras.hook = plan.post_commit.clone();
        args.extras.pull_config = crate::registry::pull_config(plan.pull_secret);
        args.extras.images = plan.images.clone();
        args.extras.image_specs = crate::source_images::specs_from_env()?;
        Ok(args)
    }

    /// The post-commit hook: the Build's, else the flags'.
    fn hook(&self) -> Option<slipway_crds::contract::Hook> {
        use slipway_crds::contract::Hook;
        self.extras.hook.clone().or_else(|| {
            if let Some(script) = &self.post_commit_script {
                Some(Hook::Shell {
                    script: script.clone(),
                    args: Vec::new(),
                })
            } else if !self.post_commit_command.is_empty() {
                Some(Hook::Exec {
                    argv: self.post_commit_command.clone(),
                })
            } else {
                None
            }
        })
    }
}

/// Why a build failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub reason: FailureReason,
    pub message: String,
}

impl BuildError {
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

fn generic(m: impl Into<String>) -> BuildError {
    BuildError::new(FailureReason::GenericS2IBuildFailed, m)
}

/// Runs `s2i`; the exit code of the subcommand.
pub fn run(args: &S2iArgs) -> u8 {
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
            let warnings = std::mem::take(&mut result.warnings);
            result = StageResult::failure(STAGE, e.reason, &message, progress.tail());
            result.durations = durations;
            result.warnings = warnings;
            result.commit = args.commit.clone();
            1
        }
    };
    if let Err(e) = write_result(&args.result_file, &result) {
        eprintln!(
            "slipway-builder s2i: cannot write the result to {}: {e}",
            args.result_file.display()
        );
    }
    code
}

/// Where a script comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptSource {
    /// A path inside the image: run in place.
    Image(PathBuf),
    /// A file to copy into `<destination>/scripts` (from the source or a `file://` URL).
    Copy(PathBuf),
}

/// The scripts of a build.
#[derive(Debug, Clone, Default)]
pub struct Scripts {
    pub by_name: BTreeMap<String, ScriptSource>,
}

/// Resolves `assemble`, `run` and `save-artifacts` in OpenShift's order: the strategy's scripts
/// URL, `.s2i/bin` in the source, the image's `io.openshift.s2i.scripts-url` label, then
/// `/usr/libexec/s2i`. `root` is the image's filesystem (`/` in the build container).
pub fn resolve_scripts(
    root: &Path,
    strategy_url: Option<&str>,
    source: &Path,
    label_url: Option<&str>,
) -> Result<Scripts, BuildError> {
    let mut places: Vec<(bool, PathBuf)> = Vec::new(); // (in the image?, directory)
    for url in [strategy_url].into_iter().flatten() {
        places.push(parse_scripts_url(url)?);
    }
    places.push((false, source.join(".s2i/bin")));
    if let Some(url) = label_url {
        places.push(parse_scripts_url(url)?);
    }
    places.push((true, PathBuf::from(DEFAULT_SCRIPTS_DIR)));
    let mut scripts = Scripts::default();
    for name in ["assemble", "run", "save-artifacts"] {
        for (in_image, dir) in &places {
            let on_disk = if *in_image {
                root.join(dir.strip_prefix("/").unwrap_or(dir)).join(name)
            } else {
                dir.join(name)
            };
            if on_disk.is_file() {
                let s = if *in_image {
                    ScriptSource::Image(dir.join(name))
                } else {
                    ScriptSource::Copy(on_disk)
                };
                scripts.by_name.insert(name.to_owned(), s);
                break;
            }
        }
    }
    for required in ["assemble", "run"] {
        if !scripts.by_name.contains_key(required) {
            return Err(generic(format!(
                "no {required} script: looked in {}",
                places
                    .iter()
                    .map(|(i, d)| format!("{}{}", if *i { "image://" } else { "" }, d.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(scripts)
}

/// `image:///usr/libexec/s2i` → (true, path); `file:///dir` → (false, path).
fn parse_scripts_url(url: &str) -> Result<(bool, PathBuf), BuildError> {
    let (in_image, path) = if let Some(p) = url.strip_prefix("image://") {
        (true, p)
    } else if let Some(p) = url.strip_prefix("file://") {
        (false, p)
    } else if url.starts_with("http://") || url.starts_with("https://") {
        return Err(generic(format!(
            "scripts URL {url:?}: http(s) scripts are not supported; use image:// or file://"
        )));
    } else {
        return Err(generic(format!(
            "scripts URL {url:?}: not an image:// or file:// URL"
        )));
    };
    let path = Path::new(path);
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(generic(format!(
            "scripts URL {url:?}: the path must be absolute, without .."
        )));
    }
    Ok((in_image, path.to_path_buf()))
}

/// Parses `.s2i/environment`: `NAME=value` lines, `#` comments and blank lines ignored.
pub fn parse_environment(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: not NAME=value", i + 1))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: invalid variable name {k:?}", i + 1));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// Patterns of `.s2iignore`: one glob per line (`*`, `?`), relative to the source root.
#[derive(Debug, Default, Clone)]
pub struct Ignore {
    patterns: Vec<String>,
}

impl Ignore {
    pub fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.trim_start_matches('/').trim_end_matches('/').to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        Self { patterns }
    }

    /// Whether `rel` (relative to the source root) is ignored.
    pub fn ignores(&self, rel: &Path) -> bool {
        let s = rel.to_string_lossy();
        self.patterns.iter().any(|p| glob(p.as_bytes(), s.as_bytes()))
    }
}

/// `*` matches within one path component, `?` one character.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..])),
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Copies the source into `dest`, leaving out `.git` and what `.s2iignore` names. Returns how
/// many files were copied.
pub fn copy_source(source: &Path, dest: &Path) -> std::io::Result<usize> {
    let ignore = match read_small(&source.join(".s2iignore")) {
        Ok(Some(t)) => Ignore::parse(&t),
        Ok(None) => Ignore::default(),
        Err(e) => return Err(e),
    };
    std::fs::create_dir_all(dest)?;
    let mut files = 0;
    let walk = walkdir::WalkDir::new(source)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(source).unwrap_or(e.path());
            rel != Path::new(".git") && !ignore.ignores(rel)
        });
    for item in walk {
        let item = item.map_err(std::io::Error::other)?;
        let rel = item.path().strip_prefix(source).map_err(std::io::Error::other)?;
        let to = dest.join(rel);
        let ft = item.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(item.path())?, &to)?;
        } else if ft.is_file() {
            std::fs::copy(item.path(), &to)?;
            files += 1;
        }
    }
    Ok(files)
}

fn read_small(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_SMALL_FILE => Err(std::io::Error::other(format!(
            "{} is larger than {MAX_SMALL_FILE} bytes",
            path.display()
        ))),
        Ok(m) if m.is_file() => std::fs::read_to_string(path).map(Some),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The mount points of this process (from `/proc/self/mountinfo`), unescaped.
fn mount_points() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mount(m)))
        .collect()
}

fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the snapshot leaves out: the kernel's filesystems, the tools, the source, volumes, and
/// every mount point but `/` and the destination's own (secrets, service account, hosts files).
pub fn excluded_paths(
    args: &S2iArgs,
    destination: &Path,
    volumes: &[String],
    mounts: &[PathBuf],
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["/proc", "/sys", "/dev"].iter().map(PathBuf::from).collect();
    out.push(args.tools_dir.clone());
    out.push(args.source.clone());
    out.push(args.result_file.clone());
    if let Some(d) = &args.docker_config {
        out.push(d.clone());
    }
    out.extend(args.exclude.iter().cloned());
    out.extend(volumes.iter().map(PathBuf::from));
    for m in mounts {
        if m == Path::new("/") || destination.starts_with(m) {
            continue;
        }
        out.push(m.clone());
    }
    out.sort();
    out.dedup();
    out
}

/// The uid and gid the image's `User` names, looked up in the image's /etc/passwd for names.
pub fn resolve_user(root: &Path, user: &str) -> Option<(u32, u32)> {
    if user.is_empty() {
        return None;
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == u || f[2] == u));
    let uid = u
        .parse::<u32>()
        .ok()
        .or_else(|| entry.as_ref().and_then(|f| f[2].parse().ok()))?;
    let gid = match g {
        Some(g) => g.parse::<u32>().ok()?,
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(uid),
    };
    Some((uid, gid))
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Runs a child, its output going to the progress log line by line.
pub fn run_logged(mut cmd: Command, progress: &Progress) -> Result<std::process::ExitStatus, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    std::thread::scope(|s| {
        if let Some(o) = out {
            s.spawn(|| {
                for line in BufReader::new(o).lines().map_while(Result::ok) {
                    progress.line(line);
                }
            });
        }
        if let Some(e) = err {
            s.spawn(|| {
                for line in BufReader::new(e).lines().map_while(Result::ok) {
                    progress.line(line);
                }
            });
        }
    });
    child.wait().map_err(|e| e.to_string())
}

/// Records how long each step took, in the result and the log.
struct Timer<'a> {
    result: &'a mut StageResult,
    progress: &'a Progress,
}

impl Timer<'_> {
    /// Records the duration of `step`, started at `started`.
    fn record(&mut self, step: &str, started: Instant) {
        let d = started.elapsed();
        self.result
            .durations
            .insert(step.to_owned(), u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.progress.line(format!("{step} took {}", format_duration(d)));
    }
}

/// Builds the image: resolve the builder image → plan from its config and the source → snapshot
/// → prepare the context and scripts → assemble → commit the layer → save artifacts → the
/// post-commit hook → push.
fn build(args: &S2iArgs, progress: &Progress, result: &mut StageResult) -> Result<(), BuildError> {
    let session = Session::open(args, progress)?;
    let root = Path::new("/");
    let mut timer = Timer { result, progress };
    let builder = session.pull_builder(args, &mut timer)?;
    let plan = Plan::new(args, root, &builder)?;

    // Snapshot, then bring in the source (and scripts and artifacts): they belong to the layer.
    let t = Instant::now();
    let before = layer::snapshot(root, &plan.excluded).map_err(|e| generic(format!("snapshot: {e}")))?;
    timer.record("snapshot", t);
    let t = Instant::now();
    let prepared = prepare_context(args, &plan, &session.credentials, progress)?;
    if args.incremental {
        restore_artifacts(
            &session.rt,
            &session.reg,
            &session.output_ref,
            &plan.destination,
            progress,
            timer.result,
        );
    }
    timer.record("prepare", t);

    run_assemble(&plan.runner, &prepared.scripts, &mut timer)?;
    // Build inputs are for assemble only: out before the image is committed, as in OpenShift.
    crate::contract::remove_inputs(&prepared.inputs).map_err(generic)?;
    let committed = commit_layer(root, &plan.excluded, &before, &mut timer)?;
    // The artifacts of this build, for the next one.
    let artifacts = if args.incremental {
        prepared
            .scripts
            .get("save-artifacts")
            .and_then(|save| save_new_artifacts(&plan.runner, save, &mut timer))
    } else {
        None
    };
    if let Some(hook) = args.hook() {
        run_post_commit_hook(&hook, &builder, &plan.runner, &mut timer)?;
    }

    let t = Instant::now();
    let run_path = prepared.scripts.get("run").cloned().unwrap_or_default();
    let config = output_config(args, &builder, &committed.written, &run_path, &plan.image_env)?;
    let digest = session.push(&builder, &committed.written, &config, artifacts, progress)?;
    timer.record("push", t);
    progress.line(format!("pushed {}@{digest}", args.output_image));
    timer.result.image = Some(args.output_image.clone());
    timer.result.digest = Some(digest);
    timer.result.commit = args.commit.clone();
    Ok(())
}

/// The registry side of a build: the runtime, the client, the credentials and both references.
struct Session {
    rt: tokio::runtime::Runtime,
    reg: Registry,
    /// The credentials as loaded (push and pull secrets), for `source.images`.
    credentials: Credentials,
    builder_ref: Reference,
    output_ref: Reference,
}

impl Session {
    /// Loads the credentials (their secrets redacted from the log), parses both references and
    /// makes the registry client.
    fn open(args: &S2iArgs, progress: &Progress) -> Result<Self, BuildError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| generic(format!("cannot start the runtime: {e}")))?;
        let mut credentials = match &args.docker_config {
            Some(p) => Credentials::load(p)
                .map_err(|e| BuildError::new(FailureReason::PushImageToRegistryFailed, e))?,
            None => Credentials::default(),
        };
        if let Some(p) = &args.extras.pull_config {
            let pull = Credentials::load(p)
                .map_err(|e| BuildError::new(FailureReason::PullBuilderImageFailed, e))?;
            credentials = credentials.merge(pull);
        }
        for s in credentials.secrets() {
            progress.add_secret(&s);
        }
        let builder_ref = registry::parse_reference(&args.builder_image)
            .map_err(|e| BuildError::new(FailureReason::PullBuilderImageFailed, e))?;
        let output_ref = registry::parse_reference(&args.output_image)
            .map_err(|e| BuildError::new(FailureReason::PushImageToRegistryFailed, e))?;
        let reg = Registry::new(credentials.clone(), &args.insecure_registries).map_err(generic)?;
        Ok(Self {
            rt,
            reg,
            credentials,
            builder_ref,
            output_ref,
        })
    }

    /// Reads the builder image's manifest and config (the `pull` step).
    fn pull_builder(&self, args: &S2iArgs, timer: &mut Timer) -> Result<PulledImage, BuildError> {
        let t = Instant::now();
        timer
            .progress
            .line(format!("reading builder image {}", args.builder_image));
        let builder = self
            .rt
            .block_on(self.reg.pull_image(&self.builder_ref))
            .map_err(|e| {
                BuildError::new(
                    FailureReason::PullBuilderImageFailed,
                    format!("{}: {e}", args.builder_image),
                )
            })?;
        timer.record("pull", t);
        Ok(builder)
    }

    /// Logs in for pushing and pushes the image; its manifest's digest.
    fn push(
        &self,
        builder: &PulledImage,
        written: &layer::WrittenLayer,
        config_bytes: &[u8],
        artifacts: Option<(Vec<u8>, String)>,
        progress: &Progress,
    ) -> Result<String, BuildError> {
        let push_err = |e: String| BuildError::new(FailureReason::PushImageToRegistryFailed, e);
        self.rt.block_on(async {
            self.reg
                .login(&self.output_ref, RegistryOperation::Push)
                .await
                .map_err(push_err)?;
            push_image(
                &self.reg,
                &self.builder_ref,
                &self.output_ref,
                builder,
                written,
                config_bytes,
                artifacts,
                progress,
            )
            .await
            .map_err(push_err)
        })
    }
}

/// How the build's processes run: in the image's working directory, as its user (when this
/// process may switch), with the build environment.
struct Runner {
    workdir: PathBuf,
    env: Vec<(String, String)>,
    user: Option<(u32, u32)>,
}

impl Runner {
    /// A command for `program` with `args`, set up to run as the image would.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(&self.workdir)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some((uid, gid)) = self.user
            && euid() == 0
        {
            c.uid(uid).gid(gid);
        }
        c
    }
}

/// What the builder image and the source decide before anything runs.
struct Plan {
    /// The image's `io.openshift.s2i.destination` (`/tmp` when unlabelled).
    destination: PathBuf,
    scripts: Scripts,
    /// The variables that go into the image (the build-only ones are in `runner` too).
    image_env: Vec<(String, String)>,
    runner: Runner,
    /// What the snapshots leave out.
    excluded: Vec<PathBuf>,
}

impl Plan {
    /// Reads the destination, scripts, environment, user and working directory.
    fn new(args: &S2iArgs, root: &Path, builder: &PulledImage) -> Result<Self, BuildError> {
        let destination = PathBuf::from(image::label(&builder.config, LABEL_DESTINATION).unwrap_or("/tmp"));
        if !destination.is_absolute() || destination.components().any(|c| c == Component::ParentDir) {
            return Err(generic(format!(
                "destination {} is not an absolute path",
                destination.display()
            )));
        }
        let scripts = resolve_scripts(
            root,
            args.scripts_url.as_deref(),
            &args.source,
            image::label(&builder.config, LABEL_SCRIPTS_URL),
        )?;
        let image_env = image_environment(args)?;
        let mut env = image_env.clone();
        env.extend(args.extras.build_env.iter().cloned());
        let user = resolve_user(root, image::user(&builder.config));
        let workdir = builder
            .config
            .pointer("/config/WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .map_or_else(|| PathBuf::from("/"), PathBuf::from);
        let excluded = excluded_paths(
            args,
            &destination,
            &image::volumes(&builder.config),
            &mount_points(),
        );
        Ok(Self {
            destination,
            scripts,
            image_env,
            runner: Runner { workdir, env, user },
            excluded,
        })
    }
}

/// The variables that go into the image: `.s2i/environment`, overridden by `--env`. (`valueFrom`
/// variables are for the build only and are not among them.)
fn image_environment(args: &S2iArgs) -> Result<Vec<(String, String)>, BuildError> {
    let mut env = match read_small(&args.source.join(".s2i/environment")) {
        Ok(Some(t)) => parse_environment(&t).map_err(|e| generic(format!(".s2i/environment: {e}")))?,
        Ok(None) => Vec::new(),
        Err(e) => return Err(generic(format!(".s2i/environment: {e}"))),
    };
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| generic(format!("--env {kv:?}: not NAME=value")))?;
        env.retain(|(n, _)| n != k);
        env.push((k.to_owned(), v.to_owned()));
    }
    Ok(env)
}

/// What the context holds once prepared.
struct Prepared {
    /// The build input files placed in the source, removed after assemble.
    inputs: Vec<PathBuf>,
    /// Where each script runs from, by name.
    scripts: BTreeMap<String, PathBuf>,
}

/// Copies the source to `<destination>/src`, places `source.images` and the build inputs there,
/// and installs the scripts that are not in the image.
fn prepare_context(
    args: &S2iArgs,
    plan: &Plan,
    credentials: &Credentials,
    progress: &Progress,
) -> Result<Prepared, BuildError> {
    let destination = &plan.destination;
    let files = copy_source(&args.source, &destination.join("src"))
        .map_err(|e| generic(format!("copying the source to {}: {e}", destination.display())))?;
    progress.line(format!(
        "copied {files} source files to {}/src",
        destination.display()
    ));
    crate::source_images::place_images(
        &args.extras.images,
        &args.extras.image_specs,
        &destination.join("src"),
        credentials,
        &args.insecure_registries,
        progress,
    )?;
    let inputs = crate::contract::place_inputs(&args.extras.inputs, &destination.join("src"))?;
    if !args.extras.inputs.is_empty() {
        progress.line(format!(
            "placed {} build input files in {}/src",
            inputs.len(),
            destination.display()
        ));
    }
    let scripts = install_scripts(&plan.scripts, destination, progress)?;
    Ok(Prepared { inputs, scripts })
}

/// Copies the scripts that are not in the image into `<destination>/scripts`; where each one
/// runs from.
fn install_scripts(
    scripts: &Scripts,
    destination: &Path,
    progress: &Progress,
) -> Result<BTreeMap<String, PathBuf>, BuildError> {
    let mut paths: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (name, s) in &scripts.by_name {
        let path = match s {
            ScriptSource::Image(p) => p.clone(),
            ScriptSource::Copy(from) => {
                let dir = destination.join("scripts");
                let to = dir.join(name);
                std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::copy(from, &to))
                    .and_then(|_| std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)))
                    .map_err(|e| generic(format!("installing the {name} script: {e}")))?;
                to
            }
        };
        progress.line(format!("{name}: {}", path.display()));
        paths.insert(name.clone(), path);
    }
    Ok(paths)
}

/// Runs `assemble` (the `assemble` step); its failure fails the build.
fn run_assemble(
    runner: &Runner,
    scripts: &BTreeMap<String, PathBuf>,
    timer: &mut Timer,
) -> Result<(), BuildError> {
    let progress = timer.progress;
    let t = Instant::now();
    let assemble = scripts.get("assemble").cloned().unwrap_or_default();
    progress.line(format!("running {}", assemble.display()));
    let status = run_logged(runner.command(&assemble, &[]), progress)
        .map_err(|e| BuildError::new(FailureReason::AssembleFailed, e))?;
    if !status.success() {
        return Err(BuildError::new(
            FailureReason::AssembleFailed,
            format!("assemble exited with {status}"),
        ));
    }
    timer.record("assemble", t);
    Ok(())
}

/// The layer written, and the work directory that holds it until it is pushed.
struct Committed {
    _work: tempfile::TempDir,
    written: layer::WrittenLayer,
}

/// Snapshots again and writes what changed since `before` as one layer (the `commit` step).
fn commit_layer(
    root: &Path,
    excluded: &[PathBuf],
    before: &layer::Snapshot,
    timer: &mut Timer,
) -> Result<Committed, BuildError> {
    let t = Instant::now();
    let after = layer::snapshot(root, excluded).map_err(|e| generic(format!("snapshot: {e}")))?;
    let changes = layer::diff(before, &after);
    let work = tempfile::Builder::new()
        .prefix("slipway-s2i-")
        .tempdir()
        .map_err(|e| generic(format!("work directory: {e}")))?;
    let written = layer::write_layer(root, &changes, &work.path().join("layer.tar.gz"))
        .map_err(|e| generic(format!("writing the layer: {e}")))?;
    timer.progress.line(format!(
        "layer {}: {} changed, {} deleted, {} bytes",
        written.digest,
        changes.changed.len(),
        changes.deleted.len(),
        written.size
    ));
    timer.record("commit", t);
    Ok(Committed { _work: work, written })
}

/// Runs `save-artifacts` (the `save-artifacts` step): the tar and its digest, or `None` and a
/// warning when it fails.
fn save_new_artifacts(runner: &Runner, save: &Path, timer: &mut Timer) -> Option<(Vec<u8>, String)> {
    let progress = timer.progress;
    let t = Instant::now();
    let artifacts = match save_artifacts(runner.command(save, &[]), progress) {
        Ok(bytes) => {
            let d = sha256_digest(&bytes);
            progress.line(format!("saved artifacts {d} ({} bytes)", bytes.len()));
            Some((bytes, d))
        }
        Err(e) => {
            let w = format!("save-artifacts failed, the next build will be clean: {e}");
            progress.line(&w);
            timer.result.warnings.push(w);
            None
        }
    };
    timer.record("save-artifacts", t);
    artifacts
}

/// Runs the post-commit hook (the `post-commit` step) with the image's entrypoint; its failure
/// fails the build.
fn run_post_commit_hook(
    hook: &slipway_crds::contract::Hook,
    builder: &PulledImage,
    runner: &Runner,
    timer: &mut Timer,
) -> Result<(), BuildError> {
    let progress = timer.progress;
    let t = Instant::now();
    let entrypoint: Vec<String> = builder
        .config
        .pointer("/config/Entrypoint")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let argv = hook.argv(&entrypoint);
    let Some((program, rest)) = argv.split_first() else {
        return Err(BuildError::new(
            FailureReason::PostCommitHookFailed,
            "the post-commit hook has only arguments and the image has no entrypoint",
        ));
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let cmd = runner.command(Path::new(program), &rest);
    progress.line("running the post-commit hook");
    let status =
        run_logged(cmd, progress).map_err(|e| BuildError::new(FailureReason::PostCommitHookFailed, e))?;
    if !status.success() {
        return Err(BuildError::new(
            FailureReason::PostCommitHookFailed,
            format!("the post-commit hook exited with {status}"),
        ));
    }
    timer.record("post-commit", t);
    Ok(())
}

/// The labels of the image: the builder image, the commit and the (masked) source location,
/// then the Build's.
fn image_labels(args: &S2iArgs) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(
        "io.openshift.s2i.build.image".to_owned(),
        args.builder_image.clone(),
    )]);
    if let Some(c) = &args.commit {
        labels.insert("io.openshift.s2i.build.commit.id".into(), c.clone());
    }
    if let Some(u) = &args.source_uri {
        labels.insert(
            "io.openshift.s2i.build.source-location".into(),
            crate::source_url::mask_url(u),
        );
    }
    labels.extend(args.extras.labels.clone());
    labels
}

/// The new image's config (serialized): the builder's, with the layer, `run`, the environment,
/// the labels and the time of now.
fn output_config(
    args: &S2iArgs,
    builder: &PulledImage,
    written: &layer::WrittenLayer,
    run_path: &Path,
    image_env: &[(String, String)],
) -> Result<Vec<u8>, BuildError> {
    let labels = image_labels(args);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let config = image::derive_config(
        &builder.config,
        &written.diff_id,
        &run_path.to_string_lossy(),
        image_env,
        &labels,
        &image::rfc3339(now),
    );
    serde_json::to_vec(&config).map_err(|e| generic(e.to_string()))
}

#[allow(clippy::too_many_arguments)]
async fn push_image(
    reg: &Registry,
    builder_ref: &Reference,
    output_ref: &Reference,
    builder: &PulledImage,
    written: &layer::WrittenLayer,
    config_bytes: &[u8],
    artifacts: Option<(Vec<u8>, String)>,
    progress: &Progress,
) -> Result<String, String> {
    for l in builder.layers() {
        let Some(d) = l.get("digest").and_then(Value::as_str) else {
            return Err("a builder layer has no digest".into());
        };
        let how = reg.reuse_blob(builder_ref, output_ref, d).await?;
        progress.line(format!("builder layer {d}: {how}"));
    }
    let data = std::fs::read(&written.path).map_err(|e| e.to_string())?;
    reg.push_blob(output_ref, data, &written.digest).await?;
    progress.line(format!("pushed layer {}", written.digest));
    let config_digest = sha256_digest(config_bytes);
    reg.push_blob(output_ref, config_bytes.to_vec(), &config_digest)
        .await?;
    let mut annotations = BTreeMap::new();
    if let Some((bytes, d)) = artifacts {
        reg.push_blob(output_ref, bytes, &d).await?;
        annotations.insert(ANNOTATION_ARTIFACTS.to_owned(), d);
    }
    let (manifest, mt) = image::derive_manifest(
        builder.media_type(),
        &builder.layers(),
        &Blob {
            digest: config_digest,
            size: config_bytes.len() as u64,
        },
        &Blob {
            digest: written.digest.clone(),
            size: written.size,
        },
        &annotations,
    );
    reg.push_manifest(output_ref, &manifest, mt).await
}

/// Fetches the previous image's artifacts into `<destination>/artifacts`; anything missing or
/// unreadable is a warning and a clean build.
fn restore_artifacts(
    rt: &tokio::runtime::Runtime,
    reg: &Registry,
    output_ref: &Reference,
    destination: &Path,
    progress: &Progress,
    result: &mut StageResult,
) {
    let outcome: Result<Option<usize>, String> = rt.block_on(async {
        let previous = match reg.pull_image(output_ref).await {
            Ok(p) => p,
            Err(e) if e.contains("404") || e.to_lowercase().contains("unknown") => return Ok(None),
            Err(e) => return Err(format!("reading the previous image: {e}")),
        };
        let Some(d) = previous
            .manifest
            .pointer(&format!(
                "/annotations/{}",
                ANNOTATION_ARTIFACTS.replace('/', "~1")
            ))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let bytes = reg
            .pull_blob(output_ref, d)
            .await
            .map_err(|e| format!("artifacts {d}: {e}"))?;
        if sha256_digest(&bytes) != d {
            return Err(format!("artifacts {d}: the blob does not match its digest"));
        }
        let dir = destination.join("artifacts");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        layer::unpack_layer(&bytes, &dir).map_err(|e| format!("unpacking the artifacts: {e}"))?;
        Ok(Some(bytes.len()))
    });
    match outcome {
        Ok(Some(n)) => progress.line(format!(
            "restored {n} bytes of artifacts into {}/artifacts",
            destination.display()
        )),
        Ok(None) => progress.line("no previous artifacts: a clean build"),
        Err(e) => {
            let _ = std::fs::remove_dir_all(destination.join("artifacts"));
            let w = format!("previous artifacts unusable, building clean: {e}");
            progress.line(&w);
            result.warnings.push(w);
        }
    }
}

/// Runs `save-artifacts`, whose stdout is a tar stream; returns it.
fn save_artifacts(mut cmd: Command, progress: &Progress) -> Result<Vec<u8>, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start save-artifacts: {e}"))?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        progress.line(line);
    }
    if !out.status.success() {
        return Err(format!("save-artifacts exited with {}", out.status));
    }
    // Check it is a tar before anyone relies on it.
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    archive
        .entries()
        .and_then(|mut e| e.try_for_each(|x| x.map(|_| ())))
        .map_err(|e| format!("save-artifacts did not write a tar: {e}"))?;
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_order() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(r.join("usr/libexec/s2i")).unwrap();
        std::fs::create_dir_all(r.join("opt/s2i")).unwrap();
        std::fs::create_dir_all(src.path().join(".s2i/bin")).unwrap();
        for n in ["assemble", "run", "save-artifacts"] {
            std::fs::write(r.join("usr/libexec/s2i").join(n), "").unwrap();
        }
        std::fs::write(r.join("opt/s2i/run"), "").unwrap();
        std::fs::write(src.path().join(".s2i/bin/assemble"), "").unwrap();
        let s = resolve_scripts(r, None, src.path(), Some("image:///opt/s2i")).unwrap();
        assert_eq!(
            s.by_name["assemble"],
            ScriptSource::Copy(src.path().join(".s2i/bin/assemble"))
        );
        assert_eq!(
            s.by_name["run"],
            ScriptSource::Image(PathBuf::from("/opt/s2i/run"))
        );
        assert_eq!(
            s.by_name["save-artifacts"],
            ScriptSource::Image(PathBuf::from("/usr/libexec/s2i/save-artifacts"))
        );
        // The strategy's URL comes first.
        let s = resolve_scripts(r, Some("image:///opt/s2i"), src.path(), None).unwrap();
        assert_eq!(
            s.by_name["run"],
            ScriptSource::Image(PathBuf::from("/opt/s2i/run"))
        );
        // Missing run.
        let empty = tempfile::tempdir().unwrap();
        let e = resolve_scripts(empty.path(), None, src.path(), None).unwrap_err();
        assert!(e.message.contains("no run script"), "{e}");
        for bad in ["http://x/s", "ftp://x", "image://rel", "file:///a/../b"] {
            assert!(resolve_scripts(r, Some(bad), src.path(), None).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_file() {
        let env = parse_environment("# c\n\nA=1\nB = x=y \n").unwrap();
        assert_eq!(env, vec![("A".into(), "1".into()), ("B".into(), " x=y".into())]);
        assert!(parse_environment("nope").unwrap_err().contains("line 1"));
        assert!(parse_environment("A-B=1").is_err());
    }

    #[test]
    fn ignore_and_copy() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("logs")).unwrap();
        std::fs::create_dir_all(s.join(".git")).unwrap();
        std::fs::create_dir_all(s.join("app")).unwrap();
        std::fs::write(s.join(".s2iignore"), "# c\nlogs/\n*.tmp\n/app/secret?.txt\n").unwrap();
        std::fs::write(s.join("logs/a"), "").unwrap();
        std::fs::write(s.join(".git/HEAD"), "").unwrap();
        std::fs::write(s.join("x.tmp"), "").unwrap();
        std::fs::write(s.join("app/x.tmp"), "").unwrap();
        std::fs::write(s.join("app/secret1.txt"), "").unwrap();
        std::fs::write(s.join("app/index.html"), "hi").unwrap();
        let dest = tempfile::tempdir().unwrap();
        let n = copy_source(s, &dest.path().join("src")).unwrap();
        let d = dest.path().join("src");
        assert!(d.join("app/index.html").is_file());
        assert!(d.join("app/x.tmp").is_file(), "* stays within one component");
        assert!(!d.join("x.tmp").exists());
        assert!(!d.join("logs").exists());
        assert!(!d.join(".git").exists());
        assert!(!d.join("app/secret1.txt").exists());
        assert_eq!(n, 3); // .s2iignore, app/x.tmp, app/index.html
    }

    #[test]
    fn users() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\ndefault:x:1001:0::/tmp:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(resolve_user(root.path(), "default"), Some((1001, 0)));
        assert_eq!(resolve_user(root.path(), "1001"), Some((1001, 0)));
        assert_eq!(resolve_user(root.path(), "1002"), Some((1002, 1002)));
        assert_eq!(resolve_user(root.path(), "5:6"), Some((5, 6)));
        assert_eq!(resolve_user(root.path(), "nobody-here"), None);
        assert_eq!(resolve_user(root.path(), ""), None);
    }

    #[test]
    fn labels() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            s2i: S2iArgs,
        }
        let mut args = Cli::parse_from(["t", "--builder-image", "b:1", "--output-image", "o:1"]).s2i;
        assert_eq!(
            image_labels(&args),
            BTreeMap::from([("io.openshift.s2i.build.image".to_owned(), "b:1".to_owned())])
        );
        args.commit = Some("abc".into());
        args.source_uri = Some("https://u:p@h/r.git".into());
        args.extras.labels = BTreeMap::from([("io.openshift.s2i.build.image".to_owned(), "x".to_owned())]);
        let l = image_labels(&args);
        assert_eq!(l["io.openshift.s2i.build.commit.id"], "abc");
        assert_eq!(
            l["io.openshift.s2i.build.source-location"],
            crate::source_url::mask_url("https://u:p@h/r.git")
        );
        assert!(!l["io.openshift.s2i.build.source-location"].contains("u:p"));
        assert_eq!(l["io.openshift.s2i.build.image"], "x", "the Build's labels win");
    }

    #[test]
    fn mount_escapes() {
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/plain\\"), "/plain\\");
    }
}
