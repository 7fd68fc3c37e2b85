//! Is a delivery from someone who knows the trigger's secret? Every check runs over the raw body
//! exactly as received, and compares in constant time.
//!
//! | provider | header | what it carries |
//! |---|---|---|
//! | GitHub | `X-Hub-Signature-256` (else Gogs' `X-Gogs-Signature`) | `sha256=` + hex HMAC-SHA256 of the body (the SHA-1 `X-Hub-Signature` is refused); Gogs' without the prefix |
//! | GitLab | `X-Gitlab-Token` | the secret itself (GitLab signs nothing) |
//! | Bitbucket | `X-Hub-Signature` | `sha256=` + hex HMAC-SHA256 of the body (Cloud and Data Center) |
//! | Gitea, Forgejo, Gogs | `X-Gitea-Signature` (or `X-Forgejo-Signature`, `X-Gogs-Signature`) | hex HMAC-SHA256 of the body |
//!
//! Gogs signs as Gitea does (Gitea began as its fork), so its deliveries are accepted where
//! Gitea's are; and at the GitHub endpoint too, since OpenShift's GitHub webhook takes Gogs'
//! deliveries (a BuildConfig moved from OpenShift has a GitHub trigger for them).
//! | generic | `X-Slipway-Signature-256`, else `X-Slipway-Webhook-Secret` | `sha256=` + hex HMAC-SHA256 of the body; else the secret itself |

use http::HeaderMap;
use subtle::ConstantTimeEq;

/// The key of the webhook secret in the Secret a trigger names (OpenShift's key).
pub const SECRET_KEY: &str = "WebHookSecretKey";
/// The generic webhook's signature header: `sha256=` and the hex HMAC-SHA256 of the body.
pub const GENERIC_SIGNATURE_HEADER: &str = "x-slipway-signature-256";
/// The generic webhook's secret header, for callers that cannot sign.
pub const GENERIC_SECRET_HEADER: &str = "x-slipway-webhook-secret";

/// Why a delivery was not verified. Callers answer every one of them the same way (401), so the
/// detail is for the server's log only; it never contains the secret or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is not in the expected form")]
    Malformed(&'static str),
    #[error("the signature or token does not match the trigger's secret")]
    Mismatch,
}

/// Verifies `body` as received from `provider` with the trigger's `secret`.
pub fn verify(
    provider: super::Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &[u8],
) -> Result<(), VerifyError> {
    use super::Provider::*;
    match provider {
        GitHub if !headers.contains_key("x-hub-signature-256") && headers.contains_key(GOGS_SIGNATURE) => {
            hmac_hex(header(headers, GOGS_SIGNATURE)?, GOGS_SIGNATURE, body, secret)
        }
        GitHub => prefixed_hmac(headers, "x-hub-signature-256", body, secret),
        Bitbucket => prefixed_hmac(headers, "x-hub-signature", body, secret),
        Gitea => {
            let name = gitea_signature(headers)?;
            hmac_hex(header(headers, name)?, name, body, secret)
        }
        GitLab => {
            let token = header(headers, "x-gitlab-token")?;
            token_matches(token.as_bytes(), secret)
        }
        Generic => {
            if headers.contains_key(GENERIC_SIGNATURE_HEADER) {
                prefixed_hmac(headers, GENERIC_SIGNATURE_HEADER, body, secret)
            } else if headers.contains_key(GENERIC_SECRET_HEADER) {
                let token = header(headers, GENERIC_SECRET_HEADER)?;
                token_matches(token.as_bytes(), secret)
            } else {
                Err(VerifyError::MissingHeader("X-Slipway-Signature-256"))
            }
        }
    }
}

