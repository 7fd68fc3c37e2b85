//! Pruning the integrated registry ([`slipway_crds::ImagePrune`]), run by the registry pod's
//! `auth` container, which mounts the registry's storage.
//!
//! 1. **What is kept**: each ImageStream tag's `keepTagRevisions` newest images and those younger
//!    than `keepYoungerThan` (tag history beyond that is removed from the stream's status); every
//!    image of the registry that any pod, workload, DeploymentConfig, BuildConfig or Build names
//!    anywhere in its object (by digest or by tag); every manifest a registry tag points at now;
//!    every manifest written to storage within `keepYoungerThan` (a push whose notification is not
//!    recorded yet); the manifests an image index that is kept lists.
//! 2. **Manifests**: every other manifest revision of every repository is deleted from storage,
//!    as the registry's `DELETE /v2/<name>/manifests/<digest>` deletes it (its revision link, and
//!    the tags' index links to it).
//! 3. **Blobs**: a blob that no remaining manifest names (as itself, its config or a layer) and
//!    that is older than `keepYoungerThan` is deleted.
//!
//! Why not the registry's own `garbage-collect`: it must run with the registry stopped or
//! read-only (it deletes blobs of uploads in flight, having no notion of age), and it runs in the
//! registry's image, not beside it. This one reads distribution's storage layout (`v2/`:
//! `repositories/<name>/_manifests/{revisions,tags}`, `blobs/sha256/<2>/<hex>/data`, stable since
//! 2015), and spares what is younger than the grace period, so it runs beside live pushes; the
//! registry keeps no cache of blobs here (the chart configures none), so it sees each deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use slipway_crds::ImageStream;

/// The largest manifest read (distribution refuses larger ones too).
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A `sha256:<64 hex>` digest, or None.
fn digest(text: &str) -> Option<String> {
    let hex = text.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| text.to_string())
}

/// The registry's storage: `<rootdirectory>/docker/registry/v2`.
#[derive(Clone, Debug)]
pub struct Storage {
    root: PathBuf,
}

/// One manifest revision of one repository.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Revision {
    pub repository: String,
    pub digest: String,
    /// When its link was written (the last push of it).
    pub written: SystemTime,
}

/// One blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub written: SystemTime,
    pub bytes: u64,
}

impl Storage {
    /// The storage under the registry's `rootdirectory`.
    pub fn new(rootdirectory: &Path) -> Self {
        Self {
            root: rootdirectory.join("docker/registry/v2"),
        }
    }

    fn repositories_dir(&self) -> PathBuf {
        self.root.join("repositories")
    }

    fn blob_dir(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        Some(self.root.join("blobs/sha256").join(&hex[..2]).join(hex))
    }

    /// Every repository (a directory with `_manifests`), by name (`project/stream`).
    pub fn repositories(&self) -> std::io::Result<Vec<String>> {
        let mut found = Vec::new();
        let mut pending = vec![(self.repositories_dir(), String::new())];
        while let Some((dir, name)) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                let part = entry.file_name().to_string_lossy().into_owned();
                if part == "_manifests" {
                    found.push(name.clone());
                } else if !part.starts_with('_') {
                    let child = if name.is_empty() {
                        part
                    } else {
                        format!("{name}/{part}")
                    };
                    pending.push((entry.path(), child));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The manifest revisions of `repository`.
    pub fn revisions(&self, repository: &str) -> std::io::Result<Vec<Revision>> {
        let dir = self
            .repositories_dir()
            .join(repository)
            .join("_manifests/revisions/sha256");
        let mut found = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(digest) = digest(&format!("sha256:{}", entry.file_name().to_string_lossy())) else {
                continue;
            };
            let link = entry.path().join("link");
            let Ok(meta) = std::fs::metadata(&link) else {
                continue;
            };
            found.push(Revision {
                repository: repository.to_string(),
                digest,
                written: meta.modified()?,
            });
        }
        found.sort();
        Ok(found)
    }

    /// The digests the registry's tags of `repository` point at now.
    pub fn tagged(&self, repository: &str) -> std::io::Result<BTreeSet<String>> {
        let dir = self.repositories_dir().join(repository).join("_manifests/tags");
        let mut found = BTreeSet::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let link = entry?.path().join("current/link");
            if let Ok(text) = std::fs::read_to_string(&link)
                && let Some(d) = digest(text.trim())
            {
                found.insert(d);
            }
        }
        Ok(found)
    }

