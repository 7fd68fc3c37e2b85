//! slipway-webhook: Kubernetes admission for Slipway's objects (and, with the builds issue, the
//! git-provider webhooks). Decisions are pure functions in `admission`; `server` is the HTTPS
//! layer, `tls` makes its certificates and `register` tells the API server about it.

pub mod admission;
pub mod register;
pub mod server;
pub mod tls;
