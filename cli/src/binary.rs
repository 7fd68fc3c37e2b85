//! Binary builds: `slip start-build NAME --from-dir DIR | --from-file FILE | --from-archive FILE |
//! --from-repo DIR [--commit C]`, as `oc start-build` has them.
//!
//! The Build is created as the user (the API server decides whether they may create builds in
//! the project); its pod waits in its `receive` container, and the upload is streamed into that
//! container's standard input through the API server's `attach`, again as the user (their
//! `pods/attach` right in the project). Nothing is stored on the way: not in etcd, not in memory
//! beyond a few buffers (a directory or a repository is archived while it is sent). The stream is
//! framed (`slipway_crds::contract::binary`), so a cut-off upload fails the build as interrupted.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, Pod};
use kube::Client;
use kube::api::{Api, AttachParams, Patch, PatchParams};
use serde_json::json;
use slipway_client::{RECEIVE_CONTAINER, build_pod_name as pod_name};
use slipway_crds::Build;
use slipway_crds::build::{BinaryBuildSource, GitSourceRevision, SourceControlUser, SourceRevision};
use slipway_crds::contract::binary::FrameWriter;
use tokio::io::AsyncWriteExt;

use crate::cluster::api_error;

/// What to upload.
#[derive(Clone, Debug)]
pub enum Upload {
    /// A directory, archived (tar.gz) without what its `.gitignore` and `.s2iignore` files name
    /// and without `.git`.
    Dir(PathBuf),
    /// One file, stored in the source under its own name.
    File(PathBuf),
    /// A tar archive (plain or gzip-compressed), sent as it is and unpacked into the source.
    Archive(PathBuf),
    /// A git repository's commit (HEAD by default), archived as `git archive` does.
    Repo { dir: PathBuf, commit: Option<String> },
}

/// Writes the upload's bytes into a sink (run on a blocking thread).
pub type Producer = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

/// An upload checked before any Build is made.
pub struct Prepared {
    /// The Build's `source.binary`.
    pub binary: BinaryBuildSource,
    /// `--from-repo`: the commit archived (the Build's revision and image labels).
    pub revision: Option<SourceRevision>,
    /// What is sent, for the user.
    pub describe: String,
    pub producer: Producer,
}

impl Upload {
    /// Checks that the input exists and is what its flag says; nothing is read yet but what
    /// that takes.
    pub fn prepare(self) -> anyhow::Result<Prepared> {
        match self {
            Upload::Dir(dir) => {
                if !dir.is_dir() {
                    bail!("--from-dir {}: not a directory", dir.display());
                }
                Ok(Prepared {
                    binary: BinaryBuildSource::default(),
                    revision: None,
                    describe: format!("directory {}", dir.display()),
                    producer: Box::new(move |out| write_dir(&dir, out)),
                })
            }
            Upload::File(file) => {
                let meta =
                    std::fs::metadata(&file).with_context(|| format!("--from-file {}", file.display()))?;
                if !meta.is_file() {
                    bail!("--from-file {}: not a file", file.display());
                }
                let name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(String::from)
                    .with_context(|| {
                        format!("--from-file {}: the file's name is not UTF-8", file.display())
                    })?;
                slipway_crds::contract::check_file_name(&name)
                    .map_err(|e| anyhow::anyhow!("--from-file: {e}"))?;
                Ok(Prepared {
                    binary: BinaryBuildSource { as_file: Some(name) },
                    revision: None,
                    describe: format!("file {} ({} bytes)", file.display(), meta.len()),
                    producer: Box::new(move |out| copy_file(&file, out)),
                })
            }
            Upload::Archive(file) => {
                let kind = archive_kind(&file)?;
                Ok(Prepared {
                    binary: BinaryBuildSource::default(),
                    revision: None,
                    describe: format!("{kind} {}", file.display()),
                    producer: Box::new(move |out| copy_file(&file, out)),
                })
            }
            Upload::Repo { dir, commit } => prepare_repo(dir, commit.as_deref()),
        }
    }
}

