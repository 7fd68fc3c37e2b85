//! Whom the operator may act as: a requester stamp it verifies itself, and never a privileged
//! identity.
//!
//! A TemplateInstance's objects are created as its `spec.requester` (impersonation), and a
//! ProjectRequest's requester becomes the new project's admin. Either stamp is trusted only with a
//! valid proof from Slipway's admission webhook ([`slipway_crds::requester`]);
//! the keys are read from a file (the mounted Secret `slipway-requester-keys`) at each check, so a
//! rotated key is used without a restart. And whatever the stamp says, the operator does not act
//! as an identity that holds the cluster: see [`refused_identity`].

use std::path::PathBuf;

use slipway_crds::requester::{PROOF_ANNOTATION, Stamp, parse_keys, verify};
use slipway_crds::template::TemplateInstanceRequester;

use crate::Error;

/// Where the requester keys come from.
#[derive(Clone, Debug, Default)]
pub enum RequesterKeys {
    /// None: no stamp verifies, so no TemplateInstance is acted on.
    #[default]
    None,
    /// A file, one key per line, read at each check.
    File(PathBuf),
    /// Keys given directly (tests).
    Fixed(Vec<Vec<u8>>),
}

impl RequesterKeys {
    /// The keys now. Err: the file cannot be read or holds a bad key (retried).
    pub fn load(&self) -> Result<Vec<Vec<u8>>, Error> {
        match self {
            Self::None => Ok(Vec::new()),
            Self::Fixed(keys) => Ok(keys.clone()),
            Self::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::RequesterKeys(format!("reading {}: {e}", path.display())))?;
                parse_keys(&text).map_err(Error::RequesterKeys)
            }
        }
    }
}

/// Groups the operator never acts as, whatever a stamp says: every `system:` group but the
/// ones every authenticated user or service account has.
pub const ALLOWED_SYSTEM_GROUPS: [&str; 2] = ["system:authenticated", "system:serviceaccounts"];

/// Namespaces whose service accounts the operator never acts as (besides its own namespace).
pub const PROTECTED_NAMESPACE_PREFIXES: [&str; 1] = ["kube-"];

/// Why the operator will not act as `username` with `groups`, if it will not (pure).
///
/// Refused: `system:masters` and every other `system:` group except `system:authenticated`,
/// `system:serviceaccounts` and `system:serviceaccounts:<ns>`; every `system:` user (nodes,
/// `system:admin`, `system:anonymous`, the control plane's components) except service accounts;
/// and the service accounts of `kube-*` namespaces and of the operator's own namespace.
pub fn refused_identity(username: &str, groups: &[String], own_namespace: &str) -> Option<String> {
    let protected =
        |ns: &str| ns == own_namespace || PROTECTED_NAMESPACE_PREFIXES.iter().any(|p| ns.starts_with(p));
    for group in groups {
        let Some(rest) = group.strip_prefix("system:") else {
            continue;
        };
        let allowed = ALLOWED_SYSTEM_GROUPS.contains(&group.as_str())
            || rest
                .strip_prefix("serviceaccounts:")
                .is_some_and(|ns| !ns.is_empty() && !protected(ns));
        if !allowed {
            return Some(format!(
                "Slipway does not act as a member of the group {group:?} (only system:authenticated, \
                 system:serviceaccounts and system:serviceaccounts:<namespace> of the system: groups)"
            ));
        }
    }
    if let Some(rest) = username.strip_prefix("system:") {
        let namespace = rest
            .strip_prefix("serviceaccount:")
            .and_then(|r| r.split_once(':'))
            .map(|(ns, _)| ns);
        match namespace {
            Some(ns) if !ns.is_empty() && !protected(ns) => {}
            Some(ns) => {
                return Some(format!(
                    "Slipway does not act as service accounts of the namespace {ns:?}"
                ));
            }
            None => {
                return Some(format!("Slipway does not act as the system user {username:?}"));
            }
        }
    }
    None
}

/// Ok when the instance's requester stamp carries a valid proof under one of `keys`; Err says
/// why not (pure).
pub fn verify_stamp(
    keys: &[Vec<u8>],
    namespace: &str,
    name: &str,
    requester: &TemplateInstanceRequester,
    proof: Option<&str>,
) -> Result<(), String> {
    let stamp = Stamp {
        namespace,
        name,
        username: &requester.username,
        uid: requester.uid.as_deref().unwrap_or_default(),
        groups: &requester.groups,
    };
    verify_proof(keys, &stamp, proof, "TemplateInstance")
}

