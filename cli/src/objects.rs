//! What the verbs that print or write objects share: `KIND/NAME` arguments, `-o json|yaml|name`,
//! `--dry-run=client|server`, and writing with the API server's optimistic concurrency.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DynamicObject, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::Value;
use slipway_crds::{Build, BuildConfig, DeploymentConfig};

/// The kinds the verbs take as `KIND/NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    DeploymentConfig,
    Deployment,
    BuildConfig,
    Build,
    Service,
    Pod,
}

impl Kind {
    /// The short name a user types and messages use.
    pub fn short(self) -> &'static str {
        match self {
            Kind::DeploymentConfig => "dc",
            Kind::Deployment => "deployment",
            Kind::BuildConfig => "bc",
            Kind::Build => "build",
            Kind::Service => "svc",
            Kind::Pod => "pod",
        }
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            Kind::DeploymentConfig => &["dc", "deploymentconfig", "deploymentconfigs"],
            Kind::Deployment => &["deploy", "deployment", "deployments"],
            Kind::BuildConfig => &["bc", "buildconfig", "buildconfigs"],
            Kind::Build => &["build", "builds"],
            Kind::Service => &["svc", "service", "services"],
            Kind::Pod => &["po", "pod", "pods"],
        }
    }

    /// The API resource, for a dynamic client.
    pub fn resource(self) -> ApiResource {
        match self {
            Kind::DeploymentConfig => ApiResource::erase::<DeploymentConfig>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::BuildConfig => ApiResource::erase::<BuildConfig>(&()),
            Kind::Build => ApiResource::erase::<Build>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::Pod => ApiResource::erase::<Pod>(&()),
        }
    }
}

/// Splits `KIND/NAME` and checks the kind is one of `allowed` (pure). `verb` names the command
/// in the message.
pub fn parse_target(text: &str, allowed: &[Kind], verb: &str) -> anyhow::Result<(Kind, String)> {
    let choices = allowed
        .iter()
        .map(|k| format!("{}/NAME", k.short()))
        .collect::<Vec<_>>();
    let Some((kind, name)) = text.split_once('/') else {
        bail!("{verb}: {text:?} is not KIND/NAME; use {}", choices.join(", "));
    };
    let lower = kind.to_ascii_lowercase();
    let base = lower.split('.').next().unwrap_or_default();
    let Some(kind) = allowed.iter().copied().find(|k| k.aliases().contains(&base)) else {
        bail!(
            "{verb}: unknown kind {kind:?} in {text:?}; use {}",
            choices.join(", ")
        );
    };
    check_name(name)?;
    Ok((kind, name.to_string()))
}

/// A Kubernetes object name: a DNS subdomain.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    slipway_client::names::check_subdomain(name).map_err(anyhow::Error::msg)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Yaml,
    Name,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Write for real.
    None,
    /// Print what would be written; send nothing.
    Client,
    /// Send it with dryRun=All: the API server validates (and admits) it, stores nothing.
    Server,
}

impl DryRun {
    /// Whether anything is sent to the API server (a server dry run is sent, and stored nowhere).
    pub fn sends(self) -> bool {
        self != DryRun::Client
    }

    /// Create/replace parameters: `dryRun=All` for a server dry run.
    pub fn post_params(self) -> PostParams {
        PostParams {
            dry_run: self == DryRun::Server,
            ..PostParams::default()
        }
    }

    /// Patch parameters: `dryRun=All` for a server dry run.
    pub fn patch_params(self) -> PatchParams {
        PatchParams {
            dry_run: self == DryRun::Server,
            ..PatchParams::default()
        }
    }

    /// What a report line ends with: nothing, " (dry run)" or " (server dry run)".
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }
}

/// `--dry-run` alone, for the verbs that write without printing objects (rollout, tag,
/// start-build).
#[derive(Args, Debug, Clone, Copy)]
pub struct DryRunFlag {
    /// client: check what can be checked and say what would be done, send no write; server:
    /// send the writes with dryRun=All (the API server validates and admits them, stores
    /// nothing). `--dry-run` alone is client.
    #[arg(long, value_enum, default_value_t = DryRun::None, num_args = 0..=1,
          default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
}

/// `-o` and `--dry-run`, for the verbs that write objects.
#[derive(Args, Debug, Clone, Copy)]
pub struct WriteFlags {
    /// Print the objects written, as json, yaml or name, instead of a line per object.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Output>,
    /// client: print what would be written, send nothing; server: have the API server check it
    /// and store nothing. `--dry-run` alone is client.
    #[arg(long, value_enum, default_value_t = DryRun::None, num_args = 0..=1,
          default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
}

impl WriteFlags {
    fn params(self) -> PostParams {
        self.dry_run.post_params()
    }

