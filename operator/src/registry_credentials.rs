//! The integrated registry's credentials of each project, as OpenShift writes them: for the
//! project's `builder`, `deployer` and `default` service accounts a docker-config Secret
//! `<account>-dockercfg` for the registry's host, linked to the account as an image pull Secret.
//! Kubelets pull the project's images with them (pods of the `default` account), builds push with
//! the `builder`'s (`build::controller::inputs`).
//!
//! The password is a token of the account made by the TokenRequest API for the registry's
//! audience alone (`--registry-service`): the registry's token service accepts it
//! (`slipway-webhook`'s TokenReview asks for that audience), the API server refuses it, so a build
//! that reads its push Secret holds nothing it can call the API with. Tokens are made for
//! `lifetime` and replaced when half of it has passed; deleting the account deletes its Secret
//! (owner reference). Only namespaces of Projects get them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use slipway_crds::Project;
use slipway_crds::dockercfg::Credentials;

use crate::Context;
use crate::error::Error;

/// The accounts of every project that get registry credentials.
pub const ACCOUNTS: [&str; 3] = ["builder", "deployer", "default"];
/// The annotation holding when the Secret's token expires (seconds since the epoch).
pub const EXPIRES_ANNOTATION: &str = "slipway.dev/registry-token-expires";
/// The annotation naming the registry the Secret is for.
pub const REGISTRY_ANNOTATION: &str = "slipway.dev/registry";
/// The label of the Secrets this controller writes (its value: the account).
pub const CREDENTIALS_LABEL: &str = "slipway.dev/registry-credentials";
/// The user name in the docker config (the registry's token service reads only the password).
pub const USER: &str = "serviceaccount";
/// How long an account may be missing before it is looked for again (the `default` account is
/// made by the controller manager shortly after the namespace).
const MISSING_ACCOUNT_RETRY: Duration = Duration::from_secs(2);
/// How often a project's Secrets are checked even when no token is due (one deleted by hand comes
/// back within this).
const RECHECK: Duration = Duration::from_secs(600);
const MANAGER: &str = "slipway-registry-credentials";

/// The controller's settings (operator flags).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The registry's host (`host:port`), as pods pull from it.
    pub host: String,
    /// The audience of the tokens: the registry's `auth.token.service`.
    pub audience: String,
    /// How long a token lives (the API server may shorten it; at least 10 minutes).
    pub lifetime: Duration,
}

/// The name of an account's registry credentials Secret.
pub fn secret_name(account: &str) -> String {
    format!("{account}-dockercfg")
}

/// Whether the Secret must be written (again): missing, for another registry, or half of its
/// token's life gone. Returns when it is due next otherwise.
pub fn due(secret: Option<&Secret>, host: &str, lifetime: Duration, now: u64) -> Result<(), u64> {
    let Some(secret) = secret else { return Ok(()) };
    let annotations = secret.annotations();
    if annotations.get(REGISTRY_ANNOTATION).map(String::as_str) != Some(host) {
        return Ok(());
    }
    let Some(expires) = annotations
        .get(EXPIRES_ANNOTATION)
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(());
    };
    let renew_at = renew_at(expires, lifetime);
    if now >= renew_at { Ok(()) } else { Err(renew_at) }
}

/// When a token expiring at `expires` is replaced: half of its lifetime before (seconds since
/// the epoch).
pub fn renew_at(expires: u64, lifetime: Duration) -> u64 {
    expires.saturating_sub(lifetime.as_secs() / 2)
}

/// The Secret holding `token` for `host`, owned by the account.
pub fn credentials_secret(account: &ServiceAccount, host: &str, token: &str, expires: u64) -> Secret {
    let name = account.name_any();
    let config = Credentials::single(host, USER, token).to_docker_config();
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&name)),
            namespace: account.namespace(),
            labels: Some(BTreeMap::from([(CREDENTIALS_LABEL.to_string(), name.clone())])),
            annotations: Some(BTreeMap::from([
                (EXPIRES_ANNOTATION.to_string(), expires.to_string()),
                (REGISTRY_ANNOTATION.to_string(), host.to_string()),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ServiceAccount".into(),
                name,
                uid: account.uid().unwrap_or_default(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(config.into_bytes()),
        )])),
        ..Default::default()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct State {
    ctx: Context,
    settings: Settings,
}

impl crate::error::Shared for State {
    fn context(&self) -> &Context {
        &self.ctx
    }
}

