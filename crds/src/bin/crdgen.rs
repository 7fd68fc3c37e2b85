//! Writes Slipway's CRDs as YAML: one file per kind into the directory given (the chart's
//! `crds/` folder), or all of them to stdout as one multi-document stream.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Generate the CustomResourceDefinitions of Slipway.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Write one file per CRD into this directory; print to stdout when absent.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rendered = slipway_crds::crdgen::rendered().context("rendering the CRDs as YAML")?;
    match args.out_dir {
        None => {
            for (_, text) in rendered {
                print!("---\n{text}");
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            // Remove CRDs of kinds that no longer exist, so the folder mirrors the code.
            for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "yaml")
                    && !rendered.iter().any(|(n, _)| path.ends_with(n))
                {
                    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                }
            }
            for (name, text) in &rendered {
                let path = dir.join(name);
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            }
            eprintln!("wrote {} CRDs into {}", rendered.len(), dir.display());
        }
    }
    Ok(())
}
