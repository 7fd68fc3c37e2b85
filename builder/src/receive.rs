//! `receive`: a binary build's source, uploaded by `slip start-build --from-*` through the API
//! server's attach to this container's standard input (framed as
//! `slipway_crds::contract::binary` says), written into the workspace where `fetch` would have
//! cloned.
//!
//! The upload is bounded: at most `BINARY_MAX_BYTES` arrive and at most as many are unpacked; it
//! must start within `BINARY_WAIT_SECONDS` and never stall for longer. An archive entry that
//! would land outside the source, a device or a FIFO is refused. What went wrong is the stage's
//! reason (`BinaryInputIncomplete`, `BinaryInputTooLarge`, `InvalidBinaryInput`,
//! `BinaryInputNotReceived`), which the operator makes the Build's.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use slipway_crds::contract::binary::{FrameError, FrameReader};
use slipway_crds::contract::{BinaryInput, env, paths};

use crate::contract::Loaded;
use crate::fetch::resolve_context_dir;
use crate::progress::{Progress, format_duration};
use crate::result::{FailureReason, StageResult, write_result};

const STAGE: &str = "receive";

/// The default bound of an upload (as sent and as unpacked).
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

#[derive(clap::Args, Debug, Clone)]
pub struct ReceiveArgs {
    /// Where the source goes (must be empty or absent).
    #[arg(long, env = "SOURCE_DEST", default_value = paths::SOURCE)]
    pub dest: PathBuf,
    /// The most bytes the upload may have, as sent and as unpacked.
    #[arg(long, env = env::BINARY_MAX_BYTES, default_value_t = DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,
    /// Seconds to wait for the upload to start, and the longest pause within it.
    #[arg(long, env = env::BINARY_WAIT_SECONDS, default_value_t = 600)]
    pub wait_seconds: u64,
    /// Where the JSON result goes.
    #[arg(long, env = "RESULT_FILE", default_value = "/dev/termination-log")]
    pub result_file: PathBuf,
    /// A second copy of the result, for the build container (its image labels).
    #[arg(long, env = "FETCH_RECORD")]
    pub record: Option<PathBuf>,
}

/// Why receiving failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveError {
    pub reason: FailureReason,
    pub message: String,
}

impl ReceiveError {
    fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(FailureReason::InvalidBinaryInput, message)
    }
}

impl std::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// What arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes of the upload (as sent).
    pub bytes: u64,
    /// Files written.
    pub files: u64,
}

/// Counts what passes and refuses to pass more than `limit`.
struct Bounded<R> {
    inner: R,
    count: u64,
    limit: u64,
    what: &'static str,
    activity: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if let Some(a) = &self.activity {
            a.store(self.count, Ordering::Relaxed);
        }
        if self.count > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the upload is larger {} than the {} bytes allowed",
                    self.what, self.limit
                ),
            ));
        }
        Ok(n)
    }
}

/// The stage's reason for an I/O error met while reading the upload.
fn classify(e: &io::Error, what: &str) -> ReceiveError {
    // The tar reader wraps the error of its input (in errors whose source it is): the innermost
    // I/O error says what happened.
    let mut innermost = e;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|i| i as _);
    while let Some(c) = cause {
        if let Some(inner) = c.downcast_ref::<io::Error>() {
            innermost = inner;
            // An io::Error's `source` skips the error it wraps.
            cause = inner.get_ref().map(|i| i as _);
            continue;
        }
        if let Some(frame) = c.downcast_ref::<FrameError>() {
            return match frame {
                FrameError::Incomplete { .. } => {
                    ReceiveError::new(FailureReason::BinaryInputIncomplete, frame.to_string())
                }
                FrameError::Malformed(_) => ReceiveError::invalid(frame.to_string()),
            };
        }
        cause = c.source();
    }
    if innermost.kind() == io::ErrorKind::FileTooLarge {
        return ReceiveError::new(FailureReason::BinaryInputTooLarge, innermost.to_string());
    }
    ReceiveError::invalid(format!("{what}: {e}"))
}

