//! Builds: instantiating a BuildConfig (shared by triggers, the git webhooks and `slip
//! start-build`), and the BuildConfig and Build controllers.

pub mod instantiate;
