//! The registry tokens Slipway issues: JSON Web Tokens in the shape the distribution registry's
//! token authentication verifies (its `docs/spec/auth/jwt.md`): signed ES256, the signing
//! certificate in the `x5c` header (the registry trusts it through its `rootcertbundle`), the
//! registry's service as the audience, and the granted actions per repository in `access`.
//!
//! Signed here with ring rather than a JWT crate: the current JWT crates sign with aws-lc-rs or
//! RustCrypto's curve crates, a second cryptography stack beside the ring that kube, rustls and
//! oci-client already use, for what is one ECDSA signature over two base64url strings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;
use slipway_client::names;

/// The shortest and longest a token may be good for.
pub const MIN_LIFETIME: Duration = Duration::from_secs(30);
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// The most scopes one token request may ask for (docker asks for one or two).
pub const MAX_SCOPES: usize = 16;
/// The longest scope read.
pub const MAX_SCOPE_BYTES: usize = 512;

/// What a client may do with a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Pull,
    Push,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
        }
    }

    /// The `imagestreams/layers` verb RBAC grants it with (OpenShift's: `system:image-puller`
    /// has `get`, `system:image-pusher` `update`).
    pub fn verb(self) -> &'static str {
        match self {
            Self::Pull => "get",
            Self::Push => "update",
        }
    }
}

/// One requested scope: `repository:<namespace>/<stream>:<actions>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requested {
    pub namespace: String,
    pub stream: String,
    /// Pull and push as asked (others, such as `delete` and `*`, are never granted).
    pub actions: Vec<Action>,
}

impl Requested {
    /// `<namespace>/<stream>`, the repository's name.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.namespace, self.stream)
    }
}

/// Parses one `scope` parameter. `Ok(None)` for a scope that is never granted (another resource
/// type, such as `registry:catalog:*`); an error for one that is malformed. A repository is
/// `<namespace>/<stream>` as ImageStreams are: a namespace (a DNS label) and a stream name.
pub fn parse_scope(scope: &str) -> Result<Option<Requested>, String> {
    if scope.len() > MAX_SCOPE_BYTES {
        return Err(format!(
            "a scope of {} bytes is longer than {MAX_SCOPE_BYTES}",
            scope.len()
        ));
    }
    let shown = || format!("{scope:?}");
    let (kind, rest) = scope
        .split_once(':')
        .ok_or_else(|| format!("scope {} is not TYPE:NAME:ACTIONS", shown()))?;
    let (name, actions) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("scope {} is not TYPE:NAME:ACTIONS", shown()))?;
    if kind != "repository" {
        return Ok(None);
    }
    let (namespace, stream) = name.split_once('/').ok_or_else(|| {
        format!(
            "repository {name:?} is not <project>/<imagestream>: the registry keeps each project's images under its name"
        )
    })?;
    if !names::is_dns_label(namespace) {
        return Err(format!(
            "{namespace:?} in scope {} is not a project name",
            shown()
        ));
    }
    if !names::is_dns_subdomain(stream) || stream.contains('/') {
        return Err(format!(
            "{stream:?} in scope {} is not an image stream name (lower-case letters, digits, '-' and '.')",
            shown()
        ));
    }
    let mut wanted: Vec<Action> = actions
        .split(',')
        .filter_map(|a| match a.trim() {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            _ => None,
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    Ok(Some(Requested {
        namespace: namespace.to_string(),
        stream: stream.to_string(),
        actions: wanted,
    }))
}

/// One entry of a token's `access` claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    pub fn repository(name: &str, actions: &[Action]) -> Self {
        Self {
            type_: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.as_str().to_string()).collect(),
        }
    }
}

/// A token's claims.
#[derive(Clone, Debug, Serialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub access: Vec<Access>,
}

