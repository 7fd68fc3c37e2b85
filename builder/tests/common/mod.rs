//! Test helpers: real git repositories made with the git CLI, a loopback smart-HTTP server running
//! `git http-backend`, and running the real slipway-builder binary with a time limit.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const AUTHOR_NAME: &str = "Ada Author";
pub const AUTHOR_EMAIL: &str = "ada@example.com";
pub const COMMITTER_NAME: &str = "Carl Committer";
pub const COMMITTER_EMAIL: &str = "carl@example.com";

/// Runs git with a clean, fixed environment (no user or system config).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", COMMITTER_NAME)
        .env("GIT_COMMITTER_EMAIL", COMMITTER_EMAIL)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The source repositories: `<base>/src` (the app) and `<base>/lib` (its submodule at `vendor/lib`).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// The commit tagged `v1` (annotated tag): README and app/index.txt = "v1".
    pub c1: String,
    /// The tip of main: app/index.txt = "v2", the submodule, and a long message.
    pub c2: String,
    /// The tip of `feature`, branched from c1: feature.txt.
    pub c3: String,
    /// The commit of lib that the submodule points at.
    pub lib_commit: String,
}

pub const C2_SUBJECT: &str = "Add the submodule and version 2";

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let lib = base.join("lib");
        std::fs::create_dir(&lib).unwrap();
        git(&lib, &["init", "-q"]);
        std::fs::write(lib.join("lib.txt"), "library\n").unwrap();
        git(&lib, &["add", "."]);
        git(&lib, &["commit", "-q", "-m", "Library"]);
        let lib_commit = git(&lib, &["rev-parse", "HEAD"]);

        let src = base.join("src");
        std::fs::create_dir_all(src.join("app")).unwrap();
        git(&src, &["init", "-q"]);
        std::fs::write(src.join("README.md"), "# demo\n").unwrap();
        std::fs::write(src.join("app/index.txt"), "v1\n").unwrap();
        git(&src, &["add", "."]);
        git(&src, &["commit", "-q", "-m", "Initial commit"]);
        let c1 = git(&src, &["rev-parse", "HEAD"]);
        git(&src, &["tag", "-a", "v1", "-m", "Version 1"]);

        git(&src, &["checkout", "-q", "-b", "feature"]);
        std::fs::write(src.join("feature.txt"), "feature\n").unwrap();
        git(&src, &["add", "."]);
        git(&src, &["commit", "-q", "-m", "Feature work"]);
        let c3 = git(&src, &["rev-parse", "HEAD"]);
        git(&src, &["checkout", "-q", "main"]);

        std::fs::write(src.join("app/index.txt"), "v2\n").unwrap();
        // A relative URL: resolved against wherever the app is fetched from.
        git(&src, &["submodule", "add", "-q", "../lib", "vendor/lib"]);
        git(&src, &["add", "."]);
        git(
            &src,
            &[
                "commit",
                "-q",
                "-m",
                &format!("{C2_SUBJECT}\n\nThe body explains why."),
            ],
        );
        let c2 = git(&src, &["rev-parse", "HEAD"]);
        Self {
            dir,
            c1,
            c2,
            c3,
            lib_commit,
        }
    }

    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    pub fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.src().display())
    }

    /// Adds a commit with a message of `len` bytes on a new branch `huge`.
    pub fn add_huge_commit(&self, len: usize) -> String {
        let src = self.src();
        git(&src, &["checkout", "-q", "-b", "huge"]);
        let msg_file = self.base().join("msg.txt");
        let mut msg = String::from("Huge message\n\n");
        while msg.len() < len {
            msg.push_str("lorem ipsum \"dolor\" sit amet é\n");
        }
        std::fs::write(&msg_file, msg).unwrap();
        git(
            &src,
            &["commit", "-q", "--allow-empty", "-F", msg_file.to_str().unwrap()],
        );
        let id = git(&src, &["rev-parse", "HEAD"]);
        git(&src, &["checkout", "-q", "main"]);
        id
    }
}

/// What a run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The raw result file (empty when none was written).
    pub result_raw: String,
    pub result: serde_json::Value,
}

impl Run {
    pub fn all_output(&self) -> String {
        format!("{}\n{}\n{}", self.stdout, self.stderr, self.result_raw)
    }
}

