//! The Build controller: admits queued builds under their run policy, creates their pods, follows
//! the pods to a terminal phase, records the output image, cancels, and prunes history.
//!
//! observe (the Build, its siblings from the cache, its pod) → decide ([`policy::admit`],
//! [`pod::observe_pod`], [`policy::prune`], [`transition`]; pure) → act (create or delete the pod,
//! merge-patch the Build's status with its resourceVersion, record the ImageStream tag).
//! A build never leaves a terminal phase: a terminal Build is only ever pruned.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use slipway_crds::build::{
    BuildPhase, BuildRunPolicy, BuildStatus, BuildStatusOutput, BuildStatusOutputTo, StageInfo, labels,
};
use slipway_crds::common::{
    ImageReference, ImageReferenceKind, Time, condition_status, new_condition, set_condition,
};
use slipway_crds::image::{TagEvent, split_stream_tag};
use slipway_crds::{Build, BuildConfig, ImageStream};

use super::pod::{self, BuildImages, PodInputs, PodOutcome};
use super::policy::{self, Admission, Sibling};
use crate::{Context, Error, access};

/// The build controller's settings (operator flags).
#[derive(Clone, Debug)]
pub struct Settings {
    pub images: BuildImages,
    /// The registry ImageStreams live in when their status does not say
    /// (`<registry>/<namespace>/<stream>`).
    pub registry: String,
    /// Watch one namespace only.
    pub namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            images: BuildImages::default(),
            registry: "image-registry.slipway-system.svc:5000".into(),
            namespace: None,
        }
    }
}

struct State {
    ctx: Context,
    settings: Settings,
    builds: Store<Build>,
    /// Serializes admission per BuildConfig (`namespace/name`), see [`admit`].
    admitting: slipway_client::locks::KeyedLocks<String>,
}

impl crate::error::Shared for State {
    fn context(&self) -> &Context {
        &self.ctx
    }
}

/// How often a build whose image cannot be resolved yet looks again.
const UNRESOLVED_RETRY: Duration = Duration::from_secs(10);

/// Runs the Build controller until shutdown.
pub async fn run(ctx: Context, settings: Settings) {
    let (builds, pods): (Api<Build>, Api<Pod>) = match &settings.namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let controller = crate::cache::controller(&ctx, "build", builds.clone(), ctx.watcher_config());
    let store = controller.store();
    let siblings_of = store.clone();
    let ctx_watcher_config = ctx.watcher_config();
    let state = Arc::new(State {
        ctx,
        settings,
        builds: store,
        admitting: Default::default(),
    });
    controller
        .owns(pods, watcher::Config::default().labels(labels::BUILD))
        // A build that ends (or goes) lets the queued builds of its BuildConfig move.
        .watches_stream(
            crate::cache::watch(builds, ctx_watcher_config).touched_objects(),
            move |changed: Build| {
                let waiting: Vec<ObjectRef<Build>> = siblings(&siblings_of, &changed)
                    .into_iter()
                    .filter(|b| b.status.as_ref().is_none_or(|s| s.phase == BuildPhase::New))
                    .map(|b| ObjectRef::from_obj(b.as_ref()))
                    .collect();
                waiting
            },
        )
        .run(
            crate::error::tracked("build", reconcile),
            crate::error::policy("build"),
            state,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "build reconcile");
            }
        })
        .await;
}

/// The builds of the same BuildConfig in the same namespace (the build itself included).
fn siblings(store: &Store<Build>, build: &Build) -> Vec<Arc<Build>> {
    let Some(config) = config_name(build) else {
        return Vec::new();
    };
    let namespace = build.namespace();
    store
        .state()
        .into_iter()
        .filter(|b| b.namespace() == namespace && config_name(b).as_deref() == Some(config.as_str()))
        .collect()
}

fn config_name(build: &Build) -> Option<String> {
    build.labels().get(labels::BUILD_CONFIG).cloned()
}

