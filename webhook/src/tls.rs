//! The webhook's certificates: a CA, whose certificate goes into the caBundle of the webhook
//! configurations and of the APIService, and a serving certificate it signs; and the rustls
//! [`Resolver`] through which the running servers present the current serving certificate, so
//! that a renewed one is served without a restart. `crate::certs` keeps them in a Secret shared
//! by the replicas and decides when to renew them.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How long a CA made by [`generate`] is valid (`crate::certs` takes its own from flags).
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// How long a serving certificate made by [`generate`] is valid.
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// How far back the validity of a new certificate starts, so that an API server whose clock is
/// behind ours still accepts it.
pub const BACKDATE: Duration = Duration::from_secs(3600);

/// PEM texts of a CA and of a serving certificate it signed.
pub struct Certificates {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA and a serving certificate for `names` (DNS names or IP addresses), made for this process
/// alone: tests, and servers that share nothing (`crate::certs` shares them between replicas).
pub fn generate(names: &[String]) -> anyhow::Result<Certificates> {
    let now = SystemTime::now();
    let ca = Ca::generate(now, DEFAULT_CA_VALIDITY)?;
    let serving = ca.issue(names, now, DEFAULT_CERT_VALIDITY)?;
    Ok(Certificates {
        ca_pem: ca.cert_pem,
        cert_pem: serving.cert_pem,
        key_pem: serving.key_pem,
    })
}

/// Whole seconds since the epoch, as X.509 writes times.
fn to_datetime(t: SystemTime) -> anyhow::Result<time::OffsetDateTime> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .context("a time before 1970")?
        .as_secs();
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs)?).context("a time out of range")
}

fn from_asn1(t: &x509_parser::time::ASN1Time) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
}

/// A CA: its certificate and key, parsed and checked to belong together.
#[derive(Clone, Debug)]
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    der: CertificateDer<'static>,
}

impl PartialEq for Ca {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Ca {
    /// A new CA, valid from `now` (less [`BACKDATE`]) for `validity`. Its common name carries the
    /// time it was made, so that the CAs of a bundle can be told apart.
    pub fn generate(now: SystemTime, validity: Duration) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let made = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("slipway-webhook-ca@{made}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = to_datetime(now - BACKDATE)?;
        params.not_after = to_datetime(now + validity)?;
        let cert = params.self_signed(&key)?;
        Ca::parse(&cert.pem(), &key.serialize_pem())
    }

    /// Reads a CA back: one certificate with the CA flag, and the key of that certificate.
    pub fn parse(cert_pem: &str, key_pem: &str) -> anyhow::Result<Ca> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).context("no PEM certificate")?;
        let (_, x509) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| anyhow::anyhow!("not an X.509 certificate: {e}"))?;
        anyhow::ensure!(x509.is_ca(), "not a CA certificate");
        let key = KeyPair::from_pem(key_pem).context("no PEM private key")?;
        anyhow::ensure!(
            key.subject_public_key_info() == x509.public_key().raw,
            "the key is not the certificate's"
        );
        let (not_before, not_after) = (
            from_asn1(&x509.validity().not_before),
            from_asn1(&x509.validity().not_after),
        );
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            not_before,
            not_after,
            der: der.into_owned(),
        })
    }

    /// When the CA was made (its validity starts [`BACKDATE`] earlier).
    pub fn made_at(&self) -> SystemTime {
        self.not_before + BACKDATE
    }

    /// A serving certificate for `names`, valid from `now` for `validity` but never beyond the
    /// CA itself: a certificate never outlives the CA that verifies it.
    pub fn issue(&self, names: &[String], now: SystemTime, validity: Duration) -> anyhow::Result<Serving> {
        let issuer = Issuer::from_ca_cert_der(&self.der, KeyPair::from_pem(&self.key_pem)?)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "slipway-webhook");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = to_datetime((now - BACKDATE).max(self.not_before))?;
        params.not_after = to_datetime((now + validity).min(self.not_after))?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Serving {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The validity end of the first certificate of `pem`.
pub fn not_after(pem: &str) -> anyhow::Result<SystemTime> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).context("no PEM certificate")?;
    let (_, x509) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow::anyhow!("not an X.509 certificate: {e}"))?;
    Ok(from_asn1(&x509.validity().not_after))
}

/// A serving certificate (PEM, the leaf first) and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serving {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Serving {
    /// The certificate and key as rustls serves them; fails unless the key is the certificate's.
    pub fn certified_key(&self) -> anyhow::Result<Arc<CertifiedKey>> {
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("reading the serving certificate")?;
        anyhow::ensure!(!certs.is_empty(), "no serving certificate");
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).context("reading the serving key")?;
        let certified = CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
            .context("the serving key")?;
        Ok(Arc::new(certified))
    }

    /// Checks that the certificate goes with its key, is signed by `ca`, and is valid at `now`
    /// for every one of `names`, as a TLS client checks it; returns the end of its validity.
    pub fn check(&self, ca: &Ca, names: &[String], now: SystemTime) -> anyhow::Result<SystemTime> {
        let certified = self.certified_key()?;
        let end_entity = certified.end_entity_cert()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der.clone()).context("the CA")?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        let at = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        for name in names {
            let server_name = ServerName::try_from(name.as_str())
                .with_context(|| format!("{name:?} is neither a DNS name nor an IP address"))?;
            verifier
                .verify_server_cert(end_entity, &certified.cert[1..], &server_name, &[], at)
                .with_context(|| format!("as a certificate of {name} signed by the CA"))?;
        }
        not_after(&self.cert_pem)
    }
}

