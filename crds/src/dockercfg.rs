//! Registry credentials from a docker config JSON, as `kubernetes.io/dockerconfigjson` and
//! `kubernetes.io/dockercfg` Secrets and `~/.docker/config.json` hold them; shared by the builder
//! (its pull and push secrets) and the operator (imports with a project's secrets).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde_json::Value;

/// The key of a `kubernetes.io/dockerconfigjson` Secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The key of a `kubernetes.io/dockercfg` Secret (the older shape: hosts at the top level).
pub const DOCKER_CFG_KEY: &str = ".dockercfg";

/// The largest docker config read (a Secret holds at most 1 MiB too).
pub const MAX_BYTES: usize = 1 << 20;

/// Credentials per registry host.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Credentials {
    by_registry: BTreeMap<String, (String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("registries", &self.by_registry.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    /// Reads `config.json` / `.dockerconfigjson` / `.dockercfg`, or a directory holding one of
    /// them, or a directory of several docker configs (a service account's linked Secrets, one
    /// file each): merged in name order, the first one's entry for a registry winning.
    pub fn load(path: &Path) -> Result<Self, String> {
        let file = if path.is_dir() {
            let standard = [DOCKER_CONFIG_JSON_KEY, "config.json", DOCKER_CFG_KEY]
                .iter()
                .map(|n| path.join(n))
                .find(|p| p.is_file());
            match standard {
                Some(file) => file,
                None => return Self::load_all(path),
            }
        } else {
            path.to_path_buf()
        };
        let meta = std::fs::metadata(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        if meta.len() > MAX_BYTES as u64 {
            return Err(format!("{}: larger than 1 MiB", file.display()));
        }
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", file.display()))
    }

    /// Every regular file of `dir` (at most 16), merged in name order.
    fn load_all(dir: &Path) -> Result<Self, String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        if files.is_empty() {
            return Err(format!("no docker config JSON in {}", dir.display()));
        }
        if files.len() > 16 {
            return Err(format!("{} holds more than 16 docker configs", dir.display()));
        }
        files.sort();
        let mut merged = Self::default();
        for file in files {
            merged = merged.merge(Self::load(&file)?);
        }
        Ok(merged)
    }

    /// [`Credentials::load`] of a path, or none without one.
    pub fn load_optional(path: Option<&Path>) -> Result<Self, String> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    /// Parses a docker config JSON: `{"auths": {"host": {"auth": base64(user:pass)}}}` or with
    /// `username`/`password`; the old `.dockercfg` shape (hosts at the top level) too. Entries
    /// with neither (an `identitytoken` only) are skipped.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_BYTES {
            return Err(format!("{} bytes is larger than 1 MiB", text.len()));
        }
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not a docker config JSON: {e}"))?;
        let auths = match v.get("auths") {
            Some(a) => a,
            None => &v,
        };
        let map = auths
            .as_object()
            .ok_or_else(|| "`auths` is not an object".to_owned())?;
        let mut by_registry = BTreeMap::new();
        for (host, entry) in map {
            let user = entry.get("username").and_then(Value::as_str);
            let pass = entry.get("password").and_then(Value::as_str);
            let pair = if let (Some(u), Some(p)) = (user, pass) {
                (u.to_owned(), p.to_owned())
            } else if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| format!("the auth of {host} is not base64"))?;
                let raw = String::from_utf8(raw).map_err(|_| format!("the auth of {host} is not UTF-8"))?;
                let (u, p) = raw
                    .split_once(':')
                    .ok_or_else(|| format!("the auth of {host} is not user:password"))?;
                (u.to_owned(), p.to_owned())
            } else {
                continue;
            };
            by_registry.insert(normalize_host(host), pair);
        }
        Ok(Self { by_registry })
    }

    /// The user and password for a registry host (`host[:port]`), if any. Docker Hub's names
    /// (`docker.io`, `index.docker.io`, `registry-1.docker.io`) are one registry.
    pub fn for_registry(&self, registry: &str) -> Option<(&str, &str)> {
        self.by_registry
            .get(&normalize_host(registry))
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// One registry's credentials.
    pub fn single(registry: &str, user: &str, password: &str) -> Self {
        Self {
            by_registry: BTreeMap::from([(normalize_host(registry), (user.to_owned(), password.to_owned()))]),
        }
    }

    /// Whether there are no credentials at all.
    pub fn is_empty(&self) -> bool {
        self.by_registry.is_empty()
    }

    /// These credentials, plus `other`'s for the registries these have none for.
    pub fn merge(mut self, other: Self) -> Self {
        for (host, pair) in other.by_registry {
            self.by_registry.entry(host).or_insert(pair);
        }
        self
    }

    /// A docker config JSON with these credentials (for tools that read one file), each as
    /// `auth`: containers/image (buildah) reads only that, not `username` and `password`.
    pub fn to_docker_config(&self) -> String {
        let auths: serde_json::Map<String, Value> = self
            .by_registry
            .iter()
            .map(|(host, (u, p))| {
                let auth = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                (host.clone(), serde_json::json!({"auth": auth}))
            })
            .collect();
        serde_json::json!({ "auths": auths }).to_string()
    }

    /// Every secret, to be masked in logs.
    pub fn secrets(&self) -> Vec<String> {
        self.by_registry.values().map(|(_, p)| p.clone()).collect()
    }
}

