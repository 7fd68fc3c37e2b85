//! `slip adm prune images`: one pruning of the integrated registry, as `oc adm prune images`.
//!
//! It creates an ImagePrune, which the registry pod's `auth` container carries out (it reads the
//! registry's storage), waits for its report and prints it. Without `--confirm` it is a dry run,
//! as `oc adm prune images` is. Creating ImagePrunes is a cluster administrator's right.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kube::api::{Api, PostParams};
use slipway_crds::image_prune::{ImagePrunePhase, parse_duration};
use slipway_crds::{ImagePrune, ImagePruneSpec, ImagePruneStatus};

use crate::cluster::{api_error, block_on, client};

#[derive(Args, Debug)]
pub struct AdmArgs {
    #[command(subcommand)]
    command: AdmCommand,
}

#[derive(Subcommand, Debug)]
enum AdmCommand {
    /// Remove what nothing uses any more.
    Prune {
        #[command(subcommand)]
        what: PruneCommand,
    },
}

#[derive(Subcommand, Debug)]
enum PruneCommand {
    /// Remove the integrated registry's images no ImageStream, workload or pod refers to (and
    /// their blobs); a dry run without --confirm.
    Images(PruneImagesArgs),
}

#[derive(Args, Debug)]
pub struct PruneImagesArgs {
    /// How many of each tag's newest images to keep.
    #[arg(long, default_value_t = 3)]
    keep_tag_revisions: u32,
    /// Keep images younger than this (60m, 24h, 1h30m, 0s).
    #[arg(long, default_value = "60m")]
    keep_younger_than: String,
    /// Remove what would be removed; without it, only report.
    #[arg(long)]
    confirm: bool,
    /// How long to wait for the report, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

pub fn run(args: AdmArgs) -> anyhow::Result<()> {
    match args.command {
        AdmCommand::Prune {
            what: PruneCommand::Images(a),
        } => prune_images(a),
    }
}

fn prune_images(args: PruneImagesArgs) -> anyhow::Result<()> {
    parse_duration(&args.keep_younger_than).map_err(|e| anyhow::anyhow!("--keep-younger-than: {e}"))?;
    block_on(async {
        let (client, _) = client(None).await?;
        let api: Api<ImagePrune> = Api::all(client);
        let mut prune = ImagePrune::new(
            "",
            ImagePruneSpec {
                keep_tag_revisions: args.keep_tag_revisions,
                keep_younger_than: args.keep_younger_than.clone(),
                dry_run: !args.confirm,
            },
        );
        prune.metadata.name = None;
        prune.metadata.generate_name = Some("prune-".into());
        let made = api
            .create(&PostParams::default(), &prune)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 404 => anyhow::anyhow!(
                    "this cluster has no ImagePrune API: Slipway's chart installs it (registry.enabled=true)"
                ),
                other => api_error(other),
            })?;
        let name = made.metadata.name.context("the API server named no ImagePrune")?;
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let status = loop {
            let current = api.get(&name).await.map_err(api_error)?;
            if let Some(status) = current.status
                && matches!(status.phase, ImagePrunePhase::Complete | ImagePrunePhase::Failed)
            {
                break status;
            }
            if Instant::now() > deadline {
                bail!(
                    "imageprune/{name} has not finished in {} s: is the integrated registry running? (kubectl get imageprune {name} -o yaml)",
                    args.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        print!("{}", report(&name, &status, !args.confirm));
        if status.phase == ImagePrunePhase::Failed {
            bail!("imageprune/{name} failed: {}", status.message.unwrap_or_default());
        }
        Ok(())
    })?
}

/// The report, as printed (pure).
pub fn report(name: &str, status: &ImagePruneStatus, dry_run: bool) -> String {
    let mode = if dry_run {
        " (dry run: nothing removed; add --confirm to remove)"
    } else {
        ""
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    format!(
        "imageprune/{name}: {:?}{mode}\n  tag history items {verb}: {}\n  manifests kept: {}, {verb}: {}\n  blobs before: {}, {verb}: {} ({} bytes), after: {}\n",
        status.phase,
        status.tag_items_removed,
        status.manifests_kept,
        status.manifests_deleted,
        status.blobs_before,
        status.blobs_deleted,
        status.bytes_freed,
        status.blobs_after,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_was_or_would_be_removed() {
        let status = ImagePruneStatus {
            phase: ImagePrunePhase::Complete,
            manifests_kept: 4,
            manifests_deleted: 2,
            blobs_before: 20,
            blobs_deleted: 6,
            bytes_freed: 1234,
            blobs_after: 14,
            ..Default::default()
        };
        let text = report("prune-x", &status, false);
        assert!(text.contains("manifests kept: 4, removed: 2"), "{text}");
        assert!(
            text.contains("blobs before: 20, removed: 6 (1234 bytes), after: 14"),
            "{text}"
        );
        assert!(report("prune-x", &status, true).contains("dry run"));
    }
}
