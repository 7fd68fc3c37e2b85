//! The project controllers.
//!
//! ProjectRequest: a user asks for a project; the operator makes the namespace (with the display
//! name, description and requester), the Project that mirrors it, the requester's admin binding,
//! the `builder` and `deployer` service accounts with their bindings, and the objects of the project
//! template (by default a quota, a limit range and a network policy that isolates the project).
//! A failure half-way removes what was made. The requester comes from the `slipway.dev/requester`
//! annotation, which only Slipway's admission webhook may set.
//!
//! Project: mirrors its namespace in status (Active or Terminating, display name, requester); its
//! finalizer deletes the namespace when the Project is deleted and keeps the Project, Terminating,
//! until the namespace is gone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::discovery::Scope;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use slipway_crds::common::{condition_status, new_condition, set_condition};
use slipway_crds::process::{ProcessOptions, parse_template, process};
use slipway_crds::project::{
    ProjectPhase, ProjectRequestPhase, ProjectRequestStatus, ProjectStatus, annotations,
};
use slipway_crds::template::TemplateFields;
use slipway_crds::{FIELD_MANAGER, Project, ProjectRequest};

use crate::dynamic::{self, Refused, api_message};
use crate::{Context, Error};

/// The Project's finalizer: the namespace goes before the Project does.
pub const FINALIZER: &str = "slipway.dev/project";
/// On a project's namespace: the project's name.
pub const PROJECT_LABEL: &str = "slipway.dev/project";
/// On a project's namespace: the uid of the request that made it, so a retry knows its own work.
pub const REQUEST_UID_ANNOTATION: &str = "slipway.dev/project-request-uid";
/// The ClusterRoles the chart defines for the service accounts of every project.
pub const BUILDER_CLUSTER_ROLE: &str = "slipway-builder";
pub const DEPLOYER_CLUSTER_ROLE: &str = "slipway-deployer";

/// The default project template, replaced by `Settings::template`.
const DEFAULT_TEMPLATE: &str = include_str!("../../charts/slipway/files/project-template.yaml");

/// How projects are made.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The project template; the built-in default when None.
    pub template: Option<TemplateFields>,
    /// How many projects one user may request; unlimited when None.
    pub max_projects_per_user: Option<usize>,
    /// Only reconcile objects with these labels (tests run one controller each).
    pub label_selector: Option<String>,
    /// Annotations every new project's namespace gets besides its own, such as a default node
    /// selector (`scheduler.alpha.kubernetes.io/node-selector`, OpenShift's defaultNodeSelector).
    pub namespace_annotations: BTreeMap<String, String>,
    /// Labels every new project's namespace gets, such as its Pod Security levels
    /// ([`pod_security_labels`]); the namespace's own (`slipway.dev/project`) win.
    pub namespace_labels: BTreeMap<String, String>,
}

/// The Pod Security Admission levels.
pub const POD_SECURITY_LEVELS: [&str; 3] = ["privileged", "baseline", "restricted"];

/// The namespace labels of Pod Security Admission: `enforce` refuses pods above it; `warn` and
/// `audit` tell of pods above them (the stricter of the two levels given, usually `restricted`).
pub fn pod_security_labels(enforce: &str, warn: &str) -> Result<BTreeMap<String, String>, String> {
    for level in [enforce, warn] {
        if !POD_SECURITY_LEVELS.contains(&level) {
            return Err(format!(
                "pod security level {level:?} is none of privileged, baseline, restricted"
            ));
        }
    }
    Ok(BTreeMap::from([
        ("pod-security.kubernetes.io/enforce".into(), enforce.into()),
        ("pod-security.kubernetes.io/warn".into(), warn.into()),
        ("pod-security.kubernetes.io/audit".into(), warn.into()),
    ]))
}

impl Settings {
    fn template(&self) -> Result<TemplateFields, String> {
        match &self.template {
            Some(t) => Ok(t.clone()),
            None => parse_template(DEFAULT_TEMPLATE)
                .map(|d| d.fields)
                .map_err(|e| format!("the default project template: {e}")),
        }
    }

    fn watcher_config(&self) -> watcher::Config {
        match &self.label_selector {
            Some(selector) => watcher::Config::default().labels(selector),
            None => watcher::Config::default(),
        }
    }
}

struct State {
    ctx: Context,
    settings: Settings,
}

