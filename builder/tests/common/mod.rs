//! Test helpers: real git repositories made with the git CLI, and running the real
//! slipway-builder binary with a time limit. (The smart-HTTP git server is testkit's.)
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
        "PLACE_TOOLS",
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