/// Signs registry tokens with one key.
pub struct Issuer {
    key: EcdsaKeyPair,
    /// The signing certificate, base64 DER, for the `x5c` header.
    certificate: String,
    rng: SystemRandom,
    /// The `iss` claim; the registry's `auth.token.issuer`.
    pub issuer: String,
    /// The `aud` claim; the registry's `auth.token.service`, which clients send as `service`.
    pub service: String,
    /// How long a token is good for.
    pub lifetime: Duration,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer with a P-256 key (PEM: PKCS#8, or SEC1 `EC PRIVATE KEY` as Helm's
    /// `genPrivateKey "ecdsa"` writes it) and its certificate (PEM).
    pub fn from_pem(
        key_pem: &str,
        certificate_pem: &str,
        issuer: &str,
        service: &str,
        lifetime: Duration,
    ) -> Result<Self, String> {
        let key = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("the token signing key is not a PEM private key: {e}"))?
        {
            PrivateKeyDer::Pkcs8(key) => key,
            PrivateKeyDer::Sec1(key) => PrivatePkcs8KeyDer::from(sec1_to_pkcs8(key.secret_sec1_der())),
            _ => return Err("the token signing key is an RSA key: it must be ECDSA P-256".into()),
        };
        let certificate = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| format!("the token signing certificate is not a PEM certificate: {e}"))?;
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
            return Err(format!(
                "a registry token lifetime of {lifetime:?} is outside {MIN_LIFETIME:?} to {MAX_LIFETIME:?}"
            ));
        }
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.secret_pkcs8_der(), &rng)
            .map_err(|e| format!("the token signing key is not an ECDSA P-256 key: {e}"))?;
        // The registry verifies with the certificate's key: a mismatch would refuse every token.
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref())
            .map_err(|e| format!("the token signing certificate does not parse: {e}"))?;
        if parsed.public_key().subject_public_key.data.as_ref()
            != ring::signature::KeyPair::public_key(&key).as_ref()
        {
            return Err("the token signing certificate is not the signing key's".into());
        }
        Ok(Self {
            key,
            certificate: STANDARD.encode(certificate.as_ref()),
            rng,
            issuer: issuer.into(),
            service: service.into(),
            lifetime,
        })
    }

    /// The claims of a token for `subject` with `access`, good from now for the lifetime.
    pub fn claims(&self, subject: &str, access: Vec<Access>) -> Claims {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Claims {
            iss: self.issuer.clone(),
            sub: subject.into(),
            aud: self.service.clone(),
            exp: now + self.lifetime.as_secs(),
            nbf: now,
            iat: now,
            jti: format!("{:032x}", rand::random::<u128>()),
            access,
        }
    }

    /// The compact JWS of `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.certificate]});
        let input = format!("{}.{}", base64_json(&header), base64_json(claims));
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|e| format!("signing a registry token: {e}"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }
}

