//! The BuildConfig controller: ConfigChange (the first build, when `lastVersion` is 0) and
//! ImageChange (the followed ImageStreamTag moved to a new image: exactly one build) triggers.
//!
//! observe (the BuildConfig read live, the images its triggers follow) → decide ([`decide`], pure)
//! → act (instantiate through [`super::instantiate`]; merge-patch `status.imageChangeTriggers`,
//! never `lastVersion`).
//!
//! Exactly once: a ConfigChange build records the images first and then instantiates (a retry
//! finds `lastVersion` > 0); an ImageChange build instantiates first, unless a build caused by
//! that very image already exists, and then records the image.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use slipway_crds::build::{
    BuildRequest, BuildTriggerCause, BuildTriggerType, ImageChangeCause, ImageChangeTriggerStatus, is_paused,
    labels,
};
use slipway_crds::common::{ImageReference, ImageReferenceKind, Time};
use slipway_crds::image::split_stream_tag;
use slipway_crds::{Build, BuildConfig, ImageStream};

use crate::access::{self, ImageAccess};
use crate::{Context, Error};
use slipway_client::instantiate::{InstantiateError, instantiate};

/// Runs the trigger controller; `namespace` limits it to one namespace.
pub async fn run(ctx: Context, namespace: Option<String>) {
    let (configs, streams): (Api<BuildConfig>, Api<PartialObjectMeta<ImageStream>>) = match &namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    // Every BuildConfig is reconciled after a start, reading its streams live: their first list
    // triggers nothing, and BuildConfigs are listed after it (`cache::quiet_first_list`).
    let (stream_changes, streams_listed) =
        crate::cache::quiet_first_list(crate::cache::watch(streams, watcher::Config::default()));
    let controller = crate::cache::controller_trimmed(
        &ctx,
        "build-trigger",
        configs,
        ctx.watcher_config(),
        streams_listed,
        trim,
    );
    let store = controller.store();
    controller
        .watches_stream(stream_changes, move |is: PartialObjectMeta<ImageStream>| {
            let ns = is.namespace();
            let name = is.name_any();
            let followers: Vec<ObjectRef<BuildConfig>> = store
                .state()
                .into_iter()
                .filter(|bc| {
                    followed(bc).iter().any(|from| {
                        from.namespace.clone().or_else(|| bc.namespace()) == ns
                            && split_stream_tag(&from.name).0 == name
                    })
                })
                .map(|bc| ObjectRef::from_obj(bc.as_ref()))
                .collect();
            followers
        })
        .run(
            crate::error::tracked("build-trigger", reconcile),
            crate::error::policy("build-trigger"),
            Arc::new(ctx),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "buildconfig reconcile");
            }
        })
        .await;
}

/// The ImageStreamTags the image change triggers of `bc` follow (paused ones left out): the
/// trigger's `from`, else the strategy's image.
pub fn followed(bc: &BuildConfig) -> Vec<ImageReference> {
    let strategy = &bc.spec.common.strategy;
    let strategy_from = strategy
        .source_strategy
        .as_ref()
        .map(|s| s.from.clone())
        .or_else(|| strategy.docker_strategy.as_ref().and_then(|d| d.from.clone()))
        .or_else(|| strategy.custom_strategy.as_ref().map(|c| c.from.clone()));
    bc.spec
        .triggers
        .iter()
        .filter(|t| t.type_ == BuildTriggerType::ImageChange)
        .filter(|t| t.image_change.as_ref().is_none_or(|i| i.paused != Some(true)))
        .filter_map(|t| {
            t.image_change
                .as_ref()
                .and_then(|i| i.from.clone())
                .or_else(|| strategy_from.clone())
        })
        .filter(|from| from.kind == ImageReferenceKind::ImageStreamTag)
        .collect()
}

/// Removes from a cached BuildConfig what the reconcile reads live anyway: everything but its
/// triggers, the strategy's image ([`followed`]), `lastVersion` and the metadata.
fn trim(bc: &mut BuildConfig) {
    let common = &mut bc.spec.common;
    common.source = Default::default();
    common.revision = None;
    common.output = Default::default();
    common.resources = None;
    common.post_commit = None;
    common.node_selector = None;
    if let Some(s) = common.strategy.source_strategy.as_mut() {
        s.env = Vec::new();
        s.scripts = None;
    }
    if let Some(s) = common.strategy.docker_strategy.as_mut() {
        s.env = Vec::new();
    }
    if let Some(status) = bc.status.as_mut() {
        status.image_change_triggers = Vec::new();
        status.conditions = Vec::new();
    }
}