/// `--from-repo`: the commit (HEAD by default) of the repository at `dir`, archived as it is
/// sent; its id, author and message label the image.
fn prepare_repo(dir: PathBuf, commit: Option<&str>) -> anyhow::Result<Prepared> {
    let repo = git2::Repository::open(&dir).map_err(|e| {
        anyhow::anyhow!(
            "--from-repo {}: not a git repository: {}",
            dir.display(),
            e.message()
        )
    })?;
    let spec = commit.unwrap_or("HEAD");
    let found = repo
        .revparse_single(spec)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            anyhow::anyhow!(
                "--from-repo {}: no commit {spec:?}: {}",
                dir.display(),
                e.message()
            )
        })?;
    let id = found.id();
    let revision = SourceRevision {
        type_: "Git".into(),
        git: Some(GitSourceRevision {
            commit: id.to_string(),
            author: Some(person(&found.author())),
            committer: Some(person(&found.committer())),
            message: found.message().unwrap_or("").chars().take(4096).collect(),
        }),
    };
    Ok(Prepared {
        binary: BinaryBuildSource::default(),
        revision: Some(revision),
        describe: format!("commit {} of {}", &id.to_string()[..8], dir.display()),
        producer: Box::new(move |out| write_repo(&dir, id, out)),
    })
}

fn person(sig: &git2::Signature<'_>) -> SourceControlUser {
    SourceControlUser {
        name: sig.name().unwrap_or("").into(),
        email: sig.email().unwrap_or("").into(),
    }
}

/// "tar archive" or "gzip-compressed tar archive"; an error for anything else.
fn archive_kind(file: &Path) -> anyhow::Result<&'static str> {
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(file).with_context(|| format!("--from-archive {}", file.display()))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            m => n += m,
        }
    }
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok("gzip-compressed tar archive");
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Ok("tar archive");
    }
    if head.starts_with(b"PK\x03\x04") {
        bail!(
            "--from-archive {}: a zip archive; send a tar or tar.gz archive (or the file itself with --from-file)",
            file.display()
        );
    }
    bail!(
        "--from-archive {}: not a tar or tar.gz archive; to send one file as it is, use --from-file",
        file.display()
    )
}

fn copy_file(file: &Path, out: &mut dyn Write) -> io::Result<()> {
    let mut f = std::fs::File::open(file)?;
    io::copy(&mut f, out)?;
    Ok(())
}

/// The tar.gz of `dir` as an upload: `.git` left out, `.gitignore` and `.s2iignore` obeyed
/// (each in the folder it is in, as git reads them; the user's global git settings are not).
pub fn write_dir(dir: &Path, out: &mut dyn Write) -> io::Result<()> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let walk = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .ignore(false)
        .parents(false)
        .git_global(false)
        .git_exclude(false)
        .git_ignore(true)
        .require_git(false)
        .add_custom_ignore_filename(".s2iignore")
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walk {
        let entry = entry.map_err(io::Error::other)?;
        if entry.depth() == 0 {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).map_err(io::Error::other)?;
        let Some(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            tar.append_dir(rel, entry.path())?;
        } else {
            // Files and symlinks (kept as links, not followed).
            tar.append_path_with_name(entry.path(), rel)?;
        }
    }
    tar.into_inner()?.finish()?;
    Ok(())
}

/// The tar.gz of commit `id` of the repository at `dir`, as `git archive` makes it (submodules
/// are not included, as there).
fn write_repo(dir: &Path, id: git2::Oid, out: &mut dyn Write) -> io::Result<()> {
    let repo = git2::Repository::open(dir).map_err(io::Error::other)?;
    let commit = repo.find_commit(id).map_err(io::Error::other)?;
    let tree = commit.tree().map_err(io::Error::other)?;
    let mtime = u64::try_from(commit.time().seconds()).unwrap_or(0);
    let mut entries = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        if let Ok(name) = entry.name() {
            entries.push((
                format!("{root}{name}"),
                entry.id(),
                entry.filemode(),
                entry.kind(),
            ));
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(io::Error::other)?;
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, oid, mode, kind) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        match (kind, mode) {
            (Some(git2::ObjectType::Tree), _) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), io::empty())?;
            }
            (Some(git2::ObjectType::Blob), 0o120000) => {
                let blob = repo.find_blob(oid).map_err(io::Error::other)?;
                let target = String::from_utf8_lossy(blob.content()).into_owned();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, &path, target)?;
            }
            (Some(git2::ObjectType::Blob), mode) => {
                let blob = repo.find_blob(oid).map_err(io::Error::other)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if mode == 0o100755 { 0o755 } else { 0o644 });
                header.set_size(blob.content().len() as u64);
                tar.append_data(&mut header, &path, blob.content())?;
            }
            // Submodules (commits) are left out, as `git archive` does.
            _ => {}
        }
    }
    tar.into_inner()?.finish()?;
    Ok(())
}

