//! `slip secrets link SA SECRET... [--for pull,mount]` and `slip secrets unlink SA SECRET...`:
//! a ServiceAccount's image pull secrets (`--for pull`) and mountable secrets (`--for mount`, the
//! default), as `oc secrets link` edits them.

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference, Secret, ServiceAccount};
use kube::api::{Api, PostParams};

use crate::cluster::{api_error, block_on, client};
use crate::objects::{DryRun, WriteFlags, check_name};

#[derive(Args, Debug)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Let a ServiceAccount use secrets: to pull images (--for pull) or to mount (--for mount,
    /// the default). The secrets must exist.
    Link(LinkArgs),
    /// Take secrets from a ServiceAccount (from both lists); secrets it does not have are left be.
    Unlink(UnlinkArgs),
}

#[derive(Args, Debug)]
pub struct LinkArgs {
    /// The ServiceAccount (NAME or sa/NAME).
    service_account: String,
    /// The secrets (NAME or secret/NAME).
    #[arg(required = true)]
    secrets: Vec<String>,
    /// What the secrets are for: pull, mount or both (comma-separated).
    #[arg(long = "for", value_enum, value_delimiter = ',', default_value = "mount")]
    purpose: Vec<Purpose>,
    #[command(flatten)]
    write: WriteFlags,
}

#[derive(Args, Debug)]
pub struct UnlinkArgs {
    /// The ServiceAccount (NAME or sa/NAME).
    service_account: String,
    /// The secrets (NAME or secret/NAME).
    #[arg(required = true)]
    secrets: Vec<String>,
    #[command(flatten)]
    write: WriteFlags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Purpose {
    Pull,
    Mount,
}

pub fn run(args: SecretsArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    match args.command {
        SecretsCommand::Link(a) => link(a, namespace),
        SecretsCommand::Unlink(a) => unlink(a, namespace),
    }
}

/// `NAME` or `KIND/NAME` with KIND one of `kinds` (pure).
fn strip_kind(text: &str, kinds: &[&str], what: &str) -> anyhow::Result<String> {
    let name = match text.split_once('/') {
        Some((kind, name)) if kinds.contains(&kind.to_ascii_lowercase().as_str()) => name,
        Some((kind, _)) => bail!("{text:?}: expected a {what}, not a {kind}"),
        None => text,
    };
    check_name(name)?;
    Ok(name.to_string())
}

fn sa_name(text: &str) -> anyhow::Result<String> {
    strip_kind(
        text,
        &["sa", "serviceaccount", "serviceaccounts"],
        "ServiceAccount",
    )
}

fn secret_names(texts: &[String]) -> anyhow::Result<Vec<String>> {
    texts
        .iter()
        .map(|t| strip_kind(t, &["secret", "secrets"], "Secret"))
        .collect()
}

/// Adds the secrets to the lists `purposes` name, each once (pure). Whether anything changed.
fn add_links(sa: &mut ServiceAccount, secrets: &[String], purposes: &[Purpose]) -> bool {
    let mut changed = false;
    for secret in secrets {
        if purposes.contains(&Purpose::Pull) {
            let pulls = sa.image_pull_secrets.get_or_insert_with(Vec::new);
            if !pulls.iter().any(|r| &r.name == secret) {
                pulls.push(LocalObjectReference { name: secret.clone() });
                changed = true;
            }
        }
        if purposes.contains(&Purpose::Mount) {
            let mounts = sa.secrets.get_or_insert_with(Vec::new);
            if !mounts.iter().any(|r| r.name.as_deref() == Some(secret)) {
                mounts.push(ObjectReference {
                    name: Some(secret.clone()),
                    ..ObjectReference::default()
                });
                changed = true;
            }
        }
    }
    changed
}

/// Removes the secrets from both lists (pure). Whether anything changed.
fn remove_links(sa: &mut ServiceAccount, secrets: &[String]) -> bool {
    let before = (
        sa.image_pull_secrets.as_ref().map_or(0, Vec::len),
        sa.secrets.as_ref().map_or(0, Vec::len),
    );
    if let Some(pulls) = sa.image_pull_secrets.as_mut() {
        pulls.retain(|r| !secrets.contains(&r.name));
    }
    if let Some(mounts) = sa.secrets.as_mut() {
        mounts.retain(|r| !r.name.as_ref().is_some_and(|n| secrets.contains(n)));
    }
    let after = (
        sa.image_pull_secrets.as_ref().map_or(0, Vec::len),
        sa.secrets.as_ref().map_or(0, Vec::len),
    );
    before != after
}

async fn read_sa(api: &Api<ServiceAccount>, name: &str, ns: &str) -> anyhow::Result<ServiceAccount> {
    match api.get_opt(name).await.map_err(api_error)? {
        Some(sa) => Ok(sa),
        None => bail!("serviceaccount {name} not found in namespace {ns}"),
    }
}

async fn save(api: &Api<ServiceAccount>, mut sa: ServiceAccount, write: WriteFlags) -> anyhow::Result<()> {
    let name = sa.metadata.name.clone().unwrap_or_default();
    if write.dry_run != DryRun::Client {
        let params = PostParams {
            dry_run: write.dry_run == DryRun::Server,
            ..PostParams::default()
        };
        sa = api.replace(&name, &params, &sa).await.map_err(api_error)?;
    }
    let mut value = serde_json::to_value(&sa)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "ServiceAccount".into();
    write.report(&value, "updated")
}

fn link(args: LinkArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let sa_name = sa_name(&args.service_account)?;
    let secrets = secret_names(&args.secrets)?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let secret_api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        for secret in &secrets {
            if secret_api
                .get_metadata_opt(secret)
                .await
                .map_err(api_error)?
                .is_none()
            {
                bail!("secret {secret} not found in namespace {ns}: nothing linked");
            }
        }
        let api: Api<ServiceAccount> = Api::namespaced(client, &ns);
        let mut sa = read_sa(&api, &sa_name, &ns).await?;
        add_links(&mut sa, &secrets, &args.purpose);
        save(&api, sa, args.write).await
    })?
}

