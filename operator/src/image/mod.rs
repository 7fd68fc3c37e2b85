//! Images: the ImageStream controller (imports, followed tags, scheduled polling) and the image
//! triggers of plain Kubernetes workloads (Deployments, StatefulSets, DaemonSets, CronJobs).

pub mod credentials;
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

/// `90`, `90s`, `15m` or `1h` as a duration of at least one second (the import interval flag).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30s, 15m or 1h"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .filter(|s| *s >= 1)
    .ok_or_else(|| format!("{text:?} is not a duration of at least 1s such as 30s, 15m or 1h"))?;
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_interval("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_interval("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "0s", "m", "-1m", "1.5m", "1d", "99999999999999999999h", "5 m"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