/// Collects writes into chunks for the async side.
struct ChunkSender {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.tx.blocking_send(chunk).map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "the connection to the build is gone")
            })?;
        }
        Ok(())
    }
}

/// How long the upload waits for the build pod's `receive` container to start.
const START_LIMIT: Duration = Duration::from_secs(600);

/// Where the build stands while its pod gets ready.
enum Ready {
    Receiving,
    Waiting(String),
}

async fn receive_state(builds: &Api<Build>, pods: &Api<Pod>, build: &str) -> anyhow::Result<Ready> {
    let b = builds.get(build).await.map_err(api_error)?;
    let status = b.status.unwrap_or_default();
    if status.phase.is_terminal() {
        bail!(
            "build {build} {} before its upload: {} {}",
            status.phase.as_str().to_lowercase(),
            status.reason.unwrap_or_default(),
            status.message.unwrap_or_default()
        );
    }
    let Some(pod) = pods.get_opt(&pod_name(build)).await.map_err(api_error)? else {
        return Ok(Ready::Waiting("its pod is not made yet".into()));
    };
    let state = receive_container(Some(pod));
    if state.running.is_some() {
        return Ok(Ready::Receiving);
    }
    if let Some(t) = state.terminated {
        let how = ended(&t).err().unwrap_or_else(|| "it succeeded".into());
        bail!("build {build}: its receive step ended before the upload: {how}");
    }
    let why = state
        .waiting
        .and_then(|w| w.reason)
        .unwrap_or_else(|| "its pod is starting".into());
    Ok(Ready::Waiting(why))
}

/// Streams the upload into build `build`'s `receive` container and waits for it to be taken.
/// Returns the bytes sent.
pub async fn upload(client: &Client, ns: &str, build: &str, producer: Producer) -> anyhow::Result<u64> {
    let builds: Api<Build> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    await_receiving(&builds, &pods, build).await?;
    let mut attached = attach(client, &pods, ns, build).await?;
    let mut stdin = attached.stdin().context("the attach has no standard input")?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let produce = tokio::task::spawn_blocking(move || -> io::Result<u64> {
        let mut framed = FrameWriter::new(ChunkSender {
            tx,
            buf: Vec::with_capacity(CHUNK),
        })?;
        producer(&mut framed)?;
        let total = framed.total();
        framed.finish()?;
        Ok(total)
    });
    // `receive` may stop taking the upload (too large, not an archive) while it is sent: it is
    // watched meanwhile, as a connection whose far end has gone may not say so at once.
    let watch = receive_outcome(&pods, build, START_LIMIT * 6, Duration::from_secs(1));
    tokio::pin!(watch);
    let send = async {
        while let Some(chunk) = rx.recv().await {
            stdin.write_all(&chunk).await?;
        }
        Ok::<(), io::Error>(())
    };
    let sent = tokio::select! {
        sent = send => sent,
        ended = &mut watch => {
            attached.abort();
            drop(rx);
            let _ = produce.await;
            match ended? {
                Some(Err(refusal)) => bail!("build {build} did not take the upload: {refusal}"),
                _ => bail!("build {build}'s receive step ended before the upload did"),
            }
        }
    };
    drop(rx);
    let produced = produce.await.context("the upload's reader stopped")?;
    let total = match (produced, sent) {
        (Ok(total), Ok(())) => total,
        (Err(e), _) => {
            // The stream is left without its end: the build fails as interrupted.
            attached.abort();
            bail!(
                "reading the upload failed after part of it was sent: {e}; build {build} fails as interrupted"
            );
        }
        (_, Err(e)) => {
            // `receive` stopped taking it (too large, not an archive): its reason says why.
            attached.abort();
            if let Some(refusal) =
                receive_outcome(&pods, build, Duration::from_secs(30), Duration::from_millis(200))
                    .await?
                    .and_then(Result::err)
            {
                bail!("build {build} did not take the upload: {refusal}");
            }
            bail!("sending the upload to build {build} failed: {e}");
        }
    };
    // The end of the input; the connection ends when `receive` has taken everything.
    stdin.shutdown().await.ok();
    drop(stdin);
    // Ended by the API server when `receive` exits; how it ended is read from the pod below.
    let _ = tokio::time::timeout(Duration::from_secs(60), attached.join()).await;
    match receive_outcome(&pods, build, Duration::from_secs(60), Duration::from_millis(200)).await? {
        Some(Ok(())) => Ok(total),
        Some(Err(refusal)) => bail!("build {build} did not take the upload: {refusal}"),
        None => bail!(
            "build {build}: the upload was sent ({total} bytes) but its receive step has not finished after a minute"
        ),
    }
}

