//! A project's registry credentials for imports: its docker-config Secrets
//! (`kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`), as OpenShift's importer
//! uses them. The credentials for a registry go to that registry only (matched by host and
//! port); a Secret that cannot be read is named in the import's failure, never fatal to others.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use oci_client::secrets::RegistryAuth;
use slipway_crds::dockercfg::{Credentials, DOCKER_CFG_KEY, DOCKER_CONFIG_JSON_KEY};

/// The Secret types read, with the key each keeps its docker config under.
const TYPES: [(&str, &str); 2] = [
    ("kubernetes.io/dockerconfigjson", DOCKER_CONFIG_JSON_KEY),
    ("kubernetes.io/dockercfg", DOCKER_CFG_KEY),
];

/// The docker-config Secrets of one namespace, by name.
#[derive(Debug, Default)]
pub struct ProjectCredentials {
    secrets: Vec<(String, Credentials)>,
    /// Secrets that could not be read, with why.
    unreadable: Vec<(String, String)>,
}

/// The credentials chosen for one registry, and the Secret they came from.
pub struct Chosen {
    pub secret: String,
    pub auth: RegistryAuth,
}

impl ProjectCredentials {
    /// Lists `namespace`'s docker-config Secrets (only those types: a field selector on `type`).
    pub async fn load(client: &kube::Client, namespace: &str) -> Result<Self, kube::Error> {
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let mut found = Vec::new();
        for (type_, key) in TYPES {
            let list = api
                .list(&ListParams::default().fields(&format!("type={type_}")))
                .await?;
            for secret in list.items {
                let name = secret.metadata.name.clone().unwrap_or_default();
                let text = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned());
                found.push((name, key, text));
            }
        }
        Ok(Self::from_secrets(found))
    }

    /// Parses each Secret's docker config (pure; Secrets in name order).
    fn from_secrets(mut found: Vec<(String, &str, Option<String>)>) -> Self {
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut this = Self::default();
        for (name, key, text) in found {
            match text.map(|t| Credentials::parse(&t)) {
                Some(Ok(credentials)) => this.secrets.push((name, credentials)),
                Some(Err(e)) => this.unreadable.push((name, e)),
                None => this.unreadable.push((name, format!("it has no {key}"))),
            }
        }
        this
    }

    /// The credentials of the first Secret (by name) with an entry for `registry`.
    pub fn for_registry(&self, registry: &str) -> Option<Chosen> {
        self.secrets.iter().find_map(|(name, c)| {
            c.for_registry(registry).map(|(u, p)| Chosen {
                secret: name.clone(),
                auth: RegistryAuth::Basic(u.to_owned(), p.to_owned()),
            })
        })
    }

    /// What a refused import should add: the Secret whose credentials were refused, or that
    /// the project has none for the registry (and which of its Secrets could not be read).
    pub fn hint(&self, registry: &str, chosen: Option<&str>) -> String {
        let mut hint = match chosen {
            Some(secret) => format!("the registry refused the credentials for {registry} in Secret {secret}"),
            None => format!(
                "the project has no docker-config Secret for {registry}: create one with \
                 `kubectl create secret docker-registry NAME --docker-server={registry} \
                 --docker-username=... --docker-password=...` and import again"
            ),
        };
        for (name, why) in &self.unreadable {
            hint.push_str(&format!("; Secret {name} was not read: {why}"));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str, user: &str) -> Option<String> {
        Some(format!(
            r#"{{"auths":{{"{host}":{{"username":"{user}","password":"pw"}}}}}}"#
        ))
    }

    #[test]
    fn the_first_secret_by_name_with_the_registry_wins_and_bad_ones_are_named() {
        let creds = ProjectCredentials::from_secrets(vec![
            (
                "zz".into(),
                DOCKER_CONFIG_JSON_KEY,
                config("reg.example:5000", "late"),
            ),
            (
                "aa".into(),
                DOCKER_CONFIG_JSON_KEY,
                config("reg.example:5000", "early"),
            ),
            ("bb".into(), DOCKER_CFG_KEY, Some("{not json".into())),
            ("cc".into(), DOCKER_CONFIG_JSON_KEY, None),
        ]);
        let chosen = creds.for_registry("reg.example:5000").expect("credentials");
        assert_eq!(chosen.secret, "aa");
        assert!(matches!(chosen.auth, RegistryAuth::Basic(ref u, _) if u == "early"));
        assert!(creds.for_registry("other.example").is_none());
        let hint = creds.hint("other.example", None);
        assert!(
            hint.contains("no docker-config Secret for other.example"),
            "{hint}"
        );
        assert!(
            hint.contains("Secret bb was not read: not a docker config JSON"),
            "{hint}"
        );
        assert!(
            hint.contains("Secret cc was not read: it has no .dockerconfigjson"),
            "{hint}"
        );
        assert!(
            creds
                .hint("reg.example:5000", Some("aa"))
                .starts_with("the registry refused the credentials for reg.example:5000 in Secret aa")
        );
    }
}
