//! slipway-builder's library: what the build pod's steps do. `main.rs` only parses arguments.

pub mod fetch;
pub mod known_hosts;
pub mod place_tools;
pub mod progress;
pub mod result;
pub mod source_url;