/// Receives a framed upload from `input` into `dest` as `binary` says.
pub fn receive(
    input: impl Read,
    binary: &BinaryInput,
    dest: &Path,
    max_bytes: u64,
    activity: Option<Arc<AtomicU64>>,
    progress: &Progress,
) -> Result<Received, ReceiveError> {
    std::fs::create_dir_all(dest)
        .map_err(|e| ReceiveError::invalid(format!("cannot create {}: {e}", dest.display())))?;
    let mut framed = FrameReader::new(input);
    let sent = Bounded {
        inner: &mut framed,
        count: 0,
        limit: max_bytes,
        what: "as sent",
        activity,
    };
    let mut sent = BufReader::with_capacity(256 * 1024, sent);
    let files = match &binary.as_file {
        Some(name) => {
            let path = dest.join(name);
            let mut file = std::fs::File::create(&path)
                .map_err(|e| ReceiveError::invalid(format!("cannot create {}: {e}", path.display())))?;
            io::copy(&mut sent, &mut file).map_err(|e| classify(&e, "storing the file"))?;
            progress.line(format!("stored the upload as {name}"));
            1
        }
        None => unpack(&mut sent, dest, max_bytes, progress)?,
    };
    // Whatever follows the archive's end (tar pads with zeros) up to the stream's end.
    io::copy(&mut sent, &mut io::sink()).map_err(|e| classify(&e, "reading the upload"))?;
    drop(sent);
    if !framed.ended() {
        return Err(ReceiveError::new(
            FailureReason::BinaryInputIncomplete,
            FrameError::Incomplete {
                received: framed.received(),
            }
            .to_string(),
        ));
    }
    Ok(Received {
        bytes: framed.received(),
        files,
    })
}

/// Unpacks a tar archive, gzip-compressed or not, into `dest`. Returns the number of files.
fn unpack(
    input: &mut impl BufRead,
    dest: &Path,
    max_bytes: u64,
    progress: &Progress,
) -> Result<u64, ReceiveError> {
    let head = input.fill_buf().map_err(|e| classify(&e, "reading the upload"))?;
    let gzip = archive_kind(head)?;
    let unpacked: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let bounded = Bounded {
        inner: unpacked,
        count: 0,
        limit: max_bytes,
        what: "unpacked",
        activity: None,
    };
    let mut archive = tar::Archive::new(bounded);
    archive.set_overwrite(true);
    archive.set_preserve_mtime(true);
    let mut files = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| classify(&e, "reading the archive"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| classify(&e, "reading the archive"))?;
        if unpack_entry(&mut entry, dest)? {
            files += 1;
        }
    }
    progress.line(format!("unpacked {files} files"));
    Ok(files)
}

/// Whether the upload, by its first bytes `head`, is gzip-compressed (`true`) or a plain tar
/// (`false`); anything else (zip, bzip2, xz, nothing, not a tar) is refused, saying what it is.
fn archive_kind(head: &[u8]) -> Result<bool, ReceiveError> {
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(true);
    }
    if head.starts_with(b"PK\x03\x04") {
        return Err(ReceiveError::invalid(
            "the upload is a zip archive; send a tar archive (plain or gzip-compressed)",
        ));
    }
    if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        return Err(ReceiveError::invalid(
            "the upload is bzip2- or xz-compressed; send a tar archive, plain or gzip-compressed",
        ));
    }
    if head.is_empty() {
        return Err(ReceiveError::invalid(
            "the upload is empty: there is no archive to unpack",
        ));
    }
    if head.len() >= 262 && &head[257..262] != b"ustar" {
        return Err(ReceiveError::invalid(
            "the upload is not a tar archive (plain or gzip-compressed); to send one file, use --from-file",
        ));
    }
    Ok(false)
}