/// Runs the ProjectRequest and Project controllers until shutdown.
pub async fn run(ctx: Context, settings: Settings) {
    let state = Arc::new(State {
        ctx: ctx.clone(),
        settings: settings.clone(),
    });
    let requests = crate::cache::controller(
        &ctx,
        "project-request",
        Api::<ProjectRequest>::all(ctx.client.clone()),
        settings.watcher_config(),
    )
    .run(
        crate::error::tracked("project-request", reconcile_request),
        crate::error::policy("project-request"),
        state.clone(),
    )
    .for_each(|_| async {});
    // Every Project is reconciled after a start, reading its namespace live: the namespaces'
    // first list triggers nothing, and Projects are listed after it (`cache::quiet_first_list`).
    let (namespace_changes, namespaces_listed) = crate::cache::quiet_first_list(crate::cache::watch(
        Api::<PartialObjectMeta<Namespace>>::all(ctx.client.clone()),
        watcher::Config::default(),
    ));
    let projects = crate::cache::controller_after(
        &ctx,
        "project",
        Api::<Project>::all(ctx.client.clone()),
        settings.watcher_config(),
        namespaces_listed,
    )
    .owns_stream(namespace_changes)
    .run(
        crate::error::tracked("project", reconcile_project),
        crate::error::policy("project"),
        state,
    )
    .for_each(|_| async {});
    futures::join!(requests, projects);
}

impl crate::error::Shared for State {
    fn context(&self) -> &Context {
        &self.ctx
    }
}

// --- ProjectRequest ---------------------------------------------------------------------------

