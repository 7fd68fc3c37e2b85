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

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use slipway_crds::process::parse_template;
use slipway_crds::template::TemplateFields;
use slipway_crds::{Project, ProjectRequest};

use crate::Context;

mod objects;
mod request;
mod status;
#[cfg(test)]
mod tests;

pub use objects::{annotate_namespace, label_namespace, plan_project, project_role_name, projects_of};
use request::reconcile_request;
pub use status::project_status;
use status::reconcile_project;

/// The Project's finalizer: the namespace goes before the Project does.
pub const FINALIZER: &str = "slipway.dev/project";
/// On a project's namespace: the project's name.
pub const PROJECT_LABEL: &str = "slipway.dev/project";
/// On a project's namespace: the uid of the request that made it, so a retry knows its own work.
pub const REQUEST_UID_ANNOTATION: &str = "slipway.dev/project-request-uid";
/// The ClusterRoles the chart defines for the service accounts of every project.
pub const BUILDER_CLUSTER_ROLE: &str = "slipway-builder";
pub const DEPLOYER_CLUSTER_ROLE: &str = "slipway-deployer";
/// OpenShift's role of pulling a project's images (the chart's `rbac-users.yaml`).
pub const IMAGE_PULLER_CLUSTER_ROLE: &str = "system:image-puller";

/// The default project template, replaced by `Settings::template`.
const DEFAULT_TEMPLATE: &str = include_str!("../../../charts/slipway/files/project-template.yaml");

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
