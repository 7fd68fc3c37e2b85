//! `slip whoami`, `slip new-project`, `slip project`, `slip delete-project`: self-service
//! projects on any kubeconfig (no `slip login`: whatever the kubeconfig authenticates as).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use slipway_crds::project::ProjectRequestPhase;
use slipway_crds::{Project, ProjectRequest};

use crate::cluster::{api_error, block_on, client};

#[derive(Args, Debug)]
pub struct NewProjectArgs {
    /// The project's name: a DNS label (lower-case letters, digits, '-').
    name: String,
    /// A human-friendly name.
    #[arg(long)]
    display_name: Option<String>,
    /// What the project is for.
    #[arg(long)]
    description: Option<String>,
    /// Labels of the request, carried onto the Project, k=v (repeatable, or comma-separated).
    #[arg(short = 'l', long = "labels", value_name = "K=V", value_delimiter = ',')]
    labels: Vec<String>,
    /// Do not switch the kubeconfig context to the new project.
    #[arg(long)]
    skip_config_write: bool,
    /// How long to wait for the project, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[derive(Args, Debug)]
pub struct ProjectArgs {
    /// The project to switch to; without it, show the current one.
    name: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteProjectArgs {
    /// The project to delete, with everything in it.
    name: String,
}

/// Prints the user the kubeconfig authenticates as (and their groups).
pub fn whoami(show_groups: bool) -> anyhow::Result<()> {
    block_on(async {
        let (client, _) = client(None).await?;
        let review = Api::<SelfSubjectReview>::all(client)
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .context("asking the API server who you are")?;
        let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
        println!("{}", user.username.unwrap_or_default());
        if show_groups {
            for group in user.groups.unwrap_or_default() {
                println!("  {group}");
            }
        }
        Ok(())
    })?
}

pub fn new_project(args: NewProjectArgs) -> anyhow::Result<()> {
    block_on(async {
        let (client, _) = client(None).await?;
        let requests: Api<ProjectRequest> = Api::all(client.clone());
        let mut labels = serde_json::Map::new();
        for label in &args.labels {
            match label.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    labels.insert(k.to_string(), v.into());
                }
                _ => bail!("invalid label {label:?}: expected KEY=VALUE"),
            }
        }
        let mut request = json!({
            "apiVersion": slipway_crds::API_VERSION, "kind": "ProjectRequest",
            "metadata": {"name": args.name, "labels": labels},
        });
        if let Some(d) = &args.display_name {
            request["displayName"] = d.clone().into();
        }
        if let Some(d) = &args.description {
            request["description"] = d.clone().into();
        }
        let request: ProjectRequest = serde_json::from_value(request)?;
        requests
            .create(&PostParams::default(), &request)
            .await
            .map_err(api_error)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
        loop {
            let status = requests
                .get(&args.name)
                .await
                .map_err(api_error)?
                .status
                .unwrap_or_default();
            match status.phase {
                ProjectRequestPhase::Active => break,
                ProjectRequestPhase::Failed => bail!(
                    "project {} was not created: {}",
                    args.name,
                    status.message.unwrap_or_default()
                ),
                ProjectRequestPhase::Pending if tokio::time::Instant::now() > deadline => {
                    bail!(
                        "project {} is still pending after {} s; is Slipway's operator running?",
                        args.name,
                        args.timeout
                    )
                }
                ProjectRequestPhase::Pending => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        if args.skip_config_write {
            println!("Project \"{}\" created.", args.name);
        } else {
            switch_namespace(&args.name)?;
            println!("Now using project \"{}\".", args.name);
        }
        Ok(())
    })?
}

pub fn project(args: ProjectArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    block_on(async {
        let (client, current) = client(namespace).await?;
        match args.name {
            None => println!("Using project \"{current}\"."),
            Some(name) => {
                // Users see the Projects they requested (and admins all); others' stay hidden.
                Api::<Project>::all(client)
                    .get(&name)
                    .await
                    .map_err(|e| match e {
                        kube::Error::Api(s) if s.code == 403 || s.code == 404 => {
                            anyhow::anyhow!("project {name} does not exist or you have no access to it")
                        }
                        other => api_error(other),
                    })?;
                switch_namespace(&name)?;
                println!("Now using project \"{name}\".");
            }
        }
        Ok(())
    })?
}

/// Lists the projects the user can access, from the `access.slipway.dev` API (which filters by
/// the user's RBAC), marking the current one.
pub fn projects(namespace: Option<&str>) -> anyhow::Result<()> {
    block_on(async {
        let (client, current) = client(namespace).await?;
        let request = http::Request::get("/apis/access.slipway.dev/v1alpha1/projects")
            .body(Vec::new())
            .context("building the request")?;
        let list: serde_json::Value = client.request(request).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 || s.code == 503 => anyhow::anyhow!(
                "this cluster does not serve access.slipway.dev (the list of your projects): \
                 Slipway's webhook must run with --access-listen ({})",
                s.message
            ),
            kube::Error::Api(s) if s.code == 403 => anyhow::anyhow!(
                "you may not list your projects: {} (the chart's slipway-self-provisioner role grants it)",
                s.message
            ),
            other => api_error(other),
        })?;
        let projects: Vec<(String, String)> = list["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let name = p["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let display = p["status"]["displayName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (name, display)
            })
            .collect();
        print!("{}", render_projects(&projects, &current));
        Ok(())
    })?
}