/// Ok when a ProjectRequest's requester annotation carries a valid proof under one of `keys`;
/// Err says why not (pure).
pub fn verify_project_request(
    keys: &[Vec<u8>],
    name: &str,
    username: &str,
    proof: Option<&str>,
) -> Result<(), String> {
    verify_proof(
        keys,
        &Stamp::project_request(name, username),
        proof,
        "ProjectRequest",
    )
}

fn verify_proof(keys: &[Vec<u8>], stamp: &Stamp, proof: Option<&str>, kind: &str) -> Result<(), String> {
    let username = stamp.username;
    let Some(proof) = proof else {
        return Err(format!(
            "the requester {username:?} carries no proof (annotation {PROOF_ANNOTATION}) from Slipway's admission \
             webhook, so Slipway does not act for them; create the {kind} again through the API \
             server with Slipway's admission webhook registered"
        ));
    };
    if keys.is_empty() {
        return Err(
            "the operator has no requester keys (--requester-keys), so it can verify no requester".into(),
        );
    }
    if verify(keys, stamp, proof) {
        Ok(())
    } else {
        Err(format!(
            "the requester {username:?} does not match its proof (annotation {PROOF_ANNOTATION}): it was not stamped \
             by Slipway's admission webhook for this {kind}, or with a key no longer in use"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn privileged_identities_are_refused() {
        let own = "slipway-system";
        for (user, g) in [
            ("alice", vec!["system:masters"]),
            ("alice", vec!["system:authenticated", "system:nodes"]),
            ("alice", vec!["system:bootstrappers"]),
            ("alice", vec!["system:serviceaccounts:kube-system"]),
            ("alice", vec!["system:serviceaccounts:slipway-system"]),
            ("system:admin", vec![]),
            ("system:anonymous", vec![]),
            ("system:kube-controller-manager", vec![]),
            ("system:node:n1", vec![]),
            ("system:serviceaccount:kube-system:default", vec![]),
            ("system:serviceaccount:slipway-system:slipway-operator", vec![]),
            ("system:serviceaccount:", vec![]),
        ] {
            assert!(refused_identity(user, &groups(&g), own).is_some(), "{user} {g:?}");
        }
        assert!(
            refused_identity("alice", &groups(&["system:masters"]), own)
                .unwrap()
                .contains("system:masters")
        );
    }

    #[test]
    fn tenants_and_their_service_accounts_are_acted_as() {
        let own = "slipway-system";
        for (user, g) in [
            ("alice", vec!["system:authenticated", "team-a"]),
            (
                "system:serviceaccount:team-a:ci",
                vec![
                    "system:serviceaccounts",
                    "system:serviceaccounts:team-a",
                    "system:authenticated",
                ],
            ),
        ] {
            assert_eq!(refused_identity(user, &groups(&g), own), None, "{user}");
        }
    }

    #[test]
    fn a_stamp_verifies_only_with_its_proof() {
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let requester = TemplateInstanceRequester {
            username: "alice".into(),
            uid: Some("u".into()),
            groups: groups(&["system:authenticated"]),
            extra: None,
        };
        let stamp = Stamp {
            namespace: "ns",
            name: "web",
            username: "alice",
            uid: "u",
            groups: &requester.groups,
        };
        let proof = slipway_crds::requester::sign(&key, &stamp);
        let keys = [key];
        assert!(verify_stamp(&keys, "ns", "web", &requester, Some(&proof)).is_ok());
        let err = verify_stamp(&keys, "ns", "web", &requester, None).unwrap_err();
        assert!(err.contains("no proof"), "{err}");
        let err = verify_stamp(&keys, "ns", "web2", &requester, Some(&proof)).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        let err = verify_stamp(&[], "ns", "web", &requester, Some(&proof)).unwrap_err();
        assert!(err.contains("no requester keys"), "{err}");
        // A ProjectRequest's proof binds its name to the user name, and nothing else verifies.
        let project = slipway_crds::requester::sign(&keys[0], &Stamp::project_request("team-a", "alice"));
        assert!(verify_project_request(&keys, "team-a", "alice", Some(&project)).is_ok());
        for (name, user, proof) in [
            ("team-b", "alice", Some(project.as_str())),
            ("team-a", "mallory", Some(project.as_str())),
            ("team-a", "alice", Some(proof.as_str())),
            ("team-a", "alice", None),
        ] {
            let why = verify_project_request(&keys, name, user, proof).unwrap_err();
            assert!(why.contains("ProjectRequest"), "{why}");
        }
    }
}
