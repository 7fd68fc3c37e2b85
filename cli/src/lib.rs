//! slip: the oc-like command-line client of Slipway. The program is [`main`]; it is built as
//! `slip` and as `kubectl-slip` (so `kubectl slip ...` runs it as a kubectl plugin).

mod adm;
pub mod binary;
mod builds;
mod cluster;
mod expose;
mod images;
mod logs;
mod new_app;
mod new_app_template;
mod objects;
mod policy;
mod process;
mod projects;
mod rollout;
mod rollout_deploy;
mod secrets;
mod set;
mod set_edits;
mod status;
mod status_checks;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Process a template into a list of objects (to pipe into `kubectl apply -f -`).
    Process(process::ProcessArgs),
    /// Request a new project and switch to it.
    NewProject(projects::NewProjectArgs),
    /// Show the current project, or switch to another.
    Project(projects::ProjectArgs),
    /// Delete a project and everything in it.
    DeleteProject(projects::DeleteProjectArgs),
    /// List the projects you can access.
    Projects,
    /// Show who the kubeconfig authenticates you as.
    Whoami {
        /// Show your groups too.
        #[arg(long)]
        groups: bool,
    },
    /// Create a build, image stream and deployment from a git URL or an image, or instantiate a
    /// template.
    NewApp(new_app::NewAppArgs),
    /// Create an ImageStream and a BuildConfig that builds a git repository.
    NewBuild(builds::NewBuildArgs),
    /// Start a build of a BuildConfig.
    StartBuild(builds::StartBuildArgs),
    /// Cancel running or queued builds.
    CancelBuild(builds::CancelBuildArgs),
    /// Show the logs of a build, a pod, or the pods of a dc's or deployment's latest version.
    Logs(logs::LogsArgs),
    /// Manage rollouts of a DeploymentConfig or a Deployment: latest, status, history, undo,
    /// pause, resume, restart (cancel and retry: DeploymentConfigs).
    Rollout(rollout::RolloutArgs),
    /// Point image stream tags at an image or at another tag.
    Tag(images::TagArgs),
    /// Import an image from a registry into an image stream tag, and wait for the result.
    ImportImage(images::ImportImageArgs),
    /// Set a property of an object: env, image, resources, probe, volumes, serviceaccount,
    /// triggers, build-hook, build-secret, deployment-hook, image-lookup.
    Set(set::SetArgs),
    /// Expose a Service as an Ingress, or a dc/deployment as a Service (and an Ingress).
    Expose(expose::ExposeArgs),
    /// Manage who may do what in the project: roles for users and groups, who-can.
    Policy(policy::PolicyArgs),
    /// Link secrets to ServiceAccounts, for pulling images or mounting.
    Secrets(secrets::SecretsArgs),
    /// Show the project at a glance: each app's chain from Ingress to build, and warnings.
    Status(status::StatusArgs),
    /// Cluster administration: `adm prune images` removes the integrated registry's images
    /// nothing uses.
    Adm(adm::AdmArgs),
    /// Print a shell completion script: `source <(slip completion bash)`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs slip with the process's arguments; what `slip` and `kubectl-slip` do.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Process(process_args) => process::run(process_args, args.namespace.as_deref()),
        Command::NewProject(a) => projects::new_project(a),
        Command::Project(a) => projects::project(a, args.namespace.as_deref()),
        Command::DeleteProject(a) => projects::delete_project(a),
        Command::Whoami { groups } => projects::whoami(groups),
        Command::Projects => projects::projects(args.namespace.as_deref()),
        Command::NewApp(a) => new_app::new_app(a, args.namespace.as_deref()),
        Command::NewBuild(a) => builds::new_build(a, args.namespace.as_deref()),
        Command::StartBuild(a) => builds::start_build(a, args.namespace.as_deref()),
        Command::CancelBuild(a) => builds::cancel_build(a, args.namespace.as_deref()),
        Command::Logs(a) => logs::logs(a, args.namespace.as_deref()),
        Command::Rollout(a) => rollout::run(a, args.namespace.as_deref()),
        Command::Tag(a) => images::tag(a, args.namespace.as_deref()),
        Command::ImportImage(a) => images::import_image(a, args.namespace.as_deref()),
        Command::Set(a) => set::set(a, args.namespace.as_deref()),
        Command::Expose(a) => expose::expose(a, args.namespace.as_deref()),
        Command::Policy(a) => policy::run(a, args.namespace.as_deref()),
        Command::Secrets(a) => secrets::run(a, args.namespace.as_deref()),
        Command::Status(a) => status::status(a, args.namespace.as_deref()),
        Command::Adm(a) => adm::run(a),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Args::command(), "slip", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
