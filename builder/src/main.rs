//! slipway-builder: runs inside build pods. It turns a git commit into an image in a registry and
//! reports what it produced through the pod's termination message.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slipway_builder::{docker, fetch, place_tools, receive, s2i};

/// Runs inside Slipway's build pods: fetch source, build, push, report.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Before the command, copy this binary into this directory (a shared volume), as
    /// `place-tools` does: build pods fold placing the tools into their first step, which saves
    /// the start of a container.
    #[arg(long, global = true, env = "PLACE_TOOLS")]
    place_tools: Option<std::path::PathBuf>,
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
    /// Receive a binary build's upload on standard input into the workspace.
    Receive(receive::ReceiveArgs),
    /// Source-to-image build, unprivileged and without a daemon.
    S2i(s2i::S2iArgs),
    /// Dockerfile build through buildah.
    Docker(docker::DockerArgs),
}

/// Runs this program again with `SSL_CERT_FILE` naming Mozilla's roots, written to /dev/shm
/// (never part of a snapshot) or the temporary directory: the registry client cannot start
/// without CA certificates, and images like busybox have none.
fn rerun_with_ca_bundle() -> ExitCode {
    let pem = slipway_builder::registry::mozilla_roots_pem();
    let dir = ["/dev/shm"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let file = match tempfile::Builder::new()
        .prefix("slipway-ca-")
        .suffix(".pem")
        .tempfile_in(&dir)
        .and_then(|mut f| std::io::Write::write_all(&mut f, pem.as_bytes()).map(|()| f))
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "slipway-builder: cannot write a CA bundle to {}: {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| std::path::PathBuf::from("/proc/self/exe"));
    match std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("SSL_CERT_FILE", file.path())
        .status()
    {
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("slipway-builder: cannot run itself again: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Copies this binary into `dir`; false (said on stderr) when it cannot.
fn place(dir: &std::path::Path) -> bool {
    match place_tools::place_tools(dir) {
        Ok(path) => {
            println!("[place-tools] placed {}", path.display());
            true
        }
        Err(e) => {
            eprintln!("slipway-builder place-tools: {e:#}");
            false
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if matches!(args.command, Command::S2i(_) | Command::Docker(_))
        && !slipway_builder::registry::has_ca_bundle()
    {
        return rerun_with_ca_bundle();
    }
    if let Some(dir) = &args.place_tools
        && !place(dir)
    {
        return ExitCode::FAILURE;
    }
    match args.command {
        Command::PlaceTools { dir } => {
            if place(&dir) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Fetch(args) => ExitCode::from(fetch::run(&args)),
        Command::Receive(args) => ExitCode::from(receive::run(&args)),
        Command::S2i(args) => ExitCode::from(s2i::run(&args)),
        Command::Docker(args) => ExitCode::from(docker::run(&args)),
    }
}
