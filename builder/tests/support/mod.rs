//! Helpers for the image tests: the static builder binary, the busybox S2I builder image
//! assembled from examples/apps/s2i-busybox and pushed to the real local registry, runc
//! containers made from unpacked images, and a second registry that wants a password.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use slipway_builder::layer::{sha256_digest, unpack_layer};
use slipway_builder::registry::{
    Credentials, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, Registry, parse_reference,
};

/// The dev cluster's registry.
pub const REGISTRY: &str = "127.0.0.1:15000";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The static slipway-builder, built once per test binary by builder/static.sh (dev profile).
pub fn static_builder() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("SLIPWAY_BUILDER_STATIC") {
            return PathBuf::from(p);
        }
        let out = Command::new(workspace_root().join("builder/static.sh"))
            .arg("dev")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "builder/static.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A unique name part.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn registry() -> Registry {
    Registry::new(Credentials::default(), &[REGISTRY.to_owned()]).unwrap()
}

/// An in-memory gzip tar layer.
pub struct Layer {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
}

fn finish_layer(tar: tar::Builder<Vec<u8>>) -> Layer {
    let raw = tar.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&raw).unwrap();
    let bytes = gz.finish().unwrap();
    Layer {
        digest: sha256_digest(&bytes),
        diff_id: sha256_digest(&raw),
        bytes,
    }
}

fn dir(t: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(mode);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    t.append_data(&mut h, path, std::io::empty()).unwrap();
}

fn file(t: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    t.append_data(&mut h, path, data).unwrap();
}

fn symlink(t: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    t.append_link(&mut h, path, target).unwrap();
}

/// The busybox S2I builder image of examples/apps/s2i-busybox: a base layer (busybox-static and
/// its applets, /etc/passwd, /tmp) and a scripts layer, with the config of its image.json.
pub struct BuilderImage {
    pub layers: Vec<Layer>,
    pub config: Value,
}

