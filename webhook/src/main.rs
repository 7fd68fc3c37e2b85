//! slipway-webhook: the HTTPS server for git-provider webhooks and Kubernetes admission.

use clap::Parser;

/// HTTPS server for git-provider webhooks (GitHub, GitLab, Bitbucket, Gitea, generic) and for
/// Kubernetes admission (requester stamping, project names, image lookup).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: std::net::SocketAddr,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    eprintln!(
        "slipway-webhook: not implemented in this build yet; it would listen on {} (see the builds and projects issues)",
        args.listen
    );
    std::process::ExitCode::from(3)
}
