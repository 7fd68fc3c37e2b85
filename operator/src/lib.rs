//! Slipway's controllers, one module per controller. The binary (`main.rs`) is a table from
//! controller name to its `run` function.

pub mod access;
pub mod build;
pub mod cache;
pub mod context;
pub mod deploy;
pub mod dynamic;
pub mod error;
pub mod events;
pub mod image;
pub mod leader;
pub mod metrics;
pub mod project;
pub mod requester;
pub mod template_instance;

pub use context::Context;
pub use error::Error;
