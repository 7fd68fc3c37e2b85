//! observe: what a New build's pod is made from (builder, base and source images, output), each
//! reference across projects checked as the build's service account.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use slipway_crds::build::BuildPhase;
use slipway_crds::common::{ImageReference, ImageReferenceKind};
use slipway_crds::image::split_stream_tag;
use slipway_crds::{Build, BuildConfig, ImageStream};

use super::pod::{PodInputs, PodOutcome};
use crate::{Error, access};

use super::*;

/// What a New build's images resolve to.
pub(super) enum Resolved {
    /// The pull spec of the image it starts from and the one it pushes to.
    Inputs(PodInputs),
    /// Not yet (reason, message): looked at again after [`UNRESOLVED_RETRY`].
    Unresolved(&'static str, String),
    /// Refused for good (reason, message): the build fails.
    Forbidden(&'static str, String),
}

/// The service account a build's images are checked with: its own, `builder` when unset.
pub fn build_account(build: &Build) -> access::ServiceAccount {
    access::ServiceAccount::builder(
        &build.namespace().unwrap_or_default(),
        build.spec.common.service_account.as_deref(),
    )
}

/// The namespace whose ImageStream an image reference of a build reaches (pure): an ImageStream
/// reference's namespace (the build's own when unset); for a DockerImage pull spec in the
/// integrated registry `registry` (`<registry>/<namespace>/<stream>[:tag|@digest]`, where Slipway
/// pushes every stream's images), the namespace its path starts with, so that naming a stream's
/// repository directly is checked as naming the stream is (when that namespace exists). None for
/// any other registry.
pub(super) fn stream_namespace<'a>(
    reference: &'a ImageReference,
    own: &'a str,
    registry: &str,
) -> Option<&'a str> {
    if reference.kind != ImageReferenceKind::DockerImage {
        return Some(
            reference
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty())
                .unwrap_or(own),
        );
    }
    let registry = registry.trim_end_matches('/');
    if registry.is_empty() {
        return None;
    }
    let spec = reference.name.as_str();
    let host_len = registry.len();
    let rest = spec
        .get(..host_len)
        .filter(|host| host.eq_ignore_ascii_case(registry))
        .and_then(|_| spec[host_len..].strip_prefix('/'))?;
    let (namespace, stream) = rest.split_once('/')?;
    (!namespace.is_empty() && !stream.is_empty()).then_some(namespace)
}

/// Keeps the `UnsupportedBuildField` condition of the build's BuildConfig as its newest build
/// found the spec: True with what is not carried out (`refused`), False once a build plans. The
/// BuildConfig is read first, so that a build of a config without the condition writes nothing.
pub(super) async fn mark_config(client: &Client, build: &Build, refused: Option<&str>) -> Result<(), Error> {
    use slipway_crds::common::{condition_status, find_condition, new_condition, set_condition};
    let Some(name) = config_name(build) else {
        return Ok(());
    };
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &build.namespace().unwrap_or_default());
    let Some(config) = configs.get_opt(&name).await? else {
        return Ok(());
    };
    let mut conditions = config.status.map(|s| s.conditions).unwrap_or_default();
    let reason = slipway_crds::contract::UNSUPPORTED_REASON;
    let condition = match refused {
        Some(message) => new_condition(reason, condition_status::TRUE, reason, message, None),
        None if find_condition(&conditions, reason).is_some() => new_condition(
            reason,
            condition_status::FALSE,
            "AllFieldsCarriedOut",
            "the newest build's fields are all carried out",
            None,
        ),
        None => return Ok(()),
    };
    if set_condition(&mut conditions, condition) {
        let patch = Patch::Merge(json!({"status": {"conditions": conditions}}));
        configs
            .patch_status(&name, &PatchParams::default(), &patch)
            .await?;
    }
    Ok(())
}