    /// The digests a stored manifest names: its config, layers and (an index) manifests.
    pub fn manifest_references(&self, digest: &str) -> std::io::Result<Vec<String>> {
        let Some(dir) = self.blob_dir(digest) else {
            return Ok(Vec::new());
        };
        let path = dir.join("data");
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        if meta.len() > MAX_MANIFEST_BYTES {
            return Ok(Vec::new());
        }
        Ok(references(&std::fs::read(&path)?))
    }

    /// Deletes a manifest revision of `repository`, and the tags' index links to it (as the
    /// registry's manifest DELETE does).
    pub fn delete_revision(&self, repository: &str, digest: &str) -> std::io::Result<()> {
        let Some(hex) = digest.strip_prefix("sha256:") else {
            return Ok(());
        };
        let manifests = self.repositories_dir().join(repository).join("_manifests");
        remove_dir(&manifests.join("revisions/sha256").join(hex))?;
        if let Ok(tags) = std::fs::read_dir(manifests.join("tags")) {
            for tag in tags {
                remove_dir(&tag?.path().join("index/sha256").join(hex))?;
            }
        }
        Ok(())
    }

    /// Every blob.
    pub fn blobs(&self) -> std::io::Result<Vec<Blob>> {
        let mut found = Vec::new();
        let prefixes = match std::fs::read_dir(self.root.join("blobs/sha256")) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for prefix in prefixes {
            let prefix = prefix?;
            if !prefix.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(prefix.path())? {
                let entry = entry?;
                let Some(digest) = digest(&format!("sha256:{}", entry.file_name().to_string_lossy())) else {
                    continue;
                };
                let Ok(meta) = std::fs::metadata(entry.path().join("data")) else {
                    continue;
                };
                found.push(Blob {
                    digest,
                    written: meta.modified()?,
                    bytes: meta.len(),
                });
            }
        }
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(found)
    }

    /// Deletes a blob.
    pub fn delete_blob(&self, digest: &str) -> std::io::Result<()> {
        match self.blob_dir(digest) {
            Some(dir) => remove_dir(&dir),
            None => Ok(()),
        }
    }
}

fn remove_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The digests a manifest (OCI or Docker, image or index) names.
pub fn references(manifest: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<Value>(manifest) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let config = value.get("config").into_iter();
    let listed = ["layers", "manifests", "blobs"]
        .into_iter()
        .flat_map(|key| value.get(key).and_then(Value::as_array).into_iter().flatten());
    for descriptor in config.chain(listed) {
        if let Some(d) = descriptor.get("digest").and_then(Value::as_str).and_then(digest) {
            found.push(d);
        }
    }
    // Schema 1 manifests name their layers as fsLayers[].blobSum.
    for layer in value
        .get("fsLayers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(d) = layer.get("blobSum").and_then(Value::as_str).and_then(digest) {
            found.push(d);
        }
    }
    found
}

/// Images of the registry named somewhere by digest, per repository. A name by tag needs no
/// record: every manifest a registry tag points at is kept ([`manifests_to_delete`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Referenced {
    pub digests: BTreeMap<String, BTreeSet<String>>,
}

impl Referenced {
    /// Adds every string in `object` (anywhere) that names an image of `registry` by digest
    /// (`registry/repo@sha256:…`).
    pub fn add_object(&mut self, object: &Value, registry: &str) {
        match object {
            Value::String(text) => self.add(text, registry),
            Value::Array(items) => items.iter().for_each(|v| self.add_object(v, registry)),
            Value::Object(map) => map.values().for_each(|v| self.add_object(v, registry)),
            _ => {}
        }
    }

    fn add(&mut self, text: &str, registry: &str) {
        let Some(rest) = text.strip_prefix(registry).and_then(|r| r.strip_prefix('/')) else {
            return;
        };
        if let Some((repository, d)) = rest.split_once('@')
            && let Some(d) = digest(d)
        {
            self.digests.entry(repository.to_string()).or_default().insert(d);
        }
    }

    fn has(&self, repository: &str, digest: &str) -> bool {
        self.digests
            .get(repository)
            .is_some_and(|set| set.contains(digest))
    }
}

/// How many items of one tag's history stay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trim {
    /// The stream's place in the streams given to [`stream_keep`].
    pub index: usize,
    pub namespace: String,
    pub stream: String,
    pub tag: String,
    /// The number of newest items kept; the rest are removed.
    pub keep: usize,
    pub removed: usize,
}

