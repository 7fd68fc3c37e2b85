//! Git-provider webhooks: `POST /webhooks/{namespace}/{buildconfig}/{provider}` turns a verified
//! push into the next Build of the BuildConfig.
//!
//! The pure parts are here and in the submodules — `verify` (signatures over the raw body),
//! `payload` (what each provider's delivery says), `refs` (which refs start builds) and
//! [`decide`] (what to do with a verified delivery) — and are unit-tested without a cluster.
//! `route` is the I/O: reading the body within limits, looking up the BuildConfig and its Secret,
//! recognising redeliveries and instantiating the Build; `cache` mirrors what it reads.

pub mod cache;
pub mod payload;
pub mod provider;
pub mod refs;
pub mod route;
pub mod verify;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use slipway_crds::BuildConfig;
use slipway_crds::build::{BuildRequest, SourceRevision, WebHookCause, WebHookTrigger};

pub use payload::{Event, Push};
pub use provider::Provider;

/// The label on a Build that records which delivery started it (a hash of the delivery), so
/// that a redelivery finds the Build instead of making another.
pub const DELIVERY_LABEL: &str = "slipway.dev/webhook.delivery";

/// What to do with a verified delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A ping: answer 200, build nothing.
    Pong,
    /// Nothing to build (another event, a ref the trigger does not follow, a deleted ref): 202 with
    /// the reason.
    Skip(String),
    /// Start a build with this request.
    Build(Box<BuildRequest>),
    /// The delivery asks for what it may not (a reserved environment variable): 400 with the
    /// reason, nothing built.
    Refuse(String),
}

/// A delivery as far as the decision needs it.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The provider's delivery id (X-GitHub-Delivery, ...), recorded in the cause.
    pub id: Option<String>,
    /// The hash that identifies the delivery ([`delivery_key`]).
    pub key: String,
}

/// Identifies a delivery: a hash of where it was sent and its raw body (and, for generic callers,
/// the optional `X-Slipway-Delivery` header, so that they can ask twice for the same body).
/// A redelivery has the same body, hence the same key. 40 hex digits: a valid label value.
pub fn delivery_key(
    namespace: &str,
    config: &str,
    provider: Provider,
    extra: Option<&str>,
    body: &[u8],
) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        namespace.as_bytes(),
        config.as_bytes(),
        provider.segment().as_bytes(),
        extra.unwrap_or_default().as_bytes(),
    ] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    context.update(body);
    let digest = context.finish();
    hex::encode(&digest.as_ref()[..20])
}

/// Decides what a verified delivery of `provider`, accepted by `trigger` of `config`, does.
pub fn decide(
    provider: Provider,
    trigger: &WebHookTrigger,
    config: &BuildConfig,
    event: Event,
    delivery: &Delivery,
) -> Decision {
    let pushes = match event {
        Event::Ping => return Decision::Pong,
        Event::Ignored(reason) => return Decision::Skip(reason),
        Event::Push(pushes) => pushes,
    };
    let source_ref = config
        .spec
        .common
        .source
        .git
        .as_ref()
        .and_then(|g| g.ref_.as_deref());
    let mut reasons = Vec::new();
    for push in pushes {
        let Some(git_ref) = push.git_ref.as_deref() else {
            // A generic delivery without a ref builds the BuildConfig's own ref.
            return build(provider, trigger, push, delivery);
        };
        let patterns = refs::effective_patterns(&trigger.refs, source_ref, push.default_branch.as_deref());
        if !refs::matches(&patterns, git_ref) {
            reasons.push(format!(
                "{git_ref} does not match the trigger's refs ({})",
                patterns.join(", ")
            ));
        } else if push.deleted {
            reasons.push(format!("{git_ref} was deleted; there is nothing to build"));
        } else {
            return build(provider, trigger, push, delivery);
        }
    }
    if reasons.is_empty() {
        reasons.push("the push changed no refs".into());
    }
    Decision::Skip(format!("no build: {}", reasons.join("; ")))
}

