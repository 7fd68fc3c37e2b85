//! The TemplateInstance controller: processes a template once and creates its objects **as the
//! user who asked** (impersonation), so a TemplateInstance never lends the operator's rights; then
//! reports whether the objects are ready.
//!
//! observe (the instance, its template and parameter Secret, read as the requester) → decide
//! ([`plan`] and [`readiness`], pure) → act (a dry run of every object as the requester, then the
//! real server-side apply; status through the status subresource).
//!
//! Known limit: generated parameter values are drawn when the objects are created. If the operator
//! dies between creating the objects and recording them in status, the retry draws new values and
//! re-applies the objects with them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use slipway_crds::FIELD_MANAGER;
use slipway_crds::common::{Condition, condition_status, new_condition, set_condition};
use slipway_crds::requester::PROOF_ANNOTATION;
use slipway_crds::template::{TemplateInstance, TemplateInstanceRequester, TemplateInstanceStatus};

use crate::{Context, Error, requester};

mod instantiate;
mod readiness;
#[cfg(test)]
mod tests;

use instantiate::instantiate;
pub use instantiate::{parameter_values, plan};
use readiness::check_readiness;
pub use readiness::{Readiness, readiness};

/// The label every object made by a TemplateInstance carries: the instance's name.
pub const INSTANCE_LABEL: &str = "slipway.dev/template-instance";
/// Condition types, as in OpenShift.
pub const READY: &str = "Ready";
pub const INSTANTIATE_FAILURE: &str = "InstantiateFailure";

/// How often readiness is checked while objects are not ready yet.
const READINESS_INTERVAL: Duration = Duration::from_secs(2);

/// Runs the controller until the stream ends (on shutdown). `namespace` limits it to one
/// namespace (tests run one controller per namespace); all namespaces otherwise.
pub async fn run(ctx: Context, namespace: Option<&str>) {
    let api: Api<TemplateInstance> = match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    crate::cache::controller(&ctx, "template", api, ctx.watcher_config())
        .run(
            crate::error::tracked("template", reconcile),
            crate::error::policy("template"),
            Arc::new(ctx),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "template instance reconcile");
            }
        })
        .await;
}

async fn reconcile(instance: Arc<TemplateInstance>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile("template", instance.as_ref());
    let status = instance.status.clone().unwrap_or_default();
    if has_condition(&status, INSTANTIATE_FAILURE, condition_status::TRUE) {
        // The spec cannot change, so a failed instance stays failed.
        return Ok(Action::await_change());
    }
    let Some(requester) = instance.spec.requester.clone().filter(|r| !r.username.is_empty()) else {
        let message = "no requester is recorded on this TemplateInstance (spec.requester), so there is no user to \
                       create its objects as; Slipway's admission webhook stamps it when the instance is created";
        fail(&instance, &ctx, status, "NoRequester", message).await?;
        return Ok(Action::await_change());
    };
    if let Some((reason, message)) = unverified(&instance, &ctx, &requester)? {
        fail(&instance, &ctx, status, reason, &message).await?;
        return Ok(Action::await_change());
    }
    let as_requester = ctx.impersonating(&requester.username, &requester.groups)?;

    if status.objects.is_empty() {
        instantiate(&instance, &ctx, &as_requester, &requester, status).await
    } else {
        check_readiness(&instance, &ctx, &as_requester, status).await
    }
}

/// Why the operator will not act as the instance's requester: a stamp without a valid proof
/// (`RequesterUnverified`), or an identity it never acts as (`RequesterRefused`).
fn unverified(
    instance: &TemplateInstance,
    ctx: &Context,
    requester: &TemplateInstanceRequester,
) -> Result<Option<(&'static str, String)>, Error> {
    let keys = ctx.requester_keys.load()?;
    let proof = instance.annotations().get(PROOF_ANNOTATION).map(String::as_str);
    let namespace = instance.namespace().unwrap_or_default();
    if let Err(message) = requester::verify_stamp(&keys, &namespace, &instance.name_any(), requester, proof) {
        return Ok(Some(("RequesterUnverified", message)));
    }
    let refused = requester::refused_identity(&requester.username, &requester.groups, &ctx.own_namespace);
    Ok(refused.map(|message| ("RequesterRefused", message)))
}

fn has_condition(status: &TemplateInstanceStatus, type_: &str, value: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == value)
}

/// Sets a condition; returns whether it changed.
fn set(
    conditions: &mut Vec<Condition>,
    instance: &TemplateInstance,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    set_condition(
        conditions,
        new_condition(type_, status, reason, message, instance.metadata.generation),
    )
}

async fn fail(
    instance: &TemplateInstance,
    ctx: &Context,
    mut status: TemplateInstanceStatus,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    set(
        &mut status.conditions,
        instance,
        INSTANTIATE_FAILURE,
        condition_status::TRUE,
        reason,
        message,
    );
    set(
        &mut status.conditions,
        instance,
        READY,
        condition_status::FALSE,
        reason,
        message,
    );
    write_status(instance, ctx, &status).await?;
    publish(ctx, instance, EventType::Warning, "InstantiateFailed", message).await;
    Ok(())
}

async fn write_status(
    instance: &TemplateInstance,
    ctx: &Context,
    status: &TemplateInstanceStatus,
) -> Result<(), Error> {
    let api: Api<TemplateInstance> =
        Api::namespaced(ctx.client.clone(), &instance.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": slipway_crds::API_VERSION,
        "kind": "TemplateInstance",
        "status": status,
    });
    api.patch_status(
        &instance.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

async fn publish(ctx: &Context, instance: &TemplateInstance, type_: EventType, reason: &str, note: &str) {
    ctx.publish(&instance.object_ref(&()), type_, "Instantiate", reason, note)
        .await;
}
