//! slipway-builder: runs inside build pods. It turns a git commit into an image in a registry and
//! reports what it produced through the pod's termination message.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slipway_builder::{fetch, place_tools};

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
    Fetch(fetch::FetchArgs),
    /// Source-to-image build, unprivileged and without a daemon.
    S2i,
    /// Dockerfile build through buildah.
    Docker,
}

fn main() -> ExitCode {
    match Args::parse().command {
        Command::PlaceTools { dir } => match place_tools::place_tools(&dir) {
            Ok(path) => {
                println!("[place-tools] placed {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("slipway-builder place-tools: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Fetch(args) => ExitCode::from(fetch::run(&args)),
        Command::S2i | Command::Docker => {
            eprintln!("slipway-builder: this subcommand is not implemented in this build yet");
            ExitCode::from(3)
        }
    }
}
