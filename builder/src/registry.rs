//! The registry side: credentials from a mounted docker config JSON, reading a builder image's
//! manifest and config, pushing blobs (mounting them from another repository of the same
//! registry when possible) and the manifest.

use std::path::Path;

use base64::Engine;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::Value;
use slipway_crds::platform::{self, Platform};

use crate::layer::sha256_digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The largest manifest or config accepted from a registry.
const MAX_DOCUMENT_BYTES: usize = 4 << 20;

pub use slipway_crds::dockercfg::Credentials;

/// Where the build's credentials for pulling its builder or base image are: the strategy's
/// `pullSecret` (`has_pull_secret`), or else the docker configs of the build's service account
/// that the operator mounted at `PULL_DOCKERCFG_PATH` (its linked `imagePullSecrets`, one file
/// each, optional: none there is none at all).
pub fn pull_config(has_pull_secret: bool) -> Option<std::path::PathBuf> {
    use slipway_crds::contract::{env, paths};
    if has_pull_secret {
        return Some(paths::PULL_SECRET.into());
    }
    let dir = std::path::PathBuf::from(std::env::var_os(env::PULL_DOCKERCFG_PATH)?);
    // A projected volume holds `..data` and a timestamped directory besides the files.
    let has_files = std::fs::read_dir(&dir)
        .is_ok_and(|entries| entries.filter_map(Result::ok).any(|e| e.path().is_file()));
    has_files.then_some(dir)
}

/// The credentials `credentials` hold for `registry`, as the registry client takes them.
pub fn auth_for(credentials: &Credentials, registry: &str) -> RegistryAuth {
    match credentials.for_registry(registry) {
        Some((u, p)) => RegistryAuth::Basic(u.to_owned(), p.to_owned()),
        None => RegistryAuth::Anonymous,
    }
}

/// Whether a client error is a failed connection (no answer from the registry at all).
fn is_connection_error(message: &str) -> bool {
    message.contains("error sending request") || message.contains("connection refused")
}

/// A client for the registries of one build.
pub struct Registry {
    client: Client,
    credentials: Credentials,
}

/// An image's manifest (as JSON) and config (as JSON), with the digests they were found under.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub manifest: Value,
    pub manifest_digest: String,
    pub config: Value,
}

