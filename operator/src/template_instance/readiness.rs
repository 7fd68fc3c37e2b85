//! Readiness: whether the objects an instance made are ready, by kind.

use std::time::Duration;

use kube::Client;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use slipway_crds::common::{ObjectReference, condition_status};
use slipway_crds::template::{TemplateInstance, TemplateInstanceStatus};

use crate::dynamic::{self, Resolver};
use crate::{Context, Error};

use super::*;

pub(super) async fn check_readiness(
    instance: &TemplateInstance,
    ctx: &Context,
    as_requester: &Client,
    mut status: TemplateInstanceStatus,
) -> Result<Action, Error> {
    let mut waiting = Vec::new();
    for object in &status.objects {
        let r = &object.ref_;
        let label = format!(
            "{}/{}",
            r.kind.as_deref().unwrap_or_default(),
            r.name.as_deref().unwrap_or_default()
        );
        let found = get_object(&ctx.resolver, as_requester, r).await?;
        match found
            .as_ref()
            .map(|o| readiness(r.kind.as_deref().unwrap_or_default(), o))
        {
            None => waiting.push(format!("{label} does not exist")),
            Some(Readiness::Ready) => {}
            Some(Readiness::NotReady(why)) => waiting.push(format!("{label}: {why}")),
            Some(Readiness::Failed(why)) => {
                let message = format!("{label} failed: {why}");
                set(
                    &mut status.conditions,
                    instance,
                    READY,
                    condition_status::FALSE,
                    "ObjectFailed",
                    &message,
                );
                write_status(instance, ctx, &status).await?;
                return Ok(Action::requeue(READINESS_INTERVAL * 5));
            }
        }
    }
    if waiting.is_empty() {
        let changed = set(
            &mut status.conditions,
            instance,
            READY,
            condition_status::TRUE,
            "Ready",
            "all objects are ready",
        );
        if changed {
            write_status(instance, ctx, &status).await?;
            publish(ctx, instance, EventType::Normal, "Ready", "all objects are ready").await;
        }
        // Keep an eye on the objects, less often once ready.
        Ok(Action::requeue(Duration::from_secs(60)))
    } else {
        let message = waiting.join("; ");
        if set(
            &mut status.conditions,
            instance,
            READY,
            condition_status::FALSE,
            "Pending",
            &message,
        ) {
            write_status(instance, ctx, &status).await?;
        }
        Ok(Action::requeue(READINESS_INTERVAL))
    }
}

/// Whether one object is ready, by kind.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(String),
    Failed(String),
}

/// Readiness of the kinds that have a notion of it (workloads, builds, jobs); anything else is
/// ready once it exists.
pub fn readiness(kind: &str, object: &DynamicObject) -> Readiness {
    let data = &object.data;
    let generation = object.metadata.generation.unwrap_or(0);
    let observed = data["status"]["observedGeneration"].as_i64().unwrap_or(0);
    let replicas = data["spec"]["replicas"].as_i64().unwrap_or(1);
    let count = |field: &str| data["status"][field].as_i64().unwrap_or(0);
    let condition = |type_: &str| {
        data["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
            .and_then(|c| c["status"].as_str())
            .map(str::to_string)
    };
    match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let available = if kind == "StatefulSet" {
                count("readyReplicas")
            } else {
                count("availableReplicas")
            };
            if observed < generation {
                Readiness::NotReady("its controller has not seen the latest spec".into())
            } else if available < replicas {
                Readiness::NotReady(format!("{available} of {replicas} replicas available"))
            } else {
                Readiness::Ready
            }
        }
        "DeploymentConfig" => match condition("Available").as_deref() {
            Some("True") => Readiness::Ready,
            _ => Readiness::NotReady("not available yet".into()),
        },
        "Build" => match data["status"]["phase"].as_str() {
            Some("Complete") => Readiness::Ready,
            Some(phase @ ("Failed" | "Error" | "Cancelled")) => {
                Readiness::Failed(format!("the build ended {phase}"))
            }
            phase => Readiness::NotReady(format!("the build is {}", phase.unwrap_or("New"))),
        },
        "Job" => {
            if condition("Complete").as_deref() == Some("True") {
                Readiness::Ready
            } else if condition("Failed").as_deref() == Some("True") {
                Readiness::Failed("the job failed".into())
            } else {
                Readiness::NotReady("the job has not completed".into())
            }
        }
        _ => Readiness::Ready,
    }
}

async fn get_object(
    resolver: &Resolver,
    client: &Client,
    r: &ObjectReference,
) -> Result<Option<DynamicObject>, Error> {
    let kind = r.kind.as_deref().unwrap_or_default();
    let (resource, _) = resolver
        .resolve(client, r.api_version.as_deref().unwrap_or_default(), kind)
        .await?;
    let api = dynamic::api(client, &resource, r.namespace.as_deref());
    Ok(api.get_opt(r.name.as_deref().unwrap_or_default()).await?)
}
