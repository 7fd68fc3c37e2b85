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
pub mod registry;
pub mod result;
pub mod s2i;
pub mod source_url;