/// Unpacks one archive entry into `dest`, refusing what would leave it and what is neither a
/// file, a directory nor a link. Whether it was a file (metadata entries are skipped).
fn unpack_entry<R: Read>(entry: &mut tar::Entry<'_, R>, dest: &Path) -> Result<bool, ReceiveError> {
    let path = entry
        .path()
        .map_err(|e| ReceiveError::invalid(format!("an entry's name: {e}")))?
        .into_owned();
    check_entry_path(&path)?;
    let kind = entry.header().entry_type();
    use tar::EntryType as T;
    match kind {
        T::Regular | T::Continuous | T::GNUSparse | T::Directory | T::Symlink | T::Link => {}
        // Metadata entries are consumed by the reader itself.
        T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(false),
        other => {
            return Err(ReceiveError::invalid(format!(
                "{}: a {other:?} entry; only files, directories and links are unpacked",
                path.display()
            )));
        }
    }
    // `unpack_in` refuses a path that leaves `dest`, through `..` or a symlink unpacked
    // before it.
    let placed = entry
        .unpack_in(dest)
        .map_err(|e| classify(&e, &format!("unpacking {}", path.display())))?;
    if !placed {
        return Err(ReceiveError::invalid(format!(
            "{}: the entry leaves the source directory",
            path.display()
        )));
    }
    Ok(matches!(kind, T::Regular | T::Continuous | T::GNUSparse))
}