/// Whether a trigger of `bc` could start a build: an image change trigger, or a ConfigChange
/// trigger before the first build. Decided on the cached object without reading it live:
/// `lastVersion` only rises, so a cached one above 0 is above 0 live too. (Spares a restart a
/// read per BuildConfig that only git webhooks start.)
pub fn may_trigger(bc: &BuildConfig) -> bool {
    let last_version = bc.status.as_ref().map_or(0, |s| s.last_version);
    let config_change = bc
        .spec
        .triggers
        .iter()
        .any(|t| t.type_ == BuildTriggerType::ConfigChange);
    !followed(bc).is_empty() || (config_change && last_version == 0)
}

/// One followed image: what it points at now and what last started a build.
#[derive(Clone, Debug, PartialEq)]
pub struct Followed {
    pub from: ImageReference,
    pub current: Option<String>,
    pub last_triggered: Option<String>,
}

/// What the triggers ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Nothing,
    /// The first build.
    ConfigChange,
    /// `from` moved to `image`.
    ImageChange {
        from: ImageReference,
        image: String,
    },
}

/// Decides from the BuildConfig's `lastVersion`, whether it has a ConfigChange trigger, and its
/// followed images.
pub fn decide(last_version: i64, config_change: bool, followed: &[Followed]) -> Decision {
    if last_version == 0 && config_change {
        return Decision::ConfigChange;
    }
    for f in followed {
        if let Some(current) = &f.current
            && f.last_triggered.as_ref() != Some(current)
        {
            return Decision::ImageChange {
                from: f.from.clone(),
                image: current.clone(),
            };
        }
    }
    Decision::Nothing
}

/// `status.imageChangeTriggers` with the images in `followed` recorded as triggered.
fn recorded(followed: &[Followed], only: Option<&ImageReference>) -> Vec<ImageChangeTriggerStatus> {
    followed
        .iter()
        .map(|f| {
            let take = only.is_none_or(|o| o == &f.from);
            ImageChangeTriggerStatus {
                last_triggered_image_id: if take {
                    f.current.clone().or_else(|| f.last_triggered.clone())
                } else {
                    f.last_triggered.clone()
                }
                .unwrap_or_default(),
                from: Some(f.from.clone()),
                last_triggered_time: (take && f.current.is_some())
                    .then(|| Time(k8s_openapi::jiff::Timestamp::now())),
            }
        })
        .collect()
}

async fn reconcile(cached: Arc<BuildConfig>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile("build-trigger", cached.as_ref());
    if is_paused(&cached) {
        return Ok(Action::await_change());
    }
    if !may_trigger(&cached) {
        return Ok(Action::await_change());
    }
    let namespace = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    let configs: Api<BuildConfig> = Api::namespaced(ctx.client.clone(), &namespace);
    // Live, not cached: the trigger must see the lastVersion its own last build raised.
    let Some(bc) = configs.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let status = bc.status.clone().unwrap_or_default();
    let (observed, refused) = observe_followed(&ctx, &bc, &status).await?;
    mark_refused(&configs, &bc, &refused).await?;
    let config_change = bc
        .spec
        .triggers
        .iter()
        .any(|t| t.type_ == BuildTriggerType::ConfigChange);
    match decide(status.last_version, config_change, &observed) {
        Decision::Nothing => {}
        Decision::ConfigChange => {
            record(
                &configs,
                &name,
                recorded(&observed, None),
                &status.image_change_triggers,
            )
            .await?;
            let cause = BuildTriggerCause {
                message: "Build configuration change".into(),
                ..Default::default()
            };
            start(&ctx, &bc, cause).await?;
        }
        Decision::ImageChange { from, image } => {
            if !already_built(&ctx, &bc, &image).await? {
                let cause = BuildTriggerCause {
                    message: "Image change".into(),
                    image_change_build: Some(ImageChangeCause {
                        image_id: image.clone(),
                        from_ref: Some(from.clone()),
                    }),
                    ..Default::default()
                };
                start(&ctx, &bc, cause).await?;
            }
            record(
                &configs,
                &name,
                recorded(&observed, Some(&from)),
                &status.image_change_triggers,
            )
            .await?;
        }
    }
    Ok(if refused.is_empty() {
        Action::await_change()
    } else {
        Action::requeue(access::REFUSED_RETRY)
    })
}

