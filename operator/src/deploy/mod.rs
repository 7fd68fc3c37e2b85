//! The DeploymentConfig controller: triggers raise `status.latestVersion`, each version gets a
//! ReplicaSet `<dc>-<n>`, and the strategy (Rolling or Recreate, with hooks) runs here, in the
//! operator, one idempotent step per reconcile.
//!
//! observe (the DeploymentConfig, its ReplicaSets with their annotations, its hook pods and the
//! ImageStream tags its triggers follow; read from the API server, not a cache, so a step never
//! rests on stale counts) → decide ([`triggers`], [`strategy::next_step`], [`objects::status`],
//! all pure) → act (one write per step, status through the status subresource).
//!
//! Everything the strategy needs to resume after a restart is on the ReplicaSets: the version,
//! its phase, when it started, the outcome of each hook. Version numbers are raised with
//! optimistic concurrency and ReplicaSets are created under their version's name, so a restart
//! at any point neither loses a version nor makes one twice.

mod act;
pub mod objects;
mod prefetch;
pub mod strategy;
pub mod triggers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use slipway_client::rollout::raise_version;
use slipway_crds::apps::{DeploymentPhase, labels};
use slipway_crds::image::{ImageStream, split_stream_tag};
use slipway_crds::{DeploymentConfig, FIELD_MANAGER};

use self::strategy::{HookOutcome, HookPod, HookPodPhase, HookPoint, Step, Version};
use self::triggers::NextVersion;
use crate::access::{self, ImageAccess};

use crate::{Context, Error, cache};

const CONTROLLER: &str = "deploy";

/// Runs the controller until the stream ends. `namespace` limits it to one namespace (tests run
/// one controller per namespace); all namespaces otherwise.
pub async fn run(ctx: Context, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let (dcs, rss, pods, streams) = match namespace {
        // The reconciles read DeploymentConfigs live; the cache holds their metadata only (the
        // largest part of the operator's memory otherwise), the other kinds only trigger.
        Some(ns) => (
            Api::<PartialObjectMeta<DeploymentConfig>>::namespaced(client.clone(), ns),
            Api::<PartialObjectMeta<ReplicaSet>>::namespaced(client.clone(), ns),
            Api::<PartialObjectMeta<Pod>>::namespaced(client.clone(), ns),
            Api::<PartialObjectMeta<ImageStream>>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    // After a start every DeploymentConfig is reconciled once, reading its ReplicaSets, hook
    // pods and streams live: the first lists of those watches trigger nothing, and the
    // DeploymentConfigs are listed after them (see `cache::quiet_first_list`).
    let (owned, rss_listed) = cache::quiet_first_list(cache::watch(
        rss,
        watcher::Config::default().labels(labels::DEPLOYMENT_CONFIG),
    ));
    let (hook_pods, pods_listed) = cache::quiet_first_list(cache::watch(
        pods,
        watcher::Config::default().labels(labels::HOOK_FOR),
    ));
    let (stream_changes, streams_listed) =
        cache::quiet_first_list(cache::watch(streams, watcher::Config::default()));
    let listed = async {
        futures::join!(rss_listed, pods_listed, streams_listed);
    };
    let followers = Arc::new(cache::Followers::default());
    let followers_of = followers.clone();
    // The watches tell the prefetch of each change before it triggers a reconcile.
    let prefetch = Arc::new(prefetch::Prefetch::new(CONTROLLER));
    let (told_rs, told_pod) = (prefetch.clone(), prefetch.clone());
    let owned = owned.inspect(move |rs| {
        if let Ok(rs) = rs {
            told_rs.changed(rs.namespace());
        }
    });
    let hook_pods = hook_pods.inspect(move |pod| {
        if let Ok(pod) = pod {
            told_pod.changed(pod.namespace());
        }
    });
    cache::controller_after(&ctx, CONTROLLER, dcs, ctx.watcher_config(), listed)
        .owns_stream(owned)
        .watches_stream(hook_pods, |pod: PartialObjectMeta<Pod>| {
            let dc = pod.labels().get(labels::DEPLOYMENT_CONFIG)?.clone();
            Some(ObjectRef::new(&dc).within(&pod.namespace()?))
        })
        .watches_stream(stream_changes, move |stream: PartialObjectMeta<ImageStream>| {
            let key = format!("{}/{}", stream.namespace().unwrap_or_default(), stream.name_any());
            followers_of
                .of(&key)
                .into_iter()
                .map(|(namespace, name)| ObjectRef::new(&name).within(&namespace))
                .collect::<Vec<_>>()
        })
        .run(
            crate::error::tracked(CONTROLLER, move |dc, ctx| {
                reconcile(dc, ctx, followers.clone(), prefetch.clone())
            }),
            crate::error::policy(CONTROLLER),
            Arc::new(ctx),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "deployment config reconcile");
            }
        })
        .await;
}

