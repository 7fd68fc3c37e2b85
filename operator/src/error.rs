//! The operator's errors: transient ones are retried with backoff, invalid specs are reported in
//! status and wait for a change.

/// An error of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server failed or refused a request of the operator itself.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A client for a requester could not be built.
    #[error("impersonating {user}: {message}")]
    Impersonation { user: String, message: String },
    /// The requester keys cannot be read.
    #[error("requester keys: {0}")]
    RequesterKeys(String),
}

impl Error {
    /// A short label for the failure counter of the metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Impersonation { .. } => "impersonation",
            Self::RequesterKeys(_) => "requester_keys",
        }
    }
}
