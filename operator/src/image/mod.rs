//! Images: the ImageStream controller (imports, followed tags, scheduled polling) and the image
//! triggers of plain Kubernetes workloads (Deployments, StatefulSets, DaemonSets, CronJobs).

pub mod registry;
pub mod stream;
pub mod triggers;

use std::time::Duration;

use kube::runtime::watcher;

/// How images are handled.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The registry builds push to, `host[:port]`; streams get `<registry>/<namespace>/<name>`.
    pub registry: String,
    /// How often scheduled tags are imported (and failed imports retried).
    pub import_interval: Duration,
    /// Watch this namespace only; all when None.
    pub namespace: Option<String>,
    /// Only reconcile objects with these labels (tests run one controller each).
    pub label_selector: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            registry: "127.0.0.1:15000".into(),
            import_interval: Duration::from_secs(15 * 60),
            namespace: None,
            label_selector: None,
        }
    }
}

impl Settings {
    fn watcher_config(&self) -> watcher::Config {
        match &self.label_selector {
            Some(selector) => watcher::Config::default().labels(selector),
            None => watcher::Config::default(),
        }
    }
}

/// Runs the ImageStream controller and the workload image triggers until shutdown.
pub async fn run(ctx: crate::Context, settings: Settings) {
    futures::join!(
        stream::run(ctx.clone(), settings.clone()),
        triggers::run(ctx, settings)
    );
}