/// Runs the controller until shutdown.
pub async fn run(ctx: Context, settings: Settings) {
    let state = Arc::new(State {
        ctx: ctx.clone(),
        settings,
    });
    crate::cache::controller(
        &ctx,
        "registry-credentials",
        Api::<Project>::all(ctx.client.clone()),
        kube::runtime::watcher::Config::default(),
    )
    .run(
        crate::error::tracked("registry-credentials", reconcile),
        crate::error::policy("registry-credentials"),
        state,
    )
    .for_each(|_| async {})
    .await;
}

async fn reconcile(project: Arc<Project>, state: Arc<State>) -> Result<Action, Error> {
    if project.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = project.name_any();
    let client = &state.ctx.client;
    let settings = &state.settings;
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), &namespace);
    let secrets = Api::<Secret>::namespaced(client.clone(), &namespace);
    // When to look again, in seconds since the epoch.
    let started = now();
    let mut next = started + RECHECK.as_secs();
    for name in ACCOUNTS {
        let Some(account) = accounts.get_opt(name).await? else {
            next = next.min(started + MISSING_ACCOUNT_RETRY.as_secs());
            continue;
        };
        let secret_name = secret_name(name);
        let existing = secrets.get_opt(&secret_name).await?;
        match due(existing.as_ref(), &settings.host, settings.lifetime, now()) {
            Err(renew_at) => next = next.min(renew_at),
            Ok(()) => {
                let (token, expires) = request_token(&accounts, &account, settings).await?;
                let secret = credentials_secret(&account, &settings.host, &token, expires);
                secrets
                    .patch(
                        &secret_name,
                        &PatchParams::apply(MANAGER).force(),
                        &Patch::Apply(&secret),
                    )
                    .await?;
                tracing::info!(namespace, account = name, expires, "registry credentials written");
                // A token the API server made shorter than asked is still not renewed at once.
                next = next.min(renew_at(expires, settings.lifetime).max(now() + 60));
            }
        }
        let linked = account
            .image_pull_secrets
            .iter()
            .flatten()
            .any(|r| r.name == secret_name);
        if !linked {
            // A strategic merge adds this entry and keeps the account's others.
            let patch = json!({"imagePullSecrets": [{"name": secret_name}]});
            accounts
                .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await?;
        }
    }
    Ok(Action::requeue(Duration::from_secs(
        next.saturating_sub(now()).max(1),
    )))
}

/// A token of `account` for the registry's audience, and when it expires.
async fn request_token(
    accounts: &Api<ServiceAccount>,
    account: &ServiceAccount,
    settings: &Settings,
) -> Result<(String, u64), Error> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![settings.audience.clone()],
            expiration_seconds: Some(i64::try_from(settings.lifetime.as_secs()).unwrap_or(i64::MAX)),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let answer = accounts
        .create_token_request(&account.name_any(), &PostParams::default(), &request)
        .await?;
    let status = answer
        .status
        .ok_or_else(|| Error::Transient("the TokenRequest has no status".into()))?;
    let expires = u64::try_from(status.expiration_timestamp.0.as_second()).unwrap_or(0);
    Ok((status.token, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some("builder".into()),
                namespace: Some("team-a".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_secret_is_a_docker_config_for_the_registry_owned_by_its_account() {
        let secret = credentials_secret(&account(), "10.96.0.50:5000", "tok", 1_000);
        assert_eq!(secret.metadata.name.as_deref(), Some("builder-dockercfg"));
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
        let data = &secret.data.unwrap()[".dockerconfigjson"].0;
        let parsed = Credentials::parse(std::str::from_utf8(data).unwrap()).unwrap();
        assert_eq!(parsed.for_registry("10.96.0.50:5000"), Some((USER, "tok")));
        let owner = &secret.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ServiceAccount", "u-1")
        );
    }

    #[test]
    fn a_token_is_renewed_at_half_its_life_or_when_the_registry_changes() {
        let lifetime = Duration::from_secs(1000);
        let secret = credentials_secret(&account(), "reg:5000", "tok", 2_000);
        assert_eq!(due(None, "reg:5000", lifetime, 0), Ok(()));
        assert_eq!(due(Some(&secret), "reg:5000", lifetime, 1_000), Err(1_500));
        assert_eq!(due(Some(&secret), "reg:5000", lifetime, 1_500), Ok(()));
        assert_eq!(due(Some(&secret), "other:5000", lifetime, 1_000), Ok(()));
        let mut unreadable = secret.clone();
        unreadable
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(EXPIRES_ANNOTATION.into(), "soon".into());
        assert_eq!(due(Some(&unreadable), "reg:5000", lifetime, 1_000), Ok(()));
    }
}