impl PulledImage {
    pub fn layers(&self) -> Vec<Value> {
        self.manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    pub fn media_type(&self) -> &str {
        self.manifest
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(OCI_MANIFEST)
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Registry {
    /// `insecure`: registries (`host:port`) reached over plain http. TLS trusts Mozilla's roots
    /// (builder images often have no CA bundle), the PEM files of `SSL_CERT_FILE` and the CA
    /// certificates of `REGISTRY_CA` (the integrated registry's, set by the operator).
    pub fn new(credentials: Credentials, insecure: &[String]) -> Result<Self, String> {
        // The workspace uses ring; install it once as rustls' provider (a second call is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let protocol = if insecure.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(insecure.to_vec())
        };
        let mut roots: Vec<Certificate> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate {
                encoding: CertificateEncoding::Der,
                data: c.as_ref().to_vec(),
            })
            .collect();
        if let Ok(file) = std::env::var("SSL_CERT_FILE") {
            let data = std::fs::read(&file).map_err(|e| format!("SSL_CERT_FILE {file}: {e}"))?;
            roots.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        if let Ok(pem) = std::env::var(slipway_crds::contract::env::REGISTRY_CA)
            && !pem.trim().is_empty()
        {
            roots.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.into_bytes(),
            });
        }
        let config = ClientConfig {
            protocol,
            tls_certs_only: roots,
            connect_timeout: Some(std::time::Duration::from_secs(15)),
            read_timeout: Some(std::time::Duration::from_secs(120)),
            ..ClientConfig::default()
        };
        Ok(Self {
            client: Client::try_from(config).map_err(|e| format!("the registry client: {e}"))?,
            credentials,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn auth_for(&self, r: &Reference) -> RegistryAuth {
        auth_for(&self.credentials, r.resolve_registry())
    }

    /// Authenticates for `op` on `r` (a registry without auth answers at once). The first
    /// request of a build: a connection that fails (a pod whose network is a moment late, a
    /// registry busy with other builds' pushes) is tried again, three more times over ~2 s;
    /// an answer of the registry's, a refusal included, is never retried.
    pub async fn login(&self, r: &Reference, op: RegistryOperation) -> Result<(), String> {
        let mut pause = std::time::Duration::from_millis(250);
        for _ in 0..3 {
            match self.client.auth(r, &self.auth_for(r), op).await {
                Err(e) if is_connection_error(&e.to_string()) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                other => return other.map(|_| ()).map_err(err),
            }
        }
        self.client
            .auth(r, &self.auth_for(r), op)
            .await
            .map(|_| ())
            .map_err(err)
    }

    /// Reads an image's manifest and config. An image index (OCI index or Docker manifest list)
    /// is resolved to the entry of the platform this builder runs on — the build pod's node,
    /// whose container runtime chose the same entry to run the builder image — and an index
    /// without one is an error naming the platforms it has.
    pub async fn pull_image(&self, r: &Reference) -> Result<PulledImage, String> {
        self.pull_image_for(r, &Platform::current()).await
    }

    /// [`Registry::pull_image`] for the given platform.
    pub async fn pull_image_for(&self, r: &Reference, platform: &Platform) -> Result<PulledImage, String> {
        self.login(r, RegistryOperation::Pull).await?;
        let accepted = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];
        let (bytes, mut digest) = self
            .client
            .pull_manifest_raw(r, &self.auth_for(r), &accepted)
            .await
            .map_err(err)?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err("the manifest is larger than 4 MiB".into());
        }
        let mut manifest: Value = serde_json::from_slice(&bytes).map_err(|e| format!("manifest: {e}"))?;
        if platform::is_index(&manifest) {
            let chosen = platform::select(&manifest, platform).map_err(|e| e.to_string())?;
            let by_digest = r.clone_with_digest(chosen.clone());
            let (bytes, d) = self
                .client
                .pull_manifest_raw(&by_digest, &self.auth_for(r), &[OCI_MANIFEST, DOCKER_MANIFEST])
                .await
                .map_err(|e| format!("the {platform} image {chosen} of the index: {e}"))?;
            if bytes.len() > MAX_DOCUMENT_BYTES {
                return Err("the manifest is larger than 4 MiB".into());
            }
            manifest = serde_json::from_slice(&bytes).map_err(|e| format!("manifest: {e}"))?;
            if platform::is_index(&manifest) {
                return Err(format!(
                    "the {platform} entry {chosen} of the image index is an index itself; nested indexes are not read"
                ));
            }
            digest = d;
        }
        let config_digest = manifest
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .ok_or("the manifest has no config")?
            .to_owned();
        let config_bytes = self.pull_blob(r, &config_digest).await?;
        if sha256_digest(&config_bytes) != config_digest {
            return Err(format!("the config does not match its digest {config_digest}"));
        }
        let config: Value = serde_json::from_slice(&config_bytes).map_err(|e| format!("config: {e}"))?;
        Ok(PulledImage {
            manifest,
            manifest_digest: digest,
            config,
        })
    }

    /// A whole blob.
    pub async fn pull_blob(&self, r: &Reference, digest: &str) -> Result<Vec<u8>, String> {
        let mut out: Vec<u8> = Vec::new();
        self.client.pull_blob(r, digest, &mut out).await.map_err(err)?;
        Ok(out)
    }

    /// Makes the blob `digest` of `from` available in `to`: nothing if it is there, a
    /// cross-repository mount on the same registry, else a copy. Returns how it got there.
    pub async fn reuse_blob(
        &self,
        from: &Reference,
        to: &Reference,
        digest: &str,
    ) -> Result<&'static str, String> {
        if self.client.blob_exists(to, digest).await.unwrap_or(false) {
            return Ok("present");
        }
        if from.resolve_registry() == to.resolve_registry()
            && self.client.mount_blob(to, from, digest).await.is_ok()
            && self.client.blob_exists(to, digest).await.unwrap_or(false)
        {
            return Ok("mounted");
        }
        let data = self.pull_blob(from, digest).await?;
        self.client.push_blob(to, data, digest).await.map_err(err)?;
        Ok("copied")
    }

    /// Pushes a blob unless the repository has it already.
    pub async fn push_blob(&self, to: &Reference, data: Vec<u8>, digest: &str) -> Result<(), String> {
        if self.client.blob_exists(to, digest).await.unwrap_or(false) {
            return Ok(());
        }
        self.client.push_blob(to, data, digest).await.map_err(err)?;
        Ok(())
    }

    /// Pushes a manifest (bytes as given) under `to`'s tag; returns its digest.
    pub async fn push_manifest(
        &self,
        to: &Reference,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<String, String> {
        let ct = media_type.parse().map_err(err)?;
        self.client
            .push_manifest_raw(to, manifest.to_vec(), ct)
            .await
            .map_err(err)?;
        Ok(sha256_digest(manifest))
    }

    /// The digest the registry reports for `r`'s tag.
    pub async fn manifest_digest(&self, r: &Reference) -> Result<String, String> {
        self.client
            .fetch_manifest_digest(r, &self.auth_for(r))
            .await
            .map_err(err)
    }
}

/// Where distributions keep their CA bundle.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Whether the HTTP stack will find CA certificates (it refuses to start without any, and many
/// builder images, busybox for one, have none).
pub fn has_ca_bundle() -> bool {
    std::env::var_os("SSL_CERT_FILE").is_some()
        || std::env::var_os("SSL_CERT_DIR").is_some()
        || CA_BUNDLES.iter().any(|p| Path::new(p).is_file())
}

/// Mozilla's roots as one PEM bundle.
pub fn mozilla_roots_pem() -> String {
    let mut out = String::new();
    for c in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// Parses an image reference the way the build's spec gives it.
pub fn parse_reference(s: &str) -> Result<Reference, String> {
    s.parse::<Reference>()
        .map_err(|e| format!("invalid image reference {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth_for_their_registry_only() {
        let c = Credentials::parse(
            r#"{"auths":{"https://reg.example:5000/v1/":{"username":"u","password":"p"}}}"#,
        )
        .unwrap();
        match auth_for(&c, "reg.example:5000") {
            RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("u", "p")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(auth_for(&c, "other"), RegistryAuth::Anonymous));
    }
}
