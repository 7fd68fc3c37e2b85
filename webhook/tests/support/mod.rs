//! Shared by the git webhook tests and benchmark: the webhook server run in-process on a loopback
//! port, a small HTTPS client that sends deliveries byte for byte, signing as each provider does,
//! and a BuildConfig with one webhook trigger per provider.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use slipway_crds::BuildConfig;
use slipway_webhook::git::verify::sign_hex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub const SECRET: &str = "s3cr3t-of-the-hook";

/// The webhook server on a free loopback port, and a client that trusts its certificate.
pub struct Hook {
    pub addr: SocketAddr,
    /// The server's watch-fed caches.
    pub caches: slipway_webhook::git::cache::Caches,
    connector: TlsConnector,
    handle: axum_server::Handle<SocketAddr>,
}

impl Hook {
    pub async fn start(client: Client) -> Self {
        let addr = slipway_testkit::free_loopback_addr();
        let certs = slipway_webhook::tls::generate(&["127.0.0.1".to_string()]).unwrap();
        let handle = axum_server::Handle::new();
        let caches = slipway_webhook::git::cache::Caches::start(&client);
        tokio::spawn(slipway_webhook::server::serve_with(
            addr,
            certs.cert_pem.clone(),
            certs.key_pem.clone(),
            client,
            caches.clone(),
            handle.clone(),
        ));
        Self::connected(addr, &certs, caches, handle).await
    }

    /// The admission listener (not registered with the API server: requests are posted to it
    /// directly) on a free loopback port, and a client that trusts its certificate.
    pub async fn admission(client: Client) -> Self {
        let addr = slipway_testkit::free_loopback_addr();
        let certs = slipway_webhook::tls::generate(&["127.0.0.1".to_string()]).unwrap();
        let handle = axum_server::Handle::new();
        let serving = slipway_webhook::tls::Serving {
            cert_pem: certs.cert_pem.clone(),
            key_pem: certs.key_pem.clone(),
        };
        let resolver = slipway_webhook::tls::Resolver::new(&serving).unwrap();
        let caches = slipway_webhook::git::cache::Caches::start(&client);
        caches.freeze();
        tokio::spawn(slipway_webhook::server::serve_tls(
            addr,
            Arc::new(resolver),
            client,
            handle.clone(),
        ));
        Self::connected(addr, &certs, caches, handle).await
    }

    async fn connected(
        addr: SocketAddr,
        certs: &slipway_webhook::tls::Certificates,
        caches: slipway_webhook::git::cache::Caches,
        handle: axum_server::Handle<SocketAddr>,
    ) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(certs.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self {
            addr,
            caches,
            connector: TlsConnector::from(Arc::new(config)),
            handle,
        }
    }

