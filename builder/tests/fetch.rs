//! `slipway-builder fetch` against real git repositories, over file:// and smart HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{
    AUTHOR_EMAIL, AUTHOR_NAME, C2_SUBJECT, COMMITTER_EMAIL, COMMITTER_NAME, Fixture, Run, git, run_fetch,
};
use slipway_testkit::git_http::BlockingGitHttp;

const MAX: usize = 4095;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn assert_success(run: &Run, commit: &str) {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}\nresult: {}",
        run.stdout, run.stderr, run.result_raw
    );
    let r = &run.result;
    assert_eq!(r["stage"], "fetch");
    assert_eq!(r["success"], true);
    assert_eq!(r["commit"], commit);
    assert_eq!(r["author"]["name"], AUTHOR_NAME);
    assert_eq!(r["author"]["email"], AUTHOR_EMAIL);
    assert_eq!(r["committer"]["name"], COMMITTER_NAME);
    assert_eq!(r["committer"]["email"], COMMITTER_EMAIL);
    assert!(r["durations"]["fetch"].is_u64());
    assert!(run.result_raw.len() <= MAX);
    assert!(run.stdout.contains("[fetch] cloning "), "{}", run.stdout);
    assert!(run.stdout.contains("[fetch] done in "), "{}", run.stdout);
    assert!(run.stdout.contains(&commit[..7]), "{}", run.stdout);
}

