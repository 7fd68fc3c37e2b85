//! Builds: instantiating a BuildConfig (shared by triggers, the git webhooks and `slip
//! start-build`), the Build controller (run policy, pods, phases, output, history) and the
//! BuildConfig trigger controller (ConfigChange, ImageChange).

pub mod controller;
pub mod pod;
pub mod policy;
pub mod trigger;