/// The images the streams keep (added to `referenced`), and the history to trim: each tag keeps
/// its `revisions` newest items and the items created after `cutoff`.
pub fn stream_keep(
    streams: &[ImageStream],
    registry: &str,
    revisions: usize,
    cutoff: SystemTime,
    referenced: &mut Referenced,
) -> Vec<Trim> {
    let mut trims = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        let namespace = stream.metadata.namespace.clone().unwrap_or_default();
        let name = stream.metadata.name.clone().unwrap_or_default();
        let Some(status) = &stream.status else { continue };
        for tag in &status.tags {
            // Items are newest first: keep a prefix, so history stays in order.
            let mut keep = 0;
            for (i, item) in tag.items.iter().enumerate() {
                let created = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(item.created.0.as_second()).unwrap_or(0));
                if i < revisions || created > cutoff {
                    keep = i + 1;
                }
            }
            for item in &tag.items[..keep] {
                referenced.add(&item.docker_image_reference, registry);
            }
            if keep < tag.items.len() {
                trims.push(Trim {
                    index,
                    namespace: namespace.clone(),
                    stream: name.clone(),
                    tag: tag.tag.clone(),
                    keep,
                    removed: tag.items.len() - keep,
                });
            }
        }
    }
    trims
}

/// The manifest revisions to delete: not referenced, not tagged in the registry, written before
/// `cutoff`, and not listed by an index that stays.
pub fn manifests_to_delete(
    revisions: &[Revision],
    tagged: &BTreeMap<String, BTreeSet<String>>,
    referenced: &Referenced,
    cutoff: SystemTime,
    references_of: &dyn Fn(&str) -> Vec<String>,
) -> Vec<Revision> {
    let stays = |r: &Revision| {
        referenced.has(&r.repository, &r.digest)
            || tagged.get(&r.repository).is_some_and(|t| t.contains(&r.digest))
            || r.written > cutoff
    };
    // The children of the indexes that stay stay too (transitively: an index of indexes).
    let mut kept: BTreeSet<(String, String)> = revisions
        .iter()
        .filter(|r| stays(r))
        .map(|r| (r.repository.clone(), r.digest.clone()))
        .collect();
    let mut pending: Vec<(String, String)> = kept.iter().cloned().collect();
    while let Some((repository, d)) = pending.pop() {
        for child in references_of(&d) {
            let key = (repository.clone(), child);
            if revisions
                .iter()
                .any(|r| r.repository == key.0 && r.digest == key.1)
                && kept.insert(key.clone())
            {
                pending.push(key);
            }
        }
    }
    revisions
        .iter()
        .filter(|r| !kept.contains(&(r.repository.clone(), r.digest.clone())))
        .cloned()
        .collect()
}

/// The blobs to delete: named by no remaining manifest (nor one itself), written before `cutoff`.
pub fn blobs_to_delete(blobs: &[Blob], marked: &BTreeSet<String>, cutoff: SystemTime) -> Vec<Blob> {
    blobs
        .iter()
        .filter(|b| !marked.contains(&b.digest) && b.written <= cutoff)
        .cloned()
        .collect()
}

/// The kinds whose objects may name registry images (anywhere in them): what runs, what will run,
/// and what builds from or to an image.
fn referencing_kinds() -> Vec<kube::core::ApiResource> {
    use k8s_openapi::api::{apps, batch, core};
    use kube::core::ApiResource;
    vec![
        ApiResource::erase::<core::v1::Pod>(&()),
        ApiResource::erase::<core::v1::ReplicationController>(&()),
        ApiResource::erase::<apps::v1::Deployment>(&()),
        ApiResource::erase::<apps::v1::ReplicaSet>(&()),
        ApiResource::erase::<apps::v1::StatefulSet>(&()),
        ApiResource::erase::<apps::v1::DaemonSet>(&()),
        ApiResource::erase::<batch::v1::Job>(&()),
        ApiResource::erase::<batch::v1::CronJob>(&()),
        ApiResource::erase::<slipway_crds::DeploymentConfig>(&()),
        ApiResource::erase::<slipway_crds::BuildConfig>(&()),
        ApiResource::erase::<slipway_crds::Build>(&()),
    ]
}

/// Lists every object of a kind, a page at a time.
async fn list_all<K>(api: &kube::Api<K>) -> Result<Vec<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut all = Vec::new();
    let mut params = kube::api::ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        all.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(all),
        }
    }
}