async fn reconcile_request(request: Arc<ProjectRequest>, state: Arc<State>) -> Result<Action, Error> {
    let _timer = state.ctx.metrics.reconcile("project-request", request.as_ref());
    let status = request.status.clone().unwrap_or_default();
    if status.phase != ProjectRequestPhase::Pending {
        return Ok(Action::await_change());
    }
    let ctx = &state.ctx;
    let name = request.name_any();
    let uid = request.uid().unwrap_or_default();
    let Some(requester) = request
        .annotations()
        .get(annotations::REQUESTER)
        .cloned()
        .filter(|r| !r.is_empty())
    else {
        let message = "no requester is recorded (annotation slipway.dev/requester); Slipway's admission webhook stamps it";
        return finish_request(&request, ctx, ProjectRequestPhase::Failed, "NoRequester", message).await;
    };

    // Observe.
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    // A namespace made by an earlier attempt of this request is ours: applying again is idempotent.
    if let Some(existing) = namespaces.get_opt(&name).await?
        && existing.annotations().get(REQUEST_UID_ANNOTATION) != Some(&uid)
    {
        let message = format!("namespace {name} already exists; choose another project name");
        return finish_request(
            &request,
            ctx,
            ProjectRequestPhase::Failed,
            "AlreadyExists",
            &message,
        )
        .await;
    }
    if let Some(limit) = state.settings.max_projects_per_user {
        let project_namespaces = namespaces
            .list(&ListParams::default().labels(PROJECT_LABEL))
            .await?
            .items;
        let owned = projects_of(&project_namespaces, &requester, &name);
        if owned >= limit {
            let message = format!("{requester} already has {owned} projects, the most one user may request");
            return finish_request(
                &request,
                ctx,
                ProjectRequestPhase::Failed,
                "ProjectLimitReached",
                &message,
            )
            .await;
        }
    }

    // Decide.
    let planned = state
        .settings
        .template()
        .and_then(|template| plan_project(&request, &requester, &template))
        .map(|objects| annotate_namespace(objects, &state.settings.namespace_annotations))
        .map(|objects| label_namespace(objects, &state.settings.namespace_labels));
    let objects = match planned {
        Ok(objects) => objects,
        Err(message) => {
            return finish_request(
                &request,
                ctx,
                ProjectRequestPhase::Failed,
                "BadProjectTemplate",
                &message,
            )
            .await;
        }
    };

    // Act; on a refusal remove what was made. An API server that cannot be reached or is
    // overloaded is retried instead (the error policy's backoff): applying again is idempotent,
    // and one lost connection must not fail a user's request.
    for object in &objects {
        if let Err(refused) = apply(ctx, object).await {
            let message = refused.permanent().inspect_err(|error| {
                tracing::warn!(project = %name, %error, "applying the project's objects; retrying");
            })?;
            let cleanup = remove_project(ctx, &name, &uid).await;
            let message = match cleanup {
                Ok(()) => format!("{message}; what was made has been removed"),
                Err(e) => format!("{message}; removing what was made failed too: {e}"),
            };
            return finish_request(
                &request,
                ctx,
                ProjectRequestPhase::Failed,
                "CreateFailed",
                &message,
            )
            .await;
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
    finish_request(
        &request,
        ctx,
        ProjectRequestPhase::Active,
        "Created",
        &format!("project {name} is ready for {requester}"),
    )
    .await
}

/// How many projects `requester` has, not counting `being_made` (a retry of a request must not
/// count the namespace it already made).
pub fn projects_of(project_namespaces: &[Namespace], requester: &str, being_made: &str) -> usize {
    project_namespaces
        .iter()
        .filter(|ns| {
            ns.annotations().get(annotations::REQUESTER).map(String::as_str) == Some(requester)
                && ns.name_any() != being_made
        })
        .count()
}

/// Adds `extra` to the namespace's annotations (the first object), keeping its own where both name
/// the same key.
pub fn annotate_namespace(mut objects: Vec<Value>, extra: &BTreeMap<String, String>) -> Vec<Value> {
    if let Some(annotations) = objects
        .first_mut()
        .and_then(|ns| ns["metadata"]["annotations"].as_object_mut())
    {
        for (k, v) in extra {
            annotations.entry(k.clone()).or_insert_with(|| json!(v));
        }
    }
    objects
}

/// Adds `extra` to the namespace's labels (the first object), keeping its own where both name the
/// same key.
pub fn label_namespace(mut objects: Vec<Value>, extra: &BTreeMap<String, String>) -> Vec<Value> {
    if let Some(labels) = objects
        .first_mut()
        .and_then(|ns| ns["metadata"]["labels"].as_object_mut())
    {
        for (k, v) in extra {
            labels.entry(k.clone()).or_insert_with(|| json!(v));
        }
    }
    objects
}

/// The objects of a new project, in the order they are made (the namespace first).
pub fn plan_project(
    request: &ProjectRequest,
    requester: &str,
    template: &TemplateFields,
) -> Result<Vec<Value>, String> {
    let name = request.name_any();
    let uid = request.uid().unwrap_or_default();
    let display_name = request.spec.display_name.clone().unwrap_or_default();
    let description = request.spec.description.clone().unwrap_or_default();
    let mut ns_annotations = BTreeMap::from([
        (annotations::REQUESTER.to_string(), requester.to_string()),
        (REQUEST_UID_ANNOTATION.to_string(), uid),
    ]);
    if !display_name.is_empty() {
        ns_annotations.insert(annotations::DISPLAY_NAME.into(), display_name.clone());
    }
    if !description.is_empty() {
        ns_annotations.insert(annotations::DESCRIPTION.into(), description.clone());
    }
    let mut objects = vec![
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {PROJECT_LABEL: name}, "annotations": ns_annotations},
        }),
        json!({
            "apiVersion": slipway_crds::API_VERSION, "kind": "Project",
            // The request's labels carry over, so whoever selects requests by label finds the project.
            "metadata": {"name": name, "finalizers": [FINALIZER], "labels": request.labels()},
            "spec": {"finalizers": ["kubernetes"]},
        }),
        role_binding(
            &name,
            "admin",
            "admin",
            json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": requester}),
        ),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": name}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": name}}),
        role_binding(
            &name,
            "slipway-builders",
            BUILDER_CLUSTER_ROLE,
            json!({"kind": "ServiceAccount", "name": "builder", "namespace": name}),
        ),
        role_binding(
            &name,
            "slipway-deployers",
            DEPLOYER_CLUSTER_ROLE,
            json!({"kind": "ServiceAccount", "name": "deployer", "namespace": name}),
        ),
        // The Project and its Namespace are cluster-scoped: the requester may see and delete this
        // one Project, and see this one Namespace, and nothing else at cluster level.
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": project_role_name(&name), "labels": {PROJECT_LABEL: name}},
            "rules": [
                {"apiGroups": [slipway_crds::GROUP], "resources": ["projects"], "resourceNames": [name], "verbs": ["get", "watch", "delete"]},
                {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [name], "verbs": ["get", "watch"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": project_role_name(&name), "labels": {PROJECT_LABEL: name}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": project_role_name(&name)},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": requester}],
        }),
    ];
    let values = BTreeMap::from([
        ("PROJECT_NAME".to_string(), name.clone()),
        ("PROJECT_DISPLAYNAME".to_string(), display_name),
        ("PROJECT_DESCRIPTION".to_string(), description),
        ("PROJECT_ADMIN_USER".to_string(), requester.to_string()),
        ("PROJECT_REQUESTING_USER".to_string(), requester.to_string()),
    ]);
    // A project template may declare only some of these.
    let options = ProcessOptions {
        ignore_unknown_parameters: true,
        ..Default::default()
    };
    let processed = process(template, &values, &options).map_err(|e| format!("the project template: {e}"))?;
    for mut object in processed.objects {
        // Template objects go into the project (kinds that are not namespaced ignore this).
        object["metadata"]["namespace"] = name.clone().into();
        objects.push(object);
    }
    Ok(objects)
}

/// The ClusterRole (and binding) that lets a project's requester see and delete the Project.
pub fn project_role_name(project: &str) -> String {
    format!("slipway-project-{project}")
}

/// Deletes a project's cluster-level role and binding.
async fn remove_project_role(ctx: &Context, name: &str) -> Result<(), kube::Error> {
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

fn role_binding(namespace: &str, name: &str, cluster_role: &str, subject: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [subject],
    })
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
async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
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

