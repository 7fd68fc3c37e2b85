//! Instantiating: observe (the template, the parameters' Secret, as the requester) → decide
//! ([`plan`]) → act (every object dry-run as the requester, then created).

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::Scope;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;
use slipway_crds::common::{ObjectReference, condition_status};
use slipway_crds::process::{ProcessOptions, process};
use slipway_crds::template::{
    TemplateFields, TemplateInstance, TemplateInstanceObject, TemplateInstanceRequester,
    TemplateInstanceStatus,
};
use slipway_crds::{FIELD_MANAGER, Template};

use crate::dynamic::{self, Refused, Resolver, api_message};
use crate::{Context, Error};

use super::*;

pub(super) async fn instantiate(
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
    // Act.
    let prepared = match create_all(instance, ctx, as_requester, &namespace, objects, requester).await? {
        Ok(prepared) => prepared,
        Err(Failure { reason, message }) => {
            fail(instance, ctx, status, reason, &message).await?;
            return Ok(Action::await_change());
        }
    };
    record_created(instance, ctx, status, &prepared, requester).await?;
    Ok(Action::requeue(READINESS_INTERVAL))
}

/// Creates the objects as the requester. Everything must pass a dry run as the requester before
/// anything is created, so a missing permission creates nothing. An API server that cannot be
/// reached or is overloaded is retried (the error policy's backoff) rather than failing the
/// instance: applying again is idempotent.
async fn create_all(
    instance: &TemplateInstance,
    ctx: &Context,
    as_requester: &Client,
    namespace: &str,
    objects: Vec<Value>,
    requester: &TemplateInstanceRequester,
) -> Result<Result<Vec<Prepared>, Failure>, Error> {
    let mut prepared = Vec::with_capacity(objects.len());
    for mut object in objects {
        // What the API server would drop from a create, server-side apply refuses: dropped
        // here, and said.
        let dropped = slipway_crds::process::prune_unknown_fields(&mut object);
        if !dropped.is_empty() {
            let note = format!(
                "{}/{}: dropped fields its kind does not have (as the API server does): {}",
                object["kind"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or_default(),
                dropped.join(", ")
            );
            publish(ctx, instance, EventType::Warning, "UnknownFieldsDropped", &note).await;
        }
        match prepare(instance, &ctx.resolver, as_requester, namespace, object).await {
            Ok(p) => prepared.push(p),
            Err(refused) => {
                let message = refused.permanent()?;
                return Ok(Err(Failure {
                    reason: "CreateFailed",
                    message,
                }));
            }
        }
    }
    for dry_run in [true, false] {
        for p in &prepared {
            if let Err(refused) = apply(p, dry_run).await {
                let message = refused.permanent()?;
                let failure = if dry_run {
                    Failure {
                        reason: "Forbidden",
                        message,
                    }
                } else {
                    Failure {
                        reason: "CreateFailed",
                        message: format!("{message} (as {})", requester.username),
                    }
                };
                return Ok(Err(failure));
            }
        }
    }
    Ok(Ok(prepared))
}

/// Records the objects made in status (Ready pending) and tells of them in an Event.
async fn record_created(
    instance: &TemplateInstance,
    ctx: &Context,
    mut status: TemplateInstanceStatus,
    prepared: &[Prepared],
    requester: &TemplateInstanceRequester,
) -> Result<(), Error> {
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
    let note = format!("created {} objects as {}", prepared.len(), requester.username);
    publish(ctx, instance, EventType::Normal, "Instantiated", &note).await;
    Ok(())
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
