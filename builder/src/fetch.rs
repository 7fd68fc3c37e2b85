//! `fetch`: clone the build's source at its ref into the workspace, check the context directory,
//! and report the commit.

use std::cell::Cell;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, Direction, ErrorCode, FetchOptions, Oid,
    RemoteCallbacks, Repository, SubmoduleUpdateOptions,
};

use crate::known_hosts;
use crate::progress::{Progress, format_duration};
use crate::result::{FailureReason, MAX_COMMIT_MESSAGE_BYTES, Person, StageResult, truncated, write_result};
use crate::source_url::{SourceUrl, mask_url};

const STAGE: &str = "fetch";

/// How deep submodules of submodules are followed.
const MAX_SUBMODULE_DEPTH: usize = 8;

/// How often the credentials callback may be asked within one connection before the
/// credentials are taken as rejected (libgit2 asks again after every 401 or failed ssh auth).
const MAX_CREDENTIAL_ATTEMPTS: u32 = 3;

/// The user name sent with a token that comes without one.
const TOKEN_USERNAME: &str = "slipway";

/// Command-line flags of `fetch`; each can come from the environment of the build pod.
#[derive(clap::Args, Debug, Clone)]
pub struct FetchArgs {
    /// The git repository: https://, http://, ssh://, user@host:path, file:// or a path.
    #[arg(long, env = "SOURCE_URI")]
    pub uri: String,
    /// Branch, tag, or (abbreviated) commit id; empty for the remote's default branch.
    #[arg(long = "ref", env = "SOURCE_REF", default_value = "")]
    pub git_ref: String,
    /// The subdirectory of the repository that holds the application.
    #[arg(long, env = "SOURCE_CONTEXT_DIR", default_value = "")]
    pub context_dir: String,
    /// The directory to clone into (must be empty or absent).
    #[arg(long, env = "SOURCE_DEST", default_value = "/workspace/source")]
    pub dest: PathBuf,
    /// A mounted source secret: `username`+`password`, `password` or `token` alone, or
    /// `ssh-privatekey` with optionally `known_hosts`.
    #[arg(long, env = "SOURCE_SECRET_DIR")]
    pub secret_dir: Option<PathBuf>,
    /// Accept ssh host keys that are not in known_hosts (a changed key is still refused).
    #[arg(long, env = "SOURCE_ALLOW_UNKNOWN_HOSTS")]
    pub allow_unknown_hosts: bool,
    /// Where the JSON result goes.
    #[arg(long, env = "RESULT_FILE", default_value = "/dev/termination-log")]
    pub result_file: PathBuf,
    /// A second copy of the result, for the build container (its image labels).
    #[arg(long, env = "FETCH_RECORD")]
    pub record: Option<PathBuf>,
}

/// Why fetching failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    pub reason: FailureReason,
    pub message: String,
}

impl FetchError {
    fn source(message: impl Into<String>) -> Self {
        Self {
            reason: FailureReason::FetchSourceFailed,
            message: message.into(),
        }
    }
    fn context(message: impl Into<String>) -> Self {
        Self {
            reason: FailureReason::InvalidContextDirectory,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for FetchError {}

fn git_err(what: &str) -> impl Fn(git2::Error) -> FetchError + '_ {
    move |e| FetchError::source(format!("{what}: {}", e.message()))
}

/// What was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedSource {
    pub commit: String,
    pub author: Person,
    pub committer: Person,
    /// The commit message, at most 4 KiB.
    pub message: String,
    /// The committer's date (RFC 3339, UTC).
    pub date: String,
    /// The context directory inside the clone.
    pub context_path: PathBuf,
}

/// The contents of a mounted source secret.
#[derive(Default, Clone)]
pub struct SourceSecret {
    pub username: Option<String>,
    /// `password`, or `token` when there is no `password`.
    pub password: Option<String>,
    pub ssh_private_key: Option<String>,
    pub known_hosts: Option<String>,
}

impl std::fmt::Debug for SourceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSecret")
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("ssh_private_key", &self.ssh_private_key.as_ref().map(|_| "<set>"))
            .field("known_hosts", &self.known_hosts.is_some())
            .finish()
    }
}

