//! slip: the oc-like command-line client of Slipway.

use clap::{Parser, Subcommand};

/// The command-line client of Slipway: projects, builds, deployments and templates on any
/// Kubernetes cluster that runs Slipway. Uses the current kubeconfig.
#[derive(Parser)]
#[command(name = "slip", version, about, long_about = None)]
struct Args {
    /// The namespace (project) to act in; the kubeconfig context's by default.
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Process a template into a list of objects.
    Process,
    /// Request a new project.
    NewProject,
    /// List the projects you can access.
    Projects,
    /// Create a build, image stream and deployment from a git URL or an image.
    NewApp,
    /// Start a build of a BuildConfig.
    StartBuild,
    /// Show the logs of a build.
    Logs,
    /// Manage rollouts of a DeploymentConfig.
    Rollout,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let name = match args.command {
        Command::Process => "process",
        Command::NewProject => "new-project",
        Command::Projects => "projects",
        Command::NewApp => "new-app",
        Command::StartBuild => "start-build",
        Command::Logs => "logs",
        Command::Rollout => "rollout",
    };
    eprintln!("slip {name}: not implemented in this build yet");
    std::process::ExitCode::from(3)
}