/// Whether the build's service account may pull its `from` and push its output, when they name
/// ImageStreams of another namespace: Some((reason, message)) when it may not.
pub(super) async fn forbidden(
    client: &Client,
    build: &Build,
    registry: &str,
) -> Result<Option<(&'static str, String)>, Error> {
    let namespace = build.namespace().unwrap_or_default();
    let account = build_account(build);
    let strategy = &build.spec.common.strategy;
    let base = strategy
        .source_strategy
        .as_ref()
        .map(|s| &s.from)
        .or_else(|| strategy.docker_strategy.as_ref().and_then(|d| d.from.as_ref()));
    let checks = [
        (
            base,
            access::ImageAccess::Pull,
            "BuilderImageForbidden",
            "builder image",
        ),
        (
            build.spec.common.output.to.as_ref(),
            access::ImageAccess::Push,
            "OutputImageForbidden",
            "output image",
        ),
    ];
    let sources = build.spec.common.source.images.iter().map(|i| {
        (
            Some(&i.from),
            access::ImageAccess::Pull,
            "SourceImageForbidden",
            "source image",
        )
    });
    for (reference, right, reason, what) in checks.into_iter().chain(sources) {
        let Some(ns) = reference.and_then(|r| stream_namespace(r, &namespace, registry)) else {
            continue;
        };
        // A registry path that starts with no namespace (the platform's own images, say) belongs
        // to no project's stream. (Who may push to or pull from such paths at all is the
        // registry's to decide: docs/src/operators-guide/chart.md, the registry.)
        let pull_spec = reference.is_some_and(|r| r.kind == ImageReferenceKind::DockerImage);
        if pull_spec
            && ns != namespace
            && Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
                .get_opt(ns)
                .await?
                .is_none()
        {
            continue;
        }
        if let Err(refusal) = access::check(client, &account, ns, right).await? {
            let shown = match reference {
                Some(r) if r.kind == ImageReferenceKind::DockerImage => r.name.clone(),
                Some(r) => format!("{ns}/{}", r.name),
                None => String::new(),
            };
            return Ok(Some((
                reason,
                format!("The {what} {shown} is refused: {refusal}."),
            )));
        }
    }
    Ok(None)
}

/// A build whose pod the API server refused: an Error, with Pod Security's refusal told as such.
pub(super) fn refused_pod(build: &Build, message: &str) -> PodOutcome {
    let (reason, message) = if message.contains("violates PodSecurity") {
        let docker = build.spec.common.strategy.type_ == slipway_crds::build::BuildStrategyType::Docker;
        let advice = if docker {
            " Docker builds run buildah as root with seccomp Unconfined, which only the `privileged` \
             level allows: a platform admin labels the namespace \
             pod-security.kubernetes.io/enforce=privileged, or use a Source build."
        } else {
            " A Source build's builder image must run as a numeric non-root user."
        };
        (
            "PodSecurityForbidden",
            format!("The namespace's Pod Security level refuses the build pod: {message}.{advice}"),
        )
    } else {
        (
            "CannotCreateBuildPod",
            format!("Failed creating build pod: {message}"),
        )
    };
    PodOutcome {
        phase: BuildPhase::Error,
        reason: Some(reason.into()),
        message: Some(message),
        result: None,
    }
}