impl SourceSecret {
    /// Reads the keys of a mounted secret; absent keys stay `None`.
    pub fn read(dir: &Path) -> Result<Self, FetchError> {
        if !dir.is_dir() {
            return Err(FetchError::source(format!(
                "source secret directory {} does not exist",
                dir.display()
            )));
        }
        let read = |name: &str| -> Result<Option<String>, FetchError> {
            match std::fs::read(dir.join(name)) {
                Ok(bytes) => {
                    let text = String::from_utf8(bytes).map_err(|_| {
                        FetchError::source(format!("source secret key {name} is not UTF-8 text"))
                    })?;
                    // Secrets made with `echo` end in a newline that is not part of the value.
                    let value = text.trim_end_matches(['\n', '\r']).to_owned();
                    Ok((!value.is_empty()).then_some(value))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(FetchError::source(format!(
                    "cannot read source secret key {name}: {}",
                    e.kind()
                ))),
            }
        };
        let password = match read("password")? {
            Some(p) => Some(p),
            None => read("token")?,
        };
        Ok(Self {
            username: read("username")?,
            password,
            ssh_private_key: read("ssh-privatekey")?.map(|k| format!("{k}\n")),
            known_hosts: read("known_hosts")?,
        })
    }
}

/// Runs the `fetch` subcommand: fetches, prints progress, writes the result. Returns the exit code.
pub fn run(args: &FetchArgs) -> u8 {
    let progress = Progress::new(STAGE);
    let started = Instant::now();
    let outcome = fetch(args, &progress);
    let elapsed = started.elapsed();
    let result = match &outcome {
        Ok(src) => {
            let first_line = src.message.lines().next().unwrap_or("");
            progress.line(format!(
                "done in {}: {} \"{}\"",
                format_duration(elapsed),
                &src.commit[..src.commit.len().min(7)],
                truncated(first_line, 200)
            ));
            let mut r = StageResult::success(STAGE);
            r.commit = Some(src.commit.clone());
            r.author = Some(src.author.clone());
            r.committer = Some(src.committer.clone());
            r.message = Some(src.message.clone());
            r.commit_date = Some(src.date.clone());
            r.durations.insert(
                STAGE.to_owned(),
                elapsed.as_millis().try_into().unwrap_or(u64::MAX),
            );
            r
        }
        Err(e) => {
            let message = progress.redact(&e.message);
            progress.line(format!("failed after {}: {message}", format_duration(elapsed)));
            let mut r = StageResult::failure(STAGE, e.reason, &message, progress.tail());
            r.durations.insert(
                STAGE.to_owned(),
                elapsed.as_millis().try_into().unwrap_or(u64::MAX),
            );
            r
        }
    };
    for path in std::iter::once(&args.result_file).chain(&args.record) {
        if let Err(e) = write_result(path, &result) {
            eprintln!(
                "slipway-builder fetch: cannot write the result to {}: {e}",
                path.display()
            );
            return 2;
        }
    }
    if outcome.is_ok() { 0 } else { 1 }
}

/// What the callbacks of every connection need.
struct Ctx<'a> {
    url: SourceUrl,
    secret: SourceSecret,
    /// Basic-auth credentials for http(s): from the secret, else from the URL.
    userpass: Option<(String, String)>,
    allow_unknown_hosts: bool,
    progress: &'a Progress,
    /// Why the ssh server's host key was refused, when it was: libgit2 reports only "invalid or
    /// unknown remote ssh hostkey", so the reason is kept here for the error the user sees.
    host_key_refusal: std::cell::RefCell<Option<String>>,
}

impl<'a> Ctx<'a> {
    /// Parses the URL and reads the source secret; `progress` learns every secret of both.
    fn new(args: &FetchArgs, progress: &'a Progress) -> Result<Self, FetchError> {
        // Parse errors mask the URL's credentials themselves; after parsing, every log line does.
        let url = SourceUrl::parse(&args.uri).map_err(FetchError::source)?;
        if let Some(p) = &url.password {
            progress.add_secret(p);
        }
        if let (Some(u), None) = (&url.username, &url.password) {
            progress.add_secret(u); // a token given as the user name
        }
        let secret = match args.secret_dir.as_deref().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => SourceSecret::read(dir)?,
            None => SourceSecret::default(),
        };
        for s in [&secret.password, &secret.ssh_private_key].into_iter().flatten() {
            progress.add_secret(s);
        }
        let userpass = basic_auth(&secret, &url);
        Ok(Self {
            url,
            secret,
            userpass,
            allow_unknown_hosts: args.allow_unknown_hosts,
            progress,
            host_key_refusal: std::cell::RefCell::new(None),
        })
    }
}

