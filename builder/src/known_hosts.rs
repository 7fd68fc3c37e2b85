//! Deciding whether to trust an ssh server's host key, from an OpenSSH `known_hosts` text.
//!
//! Supported: plain host patterns with `*`/`?` wildcards and `!` negation, `[host]:port` for
//! non-standard ports, and `@revoked` lines. Hashed host names (`|1|...`) and `@cert-authority`
//! lines are not understood and never match.

use base64::Engine;

/// What `known_hosts` says about a host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// A line for this host has exactly this key.
    Known,
    /// No line for this host has a key of this type.
    Unknown,
    /// The host is listed with a different key of the same type: someone may be in between.
    Mismatch,
    /// The key is marked `@revoked`.
    Revoked,
}

/// Looks up `host`:`port` with the key `key_blob` (the raw ssh wire-format public key, as libssh2
/// gives it and as `known_hosts` holds it in base64).
pub fn check_host_key(known_hosts: &str, host: &str, port: u16, key_blob: &[u8]) -> HostKeyStatus {
    let name = if port == 22 {
        host.to_ascii_lowercase()
    } else {
        format!("[{}]:{port}", host.to_ascii_lowercase())
    };
    let key_b64 = base64_encode(key_blob);
    let key_type = blob_key_type(key_blob);
    let mut status = HostKeyStatus::Unknown;
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else { continue };
        let mut revoked = false;
        if let Some(marker) = first.strip_prefix('@') {
            match marker {
                "revoked" => revoked = true,
                _ => continue, // @cert-authority: certificates are not supported
            }
            let Some(next) = fields.next() else { continue };
            first = next;
        }
        let (Some(line_type), Some(line_key)) = (fields.next(), fields.next()) else {
            continue;
        };
        if revoked {
            if line_key == key_b64 && host_matches(first, &name) {
                return HostKeyStatus::Revoked;
            }
            continue;
        }
        if !host_matches(first, &name) {
            continue;
        }
        if line_key == key_b64 {
            status = HostKeyStatus::Known;
        } else if Some(line_type) == key_type && status == HostKeyStatus::Unknown {
            status = HostKeyStatus::Mismatch;
        }
    }
    status
}

/// Whether a connection may go on. `Ok(true)` means the key was not known and is accepted only
/// because unknown hosts are allowed (worth a warning).
pub fn decide(status: HostKeyStatus, host: &str, allow_unknown_hosts: bool) -> Result<bool, String> {
    match status {
        HostKeyStatus::Known => Ok(false),
        HostKeyStatus::Unknown if allow_unknown_hosts => Ok(true),
        HostKeyStatus::Unknown => Err(format!(
            "the host key of {host} is not in known_hosts; add the server's key to the source secret as \
             known_hosts (for example what `ssh-keyscan {host}` prints)"
        )),
        HostKeyStatus::Mismatch => Err(format!(
            "the host key of {host} does not match the one in known_hosts: refusing to connect \
             (the key changed, or someone is intercepting the connection)"
        )),
        HostKeyStatus::Revoked => Err(format!("the host key of {host} is revoked in known_hosts")),
    }
}

/// A comma-separated pattern list matches when a positive pattern matches and no negated one does.
fn host_matches(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if pattern.starts_with('|') {
            continue; // hashed
        }
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard_match(&negated.to_ascii_lowercase(), name) {
                return false;
            }
        } else if wildcard_match(&pattern.to_ascii_lowercase(), name) {
            matched = true;
        }
    }
    matched
}

/// Glob matching with `*` and `?`.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The key type named at the start of an ssh public key blob (`ssh-ed25519`, ...).
fn blob_key_type(blob: &[u8]) -> Option<&str> {
    let len_bytes: [u8; 4] = blob.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

/// Standard base64 with padding (the `base64` crate's standard engine).
pub fn base64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut v = (kind.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind.as_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn base64() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn known_unknown_mismatch() {
        let key = blob("ssh-ed25519", b"KEY1");
        let other = blob("ssh-ed25519", b"KEY2");
        let rsa = blob("ssh-rsa", b"RSAKEY");
        let kh = format!(
            "# comment\n\ngit.example.com,10.0.0.1 ssh-ed25519 {}\n[git.example.com]:2222 ssh-ed25519 {} c\n",
            base64_encode(&key),
            base64_encode(&other)
        );
        assert_eq!(
            check_host_key(&kh, "git.example.com", 22, &key),
            HostKeyStatus::Known
        );
        assert_eq!(
            check_host_key(&kh, "GIT.example.com", 22, &key),
            HostKeyStatus::Known
        );
        assert_eq!(check_host_key(&kh, "10.0.0.1", 22, &key), HostKeyStatus::Known);
        assert_eq!(
            check_host_key(&kh, "git.example.com", 22, &other),
            HostKeyStatus::Mismatch
        );
        // Another key type for a listed host is not a mismatch, just unknown.
        assert_eq!(
            check_host_key(&kh, "git.example.com", 22, &rsa),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check_host_key(&kh, "git.example.com", 2222, &other),
            HostKeyStatus::Known
        );
        assert_eq!(
            check_host_key(&kh, "git.example.com", 2222, &key),
            HostKeyStatus::Mismatch
        );
        assert_eq!(
            check_host_key(&kh, "other.example.com", 22, &key),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check_host_key("", "git.example.com", 22, &key),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn patterns_and_markers() {
        let key = blob("ssh-ed25519", b"K");
        let b = base64_encode(&key);
        let kh = format!("*.example.com,!evil.example.com ssh-ed25519 {b}\n|1|abc=|def= ssh-ed25519 {b}\n");
        assert_eq!(
            check_host_key(&kh, "a.example.com", 22, &key),
            HostKeyStatus::Known
        );
        assert_eq!(
            check_host_key(&kh, "evil.example.com", 22, &key),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check_host_key(&kh, "example.org", 22, &key),
            HostKeyStatus::Unknown
        );
        let revoked = format!("{kh}@revoked * ssh-ed25519 {b}\n");
        assert_eq!(
            check_host_key(&revoked, "a.example.com", 22, &key),
            HostKeyStatus::Revoked
        );
        let ca = format!("@cert-authority * ssh-ed25519 {b}\n");
        assert_eq!(
            check_host_key(&ca, "a.example.com", 22, &key),
            HostKeyStatus::Unknown
        );
        assert!(wildcard_match("g?t*", "git.example.com"));
        assert!(!wildcard_match("g?t", "git.example.com"));
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(HostKeyStatus::Known, "h", false), Ok(false));
        assert_eq!(decide(HostKeyStatus::Unknown, "h", true), Ok(true));
        assert!(
            decide(HostKeyStatus::Unknown, "h", false)
                .unwrap_err()
                .contains("not in known_hosts")
        );
        assert!(decide(HostKeyStatus::Mismatch, "h", true).is_err());
        assert!(decide(HostKeyStatus::Revoked, "h", true).is_err());
    }
}
