//! Binary builds on the real node, as a user would run them: `slip new-build --binary`, then
//! `slip start-build --from-dir | --from-file | --from-archive | --from-repo` (and a Docker build
//! of an uploaded folder with `--build-arg`) as alice (who may
//! work with builds and attach to pods in the test's namespace), the upload streamed through the
//! API server's attach into the build pod, the image built with the build controller in-process,
//! pushed to the dev registry and run. And what goes wrong: bob (no rights) creates nothing; a
//! BuildConfig with binary source does not build without an upload; an upload that is too large,
//! interrupted or not an archive fails the Build with its reason.
//!
//! Needs the images of `make images` (dev/images.sh); part of `make e2e`.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::json;
use slipway_client::instantiate::instantiate;
use slipway_crds::build::{BinaryBuildSource, BuildPhase, BuildRequest};
use slipway_crds::{Build, BuildConfig};
use slipway_testkit::real_node::*;
use slipway_testkit::*;

#[path = "../../operator/tests/real_node_support/mod.rs"]
mod real_node_support;

/// The bound the test's build controller puts on uploads.
const MAX_BYTES: u64 = 4 << 20;

/// `out` failed, saying `needle`.
fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "succeeded: {}", output_text(out));
    assert!(
        output_text(out).contains(needle),
        "expected {needle:?} in: {}",
        output_text(out)
    );
}

async fn slip(kubeconfig: &Path, args: &[&str]) -> Output {
    run_program(env!("CARGO_BIN_EXE_slip-under-test"), Some(kubeconfig), args).await
}

struct Fixture {
    builds: real_node_support::Builds,
    alice: PathBuf,
    bob: PathBuf,
}

impl std::ops::Deref for Fixture {
    type Target = real_node_support::Builds;
    fn deref(&self) -> &Self::Target {
        &self.builds
    }
}

impl Fixture {
    /// The name of the build `slip start-build` reported starting.
    fn started(out: &Output) -> String {
        let text = output_text(out);
        text.lines()
            .find_map(|l| l.strip_prefix("build.slipway.dev/")?.strip_suffix(" started"))
            .unwrap_or_else(|| panic!("no build started: {text}"))
            .to_string()
    }

    async fn start(&self, args: &[&str]) -> String {
        let out = slip(&self.alice, args).await;
        assert!(out.status.success(), "slip {args:?}: {}", output_text(&out));
        Self::started(&out)
    }

    async fn builds(&self) -> usize {
        Api::<Build>::namespaced(self.client.clone(), &self.ns)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len()
    }
}

