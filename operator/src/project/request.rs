//! ProjectRequest: observe (the requester, an existing namespace, the user's projects) → decide
//! ([`super::plan_project`]) → act (apply each object as the operator; on a refusal remove what was
//! made) → the request's status.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::Scope;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use slipway_crds::common::{condition_status, new_condition, set_condition};
use slipway_crds::project::{ProjectRequestPhase, ProjectRequestStatus, annotations};
use slipway_crds::requester::PROOF_ANNOTATION;
use slipway_crds::{FIELD_MANAGER, Project, ProjectRequest};

use crate::dynamic::{self, Refused, api_message};
use crate::{Context, Error};

use super::*;

pub(super) async fn reconcile_request(
    request: Arc<ProjectRequest>,
    state: Arc<State>,
) -> Result<Action, Error> {
    let _timer = state.ctx.metrics.reconcile("project-request", request.as_ref());
    let status = request.status.clone().unwrap_or_default();
    if status.phase != ProjectRequestPhase::Pending {
        return Ok(Action::await_change());
    }
    let ctx = &state.ctx;
    let (phase, reason, message) = match admit(&request, &state).await? {
        Err((reason, message)) => (ProjectRequestPhase::Failed, reason, message),
        Ok(requester) => match planned_objects(&request, &requester, &state.settings) {
            Err(message) => (ProjectRequestPhase::Failed, "BadProjectTemplate", message),
            Ok(objects) => create(&request, ctx, &requester, &objects).await?,
        },
    };
    finish_request(&request, ctx, phase, reason, &message).await
}