impl BuilderImage {
    pub fn new() -> Self {
        let example = workspace_root().join("examples/apps/s2i-busybox");
        let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed (dev/prereqs.sh)");
        let applets = Command::new("/bin/busybox").arg("--list").output().unwrap();
        let mut base = tar::Builder::new(Vec::new());
        for (d, m) in [
            ("bin", 0o755),
            ("etc", 0o755),
            ("tmp", 0o1777),
            ("usr", 0o755),
            ("usr/libexec", 0o755),
        ] {
            dir(&mut base, d, m);
        }
        file(&mut base, "bin/busybox", 0o755, &busybox);
        for a in String::from_utf8(applets.stdout).unwrap().lines() {
            if a != "busybox" {
                symlink(&mut base, &format!("bin/{a}"), "busybox");
            }
        }
        file(
            &mut base,
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\ndefault:x:1001:0:s2i:/tmp:/bin/sh\n",
        );
        file(&mut base, "etc/group", 0o644, b"root:x:0:\n");
        let mut scripts = tar::Builder::new(Vec::new());
        dir(&mut scripts, "usr/libexec/s2i", 0o755);
        for entry in std::fs::read_dir(example.join("s2i/bin")).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            file(
                &mut scripts,
                &format!("usr/libexec/s2i/{name}"),
                0o755,
                &std::fs::read(entry.path()).unwrap(),
            );
        }
        let layers = vec![finish_layer(base), finish_layer(scripts)];
        let def: Value = serde_json::from_slice(&std::fs::read(example.join("image.json")).unwrap()).unwrap();
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": def["user"], "WorkingDir": def["workingDir"], "Env": def["env"],
                "Cmd": def["cmd"], "Labels": def["labels"],
            },
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "history": [{"created_by": "busybox base"}, {"created_by": "s2i scripts"}],
        });
        Self { layers, config }
    }

    /// Pushes it to the dev registry under `repo:latest` (`repo` without registry); returns the
    /// reference.
    pub fn push(&self, repo: &str) -> String {
        let reference = format!("{REGISTRY}/{repo}:latest");
        let r = parse_reference(&reference).unwrap();
        let reg = registry();
        let config = serde_json::to_vec(&self.config).unwrap();
        let config_digest = sha256_digest(&config);
        rt().block_on(async {
            reg.login(&r, oci_client::RegistryOperation::Push).await.unwrap();
            for l in &self.layers {
                reg.push_blob(&r, l.bytes.clone(), &l.digest).await.unwrap();
            }
            reg.push_blob(&r, config.clone(), &config_digest).await.unwrap();
            let manifest = json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
                "layers": self.layers.iter().map(|l| json!({"mediaType": OCI_LAYER_GZIP, "digest": l.digest, "size": l.bytes.len()})).collect::<Vec<_>>(),
            });
            reg.push_manifest(&r, &serde_json::to_vec(&manifest).unwrap(), OCI_MANIFEST)
                .await
                .unwrap();
        });
        reference
    }

    /// Pushes an image index under `repo:latest` with one entry per `(os/architecture, marker)`:
    /// each entry is this image plus a layer whose file `etc/slipway-platform` holds `marker`,
    /// with a config naming that platform. Returns the reference and the entries' manifest
    /// digests, in the order given.
    pub fn push_index(&self, repo: &str, entries: &[(&str, &str)]) -> (String, Vec<String>) {
        let reference = format!("{REGISTRY}/{repo}:latest");
        let r = parse_reference(&reference).unwrap();
        let reg = registry();
        rt().block_on(async {
            reg.login(&r, oci_client::RegistryOperation::Push).await.unwrap();
            for l in &self.layers {
                reg.push_blob(&r, l.bytes.clone(), &l.digest).await.unwrap();
            }
            let mut descriptors = Vec::new();
            let mut digests = Vec::new();
            for (platform, marker) in entries {
                let (os, architecture) = platform.split_once('/').unwrap();
                let mut t = tar::Builder::new(Vec::new());
                dir(&mut t, "etc", 0o755);
                file(&mut t, "etc/slipway-platform", 0o644, marker.as_bytes());
                let extra = finish_layer(t);
                reg.push_blob(&r, extra.bytes.clone(), &extra.digest)
                    .await
                    .unwrap();
                let mut config = self.config.clone();
                config["os"] = json!(os);
                config["architecture"] = json!(architecture);
                config["rootfs"]["diff_ids"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(extra.diff_id));
                let config = serde_json::to_vec(&config).unwrap();
                let config_digest = sha256_digest(&config);
                reg.push_blob(&r, config.clone(), &config_digest).await.unwrap();
                let layers: Vec<Value> = self
                    .layers
                    .iter()
                    .chain([&extra])
                    .map(|l| json!({"mediaType": OCI_LAYER_GZIP, "digest": l.digest, "size": l.bytes.len()}))
                    .collect();
                let manifest = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
                    "layers": layers,
                }))
                .unwrap();
                let by_digest = r.clone_with_digest(sha256_digest(&manifest));
                let digest = reg
                    .push_manifest(&by_digest, &manifest, OCI_MANIFEST)
                    .await
                    .unwrap();
                descriptors.push(
                    json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len(),
                    "platform": {"os": os, "architecture": architecture}}),
                );
                digests.push(digest);
            }
            let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors});
            reg.push_manifest(&r, &serde_json::to_vec(&index).unwrap(), OCI_INDEX)
                .await
                .unwrap();
            (reference, digests)
        })
    }

    /// Unpacks the image into `dest` (as the build pod's container would see it).
    pub fn unpack(&self, dest: &Path) {
        for l in &self.layers {
            unpack_layer(&l.bytes, dest).unwrap();
        }
    }
}

/// Pulls an image back from a registry: its manifest, config and unpacked rootfs.
pub struct PulledBack {
    pub manifest: Value,
    pub config: Value,
    pub layer_digests: Vec<String>,
}