async fn grant_alice(client: &kube::Client, ns: &str) {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "builder"},
        "rules": [
            {"apiGroups": ["slipway.dev"], "resources": ["buildconfigs", "builds", "imagestreams"],
             "verbs": ["get", "list", "watch", "create"]},
            {"apiGroups": ["slipway.dev"], "resources": ["buildconfigs/status", "builds/status"],
             "verbs": ["get", "update", "patch"]},
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["get", "create"]}
        ]
    }))
    .unwrap();
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "alice"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "builder"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// The sources of the rows, in `dir`.
fn sources(dir: &Path) -> BTreeMap<&'static str, PathBuf> {
    let write = |rel: &str, content: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
    };
    // A directory: .git and what .gitignore names are not sent.
    write("site/html/index.html", "from a directory\n");
    write("site/html/.gitignore", "ignored.txt\n");
    write("site/html/ignored.txt", "must not be sent\n");
    write("site/.git/HEAD", "ref: refs/heads/main\n");
    // One file.
    write("file/notes.txt", "one file, as it is\n");
    // A tar.gz archive.
    let archive = dir.join("site.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        let page = b"from an archive\n";
        h.set_size(page.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, "html/index.html", &page[..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    // A repository: its commit is sent, not the changed work tree.
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("html")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("html/index.html"), "from a commit\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "the committed page"]);
    std::fs::write(repo.join("html/index.html"), "not committed\n").unwrap();
    // Too large: more than MAX_BYTES, incompressible.
    let big = dir.join("big.bin");
    {
        let mut f = std::fs::File::create(&big).unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..5 {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            f.write_all(&block).unwrap();
        }
    }
    let junk = dir.join("junk.tgz");
    std::fs::write(&junk, vec![b'j'; 4096]).unwrap();
    // A Dockerfile build's folder; its argument comes from `slip start-build --build-arg`.
    write(
        "docker/Dockerfile",
        &format!(
            "FROM {NODE_REGISTRY}/slipway/busybox:latest\nARG V=unset\nCOPY page.txt /page.txt\nRUN echo \"$V\" > /v\n"
        ),
    );
    write("docker/page.txt", "from a folder, by buildah\n");
    BTreeMap::from([
        ("site", dir.join("site")),
        ("file", dir.join("file/notes.txt")),
        ("archive", archive),
        ("repo", repo),
        ("big", big),
        ("junk", junk),
        ("docker", dir.join("docker")),
    ])
}

#[ignore = "needs `make images`; run with `make e2e`"]
#[tokio::test(flavor = "multi_thread")]
async fn binary_builds_from_a_directory_a_file_an_archive_and_a_repository() {
    ensure_crds();
    let client = client().await;
    let ns = TestNamespace::new(&client, "binary").await;
    let n = ns.name.clone();
    pin_to_real_node(&client, &n).await;
    grant_alice(&client, &n).await;
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture {
        builds: real_node_support::Builds {
            client: client.clone(),
            ns: n.clone(),
            // `slip new-build` outputs to the image stream: `<registry>/<namespace>/<stream>`.
            repository: n.clone(),
        },
        alice: kubeconfig_as(dir.path(), "alice"),
        bob: kubeconfig_as(dir.path(), "bob"),
    };
    let src = sources(dir.path());
    let controller = real_node_support::start_build_controller_with(&n, |images| {
        images.binary_max_bytes = MAX_BYTES;
        images.binary_wait = Duration::from_secs(60);
    })
    .await;
    let builder = format!("{NODE_REGISTRY}/slipway/s2i-busybox:latest");
    let out = slip(
        &f.alice,
        &[
            "-n",
            &n,
            "new-build",
            "--binary",
            "--name",
            "site",
            "--image",
            &builder,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let bc = Api::<BuildConfig>::namespaced(client.clone(), &n)
        .get("site")
        .await
        .unwrap();
    assert!(
        bc.spec.triggers.is_empty(),
        "a binary BuildConfig has no triggers"
    );
    assert!(bc.spec.common.source.binary.is_some());

    let out = slip(
        &f.alice,
        &[
            "-n",
            &n,
            "new-build",
            "--binary",
            "--strategy",
            "docker",
            "--name",
            "dock",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", output_text(&out));

    let path = |k: &str| src[k].to_str().unwrap().to_string();
    let (site, file, archive, repo) = (path("site"), path("file"), path("archive"), path("repo"));
    let docker = path("docker");
    let args = [
        ["-n", &n, "start-build", "site", "--from-dir", &site],
        ["-n", &n, "start-build", "site", "--from-file", &file],
        ["-n", &n, "start-build", "site", "--from-archive", &archive],
        ["-n", &n, "start-build", "site", "--from-repo", &repo],
    ];
    let docker_args = [
        "-n",
        &n,
        "start-build",
        "dock",
        "--from-dir",
        &docker,
        "--build-arg",
        "V=from-slip",
    ];
    let (dir_build, file_build, archive_build, repo_build, docker_build) = tokio::join!(
        f.start(&args[0]),
        f.start(&args[1]),
        f.start(&args[2]),
        f.start(&args[3]),
        f.start(&docker_args)
    );
    // A Docker build of an uploaded folder, with `--build-arg` from slip.
    let digest = f.complete(&docker_build).await;
    assert_eq!(
        f.run("dock", &digest, "cat /page.txt /v").await,
        "from a folder, by buildah\nfrom-slip\n"
    );

    // A directory: its page, and not what .gitignore names.
    let digest = f.complete(&dir_build).await;
    assert_eq!(
        f.run("site", &digest, "cat /tmp/app/index.html; ls -a /tmp/app")
            .await,
        "from a directory\n.\n..\n.gitignore\nbuild-count\ngreeting.txt\nindex.html\n"
    );
    // One file, under its name.
    let digest = f.complete(&file_build).await;
    assert_eq!(
        f.run("site", &digest, "cat /tmp/app/notes.txt").await,
        "one file, as it is\n"
    );
    // An archive, unpacked.
    let digest = f.complete(&archive_build).await;
    assert_eq!(
        f.run("site", &digest, "cat /tmp/app/index.html").await,
        "from an archive\n"
    );
    // A repository's commit, with its labels.
    let digest = f.complete(&repo_build).await;
    assert_eq!(
        f.run("site", &digest, "cat /tmp/app/index.html").await,
        "from a commit\n"
    );
    let head = git(&src["repo"], &["rev-parse", "HEAD"]);
    let (_, config) = registry_image(&format!("{n}/site"), &digest).unwrap();
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["io.openshift.build.commit.id"], head.as_str());
    assert_eq!(labels["io.openshift.build.commit.message"], "the committed page");

    // Bob may not create builds: refused, nothing made.
    let before = f.builds().await;
    let out = slip(&f.bob, &["-n", &n, "start-build", "site", "--from-dir", &site]).await;
    fails_with(&out, "forbidden");
    // Without an upload a binary BuildConfig does not build.
    let out = slip(&f.alice, &["-n", &n, "start-build", "site"]).await;
    fails_with(&out, "its source is binary");
    // What is not an archive is refused before a build is made.
    let out = slip(
        &f.alice,
        &["-n", &n, "start-build", "site", "--from-archive", &path("junk")],
    )
    .await;
    fails_with(&out, "not a tar or tar.gz archive");
    assert_eq!(f.builds().await, before, "a refused start made a Build");

    // Too large: the upload is cut off at the bound and the Build fails saying so.
    let out = slip(
        &f.alice,
        &["-n", &n, "start-build", "site", "--from-file", &path("big")],
    )
    .await;
    fails_with(&out, "BinaryInputTooLarge");
    let status = f.finished(&Fixture::started(&out)).await;
    assert_eq!(status.phase, BuildPhase::Failed);
    assert_eq!(
        status.reason.as_deref(),
        Some("BinaryInputTooLarge"),
        "{status:?}"
    );

    // A client that sends what is not an archive (past slip's own check), and one interrupted
    // part way: each Build fails with its reason.
    let alice = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&f.alice).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let request = BuildRequest {
        binary: Some(BinaryBuildSource::default()),
        ..Default::default()
    };
    let junk = instantiate(&alice, &n, "site", &request)
        .await
        .unwrap()
        .name_any();
    let err = slip::binary::upload(
        &alice,
        &n,
        &junk,
        Box::new(|out: &mut dyn Write| out.write_all(&[b'x'; 100_000])),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("InvalidBinaryInput"), "{err:#}");
    let status = f.finished(&junk).await;
    assert_eq!(status.reason.as_deref(), Some("InvalidBinaryInput"), "{status:?}");
    assert!(status.message.unwrap().contains("not a tar archive"));

    let cut = instantiate(&alice, &n, "site", &request)
        .await
        .unwrap()
        .name_any();
    let err = slip::binary::upload(
        &alice,
        &n,
        &cut,
        Box::new(|out: &mut dyn Write| {
            // The start of a good archive: a file of 3 MB, of which 600 kB are sent.
            let mut header = tar::Header::new_gnu();
            header.set_path("big").unwrap();
            header.set_size(3_000_000);
            header.set_mode(0o644);
            header.set_cksum();
            out.write_all(header.as_bytes())?;
            out.write_all(&[1u8; 600_000])?;
            Err(std::io::Error::other("the disk went away"))
        }),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("the disk went away"), "{err:#}");
    let status = f.finished(&cut).await;
    assert_eq!(status.phase, BuildPhase::Failed);
    assert_eq!(
        status.reason.as_deref(),
        Some("BinaryInputIncomplete"),
        "{status:?}"
    );

    controller.abort();
    ns.delete().await;
}
