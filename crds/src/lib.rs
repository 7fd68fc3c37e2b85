//! Slipway's API (group `slipway.dev`, version `v1alpha1`) and the pure domain logic that goes
//! with it. Field names and meanings follow OpenShift's build/v1, apps/v1, image/v1, template/v1
//! and project/v1 APIs, so that OpenShift objects become Slipway objects by changing their
//! apiVersion.

// kube's derive takes one `printcolumn(name = .., type_ = ..)` per column; clippy reads the
// repeated keys across columns as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod apps;
pub mod build;
pub mod common;
pub mod contract;
pub mod crdgen;
pub mod dockercfg;
pub mod image;
pub mod image_prune;
pub mod platform;
pub mod process;
pub mod project;
pub mod requester;
pub mod template;

pub use apps::{DeploymentConfig, DeploymentConfigSpec, DeploymentConfigStatus};
pub use build::{Build, BuildConfig, BuildConfigSpec, BuildConfigStatus, BuildSpec, BuildStatus};
pub use image::{ImageStream, ImageStreamSpec, ImageStreamStatus};
pub use image_prune::{ImagePrune, ImagePruneSpec, ImagePruneStatus};
pub use project::{Project, ProjectRequest, ProjectRequestFields, ProjectSpec, ProjectStatus};
pub use template::{Template, TemplateFields, TemplateInstance, TemplateInstanceSpec};

/// The API group of every Slipway kind.
pub const GROUP: &str = "slipway.dev";
/// The API version of every Slipway kind.
pub const VERSION: &str = "v1alpha1";
/// `group/version`, as written in `apiVersion`.
pub const API_VERSION: &str = "slipway.dev/v1alpha1";
/// The field manager of everything the operator writes with server-side apply.
pub const FIELD_MANAGER: &str = "slipway-operator";