// --- Project ----------------------------------------------------------------------------------

async fn reconcile_project(project: Arc<Project>, state: Arc<State>) -> Result<Action, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str) -> ProjectRequest {
        serde_json::from_value(json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest",
            "metadata": {"name": name, "uid": "u-1"},
            "displayName": "Team A", "description": "the first team"
        }))
        .unwrap()
    }

    #[test]
    fn a_project_is_its_namespace_bindings_accounts_and_template_objects() {
        let template = Settings::default().template().unwrap();
        let objects = plan_project(&request("team-a"), "alice", &template).unwrap();
        let names: Vec<String> = objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "Namespace/team-a",
                "Project/team-a",
                "RoleBinding/admin",
                "ServiceAccount/builder",
                "ServiceAccount/deployer",
                "RoleBinding/slipway-builders",
                "RoleBinding/slipway-deployers",
                "ClusterRole/slipway-project-team-a",
                "ClusterRoleBinding/slipway-project-team-a",
                "ResourceQuota/project-quota",
                "LimitRange/project-limits",
                "NetworkPolicy/project-isolation"
            ]
        );
        let ns = &objects[0]["metadata"];
        assert_eq!(ns["annotations"][annotations::REQUESTER], "alice");
        assert_eq!(ns["annotations"][annotations::DISPLAY_NAME], "Team A");
        assert_eq!(ns["annotations"][REQUEST_UID_ANNOTATION], "u-1");
        let extra = BTreeMap::from([
            (
                "scheduler.alpha.kubernetes.io/node-selector".to_string(),
                "pool=apps".to_string(),
            ),
            (annotations::REQUESTER.to_string(), "mallory".to_string()),
        ]);
        let annotated = annotate_namespace(objects.clone(), &extra);
        let ns = &annotated[0]["metadata"]["annotations"];
        assert_eq!(ns["scheduler.alpha.kubernetes.io/node-selector"], "pool=apps");
        assert_eq!(
            ns[annotations::REQUESTER],
            "alice",
            "a configured annotation never replaces the project's own"
        );
        let levels = pod_security_labels("baseline", "restricted").unwrap();
        let labelled = label_namespace(objects.clone(), &levels);
        let labels = &labelled[0]["metadata"]["labels"];
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
        assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
        assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
        assert_eq!(labels[PROJECT_LABEL], "team-a");
        assert!(
            pod_security_labels("strict", "restricted")
                .unwrap_err()
                .contains("\"strict\"")
        );
        assert_eq!(objects[2]["subjects"][0]["name"], "alice");
        assert!(
            objects[9..]
                .iter()
                .all(|o| o["metadata"]["namespace"] == "team-a")
        );
        assert_eq!(objects[7]["rules"][0]["resourceNames"], json!(["team-a"]));
        assert_eq!(objects[8]["subjects"][0]["name"], "alice");
    }

    #[test]
    fn a_users_projects_are_counted_but_not_the_one_being_made() {
        let ns = |name: &str, requester: &str| -> Namespace {
            serde_json::from_value(
                json!({"metadata": {"name": name, "annotations": {"slipway.dev/requester": requester}}}),
            )
            .unwrap()
        };
        let namespaces = [
            ns("a1", "alice"),
            ns("a2", "alice"),
            ns("b1", "bob"),
            ns("a3", "alice"),
        ];
        assert_eq!(projects_of(&namespaces, "alice", "new"), 3);
        assert_eq!(projects_of(&namespaces, "alice", "a3"), 2);
        assert_eq!(projects_of(&namespaces, "carol", "new"), 0);
    }

    #[test]
    fn a_broken_project_template_is_reported() {
        let template: TemplateFields = serde_json::from_value(json!({
            "parameters": [{"name": "P", "required": true}],
            "objects": []
        }))
        .unwrap();
        let err = plan_project(&request("team-b"), "bob", &template).unwrap_err();
        assert!(
            err.starts_with("the project template:") && err.contains('P'),
            "{err}"
        );
    }

    #[test]
    fn a_project_is_terminating_while_its_namespace_is() {
        let project: Project =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {}})).unwrap();
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "p", "annotations": {"slipway.dev/display-name": "P!", "slipway.dev/requester": "carol"}},
            "status": {"phase": "Active"}
        }))
        .unwrap();
        let status = project_status(&project, Some(&ns), false);
        assert_eq!(
            (
                status.phase,
                status.display_name.as_deref(),
                status.requester.as_deref()
            ),
            (ProjectPhase::Active, Some("P!"), Some("carol"))
        );
        assert_eq!(
            project_status(&project, Some(&ns), true).phase,
            ProjectPhase::Terminating
        );
    }
}