async fn reconcile(build: Arc<Build>, state: Arc<State>) -> Result<Action, Error> {
    let _timer = state.ctx.metrics.reconcile("build", build.as_ref());
    let status = build.status.clone().unwrap_or_default();
    let namespace = build.namespace().unwrap_or_default();
    let client = &state.ctx.client;
    if status.phase.is_terminal() {
        prune(&state, &build).await?;
        return Ok(Action::await_change());
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod_name = pod::pod_name(&build.name_any());
    if status.cancelled {
        match pods.delete(&pod_name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let outcome = PodOutcome {
            phase: BuildPhase::Cancelled,
            reason: Some("CancelledBuild".into()),
            message: Some("The build was cancelled by the user.".into()),
            result: None,
        };
        finish(&state, &build, &status, outcome, None).await?;
        return Ok(Action::await_change());
    }
    if status.phase == BuildPhase::New {
        return admit(&state, &build, &status, &pods).await;
    }
    let pod = pods.get_opt(&pod_name).await?;
    let outcome = pod::observe_pod(pod.as_ref());
    if outcome.phase == status.phase && outcome.reason == status.reason {
        return Ok(Action::await_change());
    }
    if outcome.phase.is_terminal() {
        finish(&state, &build, &status, outcome, pod.as_ref()).await?;
        // A pod that can never start is not left pending.
        let pending = pod
            .as_ref()
            .and_then(|p| p.status.as_ref()?.phase.as_deref())
            .is_some_and(|p| p == "Pending");
        if pending {
            let _ = pods.delete(&pod_name, &Default::default()).await;
        }
    } else {
        let mut next = status.clone();
        next.phase = outcome.phase;
        next.reason = outcome.reason;
        next.message = outcome.message;
        if outcome.phase == BuildPhase::Running && next.start_timestamp.is_none() {
            next.start_timestamp = Some(now());
        }
        let written = write_status(client, &build, &status, next).await?;
        if written && outcome.phase == BuildPhase::Running {
            publish(
                &state.ctx,
                &build,
                EventType::Normal,
                "BuildStarted",
                "Build started",
            )
            .await;
        }
    }
    Ok(Action::await_change())
}

/// A New build: run it when the run policy allows, cancel it when a newer build supersedes it.
///
/// The cache decides waiting. Running or cancelling a Serial or SerialLatestOnly build is decided
/// again under a per-BuildConfig lock from the builds as the API server has them now, and the pod
/// and the Pending phase are written before the lock is let go: with builds created concurrently,
/// a cache that has not yet seen a sibling's Pending would otherwise admit two at once.
async fn admit(state: &State, build: &Build, status: &BuildStatus, pods: &Api<Pod>) -> Result<Action, Error> {
    let run_policy = policy::run_policy(build);
    let siblings: Vec<Sibling> = siblings(&state.builds, build)
        .iter()
        .map(|b| Sibling::of(b))
        .collect();
    let cached = policy::admit(run_policy, &Sibling::of(build), &siblings);
    let config = match config_name(build) {
        Some(config)
            if run_policy != BuildRunPolicy::Parallel && !matches!(cached, Admission::Wait { .. }) =>
        {
            config
        }
        _ => return act_on(state, build, status, pods, cached).await,
    };
    let namespace = build.namespace().unwrap_or_default();
    let _held = state.admitting.lock(format!("{namespace}/{config}")).await;
    let live = Api::<Build>::namespaced(state.ctx.client.clone(), &namespace)
        .list(&ListParams::default().labels(&format!("{}={config}", labels::BUILD_CONFIG)))
        .await?
        .items;
    let Some(me) = live.iter().find(|b| b.name_any() == build.name_any()) else {
        return Ok(Action::await_change());
    };
    let live_status = me.status.clone().unwrap_or_default();
    if live_status.phase != BuildPhase::New || live_status.cancelled {
        // Already moved on; the cache catches up and reconciles it again.
        return Ok(Action::await_change());
    }
    let siblings: Vec<Sibling> = live.iter().map(Sibling::of).collect();
    let decision = policy::admit(run_policy, &Sibling::of(me), &siblings);
    act_on(state, me, &live_status, pods, decision).await
}

/// Acts on the run policy's decision for a New build.
async fn act_on(
    state: &State,
    build: &Build,
    status: &BuildStatus,
    pods: &Api<Pod>,
    decision: Admission,
) -> Result<Action, Error> {
    let client = &state.ctx.client;
    match decision {
        // The sibling watch wakes us when the blocker ends; the timer covers a cache that saw the
        // wake-up before the blocker's new phase.
        Admission::Wait { .. } => return Ok(Action::requeue(Duration::from_secs(5))),
        Admission::Superseded { by } => {
            let outcome = PodOutcome {
                phase: BuildPhase::Cancelled,
                reason: Some("CancelledBuild".into()),
                message: Some(format!(
                    "A newer build ({by}) supersedes it; SerialLatestOnly runs only the latest."
                )),
                result: None,
            };
            finish(state, build, status, outcome, None).await?;
            return Ok(Action::await_change());
        }
        Admission::Run => {}
    }
    if let Err(refused) = slipway_crds::contract::plan(&build.spec.common) {
        let fields: Vec<String> = refused.iter().map(ToString::to_string).collect();
        let message = format!("Slipway does not carry out {}", fields.join("; "));
        mark_config(client, build, Some(&message)).await?;
        let outcome = PodOutcome {
            phase: BuildPhase::Failed,
            reason: Some(slipway_crds::contract::UNSUPPORTED_REASON.into()),
            message: Some(message),
            result: None,
        };
        finish(state, build, status, outcome, None).await?;
        return Ok(Action::await_change());
    }
    mark_config(client, build, None).await?;
    let namespace = build.namespace().unwrap_or_default();
    let inputs = match resolve_inputs(client, &state.settings, build, &namespace).await? {
        Resolved::Inputs(inputs) => inputs,
        Resolved::Unresolved(reason, message) => {
            let mut next = status.clone();
            next.reason = Some(reason.into());
            next.message = Some(message);
            write_status(client, build, status, next).await?;
            return Ok(Action::requeue(UNRESOLVED_RETRY));
        }
        Resolved::Forbidden(reason, message) => {
            let outcome = PodOutcome {
                phase: BuildPhase::Failed,
                reason: Some(reason.into()),
                message: Some(message),
                result: None,
            };
            finish(state, build, status, outcome, None).await?;
            return Ok(Action::await_change());
        }
    };
    let pod = pod::build_pod(build, &state.settings.images, &inputs);
    match pods.create(&PostParams::default(), &pod).await {
        Ok(_) => {}
        // Ours from an earlier attempt whose status write was lost.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(kube::Error::Api(e)) if e.code < 500 && e.code != 429 => {
            let outcome = refused_pod(build, &e.message);
            finish(state, build, status, outcome, None).await?;
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e.into()),
    }
    let mut next = status.clone();
    next.phase = BuildPhase::Pending;
    next.reason = None;
    next.message = None;
    next.output_docker_image_reference =
        (!inputs.output_image.is_empty()).then(|| inputs.output_image.clone());
    next.builder_image = (!inputs.builder_image.is_empty()).then(|| inputs.builder_image.clone());
    next.config = config_name(build).map(|name| slipway_crds::common::ObjectReference {
        api_version: Some(slipway_crds::API_VERSION.into()),
        kind: Some("BuildConfig".into()),
        namespace: Some(namespace.clone()),
        name: Some(name),
        uid: None,
    });
    write_status(client, build, status, next).await?;
    Ok(Action::await_change())
}

/// What a New build's images resolve to.
enum Resolved {
    /// The pull spec of the image it starts from and the one it pushes to.
    Inputs(PodInputs),
    /// Not yet (reason, message): looked at again after [`UNRESOLVED_RETRY`].
    Unresolved(&'static str, String),
    /// Refused for good (reason, message): the build fails.
    Forbidden(&'static str, String),
}

/// The service account a build's images are checked with: its own, `builder` when unset.
pub fn build_account(build: &Build) -> access::ServiceAccount {
    access::ServiceAccount::new(
        build.namespace().unwrap_or_default(),
        build
            .spec
            .common
            .service_account
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "builder".into()),
    )
}

/// The namespace an ImageStream reference of a build names, when it names one (not DockerImage).
fn stream_namespace<'a>(reference: &'a ImageReference, own: &'a str) -> Option<&'a str> {
    (reference.kind != ImageReferenceKind::DockerImage).then(|| {
        reference
            .namespace
            .as_deref()
            .filter(|ns| !ns.is_empty())
            .unwrap_or(own)
    })
}

/// Keeps the `UnsupportedBuildField` condition of the build's BuildConfig as its newest build
/// found the spec: True with what is not carried out (`refused`), False once a build plans. The
/// BuildConfig is read first, so that a build of a config without the condition writes nothing.
async fn mark_config(client: &Client, build: &Build, refused: Option<&str>) -> Result<(), Error> {
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
async fn forbidden(client: &Client, build: &Build) -> Result<Option<(&'static str, String)>, Error> {
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
        let Some(ns) = reference.and_then(|r| stream_namespace(r, &namespace)) else {
            continue;
        };
        if let Err(refusal) = access::check(client, &account, ns, right).await? {
            let name = reference.map(|r| r.name.as_str()).unwrap_or_default();
            return Ok(Some((
                reason,
                format!("The {what} {ns}/{name} is refused: {refusal}."),
            )));
        }
    }
    Ok(None)
}

/// A build whose pod the API server refused: an Error, with Pod Security's refusal told as such.
fn refused_pod(build: &Build, message: &str) -> PodOutcome {
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
async fn resolve_inputs(
    client: &Client,
    settings: &Settings,
    build: &Build,
    namespace: &str,
) -> Result<Resolved, Error> {
    if let Some((reason, message)) = forbidden(client, build).await? {
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
    Ok(Resolved::Inputs(PodInputs {
        builder_image,
        output_image,
        source_images,
    }))
}

fn kind_str(kind: ImageReferenceKind) -> &'static str {
    match kind {
        ImageReferenceKind::ImageStreamTag => "ImageStreamTag",
        ImageReferenceKind::ImageStreamImage => "ImageStreamImage",
        ImageReferenceKind::DockerImage => "DockerImage",
    }
}

/// The repository of an ImageStream: its status's, else `<registry>/<namespace>/<stream>`.
fn repository(settings: &Settings, is: &ImageStream, namespace: &str, stream: &str) -> String {
    is.status
        .as_ref()
        .map(|s| s.docker_image_repository.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| format!("{}/{namespace}/{stream}", settings.registry))
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

/// Moves a build to a terminal phase: timestamps, duration, output, conditions, an Event; on
/// Complete first records the image on the output ImageStream tag.
async fn finish(
    state: &State,
    build: &Build,
    status: &BuildStatus,
    mut outcome: PodOutcome,
    pod: Option<&Pod>,
) -> Result<(), Error> {
    let client = &state.ctx.client;
    // Checked again before the output tag is written: a right revoked while the build ran.
    if outcome.phase == BuildPhase::Complete
        && let Some((reason, message)) = forbidden(client, build).await?
    {
        outcome.phase = BuildPhase::Failed;
        outcome.reason = Some(reason.into());
        outcome.message = Some(message);
    }
    let mut next = status.clone();
    let completed = now();
    let started = next
        .start_timestamp
        .clone()
        .or_else(|| pod.and_then(|p| p.status.as_ref()?.start_time.clone()));
    if let Some(start) = &started {
        let nanos = completed.0.duration_since(start.0).as_nanos();
        next.duration = Some(i64::try_from(nanos.max(0)).unwrap_or(i64::MAX));
        next.elapsed = Some(elapsed(nanos));
    }
    next.start_timestamp = started;
    next.completion_timestamp = Some(completed.clone());
    next.phase = outcome.phase;
    next.reason = outcome.reason.clone();
    next.message = outcome.message.clone();
    if let Some(result) = &outcome.result {
        next.stages = result
            .durations
            .iter()
            .map(|(name, ms)| StageInfo {
                name: name.clone(),
                start_time: None,
                duration_milliseconds: i64::try_from(*ms).unwrap_or(i64::MAX),
            })
            .collect();
        if !result.log_tail.is_empty() && outcome.phase != BuildPhase::Complete {
            next.log_snippet = Some(result.log_tail.join("\n"));
        }
        if let Some(digest) = result.digest.clone().filter(|d| !d.is_empty()) {
            next.output = Some(BuildStatusOutput {
                to: Some(BuildStatusOutputTo {
                    image_digest: digest.clone(),
                }),
            });
            if outcome.phase == BuildPhase::Complete {
                record_output(client, state, build, &next, &digest).await?;
            }
        }
    }
    // The commit the build fetched, for builds started without one (ConfigChange, manual):
    // OpenShift records it in the spec's revision too. Recorded before the terminal phase, so
    // whoever sees the build finished sees what it built.
    let recorded = build.spec.common.revision.as_ref().and_then(|r| r.git.as_ref());
    if recorded.is_none_or(|g| g.commit.is_empty())
        && let Some(revision) = pod.and_then(pod::fetched_revision)
    {
        let builds: Api<Build> = Api::namespaced(client.clone(), &build.namespace().unwrap_or_default());
        let patch = json!({"spec": {"revision": revision}});
        if let Err(e) = builds
            .patch(&build.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(build = %build.name_any(), error = %e, "recording the fetched revision");
        }
    }
    if !write_status(client, build, status, next.clone()).await? {
        return Ok(());
    }
    let (event_type, reason, note) = match outcome.phase {
        BuildPhase::Complete => (
            EventType::Normal,
            "BuildCompleted",
            "Build completed successfully".to_string(),
        ),
        BuildPhase::Cancelled => (
            EventType::Normal,
            "BuildCancelled",
            "Build was cancelled".to_string(),
        ),
        _ => (
            EventType::Warning,
            "BuildFailed",
            format!(
                "Build failed: {}: {}",
                outcome.reason.unwrap_or_default(),
                outcome.message.unwrap_or_default()
            ),
        ),
    };
    publish(&state.ctx, build, event_type, reason, &note).await;
    Ok(())
}

/// Adds the pushed digest to the output ImageStream tag (a DockerImage output only records it in
/// the Build). The ImageStream's status is replaced with the resourceVersion read, so concurrent
/// writers retry instead of losing each other's items.
async fn record_output(
    client: &Client,
    state: &State,
    build: &Build,
    status: &BuildStatus,
    digest: &str,
) -> Result<(), Error> {
    let Some(to) = build
        .spec
        .common
        .output
        .to
        .as_ref()
        .filter(|to| to.kind == ImageReferenceKind::ImageStreamTag)
    else {
        return Ok(());
    };
    let namespace = build.namespace().unwrap_or_default();
    let ns = to.namespace.as_deref().unwrap_or(&namespace);
    let (stream, tag) = split_stream_tag(&to.name);
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), ns);
    for _ in 0..10 {
        let Some(mut is) = streams.get_opt(stream).await? else {
            tracing::warn!(build = %build.name_any(), stream, "output imagestream is gone; nothing recorded");
            return Ok(());
        };
        let repo = status
            .output_docker_image_reference
            .as_deref()
            .map(strip_tag)
            .unwrap_or_else(|| repository(&state.settings, &is, ns, stream));
        let event = TagEvent {
            created: now(),
            docker_image_reference: format!("{repo}@{digest}"),
            image: digest.to_string(),
            generation: is.metadata.generation.unwrap_or(0),
        };
        let mut is_status = is.status.clone().unwrap_or_default();
        if !is_status.record(tag, event) {
            return Ok(());
        }
        is.status = Some(is_status);
        match streams.replace_status(stream, &PostParams::default(), &is).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict(format!(
        "imagestream {ns}/{stream} kept changing; will retry"
    )))
}

/// `registry/ns/app:tag` → `registry/ns/app` (a port's colon is kept).
pub fn strip_tag(reference: &str) -> String {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => reference.to_string(),
    }
}

/// Deletes the oldest finished builds of the BuildConfig beyond its history limits.
async fn prune(state: &State, build: &Build) -> Result<(), Error> {
    let Some(config) = config_name(build) else {
        return Ok(());
    };
    let namespace = build.namespace().unwrap_or_default();
    let configs: Api<BuildConfig> = Api::namespaced(state.ctx.client.clone(), &namespace);
    let bc = configs.get_opt(&config).await?;
    let (successful, failed) = policy::history_limits(bc.as_ref());
    let mut all: Vec<Sibling> = siblings(&state.builds, build)
        .iter()
        .filter(|b| b.name_any() != build.name_any())
        .map(|b| Sibling::of(b))
        .collect();
    all.push(Sibling::of(build));
    let builds: Api<Build> = Api::namespaced(state.ctx.client.clone(), &namespace);
    for name in policy::prune(&all, successful, failed) {
        match builds.delete(&name, &DeleteParams::background()).await {
            Ok(_) => tracing::info!(build = %name, "pruned by the history limit"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The status patch from `before` to `next`: only what this controller owns, with the
/// resourceVersion it read (a concurrent writer makes it conflict and retry).
pub fn status_patch(build: &Build, before: &BuildStatus, mut next: BuildStatus) -> Option<Value> {
    let phase_changed = before.phase != next.phase;
    if phase_changed {
        for condition_type in [
            "New",
            "Pending",
            "Running",
            "Complete",
            "Failed",
            "Error",
            "Cancelled",
        ] {
            let is_now = condition_type == next.phase.as_str();
            if is_now || next.conditions.iter().any(|c| c.type_ == condition_type) {
                let status = if is_now {
                    condition_status::TRUE
                } else {
                    condition_status::FALSE
                };
                set_condition(
                    &mut next.conditions,
                    new_condition(
                        condition_type,
                        status,
                        next.reason
                            .as_deref()
                            .filter(|_| is_now)
                            .unwrap_or(condition_type),
                        next.message.as_deref().filter(|_| is_now).unwrap_or_default(),
                        None,
                    ),
                );
            }
        }
    }
    if &next == before {
        return None;
    }
    let mut status = serde_json::to_value(&next).ok()?;
    // `cancelled` is the user's; never send it. Cleared fields are sent as null.
    if let Some(map) = status.as_object_mut() {
        map.remove("cancelled");
        for key in ["reason", "message"] {
            map.entry(key).or_insert(Value::Null);
        }
    }
    Some(json!({
        "metadata": {"resourceVersion": build.resource_version()},
        "status": status,
    }))
}

/// Writes the status change; returns whether it was written. A conflict means the Build changed
/// since it was read (a newer version is on its way to the cache and will be reconciled), so it
/// is not an error: nothing is written and the caller announces nothing.
async fn write_status(
    client: &Client,
    build: &Build,
    before: &BuildStatus,
    next: BuildStatus,
) -> Result<bool, Error> {
    let Some(patch) = status_patch(build, before, next) else {
        return Ok(false);
    };
    let api: Api<Build> = Api::namespaced(client.clone(), &build.namespace().unwrap_or_default());
    match api
        .patch_status(&build.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn publish(ctx: &Context, build: &Build, type_: EventType, reason: &str, note: &str) {
    ctx.publish(&build.object_ref(&()), type_, "Build", reason, note)
        .await;
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// `1m12s` style, as `oc get builds` shows durations.
pub fn elapsed(nanos: i128) -> String {
    let secs = (nanos / 1_000_000_000).max(0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_like_oc() {
        assert_eq!(elapsed(0), "0s");
        assert_eq!(elapsed(72_000_000_000), "1m12s");
        assert_eq!(elapsed(3_723_000_000_000), "1h2m3s");
    }

    #[test]
    fn strip_tag_keeps_the_port() {
        assert_eq!(strip_tag("127.0.0.1:5000/ns/app:latest"), "127.0.0.1:5000/ns/app");
        assert_eq!(strip_tag("127.0.0.1:5000/ns/app"), "127.0.0.1:5000/ns/app");
        assert_eq!(strip_tag("reg/ns/app@sha256:1"), "reg/ns/app");
    }

    #[test]
    fn status_patch_is_quiet_and_never_sends_cancelled() {
        let mut build = Build::new("app-1", Default::default());
        build.metadata.resource_version = Some("7".into());
        let before = BuildStatus {
            cancelled: true,
            ..Default::default()
        };
        assert!(status_patch(&build, &before, before.clone()).is_none());
        let next = BuildStatus {
            phase: BuildPhase::Cancelled,
            reason: Some("CancelledBuild".into()),
            ..before.clone()
        };
        let patch = status_patch(&build, &before, next).unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        assert_eq!(patch["status"]["phase"], "Cancelled");
        assert!(patch["status"].get("cancelled").is_none());
        assert!(patch["status"]["message"].is_null());
        let conditions = patch["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0]["type"], "Cancelled");
        assert_eq!(conditions[0]["status"], "True");
    }
}
