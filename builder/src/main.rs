//! slipway-builder: runs inside build pods. It turns a git commit into an image in a registry and
//! reports what it produced through the pod's termination message.

use clap::{Parser, Subcommand};

/// Runs inside Slipway's build pods: fetch source, build, push, report.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy this binary into a shared volume, so any builder image can run it.
    PlaceTools {
        /// The directory of the shared volume.
        dir: std::path::PathBuf,
    },
    /// Clone the build's source at its ref into the workspace.
    Fetch,
    /// Source-to-image build, unprivileged and without a daemon.
    S2i,
    /// Dockerfile build through buildah.
    Docker,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let name = match args.command {
        Command::PlaceTools { .. } => "place-tools",
        Command::Fetch => "fetch",
        Command::S2i => "s2i",
        Command::Docker => "docker",
    };
    eprintln!("slipway-builder {name}: not implemented in this build yet (see the builder issue)");
    std::process::ExitCode::from(3)
}