/// What the reconcile reads about one DeploymentConfig.
struct Observed {
    versions: Vec<Version>,
    replica_sets: BTreeMap<String, ReplicaSet>,
    hook_pods: Vec<HookPod>,
    images: BTreeMap<String, String>,
    /// Why image triggers that follow another namespace's streams may not read them.
    forbidden: Vec<String>,
}

/// The ReplicaSets of the DeploymentConfig `namespace/name` (its own among them: the caller
/// checks the owner).
async fn list_replica_sets(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Vec<ReplicaSet>, kube::Error> {
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("{}={name}", labels::DEPLOYMENT_CONFIG);
    Ok(rs_api.list(&ListParams::default().labels(&selector)).await?.items)
}

async fn observe(dc: &DeploymentConfig, ctx: &Context) -> Result<Observed, Error> {
    observe_with(dc, ctx, None).await
}

/// As [`observe`], with the ReplicaSets when they have been listed already.
async fn observe_with(
    dc: &DeploymentConfig,
    ctx: &Context,
    listed: Option<Vec<ReplicaSet>>,
) -> Result<Observed, Error> {
    let namespace = dc.namespace().unwrap_or_default();
    let name = dc.name_any();
    let selector = format!("{}={name}", labels::DEPLOYMENT_CONFIG);
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let hook_selector = format!("{selector},{}", labels::HOOK_FOR);
    // Both lists at once: a reconcile's latency is mostly round trips. Hook pods matter only to
    // a strategy with hooks (a restart of thousands of DeploymentConfigs without hooks is spared
    // a list each).
    let pod_params = ListParams::default().labels(&hook_selector);
    let params = strategy::Params::of(&dc.spec);
    let hooks = params.pre.is_some() || params.mid.is_some() || params.post.is_some();
    let pods = async {
        if hooks {
            pod_api.list(&pod_params).await.map(|l| l.items)
        } else {
            Ok(Vec::new())
        }
    };
    let replica_sets = async {
        match listed {
            Some(list) => Ok(list),
            None => list_replica_sets(ctx, &namespace, &name).await,
        }
    };
    let (rs_list, pod_list) = futures::try_join!(replica_sets, pods)?;
    let mut observed = observed_from(dc, rs_list, &pod_list);
    for params in triggers::image_triggers(&dc.spec) {
        let key = triggers::tag_key(&namespace, params);
        if observed.images.contains_key(&key) {
            continue;
        }
        let Some((stream_ns, stream_tag)) = key.split_once('/') else {
            continue;
        };
        let (stream, tag) = split_stream_tag(stream_tag);
        if let Err(refusal) =
            access::check(&ctx.client, &account_of(dc), stream_ns, ImageAccess::Pull).await?
        {
            observed.forbidden.push(format!(
                "the image trigger on {stream_ns}/{stream_tag} is refused: {refusal}"
            ));
            continue;
        }
        let streams: Api<ImageStream> = Api::namespaced(ctx.client.clone(), stream_ns);
        let found = match streams.get_opt(stream).await {
            Ok(found) => found,
            // Another namespace's stream may not be readable: the trigger stays unresolved.
            Err(kube::Error::Api(s)) if s.code == 403 => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(latest) = found
            .and_then(|s| s.status)
            .and_then(|s| s.latest(tag).map(|e| e.docker_image_reference.clone()))
        {
            observed.images.insert(key, latest);
        }
    }
    Ok(observed)
}

/// What a DeploymentConfig's ReplicaSets (those it owns) and hook pods say, the images of its
/// triggers not resolved yet.
fn observed_from(dc: &DeploymentConfig, rs_list: Vec<ReplicaSet>, pod_list: &[Pod]) -> Observed {
    let uid = dc.uid().unwrap_or_default();
    let mut replica_sets = BTreeMap::new();
    let mut versions = Vec::new();
    for rs in rs_list {
        if !rs.owner_references().iter().any(|o| o.uid == uid) {
            continue;
        }
        if let Some(v) = version_of(&rs) {
            versions.push(v);
            replica_sets.insert(rs.name_any(), rs);
        }
    }
    versions.sort_by_key(|v| v.version);
    Observed {
        versions,
        replica_sets,
        hook_pods: pod_list.iter().filter_map(hook_pod_of).collect(),
        images: BTreeMap::new(),
        forbidden: Vec::new(),
    }
}

/// A ReplicaSet as a version of the rollout.
fn version_of(rs: &ReplicaSet) -> Option<Version> {
    let annotations = rs.annotations();
    let version: i64 = annotations.get(labels::LATEST_VERSION)?.parse().ok()?;
    let spec = rs.spec.as_ref()?;
    let status = rs.status.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let time = |key: &str| annotations.get(key).and_then(|t| t.parse::<Timestamp>().ok());
    let hooks = [HookPoint::Pre, HookPoint::Mid, HookPoint::Post]
        .into_iter()
        .filter_map(|point| {
            let key = format!("{}{}", labels::HOOK_OUTCOME_PREFIX, point.as_str());
            match annotations.get(&key).map(String::as_str) {
                Some("Complete") => Some((point, HookOutcome::Complete)),
                Some("Failed") => Some((point, HookOutcome::Failed)),
                _ => None,
            }
        })
        .collect();
    let replica_failure = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_else(|| "FailedCreate".into()),
                c.message.clone().unwrap_or_default(),
            )
        });
    Some(Version {
        name: rs.name_any(),
        version,
        phase: annotations
            .get(labels::DEPLOYMENT_PHASE)
            .map(|p| DeploymentPhase::parse(p)),
        replicas,
        current: status.replicas,
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
        settled: status.observed_generation.unwrap_or(0) >= rs.metadata.generation.unwrap_or(0)
            && status.replicas == replicas,
        cancelled: annotations.get(labels::CANCELLED).is_some_and(|v| v == "true"),
        started_at: time(labels::STARTED_AT),
        last_step: time(labels::LAST_STEP),
        hooks,
        replica_failure,
        template: annotations
            .get(labels::ENCODED_TEMPLATE)
            .and_then(|t| serde_json::from_str::<PodTemplateSpec>(t).ok()),
        cause: annotations.get(labels::CAUSE).cloned(),
        status_reason: annotations.get(labels::STATUS_REASON).cloned(),
    })
}