/// Presents the current serving certificate to every new connection; [`Resolver::set`] swaps it
/// while the servers run (connections already open keep the one they were made with).
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<(Arc<CertifiedKey>, Serving)>,
}

impl Resolver {
    pub fn new(serving: &Serving) -> anyhow::Result<Self> {
        Ok(Self {
            current: RwLock::new((serving.certified_key()?, serving.clone())),
        })
    }

    /// Serves `serving` from now on; false when it is the one already served.
    pub fn set(&self, serving: &Serving) -> anyhow::Result<bool> {
        if self.current().cert_pem == serving.cert_pem {
            return Ok(false);
        }
        let certified = serving.certified_key()?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = (certified, serving.clone());
        Ok(true)
    }

    /// The certificate being served.
    pub fn current(&self) -> Serving {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .0
                .clone(),
        )
    }
}

/// What a server presents, and the CA bundle (PEM) the API server must trust to call it; the
/// bundle changes when a CA rotates, and whoever registers the server registers it again.
#[derive(Clone, Debug)]
pub struct Tls {
    pub resolver: Arc<Resolver>,
    pub ca_bundle: tokio::sync::watch::Receiver<String>,
}

impl Tls {
    /// Certificates that nothing rotates (the bundle never changes).
    pub fn fixed(certificates: &Certificates) -> anyhow::Result<Self> {
        let serving = Serving {
            cert_pem: certificates.cert_pem.clone(),
            key_pem: certificates.key_pem.clone(),
        };
        let (_, ca_bundle) = tokio::sync::watch::channel(certificates.ca_pem.clone());
        Ok(Self {
            resolver: Arc::new(Resolver::new(&serving)?),
            ca_bundle,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn names() -> Vec<String> {
        vec!["hook.ns.svc".into(), "127.0.0.1".into()]
    }

    #[test]
    fn a_serving_certificate_checks_against_its_ca_and_names() {
        let now = SystemTime::now();
        let ca = Ca::generate(now, 100 * HOUR).unwrap();
        let serving = ca.issue(&names(), now, 10 * HOUR).unwrap();
        let end = serving.check(&ca, &names(), now).unwrap();
        assert_eq!(
            end.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            (now + 10 * HOUR).duration_since(UNIX_EPOCH).unwrap().as_secs()
        );
        // Read back, the CA is the same.
        assert_eq!(Ca::parse(&ca.cert_pem, &ca.key_pem).unwrap(), ca);
        // Another name, another CA, a later time: refused.
        assert!(serving.check(&ca, &["other.ns.svc".to_string()], now).is_err());
        let other = Ca::generate(now, 100 * HOUR).unwrap();
        assert!(serving.check(&other, &names(), now).is_err());
        assert!(serving.check(&ca, &names(), now + 11 * HOUR).is_err());
        // A key that is not the certificate's.
        let mixed = Serving {
            cert_pem: serving.cert_pem.clone(),
            key_pem: ca.issue(&names(), now, HOUR).unwrap().key_pem,
        };
        assert!(mixed.check(&ca, &names(), now).is_err());
    }

    #[test]
    fn a_certificate_never_outlives_its_ca() {
        let now = SystemTime::now();
        let ca = Ca::generate(now, 2 * HOUR).unwrap();
        let serving = ca.issue(&names(), now, 10 * HOUR).unwrap();
        assert_eq!(not_after(&serving.cert_pem).unwrap(), ca.not_after);
    }

    #[test]
    fn a_ca_and_a_key_that_do_not_belong_together_are_refused() {
        let now = SystemTime::now();
        let (a, b) = (Ca::generate(now, HOUR).unwrap(), Ca::generate(now, HOUR).unwrap());
        assert!(Ca::parse(&a.cert_pem, &b.key_pem).is_err());
        assert!(Ca::parse("garbage", &a.key_pem).is_err());
        assert!(Ca::parse(&a.cert_pem, "garbage").is_err());
        // A serving certificate is no CA.
        let serving = a.issue(&names(), now, HOUR).unwrap();
        assert!(Ca::parse(&serving.cert_pem, &serving.key_pem).is_err());
    }

    #[test]
    fn the_resolver_swaps_the_served_certificate() {
        let now = SystemTime::now();
        let ca = Ca::generate(now, HOUR).unwrap();
        let (first, second) = (
            ca.issue(&names(), now, HOUR).unwrap(),
            ca.issue(&names(), now, HOUR).unwrap(),
        );
        let resolver = Resolver::new(&first).unwrap();
        assert!(!resolver.set(&first).unwrap());
        assert!(resolver.set(&second).unwrap());
        assert_eq!(resolver.current(), second);
        let broken = Serving {
            cert_pem: "garbage".into(),
            key_pem: second.key_pem.clone(),
        };
        assert!(resolver.set(&broken).is_err());
        assert_eq!(resolver.current(), second);
    }
}