/// Basic-auth credentials for http(s): the secret's password or token (with its user name, else
/// [`TOKEN_USERNAME`]); a secret with only a user name gives none; without a secret, the URL's.
fn basic_auth(secret: &SourceSecret, url: &SourceUrl) -> Option<(String, String)> {
    match (&secret.username, &secret.password) {
        (u, Some(p)) => Some((u.clone().unwrap_or_else(|| TOKEN_USERNAME.to_owned()), p.clone())),
        (Some(_), None) => None,
        (None, None) => url
            .username
            .clone()
            .map(|u| (u, url.password.clone().unwrap_or_default())),
    }
}

/// How the log names the requested ref: itself, or "the default branch" when empty.
fn describe_ref(requested: &str) -> &str {
    if requested.is_empty() {
        "the default branch"
    } else {
        requested
    }
}

/// Fetches the source as `args` says. Progress goes to `progress`, which also learns every secret.
///
/// The steps: list the remote's refs → resolve the ref → fetch it → check it out → submodules →
/// the context directory.
pub fn fetch(args: &FetchArgs, progress: &Progress) -> Result<FetchedSource, FetchError> {
    let ctx = Ctx::new(args, progress)?;
    let requested = args.git_ref.trim();
    progress.line(format!(
        "cloning {} at {}",
        mask_url(&args.uri),
        describe_ref(requested)
    ));

    prepare_dest(&args.dest)?;
    let repo = Repository::init(&args.dest).map_err(git_err("cannot create the repository"))?;
    let mut remote = repo
        .remote("origin", &ctx.url.clean)
        .map_err(git_err("invalid source URL"))?;

    // List the remote's refs to learn what the ref is.
    let started = Instant::now();
    let advertised = list_refs(&mut remote, &ctx)?;
    let target = resolve_ref(requested, &advertised.refs, advertised.default_branch.as_deref())?;
    progress.line(format!("{} is {}", describe_ref(requested), target));

    let local_ref = fetch_target(&mut remote, &ctx, &target, started)?;
    drop(remote);

    let commit = find_commit(&repo, &target, local_ref.as_deref())?;
    check_out(&repo, &target, &commit)?;
    update_submodules(&repo, &ctx, &ctx.url.clean, 0)?;

    let context_path = resolve_context_dir(&args.dest, &args.context_dir)?;
    if !args.context_dir.trim().is_empty() {
        progress.line(format!("context directory {} is there", args.context_dir.trim()));
    }
    Ok(fetched_source(&commit, context_path))
}

/// What a remote advertises.
struct Advertised {
    /// Every ref, by full name.
    refs: Vec<(String, Oid)>,
    /// The ref HEAD points at (`refs/heads/main`), when the remote says.
    default_branch: Option<String>,
}

/// Connects and lists the remote's refs and default branch.
fn list_refs(remote: &mut git2::Remote<'_>, ctx: &Ctx<'_>) -> Result<Advertised, FetchError> {
    let conn = remote
        .connect_auth(Direction::Fetch, Some(callbacks(ctx, &ctx.url)), None)
        .map_err(|e| match ctx.host_key_refusal.borrow().clone() {
            Some(why) => FetchError::source(format!("cannot reach the repository: {why}")),
            None => git_err("cannot reach the repository")(e),
        })?;
    let heads = conn
        .list()
        .map_err(git_err("cannot list the repository's refs"))?;
    let refs: Vec<(String, Oid)> = heads.iter().map(|h| (h.name().to_owned(), h.oid())).collect();
    let default_branch = conn
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_owned));
    Ok(Advertised { refs, default_branch })
}

/// Fetches `target` (shallow when the transport can and it is not a commit id, else in full);
/// the local ref that then holds it. `started` is when listing the refs began.
fn fetch_target(
    remote: &mut git2::Remote<'_>,
    ctx: &Ctx<'_>,
    target: &Target,
    started: Instant,
) -> Result<Option<String>, FetchError> {
    let (refspecs, local_ref) = target.refspecs();
    let shallow = ctx.url.supports_shallow() && !matches!(target, Target::Commit(_));
    let fetch_with = |remote: &mut git2::Remote<'_>, depth: i32| {
        let mut opts = fetch_options(ctx, &ctx.url);
        opts.depth(depth);
        remote.fetch(&refspecs, Some(&mut opts), None)
    };
    let fetched = match fetch_with(remote, if shallow { 1 } else { 0 }) {
        Err(e) if shallow && e.message().contains("shallow") => {
            ctx.progress
                .line("the server cannot fetch shallow; fetching the full history");
            fetch_with(remote, 0)
        }
        other => other,
    };
    fetched.map_err(git_err("cannot fetch"))?;
    let stats = remote.stats();
    ctx.progress.line(format!(
        "fetched {} objects ({} KiB{}) in {}",
        stats.received_objects(),
        stats.received_bytes() / 1024,
        if shallow { ", shallow" } else { "" },
        format_duration(started.elapsed())
    ));
    Ok(local_ref)
}