fn hook_pod_of(pod: &Pod) -> Option<HookPod> {
    let version = pod.labels().get(labels::HOOK_FOR)?.clone();
    let point = HookPoint::parse(pod.labels().get(labels::HOOK_POINT)?)?;
    let phase = if pod.metadata.deletion_timestamp.is_some() {
        HookPodPhase::Terminating
    } else {
        match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Succeeded") => HookPodPhase::Succeeded,
            Some("Failed") => HookPodPhase::Failed,
            _ => HookPodPhase::Running,
        }
    };
    Some(HookPod {
        version,
        point,
        phase,
    })
}

/// Whether the reconcile of `dc` reads nothing but the DeploymentConfig and its ReplicaSets: no
/// image triggers (streams), no hooks (hook pods).
fn reads_only_replica_sets(dc: &DeploymentConfig) -> bool {
    let params = strategy::Params::of(&dc.spec);
    let hooks = params.pre.is_some() || params.mid.is_some() || params.post.is_some();
    !hooks && triggers::image_triggers(&dc.spec).next().is_none()
}

/// Whether the reconcile of `dc`, having observed `observed`, would write nothing and wait for a
/// change: `reconcile`'s decisions in its order, without its writes (kept in step with it).
fn at_rest(dc: &DeploymentConfig, observed: &Observed, now: Timestamp) -> bool {
    if dc.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let namespace = dc.namespace().unwrap_or_default();
    if !dc.spec.paused && triggers::apply_images(&dc.spec, &namespace, &observed.images).is_some() {
        return false;
    }
    let status = dc.status.clone().unwrap_or_default();
    let newest = observed.versions.last().map(|v| v.version).unwrap_or(0);
    if status.latest_version <= newest {
        let latest_template = observed.versions.last().and_then(|v| v.template.as_ref());
        if let NextVersion::Roll(_) = triggers::next_version(&dc.spec, latest_template) {
            return false;
        }
    } else if dc.spec.template.is_some() {
        return false;
    }
    let step = strategy::next_step(&dc.spec, &observed.versions, &observed.hook_pods, now);
    step == Step::Wait(None) && dc.status.as_ref() == Some(&wanted_status(dc, observed))
}

