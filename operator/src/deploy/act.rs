//! act: carries out the one step [`super::strategy::next_step`] decided, with one write (and the
//! Event that tells of it), and runs lifecycle hooks.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use slipway_crds::DeploymentConfig;
use slipway_crds::apps::{DeploymentPhase, LifecycleHook, LifecycleHookFailurePolicy, TagImageHook, labels};
use slipway_crds::image::{ImageStream, TagReference, split_stream_tag};

use super::strategy::{HookOutcome, HookPoint, Step};
use super::{Observed, account_of, missing, objects, patch_params, post_params};
use crate::access::{self, ImageAccess};
use crate::{Context, Error};

/// Does one step; returns whether it wrote anything.
pub(super) async fn act(
    dc: &DeploymentConfig,
    ctx: &Context,
    observed: &Observed,
    step: &Step,
) -> Result<bool, Error> {
    let actor = Actor::new(dc, ctx);
    match step {
        Step::Wait(_) => return Ok(false),
        Step::Start { version } => actor.start(version).await?,
        Step::Scale {
            version,
            from,
            to,
            progress,
        } => actor.scale(observed, version, *from, *to, *progress).await?,
        Step::RunHook { version, point, hook } => actor.run_hook(observed, version, *point, hook).await?,
        Step::RetryHook { version, point } => actor.retry_hook(version, *point).await?,
        Step::RecordHook {
            version,
            point,
            outcome,
        } => actor.record_hook(version, *point, outcome).await?,
        Step::Complete { version } => actor.complete(version).await?,
        Step::Fail {
            version,
            reason,
            message,
        } => actor.fail(observed, version, reason, message).await?,
        Step::Prune { version } => actor.prune(version).await?,
    }
    Ok(true)
}

/// What every step writes with: the DeploymentConfig's ReplicaSets and Events.
struct Actor<'a> {
    dc: &'a DeploymentConfig,
    ctx: &'a Context,
    namespace: String,
    replica_sets: Api<ReplicaSet>,
    reference: ObjectReference,
}

impl<'a> Actor<'a> {
    fn new(dc: &'a DeploymentConfig, ctx: &'a Context) -> Self {
        let namespace = dc.namespace().unwrap_or_default();
        Self {
            dc,
            ctx,
            replica_sets: Api::namespaced(ctx.client.clone(), &namespace),
            reference: dc.object_ref(&()),
            namespace,
        }
    }

