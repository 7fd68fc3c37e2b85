//! Talking to the cluster of the current kubeconfig.

use anyhow::Context;

/// A client for the current kubeconfig context, and the namespace to act in: the one given, or
/// the context's.
pub async fn client(namespace: Option<&str>) -> anyhow::Result<(kube::Client, String)> {
    let config = kube::Config::infer()
        .await
        .context("no usable kubeconfig (set KUBECONFIG, or create ~/.kube/config)")?;
    let namespace = namespace
        .map(str::to_owned)
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).context("creating a Kubernetes client")?;
    Ok((client, namespace))
}

/// Runs a future on a small runtime: the CLI is a short-lived process.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}

/// An API error as the user should read it: the API server's own message (it names the object
/// and the reason); other errors as they are.
pub fn api_error(e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(status) => anyhow::anyhow!("{}", status.message),
        other => other.into(),
    }
}