/// Carries out ImagePrunes on the registry's storage.
#[derive(Clone)]
pub struct Pruner {
    pub client: kube::Client,
    pub storage: Storage,
    /// The registry as image references name it (`host:port`).
    pub registry: String,
}

impl Pruner {
    /// One pruning as `spec` asks (nothing removed with `dryRun`); what it did.
    pub async fn prune(
        &self,
        spec: &slipway_crds::ImagePruneSpec,
    ) -> Result<slipway_crds::ImagePruneStatus, String> {
        use kube::api::{Api, DynamicObject, PostParams};
        let grace = slipway_crds::image_prune::parse_duration(&spec.keep_younger_than)?;
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let api_error = |e: kube::Error| format!("reading the cluster: {e}");
        let mut report = slipway_crds::ImagePruneStatus::default();

        // 1. The streams' history, trimmed first: a stream that cannot be trimmed keeps all.
        let streams_api = Api::<ImageStream>::all(self.client.clone());
        let streams = list_all(&streams_api).await.map_err(api_error)?;
        let mut referenced = Referenced::default();
        let revisions_kept = usize::try_from(spec.keep_tag_revisions).unwrap_or(usize::MAX);
        let trims = stream_keep(&streams, &self.registry, revisions_kept, cutoff, &mut referenced);
        for trim in &trims {
            let stream = &streams[trim.index];
            let trimmed = if spec.dry_run {
                false
            } else {
                let mut next = stream.clone();
                if let Some(status) = next.status.as_mut()
                    && let Some(tag) = status.tags.iter_mut().find(|t| t.tag == trim.tag)
                {
                    tag.items.truncate(trim.keep);
                }
                let api = Api::<ImageStream>::namespaced(self.client.clone(), &trim.namespace);
                match api
                    .replace_status(&trim.stream, &PostParams::default(), &next)
                    .await
                {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::info!(namespace = trim.namespace, stream = trim.stream, error = %e, "tag history not trimmed; its images are kept");
                        false
                    }
                }
            };
            if trimmed || spec.dry_run {
                report.tag_items_removed += trim.removed as u64;
            }
            // A dry run reports as if the history were trimmed.
            if !trimmed && !spec.dry_run {
                for tag in stream
                    .status
                    .iter()
                    .flat_map(|s| &s.tags)
                    .filter(|t| t.tag == trim.tag)
                {
                    for item in &tag.items {
                        referenced.add(&item.docker_image_reference, &self.registry);
                    }
                }
            }
        }

        // 2. Everything else that names an image of the registry.
        for resource in referencing_kinds() {
            let api = Api::<DynamicObject>::all_with(self.client.clone(), &resource);
            for object in list_all(&api).await.map_err(api_error)? {
                referenced.add_object(&object.data, &self.registry);
            }
        }

        // 3. Manifests.
        let io = |e: std::io::Error| format!("reading the registry's storage: {e}");
        let mut revisions = Vec::new();
        let mut tagged = BTreeMap::new();
        for repository in self.storage.repositories().map_err(io)? {
            revisions.extend(self.storage.revisions(&repository).map_err(io)?);
            tagged.insert(repository.clone(), self.storage.tagged(&repository).map_err(io)?);
        }
        let storage = self.storage.clone();
        let references_of = move |digest: &str| storage.manifest_references(digest).unwrap_or_default();
        let doomed = manifests_to_delete(&revisions, &tagged, &referenced, cutoff, &references_of);
        report.manifests_deleted = doomed.len() as u64;
        report.manifests_kept = (revisions.len() - doomed.len()) as u64;
        let blobs = self.storage.blobs().map_err(io)?;
        report.blobs_before = blobs.len() as u64;
        if !spec.dry_run {
            for revision in &doomed {
                self.storage
                    .delete_revision(&revision.repository, &revision.digest)
                    .map_err(|e| format!("deleting {}@{}: {e}", revision.repository, revision.digest))?;
            }
        }