/// A refusal of a request: its reason and message.
type Refusal = (&'static str, String);

/// Observe: the requester (stamped by the admission webhook), and whether the name is free and
/// the requester below their limit of projects.
async fn admit(request: &ProjectRequest, state: &State) -> Result<Result<String, Refusal>, Error> {
    let name = request.name_any();
    let uid = request.uid().unwrap_or_default();
    let Some(requester) = request
        .annotations()
        .get(annotations::REQUESTER)
        .cloned()
        .filter(|r| !r.is_empty())
    else {
        let message = "no requester is recorded (annotation slipway.dev/requester); Slipway's admission webhook stamps it";
        return Ok(Err(("NoRequester", message.into())));
    };
    // The stamp counts only with the admission webhook's proof: without it, anyone who may create
    // a ProjectRequest could name someone else as its admin (and use up their projects).
    let keys = state.ctx.requester_keys.load()?;
    let proof = request.annotations().get(PROOF_ANNOTATION).map(String::as_str);
    if let Err(message) = crate::requester::verify_project_request(&keys, &name, &requester, proof) {
        return Ok(Err(("RequesterUnverified", message)));
    }
    let namespaces: Api<Namespace> = Api::all(state.ctx.client.clone());
    // A namespace made by an earlier attempt of this request is ours: applying again is idempotent.
    if let Some(existing) = namespaces.get_opt(&name).await?
        && existing.annotations().get(REQUEST_UID_ANNOTATION) != Some(&uid)
    {
        let message = format!("namespace {name} already exists; choose another project name");
        return Ok(Err(("AlreadyExists", message)));
    }
    if let Some(limit) = state.settings.max_projects_per_user {
        let project_namespaces = namespaces
            .list(&ListParams::default().labels(PROJECT_LABEL))
            .await?
            .items;
        let owned = projects_of(&project_namespaces, &requester, &name);
        if owned >= limit {
            let message = format!("{requester} already has {owned} projects, the most one user may request");
            return Ok(Err(("ProjectLimitReached", message)));
        }
    }
    Ok(Ok(requester))
}

/// Decide: the project's objects from the template, with the namespace's extra annotations and
/// labels.
fn planned_objects(
    request: &ProjectRequest,
    requester: &str,
    settings: &Settings,
) -> Result<Vec<Value>, String> {
    settings
        .template()
        .and_then(|template| plan_project(request, requester, &template))
        .map(|objects| annotate_namespace(objects, &settings.namespace_annotations))
        .map(|objects| label_namespace(objects, &settings.namespace_labels))
}

/// Act: applies the objects; on a refusal removes what was made. An API server that cannot be
/// reached or is overloaded is retried instead (the error policy's backoff): applying again is
/// idempotent, and one lost connection must not fail a user's request.
async fn create(
    request: &ProjectRequest,
    ctx: &Context,
    requester: &str,
    objects: &[Value],
) -> Result<(ProjectRequestPhase, &'static str, String), Error> {
    let name = request.name_any();
    for object in objects {
        if let Err(refused) = apply(ctx, object).await {
            let message = refused.permanent().inspect_err(|error| {
                tracing::warn!(project = %name, %error, "applying the project's objects; retrying");
            })?;
            let uid = request.uid().unwrap_or_default();
            let message = match remove_project(ctx, &name, &uid).await {
                Ok(()) => format!("{message}; what was made has been removed"),
                Err(e) => format!("{message}; removing what was made failed too: {e}"),
            };
            return Ok((ProjectRequestPhase::Failed, "CreateFailed", message));
        }
    }
    // The request lives as long as its project.
    let projects: Api<Project> = Api::all(ctx.client.clone());
    if let Some(project) = projects.get_opt(&name).await? {
        let owner = project.controller_owner_ref(&()).map(|mut r| {
            r.controller = Some(false);
            r
        });
        let patch = json!({"metadata": {"ownerReferences": owner.into_iter().collect::<Vec<_>>()}});
        Api::<ProjectRequest>::all(ctx.client.clone())
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    let message = format!("project {name} is ready for {requester}");
    Ok((ProjectRequestPhase::Active, "Created", message))
}

pub(super) async fn remove_project_role(ctx: &Context, name: &str) -> Result<(), kube::Error> {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    delete_if_present(
        &Api::<ClusterRoleBinding>::all(ctx.client.clone()),
        &project_role_name(name),
    )
    .await?;
    delete_if_present(
        &Api::<ClusterRole>::all(ctx.client.clone()),
        &project_role_name(name),
    )
    .await
}

/// Applies one object of the project.
async fn apply(ctx: &Context, value: &Value) -> Result<(), Refused> {
    let kind = value["kind"].as_str().unwrap_or_default();
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    let label = format!("{kind}/{name}");
    let api_version = value["apiVersion"].as_str().unwrap_or_default();
    let (resource, scope) = ctx
        .resolver
        .resolve(&ctx.client, api_version, kind)
        .await
        .map_err(|e| {
            let message = format!("{label}: {api_version} {kind} is not served: {}", api_message(&e));
            Refused::new(message, Some(e))
        })?;
    let mut object: DynamicObject =
        serde_json::from_value(value.clone()).map_err(|e| Refused::new(format!("{label}: {e}"), None))?;
    if scope != Scope::Namespaced {
        object.metadata.namespace = None;
    }
    dynamic::api(&ctx.client, &resource, object.metadata.namespace.as_deref())
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map(|_| ())
        .map_err(|e| Refused::new(format!("{label}: {}", api_message(&e)), Some(e)))
}

/// Removes a half-made project: the Project (its finalizer removed) and the namespace, which takes
/// everything inside with it. Only a namespace this request made is touched.
async fn remove_project(ctx: &Context, name: &str, request_uid: &str) -> Result<(), kube::Error> {
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    if let Some(ns) = namespaces.get_opt(name).await?
        && ns.annotations().get(REQUEST_UID_ANNOTATION).map(String::as_str) == Some(request_uid)
    {
        namespaces.delete(name, &DeleteParams::background()).await?;
    }
    remove_project_role(ctx, name).await?;
    let projects: Api<Project> = Api::all(ctx.client.clone());
    if projects.get_opt(name).await?.is_some() {
        let patch = json!({"metadata": {"finalizers": null}});
        projects
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        delete_if_present(&projects, name).await?;
    }
    Ok(())
}

/// Deletes an object; one already gone is fine.
pub(super) async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(other) => Err(other),
    }
}

async fn finish_request(
    request: &ProjectRequest,
    ctx: &Context,
    phase: ProjectRequestPhase,
    reason: &str,
    message: &str,
) -> Result<Action, Error> {
    let mut status = request.status.clone().unwrap_or_default();
    status.phase = phase;
    status.message = Some(message.to_string());
    let ready = if phase == ProjectRequestPhase::Active {
        condition_status::TRUE
    } else {
        condition_status::FALSE
    };
    set_condition(
        &mut status.conditions,
        new_condition("Ready", ready, reason, message, request.metadata.generation),
    );
    write_request_status(ctx, &request.name_any(), &status).await?;
    let type_ = if phase == ProjectRequestPhase::Failed {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.publish(&request.object_ref(&()), type_, "Provision", reason, message)
        .await;
    Ok(Action::await_change())
}

async fn write_request_status(ctx: &Context, name: &str, status: &ProjectRequestStatus) -> Result<(), Error> {
    let patch = json!({"apiVersion": slipway_crds::API_VERSION, "kind": "ProjectRequest", "status": status});
    Api::<ProjectRequest>::all(ctx.client.clone())
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}
