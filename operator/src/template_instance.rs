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
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::Scope;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use slipway_crds::common::{Condition, ObjectReference, condition_status, new_condition, set_condition};
use slipway_crds::process::{ProcessOptions, process};
use slipway_crds::requester::PROOF_ANNOTATION;
use slipway_crds::template::{
    TemplateFields, TemplateInstance, TemplateInstanceObject, TemplateInstanceRequester,
    TemplateInstanceStatus,
};
use slipway_crds::{FIELD_MANAGER, Template};

use crate::dynamic::{self, Refused, Resolver, api_message};
use crate::{Context, Error, requester};

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

async fn instantiate(
    instance: &TemplateInstance,
    ctx: &Context,
    as_requester: &Client,
    requester: &TemplateInstanceRequester,
    status: TemplateInstanceStatus,
) -> Result<Action, Error> {
    let namespace = instance.namespace().unwrap_or_default();
    // Observe, as the requester: they must be able to read what they instantiate.
    let observed = match observe(instance, as_requester, &namespace).await? {
        Ok(observed) => observed,
        Err(Failure { reason, message }) => {
            fail(instance, ctx, status, reason, &message).await?;
            return Ok(Action::await_change());
        }
    };
    // Decide.
    let objects = match plan(instance, &observed.fields, &observed.values) {
        Ok(objects) => objects,
        Err(message) => {
            fail(instance, ctx, status, "ProcessingFailed", &message).await?;
            return Ok(Action::await_change());
        }
    };
    // Act: everything must pass a dry run as the requester before anything is created, so a
    // missing permission creates nothing.
    let mut prepared = Vec::with_capacity(objects.len());
    // An API server that cannot be reached or is overloaded is retried (the error policy's
    // backoff) rather than failing the instance: applying again is idempotent.
    for object in objects {
        match prepare(instance, &ctx.resolver, as_requester, &namespace, object).await {
            Ok(p) => prepared.push(p),
            Err(refused) => {
                let message = refused.permanent()?;
                fail(instance, ctx, status, "CreateFailed", &message).await?;
                return Ok(Action::await_change());
            }
        }
    }
    for dry_run in [true, false] {
        for p in &prepared {
            if let Err(refused) = apply(p, dry_run).await {
                let message = refused.permanent()?;
                let reason = if dry_run { "Forbidden" } else { "CreateFailed" };
                let message = if dry_run {
                    message
                } else {
                    format!("{message} (as {})", requester.username)
                };
                fail(instance, ctx, status, reason, &message).await?;
                return Ok(Action::await_change());
            }
        }
    }
    let mut status = status;
    status.objects = prepared
        .iter()
        .map(|p| TemplateInstanceObject {
            ref_: p.reference.clone(),
        })
        .collect();
    set(
        &mut status.conditions,
        instance,
        INSTANTIATE_FAILURE,
        condition_status::FALSE,
        "Created",
        "",
    );
    set(
        &mut status.conditions,
        instance,
        READY,
        condition_status::FALSE,
        "Pending",
        &format!("created {} objects; waiting for them to be ready", prepared.len()),
    );
    write_status(instance, ctx, &status).await?;
    publish(
        ctx,
        instance,
        EventType::Normal,
        "Instantiated",
        &format!("created {} objects as {}", prepared.len(), requester.username),
    )
    .await;
    Ok(Action::requeue(READINESS_INTERVAL))
}