/// The service account a DeploymentConfig's images are checked with: its pods' (`default` when
/// the template names none).
pub fn account_of(dc: &DeploymentConfig) -> access::ServiceAccount {
    let name = dc
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.service_account_name.as_deref());
    access::ServiceAccount::of_pods(&dc.namespace().unwrap_or_default(), name)
}

/// [`objects::status`], with the condition [`access::IMAGE_ACCESS`] while an image trigger is
/// refused.
fn wanted_status(dc: &DeploymentConfig, observed: &Observed) -> slipway_crds::apps::DeploymentConfigStatus {
    let mut status = objects::status(dc, &observed.versions);
    access::mark_refused(
        &mut status.conditions,
        &observed.forbidden,
        dc.metadata.generation,
    );
    status
}

async fn reconcile(
    cached: Arc<PartialObjectMeta<DeploymentConfig>>,
    ctx: Arc<Context>,
    followers: Arc<cache::Followers>,
    prefetch: Arc<prefetch::Prefetch>,
) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER, cached.as_ref());
    let namespace = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    // The first reconcile after a start: at rest as its namespace's lists showed it, and
    // unchanged since (see `prefetch`). It follows no streams (it has no image triggers).
    if prefetch.at_rest(&ctx, &cached).await {
        followers.record(&namespace, &name, Vec::new());
        return Ok(Action::await_change());
    }
    let dcs: Api<DeploymentConfig> = Api::namespaced(ctx.client.clone(), &namespace);
    // Live: the cache holds metadata only. Its ReplicaSets at the same time (one round trip).
    let (found, replica_sets) =
        futures::try_join!(dcs.get_opt(&name), list_replica_sets(&ctx, &namespace, &name))?;
    let Some(dc) = found else {
        followers.record(&namespace, &name, Vec::new());
        return Ok(Action::await_change());
    };
    // The streams its image triggers follow (`namespace/stream`), so a moved tag wakes it.
    followers.record(&namespace, &name, followed_streams(&dc, &namespace));
    if dc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let mut observed = observe_with(&dc, &ctx, Some(replica_sets)).await?;
    let mut events = Vec::new();
    let dc = apply_triggers(&dcs, dc, &observed, &mut events).await?;
    if create_new_version(&dc, &ctx, &observed, &mut events).await? {
        observed = observe(&dc, &ctx).await?;
    }
    // Events after the writes they tell of, so they do not delay the new version.
    let reference = dc.object_ref(&());
    for (action, reason, note) in events {
        ctx.publish(&reference, EventType::Normal, action, reason, &note)
            .await;
    }
    // The strategy: one step.
    let step = strategy::next_step(
        &dc.spec,
        &observed.versions,
        &observed.hook_pods,
        Timestamp::now(),
    );
    let acted = act::act(&dc, &ctx, &observed, &step).await?;
    if acted {
        observed = observe(&dc, &ctx).await?;
    }
    write_status(&dcs, &dc, &observed).await?;
    Ok(match step {
        _ if acted => Action::requeue(Duration::from_millis(50)),
        // A refused image trigger is asked about again: nothing wakes it when the right is granted.
        _ if !observed.forbidden.is_empty() => Action::requeue(access::REFUSED_RETRY),
        Step::Wait(Some(after)) => Action::requeue(after),
        _ => Action::await_change(),
    })
}

/// The streams (`namespace/stream`) the image triggers of `dc` follow.
fn followed_streams(dc: &DeploymentConfig, namespace: &str) -> Vec<String> {
    triggers::image_triggers(&dc.spec)
        .filter_map(|p| {
            let key = triggers::tag_key(namespace, p);
            key.split_once(':').map(|(stream, _)| stream.to_string())
        })
        .collect()
}