pub fn pull_and_unpack(reg: &Registry, reference: &str, dest: &Path) -> PulledBack {
    let r = parse_reference(reference).unwrap();
    rt().block_on(async {
        let img = reg.pull_image(&r).await.unwrap();
        let mut digests = Vec::new();
        for l in img.layers() {
            let d = l["digest"].as_str().unwrap().to_owned();
            let bytes = reg.pull_blob(&r, &d).await.unwrap();
            assert_eq!(sha256_digest(&bytes), d);
            unpack_layer(&bytes, dest).unwrap();
            digests.push(d);
        }
        PulledBack {
            manifest: img.manifest,
            config: img.config,
            layer_digests: digests,
        }
    })
}

/// Whether `reference`'s tag exists in its registry.
pub fn tag_exists(reg: &Registry, reference: &str) -> bool {
    let r = parse_reference(reference).unwrap();
    rt().block_on(reg.manifest_digest(&r)).is_ok()
}

/// A bind mount into a container.
pub struct Mount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// A runc container (host network, so that it reaches the loopback registry), run as `uid`.
pub struct Container {
    pub id: String,
    bundle: tempfile::TempDir,
    state: PathBuf,
}

impl Container {
    pub fn new(
        rootfs: &Path,
        args: &[String],
        env: &[String],
        cwd: &str,
        uid: u32,
        gid: u32,
        mounts: &[Mount],
    ) -> Self {
        let bundle = tempfile::tempdir().unwrap();
        let out = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(bundle.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "runc spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = bundle.path().join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        spec["root"] = json!({"path": rootfs, "readonly": false});
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        spec["process"]["env"] = json!(env);
        spec["process"]["cwd"] = json!(cwd);
        spec["process"]["user"] = json!({"uid": uid, "gid": gid});
        spec["hostname"] = json!("build");
        let ns: Vec<Value> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != "network")
            .cloned()
            .collect();
        spec["linux"]["namespaces"] = json!(ns);
        let m = spec["mounts"].as_array_mut().unwrap();
        for mount in mounts {
            let mut options = vec!["rbind", "nosuid", "nodev"];
            if mount.read_only {
                options.push("ro");
            }
            m.push(json!({"destination": mount.destination, "type": "bind", "source": mount.source, "options": options}));
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        let state = bundle.path().join("state");
        Self {
            id: unique("slipway-test"),
            bundle,
            state,
        }
    }

    fn runc(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(&self.state);
        c
    }

    /// Runs to completion; (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let out = self
            .runc()
            .args(["run", "--bundle"])
            .arg(self.bundle.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts it in the background; stop with [`Container::stop`].
    pub fn start(&self) -> Child {
        self.runc()
            .args(["run", "--bundle"])
            .arg(self.bundle.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn stop(&self, mut child: Child) -> String {
        let _ = self.runc().args(["kill", &self.id, "KILL"]).output();
        let _ = child.wait();
        let _ = self.runc().args(["delete", "--force", &self.id]).output();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.runc().args(["delete", "--force", &self.id]).output();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from 127.0.0.1:`port` over HTTP/1.0, retrying while the server comes up (bounded,
/// so a broken server fails the test instead of hanging it).
pub fn http_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
                .is_ok()
            {
                let mut body = String::new();
                if s.read_to_string(&mut body).is_ok() && !body.is_empty() {
                    return body;
                }
            }
        }
        assert!(Instant::now() < deadline, "nothing answered on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[allow(unused_imports)] // not every test binary uses them
pub use slipway_testkit::registry::{AuthRegistry, docker_config};

/// Makes `path` and everything under it readable by anyone (tempdirs are 0700).
pub fn open_up(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(path) {
        let e = e.unwrap();
        let mode = if e.file_type().is_dir() {
            0o755
        } else {
            0o644 | (e.metadata().unwrap().permissions().mode() & 0o111)
        };
        if !e.file_type().is_symlink() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Environment for a container: the image's plus `extra`.
pub fn image_env(config: &Value, extra: &BTreeMap<&str, String>) -> Vec<String> {
    let mut env: Vec<String> = config["config"]["Env"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    for (k, v) in extra {
        env.retain(|e| !e.starts_with(&format!("{k}=")));
        env.push(format!("{k}={v}"));
    }
    env
}