/// Runs `slipway-builder fetch` with `args`, writing the result in `work`, for at most 120 s.
pub fn run_fetch(work: &Path, args: &[&str]) -> Run {
    let result_file = work.join("result.json");
    let mut full: Vec<String> = vec![
        "fetch".into(),
        "--result-file".into(),
        result_file.display().to_string(),
    ];
    full.extend(args.iter().map(|s| (*s).to_owned()));
    let (code, stdout, stderr) = run_builder(&full, work);
    let result_raw = std::fs::read_to_string(&result_file).unwrap_or_default();
    let result = serde_json::from_str(&result_raw).unwrap_or(serde_json::Value::Null);
    Run {
        code,
        stdout,
        stderr,
        result_raw,
        result,
    }
}

/// Runs the real binary with a time limit; the SOURCE_* variables of the caller are removed.
pub fn run_builder(args: &[String], cwd: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway-builder"));
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "SOURCE_URI",
        "SOURCE_REF",
        "SOURCE_CONTEXT_DIR",
        "SOURCE_DEST",
        "SOURCE_SECRET_DIR",
        "SOURCE_ALLOW_UNKNOWN_HOSTS",
        "RESULT_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", cwd).env("GIT_CONFIG_NOSYSTEM", "1");
    let mut child = cmd.spawn().unwrap();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slipway-builder {args:?} did not finish in 120s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out_thread.join().unwrap(),
        err_thread.join().unwrap(),
    )
}

/// A smart-HTTP git server on 127.0.0.1 serving every repository under `root` through
/// `git http-backend`, optionally behind Basic auth. Stopped when dropped.
pub struct GitHttpServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GitHttpServer {
    pub fn start(root: &Path, basic_auth: Option<(&str, &str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_path_buf();
        let expected = basic_auth.map(|(u, p)| {
            format!(
                "Basic {}",
                slipway_builder::known_hosts::base64_encode(format!("{u}:{p}").as_bytes())
            )
        });
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let root = root.clone();
                let expected = expected.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &root, expected.as_deref());
                });
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(2));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves the requests of one connection (keep-alive) until it closes.
fn serve(conn: TcpStream, root: &Path, expected_auth: Option<&str>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    conn.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut writer = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("/").to_owned();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            read_chunked(&mut reader)?
        } else {
            let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body)?;
            body
        };
        if let Some(expected) = expected_auth
            && header("authorization").as_deref() != Some(expected)
        {
            let msg = b"authentication required\n";
            write!(
                writer,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                msg.len()
            )?;
            writer.write_all(msg)?;
            writer.flush()?;
            continue;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut cgi = Command::new("git");
        cgi.arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(ct) = header("content-type") {
            cgi.env("CONTENT_TYPE", ct);
        }
        if let Some(enc) = header("content-encoding") {
            cgi.env("HTTP_CONTENT_ENCODING", enc);
        }
        if let Some(proto) = header("git-protocol") {
            cgi.env("GIT_PROTOCOL", proto);
        }
        if expected_auth.is_some() {
            cgi.env("REMOTE_USER", "user");
        }
        let mut child = cgi.spawn()?;
        let mut stdin = child.stdin.take().unwrap();
        let writer_thread = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let output = child.wait_with_output()?;
        let _ = writer_thread.join();
        // Split the CGI headers from the body.
        let out = output.stdout;
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
        let split = split.or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
        let (head, body) = match split {
            Some((i, n)) => (
                String::from_utf8_lossy(&out[..i]).into_owned(),
                out[i + n..].to_vec(),
            ),
            None => (String::new(), out),
        };
        let mut status = "200 OK".to_owned();
        let mut response_headers = String::new();
        for line in head.lines() {
            if let Some(s) = line.strip_prefix("Status:") {
                status = s.trim().to_owned();
            } else if !line.trim().is_empty() {
                response_headers.push_str(line.trim_end());
                response_headers.push_str("\r\n");
            }
        }
        write!(
            writer,
            "HTTP/1.1 {status}\r\n{response_headers}Content-Length: {}\r\n\r\n",
            body.len()
        )?;
        writer.write_all(&body)?;
        writer.flush()?;
        if header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            // The two bytes read were the final CRLF (no trailers are sent by libgit2).
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}