/// Waits until the build's `receive` step runs and waits for its upload.
async fn await_receiving(builds: &Api<Build>, pods: &Api<Pod>, build: &str) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        match receive_state(builds, pods, build).await? {
            Ready::Receiving => return Ok(()),
            Ready::Waiting(why) if started.elapsed() > START_LIMIT => {
                bail!("build {build} did not become ready for its upload in {START_LIMIT:?}: {why}")
            }
            Ready::Waiting(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Attaches to the stdin of the build's `receive` step, as the user; a refusal cancels the build
/// (nothing was sent: it would only wait for an upload that never comes).
async fn attach(
    client: &Client,
    pods: &Api<Pod>,
    ns: &str,
    build: &str,
) -> anyhow::Result<kube::api::AttachedProcess> {
    let params = AttachParams {
        container: Some(RECEIVE_CONTAINER.into()),
        stdin: true,
        stdout: false,
        stderr: false,
        tty: false,
        max_stdin_buf_size: Some(CHUNK),
        ..AttachParams::default()
    };
    match pods.attach(&pod_name(build), &params).await {
        Ok(a) => Ok(a),
        Err(e) => {
            cancel(client, ns, build).await;
            Err(match e {
                kube::Error::Api(ref s) if s.code == 403 => anyhow::anyhow!(
                    "you may create builds in {ns} but not attach to its pods (pods/attach), which a binary build needs to stream its upload; build {build} is cancelled: {}",
                    s.message
                ),
                other => api_error(other).context(format!(
                    "attaching to build {build}'s receive step (the build is cancelled)"
                )),
            })
        }
    }
}

/// How `receive` ended (`Err`: its reason and message), or `None` when it has not within `wait`;
/// asked `every` so often.
async fn receive_outcome(
    pods: &Api<Pod>,
    build: &str,
    wait: Duration,
    every: Duration,
) -> anyhow::Result<Option<Result<(), String>>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let pod = pods.get_opt(&pod_name(build)).await.map_err(api_error)?;
        if let Some(t) = receive_container(pod).terminated {
            return Ok(Some(ended(&t)));
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(every).await;
    }
}

/// The state of a build pod's `receive` container (empty while there is none).
fn receive_container(pod: Option<Pod>) -> ContainerState {
    pod.and_then(|p| p.status)
        .and_then(|s| s.init_container_statuses)
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.name == RECEIVE_CONTAINER)
        .and_then(|s| s.state)
        .unwrap_or_default()
}

/// How a `receive` that ended went: Ok, or its reason and message (from the stage result it
/// wrote as its termination message).
fn ended(t: &ContainerStateTerminated) -> Result<(), String> {
    if t.exit_code == 0 {
        return Ok(());
    }
    let text = t.message.as_deref().unwrap_or_default();
    Err(
        match serde_json::from_str::<slipway_crds::contract::result::StageResult>(text.trim()) {
            Ok(r) => format!(
                "{}: {}",
                r.reason.map_or("GenericBuildFailed", |r| r.as_str()),
                r.message.unwrap_or_default()
            ),
            Err(_) => format!("GenericBuildFailed: exit code {}: {text}", t.exit_code),
        },
    )
}