/// The builder image and the output pull spec, or why they cannot be resolved.
pub(super) async fn resolve_inputs(
    client: &Client,
    settings: &Settings,
    build: &Build,
    namespace: &str,
) -> Result<Resolved, Error> {
    if let Some((reason, message)) = forbidden(client, build, &settings.registry).await? {
        return Ok(Resolved::Forbidden(reason, message));
    }
    let strategy = &build.spec.common.strategy;
    // The image the build starts from: the S2I builder, a Docker build's FROM override, or the
    // custom builder.
    let base = strategy
        .source_strategy
        .as_ref()
        .map(|s| &s.from)
        .or_else(|| strategy.docker_strategy.as_ref().and_then(|d| d.from.as_ref()))
        .or_else(|| strategy.custom_strategy.as_ref().map(|c| &c.from));
    let builder_image = match base {
        None => String::new(),
        Some(from) => match resolve_image(client, settings, from, namespace).await? {
            Some(image) => image,
            None => {
                return Ok(Resolved::Unresolved(
                    "InvalidImageReference",
                    format!(
                        "Referenced image could not be resolved: {} {} has no image yet.",
                        kind_str(from.kind),
                        from.name
                    ),
                ));
            }
        },
    };
    let output_image = match &build.spec.common.output.to {
        None => String::new(),
        Some(to) if to.kind == ImageReferenceKind::DockerImage => to.name.clone(),
        Some(to) => {
            let (stream, tag) = split_stream_tag(&to.name);
            let ns = to.namespace.as_deref().unwrap_or(namespace);
            let streams: Api<ImageStream> = Api::namespaced(client.clone(), ns);
            match streams.get_opt(stream).await? {
                Some(is) => format!("{}:{tag}", repository(settings, &is, ns, stream)),
                None => {
                    return Ok(Resolved::Unresolved(
                        "InvalidOutputReference",
                        format!(
                            "Output image could not be resolved: imagestream {ns}/{stream} does not exist."
                        ),
                    ));
                }
            }
        }
    };
    let mut source_images = Vec::new();
    for image in &build.spec.common.source.images {
        match resolve_image(client, settings, &image.from, namespace).await? {
            Some(pull_spec) => source_images.push(pull_spec),
            None => {
                return Ok(Resolved::Unresolved(
                    "InvalidImageReference",
                    format!(
                        "Source image could not be resolved: {} {} has no image yet.",
                        kind_str(image.from.kind),
                        image.from.name
                    ),
                ));
            }
        }
    }
    let account = build_account(build);
    let mut linked: Vec<String> = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .get_opt(&account.name)
        .await?
        .and_then(|sa| sa.image_pull_secrets)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .filter(|name| !name.is_empty())
        .collect();
    let integrated = settings.images.integrated_registry.as_deref();
    let registry_push_secret = match push_credentials(
        build,
        &output_image,
        integrated,
        &account.name,
        &linked,
    ) {
        PushCredentials::Own => None,
        PushCredentials::Account(secret) => Some(secret),
        PushCredentials::Pending(secret) => {
            return Ok(Resolved::Unresolved(
                "RegistryCredentialsPending",
                format!(
                    "Waiting for the service account {}'s registry credentials (Secret {secret}) to push to the integrated registry.",
                    account.name
                ),
            ));
        }
    };
    // Without a pullSecret of its own, the build pulls with (at most 8 of) its service account's
    // linked ones.
    let account_pull_secrets = if super::pod::pull_secret(build).is_some() {
        Vec::new()
    } else {
        linked.truncate(8);
        linked
    };
    Ok(Resolved::Inputs(PodInputs {
        builder_image,
        output_image,
        source_images,
        account_pull_secrets,
        registry_push_secret,
    }))
}

/// What a build pushes with.
#[derive(Debug, PartialEq, Eq)]
enum PushCredentials {
    /// Its own pushSecret, or none: it pushes elsewhere than the integrated registry.
    Own,
    /// Its account's registry credentials (`crate::registry_credentials`), linked to the account.
    Account(String),
    /// Those credentials, not linked yet: the project's accounts get them moments after the
    /// project is made, and a build started before waits rather than push without.
    Pending(String),
}

/// What a build pushes with (pure): a build whose output is the integrated registry and that has
/// no pushSecret of its own uses its account's registry credentials; an account that never gets
/// them (not `builder`, `deployer` or `default`) pushes without.
fn push_credentials(
    build: &Build,
    output_image: &str,
    integrated: Option<&str>,
    account: &str,
    linked: &[String],
) -> PushCredentials {
    let to_integrated = integrated.is_some_and(|host| {
        build.spec.common.output.push_secret.is_none() && output_image.split('/').next() == Some(host)
    });
    if !to_integrated {
        return PushCredentials::Own;
    }
    let name = crate::registry_credentials::secret_name(account);
    if linked.contains(&name) {
        PushCredentials::Account(name)
    } else if crate::registry_credentials::ACCOUNTS.contains(&account) {
        PushCredentials::Pending(name)
    } else {
        PushCredentials::Own
    }
}