        // 4. Blobs no remaining manifest names.
        let mut marked = BTreeSet::new();
        for revision in revisions.iter().filter(|r| !doomed.contains(r)) {
            marked.extend(references_of(&revision.digest));
            marked.insert(revision.digest.clone());
        }
        let gone = blobs_to_delete(&blobs, &marked, cutoff);
        report.blobs_deleted = gone.len() as u64;
        report.bytes_freed = gone.iter().map(|b| b.bytes).sum();
        if spec.dry_run {
            report.blobs_after = report.blobs_before;
            report.message = Some(format!(
                "dry run: would remove {} tag history items, {} manifests and {} blobs ({} bytes)",
                report.tag_items_removed, report.manifests_deleted, report.blobs_deleted, report.bytes_freed
            ));
        } else {
            for blob in &gone {
                self.storage
                    .delete_blob(&blob.digest)
                    .map_err(|e| format!("deleting blob {}: {e}", blob.digest))?;
            }
            report.blobs_after = self.storage.blobs().map_err(io)?.len() as u64;
        }
        Ok(report)
    }
}

/// The label of the ImagePrunes the schedule makes.
pub const SCHEDULED_LABEL: &str = "slipway.dev/scheduled";
/// How many scheduled ImagePrunes are kept.
const SCHEDULED_KEPT: usize = 3;

/// Carries out each ImagePrune that has not run yet, one at a time, and makes one every
/// `schedule.0` with `schedule.1` when a schedule is given; until the process ends.
pub async fn run(pruner: Pruner, schedule: Option<(Duration, slipway_crds::ImagePruneSpec)>) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    use slipway_crds::ImagePrune;
    let api = kube::Api::<ImagePrune>::all(pruner.client.clone());
    let mut changes = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let period = schedule
        .as_ref()
        .map_or(Duration::from_secs(3600 * 24 * 365), |s| s.0);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            change = changes.next() => match change {
                Some(Ok(prune)) => carry_out(&pruner, &api, prune).await,
                Some(Err(e)) => tracing::warn!(error = %e, "watching ImagePrunes"),
                None => return,
            },
            _ = ticks.tick(), if schedule.is_some() => {
                if let Some((_, spec)) = &schedule {
                    scheduled(&api, spec).await;
                }
            }
        }
    }
}