/// What can be checked of a delivery before its body is read: a token (GitLab's, the generic
/// webhook's secret header) is compared with the secret; a signature header must be present and
/// well-formed (`sha256=` and 64 hex digits; Gitea's without the prefix) — the signature itself is
/// checked by [`verify`] once the body is in. A delivery that fails here is refused without
/// reading its body.
pub fn check_headers(
    provider: super::Provider,
    headers: &HeaderMap,
    secret: &[u8],
) -> Result<(), VerifyError> {
    use super::Provider::*;
    match provider {
        GitHub if !headers.contains_key("x-hub-signature-256") && headers.contains_key(GOGS_SIGNATURE) => {
            hex_form(header(headers, GOGS_SIGNATURE)?, GOGS_SIGNATURE)
        }
        GitHub => prefixed_form(headers, "x-hub-signature-256"),
        Bitbucket => prefixed_form(headers, "x-hub-signature"),
        Gitea => {
            let name = gitea_signature(headers)?;
            hex_form(header(headers, name)?, name)
        }
        GitLab => token_matches(header(headers, "x-gitlab-token")?.as_bytes(), secret),
        Generic => {
            if headers.contains_key(GENERIC_SIGNATURE_HEADER) {
                prefixed_form(headers, GENERIC_SIGNATURE_HEADER)
            } else if headers.contains_key(GENERIC_SECRET_HEADER) {
                token_matches(header(headers, GENERIC_SECRET_HEADER)?.as_bytes(), secret)
            } else {
                Err(VerifyError::MissingHeader("X-Slipway-Signature-256"))
            }
        }
    }
}

/// Gogs' signature header: the hex HMAC-SHA256 of the body, without a prefix (as Gitea's).
const GOGS_SIGNATURE: &str = "x-gogs-signature";

/// The first of Gitea's, Forgejo's and Gogs' signature headers the delivery carries. Gitea sends
/// `X-Gogs-Signature` too (the same value), so a delivery with several is read by the first.
fn gitea_signature(headers: &HeaderMap) -> Result<&'static str, VerifyError> {
    ["x-gitea-signature", "x-forgejo-signature", GOGS_SIGNATURE]
        .into_iter()
        .find(|name| headers.contains_key(*name))
        .ok_or(VerifyError::MissingHeader("X-Gitea-Signature"))
}

fn prefixed_form(headers: &HeaderMap, name: &'static str) -> Result<(), VerifyError> {
    let value = header(headers, name)?;
    hex_form(
        value
            .strip_prefix("sha256=")
            .ok_or(VerifyError::Malformed(name))?,
        name,
    )
}

/// 64 hex digits: the length of an HMAC-SHA256.
fn hex_form(value: &str, name: &'static str) -> Result<(), VerifyError> {
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(())
        .ok_or(VerifyError::Malformed(name))
}

/// The hex HMAC-SHA256 signature of `body` with `secret` (what providers put in their headers).
pub fn sign_hex(body: &[u8], secret: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    hex::encode(ring::hmac::sign(&key, body).as_ref())
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    let value = headers.get(name).ok_or(VerifyError::MissingHeader(name))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| VerifyError::Malformed(name))
}

/// `sha256=<hex>`; any other algorithm (GitHub's and Bitbucket's old `sha1=`) is refused.
fn prefixed_hmac(
    headers: &HeaderMap,
    name: &'static str,
    body: &[u8],
    secret: &[u8],
) -> Result<(), VerifyError> {
    let value = header(headers, name)?;
    let hex = value
        .strip_prefix("sha256=")
        .ok_or(VerifyError::Malformed(name))?;
    hmac_hex(hex, name, body, secret)
}

fn hmac_hex(hex_signature: &str, name: &'static str, body: &[u8], secret: &[u8]) -> Result<(), VerifyError> {
    let tag = hex::decode(hex_signature).map_err(|_| VerifyError::Malformed(name))?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    // ring compares the tags in constant time.
    ring::hmac::verify(&key, body, &tag).map_err(|_| VerifyError::Mismatch)
}