/// An Event to publish after the writes: action, reason, note.
type Told = (&'static str, &'static str, String);

/// Triggers: image changes go into the template first (optimistic concurrency on the spec), then
/// a new version is raised when the template differs from the latest version's. Returns the
/// DeploymentConfig as written.
async fn apply_triggers(
    dcs: &Api<DeploymentConfig>,
    mut dc: DeploymentConfig,
    observed: &Observed,
    events: &mut Vec<Told>,
) -> Result<DeploymentConfig, Error> {
    let namespace = dc.namespace().unwrap_or_default();
    if !dc.spec.paused
        && let Some(spec) = triggers::apply_images(&dc.spec, &namespace, &observed.images)
    {
        let mut updated = dc.clone();
        updated.spec = spec;
        updated.status = None;
        dc = dcs.replace(&dc.name_any(), &post_params(), &updated).await?;
        events.push((
            "UpdateImage",
            "ImageChangeTriggered",
            "an image trigger's tag moved; the pod template has the new image".to_string(),
        ));
    }
    let status = dc.status.clone().unwrap_or_default();
    let newest = observed.versions.last().map(|v| v.version).unwrap_or(0);
    if status.latest_version > newest {
        return Ok(dc);
    }
    let latest_template = observed.versions.last().and_then(|v| v.template.as_ref());
    match triggers::next_version(&dc.spec, latest_template) {
        NextVersion::Roll(details) => {
            let message = details.message.clone().unwrap_or_default();
            let version = newest.max(status.latest_version) + 1;
            dc = raise_version(dcs, &dc, version, details, &post_params()).await?;
            events.push((
                "Trigger",
                "DeploymentConfigTriggered",
                format!("version {version} triggered by {message}"),
            ));
        }
        NextVersion::WaitForImages(tags) => {
            tracing::debug!(?tags, "the first version waits for images");
        }
        NextVersion::None => {}
    }
    Ok(dc)
}

/// A raised version gets its ReplicaSet `<dc>-<n>`; returns whether one was created (or found).
async fn create_new_version(
    dc: &DeploymentConfig,
    ctx: &Context,
    observed: &Observed,
    events: &mut Vec<Told>,
) -> Result<bool, Error> {
    let status = dc.status.clone().unwrap_or_default();
    let newest = observed.versions.last().map(|v| v.version).unwrap_or(0);
    if status.latest_version <= newest || dc.spec.template.is_none() {
        return Ok(false);
    }
    let owner = dc
        .controller_owner_ref(&())
        .ok_or_else(|| missing("owner reference"))?;
    let Some(rs) = objects::replica_set(dc, owner, status.latest_version, status.details.as_ref()) else {
        return Ok(false);
    };
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &dc.namespace().unwrap_or_default());
    let name = rs.name_any();
    match rs_api.create(&post_params(), &rs).await {
        Ok(_) => events.push((
            "Create",
            "DeploymentCreated",
            format!(
                "Created new replication controller {name:?} for version {}",
                status.latest_version
            ),
        )),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(true)
}

/// Writes the status the observation gives, only when it changed.
async fn write_status(
    dcs: &Api<DeploymentConfig>,
    dc: &DeploymentConfig,
    observed: &Observed,
) -> Result<(), Error> {
    let wanted = wanted_status(dc, observed);
    if dc.status.as_ref() == Some(&wanted) {
        return Ok(());
    }
    let patch = json!({"status": {
        "observedGeneration": wanted.observed_generation,
        "replicas": wanted.replicas,
        "updatedReplicas": wanted.updated_replicas,
        "availableReplicas": wanted.available_replicas,
        "unavailableReplicas": wanted.unavailable_replicas,
        "readyReplicas": wanted.ready_replicas,
        "conditions": wanted.conditions,
        "triggerSummary": wanted.trigger_summary,
        "selector": wanted.selector,
    }});
    dcs.patch_status(&dc.name_any(), &patch_params(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.into()),
    }
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

fn missing(what: &str) -> Error {
    Error::InvalidSpec(format!("the DeploymentConfig has no {what}"))
}

/// An ObjectReference to a DeploymentConfig, for Events.
pub fn reference_of(dc: &DeploymentConfig) -> ObjectReference {
    dc.object_ref(&())
}