/// The fetched commit: what `local_ref` points at, or the commit id looked up.
fn find_commit<'r>(
    repo: &'r Repository,
    target: &Target,
    local_ref: Option<&str>,
) -> Result<git2::Commit<'r>, FetchError> {
    match local_ref {
        Some(name) => repo
            .find_reference(name)
            .and_then(|r| r.peel_to_commit())
            .map_err(git_err(&format!("{target} is not a commit"))),
        None => {
            let Target::Commit(id) = target else {
                return Err(FetchError::source(format!("{target} was not fetched")));
            };
            repo.revparse_single(id)
                .and_then(|o| o.peel_to_commit())
                .map_err(|e| match e.code() {
                    ErrorCode::Ambiguous => FetchError::source(format!("commit id {id} is ambiguous")),
                    _ => FetchError::source(format!("commit {id} not found in the repository")),
                })
        }
    }
}

/// Points HEAD at `commit` (on a local branch tracking origin's when the target is a branch,
/// detached otherwise) and checks it out.
fn check_out(repo: &Repository, target: &Target, commit: &git2::Commit<'_>) -> Result<(), FetchError> {
    if let Target::Branch(name) = target {
        let mut branch = repo
            .branch(name, commit, true)
            .map_err(git_err("cannot create the branch"))?;
        let _ = branch.set_upstream(Some(&format!("origin/{name}")));
        repo.set_head(&format!("refs/heads/{name}"))
            .map_err(git_err("cannot set HEAD"))?;
    } else {
        repo.set_head_detached(commit.id())
            .map_err(git_err("cannot set HEAD"))?;
    }
    repo.checkout_head(Some(CheckoutBuilder::new().force()))
        .map_err(git_err("cannot check out the source"))
}

/// What the result says about `commit`.
fn fetched_source(commit: &git2::Commit<'_>, context_path: PathBuf) -> FetchedSource {
    let person = |s: git2::Signature<'_>| Person {
        name: String::from_utf8_lossy(s.name_bytes()).into_owned(),
        email: String::from_utf8_lossy(s.email_bytes()).into_owned(),
    };
    let message = String::from_utf8_lossy(commit.message_bytes());
    FetchedSource {
        commit: commit.id().to_string(),
        author: person(commit.author()),
        committer: person(commit.committer()),
        message: truncated(message.trim_end(), MAX_COMMIT_MESSAGE_BYTES),
        date: crate::image::rfc3339(u64::try_from(commit.time().seconds()).unwrap_or(0)),
        context_path,
    }
}

/// The destination must be absent or an empty directory.
fn prepare_dest(dest: &Path) -> Result<(), FetchError> {
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(FetchError::source(format!(
                    "destination {} is not empty",
                    dest.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dest)
            .map_err(|e| FetchError::source(format!("cannot create {}: {e}", dest.display()))),
        Err(e) => Err(FetchError::source(format!(
            "cannot use destination {}: {e}",
            dest.display()
        ))),
    }
}

/// What a requested ref turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Branch(String),
    Tag(String),
    /// Another advertised ref, by full name (`refs/pull/1/head`).
    Ref(String),
    /// A full or abbreviated commit id.
    Commit(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Branch(b) => write!(f, "branch {b}"),
            Self::Tag(t) => write!(f, "tag {t}"),
            Self::Ref(r) => write!(f, "ref {r}"),
            Self::Commit(c) => write!(f, "commit {c}"),
        }
    }
}

impl Target {
    /// The refspecs to fetch and the local ref that then holds the target (`None` for a commit,
    /// which is looked up after fetching every branch and tag).
    fn refspecs(&self) -> (Vec<String>, Option<String>) {
        match self {
            Self::Branch(b) => (
                vec![format!("+refs/heads/{b}:refs/remotes/origin/{b}")],
                Some(format!("refs/remotes/origin/{b}")),
            ),
            Self::Tag(t) => (
                vec![format!("+refs/tags/{t}:refs/tags/{t}")],
                Some(format!("refs/tags/{t}")),
            ),
            Self::Ref(r) => (
                vec![format!("+{r}:refs/slipway/source")],
                Some("refs/slipway/source".to_owned()),
            ),
            Self::Commit(_) => (
                vec![
                    "+refs/heads/*:refs/remotes/origin/*".to_owned(),
                    "+refs/tags/*:refs/tags/*".to_owned(),
                ],
                None,
            ),
        }
    }
}

