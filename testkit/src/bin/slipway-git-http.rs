//! slipway-git-http: serves the git repositories under a folder over plain http, fetch and push
//! (`git http-backend` behind a small server), for the demo.
//!
//!   slipway-git-http --root DIR --listen 10.250.0.1:18080

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(about)]
struct Args {
    /// The folder whose NAME.git repositories are served.
    #[arg(long)]
    root: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.root.is_dir() {
        eprintln!("error: --root {} is not a folder", args.root.display());
        return std::process::ExitCode::FAILURE;
    }
    let server = match slipway_testkit::git_http::GitHttp::start(&args.root, args.listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: listening on {}: {e}", args.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("serving {} on http://{}", args.root.display(), server.addr);
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