/// Refuses absolute names and `..`, whatever tar would make of them.
fn check_entry_path(path: &Path) -> Result<(), ReceiveError> {
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(ReceiveError::invalid(format!(
                    "{}: the entry leaves the source directory",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Fails the stage when nothing arrives in time, or the upload stalls: the process is waiting
/// in a read that nothing else can end.
fn watchdog(args: &ReceiveArgs, activity: Arc<AtomicU64>, done: Arc<AtomicBool>) {
    let wait = Duration::from_secs(args.wait_seconds.max(1));
    let args = args.clone();
    std::thread::spawn(move || {
        let mut last = (0u64, Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(250).min(wait));
            if done.load(Ordering::Relaxed) {
                return;
            }
            let now = activity.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
                continue;
            }
            if last.1.elapsed() >= wait {
                let (reason, message) = if now == 0 {
                    (
                        FailureReason::BinaryInputNotReceived,
                        format!(
                            "no upload arrived within {}: a binary build is started with slip start-build --from-dir, --from-file, --from-archive or --from-repo",
                            format_duration(wait)
                        ),
                    )
                } else {
                    (
                        FailureReason::BinaryInputIncomplete,
                        format!(
                            "the upload stopped after {now} bytes and nothing came for {}",
                            format_duration(wait)
                        ),
                    )
                };
                let result = StageResult::failure(STAGE, reason, &message, vec![message.clone()]);
                eprintln!("[{STAGE}] {reason}: {message}");
                for path in std::iter::once(&args.result_file).chain(&args.record) {
                    let _ = write_result(path, &result);
                }
                std::process::exit(1);
            }
        }
    });
}

/// Runs the `receive` subcommand: waits for the upload, unpacks it, writes the result. Returns
/// the exit code.
pub fn run(args: &ReceiveArgs) -> u8 {
    let progress = Progress::new(STAGE);
    let started = Instant::now();
    let outcome = receive_upload(args, &progress);
    let result = stage_result(&outcome, started.elapsed(), &progress);
    for path in std::iter::once(&args.result_file).chain(&args.record) {
        if let Err(e) = write_result(path, &result) {
            eprintln!(
                "slipway-builder receive: cannot write the result to {}: {e}",
                path.display()
            );
            return 2;
        }
    }
    if outcome.is_ok() { 0 } else { 1 }
}

/// Reads the Build from `BUILD`, receives its upload from stdin under the watchdog, and checks
/// the context directory.
fn receive_upload(args: &ReceiveArgs, progress: &Progress) -> Result<(Loaded, Received), ReceiveError> {
    let loaded = Loaded::from_env()
        .map_err(|e| ReceiveError::new(e.reason, e.message))?
        .ok_or_else(|| {
            ReceiveError::new(FailureReason::InvalidBuild, format!("{} is not set", env::BUILD))
        })?;
    let binary =
        loaded.plan.binary.clone().ok_or_else(|| {
            ReceiveError::new(FailureReason::InvalidBuild, "the Build has no binary source")
        })?;
    progress.line(format!(
        "waiting for the upload (at most {} bytes)",
        args.max_bytes
    ));
    let activity = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    watchdog(args, activity.clone(), done.clone());
    let received = receive(
        io::stdin().lock(),
        &binary,
        &args.dest,
        args.max_bytes,
        Some(activity),
        progress,
    );
    done.store(true, Ordering::Relaxed);
    let received = received?;
    resolve_context_dir(&args.dest, &loaded.plan.context_dir)
        .map_err(|e| ReceiveError::new(e.reason, e.message))?;
    Ok((loaded, received))
}

/// The stage's result for `outcome` after `elapsed`, said in the log too.
fn stage_result(
    outcome: &Result<(Loaded, Received), ReceiveError>,
    elapsed: Duration,
    progress: &Progress,
) -> StageResult {
    let millis = elapsed.as_millis().try_into().unwrap_or(u64::MAX);
    let mut r = match outcome {
        Ok((loaded, received)) => {
            progress.line(format!(
                "received {} bytes ({} files) in {}",
                received.bytes,
                received.files,
                format_duration(elapsed)
            ));
            let mut r = StageResult::success(STAGE);
            record_revision(&mut r, loaded);
            r
        }
        Err(e) => {
            progress.line(format!(
                "failed after {}: {}",
                format_duration(elapsed),
                e.message
            ));
            StageResult::failure(STAGE, e.reason, &e.message, progress.tail())
        }
    };
    r.durations.insert(STAGE.to_owned(), millis);
    r
}

/// `--from-repo` sends the commit it archived as the Build's revision: it goes into the result.
fn record_revision(r: &mut StageResult, loaded: &Loaded) {
    if let Some(git) = loaded
        .build
        .spec
        .common
        .revision
        .as_ref()
        .and_then(|r| r.git.as_ref())
    {
        r.commit = Some(git.commit.clone()).filter(|c| !c.is_empty());
        r.author = git.author.clone();
        r.committer = git.committer.clone();
        r.message = Some(git.message.clone()).filter(|m| !m.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_crds::contract::binary::FrameWriter;
    use std::io::Write;

    fn framed(data: &[u8]) -> Vec<u8> {
        let mut w = FrameWriter::new(Vec::new()).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn tar_of(files: &[(&str, &[u8])], gzip: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        if !gzip {
            return tar;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    fn run_receive(
        stream: &[u8],
        as_file: Option<&str>,
        max: u64,
    ) -> (tempfile::TempDir, Result<Received, ReceiveError>) {
        let dir = tempfile::tempdir().unwrap();
        let binary = BinaryInput {
            as_file: as_file.map(String::from),
        };
        let r = receive(
            stream,
            &binary,
            &dir.path().join("src"),
            max,
            None,
            &Progress::quiet(STAGE),
        );
        (dir, r)
    }

    #[test]
    fn archives_plain_and_gzip_are_unpacked() {
        for gzip in [false, true] {
            let tar = tar_of(&[("app/index.html", b"hello"), ("README", b"r")], gzip);
            let (dir, r) = run_receive(&framed(&tar), None, 1 << 20);
            let r = r.unwrap();
            assert_eq!(r.files, 2);
            assert_eq!(r.bytes, tar.len() as u64);
            assert_eq!(
                std::fs::read(dir.path().join("src/app/index.html")).unwrap(),
                b"hello"
            );
        }
    }

    #[test]
    fn as_file_stores_the_bytes_under_the_name() {
        let (dir, r) = run_receive(&framed(b"not an archive at all"), Some("app.jar"), 1 << 20);
        assert_eq!(r.unwrap().files, 1);
        assert_eq!(
            std::fs::read(dir.path().join("src/app.jar")).unwrap(),
            b"not an archive at all"
        );
    }

    #[test]
    fn an_interrupted_upload_is_incomplete() {
        let tar = tar_of(&[("a", &[1u8; 100_000])], false);
        let stream = framed(&tar);
        for cut in [40, stream.len() / 2, stream.len() - 3] {
            let (_d, r) = run_receive(&stream[..cut], None, 1 << 20);
            assert_eq!(
                r.unwrap_err().reason,
                FailureReason::BinaryInputIncomplete,
                "cut {cut}"
            );
            let (_d, r) = run_receive(&stream[..cut], Some("f"), 1 << 20);
            assert_eq!(
                r.unwrap_err().reason,
                FailureReason::BinaryInputIncomplete,
                "as file, cut {cut}"
            );
        }
    }

    #[test]
    fn too_large_as_sent_or_as_unpacked() {
        let big = tar_of(&[("a", &[0u8; 300_000])], false);
        let e = run_receive(&framed(&big), None, 100_000).1.unwrap_err();
        assert_eq!(e.reason, FailureReason::BinaryInputTooLarge, "{e}");
        // A small gzip that unpacks to much more than the bound.
        let bomb = tar_of(&[("a", &vec![0u8; 5_000_000])], true);
        assert!(bomb.len() < 100_000);
        let e = run_receive(&framed(&bomb), None, 100_000).1.unwrap_err();
        assert_eq!(e.reason, FailureReason::BinaryInputTooLarge, "{e}");
        assert!(e.message.contains("unpacked"), "{e}");
        let e = run_receive(&framed(&[1u8; 200_000]), Some("f"), 100_000)
            .1
            .unwrap_err();
        assert_eq!(e.reason, FailureReason::BinaryInputTooLarge, "{e}");
    }

    #[test]
    fn what_is_not_an_archive_is_refused_with_what_it_is() {
        let (_d, r) = run_receive(&framed(&[b'x'; 2000]), None, 1 << 20);
        let e = r.unwrap_err();
        assert_eq!(e.reason, FailureReason::InvalidBinaryInput);
        assert!(e.message.contains("not a tar archive"), "{e}");
        let (_d, r) = run_receive(&framed(b"PK\x03\x04rest of a zip"), None, 1 << 20);
        assert!(r.unwrap_err().message.contains("zip"));
        let (_d, r) = run_receive(b"plain bytes, not framed at all, long enough", None, 1 << 20);
        let e = r.unwrap_err();
        assert_eq!(e.reason, FailureReason::InvalidBinaryInput);
        assert!(e.message.contains("Slipway's binary format"), "{e}");
    }

    #[test]
    fn archive_kinds_by_their_first_bytes() {
        assert_eq!(archive_kind(&[0x1f, 0x8b, 8]), Ok(true));
        assert_eq!(archive_kind(&tar_of(&[("a", b"x")], false)), Ok(false));
        assert_eq!(
            archive_kind(b"short"),
            Ok(false),
            "too short to tell: tar decides"
        );
        for (head, says) in [
            (&b"PK\x03\x04"[..], "zip"),
            (b"BZh9", "bzip2"),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
            (b"", "empty"),
            (&[b'x'; 300], "not a tar archive"),
        ] {
            let e = archive_kind(head).unwrap_err();
            assert_eq!(e.reason, FailureReason::InvalidBinaryInput);
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn entries_that_leave_the_source_are_refused() {
        // Written by hand: tar's Builder refuses such names itself.
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        {
            let name = b"../escape";
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name);
        }
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend_from_slice(b"x");
        tar.resize(1024, 0);
        tar.extend_from_slice(&[0u8; 1024]);
        let (dir, r) = run_receive(&framed(&tar), None, 1 << 20);
        let e = r.unwrap_err();
        assert_eq!(e.reason, FailureReason::InvalidBinaryInput);
        assert!(e.message.contains("leaves the source"), "{e}");
        assert!(!dir.path().join("escape").exists());

        // A symlink out, then a file through it.
        let mut b = tar::Builder::new(Vec::new());
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        b.append_link(&mut link, "out", "/tmp").unwrap();
        let mut f = tar::Header::new_gnu();
        f.set_size(1);
        f.set_mode(0o644);
        b.append_data(&mut f, "out/slipway-receive-escape", &b"x"[..])
            .unwrap();
        let tar = b.into_inner().unwrap();
        let (_dir, r) = run_receive(&framed(&tar), None, 1 << 20);
        assert!(r.is_err());
        assert!(!Path::new("/tmp/slipway-receive-escape").exists());
    }
}
