//! Proof that a requester stamp was made by Slipway's admission webhook.
//!
//! The operator acts as a TemplateInstance's requester (impersonation), and makes a
//! ProjectRequest's requester the admin of the new project, so it must know that the stamp came
//! from the API server's authenticated user and not from whoever created the object.
//! The admission webhook signs what it stamps with HMAC-SHA256 under a key that only it and the
//! operator can read (the Secret `slipway-requester-keys`), and writes the signature to the
//! annotation [`PROOF_ANNOTATION`]; the operator verifies it itself before acting. A stamp without
//! a valid proof (admission was off, deleted or bypassed) is never acted on.
//!
//! What is signed: the object's namespace and name and the requester's user name, uid and groups,
//! as one JSON array (no field can bleed into another); for a ProjectRequest (cluster-scoped, no
//! namespace) the name and the user name only. Keys are lines of a file: the first signs,
//! every line verifies, so a key is rotated by putting the new one first and removing the old one
//! once no stamp made with it is needed any more.

use ring::hmac;

/// The annotation that carries the proof (`v1:` and the hex HMAC-SHA256).
pub const PROOF_ANNOTATION: &str = "slipway.dev/requester-proof";

const VERSION_PREFIX: &str = "v1:";

/// What is signed: one requester of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp<'a> {
    /// The object's namespace ("" for a cluster-scoped object).
    pub namespace: &'a str,
    pub name: &'a str,
    pub username: &'a str,
    pub uid: &'a str,
    pub groups: &'a [String],
}

impl<'a> Stamp<'a> {
    /// A ProjectRequest's stamp: its name (it is cluster-scoped) and the requester's user name;
    /// no uid or groups, since the operator acts on the name alone (the project's admin binding).
    pub fn project_request(name: &'a str, username: &'a str) -> Self {
        Stamp {
            namespace: "",
            name,
            username,
            uid: "",
            groups: &[],
        }
    }

    fn message(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!([
            "slipway.dev/requester/v1",
            self.namespace,
            self.name,
            self.username,
            self.uid,
            self.groups
        ]))
        .unwrap_or_default()
    }
}

/// The keys of a key file: one per non-empty line, surrounding blanks trimmed. Shorter than 32
/// bytes is refused (Err names the line).
pub fn parse_keys(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.len() < 32 {
            return Err(format!(
                "requester key on line {} is {} bytes; at least 32 are needed",
                n + 1,
                line.len()
            ));
        }
        keys.push(line.as_bytes().to_vec());
    }
    Ok(keys)
}

/// The proof of `stamp` under `key`.
pub fn sign(key: &[u8], stamp: &Stamp) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, &stamp.message());
    format!("{VERSION_PREFIX}{}", hex::encode(tag.as_ref()))
}

/// Whether `proof` is the proof of `stamp` under one of `keys` (compared in constant time).
pub fn verify(keys: &[Vec<u8>], stamp: &Stamp, proof: &str) -> bool {
    let Some(tag) = proof
        .strip_prefix(VERSION_PREFIX)
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let message = stamp.message();
    keys.iter().any(|key| {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        hmac::verify(&key, &message, &tag).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210";

    fn groups() -> Vec<String> {
        vec!["team-a".into(), "system:authenticated".into()]
    }

    #[test]
    fn a_proof_verifies_only_for_what_was_signed() {
        let groups = groups();
        let stamp = Stamp {
            namespace: "ns",
            name: "web",
            username: "alice",
            uid: "u-1",
            groups: &groups,
        };
        let proof = sign(KEY, &stamp);
        assert!(verify(&[KEY.to_vec()], &stamp, &proof));
        assert!(verify(&[OTHER.to_vec(), KEY.to_vec()], &stamp, &proof));
        assert!(!verify(&[OTHER.to_vec()], &stamp, &proof));
        let masters = vec!["system:masters".to_string()];
        for forged in [
            Stamp {
                username: "bob",
                ..stamp.clone()
            },
            Stamp {
                name: "other",
                ..stamp.clone()
            },
            Stamp {
                namespace: "n",
                ..stamp.clone()
            },
            Stamp {
                uid: "u-2",
                ..stamp.clone()
            },
            Stamp {
                groups: &masters,
                ..stamp.clone()
            },
        ] {
            assert!(!verify(&[KEY.to_vec()], &forged, &proof), "{forged:?}");
        }
        // Fields do not bleed into each other.
        let shifted = Stamp {
            namespace: "n",
            name: "sweb",
            ..stamp.clone()
        };
        assert!(!verify(&[KEY.to_vec()], &shifted, &proof));
        for junk in ["", "v1:", "v1:zz", &proof[3..], "v2:00"] {
            assert!(!verify(&[KEY.to_vec()], &stamp, junk), "{junk}");
        }
    }

    #[test]
    fn keys_are_lines_of_at_least_32_bytes() {
        let text = format!(
            "\n  {}  \n{}\n",
            String::from_utf8_lossy(KEY),
            String::from_utf8_lossy(OTHER)
        );
        assert_eq!(parse_keys(&text).unwrap(), vec![KEY.to_vec(), OTHER.to_vec()]);
        let err = parse_keys("short\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("32"), "{err}");
        assert!(parse_keys("").unwrap().is_empty());
    }
}