    fn suffix(self) -> &'static str {
        self.dry_run.suffix()
    }

    /// Prints a written object: as asked with `-o`, or `kind.group/name VERB`.
    pub fn report(self, object: &Value, verb: &str) -> anyhow::Result<()> {
        match self.output {
            Some(output) => print!("{}", render(object, output)?),
            None => println!("{} {verb}{}", object_name(object), self.suffix()),
        }
        Ok(())
    }

    /// Creates `object` (unless a client dry run) and returns what the API server answered.
    pub async fn create(self, api: &Api<DynamicObject>, object: &DynamicObject) -> anyhow::Result<Value> {
        if self.dry_run == DryRun::Client {
            return Ok(serde_json::to_value(object)?);
        }
        let created = api
            .create(&self.params(), object)
            .await
            .map_err(crate::cluster::api_error)?;
        Ok(serde_json::to_value(created)?)
    }

    /// Creates several objects as one: when writing for real and there is more than one, each is
    /// first sent as a server dry run, so that a refusal of any leaves none of them behind; then
    /// each is created (or, in a dry run, only reported) and reported with `verb`.
    pub async fn create_all(
        self,
        objects: &[(Api<DynamicObject>, DynamicObject)],
        verb: &str,
    ) -> anyhow::Result<()> {
        let what = |object: &DynamicObject| {
            let kind = object.types.as_ref().map_or("object", |t| t.kind.as_str());
            format!(
                "{} {}",
                kind.to_lowercase(),
                object.metadata.name.clone().unwrap_or_default()
            )
        };
        if self.dry_run == DryRun::None && objects.len() > 1 {
            let check = WriteFlags {
                dry_run: DryRun::Server,
                ..self
            };
            for (api, object) in objects {
                check
                    .create(api, object)
                    .await
                    .with_context(|| format!("checking {}", what(object)))?;
            }
        }
        for (api, object) in objects {
            let written = self
                .create(api, object)
                .await
                .with_context(|| format!("creating {}", what(object)))?;
            self.report(&written, verb)?;
        }
        Ok(())
    }

    /// Replaces `object` (it carries the resourceVersion it was read at: a concurrent change
    /// makes this fail rather than be lost) unless a client dry run.
    pub async fn replace(self, api: &Api<DynamicObject>, object: &DynamicObject) -> anyhow::Result<Value> {
        if self.dry_run == DryRun::Client {
            return Ok(serde_json::to_value(object)?);
        }
        let name = object.metadata.name.clone().unwrap_or_default();
        let replaced = api
            .replace(&name, &self.params(), object)
            .await
            .map_err(crate::cluster::api_error)?;
        Ok(serde_json::to_value(replaced)?)
    }
}

/// An object as `-o` asks (pure).
pub fn render(object: &Value, output: Output) -> anyhow::Result<String> {
    Ok(match output {
        Output::Json => format!("{}\n", serde_json::to_string_pretty(object)?),
        Output::Yaml => format!("---\n{}", serde_yaml_ng::to_string(object)?),
        Output::Name => format!("{}\n", object_name(object)),
    })
}

/// `kind.group/name`, as `kubectl -o name` prints it (pure).
pub fn object_name(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
    let group = object["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map(|(g, _)| g)
        .unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

/// A dynamic client for `kind` in `namespace`.
pub fn api(client: &kube::Client, kind: Kind, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.resource())
}

/// Reads `kind/name`; a precise error when it does not exist.
pub async fn get(
    api: &Api<DynamicObject>,
    kind: Kind,
    name: &str,
    namespace: &str,
) -> anyhow::Result<DynamicObject> {
    match api.get_opt(name).await.map_err(crate::cluster::api_error)? {
        Some(object) => Ok(object),
        None => bail!("{}/{name} not found in namespace {namespace}", kind.short()),
    }
}

/// An object as JSON, to edit by pointer, and back.
pub fn to_json(object: &DynamicObject) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(object)?)
}

pub fn from_json(value: Value) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_their_kind_or_say_what_is_allowed() {
        let allowed = [Kind::DeploymentConfig, Kind::Deployment];
        assert_eq!(
            parse_target("dc/web", &allowed, "x").unwrap(),
            (Kind::DeploymentConfig, "web".into())
        );
        assert_eq!(
            parse_target("deployments.apps/web", &allowed, "x").unwrap(),
            (Kind::Deployment, "web".into())
        );
        let err = parse_target("bc/web", &allowed, "slip set env").unwrap_err();
        assert_eq!(
            err.to_string(),
            "slip set env: unknown kind \"bc\" in \"bc/web\"; use dc/NAME, deployment/NAME"
        );
        assert!(
            parse_target("web", &allowed, "x")
                .unwrap_err()
                .to_string()
                .contains("not KIND/NAME")
        );
        assert!(
            parse_target("dc/Web", &allowed, "x")
                .unwrap_err()
                .to_string()
                .contains("not a valid name")
        );
    }

    #[test]
    fn names_are_kind_group_slash_name() {
        let dc = serde_json::json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig", "metadata": {"name": "web"}});
        assert_eq!(object_name(&dc), "deploymentconfig.slipway.dev/web");
        assert_eq!(
            render(&dc, Output::Name).unwrap(),
            "deploymentconfig.slipway.dev/web\n"
        );
        let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
        assert_eq!(object_name(&svc), "service/web");
    }
}
