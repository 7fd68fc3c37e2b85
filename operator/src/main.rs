//! slipway-operator: the controllers of Slipway. One line per controller, each in its own module,
//! as they arrive; for now the binary knows its controllers and says which are not built yet.

use clap::Parser;

/// The controllers the operator will run, in the order of the data flow.
const CONTROLLERS: &[(&str, &str)] = &[
    (
        "build",
        "BuildConfig and Build: instantiate, run policy, build pods, phases, output",
    ),
    ("image", "ImageStream: tags, scheduled imports, lookup policy"),
    (
        "trigger",
        "image-change and config-change triggers of builds and deployments",
    ),
    ("deploy", "DeploymentConfig rollouts: Rolling and Recreate, hooks"),
    (
        "template",
        "TemplateInstance: process and create objects as the requester",
    ),
    (
        "project",
        "ProjectRequest and Project: namespaces, RBAC, quota, isolation",
    ),
];

/// Slipway's controllers for builds, images, deployments, templates and projects.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Run only these controllers (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    controllers: Vec<String>,
    /// List the controllers and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.list {
        for (name, what) in CONTROLLERS {
            println!("{name:10} {what}");
        }
        return std::process::ExitCode::SUCCESS;
    }
    if let Some(unknown) = args
        .controllers
        .iter()
        .find(|c| !CONTROLLERS.iter().any(|(n, _)| n == c))
    {
        eprintln!("slipway-operator: unknown controller '{unknown}'; `--list` shows the controllers");
        return std::process::ExitCode::from(2);
    }
    eprintln!(
        "slipway-operator: the controllers are not implemented in this build yet; \
         the CRDs (charts/slipway/crds/) can be installed and used with kubectl meanwhile"
    );
    std::process::ExitCode::from(3)
}