/// Makes a scheduled ImagePrune, and deletes the oldest scheduled ones beyond a few.
async fn scheduled(api: &kube::Api<slipway_crds::ImagePrune>, spec: &slipway_crds::ImagePruneSpec) {
    use kube::api::{DeleteParams, ListParams, PostParams};
    let mut prune = slipway_crds::ImagePrune::new("", spec.clone());
    prune.metadata.name = None;
    prune.metadata.generate_name = Some("scheduled-".into());
    prune.metadata.labels = Some(BTreeMap::from([(
        SCHEDULED_LABEL.to_string(),
        "true".to_string(),
    )]));
    if let Err(e) = api.create(&PostParams::default(), &prune).await {
        tracing::warn!(error = %e, "making the scheduled ImagePrune");
        return;
    }
    let Ok(list) = api
        .list(&ListParams::default().labels(&format!("{SCHEDULED_LABEL}=true")))
        .await
    else {
        return;
    };
    let mut items = list.items;
    items.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let excess = items.len().saturating_sub(SCHEDULED_KEPT);
    for old in items.into_iter().take(excess) {
        if let Some(name) = old.metadata.name {
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
    }
}

/// Runs one ImagePrune unless it has run, recording its phase and report.
async fn carry_out(
    pruner: &Pruner,
    api: &kube::Api<slipway_crds::ImagePrune>,
    prune: slipway_crds::ImagePrune,
) {
    use k8s_openapi::jiff::Timestamp;
    use kube::api::{Patch, PatchParams};
    use slipway_crds::common::Time;
    use slipway_crds::image_prune::ImagePrunePhase;
    let phase = prune.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if matches!(phase, ImagePrunePhase::Complete | ImagePrunePhase::Failed) {
        return;
    }
    let Some(name) = prune.metadata.name.clone() else {
        return;
    };
    let started = Time(Timestamp::now());
    let running = slipway_crds::ImagePruneStatus {
        phase: ImagePrunePhase::Running,
        start_time: Some(started.clone()),
        ..Default::default()
    };
    let write = |status: slipway_crds::ImagePruneStatus| {
        let name = name.clone();
        async move {
            let patch = serde_json::json!({"status": status});
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    };
    if let Err(e) = write(running).await {
        tracing::warn!(prune = name, error = %e, "recording the ImagePrune's start");
        return;
    }
    tracing::info!(prune = name, dry_run = prune.spec.dry_run, "pruning the registry");
    let mut status = match pruner.prune(&prune.spec).await {
        Ok(report) => slipway_crds::ImagePruneStatus {
            phase: ImagePrunePhase::Complete,
            ..report
        },
        Err(message) => slipway_crds::ImagePruneStatus {
            phase: ImagePrunePhase::Failed,
            message: Some(message),
            ..Default::default()
        },
    };
    status.start_time = Some(started);
    status.completion_time = Some(Time(Timestamp::now()));
    tracing::info!(prune = name, ?status, "pruned the registry");
    if let Err(e) = write(status).await {
        tracing::warn!(prune = name, error = %e, "recording the ImagePrune's report");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A storage with `repo` holding manifests 1 (layers 11, 12, config 13) and 2 (layers 11,
    /// 21, config 22), tag `live` at 2 with both in its index.
    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path());
        let blob = |digest: &str, text: &str| {
            let hex = digest.strip_prefix("sha256:").unwrap();
            write(
                &storage
                    .root
                    .join(format!("blobs/sha256/{}/{hex}/data", &hex[..2])),
                text,
            );
        };
        let manifest = |config: u8, layers: &[u8]| {
            serde_json::json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"digest": d(config), "size": 1},
                "layers": layers.iter().map(|l| serde_json::json!({"digest": d(*l), "size": 1})).collect::<Vec<_>>(),
            })
            .to_string()
        };
        blob(&d(1), &manifest(13, &[11, 12]));
        blob(&d(2), &manifest(22, &[11, 21]));
        for n in [11, 12, 13, 21, 22, 99] {
            blob(&d(n), "layer");
        }
        let repo = storage.repositories_dir().join("team/app/_manifests");
        for n in [1, 2] {
            let hex = d(n).replace("sha256:", "");
            write(&repo.join(format!("revisions/sha256/{hex}/link")), &d(n));
            write(&repo.join(format!("tags/live/index/sha256/{hex}/link")), &d(n));
        }
        write(&repo.join("tags/live/current/link"), &d(2));
        write(
            &storage.repositories_dir().join("team/app/_layers/sha256/x/link"),
            "x",
        );
        (dir, storage)
    }

    #[test]
    fn the_storage_layout_is_read_as_the_registry_writes_it() {
        let (_dir, storage) = storage();
        assert_eq!(storage.repositories().unwrap(), vec!["team/app".to_string()]);
        let revisions: Vec<String> = storage
            .revisions("team/app")
            .unwrap()
            .into_iter()
            .map(|r| r.digest)
            .collect();
        assert_eq!(revisions, vec![d(1), d(2)]);
        assert_eq!(storage.tagged("team/app").unwrap(), BTreeSet::from([d(2)]));
        assert_eq!(
            storage.manifest_references(&d(1)).unwrap(),
            vec![d(13), d(11), d(12)]
        );
        assert_eq!(storage.blobs().unwrap().len(), 8);
    }

    #[test]
    fn an_unreferenced_manifest_and_its_own_blobs_go_and_the_rest_stays() {
        let (_dir, storage) = storage();
        let revisions = storage.revisions("team/app").unwrap();
        let tagged = BTreeMap::from([("team/app".to_string(), storage.tagged("team/app").unwrap())]);
        let later = SystemTime::now() + Duration::from_secs(3600);
        let refs = |digest: &str| storage.manifest_references(digest).unwrap();
        // Nothing names manifest 1: it goes; 2 is tagged.
        let delete = manifests_to_delete(&revisions, &tagged, &Referenced::default(), later, &refs);
        assert_eq!(
            delete.iter().map(|r| r.digest.clone()).collect::<Vec<_>>(),
            vec![d(1)]
        );
        // A pod naming it by digest keeps it; so does being younger than the cutoff.
        let mut pod = Referenced::default();
        pod.add_object(
            &serde_json::json!({"image": format!("reg:5000/team/app@{}", d(1))}),
            "reg:5000",
        );
        assert!(manifests_to_delete(&revisions, &tagged, &pod, later, &refs).is_empty());
        let earlier = SystemTime::now() - Duration::from_secs(3600);
        assert!(manifests_to_delete(&revisions, &tagged, &Referenced::default(), earlier, &refs).is_empty());

        storage.delete_revision("team/app", &d(1)).unwrap();
        assert_eq!(storage.revisions("team/app").unwrap().len(), 1);
        assert!(
            !storage
                .repositories_dir()
                .join("team/app/_manifests/tags/live/index/sha256")
                .join(d(1).replace("sha256:", ""))
                .exists()
        );
        let mut marked = BTreeSet::new();
        for r in storage.revisions("team/app").unwrap() {
            marked.extend(refs(&r.digest));
            marked.insert(r.digest);
        }
        let blobs = storage.blobs().unwrap();
        let gone: Vec<String> = blobs_to_delete(&blobs, &marked, later)
            .into_iter()
            .map(|b| b.digest)
            .collect();
        // Manifest 1 itself, its own layer 12 and config 13, and the stray 99; 11 is shared.
        assert_eq!(gone, vec![d(1), d(12), d(13), d(99)]);
        assert!(
            blobs_to_delete(&blobs, &marked, earlier).is_empty(),
            "young blobs stay"
        );
        for digest in &gone {
            storage.delete_blob(digest).unwrap();
        }
        assert_eq!(storage.blobs().unwrap().len(), 4);
    }

    #[test]
    fn an_index_keeps_the_manifests_it_lists() {
        let revisions = vec![
            Revision {
                repository: "r".into(),
                digest: d(1),
                written: SystemTime::UNIX_EPOCH,
            },
            Revision {
                repository: "r".into(),
                digest: d(2),
                written: SystemTime::UNIX_EPOCH,
            },
            Revision {
                repository: "r".into(),
                digest: d(3),
                written: SystemTime::UNIX_EPOCH,
            },
        ];
        let tagged = BTreeMap::from([("r".to_string(), BTreeSet::from([d(1)]))]);
        let refs = |digest: &str| if digest == d(1) { vec![d(2)] } else { Vec::new() };
        let delete = manifests_to_delete(
            &revisions,
            &tagged,
            &Referenced::default(),
            SystemTime::now(),
            &refs,
        );
        assert_eq!(
            delete.iter().map(|r| r.digest.clone()).collect::<Vec<_>>(),
            vec![d(3)]
        );
    }

    #[test]
    fn references_are_found_anywhere_in_an_object_and_only_for_this_registry() {
        let mut referenced = Referenced::default();
        let object = serde_json::json!({
            "spec": {"template": {"spec": {"containers": [
                {"image": format!("reg:5000/a/web@{}", d(1))},
                {"image": "reg:5000/a/db:10"},
                {"image": format!("other:5000/a/web@{}", d(2))},
                {"image": "reg:5000/a/bad@sha256:zz"},
            ]}}},
            "strategy": {"from": {"kind": "DockerImage", "name": format!("reg:5000/b/base@{}", d(3))}},
        });
        referenced.add_object(&object, "reg:5000");
        assert!(referenced.has("a/web", &d(1)) && referenced.has("b/base", &d(3)));
        assert!(!referenced.has("a/web", &d(2)));
        assert!(
            !referenced.digests.contains_key("a/db"),
            "a tag is kept as a registry tag"
        );
        assert_eq!(references(b"not json"), Vec::<String>::new());
    }

    #[test]
    fn tag_history_keeps_the_newest_revisions_and_the_young() {
        use slipway_crds::common::Time;
        use slipway_crds::image::{ImageStreamStatus, NamedTagEventList, TagEvent};
        let at = |secs: i64, n: u8| TagEvent {
            created: Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap()),
            docker_image_reference: format!("reg:5000/team/app@{}", d(n)),
            image: d(n),
            generation: 0,
        };
        let mut stream = ImageStream::new("app", Default::default());
        stream.metadata.namespace = Some("team".into());
        stream.status = Some(ImageStreamStatus {
            tags: vec![NamedTagEventList {
                tag: "live".into(),
                items: vec![at(5000, 5), at(4000, 4), at(3000, 3), at(2000, 2), at(1000, 1)],
                conditions: Vec::new(),
            }],
            ..Default::default()
        });
        let cutoff = SystemTime::UNIX_EPOCH + Duration::from_secs(3500);
        let mut referenced = Referenced::default();
        let trims = stream_keep(&[stream.clone()], "reg:5000", 1, cutoff, &mut referenced);
        // The newest one by count, the one at 4000 by age; 3, 2 and 1 go.
        assert_eq!(trims[0].keep, 2);
        assert_eq!(trims[0].removed, 3);
        assert!(referenced.has("team/app", &d(5)) && referenced.has("team/app", &d(4)));
        assert!(!referenced.has("team/app", &d(3)));
        let mut none = Referenced::default();
        assert!(stream_keep(&[stream], "reg:5000", 5, cutoff, &mut none).is_empty());
    }
}