/// Marks `build` cancelled (an upload that could not start leaves no build waiting for it).
pub async fn cancel(client: &Client, ns: &str, build: &str) {
    let builds: Api<Build> = Api::namespaced(client.clone(), ns);
    let patch = Patch::Merge(json!({"status": {"cancelled": true}}));
    let _ = builds.patch_status(build, &PatchParams::default(), &patch).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(archive: &[u8]) -> Vec<String> {
        let gz = flate2::read::GzDecoder::new(archive);
        let mut a = tar::Archive::new(gz);
        let mut v: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_directory_is_sent_without_git_and_what_its_ignore_files_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join(".git/objects")).unwrap();
        std::fs::write(p.join(".git/HEAD"), "x").unwrap();
        std::fs::create_dir_all(p.join("app/node_modules")).unwrap();
        std::fs::write(p.join("app/node_modules/big.js"), "x").unwrap();
        std::fs::write(p.join("app/index.js"), "x").unwrap();
        std::fs::write(p.join("app/.gitignore"), "node_modules/\n").unwrap();
        std::fs::write(p.join(".s2iignore"), "secret.txt\n*.log\n").unwrap();
        std::fs::write(p.join("secret.txt"), "s").unwrap();
        std::fs::write(p.join("build.log"), "l").unwrap();
        std::fs::write(p.join("kept.txt"), "k").unwrap();
        std::os::unix::fs::symlink("kept.txt", p.join("link")).unwrap();
        let mut out = Vec::new();
        write_dir(p, &mut out).unwrap();
        assert_eq!(
            names(&out),
            [
                ".s2iignore",
                "app",
                "app/.gitignore",
                "app/index.js",
                "kept.txt",
                "link"
            ]
        );
    }

    #[test]
    fn a_repository_commit_is_archived_as_committed() {
        let d = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(d.path()).unwrap();
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/a.txt"), "committed").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("src/a.txt")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("Ada", "ada@example.com").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "first", &tree, &[])
            .unwrap();
        // Not committed: not sent.
        std::fs::write(d.path().join("src/a.txt"), "changed").unwrap();
        std::fs::write(d.path().join("untracked"), "u").unwrap();
        let prepared = Upload::Repo {
            dir: d.path().into(),
            commit: None,
        }
        .prepare()
        .unwrap();
        let git = prepared.revision.clone().unwrap().git.unwrap();
        assert_eq!(git.message, "first");
        assert_eq!(git.author.unwrap().email, "ada@example.com");
        let mut out = Vec::new();
        (prepared.producer)(&mut out).unwrap();
        assert_eq!(names(&out), ["src", "src/a.txt"]);
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&out[..]));
        let mut content = String::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().ends_with("a.txt") {
                e.read_to_string(&mut content).unwrap();
            }
        }
        assert_eq!(content, "committed");
        let err = Upload::Repo {
            dir: d.path().into(),
            commit: Some("0123456789abcdef".into()),
        }
        .prepare()
        .err()
        .unwrap();
        assert!(err.to_string().contains("no commit"), "{err}");
    }

    #[test]
    fn how_receive_ended_is_told_by_its_result() {
        let done = |code: i32, message: &str| ContainerStateTerminated {
            exit_code: code,
            message: Some(message.into()),
            ..Default::default()
        };
        assert_eq!(ended(&done(0, "")), Ok(()));
        let refused =
            r#"{"stage":"receive","success":false,"reason":"BinaryInputTooLarge","message":"too big"}"#;
        assert_eq!(
            ended(&done(1, refused)),
            Err("BinaryInputTooLarge: too big".into())
        );
        assert_eq!(
            ended(&done(137, "killed")),
            Err("GenericBuildFailed: exit code 137: killed".into())
        );
        let pod: Pod = serde_json::from_value(json!({"status": {"initContainerStatuses": [
            {"name": "receive", "image": "", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"running": {}}}]}}))
        .unwrap();
        assert!(receive_container(Some(pod)).running.is_some());
        assert_eq!(receive_container(None), ContainerState::default());
    }

    #[test]
    fn inputs_are_checked_before_any_build() {
        let d = tempfile::tempdir().unwrap();
        let junk = d.path().join("junk.tgz");
        std::fs::write(&junk, vec![b'x'; 600]).unwrap();
        let e = Upload::Archive(junk).prepare().err().unwrap();
        assert!(e.to_string().contains("not a tar or tar.gz archive"), "{e}");
        let zip = d.path().join("a.zip");
        std::fs::write(&zip, b"PK\x03\x04....").unwrap();
        assert!(
            Upload::Archive(zip)
                .prepare()
                .err()
                .unwrap()
                .to_string()
                .contains("zip")
        );
        let e = Upload::Dir(d.path().join("none")).prepare().err().unwrap();
        assert!(e.to_string().contains("not a directory"), "{e}");
        let e = Upload::File(d.path().into()).prepare().err().unwrap();
        assert!(e.to_string().contains("not a file"), "{e}");
        let f = d.path().join("app.jar");
        std::fs::write(&f, b"jar").unwrap();
        let p = Upload::File(f).prepare().unwrap();
        assert_eq!(p.binary.as_file.as_deref(), Some("app.jar"));
    }
}