/// A JWT part: JSON, base64url without padding.
fn base64_json<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Wraps a SEC1 `ECPrivateKey` of a P-256 key into PKCS#8 (RFC 5208: version 0, algorithm
/// id-ecPublicKey with the prime256v1 curve, the SEC1 key as the octet string), the only form
/// ring reads. Written here because it is three DER headers; ring then checks the curve and the
/// public key inside, so a key of another curve is still refused.
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    fn header(tag: u8, len: usize, out: &mut Vec<u8>) {
        out.push(tag);
        match len {
            0..=0x7f => out.push(len as u8),
            0x80..=0xff => out.extend([0x81, len as u8]),
            _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
    }
    // SEQUENCE { OID 1.2.840.10045.2.1, OID 1.2.840.10045.3.1.7 }
    const ALGORITHM: [u8; 21] = [
        0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
        0x3d, 0x03, 0x01, 0x07,
    ];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(ALGORITHM);
    header(0x04, sec1.len(), &mut body);
    body.extend(sec1);
    let mut out = Vec::with_capacity(body.len() + 4);
    header(0x30, body.len(), &mut out);
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_to_a_project_and_stream_and_refuse_the_rest() {
        assert_eq!(
            parse_scope("repository:team-a/web:push,pull").unwrap(),
            Some(Requested {
                namespace: "team-a".into(),
                stream: "web".into(),
                actions: vec![Action::Pull, Action::Push],
            })
        );
        let delete_only = parse_scope("repository:team-a/web:delete,*").unwrap().unwrap();
        assert!(delete_only.actions.is_empty());
        assert_eq!(parse_scope("registry:catalog:*").unwrap(), None);
        assert_eq!(parse_scope("repository(plugin):team-a/web:pull").unwrap(), None);
        for bad in [
            "repository",
            "repository:team-a/web",
            "repository:web:pull",
            "repository:team-a/deep/web:pull",
            "repository:Team/web:pull",
            "repository:team-a/We b:pull",
            "repository:../web:pull",
            "repository:team-a/:pull",
        ] {
            assert!(parse_scope(bad).is_err(), "{bad} was accepted");
        }
        let long = format!("repository:a/{}:pull", "b".repeat(MAX_SCOPE_BYTES));
        assert!(parse_scope(&long).unwrap_err().contains("longer than"));
    }

    #[test]
    fn tokens_are_es256_with_the_certificate_and_verify_with_its_key() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["token-signer".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let issuer = Issuer::from_pem(
            &key.serialize_pem(),
            &cert.pem(),
            "slipway",
            "slipway-registry",
            Duration::from_secs(300),
        )
        .unwrap();
        let claims = issuer.claims(
            "system:serviceaccount:a:builder",
            vec![Access::repository("a/web", &[Action::Pull, Action::Push])],
        );
        assert_eq!(claims.exp - claims.iat, 300);
        let token = issuer.sign(&claims).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(
            STANDARD.decode(header["x5c"][0].as_str().unwrap()).unwrap(),
            cert.der().to_vec()
        );
        let body: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(body["access"][0]["name"], "a/web");
        assert_eq!(body["access"][0]["actions"], serde_json::json!(["pull", "push"]));
        assert_eq!(body["aud"], "slipway-registry");
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            key.public_key_raw(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap();
        assert!(Issuer::from_pem("junk", &cert.pem(), "i", "s", Duration::from_secs(60)).is_err());
        let lifetime = |d| Issuer::from_pem(&key.serialize_pem(), &cert.pem(), "i", "s", d).unwrap_err();
        assert!(lifetime(Duration::ZERO).contains("outside"));
        assert!(lifetime(Duration::from_secs(u64::MAX)).contains("outside"));
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mismatched = Issuer::from_pem(
            &other.serialize_pem(),
            &cert.pem(),
            "i",
            "s",
            Duration::from_secs(60),
        );
        assert!(mismatched.unwrap_err().contains("not the signing key's"));
    }

    /// A P-256 key as Helm's `genPrivateKey "ecdsa"` (and openssl) write it: SEC1 with the curve
    /// and the public key; made for this test alone, with a self-signed certificate.
    const SEC1_KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPdUxRbnp52WCHELACE5Um5A/obb76RZOfdMeGSZ/83UoAoGCCqGSM49\nAwEHoUQDQgAEHKYtG8izsMIgIFWw7tA3X0XTY+zj1Ih6vVF0EfEY3+lKRAzxmptb\nr2xQaUP0YZgzCOKoxsTuizrHJiuV21A2pQ==\n-----END EC PRIVATE KEY-----\n";
    const SEC1_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBjzCCATWgAwIBAgIUNdXQqdhSND0/3G9tFa5zkMZoHVwwCgYIKoZIzj0EAwIw\nHDEaMBgGA1UEAwwRdGVzdC10b2tlbi1zaWduZXIwIBcNMjYxMjA3MDI0ODQxWhgP\nMjEyNjExMTMwMjQ4NDFaMBwxGjAYBgNVBAMMEXRlc3QtdG9rZW4tc2lnbmVyMFkw\nEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHKYtG8izsMIgIFWw7tA3X0XTY+zj1Ih6\nvVF0EfEY3+lKRAzxmptbr2xQaUP0YZgzCOKoxsTuizrHJiuV21A2paNTMFEwHQYD\nVR0OBBYEFIfR+4932GtJyy///twKQAPv5mh3MB8GA1UdIwQYMBaAFIfR+4932GtJ\nyy///twKQAPv5mh3MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIg\nRH/OaPW8JmRA7JOiG6SjUJWka2CbhWRTlo0kzLn7QgwCIQCRN7O1l7Q0FAGt1VnF\nvMMMe/cpyp27IgmLyAgxMsr8Ew==\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_sec1_key_signs_as_its_pkcs8_form_would() {
        let issuer = Issuer::from_pem(SEC1_KEY, SEC1_CERT, "i", "s", Duration::from_secs(60)).unwrap();
        assert_eq!(issuer.service, "s");
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["signer".into()])
            .unwrap()
            .self_signed(&other)
            .unwrap();
        let mismatched = Issuer::from_pem(SEC1_KEY, &cert.pem(), "i", "s", Duration::from_secs(60));
        assert!(mismatched.unwrap_err().contains("not the signing key's"));
        let truncated = SEC1_KEY.replace("AwEHoUQDQgAE", "");
        assert!(Issuer::from_pem(&truncated, SEC1_CERT, "i", "s", Duration::from_secs(60)).is_err());
    }
}
