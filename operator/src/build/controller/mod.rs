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
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use slipway_crds::Build;
use slipway_crds::build::{BuildPhase, BuildRunPolicy, BuildStatus, labels};

use super::pod::{self, BuildImages, PodOutcome};
use super::policy::{self, Admission, Sibling};
use crate::{Context, Error};

mod finish;
mod inputs;
#[cfg(test)]
mod tests;

use finish::*;
pub use finish::{elapsed, status_patch, strip_tag};
use inputs::*;
pub use inputs::{build_account, resolve_image};

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
        // A build completes as its container ends, which the kubelet reports while the pod's
        // phase may still say Pending: that pod ran, and keeps its logs.
        let complete = outcome.phase == BuildPhase::Complete;
        finish(&state, &build, &status, outcome, pod.as_ref()).await?;
        // A pod that can never start is not left pending.
        let pending = pod
            .as_ref()
            .and_then(|p| p.status.as_ref()?.phase.as_deref())
            .is_some_and(|p| p == "Pending");
        if pending && !complete {
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
    let unsupported = slipway_crds::contract::plan(&build.spec.common)
        .err()
        .map(|refused| {
            let fields: Vec<String> = refused.iter().map(ToString::to_string).collect();
            format!("Slipway does not carry out {}", fields.join("; "))
        });
    mark_config(client, build, unsupported.as_deref()).await?;
    if let Some(message) = unsupported {
        let outcome = failed(slipway_crds::contract::UNSUPPORTED_REASON, message);
        finish(state, build, status, outcome, None).await?;
        return Ok(Action::await_change());
    }
    let namespace = build.namespace().unwrap_or_default();
    let inputs = match resolve_inputs(client, &state.settings, build, &namespace).await? {
        Resolved::Inputs(inputs) => inputs,
        Resolved::Unresolved(reason, message) => {
            let mut next = status.clone();
            next.reason = Some(reason.into());
            next.message = Some(message);
            write_status(client, build, status, next).await?;
            // Registry credentials come within moments of the project; the rest may take long.
            let retry = if reason == "RegistryCredentialsPending" {
                Duration::from_secs(1)
            } else {
                UNRESOLVED_RETRY
            };
            return Ok(Action::requeue(retry));
        }
        Resolved::Forbidden(reason, message) => {
            finish(state, build, status, failed(reason, message), None).await?;
            return Ok(Action::await_change());
        }
    };
    start_pod(state, build, status, pods, &inputs).await
}

/// Creates the build pod and moves the build to Pending with what it is built from; a pod the API
/// server refuses fails the build.
async fn start_pod(
    state: &State,
    build: &Build,
    status: &BuildStatus,
    pods: &Api<Pod>,
    inputs: &pod::PodInputs,
) -> Result<Action, Error> {
    let client = &state.ctx.client;
    let namespace = build.namespace().unwrap_or_default();
    let pod = pod::build_pod(build, &state.settings.images, inputs);
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

/// The outcome of a build failed before its pod ran.
fn failed(reason: &str, message: String) -> PodOutcome {
    PodOutcome {
        phase: BuildPhase::Failed,
        reason: Some(reason.into()),
        message: Some(message),
        result: None,
    }
}