/// What each followed ImageStreamTag points at now, and what last triggered a build; and why
/// each trigger that follows another namespace's stream the build's service account may not pull
/// from is refused. A refused trigger's stream is not read: it is seen as pointing at nothing,
/// so neither a build nor the status tells anything of that namespace's images.
async fn observe_followed(
    ctx: &Context,
    bc: &BuildConfig,
    status: &slipway_crds::build::BuildConfigStatus,
) -> Result<(Vec<Followed>, Vec<String>), Error> {
    let namespace = bc.namespace().unwrap_or_default();
    let account = access::ServiceAccount::builder(&namespace, bc.spec.common.service_account.as_deref());
    let (mut observed, mut refused) = (Vec::new(), Vec::new());
    for from in followed(bc) {
        let ns = from.namespace.clone().unwrap_or_else(|| namespace.clone());
        let (stream, tag) = split_stream_tag(&from.name);
        let current = match access::check(&ctx.client, &account, &ns, ImageAccess::Pull).await? {
            Ok(()) => Api::<ImageStream>::namespaced(ctx.client.clone(), &ns)
                .get_opt(stream)
                .await?
                .and_then(|is| is.status?.latest(tag).map(|e| e.docker_image_reference.clone())),
            Err(refusal) => {
                refused.push(format!(
                    "the image trigger on {ns}/{} is refused: {refusal}",
                    from.name
                ));
                None
            }
        };
        let last_triggered = status
            .image_change_triggers
            .iter()
            .find(|t| t.from.as_ref() == Some(&from))
            .map(|t| t.last_triggered_image_id.clone())
            .filter(|id| !id.is_empty());
        observed.push(Followed {
            from,
            current,
            last_triggered,
        });
    }
    Ok((observed, refused))
}

/// Keeps the [`access::IMAGE_ACCESS`] condition of `bc` as `refused` says. Written only when it
/// changes (so the other namespace's pushes, which reconcile `bc`, leave no trace), with `bc`'s
/// resourceVersion (a conflict is retried).
async fn mark_refused(configs: &Api<BuildConfig>, bc: &BuildConfig, refused: &[String]) -> Result<(), Error> {
    let mut conditions = bc
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let changed = access::mark_refused(&mut conditions, refused, bc.metadata.generation);
    if changed {
        let patch = Patch::Merge(json!({
            "metadata": {"resourceVersion": bc.resource_version()},
            "status": {"conditions": conditions},
        }));
        configs
            .patch_status(&bc.name_any(), &PatchParams::default(), &patch)
            .await?;
    }
    Ok(())
}

/// Whether a build of `bc` was already triggered by `image` (a trigger replayed after a restart).
async fn already_built(ctx: &Context, bc: &BuildConfig, image: &str) -> Result<bool, Error> {
    let builds: Api<Build> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    let selector = format!("{}={}", labels::BUILD_CONFIG, bc.name_any());
    let mine = builds.list(&ListParams::default().labels(&selector)).await?;
    Ok(mine.items.iter().any(|b| {
        b.spec
            .triggered_by
            .iter()
            .any(|c| c.image_change_build.as_ref().is_some_and(|i| i.image_id == image))
    }))
}

async fn start(ctx: &Context, bc: &BuildConfig, cause: BuildTriggerCause) -> Result<(), Error> {
    let namespace = bc.namespace().unwrap_or_default();
    let request = BuildRequest {
        cause: cause.clone(),
        ..Default::default()
    };
    match instantiate(&ctx.client, &namespace, &bc.name_any(), &request).await {
        Ok(build) => {
            ctx.publish(
                &bc.object_ref(&()),
                EventType::Normal,
                "Trigger",
                "BuildTriggered",
                &format!("{}: started {}", cause.message, build.name_any()),
            )
            .await;
            Ok(())
        }
        // Paused or deleted meanwhile: nothing to start.
        Err(InstantiateError::Paused { .. } | InstantiateError::NotFound { .. }) => Ok(()),
        // A binary BuildConfig: built by uploads only; said once per trigger, not retried.
        Err(InstantiateError::Refused { reason, .. }) => {
            ctx.publish(
                &bc.object_ref(&()),
                EventType::Warning,
                "Trigger",
                "BuildNotTriggered",
                &format!("{}: no build: {reason}", cause.message),
            )
            .await;
            Ok(())
        }
        Err(InstantiateError::Kube(e)) => Err(e.into()),
        Err(e @ InstantiateError::Contended { .. }) => Err(Error::Conflict(e.to_string())),
    }
}

