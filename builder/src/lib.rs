//! slipway-builder's library: what the build pod's steps do. `main.rs` only parses arguments.

pub mod contract;
pub mod docker;
pub mod dockerfile;
pub mod fetch;
pub mod image;
pub mod known_hosts;
pub mod layer;
pub mod place_tools;
pub mod progress;
pub mod receive;
pub mod registry;
pub mod result;
pub mod s2i;
pub mod source_images;
pub mod source_url;

#[cfg(test)]
mod reserved_env_tests {
    use clap::{Args, Command};

    /// Each variable a builder step reads its flags from is one a generic webhook's caller may
    /// not set (`slipway_crds::build::RESERVED_ENV`): a new flag cannot be forgotten there.
    #[test]
    fn every_flag_variable_is_reserved() {
        let steps = [
            crate::fetch::FetchArgs::augment_args(Command::new("fetch")),
            crate::receive::ReceiveArgs::augment_args(Command::new("receive")),
            crate::s2i::S2iArgs::augment_args(Command::new("s2i")),
            crate::docker::DockerArgs::augment_args(Command::new("docker")),
        ];
        let mut seen = 0;
        for step in steps {
            for arg in step.get_arguments() {
                if let Some(var) = arg.get_env() {
                    let var = var.to_string_lossy();
                    seen += 1;
                    assert!(
                        slipway_crds::build::is_reserved_env(&var),
                        "{} reads {var}, which RESERVED_ENV lacks",
                        step.get_name()
                    );
                }
            }
        }
        assert!(seen > 20, "only {seen} variables found");
    }
}