async fn check_readiness(
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

/// What a reconcile read: the template and the parameter values.
struct Observed {
    fields: TemplateFields,
    values: BTreeMap<String, String>,
}

/// Why an instance cannot be made, for the InstantiateFailure condition.
struct Failure {
    reason: &'static str,
    message: String,
}

async fn observe(
    instance: &TemplateInstance,
    as_requester: &Client,
    namespace: &str,
) -> Result<Result<Observed, Failure>, kube::Error> {
    let fields = match (&instance.spec.template, &instance.spec.template_ref) {
        (Some(inline), _) => inline.fields.clone(),
        (None, Some(reference)) => {
            let ns = reference.namespace.as_deref().unwrap_or(namespace);
            let api: Api<Template> = Api::namespaced(as_requester.clone(), ns);
            match api.get_opt(&reference.name).await {
                Ok(Some(template)) => template.spec,
                Ok(None) => {
                    return Ok(Err(Failure {
                        reason: "TemplateNotFound",
                        message: format!("template {} not found in namespace {ns}", reference.name),
                    }));
                }
                Err(e) if dynamic::is_transient(&e) => return Err(e),
                Err(e) => {
                    return Ok(Err(Failure {
                        reason: "TemplateNotReadable",
                        message: format!("reading template {}: {}", reference.name, api_message(&e)),
                    }));
                }
            }
        }
        (None, None) => {
            return Ok(Err(Failure {
                reason: "NoTemplate",
                message: "neither template nor templateRef is set".into(),
            }));
        }
    };
    let secret = match &instance.spec.secret {
        None => None,
        Some(reference) => {
            let api: Api<Secret> = Api::namespaced(as_requester.clone(), namespace);
            match api.get_opt(&reference.name).await {
                Ok(Some(secret)) => Some(secret),
                Ok(None) => {
                    return Ok(Err(Failure {
                        reason: "SecretNotFound",
                        message: format!(
                            "parameter secret {} not found in namespace {namespace}",
                            reference.name
                        ),
                    }));
                }
                Err(e) if dynamic::is_transient(&e) => return Err(e),
                Err(e) => {
                    return Ok(Err(Failure {
                        reason: "SecretNotReadable",
                        message: format!("reading parameter secret {}: {}", reference.name, api_message(&e)),
                    }));
                }
            }
        }
    };
    Ok(Ok(Observed {
        fields,
        values: parameter_values(instance.spec.parameters.as_ref(), secret.as_ref()),
    }))
}

/// The parameter values: those given inline, overridden by the Secret's (OpenShift's way).
pub fn parameter_values(
    inline: Option<&BTreeMap<String, String>>,
    secret: Option<&Secret>,
) -> BTreeMap<String, String> {
    let mut values = inline.cloned().unwrap_or_default();
    if let Some(secret) = secret {
        for (key, value) in secret.data.iter().flatten() {
            values.insert(key.clone(), String::from_utf8_lossy(&value.0).into_owned());
        }
        for (key, value) in secret.string_data.iter().flatten() {
            values.insert(key.clone(), value.clone());
        }
    }
    values
}

/// Decides the objects of an instance: the template processed with the values, each object
/// labelled with the instance's name. Where they go and who owns them is settled per object once
/// discovery says whether it is namespaced.
pub fn plan(
    instance: &TemplateInstance,
    fields: &TemplateFields,
    values: &BTreeMap<String, String>,
) -> Result<Vec<Value>, String> {
    let name = instance.name_any();
    let options = ProcessOptions {
        // A Secret may hold values for several templates, as in OpenShift.
        ignore_unknown_parameters: instance.spec.secret.is_some(),
        translate: true,
        extra_labels: BTreeMap::from([(INSTANCE_LABEL.to_string(), name)]),
    };
    process(fields, values, &options)
        .map(|p| p.objects)
        .map_err(|e| e.to_string())
}

/// One object ready to apply: where it goes and how to refer to it.
struct Prepared {
    api: Api<DynamicObject>,
    object: DynamicObject,
    reference: ObjectReference,
}

async fn prepare(
    instance: &TemplateInstance,
    resolver: &Resolver,
    as_requester: &Client,
    namespace: &str,
    object: Value,
) -> Result<Prepared, Refused> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let mut object: DynamicObject = serde_json::from_value(object)
        .map_err(|e| Refused::new(format!("{kind}: not a Kubernetes object: {e}"), None))?;
    let name = object.name_any();
    let label = format!("{kind}/{name}");
    let (resource, scope) = resolver
        .resolve(as_requester, &api_version, &kind)
        .await
        .map_err(|e| {
            let message = format!(
                "{label}: the cluster does not serve {api_version} {kind}: {}",
                api_message(&e)
            );
            Refused::new(message, Some(e))
        })?;
    let object_namespace = if scope == Scope::Namespaced {
        let ns = object
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_string());
        object.metadata.namespace = Some(ns.clone());
        // Owner references cannot cross namespaces; objects elsewhere are not cleaned up with the instance.
        if ns == namespace {
            object.metadata.owner_references = Some(vec![owner_reference(instance)]);
        }
        Some(ns)
    } else {
        None
    };
    object.metadata.namespace = object_namespace.clone();
    let api = dynamic::api(as_requester, &resource, object_namespace.as_deref());
    object.types = Some(kube::core::TypeMeta {
        api_version: api_version.clone(),
        kind: kind.clone(),
    });
    let reference = ObjectReference {
        api_version: Some(api_version),
        kind: Some(kind),
        namespace: object_namespace,
        name: Some(name),
        uid: None,
    };
    Ok(Prepared {
        api,
        object,
        reference,
    })
}