/// `https://host:5000/v1/` → `host:5000`, lower-cased; Docker Hub's names → `docker.io`.
fn normalize_host(h: &str) -> String {
    let h = h
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = h.split('/').next().unwrap_or(h).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_shapes() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret:with:colons");
        let c = Credentials::parse(&format!(
            r#"{{"auths":{{"https://reg.example:5000/v1/":{{"auth":"{auth}"}},"other":{{"username":"u","password":"p"}},"empty":{{}},"tok":{{"identitytoken":"x"}}}}}}"#
        ))
        .unwrap();
        assert_eq!(
            c.for_registry("reg.example:5000"),
            Some(("bob", "s3cret:with:colons"))
        );
        assert_eq!(
            c.for_registry("REG.example:5000"),
            Some(("bob", "s3cret:with:colons"))
        );
        assert_eq!(c.for_registry("other"), Some(("u", "p")));
        assert_eq!(c.for_registry("empty"), None);
        assert_eq!(c.for_registry("tok"), None);
        assert_eq!(
            c.for_registry("reg.example"),
            None,
            "another port is another registry"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(Credentials::parse("[]").is_err());
        assert!(Credentials::parse("{").is_err());
        assert!(Credentials::parse(r#"{"auths":{"h":{"auth":"!!"}}}"#).is_err());
        assert!(Credentials::parse(r#"{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}"#).is_err());
        assert!(Credentials::parse(&" ".repeat(MAX_BYTES + 1)).is_err());
    }

    #[test]
    fn a_directory_of_configs_is_merged_in_name_order() {
        let dir = std::env::temp_dir().join(format!("slipway-dockercfg-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        write(
            "1-b.json",
            r#"{"auths":{"a":{"username":"second","password":"2"},"c":{"username":"3","password":"3"}}}"#,
        );
        write(
            "0-a.json",
            r#"{"auths":{"a":{"username":"first","password":"1"}}}"#,
        );
        let merged = Credentials::load(&dir).unwrap();
        assert_eq!(merged.for_registry("a"), Some(("first", "1")));
        assert_eq!(merged.for_registry("c"), Some(("3", "3")));
        write("2-bad.json", "{");
        assert!(Credentials::load(&dir).unwrap_err().contains("2-bad.json"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Credentials::load(&dir).is_err());
    }

    #[test]
    fn the_old_dockercfg_shape_and_docker_hub_names() {
        let c =
            Credentials::parse(r#"{"https://index.docker.io/v1/":{"username":"u","password":"p"}}"#).unwrap();
        assert_eq!(c.for_registry("docker.io"), Some(("u", "p")));
        assert_eq!(c.for_registry("registry-1.docker.io"), Some(("u", "p")));
        let first = Credentials::parse(r#"{"auths":{"a":{"username":"1","password":"1"}}}"#).unwrap();
        let second = Credentials::parse(
            r#"{"auths":{"a":{"username":"2","password":"2"},"b":{"username":"3","password":"3"}}}"#,
        )
        .unwrap();
        let merged = first.merge(second);
        assert_eq!(merged.for_registry("a"), Some(("1", "1")));
        assert_eq!(merged.for_registry("b"), Some(("3", "3")));
        // Written back with `auth` only (what buildah reads), and read back the same.
        let written: Value = serde_json::from_str(&merged.to_docker_config()).unwrap();
        assert_eq!(written["auths"]["a"], serde_json::json!({"auth": "MTox"}));
        assert_eq!(Credentials::parse(&merged.to_docker_config()).unwrap(), merged);
    }
}