pub(super) fn kind_str(kind: ImageReferenceKind) -> &'static str {
    match kind {
        ImageReferenceKind::ImageStreamTag => "ImageStreamTag",
        ImageReferenceKind::ImageStreamImage => "ImageStreamImage",
        ImageReferenceKind::DockerImage => "DockerImage",
    }
}

/// The repository of an ImageStream: its status's, else `<registry>/<namespace>/<stream>`.
pub(super) fn repository(settings: &Settings, is: &ImageStream, namespace: &str, stream: &str) -> String {
    slipway_client::tags::repository(is, &settings.registry, namespace, stream)
}

/// An image reference as a pull spec; an ImageStreamTag resolves to its newest digest reference.
pub async fn resolve_image(
    client: &Client,
    settings: &Settings,
    from: &ImageReference,
    namespace: &str,
) -> Result<Option<String>, Error> {
    let ns = from.namespace.as_deref().unwrap_or(namespace);
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), ns);
    Ok(match from.kind {
        ImageReferenceKind::DockerImage => Some(from.name.clone()),
        ImageReferenceKind::ImageStreamTag => {
            let (stream, tag) = split_stream_tag(&from.name);
            streams
                .get_opt(stream)
                .await?
                .and_then(|is| is.status?.latest(tag).map(|e| e.docker_image_reference.clone()))
        }
        ImageReferenceKind::ImageStreamImage => {
            let Some((stream, digest)) = from.name.split_once('@') else {
                return Ok(None);
            };
            streams
                .get_opt(stream)
                .await?
                .map(|is| format!("{}@{digest}", repository(settings, &is, ns, stream)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(push_secret: Option<&str>) -> Build {
        let mut build = Build::new("b-1", Default::default());
        build.spec.common.output.push_secret =
            push_secret.map(slipway_crds::common::LocalObjectReference::new);
        build
    }

    #[test]
    fn a_build_pushes_to_the_integrated_registry_with_its_accounts_linked_credentials() {
        use PushCredentials::*;
        let linked = vec!["builder-dockercfg".to_string()];
        let integrated = Some("10.96.0.50:5000");
        let to_integrated = "10.96.0.50:5000/team/web:latest";
        let decide = |build: &Build, output: &str, integrated, account: &str, linked: &[String]| {
            push_credentials(build, output, integrated, account, linked)
        };
        assert_eq!(
            decide(&build(None), to_integrated, integrated, "builder", &linked),
            Account("builder-dockercfg".into())
        );
        // The credentials linked after eight other pull secrets still count.
        let mut many: Vec<String> = (0..9).map(|i| format!("other-{i}")).collect();
        many.push("builder-dockercfg".into());
        assert_eq!(
            decide(&build(None), to_integrated, integrated, "builder", &many),
            Account("builder-dockercfg".into())
        );
        // Its own pushSecret, another registry, or no integrated registry: its own way.
        assert_eq!(
            decide(
                &build(Some("mine")),
                to_integrated,
                integrated,
                "builder",
                &linked
            ),
            Own
        );
        assert_eq!(
            decide(
                &build(None),
                "quay.io/team/web:latest",
                integrated,
                "builder",
                &linked
            ),
            Own
        );
        assert_eq!(decide(&build(None), to_integrated, None, "builder", &linked), Own);
        // An account that never gets credentials pushes without; one that will, waits.
        assert_eq!(
            decide(&build(None), to_integrated, integrated, "custom", &linked),
            Own
        );
        assert_eq!(
            decide(&build(None), to_integrated, integrated, "builder", &[]),
            Pending("builder-dockercfg".into())
        );
    }
}