async fn apply(p: &Prepared, dry_run: bool) -> Result<(), Refused> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let name = p.object.name_any();
    p.api
        .patch(&name, &params, &Patch::Apply(&p.object))
        .await
        .map(|_| ())
        .map_err(|e| {
            let kind = p.reference.kind.as_deref().unwrap_or_default();
            Refused::new(format!("{kind}/{name}: {}", api_message(&e)), Some(e))
        })
}

fn owner_reference(instance: &TemplateInstance) -> OwnerReference {
    instance
        .controller_owner_ref(&())
        .unwrap_or_else(|| OwnerReference {
            api_version: TemplateInstance::api_version(&()).into_owned(),
            kind: TemplateInstance::kind(&()).into_owned(),
            name: instance.name_any(),
            uid: instance.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::ObjectMeta;

    fn dynamic(data: Value, generation: i64) -> DynamicObject {
        DynamicObject {
            types: None,
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            data,
        }
    }

    #[test]
    fn deployments_are_ready_when_the_latest_spec_is_available() {
        let seen = |available| {
            dynamic(
                json!({"spec": {"replicas": 2}, "status": {"observedGeneration": 3, "availableReplicas": available}}),
                3,
            )
        };
        assert_eq!(readiness("Deployment", &seen(2)), Readiness::Ready);
        assert_eq!(
            readiness("Deployment", &seen(1)),
            Readiness::NotReady("1 of 2 replicas available".into())
        );
        let stale = dynamic(
            json!({"spec": {"replicas": 1}, "status": {"observedGeneration": 2, "availableReplicas": 1}}),
            3,
        );
        assert!(matches!(readiness("Deployment", &stale), Readiness::NotReady(_)));
    }

    #[test]
    fn builds_and_jobs_can_fail_and_other_kinds_are_ready_when_they_exist() {
        assert_eq!(
            readiness("Build", &dynamic(json!({"status": {"phase": "Complete"}}), 1)),
            Readiness::Ready
        );
        assert_eq!(
            readiness("Build", &dynamic(json!({"status": {"phase": "Failed"}}), 1)),
            Readiness::Failed("the build ended Failed".into())
        );
        let failed_job = dynamic(
            json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
            1,
        );
        assert_eq!(
            readiness("Job", &failed_job),
            Readiness::Failed("the job failed".into())
        );
        let dc = dynamic(
            json!({"status": {"conditions": [{"type": "Available", "status": "True"}]}}),
            1,
        );
        assert_eq!(readiness("DeploymentConfig", &dc), Readiness::Ready);
        assert_eq!(readiness("ConfigMap", &dynamic(json!({}), 1)), Readiness::Ready);
    }

    #[test]
    fn the_secret_overrides_inline_parameters() {
        let inline = BTreeMap::from([
            ("A".to_string(), "inline".to_string()),
            ("B".to_string(), "inline".to_string()),
        ]);
        let secret: Secret = serde_json::from_value(json!({"data": {"A": "ZnJvbS1zZWNyZXQ="}})).unwrap();
        let values = parameter_values(Some(&inline), Some(&secret));
        assert_eq!(values["A"], "from-secret");
        assert_eq!(values["B"], "inline");
    }

    #[test]
    fn plan_labels_every_object_with_the_instance() {
        let instance: TemplateInstance = serde_json::from_value(json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "TemplateInstance",
            "metadata": {"name": "mine", "namespace": "team"},
            "spec": {"templateRef": {"name": "t"}}
        }))
        .unwrap();
        let fields: TemplateFields = serde_json::from_value(json!({
            "parameters": [{"name": "N", "required": true}],
            "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "${N}"}}]
        }))
        .unwrap();
        let objects = plan(&instance, &fields, &BTreeMap::from([("N".into(), "cm".into())])).unwrap();
        assert_eq!(objects[0]["metadata"]["name"], "cm");
        assert_eq!(objects[0]["metadata"]["labels"][INSTANCE_LABEL], "mine");
        let err = plan(&instance, &fields, &BTreeMap::new()).unwrap_err();
        assert!(err.contains('N'), "{err}");
    }
}
