//! Tests of `slip` that run Slipway's controllers or webhook in-process against the dev cluster.
//!
//! They live outside the `slip` package so that `slip`'s dependency tree, dev-dependencies
//! included, holds none of the operator's (axum, prometheus-client, oci-client): the CLI
//! depends on `slipway-client` and `slipway-crds` only. The tests are in `tests/`, the
//! benchmark that needs the deploy controller in `benches/`.
