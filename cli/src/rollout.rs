//! `slip rollout latest|status|history|undo|cancel|retry|pause|resume|restart dc/NAME`, with the
//! semantics of `oc rollout` for DeploymentConfigs. The operator runs every rollout; these
//! commands only ask for one (raising `status.latestVersion` with optimistic concurrency), mark a
//! version's ReplicaSet, or follow it. `deployment/NAME` goes to [`crate::rollout_deploy`].

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch};
use serde_json::json;
use slipway_client::rollout::{RaiseError, raise_after};
use slipway_crds::DeploymentConfig;
use slipway_crds::apps::{DeploymentCause, DeploymentDetails, DeploymentPhase, labels};

use crate::cluster;
use crate::objects::DryRun;

#[derive(Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    command: RolloutCommand,
    /// For the verbs that write (latest, undo, cancel, retry, pause, resume, restart). client:
    /// check everything the verb checks and say what it would do, write nothing; server: send
    /// the writes with dryRun=All (validated and admitted by the API server, stored nowhere).
    /// `--dry-run` alone is client.
    #[arg(long, global = true, value_enum, default_value_t = DryRun::None, num_args = 0..=1,
          default_missing_value = "client", require_equals = true)]
    dry_run: DryRun,
}

#[derive(Subcommand)]
enum RolloutCommand {
    /// Start a new rollout of the current template (a manual version).
    Latest { target: String },
    /// Follow the latest rollout until it completes or fails.
    Status {
        target: String,
        /// Follow until the rollout ends (the default); false prints the state once.
        #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
        watch: bool,
    },
    /// List the versions, or show one version's template.
    History {
        target: String,
        #[arg(long)]
        revision: Option<i64>,
    },
    /// Roll back to the previous successful version, or to --to-revision; turns automatic image
    /// triggers off so the rollback stays.
    Undo {
        target: String,
        #[arg(long)]
        to_revision: Option<i64>,
    },
    /// Cancel the rollout in progress; the previous version is restored.
    Cancel { target: String },
    /// Run the latest, failed rollout again.
    Retry { target: String },
    /// Make no new versions until resumed.
    Pause { target: String },
    /// Make new versions again (one for everything changed while paused).
    Resume { target: String },
    /// Replace every pod: a new version of the same template (for a dc, as `latest`).
    Restart { target: String },
}

pub fn run(args: RolloutArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    cluster::block_on(run_async(args, namespace))?
}

async fn run_async(args: RolloutArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let (client, namespace) = cluster::client(namespace).await?;
    let target = match &args.command {
        RolloutCommand::Latest { target }
        | RolloutCommand::Status { target, .. }
        | RolloutCommand::History { target, .. }
        | RolloutCommand::Undo { target, .. }
        | RolloutCommand::Cancel { target }
        | RolloutCommand::Retry { target }
        | RolloutCommand::Pause { target }
        | RolloutCommand::Resume { target }
        | RolloutCommand::Restart { target } => target,
    };
    if args.dry_run != DryRun::None
        && matches!(
            args.command,
            RolloutCommand::Status { .. } | RolloutCommand::History { .. }
        )
    {
        bail!("--dry-run goes with the rollout verbs that write; status and history only read");
    }
    if is_deployment(target) {
        let target = target.clone();
        return deployment(args.command, client, namespace, &target, args.dry_run).await;
    }
    let name = parse_target(target)?;
    let rollout = Rollout {
        dcs: Api::namespaced(client.clone(), &namespace),
        rss: Api::namespaced(client.clone(), &namespace),
        pods: Api::namespaced(client, &namespace),
        name,
        namespace,
        dry_run: args.dry_run,
    };
    match args.command {
        RolloutCommand::Latest { .. } => rollout.latest().await,
        RolloutCommand::Status { watch, .. } => rollout.status(watch).await,
        RolloutCommand::History { revision, .. } => rollout.history(revision).await,
        RolloutCommand::Undo { to_revision, .. } => rollout.undo(to_revision).await,
        RolloutCommand::Cancel { .. } => rollout.cancel().await,
        RolloutCommand::Retry { .. } => rollout.retry().await,
        RolloutCommand::Pause { .. } => rollout.pause(true).await,
        RolloutCommand::Resume { .. } => rollout.pause(false).await,
        RolloutCommand::Restart { .. } => rollout.latest().await,
    }
}