fn assert_failure(run: &Run, reason: &str) {
    assert_ne!(run.code, 0, "stdout:\n{}\nresult: {}", run.stdout, run.result_raw);
    assert_eq!(run.result["stage"], "fetch", "{}", run.result_raw);
    assert_eq!(run.result["success"], false);
    assert_eq!(run.result["reason"], reason, "{}", run.result_raw);
    assert!(run.result["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(run.result["logTail"].as_array().is_some_and(|l| !l.is_empty()));
    assert!(run.result_raw.len() <= MAX, "{}", run.result_raw.len());
}

/// The build pod's one init container: `--place-tools DIR fetch ...` copies the binary, then
/// fetches; when the tools cannot be placed, nothing is fetched and the exit is non-zero.
#[test]
fn places_the_tools_then_fetches() {
    let fx = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let (tools, dest) = (work.path().join("tools"), work.path().join("source"));
    let args = |tools: &Path| -> Vec<String> {
        [
            "--place-tools",
            tools.to_str().unwrap(),
            "fetch",
            "--result-file",
            work.path().join("result.json").to_str().unwrap(),
            "--uri",
            &fx.file_url(),
            "--dest",
            dest.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let (code, stdout, stderr) = common::run_builder(&args(&tools), work.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let original = std::fs::read(env!("CARGO_BIN_EXE_slipway-builder")).unwrap();
    assert_eq!(std::fs::read(tools.join("slipway-builder")).unwrap(), original);
    assert_eq!(read(&dest.join("app/index.txt")), "v2\n");

    std::fs::remove_dir_all(&dest).unwrap();
    let file = work.path().join("file");
    std::fs::write(&file, "").unwrap();
    let (code, _, stderr) = common::run_builder(&args(&file.join("tools")), work.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("place-tools"), "{stderr}");
    assert!(
        !dest.exists(),
        "nothing fetched when the tools could not be placed"
    );
}

#[test]
fn file_branch_with_submodule_and_context_dir() {
    let fx = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("source");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &fx.file_url(),
            "--ref",
            "main",
            "--context-dir",
            "app",
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_success(&run, &fx.c2);
    assert_eq!(read(&dest.join("app/index.txt")), "v2\n");
    assert_eq!(read(&dest.join("vendor/lib/lib.txt")), "library\n");
    assert!(!dest.join("feature.txt").exists());
    let msg = run.result["message"].as_str().unwrap();
    assert!(
        msg.starts_with(C2_SUBJECT) && msg.contains("The body explains why."),
        "{msg}"
    );
    assert!(
        run.stdout.contains(&format!("\"{C2_SUBJECT}\"")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("submodule vendor/lib"), "{}", run.stdout);
    // The clone is on branch main, at the commit; the submodule at its pinned commit.
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), fx.c2);
    assert_eq!(git(&dest, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(
        git(&dest.join("vendor/lib"), &["rev-parse", "HEAD"]),
        fx.lib_commit
    );
}

#[test]
fn file_default_branch_tag_and_commit_ids() {
    let fx = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let short = &fx.c3[..9];
    let cases: [(&str, &str, &str); 5] = [
        ("", &fx.c2, "Add the submodule"),
        ("v1", &fx.c1, "Initial commit"),
        ("feature", &fx.c3, "Feature work"),
        (&fx.c1, &fx.c1, "Initial commit"),
        (short, &fx.c3, "Feature work"),
    ];
    for (i, (r, commit, message)) in cases.iter().enumerate() {
        let dest = work.path().join(format!("d{i}"));
        let run = run_fetch(
            work.path(),
            &[
                "--uri",
                &fx.file_url(),
                "--ref",
                r,
                "--dest",
                dest.to_str().unwrap(),
            ],
        );
        assert_success(&run, commit);
        assert!(
            run.result["message"].as_str().unwrap().starts_with(message),
            "{r}: {}",
            run.result_raw
        );
        assert_eq!(git(&dest, &["rev-parse", "HEAD"]), *commit);
        assert_eq!(dest.join("feature.txt").exists(), *commit == fx.c3, "{r}");
    }
    assert_eq!(read(&work.path().join("d1/app/index.txt")), "v1\n");
}

#[test]
fn env_vars_work_like_flags() {
    let fx = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("source");
    let result = work.path().join("r.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway-builder"))
        .arg("fetch")
        .env("SOURCE_URI", fx.src())
        .env("SOURCE_REF", "v1")
        .env("SOURCE_CONTEXT_DIR", "app")
        .env("SOURCE_DEST", &dest)
        .env("RESULT_FILE", &result)
        .env_remove("SOURCE_SECRET_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_str(&read(&result)).unwrap();
    assert_eq!(v["commit"], fx.c1.as_str());
}

#[test]
fn huge_commit_message_keeps_result_under_4k() {
    let fx = Fixture::new();
    let id = fx.add_huge_commit(100_000);
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("source");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &fx.file_url(),
            "--ref",
            "huge",
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_success(&run, &id);
    assert!(run.result_raw.len() <= MAX, "{}", run.result_raw.len());
    let msg = run.result["message"].as_str().unwrap();
    assert!(msg.starts_with("Huge message") && msg.ends_with('…'), "{msg}");
    assert!(
        run.result_raw.len() > 3000,
        "cut more than needed: {}",
        run.result_raw.len()
    );
}

#[test]
fn failures_have_reasons() {
    let fx = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let missing = format!("file://{}/does-not-exist", fx.base().display());
    let cases: [(&[&str], &str, &str); 8] = [
        (&["--uri", &missing], "FetchSourceFailed", "cannot reach"),
        (
            &["--uri", "ssh://git@127.0.0.1:1/x.git"],
            "FetchSourceFailed",
            "cannot reach",
        ),
        (
            &["--uri", "ftp://example.invalid/x"],
            "FetchSourceFailed",
            "unsupported",
        ),
        (
            &["--uri", &fx.file_url(), "--ref", "no-such-branch"],
            "FetchSourceFailed",
            "not found",
        ),
        (
            &["--uri", &fx.file_url(), "--ref", "deadbeef"],
            "FetchSourceFailed",
            "not found",
        ),
        (
            &["--uri", &fx.file_url(), "--context-dir", "nope"],
            "InvalidContextDirectory",
            "does not exist",
        ),
        (
            &["--uri", &fx.file_url(), "--context-dir", "../x"],
            "InvalidContextDirectory",
            "..",
        ),
        (
            &["--uri", &fx.file_url(), "--context-dir", "README.md"],
            "InvalidContextDirectory",
            "not a directory",
        ),
    ];
    for (i, (args, reason, text)) in cases.iter().enumerate() {
        let dest = work.path().join(format!("d{i}"));
        let mut all = args.to_vec();
        all.extend(["--dest", dest.to_str().unwrap()]);
        let run = run_fetch(work.path(), &all);
        assert_failure(&run, reason);
        let msg = run.result["message"].as_str().unwrap();
        assert!(msg.contains(text), "{args:?}: {msg}");
        assert!(run.stdout.contains("[fetch] failed after"), "{}", run.stdout);
    }
}

#[test]
fn destination_must_be_empty() {
    let fx = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("source");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("x"), "").unwrap();
    let run = run_fetch(
        work.path(),
        &["--uri", &fx.file_url(), "--dest", dest.to_str().unwrap()],
    );
    assert_failure(&run, "FetchSourceFailed");
}

#[test]
fn symlinked_context_dir_outside_is_rejected() {
    let fx = Fixture::new();
    std::os::unix::fs::symlink("/etc", fx.src().join("escape")).unwrap();
    git(&fx.src(), &["add", "escape"]);
    git(&fx.src(), &["commit", "-q", "-m", "Escape"]);
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("source");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &fx.file_url(),
            "--context-dir",
            "escape",
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_failure(&run, "InvalidContextDirectory");
    assert!(
        run.result["message"].as_str().unwrap().contains("outside"),
        "{}",
        run.result_raw
    );
}

#[test]
fn http_shallow_branch_tag_commit_and_submodule() {
    let fx = Fixture::new();
    let server = BlockingGitHttp::start(fx.base(), None).unwrap();
    let work = tempfile::tempdir().unwrap();

    let dest = work.path().join("main");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &server.url("src"),
            "--ref",
            "main",
            "--context-dir",
            "app/",
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_success(&run, &fx.c2);
    assert!(run.stdout.contains("shallow"), "{}", run.stdout);
    assert_eq!(read(&dest.join("app/index.txt")), "v2\n");
    // The relative submodule URL was resolved against the HTTP remote.
    assert_eq!(read(&dest.join("vendor/lib/lib.txt")), "library\n");
    assert!(run.stdout.contains(&server.url("lib")), "{}", run.stdout);
    assert_eq!(git(&dest, &["rev-list", "--count", "HEAD"]), "1", "not shallow");

    let dest = work.path().join("tag");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &server.url("src"),
            "--ref",
            "v1",
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_success(&run, &fx.c1);
    assert_eq!(read(&dest.join("app/index.txt")), "v1\n");

    let dest = work.path().join("commit");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &server.url("src"),
            "--ref",
            &fx.c3[..10],
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_success(&run, &fx.c3);
    assert!(dest.join("feature.txt").exists());

    let dest = work.path().join("bad");
    let run = run_fetch(
        work.path(),
        &["--uri", &server.url("nope"), "--dest", dest.to_str().unwrap()],
    );
    assert_failure(&run, "FetchSourceFailed");
}

#[test]
fn http_basic_auth() {
    const PASSWORD: &str = "s3cr3t-Passw0rd";
    const WRONG: &str = "wr0ng-Passw0rd";
    let fx = Fixture::new();
    let server = BlockingGitHttp::start(fx.base(), Some(("alice", PASSWORD))).unwrap();
    let work = tempfile::tempdir().unwrap();
    let secret = |name: &str, password: &str| {
        let dir = work.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("username"), "alice\n").unwrap();
        std::fs::write(dir.join("password"), format!("{password}\n")).unwrap();
        dir
    };

    // Right credentials from a secret; the submodule on the same host gets them too.
    let good = secret("good", PASSWORD);
    let dest = work.path().join("ok");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &server.url("src"),
            "--secret-dir",
            good.to_str().unwrap(),
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_success(&run, &fx.c2);
    assert_eq!(read(&dest.join("vendor/lib/lib.txt")), "library\n");
    assert!(!run.all_output().contains(PASSWORD));
    // The clone does not keep the credentials.
    assert!(!read(&dest.join(".git/config")).contains(PASSWORD));

    // Wrong password.
    let bad = secret("bad", WRONG);
    let dest = work.path().join("wrong");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &server.url("src"),
            "--secret-dir",
            bad.to_str().unwrap(),
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_failure(&run, "FetchSourceFailed");
    assert!(!run.all_output().contains(WRONG), "{}", run.all_output());

    // No credentials at all.
    let dest = work.path().join("none");
    let run = run_fetch(
        work.path(),
        &["--uri", &server.url("src"), "--dest", dest.to_str().unwrap()],
    );
    assert_failure(&run, "FetchSourceFailed");

    // Credentials embedded in the URL work, and are masked everywhere.
    let url = format!("http://alice:{PASSWORD}@127.0.0.1:{}/src", server.port());
    let dest = work.path().join("inurl");
    let run = run_fetch(
        work.path(),
        &["--uri", &url, "--ref", "v1", "--dest", dest.to_str().unwrap()],
    );
    assert_success(&run, &fx.c1);
    assert!(!run.all_output().contains(PASSWORD), "{}", run.all_output());
    assert!(
        run.stdout
            .contains(&format!("http://***@127.0.0.1:{}/src", server.port())),
        "{}",
        run.stdout
    );
    assert!(!read(&dest.join(".git/config")).contains(PASSWORD));

    // Wrong credentials in the URL: masked in the failure too.
    let url = format!("http://alice:{WRONG}@127.0.0.1:{}/src", server.port());
    let dest = work.path().join("inurl-wrong");
    let run = run_fetch(work.path(), &["--uri", &url, "--dest", dest.to_str().unwrap()]);
    assert_failure(&run, "FetchSourceFailed");
    assert!(!run.all_output().contains(WRONG), "{}", run.all_output());
}

#[test]
fn token_secret() {
    const TOKEN: &str = "ghp_0123456789abcdef";
    let fx = Fixture::new();
    let server = BlockingGitHttp::start(fx.base(), Some(("slipway", TOKEN))).unwrap();
    let work = tempfile::tempdir().unwrap();
    let secret = work.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("token"), TOKEN).unwrap();
    let dest = work.path().join("source");
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &server.url("src"),
            "--ref",
            "feature",
            "--secret-dir",
            secret.to_str().unwrap(),
            "--dest",
        ],
    );
    // --dest without a value is a usage error: no result, non-zero exit.
    assert_ne!(run.code, 0);
    let run = run_fetch(
        work.path(),
        &[
            "--uri",
            &server.url("src"),
            "--ref",
            "feature",
            "--secret-dir",
            secret.to_str().unwrap(),
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_success(&run, &fx.c3);
    assert!(!run.all_output().contains(TOKEN));
}

/// Over ssh with a key, against OpenSSH's sshd (started by the test): the server is known only
/// through the secret's `known_hosts`; an unknown or changed host key is refused with a message
/// that says so (libgit2 alone says only "invalid or unknown remote ssh hostkey"), and a key the
/// server does not accept fails. The private key appears in no output.
#[test]
fn ssh_key_and_known_hosts() {
    let fx = Fixture::new();
    let server = slipway_testkit::ssh_git::SshGit::start("127.0.0.1".parse().unwrap()).unwrap();
    let other = slipway_testkit::ssh_git::SshGit::start("127.0.0.1".parse().unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let secret = |name: &str, key: &str, known_hosts: Option<&str>| {
        let dir = work.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("ssh-privatekey"), key).unwrap();
        if let Some(k) = known_hosts {
            std::fs::write(dir.join("known_hosts"), k).unwrap();
        }
        dir
    };
    // `other`'s host key under this server's address: a changed key.
    let changed = other
        .known_hosts()
        .replace(&format!(":{} ", other.port()), &format!(":{} ", server.port()));
    let url = server.url(&fx.src());
    let cases = [
        ("good", server.client_key(), Some(server.known_hosts()), None),
        ("unknown", server.client_key(), None, Some("not in known_hosts")),
        (
            "changed",
            server.client_key(),
            Some(changed),
            Some("does not match"),
        ),
        (
            "stranger",
            other.client_key(),
            Some(server.known_hosts()),
            Some("cannot reach"),
        ),
    ];
    for (name, key, known_hosts, fails_with) in cases {
        let dir = secret(name, &key, known_hosts.as_deref());
        let dest = work.path().join(format!("{name}-src"));
        let run = run_fetch(
            work.path(),
            &[
                "--uri",
                &url,
                "--ref",
                "v1",
                "--secret-dir",
                dir.to_str().unwrap(),
                "--dest",
                dest.to_str().unwrap(),
            ],
        );
        let private = key.lines().nth(1).unwrap_or_default();
        assert!(!run.all_output().contains(private), "{name}: the key leaked");
        match fails_with {
            None => {
                assert_success(&run, &fx.c1);
                assert_eq!(read(&dest.join("app/index.txt")), "v1\n");
            }
            Some(says) => {
                assert_failure(&run, "FetchSourceFailed");
                let message = run.result["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains(says),
                    "{name}: {message}\nsshd:\n{}",
                    server.log()
                );
            }
        }
    }
}
