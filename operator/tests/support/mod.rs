//! What the operator's tests against the dev cluster share (and the CLI's, which include this
//! file by its path): the CRDs, a client and a namespace of
//! the test ([`Fixture`]), and controllers run in-process, each on a Context of its own
//! ([`Controller`]), stopped when they drop (a failing test's too). A controller's metrics say
//! how far it got: [`Controller::reconciles`] and [`Controller::initial_sync`] are what a test
//! waits on to know that the controller has seen something, before it asserts that nothing
//! came of it.
#![allow(clippy::unwrap_used, dead_code)]

use std::future::Future;
use std::time::Duration;

use kube::Client;
use slipway_operator::Context;
use slipway_testkit::*;

/// The CRDs installed, a client, and a namespace of the test (deleted when the fixture drops).
pub struct Fixture {
    pub client: Client,
    pub ns: TestNamespace,
}

impl Fixture {
    pub async fn start(prefix: &str) -> Self {
        ensure_crds();
        let client = client().await;
        let ns = TestNamespace::new(&client, prefix).await;
        Self { client, ns }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.ns.name
    }

    /// Deletes the namespace without blocking (dropping the fixture does it too).
    pub async fn delete(self) {
        self.ns.delete().await;
    }
}

/// A new operator Context, from `KUBECONFIG` as the operator would infer it.
pub async fn context() -> Context {
    Context::new(kube::Config::infer().await.unwrap()).unwrap()
}

/// A controller running in the test's process, on a Context of its own (its metrics count this
/// controller's reconciles only). Aborted when dropped.
pub struct Controller {
    pub ctx: Context,
    task: tokio::task::JoinHandle<()>,
}

impl Controller {
    /// Runs `run` on a new Context.
    pub async fn start<F, Fut>(run: F) -> Self
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_with(context().await, run)
    }

    /// Runs `run` on `ctx` (a Context set up by the test).
    pub fn start_with<F, Fut>(ctx: Context, run: F) -> Self
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let task = tokio::spawn(run(ctx.clone()));
        Self { ctx, task }
    }

    /// Stops the controller and waits until its task has ended (a kill: no graceful shutdown).
    pub async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Whether the controller's task has ended (a controller runs until stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// A metric of `controller` (`slipway_<name>{controller="<controller>"}`), 0 when absent.
    pub fn metric(&self, name: &str, controller: &str) -> f64 {
        let text = self.ctx.metrics.encode();
        let key = format!("slipway_{name}{{controller=\"{controller}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&key))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// How many reconciles of `controller` have ended.
    pub fn reconciles(&self, controller: &str) -> u64 {
        self.metric("reconcile_duration_seconds_count", controller) as u64
    }

    /// How many reconciles of `controller` have started.
    pub fn started(&self, controller: &str) -> u64 {
        self.metric("reconciliations_total", controller) as u64
    }

    /// Waits until a reconcile of `controller` that started after `mark` (a count of
    /// [`Controller::started`] taken before a change) has ended: more have started, and none
    /// runs now.
    pub async fn reconciled_since(&self, controller: &str, mark: u64) {
        eventually(
            &format!("a reconcile of the {controller} controller after the change"),
            Duration::from_secs(60),
            || async {
                (self.started(controller) > mark && self.metric("reconciles_in_flight", controller) == 0.0)
                    .then_some(())
            },
        )
        .await;
    }

    /// Waits until `controller` has ended `more` reconciles beyond `after`.
    pub async fn reconciled(&self, controller: &str, after: u64, more: u64) {
        eventually(
            &format!("{more} more reconciles of the {controller} controller"),
            Duration::from_secs(60),
            || async { (self.reconciles(controller) >= after + more).then_some(()) },
        )
        .await;
    }

    /// Waits until `controller` has listed its objects and reconciled each of them once, and no
    /// reconcile runs: it has seen everything there was when it started.
    pub async fn initial_sync(&self, controller: &'static str) {
        eventually(
            &format!("the initial sync of the {controller} controller"),
            Duration::from_secs(60),
            || async {
                (self.ctx.metrics.initial_sync_done(controller)
                    && self.metric("reconciles_in_flight", controller) == 0.0)
                    .then_some(())
            },
        )
        .await;
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
}
