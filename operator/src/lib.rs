//! Slipway's controllers, one module per controller, and their table ([`controllers`]): each
//! controller's name, what it watches and how it starts. The binary (`main.rs`) parses the flags
//! into the controllers' settings and runs the ones selected.

pub mod access;
pub mod build;
pub mod cache;
pub mod context;
pub mod controllers;
pub mod deploy;
pub mod dynamic;
pub mod error;
pub mod events;
pub mod image;
pub mod leader;
pub mod metrics;
pub mod project;
pub mod registry_credentials;
pub mod requester;
pub mod template_instance;

pub use context::Context;
pub use error::Error;