fn is_deployment(target: &str) -> bool {
    target.split_once('/').is_some_and(|(kind, _)| {
        let kind = kind.to_ascii_lowercase();
        [
            "deploy",
            "deployment",
            "deployments",
            "deployment.apps",
            "deployments.apps",
        ]
        .contains(&kind.as_str())
    })
}

async fn deployment(
    command: RolloutCommand,
    client: kube::Client,
    namespace: String,
    target: &str,
    dry_run: DryRun,
) -> anyhow::Result<()> {
    let (_, name) =
        crate::objects::parse_target(target, &[crate::objects::Kind::Deployment], "slip rollout")?;
    let rollout = crate::rollout_deploy::DeploymentRollout {
        deployments: Api::namespaced(client.clone(), &namespace),
        rss: Api::namespaced(client, &namespace),
        name,
        namespace,
        dry_run,
    };
    match command {
        RolloutCommand::Latest { .. } | RolloutCommand::Restart { .. } => rollout.restart().await,
        RolloutCommand::Status { watch, .. } => rollout.status(watch).await,
        RolloutCommand::History { revision, .. } => rollout.history(revision).await,
        RolloutCommand::Undo { to_revision, .. } => rollout.undo(to_revision).await,
        RolloutCommand::Pause { .. } => rollout.pause(true).await,
        RolloutCommand::Resume { .. } => rollout.pause(false).await,
        RolloutCommand::Cancel { .. } | RolloutCommand::Retry { .. } => bail!(
            "slip rollout cancel and retry are for DeploymentConfigs; a Deployment rolls back with: slip rollout undo {target}"
        ),
    }
}

/// `dc/NAME` (or `deploymentconfig/NAME`, `deploymentconfigs/NAME`) → NAME.
pub fn parse_target(target: &str) -> anyhow::Result<String> {
    let Some((kind, name)) = target.split_once('/') else {
        bail!("expected dc/NAME or deployment/NAME, not {target:?}");
    };
    let kind = kind.to_ascii_lowercase();
    if !["dc", "deploymentconfig", "deploymentconfigs"].contains(&kind.as_str())
        && !kind.starts_with("deploymentconfig.")
        && !kind.starts_with("deploymentconfigs.")
    {
        bail!(
            "slip rollout works on DeploymentConfigs (dc/NAME) and Deployments (deployment/NAME); {kind:?} is neither"
        );
    }
    crate::objects::check_name(name)?;
    Ok(name.to_string())
}

struct Rollout {
    dcs: Api<DeploymentConfig>,
    rss: Api<ReplicaSet>,
    pods: Api<Pod>,
    name: String,
    namespace: String,
    dry_run: DryRun,
}

/// A version as `history` shows it.
struct Revision {
    version: i64,
    phase: DeploymentPhase,
    cause: String,
    rs: ReplicaSet,
}

fn revision_of(rs: ReplicaSet) -> Option<Revision> {
    let annotations = rs.annotations();
    Some(Revision {
        version: annotations.get(labels::LATEST_VERSION)?.parse().ok()?,
        phase: DeploymentPhase::parse(
            annotations
                .get(labels::DEPLOYMENT_PHASE)
                .map_or("New", String::as_str),
        ),
        cause: annotations.get(labels::CAUSE).cloned().unwrap_or_default(),
        rs,
    })
}

impl Rollout {
    fn what(&self) -> String {
        format!("deploymentconfig.slipway.dev/{}", self.name)
    }

    async fn dc(&self) -> anyhow::Result<DeploymentConfig> {
        match self.dcs.get_opt(&self.name).await {
            Ok(Some(dc)) => Ok(dc),
            Ok(None) => bail!(
                "deploymentconfig {:?} not found in namespace {:?}",
                self.name,
                self.namespace
            ),
            Err(e) => Err(api_error(e, &format!("reading dc/{}", self.name))),
        }
    }

