//! Source URLs: masking embedded credentials, taking them out, and what the transport can do.

use crate::progress::MASK;

/// A source URL with any embedded credentials taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUrl {
    /// The URL without `user:password@` (for http(s)); handed to libgit2 and stored in the clone.
    pub clean: String,
    /// Credentials that were embedded in an http(s) URL (percent-decoded).
    pub username: Option<String>,
    pub password: Option<String>,
    /// Host and port, when the URL has them (`None` for local paths).
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `file`, `http`, `https`, `ssh`, `git`, or `local` for a plain path.
    pub scheme: String,
}

impl SourceUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("no source URL given".to_owned());
        }
        if !raw.contains("://") {
            if let Some((host, _path)) = scp_like(raw) {
                return Ok(Self {
                    clean: raw.to_owned(),
                    username: None,
                    password: None,
                    host: Some(host),
                    port: None,
                    scheme: "ssh".to_owned(),
                });
            }
            return Ok(Self {
                clean: raw.to_owned(),
                username: None,
                password: None,
                host: None,
                port: None,
                scheme: "local".to_owned(),
            });
        }
        let mut url =
            url::Url::parse(raw).map_err(|e| format!("invalid source URL {}: {e}", mask_url(raw)))?;
        let scheme = url.scheme().to_ascii_lowercase();
        if !matches!(
            scheme.as_str(),
            "file" | "http" | "https" | "ssh" | "git" | "git+ssh" | "ssh+git"
        ) {
            return Err(format!("unsupported URL scheme {scheme:?} in {}", mask_url(raw)));
        }
        let host = url.host_str().map(str::to_owned);
        let port = url.port_or_known_default().or(match scheme.as_str() {
            "ssh" | "git+ssh" | "ssh+git" => Some(22),
            "git" => Some(9418),
            _ => None,
        });
        let (mut username, mut password) = (None, None);
        if matches!(scheme.as_str(), "http" | "https") {
            if !url.username().is_empty() {
                username = Some(percent_decode(url.username()));
            }
            password = url.password().map(percent_decode);
            // Setting an empty username/password cannot fail for http(s) URLs.
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        Ok(Self {
            clean: url.to_string(),
            username,
            password,
            host,
            port,
            scheme,
        })
    }

    /// Whether a shallow (depth 1) fetch can be asked for: libgit2's local transport has none.
    pub fn supports_shallow(&self) -> bool {
        !matches!(self.scheme.as_str(), "file" | "local")
    }
}

/// `user@host:path` (scp-like ssh); not a Windows drive or a local path with a colon after a slash.
fn scp_like(raw: &str) -> Option<(String, String)> {
    let colon = raw.find(':')?;
    let before = &raw[..colon];
    if before.contains('/') || before.len() < 2 {
        return None;
    }
    let host = before.rsplit('@').next().unwrap_or(before);
    Some((host.to_owned(), raw[colon + 1..].to_owned()))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2)))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    char::from(*b?).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `raw` fit for a log: the user-info of a URL is masked (`https://***@host/...`). A bare ssh user
/// name (`ssh://git@host`) is kept, since it is no secret.
pub fn mask_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let rest = &raw[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return raw.to_owned();
    };
    let userinfo = &authority[..at];
    let scheme = raw[..scheme_end].to_ascii_lowercase();
    let masked = if scheme.contains("ssh") && !userinfo.contains(':') {
        userinfo.to_owned()
    } else {
        MASK.to_owned()
    };
    format!(
        "{}://{masked}@{}{}",
        &raw[..scheme_end],
        &authority[at + 1..],
        &rest[authority_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking() {
        assert_eq!(mask_url("https://u:p@h.com/r.git"), "https://***@h.com/r.git");
        assert_eq!(mask_url("https://tok@h.com/r.git"), "https://***@h.com/r.git");
        assert_eq!(mask_url("https://h.com/a@b"), "https://h.com/a@b");
        assert_eq!(mask_url("ssh://git@h.com/r"), "ssh://git@h.com/r");
        assert_eq!(mask_url("ssh://git:pw@h.com/r"), "ssh://***@h.com/r");
        assert_eq!(mask_url("git@h.com:r.git"), "git@h.com:r.git");
        assert_eq!(mask_url("/tmp/x"), "/tmp/x");
        assert_eq!(mask_url("https://a:b@c@h.com/"), "https://***@h.com/");
    }

    #[test]
    fn credentials_are_taken_out() {
        let u = SourceUrl::parse("https://me:p%40ss@git.example.com:8443/r.git").unwrap();
        assert_eq!(u.clean, "https://git.example.com:8443/r.git");
        assert_eq!(u.username.as_deref(), Some("me"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.host.as_deref(), Some("git.example.com"));
        assert_eq!(u.port, Some(8443));
        assert!(u.supports_shallow());
        let u = SourceUrl::parse("http://h/r").unwrap();
        assert_eq!((u.username, u.password, u.port), (None, None, Some(80)));
    }

    #[test]
    fn kinds() {
        let u = SourceUrl::parse("file:///tmp/repo").unwrap();
        assert_eq!(u.scheme, "file");
        assert!(!u.supports_shallow());
        let u = SourceUrl::parse("/tmp/repo").unwrap();
        assert_eq!(u.scheme, "local");
        let u = SourceUrl::parse("git@github.com:o/r.git").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_deref()),
            ("ssh", Some("github.com"))
        );
        let u = SourceUrl::parse("ssh://git@h:2222/r").unwrap();
        assert_eq!((u.host.as_deref(), u.port), (Some("h"), Some(2222)));
        assert_eq!(u.clean, "ssh://git@h:2222/r");
        assert!(SourceUrl::parse("ftp://h/r").is_err());
        assert!(SourceUrl::parse("").is_err());
        assert!(
            SourceUrl::parse("https://u:secret@[bad")
                .unwrap_err()
                .contains("***")
        );
        assert!(
            !SourceUrl::parse("https://u:secret@[bad")
                .unwrap_err()
                .contains("secret")
        );
    }
}
