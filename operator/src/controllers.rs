//! The table of the operator's controllers: each one's name, what it watches and how it starts,
//! and the settings they all start from, parsed once from the flags.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::Context;

/// What the controllers start from; each controller's own settings are cut from this one value,
/// so the namespace and the label selector are given in one place.
pub struct Settings {
    /// Watch this namespace only; all when None.
    pub namespace: Option<String>,
    /// The Build controller's settings.
    pub build: crate::build::controller::Settings,
    /// The ImageStream and image trigger controllers' settings.
    pub image: crate::image::Settings,
    /// The project controllers' settings.
    pub project: crate::project::Settings,
    /// The integrated registry's credentials controller's settings; it idles without them.
    pub registry: Option<crate::registry_credentials::Settings>,
}

/// One controller of the table.
pub struct Controller {
    /// Its name, as `--controllers` takes it.
    pub name: &'static str,
    /// What it watches and does (`--list` prints it).
    pub watches: &'static str,
    /// Runs it until shutdown.
    pub start: fn(Context, Arc<Settings>) -> BoxFuture<'static, ()>,
}

/// The controllers, in the order of the data flow.
pub const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "build",
        watches: "BuildConfig and Build (and their pods): run policy, build pods, phases, output, history; build triggers",
        start: |ctx, settings| {
            Box::pin(async move {
                let builds = crate::build::controller::run(ctx.clone(), settings.build.clone());
                let triggers = crate::build::trigger::run(ctx, settings.namespace.clone());
                futures::future::join(builds, triggers).await;
            })
        },
    },
    Controller {
        name: "image",
        watches: "ImageStream: tags, imports, scheduled imports; image triggers of Deployments, StatefulSets, DaemonSets, CronJobs",
        start: |ctx, settings| Box::pin(async move { crate::image::run(ctx, settings.image.clone()).await }),
    },
    Controller {
        name: "deploy",
        watches: "DeploymentConfig (and its ReplicaSets, hook pods, followed ImageStreams): Rolling and Recreate rollouts, hooks, config and image triggers",
        start: |ctx, settings| {
            Box::pin(async move { crate::deploy::run(ctx, settings.namespace.as_deref()).await })
        },
    },
    Controller {
        name: "template",
        watches: "TemplateInstance: process the template and create its objects as the requester",
        start: |ctx, settings| {
            Box::pin(async move { crate::template_instance::run(ctx, settings.namespace.as_deref()).await })
        },
    },
    Controller {
        name: "project",
        watches: "ProjectRequest and Project (and their namespaces): namespaces, RBAC, quota, isolation",
        start: |ctx, settings| {
            Box::pin(async move { crate::project::run(ctx, settings.project.clone()).await })
        },
    },
    Controller {
        name: "registry",
        watches: "Project: the integrated registry's credentials of each project's builder, deployer and default accounts (--integrated-registry)",
        start: |ctx, settings| {
            Box::pin(async move {
                if let Some(registry) = settings.registry.clone() {
                    crate::registry_credentials::run(ctx, registry).await;
                }
            })
        },
    },
];

/// The controllers named (all when `names` is empty); an unknown name is refused.
pub fn select(names: &[String]) -> Result<Vec<&'static Controller>, String> {
    if names.is_empty() {
        return Ok(CONTROLLERS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            CONTROLLERS
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("unknown controller '{name}'; `--list` shows the controllers"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_are_selected_by_name() {
        let all: Vec<&str> = select(&[]).unwrap().iter().map(|c| c.name).collect();
        assert_eq!(
            all,
            ["build", "image", "deploy", "template", "project", "registry"]
        );
        let some = select(&["deploy".into(), "build".into()]).unwrap();
        assert_eq!(
            some.iter().map(|c| c.name).collect::<Vec<_>>(),
            ["deploy", "build"]
        );
        let Err(refused) = select(&["builds".into()]) else {
            panic!("an unknown controller was selected");
        };
        assert!(refused.contains("unknown controller 'builds'"), "{refused}");
    }
}