    async fn revisions(&self) -> anyhow::Result<Vec<Revision>> {
        let dc = self.dc().await?;
        let uid = dc.uid().unwrap_or_default();
        let selector = format!("{}={}", labels::DEPLOYMENT_CONFIG, self.name);
        let list = self
            .rss
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_error(e, "listing the ReplicaSets"))?;
        let mut revisions: Vec<Revision> = list
            .items
            .into_iter()
            .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
            .filter_map(revision_of)
            .collect();
        revisions.sort_by_key(|r| r.version);
        Ok(revisions)
    }

    async fn latest_revision(&self, dc: &DeploymentConfig) -> anyhow::Result<Option<Revision>> {
        let version = dc.status.as_ref().map_or(0, |s| s.latest_version);
        Ok(self.revisions().await?.into_iter().find(|r| r.version == version))
    }

    /// Raises `status.latestVersion` by one with `details`, unless someone raised it since
    /// `seen` (then that version is the rollout asked for).
    async fn raise(&self, seen: i64, details: DeploymentDetails) -> anyhow::Result<i64> {
        if !self.dry_run.sends() {
            return Ok(seen + 1);
        }
        match raise_after(&self.dcs, &self.name, seen, details, &self.dry_run.post_params()).await {
            Ok(version) => Ok(version),
            Err(RaiseError::Kube(e)) => Err(api_error(e, "raising the version")),
            Err(e) => Err(e.into()),
        }
    }

    async fn latest(&self) -> anyhow::Result<()> {
        let dc = self.dc().await?;
        if dc.spec.paused {
            bail!(
                "cannot deploy a paused deployment config; resume it first: slip rollout resume dc/{}",
                self.name
            );
        }
        if dc.spec.template.is_none() {
            bail!("dc/{} has no pod template to roll out", self.name);
        }
        let seen = dc.status.as_ref().map_or(0, |s| s.latest_version);
        if let Some(r) = self.latest_revision(&dc).await?
            && !r.phase.is_terminal()
        {
            bail!("#{} is already in progress ({})", r.version, r.phase.as_str());
        }
        let details = DeploymentDetails {
            message: Some("manual change".into()),
            causes: vec![DeploymentCause {
                type_: "Manual".into(),
                image_trigger: None,
            }],
        };
        let version = self.raise(seen, details).await?;
        println!(
            "{} rolled out (version {version}){}",
            self.what(),
            self.dry_run.suffix()
        );
        Ok(())
    }

    async fn status(&self, watch: bool) -> anyhow::Result<()> {
        let mut last = String::new();
        loop {
            let dc = self.dc().await?;
            let version = dc.status.as_ref().map_or(0, |s| s.latest_version);
            let desired = dc.spec.replicas;
            let (line, done) = match self.latest_revision(&dc).await? {
                None if version == 0 => (
                    "Waiting for the first version (are its image triggers resolved?)...".into(),
                    None,
                ),
                None => (format!("Waiting for version {version} to be created..."), None),
                Some(r) => {
                    let rs_name = r.rs.name_any();
                    let status = r.rs.status.clone().unwrap_or_default();
                    let available = status.available_replicas.unwrap_or(0);
                    let updated = status.replicas;
                    match r.phase {
                        DeploymentPhase::Complete => (
                            format!("replication controller {rs_name:?} successfully rolled out"),
                            Some(true),
                        ),
                        DeploymentPhase::Failed => {
                            let why =
                                r.rs.annotations()
                                    .get(labels::STATUS_REASON)
                                    .cloned()
                                    .unwrap_or_else(|| "failed".into());
                            (
                                format!("replication controller {rs_name:?} has failed progressing: {why}"),
                                Some(false),
                            )
                        }
                        _ if updated < desired => (
                            format!(
                                "Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated..."
                            ),
                            None,
                        ),
                        _ => (
                            format!(
                                "Waiting for rollout to finish: {available} of {desired} updated replicas are available..."
                            ),
                            None,
                        ),
                    }
                }
            };
            if line != last {
                println!("{line}");
                last = line;
            }
            match done {
                Some(true) => return Ok(()),
                Some(false) => bail!("rollout of dc/{} failed", self.name),
                None if !watch => return Ok(()),
                None => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }

    async fn history(&self, revision: Option<i64>) -> anyhow::Result<()> {
        let revisions = self.revisions().await?;
        if let Some(n) = revision {
            let Some(r) = revisions.iter().find(|r| r.version == n) else {
                bail!("dc/{} has no revision {n} (it may have been pruned)", self.name);
            };
            let template = template_of(&r.rs)?;
            println!(
                "deploymentconfig {:?} revision {n} ({})",
                self.name,
                r.phase.as_str()
            );
            print!("{}", serde_yaml_ng::to_string(&template)?);
            return Ok(());
        }
        println!("deploymentconfig.slipway.dev \"{}\"", self.name);
        println!("{:<10}{:<10}CAUSE", "REVISION", "STATUS");
        for r in &revisions {
            println!("{:<10}{:<10}{}", r.version, r.phase.as_str(), r.cause);
        }
        Ok(())
    }

    async fn undo(&self, to_revision: Option<i64>) -> anyhow::Result<()> {
        let dc = self.dc().await?;
        let seen = dc.status.as_ref().map_or(0, |s| s.latest_version);
        let revisions = self.revisions().await?;
        let target = match to_revision {
            Some(n) if n <= 0 => bail!("--to-revision takes a revision number (1 or more), not {n}"),
            Some(n) if n == seen => bail!("revision {n} is the current version; nothing to roll back to"),
            Some(n) => revisions.iter().find(|r| r.version == n),
            None => revisions
                .iter()
                .rev()
                .find(|r| r.version < seen && r.phase == DeploymentPhase::Complete)
                .or_else(|| revisions.iter().rev().find(|r| r.version < seen)),
        };
        let Some(target) = target else {
            match to_revision {
                Some(n) => bail!("dc/{} has no revision {n} (it may have been pruned)", self.name),
                None => bail!("dc/{} has no earlier revision to roll back to", self.name),
            }
        };
        let template = template_of(&target.rs)?;
        // The operator writes status all the time: retry the spec update on conflicts.
        let mut attempt = 0;
        let (updated, seen, disabled) = loop {
            let dc = if attempt == 0 {
                dc.clone()
            } else {
                self.dc().await?
            };
            attempt += 1;
            let seen = dc.status.as_ref().map_or(0, |s| s.latest_version);
            let mut updated = dc;
            updated.spec.template = Some(template.clone());
            let mut disabled = Vec::new();
            for trigger in updated.spec.triggers.iter_mut().flatten() {
                if let Some(p) = trigger.image_change_params.as_mut()
                    && p.automatic
                {
                    p.automatic = false;
                    disabled.push(p.from.name.clone());
                }
            }
            if !self.dry_run.sends() {
                break (updated, seen, disabled);
            }
            match self
                .dcs
                .replace(&self.name, &self.dry_run.post_params(), &updated)
                .await
            {
                Ok(_) => break (updated, seen, disabled),
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < 10 => continue,
                Err(e) => return Err(api_error(e, "updating the template")),
            }
        };
        // Ask for the version here, so history names it a rollback; if the operator saw the
        // template change first and raised the version itself, that version is the rollback.
        if !updated.spec.paused {
            let details = DeploymentDetails {
                message: Some(format!("rollback to revision {}", target.version)),
                causes: vec![DeploymentCause {
                    type_: "Rollback".into(),
                    image_trigger: None,
                }],
            };
            self.raise(seen, details).await?;
        }
        println!(
            "{} rolled back to revision {}{}",
            self.what(),
            target.version,
            self.dry_run.suffix()
        );
        if !disabled.is_empty() {
            eprintln!(
                "Warning: the following image triggers were disabled: {}\n  You can re-enable them with: \
                 slip set triggers dc/{} --auto",
                disabled.join(", "),
                self.name
            );
        }
        Ok(())
    }

    /// A merge patch of the version's ReplicaSet `name`, as the dry-run mode says (none for a
    /// client dry run).
    async fn patch_rs(&self, name: &str, patch: serde_json::Value, doing: &str) -> anyhow::Result<()> {
        if self.dry_run.sends() {
            self.rss
                .patch(name, &self.dry_run.patch_params(), &Patch::Merge(patch))
                .await
                .map_err(|e| api_error(e, doing))?;
        }
        Ok(())
    }

    async fn cancel(&self) -> anyhow::Result<()> {
        let dc = self.dc().await?;
        let Some(r) = self
            .latest_revision(&dc)
            .await?
            .filter(|r| !r.phase.is_terminal())
        else {
            bail!("there is no rollout of dc/{} in progress to cancel", self.name);
        };
        let cancelled = json!({"metadata": {"annotations": {labels::CANCELLED: "true"}}});
        self.patch_rs(&r.rs.name_any(), cancelled, "cancelling").await?;
        println!(
            "Cancelled {} #{}{}",
            self.what(),
            r.version,
            self.dry_run.suffix()
        );
        Ok(())
    }

    async fn retry(&self) -> anyhow::Result<()> {
        let dc = self.dc().await?;
        let Some(r) = self.latest_revision(&dc).await? else {
            bail!("dc/{} has no rollout to retry", self.name);
        };
        if r.phase != DeploymentPhase::Failed {
            bail!(
                "#{} is {}; only a failed rollout can be retried (slip rollout latest starts a new one)",
                r.version,
                r.phase.as_str()
            );
        }
        let rs_name = r.rs.name_any();
        if self.dry_run.sends() {
            let hooks = self
                .pods
                .list(&ListParams::default().labels(&format!("{}={rs_name}", labels::HOOK_FOR)))
                .await
                .map_err(|e| api_error(e, "listing hook pods"))?;
            let delete = DeleteParams {
                dry_run: self.dry_run == DryRun::Server,
                ..DeleteParams::background()
            };
            for pod in hooks {
                let _ = self.pods.delete(&pod.name_any(), &delete).await;
            }
        }
        let annotations = retry_annotations();
        self.patch_rs(
            &rs_name,
            json!({"metadata": {"annotations": annotations}}),
            "retrying",
        )
        .await?;
        println!(
            "Retried #{} of {}{}",
            r.version,
            self.what(),
            self.dry_run.suffix()
        );
        Ok(())
    }

    async fn pause(&self, paused: bool) -> anyhow::Result<()> {
        let dc = self.dc().await?;
        let word = if paused { "paused" } else { "resumed" };
        if dc.spec.paused == paused {
            bail!(
                "dc/{} is already {}",
                self.name,
                if paused { "paused" } else { "not paused" }
            );
        }
        if self.dry_run.sends() {
            self.dcs
                .patch(
                    &self.name,
                    &self.dry_run.patch_params(),
                    &Patch::Merge(json!({"spec": {"paused": paused}})),
                )
                .await
                .map_err(|e| api_error(e, word))?;
        }
        println!("{} {word}{}", self.what(), self.dry_run.suffix());
        Ok(())
    }
}

/// What `retry` writes on a failed version's ReplicaSet (pure): New again, and what the failed
/// attempt recorded (cancellation, reason, start, last step, hook outcomes) removed.
fn retry_annotations() -> serde_json::Map<String, serde_json::Value> {
    let mut annotations = serde_json::Map::new();
    annotations.insert(labels::DEPLOYMENT_PHASE.into(), json!("New"));
    for key in [
        labels::CANCELLED,
        labels::STATUS_REASON,
        labels::STARTED_AT,
        labels::LAST_STEP,
    ] {
        annotations.insert(key.into(), serde_json::Value::Null);
    }
    for point in ["pre", "mid", "post"] {
        annotations.insert(
            format!("{}{point}", labels::HOOK_OUTCOME_PREFIX),
            serde_json::Value::Null,
        );
    }
    annotations
}

fn template_of(rs: &ReplicaSet) -> anyhow::Result<PodTemplateSpec> {
    let encoded = rs
        .annotations()
        .get(labels::ENCODED_TEMPLATE)
        .with_context(|| format!("{} does not record its template", rs.name_any()))?;
    serde_json::from_str(encoded)
        .with_context(|| format!("the template recorded on {} is malformed", rs.name_any()))
}

fn api_error(e: kube::Error, doing: &str) -> anyhow::Error {
    match e {
        kube::Error::Api(s) => anyhow::anyhow!("{doing}: {}", s.message),
        other => anyhow::anyhow!("{doing}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_makes_the_version_new_and_forgets_the_failed_attempt() {
        let annotations = retry_annotations();
        assert_eq!(annotations[labels::DEPLOYMENT_PHASE], "New");
        for key in [labels::CANCELLED, labels::STATUS_REASON, labels::LAST_STEP] {
            assert!(annotations[key].is_null(), "{key}");
        }
        let hook = format!("{}pre", labels::HOOK_OUTCOME_PREFIX);
        assert!(annotations[hook.as_str()].is_null());
    }

    #[test]
    fn targets_name_deployment_configs() {
        assert_eq!(parse_target("dc/web").unwrap(), "web");
        assert_eq!(parse_target("deploymentconfig/web-1").unwrap(), "web-1");
        assert_eq!(parse_target("deploymentconfigs.slipway.dev/web").unwrap(), "web");
        for bad in [
            "web",
            "bc/web",
            "dc/",
            "dc/Web",
            "dc/a_b",
            "dc/-a",
            &format!("dc/{}", "a".repeat(300)),
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        let message = parse_target("bc/web").unwrap_err().to_string();
        assert!(message.contains("Deployments"), "{message}");
        assert!(is_deployment("deployment/web") && is_deployment("deploy/web") && !is_deployment("dc/web"));
    }
}
