//! act: moving a build to a terminal phase, recording its output image, its status, pruning.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use slipway_client::tags::Recorded;
use slipway_crds::build::{BuildPhase, BuildStatus, BuildStatusOutput, BuildStatusOutputTo, StageInfo};
use slipway_crds::common::{ImageReferenceKind, Time, condition_status, new_condition, set_condition};
use slipway_crds::image::split_stream_tag;
use slipway_crds::{Build, BuildConfig, ImageStream};

use super::pod::{self, PodOutcome};
use super::policy::{self, Sibling};
use crate::{Context, Error};

use super::*;

/// Moves a build to a terminal phase: timestamps, duration, output, conditions, an Event; on
/// Complete first records the image on the output ImageStream tag.
pub(super) async fn finish(
    state: &State,
    build: &Build,
    status: &BuildStatus,
    mut outcome: PodOutcome,
    pod: Option<&Pod>,
) -> Result<(), Error> {
    let client = &state.ctx.client;
    // Checked again before the output tag is written: a right revoked while the build ran.
    if outcome.phase == BuildPhase::Complete
        && let Some((reason, message)) = forbidden(client, build, &state.settings.registry).await?
    {
        outcome.phase = BuildPhase::Failed;
        outcome.reason = Some(reason.into());
        outcome.message = Some(message);
    }
    let next = terminal_status(status, &outcome, pod);
    if outcome.phase == BuildPhase::Complete
        && let Some(digest) = next
            .output
            .as_ref()
            .and_then(|o| o.to.as_ref())
            .map(|t| t.image_digest.clone())
    {
        record_output(client, state, build, &next, &digest).await?;
    }
    record_revision(client, build, pod).await;
    if !write_status(client, build, status, next.clone()).await? {
        return Ok(());
    }
    let (event_type, reason, note) = finish_event(&outcome);
    publish(&state.ctx, build, event_type, reason, &note).await;
    Ok(())
}

/// The status of a build that ends with `outcome`: timestamps, duration, phase, stages, the log's
/// tail on failure, the output digest.
fn terminal_status(status: &BuildStatus, outcome: &PodOutcome, pod: Option<&Pod>) -> BuildStatus {
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
    next.completion_timestamp = Some(completed);
    next.phase = outcome.phase;
    next.reason = outcome.reason.clone();
    next.message = outcome.message.clone();
    let Some(result) = &outcome.result else {
        return next;
    };
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
            to: Some(BuildStatusOutputTo { image_digest: digest }),
        });
    }
    next
}

/// The commit the build fetched, for builds started without one (ConfigChange, manual):
/// OpenShift records it in the spec's revision too. Recorded before the terminal phase, so
/// whoever sees the build finished sees what it built.
async fn record_revision(client: &Client, build: &Build, pod: Option<&Pod>) {
    let recorded = build.spec.common.revision.as_ref().and_then(|r| r.git.as_ref());
    if recorded.is_some_and(|g| !g.commit.is_empty()) {
        return;
    }
    let Some(revision) = pod.and_then(pod::fetched_revision) else {
        return;
    };
    let builds: Api<Build> = Api::namespaced(client.clone(), &build.namespace().unwrap_or_default());
    let patch = json!({"spec": {"revision": revision}});
    if let Err(e) = builds
        .patch(&build.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(build = %build.name_any(), error = %e, "recording the fetched revision");
    }
}

/// The Event that tells of a build's end.
fn finish_event(outcome: &PodOutcome) -> (EventType, &'static str, String) {
    match outcome.phase {
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
                outcome.reason.as_deref().unwrap_or_default(),
                outcome.message.as_deref().unwrap_or_default()
            ),
        ),
    }
}

/// Adds the pushed digest to the output ImageStream tag (a DockerImage output only records it in
/// the Build). The ImageStream's status is replaced with the resourceVersion read, so concurrent
/// writers retry instead of losing each other's items.
pub(super) async fn record_output(
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
    let repository_of = |is: &ImageStream| {
        status
            .output_docker_image_reference
            .as_deref()
            .map(strip_tag)
            .unwrap_or_else(|| repository(&state.settings, is, ns, stream))
    };
    match slipway_client::tags::record(&streams, stream, tag, digest, None, repository_of).await? {
        Recorded::Moved | Recorded::Unchanged => Ok(()),
        Recorded::NoStream => {
            tracing::warn!(build = %build.name_any(), stream, "output imagestream is gone; nothing recorded");
            Ok(())
        }
        Recorded::Conflicted => Err(Error::Conflict(format!(
            "imagestream {ns}/{stream} kept changing; will retry"
        ))),
    }
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
pub(super) async fn prune(state: &State, build: &Build) -> Result<(), Error> {
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
pub(super) async fn write_status(
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

pub(super) async fn publish(ctx: &Context, build: &Build, type_: EventType, reason: &str, note: &str) {
    ctx.publish(&build.object_ref(&()), type_, "Build", reason, note)
        .await;
}

pub(super) fn now() -> Time {
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