/// Compares a presented token with the secret in constant time. Both sides are hashed first so
/// that neither the comparison's time nor its length check tells anything about the secret.
fn token_matches(token: &[u8], secret: &[u8]) -> Result<(), VerifyError> {
    let presented = ring::digest::digest(&ring::digest::SHA256, token);
    let expected = ring::digest::digest(&ring::digest::SHA256, secret);
    if bool::from(presented.as_ref().ct_eq(expected.as_ref())) && !secret.is_empty() {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn github_documentation_example_verifies() {
        // The test values of GitHub's "Validating webhook deliveries" page.
        let expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_hex(BODY, SECRET), expected);
        let h = headers(&[("x-hub-signature-256", &format!("sha256={expected}"))]);
        assert_eq!(verify(Provider::GitHub, &h, BODY, SECRET), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_is_a_mismatch() {
        let h = headers(&[(
            "x-hub-signature-256",
            &format!("sha256={}", sign_hex(BODY, SECRET)),
        )]);
        assert_eq!(
            verify(Provider::GitHub, &h, b"Hello, World?", SECRET),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(Provider::GitHub, &h, BODY, b"another secret"),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn sha1_and_garbage_signatures_are_refused() {
        for value in ["sha1=0123", "sha256=zz", "757107ea", "sha256="] {
            let h = headers(&[("x-hub-signature-256", value)]);
            assert!(verify(Provider::GitHub, &h, BODY, SECRET).is_err(), "{value}");
        }
        // GitHub's SHA-1 header alone is not enough.
        let h = headers(&[("x-hub-signature", "sha1=01234567")]);
        assert_eq!(
            verify(Provider::GitHub, &h, BODY, SECRET),
            Err(VerifyError::MissingHeader("x-hub-signature-256"))
        );
    }

    #[test]
    fn each_provider_reads_its_own_header() {
        let sig = sign_hex(BODY, SECRET);
        let secret = std::str::from_utf8(SECRET).unwrap();
        let cases = [
            (
                Provider::Bitbucket,
                headers(&[("x-hub-signature", &format!("sha256={sig}"))]),
            ),
            (Provider::Gitea, headers(&[("x-gitea-signature", &sig)])),
            (Provider::Gitea, headers(&[("x-forgejo-signature", &sig)])),
            (Provider::GitLab, headers(&[("x-gitlab-token", secret)])),
            (
                Provider::Generic,
                headers(&[(GENERIC_SIGNATURE_HEADER, &format!("sha256={sig}"))]),
            ),
            (Provider::Generic, headers(&[(GENERIC_SECRET_HEADER, secret)])),
        ];
        for (provider, h) in cases {
            assert_eq!(verify(provider, &h, BODY, SECRET), Ok(()), "{provider:?} {h:?}");
            assert!(verify(provider, &h, BODY, b"wrong").is_err(), "{provider:?}");
            assert!(
                verify(provider, &HeaderMap::new(), BODY, SECRET).is_err(),
                "{provider:?}"
            );
        }
        // A GitHub header does not satisfy GitLab, nor the other way round.
        let h = headers(&[("x-hub-signature-256", &format!("sha256={sig}"))]);
        assert!(verify(Provider::GitLab, &h, BODY, SECRET).is_err());
    }

    /// Gogs' push as published by go-playground/webhooks, with the signature published beside it.
    const GOGS_PUSH: &[u8] = include_bytes!("../../tests/fixtures/providers/gogs-push.json");
    const GOGS_SECRET: &[u8] = b"sampleToken!";
    const GOGS_SIGNATURE_KAT: &str = "83d4163fb936904aeb9ffd6ce22cf86e4b36273b2e1c63a57f5a6ddc371ce3ba";

    #[test]
    fn gogs_signatures_verify_at_the_gitea_and_github_endpoints() {
        assert_eq!(sign_hex(GOGS_PUSH, GOGS_SECRET), GOGS_SIGNATURE_KAT);
        let h = headers(&[("x-gogs-event", "push"), ("x-gogs-signature", GOGS_SIGNATURE_KAT)]);
        for provider in [Provider::Gitea, Provider::GitHub] {
            assert_eq!(
                verify(provider, &h, GOGS_PUSH, GOGS_SECRET),
                Ok(()),
                "{provider:?}"
            );
            assert_eq!(check_headers(provider, &h, GOGS_SECRET), Ok(()), "{provider:?}");
            // Refused exactly as Gitea's are: another secret, a changed body, a malformed header.
            assert_eq!(
                verify(provider, &h, GOGS_PUSH, b"another secret"),
                Err(VerifyError::Mismatch),
                "{provider:?}"
            );
            let mut tampered = GOGS_PUSH.to_vec();
            tampered[10] ^= 1;
            assert_eq!(
                verify(provider, &h, &tampered, GOGS_SECRET),
                Err(VerifyError::Mismatch),
                "{provider:?}"
            );
            let prefixed = headers(&[("x-gogs-signature", &format!("sha256={GOGS_SIGNATURE_KAT}"))]);
            assert_eq!(
                verify(provider, &prefixed, GOGS_PUSH, GOGS_SECRET),
                Err(VerifyError::Malformed(GOGS_SIGNATURE)),
                "{provider:?}"
            );
            assert_eq!(
                check_headers(provider, &prefixed, GOGS_SECRET),
                Err(VerifyError::Malformed(GOGS_SIGNATURE)),
                "{provider:?}"
            );
        }
        // At the GitHub endpoint GitHub's own header, when present, is the one read.
        let both = headers(&[
            (
                "x-hub-signature-256",
                &format!("sha256={}", sign_hex(GOGS_PUSH, b"other")),
            ),
            ("x-gogs-signature", GOGS_SIGNATURE_KAT),
        ]);
        assert_eq!(
            verify(Provider::GitHub, &both, GOGS_PUSH, GOGS_SECRET),
            Err(VerifyError::Mismatch)
        );
        // Gogs' header is not Bitbucket's, GitLab's or the generic webhook's.
        for provider in [Provider::Bitbucket, Provider::GitLab, Provider::Generic] {
            assert!(matches!(
                verify(provider, &h, GOGS_PUSH, GOGS_SECRET),
                Err(VerifyError::MissingHeader(_))
            ));
        }
    }

    #[test]
    fn headers_are_checked_before_the_body() {
        let sig = sign_hex(BODY, SECRET);
        let secret = std::str::from_utf8(SECRET).unwrap();
        let good = headers(&[("x-hub-signature-256", &format!("sha256={sig}"))]);
        assert_eq!(check_headers(Provider::GitHub, &good, b"any"), Ok(()));
        for value in ["sha256=zz", "sha1=0123", &sig, "sha256=0123"] {
            let h = headers(&[("x-hub-signature-256", value)]);
            assert!(check_headers(Provider::GitHub, &h, SECRET).is_err(), "{value}");
        }
        assert!(check_headers(Provider::GitHub, &HeaderMap::new(), SECRET).is_err());
        assert_eq!(
            check_headers(Provider::Gitea, &headers(&[("x-gitea-signature", &sig)]), SECRET),
            Ok(())
        );
        // Tokens are compared at once.
        let token = headers(&[("x-gitlab-token", secret)]);
        assert_eq!(check_headers(Provider::GitLab, &token, SECRET), Ok(()));
        assert!(check_headers(Provider::GitLab, &token, b"another").is_err());
        let generic = headers(&[(GENERIC_SECRET_HEADER, "wrong")]);
        assert!(check_headers(Provider::Generic, &generic, SECRET).is_err());
        assert!(check_headers(Provider::Generic, &HeaderMap::new(), SECRET).is_err());
    }

    #[test]
    fn tokens_must_match_exactly_and_an_empty_secret_never_matches() {
        assert_eq!(token_matches(b"abc", b"abc"), Ok(()));
        assert!(token_matches(b"abc", b"abcd").is_err());
        assert!(token_matches(b"", b"").is_err());
    }
}