    /// Merges `values` into the annotations of ReplicaSet `version`.
    async fn annotate(&self, version: &str, values: Value) -> Result<(), Error> {
        let patch = json!({"metadata": {"annotations": values}});
        self.replica_sets
            .patch(version, &patch_params(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn event(&self, type_: EventType, action: &str, reason: &str, note: &str) {
        self.ctx
            .publish(&self.reference, type_, action, reason, note)
            .await;
    }

    async fn start(&self, version: &str) -> Result<(), Error> {
        let now = Timestamp::now().to_string();
        self.annotate(
            version,
            json!({labels::DEPLOYMENT_PHASE: "Running", labels::STARTED_AT: now}),
        )
        .await?;
        let note = format!("rollout of {version} started ({:?})", self.dc.spec.strategy.type_);
        self.event(EventType::Normal, "Rollout", "RolloutStarted", &note)
            .await;
        Ok(())
    }

    async fn scale(
        &self,
        observed: &Observed,
        version: &str,
        from: i32,
        to: i32,
        progress: bool,
    ) -> Result<(), Error> {
        let patch = json!({"spec": {"replicas": to}});
        self.replica_sets
            .patch(version, &patch_params(), &Patch::Merge(&patch))
            .await?;
        if progress && let Some(latest) = observed.versions.last() {
            let now = Timestamp::now().to_string();
            self.annotate(&latest.name, json!({labels::LAST_STEP: now}))
                .await?;
        }
        let failed_latest = observed
            .versions
            .last()
            .is_some_and(|v| v.phase == Some(DeploymentPhase::Failed) && v.name != version);
        let reason = if failed_latest && to > from {
            "RollingBack"
        } else {
            "Scaled"
        };
        let note = format!("Scaled replication controller {version:?} from {from} to {to}");
        self.event(EventType::Normal, "Scale", reason, &note).await;
        Ok(())
    }

    async fn retry_hook(&self, version: &str, point: HookPoint) -> Result<(), Error> {
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        match pods
            .delete(
                &objects::hook_pod_name(version, point),
                &DeleteParams::background(),
            )
            .await
        {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let note = format!(
            "the {} hook of {version} failed; running it again",
            point.as_str()
        );
        self.event(EventType::Warning, "Hook", "HookRetrying", &note)
            .await;
        Ok(())
    }

    async fn record_hook(&self, version: &str, point: HookPoint, outcome: &HookOutcome) -> Result<(), Error> {
        let (value, type_, reason) = match outcome {
            HookOutcome::Complete => ("Complete", EventType::Normal, "HookCompleted"),
            HookOutcome::Failed => ("Failed", EventType::Warning, "HookFailed"),
        };
        self.annotate(version, json!({hook_key(point): value})).await?;
        let note = format!("the {} hook of {version}: {value}", point.as_str());
        self.event(type_, "Hook", reason, &note).await;
        Ok(())
    }

    async fn complete(&self, version: &str) -> Result<(), Error> {
        self.annotate(
            version,
            json!({labels::DEPLOYMENT_PHASE: "Complete", labels::STATUS_REASON: null}),
        )
        .await?;
        let note = format!("replication controller {version:?} successfully rolled out");
        self.event(EventType::Normal, "Rollout", "RolloutComplete", &note)
            .await;
        Ok(())
    }

    async fn fail(
        &self,
        observed: &Observed,
        version: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        // A hook that said why it failed keeps its words.
        let said = observed
            .versions
            .iter()
            .find(|v| v.name == version)
            .and_then(|v| v.status_reason.clone())
            .filter(|r| r.starts_with(&format!("{reason}: ")));
        let cause = said.unwrap_or_else(|| format!("{reason}: {message}"));
        self.annotate(
            version,
            json!({labels::DEPLOYMENT_PHASE: "Failed", labels::STATUS_REASON: cause}),
        )
        .await?;
        let note = format!("rollout of {version} failed: {message}");
        self.event(EventType::Warning, "Rollout", reason, &note).await;
        Ok(())
    }

    async fn prune(&self, version: &str) -> Result<(), Error> {
        match self
            .replica_sets
            .delete(version, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let note = format!("deleted {version:?}, beyond the revision history limit");
        self.event(EventType::Normal, "Prune", "DeploymentPruned", &note)
            .await;
        Ok(())
    }

    /// Runs a hook: creates its pod (execNewPod), or tags the version's images (tagImages) and
    /// records the outcome at once.
    async fn run_hook(
        &self,
        observed: &Observed,
        version: &str,
        point: HookPoint,
        hook: &LifecycleHook,
    ) -> Result<(), Error> {
        let Some(rs) = observed.replica_sets.get(version) else {
            return Ok(());
        };
        let template = observed
            .versions
            .iter()
            .find(|v| v.name == version)
            .and_then(|v| v.template.clone())
            .unwrap_or_default();
        if hook.exec_new_pod.is_some() {
            let owner = OwnerReference {
                controller: Some(false),
                ..rs.controller_owner_ref(&())
                    .ok_or_else(|| missing("ReplicaSet uid"))?
            };
            return self.start_hook_pod(version, &template, point, hook, owner).await;
        }
        let Some(message) = self.tag_images(&template, &hook.tag_images).await? else {
            return self.annotate(version, json!({hook_key(point): "Complete"})).await;
        };
        self.event(EventType::Warning, "Hook", "HookFailed", &message)
            .await;
        if hook.failure_policy == LifecycleHookFailurePolicy::Retry {
            // Tried again after the error policy's backoff, not in a tight loop.
            return Err(Error::Transient(message));
        }
        // The version's failure names why (Step::Fail keeps it).
        let reason = format!("HookFailed: {message}");
        self.annotate(
            version,
            json!({hook_key(point): "Failed", labels::STATUS_REASON: reason}),
        )
        .await
    }

    /// execNewPod: creates the hook pod (its outcome is recorded when it ends); a pod the API
    /// server refuses fails the hook unless it is to be retried.
    async fn start_hook_pod(
        &self,
        version: &str,
        template: &PodTemplateSpec,
        point: HookPoint,
        hook: &LifecycleHook,
        owner: OwnerReference,
    ) -> Result<(), Error> {
        let Some(exec) = &hook.exec_new_pod else {
            return Ok(());
        };
        let pod = match objects::hook_pod(self.dc, version, template, point, exec, owner) {
            Ok(pod) => pod,
            Err(message) => {
                self.annotate(version, json!({hook_key(point): "Failed"})).await?;
                self.event(EventType::Warning, "Hook", "HookFailed", &message)
                    .await;
                return Ok(());
            }
        };
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        match pods.create(&post_params(), &pod).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 422 || s.code == 403 => {
                if hook.failure_policy != LifecycleHookFailurePolicy::Retry {
                    self.annotate(version, json!({hook_key(point): "Failed"})).await?;
                }
                self.event(EventType::Warning, "Hook", "HookFailed", &s.message)
                    .await;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let note = format!(
            "started the {} hook pod {:?}",
            point.as_str(),
            objects::hook_pod_name(version, point)
        );
        self.event(EventType::Normal, "Hook", "HookStarted", &note).await;
        Ok(())
    }

    /// tagImages: each named container's image becomes the target tag's source, each target
    /// checked as the DeploymentConfig's service account. The first failure, if any.
    async fn tag_images(
        &self,
        template: &PodTemplateSpec,
        tags: &[TagImageHook],
    ) -> Result<Option<String>, Error> {
        for tag in tags {
            let image = template
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .find(|c| c.name == tag.container_name)
                .and_then(|c| c.image.clone());
            let Some(image) = image else {
                return Ok(Some(format!(
                    "tagImages names container {:?}, which has no image",
                    tag.container_name
                )));
            };
            let stream_ns = tag
                .to
                .namespace
                .clone()
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| self.namespace.clone());
            let account = account_of(self.dc);
            if let Err(refusal) =
                access::check(&self.ctx.client, &account, &stream_ns, ImageAccess::Push).await?
            {
                return Ok(Some(format!(
                    "ImagePushForbidden: tagging {image} into {stream_ns}/{} is refused: {refusal}",
                    tag.to.name
                )));
            }
            if let Err(e) = self.tag_one(&stream_ns, &tag.to.name, &image).await {
                return Ok(Some(format!(
                    "tagging {image} into {}: {}",
                    tag.to.name,
                    crate::dynamic::api_message(&e)
                )));
            }
        }
        Ok(None)
    }

    /// Points tag `stream:tag` of `namespace` at `image` (nothing written when it already is).
    async fn tag_one(&self, namespace: &str, stream_tag: &str, image: &str) -> kube::Result<()> {
        let (stream, tag_name) = split_stream_tag(stream_tag);
        let streams: Api<ImageStream> = Api::namespaced(self.ctx.client.clone(), namespace);
        let mut is = streams.get(stream).await?;
        let from = Some(slipway_crds::common::ImageReference::docker_image(
            image.to_string(),
        ));
        match is.spec.tags.iter_mut().find(|t| t.name == tag_name) {
            Some(existing) if existing.from == from => return Ok(()),
            Some(existing) => existing.from = from,
            None => is.spec.tags.push(TagReference {
                name: tag_name.to_string(),
                from,
                ..Default::default()
            }),
        }
        streams.replace(stream, &post_params(), &is).await.map(|_| ())
    }
}

/// The annotation of a version's ReplicaSet that holds the outcome of its hook at `point`.
fn hook_key(point: HookPoint) -> String {
    format!("{}{}", labels::HOOK_OUTCOME_PREFIX, point.as_str())
}