/// Decides what `requested` names among the remote's refs. Branches win over tags, tags over
/// commit ids; an empty ref is the remote's default branch.
pub fn resolve_ref(
    requested: &str,
    advertised: &[(String, Oid)],
    default_branch: Option<&str>,
) -> Result<Target, FetchError> {
    let has = |name: &str| advertised.iter().any(|(n, _)| n == name);
    if requested.is_empty() {
        return match default_branch.and_then(|b| b.strip_prefix("refs/heads/")) {
            Some(b) => Ok(Target::Branch(b.to_owned())),
            None if advertised.is_empty() => Err(FetchError::source("the repository is empty")),
            None => Err(FetchError::source(
                "the repository has no default branch; give a ref",
            )),
        };
    }
    let short = requested
        .strip_prefix("refs/heads/")
        .or_else(|| requested.strip_prefix("refs/tags/"));
    if let Some(b) = requested.strip_prefix("refs/heads/").filter(|_| has(requested)) {
        return Ok(Target::Branch(b.to_owned()));
    }
    if let Some(t) = requested.strip_prefix("refs/tags/").filter(|_| has(requested)) {
        return Ok(Target::Tag(t.to_owned()));
    }
    if short.is_none() {
        if has(&format!("refs/heads/{requested}")) {
            return Ok(Target::Branch(requested.to_owned()));
        }
        if has(&format!("refs/tags/{requested}")) {
            return Ok(Target::Tag(requested.to_owned()));
        }
        if requested.starts_with("refs/") && has(requested) {
            return Ok(Target::Ref(requested.to_owned()));
        }
        if (4..=40).contains(&requested.len()) && requested.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(Target::Commit(requested.to_ascii_lowercase()));
        }
    }
    Err(FetchError::source(format!(
        "ref {requested:?} not found in the repository (no such branch, tag or commit)"
    )))
}

fn fetch_options<'a>(ctx: &'a Ctx<'a>, url: &SourceUrl) -> FetchOptions<'a> {
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks(ctx, url));
    opts.download_tags(AutotagOption::None);
    opts
}

/// Credentials and host key checks for one connection to `url`.
fn callbacks<'a>(ctx: &'a Ctx<'a>, url: &SourceUrl) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    let attempts = Cell::new(0u32);
    let port = url.port.unwrap_or(22);
    cb.credentials(move |req_url, username_from_url, allowed| {
        attempts.set(attempts.get() + 1);
        credentials(ctx, attempts.get(), req_url, username_from_url, allowed)
    });
    cb.certificate_check(move |cert, hostname| check_certificate(ctx, port, cert, hostname));
    cb
}

/// The credentials for the `attempt`th request of one connection: the secret's (or URL's) user
/// and password, or its ssh key, only to the source's own host; else why there are none.
fn credentials(
    ctx: &Ctx<'_>,
    attempt: u32,
    req_url: &str,
    username_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    let host = SourceUrl::parse(req_url).ok().and_then(|u| u.host);
    let same_host = host.is_none() || host == ctx.url.host;
    if attempt > MAX_CREDENTIAL_ATTEMPTS {
        return Err(git2::Error::from_str(
            "authentication failed: the credentials were rejected",
        ));
    }
    let user = username_from_url.unwrap_or("git");
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
        && same_host
        && let Some((u, p)) = &ctx.userpass
    {
        if attempt > 1 {
            return Err(git2::Error::from_str(
                "authentication failed: the credentials were rejected",
            ));
        }
        return Cred::userpass_plaintext(u, p);
    }
    if allowed.contains(CredentialType::SSH_KEY)
        && same_host
        && let Some(key) = &ctx.secret.ssh_private_key
    {
        return Cred::ssh_key_from_memory(user, None, key, None)
            .map_err(|e| git2::Error::from_str(&format!("cannot use the ssh private key: {}", e.message())));
    }
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(user);
    }
    Err(git2::Error::from_str(&missing_credentials(ctx, same_host, host)))
}

/// Why no credentials can be given: another host asks, the build has none, or not of the kind
/// asked for.
fn missing_credentials(ctx: &Ctx<'_>, same_host: bool, host: Option<String>) -> String {
    if !same_host {
        format!(
            "authentication required by {}: the source secret is only sent to {}",
            host.unwrap_or_default(),
            ctx.url.host.clone().unwrap_or_default()
        )
    } else if ctx.userpass.is_none() && ctx.secret.ssh_private_key.is_none() {
        "authentication required: the build has no source secret with credentials".to_owned()
    } else {
        "authentication required, but the source secret has no credentials of the kind the server \
         asks for"
            .to_owned()
    }
}

