//! How Slipway's servers log: `RUST_LOG` filters (info by default), as text or as JSON lines.

/// Installs the global subscriber; `json` logs one JSON object per line.
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
}
