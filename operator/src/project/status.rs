//! Project: mirrors its namespace in status; its finalizer deletes the namespace first.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use slipway_crds::project::{ProjectPhase, ProjectStatus, annotations};
use slipway_crds::{FIELD_MANAGER, Project};

use crate::{Context, Error};

use super::request::{delete_if_present, remove_project_role};
use super::*;

pub(super) async fn reconcile_project(project: Arc<Project>, state: Arc<State>) -> Result<Action, Error> {
    let _timer = state.ctx.metrics.reconcile("project", project.as_ref());
    let ctx = &state.ctx;
    let name = project.name_any();
    let projects: Api<Project> = Api::all(ctx.client.clone());
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let namespace = namespaces.get_opt(&name).await?;

    if project.metadata.deletion_timestamp.is_some() {
        if !project.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        // Quiet: write only a change (a write would also move the resourceVersion that the
        // finalizer's removal below is conditioned on).
        let status = project_status(&project, namespace.as_ref(), true);
        if project.status.as_ref() != Some(&status) {
            write_project_status(ctx, &project, status).await?;
            return Ok(Action::requeue(Duration::from_millis(200)));
        }
        match namespace {
            Some(ns) => {
                if ns.metadata.deletion_timestamp.is_none() {
                    delete_if_present(&namespaces, &name).await?;
                    ctx.publish(
                        &project.object_ref(&()),
                        EventType::Normal,
                        "Deprovision",
                        "Terminating",
                        "deleting the project's namespace",
                    )
                    .await;
                }
                // Terminating until the namespace is gone.
                Ok(Action::requeue(Duration::from_secs(1)))
            }
            None => {
                remove_project_role(ctx, &name).await?;
                let remaining: Vec<&String> =
                    project.finalizers().iter().filter(|f| *f != FINALIZER).collect();
                let patch = json!({"metadata": {"finalizers": remaining, "resourceVersion": project.resource_version()}});
                projects
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                Ok(Action::await_change())
            }
        }
    } else if namespace.is_none() {
        // The Project mirrors its namespace: without it there is no project. (A request being
        // made creates the namespace first, so this is a namespace deleted behind our back.)
        if project
            .meta()
            .creation_timestamp
            .as_ref()
            .is_some_and(|t| k8s_openapi::jiff::Timestamp::now().duration_since(t.0).as_secs() > 30)
        {
            delete_if_present(&projects, &name).await?;
        }
        Ok(Action::requeue(Duration::from_secs(5)))
    } else {
        let status = project_status(&project, namespace.as_ref(), false);
        if project.status.as_ref() != Some(&status) {
            write_project_status(ctx, &project, status).await?;
        }
        Ok(Action::await_change())
    }
}

/// The status a Project shows for its namespace.
pub fn project_status(project: &Project, namespace: Option<&Namespace>, deleting: bool) -> ProjectStatus {
    let mut status = project.status.clone().unwrap_or_default();
    let terminating = deleting
        || namespace.is_some_and(|ns| {
            ns.metadata.deletion_timestamp.is_some()
                || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
        });
    status.phase = if terminating {
        ProjectPhase::Terminating
    } else {
        ProjectPhase::Active
    };
    if let Some(ns) = namespace {
        status.display_name = ns.annotations().get(annotations::DISPLAY_NAME).cloned();
        status.requester = ns.annotations().get(annotations::REQUESTER).cloned();
    }
    status
}

async fn write_project_status(ctx: &Context, project: &Project, status: ProjectStatus) -> Result<(), Error> {
    let patch = json!({"apiVersion": slipway_crds::API_VERSION, "kind": "Project", "status": status});
    Api::<Project>::all(ctx.client.clone())
        .patch_status(
            &project.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}