/// TLS certificates are left to libgit2; an ssh host key is checked against the secret's
/// `known_hosts` (an unknown one accepted, with a warning, only when allowed).
fn check_certificate(
    ctx: &Ctx<'_>,
    port: u16,
    cert: &git2::cert::Cert<'_>,
    hostname: &str,
) -> Result<CertificateCheckStatus, git2::Error> {
    let Some(hostkey) = cert.as_hostkey() else {
        // TLS: let libgit2 verify the chain against the system's CAs.
        return Ok(CertificateCheckStatus::CertificatePassthrough);
    };
    let Some(raw) = hostkey.hostkey() else {
        return Err(git2::Error::from_str(
            "the ssh server's host key could not be read",
        ));
    };
    let known = ctx.secret.known_hosts.as_deref().unwrap_or("");
    let status = known_hosts::check_host_key(known, hostname, port, raw);
    match known_hosts::decide(status, hostname, ctx.allow_unknown_hosts) {
        Ok(false) => Ok(CertificateCheckStatus::CertificateOk),
        Ok(true) => {
            let fp = hostkey
                .hash_sha256()
                .map(|h| known_hosts::base64_encode(h))
                .unwrap_or_default();
            ctx.progress.line(format!(
                "warning: accepting the unknown host key SHA256:{} of {hostname}",
                fp.trim_end_matches('=')
            ));
            Ok(CertificateCheckStatus::CertificateOk)
        }
        Err(msg) => {
            *ctx.host_key_refusal.borrow_mut() = Some(msg.clone());
            Err(git2::Error::from_str(&msg))
        }
    }
}

/// Initialises, clones and checks out every submodule, recursively.
fn update_submodules(
    repo: &Repository,
    ctx: &Ctx<'_>,
    base_url: &str,
    depth: usize,
) -> Result<(), FetchError> {
    let submodules = repo.submodules().map_err(git_err("cannot read .gitmodules"))?;
    if submodules.is_empty() {
        return Ok(());
    }
    if depth >= MAX_SUBMODULE_DEPTH {
        return Err(FetchError::source("submodules are nested too deeply"));
    }
    for mut sm in submodules {
        let path = sm.path().display().to_string();
        let started = Instant::now();
        let name = sm.name().unwrap_or_default().to_owned();
        let declared = sm.url().ok().flatten().unwrap_or_default().to_owned();
        sm.init(false)
            .map_err(git_err(&format!("cannot initialise submodule {path}")))?;
        let sm_url = configure_submodule_url(repo, &name, &path, declared, base_url)?;
        let mut sm = repo
            .find_submodule(&name)
            .map_err(git_err(&format!("cannot find submodule {path}")))?;
        let parsed = SourceUrl::parse(&sm_url).map_err(FetchError::source)?;
        let mut opts = SubmoduleUpdateOptions::new();
        opts.fetch(fetch_options(ctx, &parsed));
        opts.allow_fetch(true);
        sm.update(true, Some(&mut opts)).map_err(git_err(&format!(
            "cannot fetch submodule {path} from {}",
            mask_url(&sm_url)
        )))?;
        let sub = sm
            .open()
            .map_err(git_err(&format!("cannot open submodule {path}")))?;
        let id = sm
            .workdir_id()
            .or_else(|| sm.index_id())
            .map(|o| o.to_string())
            .unwrap_or_default();
        ctx.progress.line(format!(
            "submodule {path}: {} from {} in {}",
            &id[..id.len().min(7)],
            mask_url(&sm_url),
            format_duration(started.elapsed())
        ));
        update_submodules(&sub, ctx, &sm_url, depth + 1)?;
    }
    Ok(())
}

/// The URL submodule `name` is fetched from. Relative URLs are resolved here, against where the
/// parent came from, and written to the config: libgit2 drops a slash of file:/// URLs when it
/// does it.
fn configure_submodule_url(
    repo: &Repository,
    name: &str,
    path: &str,
    declared: String,
    base_url: &str,
) -> Result<String, FetchError> {
    if !(declared.starts_with("./") || declared.starts_with("../")) {
        return Ok(declared);
    }
    let resolved = resolve_relative_url(base_url, &declared);
    let mut config = repo
        .config()
        .map_err(git_err("cannot open the repository's config"))?;
    config
        .set_str(&format!("submodule.{name}.url"), &resolved)
        .map_err(git_err(&format!("cannot configure submodule {path}")))?;
    Ok(resolved)
}