/// Writes `status.imageChangeTriggers` alone (a JSON merge patch replaces that list and touches
/// nothing else, `lastVersion` least of all); quiet when unchanged.
async fn record(
    configs: &Api<BuildConfig>,
    name: &str,
    triggers: Vec<ImageChangeTriggerStatus>,
    before: &[ImageChangeTriggerStatus],
) -> Result<(), Error> {
    let same = triggers.len() == before.len()
        && triggers
            .iter()
            .zip(before)
            .all(|(a, b)| a.from == b.from && a.last_triggered_image_id == b.last_triggered_image_id);
    if same {
        return Ok(());
    }
    let patch = json!({"status": {"imageChangeTriggers": triggers}});
    configs
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(current: Option<&str>, last: Option<&str>) -> Followed {
        Followed {
            from: ImageReference::image_stream_tag("builder:latest"),
            current: current.map(String::from),
            last_triggered: last.map(String::from),
        }
    }

    #[test]
    fn only_image_triggers_and_a_first_config_change_may_trigger() {
        let bc = |triggers: serde_json::Value, last_version: i64| -> BuildConfig {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": "b"},
                "spec": {"strategy": {"type": "Source", "sourceStrategy": {
                    "from": {"kind": "ImageStreamTag", "name": "builder:latest"}}},
                    "triggers": triggers},
                "status": {"lastVersion": last_version}
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let webhooks =
            serde_json::json!([{"type": "Generic", "generic": {"secretReference": {"name": "s"}}}]);
        assert!(!may_trigger(&bc(webhooks, 0)));
        let config = serde_json::json!([{"type": "ConfigChange"}]);
        assert!(may_trigger(&bc(config.clone(), 0)));
        assert!(!may_trigger(&bc(config, 1)));
        let image = serde_json::json!([{"type": "ImageChange", "imageChange": {}}]);
        assert!(may_trigger(&bc(image, 4)));
        let paused = serde_json::json!([{"type": "ImageChange", "imageChange": {"paused": true}}]);
        assert!(!may_trigger(&bc(paused, 4)));
    }

    #[test]
    fn config_change_builds_first_only() {
        assert_eq!(decide(0, true, &[]), Decision::ConfigChange);
        assert_eq!(decide(1, true, &[]), Decision::Nothing);
        assert_eq!(decide(0, false, &[]), Decision::Nothing);
    }

    #[test]
    fn image_change_builds_when_the_image_moved() {
        assert_eq!(
            decide(3, true, &[f(Some("r@sha256:a"), Some("r@sha256:a"))]),
            Decision::Nothing
        );
        assert_eq!(decide(3, true, &[f(None, Some("r@sha256:a"))]), Decision::Nothing);
        assert_eq!(
            decide(3, true, &[f(Some("r@sha256:b"), Some("r@sha256:a"))]),
            Decision::ImageChange {
                from: ImageReference::image_stream_tag("builder:latest"),
                image: "r@sha256:b".into()
            }
        );
        // Without a ConfigChange trigger the first image starts the first build, as in OpenShift.
        assert!(matches!(
            decide(0, false, &[f(Some("r@sha256:a"), None)]),
            Decision::ImageChange { .. }
        ));
    }

    #[test]
    fn recording_keeps_other_triggers() {
        let other = Followed {
            from: ImageReference::image_stream_tag("base:1"),
            current: Some("x@sha256:new".into()),
            last_triggered: Some("x@sha256:old".into()),
        };
        let list = recorded(
            &[f(Some("r@sha256:b"), Some("r@sha256:a")), other],
            Some(&ImageReference::image_stream_tag("builder:latest")),
        );
        assert_eq!(list[0].last_triggered_image_id, "r@sha256:b");
        assert_eq!(list[1].last_triggered_image_id, "x@sha256:old");
    }
}
