//! Asking a registry which manifest a pull spec names (a GET of the manifest; for an image index
//! in Legacy mode, a HEAD of the entry of the operator's platform), through oci-client.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use slipway_crds::image::ImportMode;
use slipway_crds::platform::{self, INDEX_MEDIA_TYPES, Platform};

/// What an import found: the manifest digest, and the pull spec by digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// `sha256:...`
    pub digest: String,
    /// `registry/repository@sha256:...`
    pub reference: String,
}

/// Why an import failed: a short reason (the ImportSuccess condition's) and the registry's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    pub reason: &'static str,
    pub message: String,
}

/// Parses a pull spec the way docker and OpenShift do (`app` is `docker.io/library/app:latest`).
pub fn parse_pull_spec(spec: &str) -> Result<Reference, ImportError> {
    let invalid = |why: String| ImportError {
        reason: "InvalidImageReference",
        message: format!(
            "{:?} is not a valid image reference: {why}",
            spec.chars().take(200).collect::<String>()
        ),
    };
    if spec.len() > 1024 {
        return Err(invalid(format!("{} bytes is longer than 1024", spec.len())));
    }
    let reference = spec.parse::<Reference>().map_err(|e| invalid(e.to_string()))?;
    // The distribution spec allows lower-case repository names only.
    if reference.repository().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid("repository names are lower-case".into()));
    }
    Ok(reference)
}

/// The pull spec of `reference`'s repository by `digest`, as pods pull it.
pub fn by_digest(reference: &Reference, digest: &str) -> String {
    format!("{}/{}@{digest}", reference.registry(), reference.repository())
}

/// Resolves `spec` to its manifest digest in the default (Legacy) mode, anonymously; see
/// [`resolve_with`].
pub async fn resolve(spec: &str, insecure: bool) -> Result<Resolved, ImportError> {
    resolve_with(spec, insecure, ImportMode::Legacy, &RegistryAuth::Anonymous).await
}

/// The media types an import accepts: images and image indexes.
const ACCEPTED: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    INDEX_MEDIA_TYPES[0],
    INDEX_MEDIA_TYPES[1],
];

/// The largest manifest an import reads.
const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Resolves `spec` to a manifest digest; `insecure` allows plain http (and unverified TLS).
/// When the registry serves an image index, `PreserveOriginal` keeps the index's digest and
/// `Legacy` takes the digest of the index's image for the operator's platform (the cluster's),
/// as OpenShift's Legacy import keeps a single manifest. `auth` is sent to the registry (the
/// project's credentials for it, or Anonymous); a registry that wants others answers
/// Unauthorized, which is reported as such.
pub async fn resolve_with(
    spec: &str,
    insecure: bool,
    mode: ImportMode,
    auth: &RegistryAuth,
) -> Result<Resolved, ImportError> {
    resolve_for(spec, insecure, mode, &Platform::current(), auth).await
}

/// [`resolve_with`] for the given platform.
pub async fn resolve_for(
    spec: &str,
    insecure: bool,
    mode: ImportMode,
    platform: &Platform,
    auth: &RegistryAuth,
) -> Result<Resolved, ImportError> {
    ensure_crypto_provider();
    let reference = parse_pull_spec(spec)?;
    let config = ClientConfig {
        protocol: if insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: insecure,
        connect_timeout: Some(Duration::from_secs(5)),
        read_timeout: Some(Duration::from_secs(15)),
        ..Default::default()
    };
    let client = Client::new(config);
    let (bytes, digest) = client
        .pull_manifest_raw(&reference, auth, &ACCEPTED)
        .await
        .map_err(|e| import_error(&reference, &e))?;
    if mode == ImportMode::PreserveOriginal {
        return Ok(Resolved {
            reference: by_digest(&reference, &digest),
            digest,
        });
    }
    let invalid = |why: String| ImportError {
        reason: "InternalError",
        message: format!("importing {reference}: {why}"),
    };
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(invalid(format!(
            "the manifest is larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("the manifest is not JSON: {e}")))?;
    if !platform::is_index(&manifest) {
        return Ok(Resolved {
            reference: by_digest(&reference, &digest),
            digest,
        });
    }
    let chosen = platform::select(&manifest, platform).map_err(|e| ImportError {
        reason: "NoMatchingPlatform",
        message: format!(
            "importing {reference}: {e} (importPolicy.importMode PreserveOriginal records the index itself)"
        ),
    })?;
    // The entry must be there, or pods would fail to pull what the tag records.
    let entry = reference.clone_with_digest(chosen.clone());
    client
        .fetch_manifest_digest(&entry, auth)
        .await
        .map_err(|e| import_error(&entry, &e))?;
    Ok(Resolved {
        reference: by_digest(&reference, &chosen),
        digest: chosen,
    })
}

/// kube and oci-client share rustls with the ring provider; it is installed once per process.
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The condition reason for an oci-client error, and its whole message with causes (the socket
/// error of an unreachable registry is in the sources).
fn import_error(reference: &Reference, error: &OciDistributionError) -> ImportError {
    use OciDistributionError as E;
    let reason = match error {
        E::ImageManifestNotFoundError(_) => "NotFound",
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => "Unauthorized",
        E::RegistryError { envelope, .. } => {
            use oci_client::errors::OciErrorCode as C;
            match envelope.errors.first().map(|e| &e.code) {
                Some(C::ManifestUnknown | C::NameUnknown | C::NotFound | C::BlobUnknown) => "NotFound",
                Some(C::Unauthorized | C::Denied) => "Unauthorized",
                _ => "InternalError",
            }
        }
        E::RequestError(e) if e.is_connect() || e.is_timeout() => "Unreachable",
        E::ServerError { code: 404, .. } => "NotFound",
        E::ServerError { code: 401 | 403, .. } => "Unauthorized",
        _ => "InternalError",
    };
    let mut message = format!("importing {reference}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    ImportError { reason, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_specs_parse_like_docker_and_give_digest_references() {
        let r = parse_pull_spec("127.0.0.1:15000/team/app:v1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:15000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(by_digest(&r, "sha256:abc"), "127.0.0.1:15000/team/app@sha256:abc");
        let r = parse_pull_spec("app").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/app");
    }

    #[test]
    fn bad_pull_specs_are_refused_with_the_spec() {
        for bad in [
            "",
            "UPPER/case",
            "a b",
            "app:bad tag",
            &"x".repeat(5000),
            "a@sha256:zz",
        ] {
            let e = parse_pull_spec(bad).unwrap_err();
            assert_eq!(e.reason, "InvalidImageReference", "{bad}");
        }
    }
}