    /// The server, once its caches have listed what they mirror.
    pub async fn start_synced(client: Client) -> Self {
        let hook = Self::start(client).await;
        for _ in 0..600 {
            if hook.caches.synced() {
                return hook;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the webhook's caches did not list within 30 s");
    }

    /// A TLS connection to the server.
    pub async fn connect(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        self.connector.connect(name, tcp).await.unwrap()
    }

    /// POSTs `body` to `path` with `headers` (and Content-Length); the status and JSON answer.
    pub async fn post(&self, path: &str, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
        let mut request = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.exchange(&bytes).await
    }

    /// POSTs on an open connection, keeping it open (as a provider with keep-alive would).
    pub async fn post_on(
        tls: &mut tokio_rustls::client::TlsStream<TcpStream>,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, Value) {
        let mut request = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        tls.write_all(&bytes).await.unwrap();
        tls.flush().await.unwrap();
        read_response(tls).await
    }

    /// Sends raw request bytes and reads one response.
    pub async fn exchange(&self, request: &[u8]) -> (u16, Value) {
        let mut tls = self.connect().await;
        tls.write_all(request).await.unwrap();
        tls.flush().await.unwrap();
        read_response(&mut tls).await
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Reads one HTTP/1.1 response with a Content-Length: the status and the JSON body.
pub async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> (u16, Value) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                let body = &buf[end + 4..end + 4 + length];
                let value = serde_json::from_slice(body)
                    .unwrap_or(Value::String(String::from_utf8_lossy(body).into()));
                return (status, value);
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "the connection closed before a whole response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The headers `provider` sends with a delivery of `event` signed with `secret` (GitLab sends the
/// secret itself).
pub fn signed(provider: &str, event: &str, body: &[u8], secret: &str) -> Vec<(String, String)> {
    let sig = sign_hex(body, secret.as_bytes());
    let delivery = format!("{:032x}", rand::random::<u128>());
    let pairs: Vec<(&str, String)> = match provider {
        "github" => vec![
            ("X-GitHub-Event", event.into()),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", format!("sha256={sig}")),
            ("User-Agent", "GitHub-Hookshot/044aadd".into()),
        ],
        "gitlab" => vec![
            ("X-Gitlab-Event", event.into()),
            ("X-Gitlab-Event-UUID", delivery),
            ("X-Gitlab-Token", secret.into()),
        ],
        "bitbucket" => vec![
            ("X-Event-Key", event.into()),
            ("X-Request-UUID", delivery),
            ("X-Hub-Signature", format!("sha256={sig}")),
        ],
        "gitea" => vec![
            ("X-Gitea-Event", event.into()),
            ("X-Gitea-Delivery", delivery),
            ("X-Gitea-Signature", sig),
        ],
        "generic" => vec![("X-Slipway-Signature-256", format!("sha256={sig}"))],
        other => panic!("no provider {other}"),
    };
    let mut headers: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    headers.push(("Content-Type".into(), "application/json".into()));
    headers
}

/// A Secret `hook` with the webhook secret (labelled as `slip set triggers` labels its Secrets, so
/// that the server mirrors it), and a BuildConfig `name` with a trigger per provider:
/// GitHub on `main` and `release/*`, GitLab and Gitea on the source ref (`main`), Bitbucket on
/// `release/*`, generic (with env) on anything.
pub async fn setup(client: &Client, namespace: &str, name: &str, run_policy: &str) -> BuildConfig {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "hook", "labels": {slipway_crds::build::labels::WEBHOOK_SECRET: "true"}},
        "stringData": {"WebHookSecretKey": SECRET}
    }))
    .unwrap();
    if let Err(e) = secrets.create(&PostParams::default(), &secret).await {
        assert!(matches!(&e, kube::Error::Api(s) if s.code == 409), "{e}");
    }
    let reference = json!({"secretReference": {"name": "hook"}});
    let config: BuildConfig = serde_json::from_value(json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": name},
        "spec": {
            "runPolicy": run_policy,
            "source": {"type": "Git", "git": {"uri": "https://example.com/team/app.git", "ref": "main"}},
            "strategy": {"type": "Source", "sourceStrategy": {"from": {"kind": "DockerImage", "name": "registry.example.com/builder:1"}}},
            "output": {"to": {"kind": "DockerImage", "name": "registry.example.com/app:latest"}},
            "triggers": [
                {"type": "GitHub", "github": {"secretReference": {"name": "hook"}, "refs": ["main", "release/*"]}},
                {"type": "GitLab", "gitlab": reference},
                {"type": "Bitbucket", "bitbucket": {"secretReference": {"name": "hook"}, "refs": ["release/*"]}},
                {"type": "Gitea", "gitea": reference},
                {"type": "Generic", "generic": {"secretReference": {"name": "hook"}, "allowEnv": true}},
            ]
        }
    }))
    .unwrap();
    Api::<BuildConfig>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &config)
        .await
        .unwrap()
}

/// A GitHub push of `commit` to `git_ref` (the documented shape, head commit set).
pub fn github_push(git_ref: &str, commit: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("github-push.json")).unwrap();
    body["ref"] = json!(git_ref);
    body["after"] = json!(commit);
    body["head_commit"]["id"] = json!(commit);
    body["head_commit"]["message"] = json!(format!("commit {commit}"));
    serde_json::to_vec(&body).unwrap()
}