/// The build of `push`, unless its environment sets a reserved variable.
fn build(provider: Provider, trigger: &WebHookTrigger, push: Push, delivery: &Delivery) -> Decision {
    let reserved: Vec<&str> = if env_allowed(provider, trigger) {
        push.env
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| slipway_crds::build::is_reserved_env(name))
            .collect()
    } else {
        Vec::new()
    };
    if !reserved.is_empty() {
        return Decision::Refuse(format!(
            "the delivery's env sets {}, which the builder or the platform reads; allowEnv lets a \
             caller set other variables only (no build was started)",
            reserved.join(", ")
        ));
    }
    Decision::Build(Box::new(request(provider, trigger, push, delivery)))
}

/// Whether a delivery's `env` reaches the build: generic webhooks with `allowEnv` only.
fn env_allowed(provider: Provider, trigger: &WebHookTrigger) -> bool {
    provider == Provider::Generic && trigger.allow_env == Some(true)
}

fn request(provider: Provider, trigger: &WebHookTrigger, push: Push, delivery: &Delivery) -> BuildRequest {
    let revision = push.head.map(|git| SourceRevision {
        type_: "Git".into(),
        git: Some(git),
    });
    let cause = provider.cause(WebHookCause {
        revision: revision.clone(),
        delivery_id: delivery.id.clone(),
    });
    let env = if env_allowed(provider, trigger) {
        push.env
            .into_iter()
            .map(|(name, value)| EnvVar {
                name,
                value: Some(value),
                value_from: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    BuildRequest {
        cause,
        revision,
        env,
        labels: BTreeMap::from([(DELIVERY_LABEL.to_string(), delivery.key.clone())]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_crds::BuildConfigSpec;
    use slipway_crds::build::{GitBuildSource, GitSourceRevision};

    fn config(source_ref: Option<&str>) -> BuildConfig {
        let mut spec = BuildConfigSpec::default();
        spec.common.source.git = Some(GitBuildSource {
            uri: "https://example.com/app.git".into(),
            ref_: source_ref.map(String::from),
            ..Default::default()
        });
        BuildConfig::new("app", spec)
    }

    fn push(git_ref: &str, commit: &str) -> Push {
        Push {
            git_ref: Some(git_ref.into()),
            head: Some(GitSourceRevision {
                commit: commit.into(),
                message: "change".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn delivery() -> Delivery {
        Delivery {
            id: Some("d-1".into()),
            key: "k".repeat(40),
        }
    }

    #[test]
    fn a_matching_push_builds_its_head_and_records_the_cause() {
        let trigger = WebHookTrigger {
            refs: vec!["release/*".into()],
            ..Default::default()
        };
        let event = Event::Push(vec![push("refs/heads/release/2", "abc")]);
        let Decision::Build(request) = decide(Provider::GitHub, &trigger, &config(None), event, &delivery())
        else {
            panic!("no build")
        };
        let commit =
            |r: &Option<SourceRevision>| r.as_ref().and_then(|r| r.git.as_ref()).map(|g| g.commit.clone());
        assert_eq!(commit(&request.revision).as_deref(), Some("abc"));
        let cause = request.cause.github_web_hook.as_ref().unwrap();
        assert_eq!(commit(&cause.revision).as_deref(), Some("abc"));
        assert_eq!(cause.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(request.labels[DELIVERY_LABEL], "k".repeat(40));
    }

    #[test]
    fn a_push_elsewhere_is_skipped_with_the_reason() {
        let trigger = WebHookTrigger::default();
        let event = Event::Push(vec![push("refs/heads/feature", "abc")]);
        let Decision::Skip(reason) = decide(
            Provider::GitLab,
            &trigger,
            &config(Some("main")),
            event,
            &delivery(),
        ) else {
            panic!("built")
        };
        assert!(
            reason.contains("refs/heads/feature does not match the trigger's refs (main)"),
            "{reason}"
        );
        let deleted = Push {
            deleted: true,
            head: None,
            ..push("refs/heads/main", "")
        };
        let decision = decide(
            Provider::GitLab,
            &trigger,
            &config(Some("main")),
            Event::Push(vec![deleted]),
            &delivery(),
        );
        assert!(matches!(decision, Decision::Skip(r) if r.contains("was deleted")));
    }

    #[test]
    fn the_first_matching_ref_of_several_builds() {
        let trigger = WebHookTrigger {
            refs: vec!["main".into()],
            ..Default::default()
        };
        let event = Event::Push(vec![push("refs/heads/other", "1"), push("refs/heads/main", "2")]);
        let Decision::Build(request) =
            decide(Provider::Bitbucket, &trigger, &config(None), event, &delivery())
        else {
            panic!("no build")
        };
        assert_eq!(request.revision.unwrap().git.unwrap().commit, "2");
    }

    #[test]
    fn pings_and_other_events_build_nothing() {
        let trigger = WebHookTrigger::default();
        assert_eq!(
            decide(
                Provider::GitHub,
                &trigger,
                &config(None),
                Event::Ping,
                &delivery()
            ),
            Decision::Pong
        );
        let skipped = decide(
            Provider::GitHub,
            &trigger,
            &config(None),
            Event::Ignored("issues".into()),
            &delivery(),
        );
        assert_eq!(skipped, Decision::Skip("issues".into()));
    }

    #[test]
    fn generic_env_only_when_the_trigger_allows_it() {
        let with_env = || Push {
            env: vec![("K".into(), "V".into())],
            ..Default::default()
        };
        let mut trigger = WebHookTrigger::default();
        let Decision::Build(request) = decide(
            Provider::Generic,
            &trigger,
            &config(None),
            Event::Push(vec![with_env()]),
            &delivery(),
        ) else {
            panic!("no build")
        };
        assert!(request.env.is_empty() && request.revision.is_none());
        trigger.allow_env = Some(true);
        let Decision::Build(request) = decide(
            Provider::Generic,
            &trigger,
            &config(None),
            Event::Push(vec![with_env()]),
            &delivery(),
        ) else {
            panic!("no build")
        };
        assert_eq!(request.env[0].name, "K");
    }

    #[test]
    fn reserved_variables_are_refused_by_name_only_when_env_is_allowed() {
        let with_env = || Push {
            env: vec![
                ("GREETING".into(), "hi".into()),
                ("OUTPUT_IMAGE".into(), "evil.example/x".into()),
                ("https_proxy".into(), "http://evil.example".into()),
            ],
            ..Default::default()
        };
        let mut trigger = WebHookTrigger {
            allow_env: Some(true),
            ..Default::default()
        };
        let decision = decide(
            Provider::Generic,
            &trigger,
            &config(None),
            Event::Push(vec![with_env()]),
            &delivery(),
        );
        let Decision::Refuse(reason) = decision else {
            panic!("not refused: {decision:?}")
        };
        assert!(reason.contains("OUTPUT_IMAGE, https_proxy"), "{reason}");
        assert!(!reason.contains("GREETING"), "{reason}");
        // Without allowEnv the env is dropped, so nothing is refused.
        trigger.allow_env = None;
        let decision = decide(
            Provider::Generic,
            &trigger,
            &config(None),
            Event::Push(vec![with_env()]),
            &delivery(),
        );
        assert!(matches!(decision, Decision::Build(r) if r.env.is_empty()));
    }

    #[test]
    fn delivery_keys_differ_by_body_and_place_and_fit_a_label() {
        let key = delivery_key("ns", "app", Provider::GitHub, None, b"{}");
        assert_eq!(key.len(), 40);
        assert_eq!(key, delivery_key("ns", "app", Provider::GitHub, None, b"{}"));
        assert_ne!(key, delivery_key("ns", "app", Provider::GitHub, None, b"{ }"));
        assert_ne!(key, delivery_key("ns", "app2", Provider::GitHub, None, b"{}"));
        assert_ne!(
            key,
            delivery_key("ns", "app", Provider::Generic, Some("2"), b"{}")
        );
    }
}