/// What `slip projects` prints, as `oc projects` does: one line a project, `*` on the current.
fn render_projects(projects: &[(String, String)], current: &str) -> String {
    if projects.is_empty() {
        return "You have no projects on this server. Ask for one with `slip new-project NAME`.\n".into();
    }
    let mut out = String::from(
        "You have access to the following projects and can switch between them with 'slip project NAME':\n\n",
    );
    for (name, display) in projects {
        let mark = if name == current { "*" } else { " " };
        if display.is_empty() {
            out.push_str(&format!("  {mark} {name}\n"));
        } else {
            out.push_str(&format!("  {mark} {name} - {display}\n"));
        }
    }
    out
}

pub fn delete_project(args: DeleteProjectArgs) -> anyhow::Result<()> {
    block_on(async {
        let (client, _) = client(None).await?;
        Api::<Project>::all(client)
            .delete(&args.name, &DeleteParams::background())
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 403 || s.code == 404 => {
                    anyhow::anyhow!("project {} does not exist or you may not delete it", args.name)
                }
                other => api_error(other),
            })?;
        println!(
            "Project \"{}\" is being deleted, with everything in it.",
            args.name
        );
        Ok(())
    })?
}

/// The kubeconfig file slip writes to: the first of KUBECONFIG, or ~/.kube/config.
fn kubeconfig_path() -> anyhow::Result<PathBuf> {
    if let Some(paths) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&paths).find(|p| !p.as_os_str().is_empty())
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").context("neither KUBECONFIG nor HOME is set")?;
    Ok(PathBuf::from(home).join(".kube/config"))
}

/// Sets the namespace of the current context, keeping the rest of the file as it is.
pub fn switch_namespace(namespace: &str) -> anyhow::Result<()> {
    let path = kubeconfig_path()?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let updated = with_namespace(&text, namespace).with_context(|| path.display().to_string())?;
    let tmp = path.with_extension("slip-tmp");
    std::fs::write(&tmp, updated).with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(&path) {
        std::fs::set_permissions(&tmp, meta.permissions()).ok();
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The kubeconfig text with the current context's namespace set.
fn with_namespace(text: &str, namespace: &str) -> anyhow::Result<String> {
    let mut config: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).context("not a kubeconfig")?;
    let current = config["current-context"]
        .as_str()
        .context("the kubeconfig has no current-context")?
        .to_string();
    let contexts = config["contexts"]
        .as_sequence_mut()
        .context("the kubeconfig has no contexts")?;
    let entry = contexts
        .iter_mut()
        .find(|c| c["name"].as_str() == Some(current.as_str()))
        .with_context(|| format!("the current context {current} is not in the kubeconfig"))?;
    let context = entry
        .get_mut("context")
        .and_then(|c| c.as_mapping_mut())
        .context("a context without a body")?;
    context.insert("namespace".into(), namespace.into());
    Ok(serde_yaml_ng::to_string(&config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_listed_with_the_current_one_marked() {
        let list = vec![
            ("team-a".to_string(), "Team A".to_string()),
            ("team-b".to_string(), String::new()),
        ];
        assert_eq!(
            render_projects(&list, "team-b"),
            "You have access to the following projects and can switch between them with 'slip project NAME':\n\n    team-a - Team A\n  * team-b\n"
        );
        assert!(render_projects(&[], "default").starts_with("You have no projects"));
    }

    #[test]
    fn switching_sets_the_current_contexts_namespace_only() {
        let text = "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters: []\nusers: []\ncontexts:\n- name: a\n  context: {cluster: c, user: u, namespace: x}\n- name: b\n  context: {cluster: c, user: u}\npreferences: {colors: true}\n";
        let updated: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&with_namespace(text, "team-a").unwrap()).unwrap();
        assert_eq!(updated["contexts"][1]["context"]["namespace"], "team-a");
        assert_eq!(updated["contexts"][0]["context"]["namespace"], "x");
        assert_eq!(updated["preferences"]["colors"], true);
        assert!(with_namespace("contexts: []", "x").is_err());
        assert!(
            with_namespace("current-context: nope\ncontexts: []\n", "x")
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }
}
