//! `slip rollout status|history|undo|pause|resume|restart|latest deployment/NAME`: the rollout
//! verbs for Kubernetes Deployments, as `kubectl rollout` has them (`latest` is `restart`: a
//! Deployment makes a new ReplicaSet only when its template changes).

use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch};
use serde_json::json;

use crate::objects::DryRun;

/// The revision annotation the Deployment controller puts on its ReplicaSets.
const REVISION: &str = "deployment.kubernetes.io/revision";
/// What `kubectl rollout restart` sets on the pod template.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

pub struct DeploymentRollout {
    pub deployments: Api<Deployment>,
    pub rss: Api<ReplicaSet>,
    pub name: String,
    pub namespace: String,
    pub dry_run: DryRun,
}

impl DeploymentRollout {
    fn what(&self) -> String {
        format!("deployment.apps/{}", self.name)
    }

    async fn get(&self) -> anyhow::Result<Deployment> {
        match self
            .deployments
            .get_opt(&self.name)
            .await
            .map_err(crate::cluster::api_error)?
        {
            Some(d) => Ok(d),
            None => bail!(
                "deployment {:?} not found in namespace {:?}",
                self.name,
                self.namespace
            ),
        }
    }

    /// The Deployment's ReplicaSets with their revision, oldest first.
    async fn revisions(&self) -> anyhow::Result<Vec<(i64, ReplicaSet)>> {
        let deployment = self.get().await?;
        let uid = deployment.uid().unwrap_or_default();
        let list = self
            .rss
            .list(&ListParams::default())
            .await
            .map_err(crate::cluster::api_error)?;
        let mut out: Vec<(i64, ReplicaSet)> = list
            .items
            .into_iter()
            .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
            .filter_map(|rs| Some((rs.annotations().get(REVISION)?.parse().ok()?, rs)))
            .collect();
        out.sort_by_key(|(revision, _)| *revision);
        Ok(out)
    }

    /// One line of progress and whether the rollout ended (Some(true) done, Some(false) failed).
    fn progress(&self, d: &Deployment) -> (String, Option<bool>) {
        let name = &self.name;
        let status = d.status.clone().unwrap_or_default();
        if d.metadata.generation > status.observed_generation {
            return (
                "Waiting for deployment spec update to be observed...".into(),
                None,
            );
        }
        let deadline = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
        if deadline {
            return (
                format!("deployment {name:?} exceeded its progress deadline"),
                Some(false),
            );
        }
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let updated = status.updated_replicas.unwrap_or(0);
        let available = status.available_replicas.unwrap_or(0);
        let waiting = format!("Waiting for deployment {name:?} rollout to finish:");
        if updated < desired {
            (
                format!("{waiting} {updated} out of {desired} new replicas have been updated..."),
                None,
            )
        } else if status.replicas.unwrap_or(0) > updated {
            let old = status.replicas.unwrap_or(0) - updated;
            (
                format!("{waiting} {old} old replicas are pending termination..."),
                None,
            )
        } else if available < updated {
            (
                format!("{waiting} {available} of {updated} updated replicas are available..."),
                None,
            )
        } else {
            (format!("deployment {name:?} successfully rolled out"), Some(true))
        }
    }

    pub async fn status(&self, watch: bool) -> anyhow::Result<()> {
        let mut last = String::new();
        loop {
            let (line, done) = self.progress(&self.get().await?);
            if line != last {
                println!("{line}");
                last = line;
            }
            match done {
                Some(true) => return Ok(()),
                Some(false) => bail!("rollout of deployment/{} failed", self.name),
                None if !watch => return Ok(()),
                None => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }

    pub async fn history(&self, revision: Option<i64>) -> anyhow::Result<()> {
        let revisions = self.revisions().await?;
        if let Some(n) = revision {
            let Some((_, rs)) = revisions.iter().find(|(r, _)| *r == n) else {
                bail!("deployment/{} has no revision {n}", self.name);
            };
            println!("deployment {:?} revision {n}", self.name);
            print!("{}", serde_yaml_ng::to_string(&template_of(rs)?)?);
            return Ok(());
        }
        println!("deployment.apps \"{}\"", self.name);
        println!("{:<10}CHANGE-CAUSE", "REVISION");
        for (revision, rs) in &revisions {
            let cause = rs
                .annotations()
                .get(CHANGE_CAUSE)
                .map_or("<none>", String::as_str);
            println!("{revision:<10}{cause}");
        }
        Ok(())
    }

    pub async fn undo(&self, to_revision: Option<i64>) -> anyhow::Result<()> {
        let revisions = self.revisions().await?;
        let current = revisions.last().map_or(0, |(r, _)| *r);
        let target = match to_revision {
            Some(n) if n <= 0 => bail!("--to-revision takes a revision number (1 or more), not {n}"),
            Some(n) if n == current => bail!("revision {n} is the current one; nothing to roll back to"),
            Some(n) => revisions.iter().find(|(r, _)| *r == n),
            None => revisions.iter().rev().find(|(r, _)| *r < current),
        };
        let Some((revision, rs)) = target else {
            match to_revision {
                Some(n) => bail!("deployment/{} has no revision {n}", self.name),
                None => bail!("deployment/{} has no earlier revision to roll back to", self.name),
            }
        };
        let template = template_of(rs)?;
        // The whole template is replaced (a merge would keep annotations the old one lacks).
        let mut deployment = self.get().await?;
        deployment.spec.get_or_insert_with(Default::default).template = template;
        if self.dry_run.sends() {
            self.deployments
                .replace(&self.name, &self.dry_run.post_params(), &deployment)
                .await
                .map_err(crate::cluster::api_error)?;
        }
        println!(
            "{} rolled back to revision {revision}{}",
            self.what(),
            self.dry_run.suffix()
        );
        Ok(())
    }

    pub async fn pause(&self, paused: bool) -> anyhow::Result<()> {
        let d = self.get().await?;
        if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) == paused {
            bail!(
                "deployment/{} is already {}",
                self.name,
                if paused { "paused" } else { "not paused" }
            );
        }
        self.patch(&json!({"spec": {"paused": paused}})).await?;
        println!(
            "{} {}{}",
            self.what(),
            if paused { "paused" } else { "resumed" },
            self.dry_run.suffix()
        );
        Ok(())
    }

    /// A new ReplicaSet of the same template: a restart annotation on the pod template.
    pub async fn restart(&self) -> anyhow::Result<()> {
        let d = self.get().await?;
        if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            bail!(
                "cannot restart a paused deployment; resume it first: slip rollout resume deployment/{}",
                self.name
            );
        }
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
        self.patch(&patch).await?;
        println!("{} restarted{}", self.what(), self.dry_run.suffix());
        Ok(())
    }

    /// A merge patch of the Deployment, as the dry-run mode says (none for a client dry run).
    async fn patch(&self, patch: &serde_json::Value) -> anyhow::Result<()> {
        if self.dry_run.sends() {
            self.deployments
                .patch(&self.name, &self.dry_run.patch_params(), &Patch::Merge(patch))
                .await
                .map_err(crate::cluster::api_error)?;
        }
        Ok(())
    }
}

/// A ReplicaSet's pod template without the hash label the Deployment controller adds.
fn template_of(rs: &ReplicaSet) -> anyhow::Result<PodTemplateSpec> {
    let mut template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .with_context(|| format!("replicaset {} has no template", rs.name_any()))?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    Ok(template)
}