fn unlink(args: UnlinkArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let sa_name = sa_name(&args.service_account)?;
    let secrets = secret_names(&args.secrets)?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let api: Api<ServiceAccount> = Api::namespaced(client, &ns);
        let mut sa = read_sa(&api, &sa_name, &ns).await?;
        if !remove_links(&mut sa, &secrets) {
            eprintln!(
                "warning: serviceaccount {sa_name} links none of {}",
                secrets.join(", ")
            );
        }
        save(&api, sa, args.write).await
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_added_once_per_list_and_removed_from_both() {
        let mut sa = ServiceAccount::default();
        let secrets = vec!["pull-me".to_string()];
        assert!(add_links(&mut sa, &secrets, &[Purpose::Pull, Purpose::Mount]));
        assert!(
            !add_links(&mut sa, &secrets, &[Purpose::Pull, Purpose::Mount]),
            "idempotent"
        );
        assert_eq!(sa.image_pull_secrets.as_ref().unwrap().len(), 1);
        assert_eq!(sa.secrets.as_ref().unwrap().len(), 1);
        assert!(remove_links(&mut sa, &secrets));
        assert!(sa.image_pull_secrets.unwrap().is_empty() && sa.secrets.unwrap().is_empty());
    }

    #[test]
    fn names_may_carry_their_kind() {
        assert_eq!(sa_name("sa/builder").unwrap(), "builder");
        assert_eq!(sa_name("builder").unwrap(), "builder");
        assert!(
            sa_name("pod/builder")
                .unwrap_err()
                .to_string()
                .contains("expected a ServiceAccount")
        );
        assert!(secret_names(&["secret/Bad".into()]).is_err());
    }
}