/// A relative submodule URL (`../lib`, `./x`) resolved against the URL its parent was fetched
/// from, the way git does it: each `../` drops one path component of the base.
pub fn resolve_relative_url(base: &str, relative: &str) -> String {
    let mut base = base.trim_end_matches('/').to_owned();
    let mut rel = relative;
    loop {
        if let Some(rest) = rel.strip_prefix("./") {
            rel = rest;
        } else if let Some(rest) = rel.strip_prefix("../") {
            rel = rest;
            // Never cut into the scheme and host, nor into the host of a scp-like URL.
            let floor = match base.find("://") {
                Some(i) => base[i + 3..].find('/').map_or(base.len(), |j| i + 3 + j),
                None => base
                    .find(':')
                    .filter(|&c| !base[..c].contains('/'))
                    .map_or(0, |c| c + 1),
            };
            match base.rfind(['/', ':']).filter(|&i| i >= floor) {
                Some(i) if base[..=i].ends_with(':') => base.truncate(i + 1),
                Some(i) => base.truncate(i),
                None => base.truncate(floor),
            }
        } else {
            break;
        }
    }
    if base.ends_with(':') || base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// The context directory as a relative path, or why it is not acceptable. Empty and `.` mean the
/// repository's root.
pub fn normalize_context_dir(raw: &str) -> Result<PathBuf, FetchError> {
    let raw = raw.trim();
    if raw.contains('\0') {
        return Err(FetchError::context(
            "the context directory contains a NUL character",
        ));
    }
    let path = Path::new(raw);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(FetchError::context(format!(
                    "context directory {raw:?} must not contain \"..\""
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(FetchError::context(format!(
                    "context directory {raw:?} must be a path relative to the repository"
                )));
            }
        }
    }
    Ok(out)
}

/// Checks that the context directory exists under `root`, is a directory, and (after following
/// symlinks) stays inside `root`. Returns its real path.
pub fn resolve_context_dir(root: &Path, raw: &str) -> Result<PathBuf, FetchError> {
    let rel = normalize_context_dir(raw)?;
    let root = root
        .canonicalize()
        .map_err(|e| FetchError::source(format!("cannot resolve {}: {e}", root.display())))?;
    let shown = raw.trim();
    let real = match root.join(&rel).canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FetchError::context(format!(
                "context directory {shown:?} does not exist in the source"
            )));
        }
        Err(e) => return Err(FetchError::context(format!("context directory {shown:?}: {e}"))),
    };
    if !real.starts_with(&root) {
        return Err(FetchError::context(format!(
            "context directory {shown:?} leads outside the repository"
        )));
    }
    if !real.is_dir() {
        return Err(FetchError::context(format!(
            "context directory {shown:?} is not a directory"
        )));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs() -> Vec<(String, Oid)> {
        let oid = Oid::from_str("3f2a1c9000000000000000000000000000000000").unwrap();
        [
            "HEAD",
            "refs/heads/main",
            "refs/heads/feature",
            "refs/tags/v1",
            "refs/tags/feature",
            "refs/pull/1/head",
        ]
        .iter()
        .map(|n| ((*n).to_owned(), oid))
        .collect()
    }

    #[test]
    fn refs_resolve() {
        let r = refs();
        let main = Some("refs/heads/main");
        assert_eq!(resolve_ref("", &r, main).unwrap(), Target::Branch("main".into()));
        assert_eq!(
            resolve_ref("feature", &r, main).unwrap(),
            Target::Branch("feature".into())
        );
        assert_eq!(
            resolve_ref("refs/tags/feature", &r, main).unwrap(),
            Target::Tag("feature".into())
        );
        assert_eq!(resolve_ref("v1", &r, main).unwrap(), Target::Tag("v1".into()));
        assert_eq!(
            resolve_ref("refs/heads/main", &r, main).unwrap(),
            Target::Branch("main".into())
        );
        assert_eq!(
            resolve_ref("refs/pull/1/head", &r, main).unwrap(),
            Target::Ref("refs/pull/1/head".into())
        );
        assert_eq!(
            resolve_ref("3F2A1C9", &r, main).unwrap(),
            Target::Commit("3f2a1c9".into())
        );
        let e = resolve_ref("nope", &r, main).unwrap_err();
        assert_eq!(e.reason, FailureReason::FetchSourceFailed);
        assert!(e.message.contains("not found"));
        assert!(resolve_ref("refs/heads/nope", &r, main).is_err());
        assert!(resolve_ref("abc", &r, main).is_err()); // too short for a commit id
        assert!(resolve_ref("", &r, None).is_err());
        assert!(resolve_ref("", &[], None).unwrap_err().message.contains("empty"));
    }

    #[test]
    fn relative_urls() {
        assert_eq!(
            resolve_relative_url("file:///tmp/x/src", "../lib"),
            "file:///tmp/x/lib"
        );
        assert_eq!(
            resolve_relative_url("http://h:8/a/src.git/", "../lib.git"),
            "http://h:8/a/lib.git"
        );
        assert_eq!(
            resolve_relative_url("https://h/o/r", "./sub"),
            "https://h/o/r/sub"
        );
        assert_eq!(
            resolve_relative_url("https://h/o/r", "../../x/y"),
            "https://h/x/y"
        );
        assert_eq!(resolve_relative_url("git@h:org/repo", "../lib"), "git@h:org/lib");
        assert_eq!(resolve_relative_url("git@h:org/repo", "../../lib"), "git@h:lib");
        assert_eq!(resolve_relative_url("/srv/git/src", "../lib"), "/srv/git/lib");
    }

    #[test]
    fn refspecs() {
        let (specs, local) = Target::Branch("main".into()).refspecs();
        assert_eq!(specs, vec!["+refs/heads/main:refs/remotes/origin/main"]);
        assert_eq!(local.as_deref(), Some("refs/remotes/origin/main"));
        assert_eq!(Target::Commit("abcd".into()).refspecs().1, None);
    }

    #[test]
    fn context_dirs() {
        assert_eq!(normalize_context_dir("").unwrap(), PathBuf::new());
        assert_eq!(normalize_context_dir(" . ").unwrap(), PathBuf::new());
        assert_eq!(normalize_context_dir("app/").unwrap(), PathBuf::from("app"));
        assert_eq!(
            normalize_context_dir("./app/./web").unwrap(),
            PathBuf::from("app/web")
        );
        for bad in ["..", "../x", "app/../../x", "app/..", "/etc", "a\0b"] {
            let e = normalize_context_dir(bad).unwrap_err();
            assert_eq!(e.reason, FailureReason::InvalidContextDirectory, "{bad}");
        }
    }

    #[test]
    fn context_dir_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(root.join("file"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink("app", root.join("inside")).unwrap();
        assert!(resolve_context_dir(&root, "app").is_ok());
        assert!(resolve_context_dir(&root, "inside").is_ok());
        assert!(resolve_context_dir(&root, "").is_ok());
        for (bad, why) in [
            ("missing", "does not exist"),
            ("file", "not a directory"),
            ("out", "outside"),
        ] {
            let e = resolve_context_dir(&root, bad).unwrap_err();
            assert_eq!(e.reason, FailureReason::InvalidContextDirectory);
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn secret_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "tok\n").unwrap();
        let s = SourceSecret::read(dir.path()).unwrap();
        assert_eq!(s.password.as_deref(), Some("tok"));
        assert_eq!(s.username, None);
        assert!(!format!("{s:?}").contains("tok\""));
        std::fs::write(dir.path().join("password"), "pw").unwrap();
        std::fs::write(dir.path().join("username"), "me").unwrap();
        let s = SourceSecret::read(dir.path()).unwrap();
        assert_eq!(
            (s.username.as_deref(), s.password.as_deref()),
            (Some("me"), Some("pw"))
        );
        assert!(SourceSecret::read(&dir.path().join("nope")).is_err());
    }

    #[test]
    fn basic_auth_from_secret_else_url() {
        let url = SourceUrl::parse("https://u:p@h/r.git").unwrap();
        let secret = |u: Option<&str>, p: Option<&str>| SourceSecret {
            username: u.map(str::to_owned),
            password: p.map(str::to_owned),
            ..SourceSecret::default()
        };
        let pair = |u: &str, p: &str| Some((u.to_owned(), p.to_owned()));
        assert_eq!(basic_auth(&secret(None, None), &url), pair("u", "p"));
        assert_eq!(
            basic_auth(&secret(None, Some("tok")), &url),
            pair(TOKEN_USERNAME, "tok")
        );
        assert_eq!(
            basic_auth(&secret(Some("me"), Some("pw")), &url),
            pair("me", "pw")
        );
        assert_eq!(basic_auth(&secret(Some("me"), None), &url), None);
        let bare = SourceUrl::parse("https://h/r.git").unwrap();
        assert_eq!(basic_auth(&secret(None, None), &bare), None);
    }
}
