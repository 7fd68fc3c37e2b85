//! Registries a test starts: Debian's `docker-registry` (the CNCF distribution registry) on a
//! free port over plain HTTP, wanting user `builder` with a random password (htpasswd, bcrypt),
//! or tokens from a token service (Slipway's, in the test's process).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry that wants a password; stopped when dropped.
pub struct AuthRegistry {
    /// `host:port` as clients reach it.
    pub addr: String,
    pub user: String,
    pub password: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl AuthRegistry {
    /// Starts one on the loopback address.
    pub fn start() -> Self {
        Self::start_on("127.0.0.1", "127.0.0.1")
    }

    /// Starts one listening on `listen` (an address of this machine, or `0.0.0.0`), reached as
    /// `host` (the address pods on the real node use for this machine, say).
    pub fn start_on(listen: &str, host: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let user = "builder".to_string();
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let hash = bcrypt::hash(&password, 4).expect("a bcrypt hash");
        std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).expect("htpasswd");
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: slipway-test\n    path: {}\n",
            dir.path().join("htpasswd").display()
        );
        let (addr, child) = serve(dir.path(), listen, host, &auth);
        Self {
            addr,
            user,
            password,
            child,
            _dir: dir,
        }
    }

    /// A docker config JSON with this registry's credentials (or `password` instead).
    pub fn docker_config(&self, password: Option<&str>) -> String {
        docker_config(&self.addr, &self.user, password.unwrap_or(&self.password))
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running registry with token authentication: it trusts tokens signed by the key of
/// `certificate_pem` for `service` from `issuer`, and sends clients to `realm` for them;
/// stopped when dropped.
pub struct TokenRegistry {
    /// `host:port` as clients reach it.
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TokenRegistry {
    /// With `notify` (a URL and a secret), the registry posts its events there, the secret as
    /// a bearer token.
    pub fn start(
        realm: &str,
        service: &str,
        issuer: &str,
        certificate_pem: &str,
        notify: Option<(&str, &str)>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let bundle = dir.path().join("token-signer.crt");
        std::fs::write(&bundle, certificate_pem).expect("the token signing certificate");
        let mut auth = format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
            bundle.display()
        );
        if let Some((url, secret)) = notify {
            auth += &format!(
                "notifications:\n  endpoints:\n  - name: slipway\n    url: {url}\n    headers:\n      Authorization: [\"Bearer {secret}\"]\n    timeout: 5s\n    threshold: 3\n    backoff: 1s\n"
            );
        }
        let (addr, child) = serve(dir.path(), "127.0.0.1", "127.0.0.1", &auth);
        Self {
            addr,
            child,
            _dir: dir,
        }
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `docker-registry` with storage in `dir` and the `auth` section, on a free port of
/// `listen`; returns `host:port` once it accepts connections, and the process.
fn serve(dir: &std::path::Path, listen: &str, host: &str, auth: &str) -> (String, Child) {
    let port = std::net::TcpListener::bind((listen, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: {listen}:{port}\n{auth}",
        root = dir.join("data").display(),
    );
    std::fs::write(dir.join("config.yml"), config).expect("the registry's config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "docker-registry (Debian's package of the distribution registry; dev/prereqs.sh installs it)",
        );
    let addr = format!("{host}:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "docker-registry did not start on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (addr, child)
}

/// A docker config JSON for one registry.
pub fn docker_config(registry: &str, user: &str, password: &str) -> String {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string()
}

/// Pushes a tiny image with random content to `<registry>/<repository>:<tag>` over plain HTTP,
/// with `credentials` (user, password) or anonymously; returns its manifest digest as the
/// registry reports it, or the client's error (a refusal reads `Not authorized: ...`).
pub async fn push_random_image(
    registry: &str,
    repository: &str,
    tag: &str,
    credentials: Option<(&str, &str)>,
) -> Result<String, String> {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::secrets::RegistryAuth;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let auth = credentials.map_or(RegistryAuth::Anonymous, |(u, p)| {
        RegistryAuth::Basic(u.into(), p.into())
    });
    let reference: oci_client::Reference = format!("{registry}/{repository}:{tag}")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let layer = ImageLayer::oci_v1(crate::unique_name("layer").into_bytes(), None);
    let config = Config::oci_v1(br#"{"architecture":"amd64","os":"linux"}"#.to_vec(), None);
    client
        .push(&reference, &[layer], config, &auth, None)
        .await
        .map_err(|e| e.to_string())?;
    client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .map_err(|e| e.to_string())
}

/// Copies the image `from` (a pull spec in a plain-HTTP registry that needs no password, such as
/// the dev registry) to `to` (plain HTTP too), with `credentials` for `to`; returns the digest of
/// the manifest pushed.
pub async fn copy_image(from: &str, to: &str, credentials: Option<(&str, &str)>) -> Result<String, String> {
    use oci_client::manifest;
    use oci_client::secrets::RegistryAuth;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let source: oci_client::Reference = from.parse().map_err(|e| format!("{from}: {e}"))?;
    let target: oci_client::Reference = to.parse().map_err(|e| format!("{to}: {e}"))?;
    let layers = [
        manifest::IMAGE_LAYER_MEDIA_TYPE,
        manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE,
        manifest::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE,
        manifest::IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE,
    ];
    let image = client
        .pull(&source, &RegistryAuth::Anonymous, layers.to_vec())
        .await
        .map_err(|e| format!("pulling {from}: {e}"))?;
    let auth = credentials.map_or(RegistryAuth::Anonymous, |(u, p)| {
        RegistryAuth::Basic(u.into(), p.into())
    });
    client
        .push(&target, &image.layers, image.config, &auth, None)
        .await
        .map_err(|e| format!("pushing {to}: {e}"))?;
    client
        .fetch_manifest_digest(&target, &auth)
        .await
        .map_err(|e| e.to_string())
}
