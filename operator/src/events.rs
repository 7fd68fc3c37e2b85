//! Publishes the operator's Events (events.k8s.io/v1) with a bounded memory of the recent ones.
//!
//! As kube's `Recorder`: an Event repeated (the same object, type, action and reason) within six
//! minutes of its last occurrence adds to the first one's series (a patch of `series`) instead of
//! making another. Unlike it, only the name, count and time of at most [`RECENT_MAX`] recent
//! Events are kept; kube's keeps every Event of the last six minutes whole, in a map that grows
//! with them — during the first rollout of thousands of DeploymentConfigs (four or five Events
//! each) most of the operator's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;

/// How long after its last occurrence a repeat of an Event still joins its series (kube's).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Recent Events remembered; the oldest are forgotten beyond (a repeat of one then makes a new
/// Event, as after the window).
const RECENT_MAX: usize = 2048;
/// How often forgotten Events are swept out at most (a sweep goes over them all).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// What an Event says, in the words of kube's `Recorder` (see `Context::publish`).
pub struct Note<'a> {
    pub type_: EventType,
    pub action: &'a str,
    pub reason: &'a str,
    pub note: &'a str,
}

/// An Event made recently: where it is, how often it happened, when it last did.
struct Recent {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

#[derive(Default)]
struct Memory {
    recent: HashMap<String, Recent>,
    swept: Option<Timestamp>,
}

impl Memory {
    /// Forgets what is past the series window, then the oldest beyond RECENT_MAX (down to
    /// half of it, so that sweeps stay rare); at most every SWEEP_EVERY unless full.
    fn sweep(&mut self, now: Timestamp) {
        let due = self.swept.is_none_or(|t| since(t, now) >= SWEEP_EVERY);
        if !due && self.recent.len() < RECENT_MAX {
            return;
        }
        self.swept = Some(now);
        self.recent.retain(|_, r| since(r.last, now) < SERIES_WINDOW);
        if self.recent.len() >= RECENT_MAX {
            let mut by_age: Vec<(Timestamp, String)> =
                self.recent.iter().map(|(k, r)| (r.last, k.clone())).collect();
            by_age.sort_unstable();
            let excess = by_age.len() - RECENT_MAX / 2;
            for (_, key) in by_age.into_iter().take(excess) {
                self.recent.remove(&key);
            }
        }
    }

    /// The series of `key` with one more occurrence at `now`, if it is remembered.
    fn repeat(&mut self, key: &str, now: Timestamp) -> Option<(String, String, i32)> {
        self.sweep(now);
        let recent = self.recent.get_mut(key)?;
        if since(recent.last, now) >= SERIES_WINDOW {
            self.recent.remove(key);
            return None;
        }
        recent.count += 1;
        recent.last = now;
        Some((recent.namespace.clone(), recent.name.clone(), recent.count))
    }

    fn remember(&mut self, key: String, recent: Recent) {
        self.recent.insert(key, recent);
    }
}

fn since(then: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(then)).unwrap_or_default()
}

/// Publishes Events as `controller` (and `instance`, the pod).
pub struct Recorder {
    client: Client,
    controller: String,
    instance: Option<String>,
    memory: Mutex<Memory>,
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance,
            memory: Mutex::default(),
        }
    }

    /// Publishes `note` about `regarding`: a new Event, or one more occurrence of a recent one.
    pub async fn publish(&self, note: &Note<'_>, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = key(note, regarding);
        let repeat = self.memory.lock().ok().and_then(|mut m| m.repeat(&key, now));
        if let Some((namespace, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let series = EventSeries {
                count,
                last_observed_time: MicroTime(now),
            };
            let patch = serde_json::json!({ "series": series });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Deleted meanwhile (the API server's TTL, or someone): a new Event.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.event(note, regarding, now);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let name = event.metadata.name.clone().unwrap_or_default();
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        if let Ok(mut memory) = self.memory.lock() {
            memory.remember(
                key,
                Recent {
                    namespace,
                    name,
                    count: 1,
                    last: now,
                },
            );
        }
        Ok(())
    }

    /// A new Event, as kube's `Recorder` makes it.
    fn event(&self, note: &Note<'_>, regarding: &ObjectReference, now: Timestamp) -> Event {
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let base = regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            action: Some(note.action.into()),
            reason: Some(note.reason.into()),
            note: Some(note.note.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            metadata: ObjectMeta {
                namespace: Some(namespace),
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                ..Default::default()
            },
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone().unwrap_or_else(|| self.controller.clone())),
            type_: Some(
                match note.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..Default::default()
        }
    }
}

/// What makes two Events the same occurrence (kube's key, less what is the same for all of
/// this operator's Events).
fn key(note: &Note<'_>, regarding: &ObjectReference) -> String {
    let object = regarding.uid.clone().unwrap_or_else(|| {
        format!(
            "{}/{}/{}/{}",
            regarding.api_version.as_deref().unwrap_or_default(),
            regarding.kind.as_deref().unwrap_or_default(),
            regarding.namespace.as_deref().unwrap_or_default(),
            regarding.name.as_deref().unwrap_or_default()
        )
    });
    let type_ = match note.type_ {
        EventType::Normal => "N",
        EventType::Warning => "W",
    };
    format!("{object}\n{type_}\n{}\n{}", note.action, note.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent(n: i64) -> Recent {
        Recent {
            namespace: "ns".into(),
            name: format!("e{n}"),
            count: 1,
            last: Timestamp::from_second(n).unwrap(),
        }
    }

    #[test]
    fn repeats_join_the_series_within_the_window() {
        let mut memory = Memory::default();
        memory.remember("a".into(), recent(1000));
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        assert_eq!(
            memory.repeat("a", t(1010)),
            Some(("ns".into(), "e1000".into(), 2))
        );
        // The window runs from the last occurrence.
        assert_eq!(
            memory.repeat("a", t(1010 + 359)),
            Some(("ns".into(), "e1000".into(), 3))
        );
        assert_eq!(memory.repeat("a", t(1369 + 360)), None);
        assert_eq!(memory.repeat("a", t(1369 + 361)), None, "forgotten");
        assert_eq!(memory.repeat("b", t(1000)), None);
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest() {
        let mut memory = Memory::default();
        let now = |s: i64| Timestamp::from_second(1_000_000 + s).unwrap();
        for i in 0..(RECENT_MAX as i64 * 3) {
            memory.repeat("none", now(i / 100));
            let mut r = recent(0);
            r.last = now(i / 100);
            memory.remember(format!("k{i}"), r);
            assert!(memory.recent.len() <= RECENT_MAX, "{}", memory.recent.len());
        }
        let last = format!("k{}", RECENT_MAX * 3 - 1);
        assert!(memory.recent.contains_key(&last));
        assert!(!memory.recent.contains_key("k0"));
    }

    #[test]
    fn the_key_tells_objects_and_reasons_apart() {
        let regarding = |uid: &str| ObjectReference {
            uid: Some(uid.into()),
            ..Default::default()
        };
        let note = |reason| Note {
            type_: EventType::Normal,
            action: "Rollout",
            reason,
            note: "n",
        };
        assert_eq!(
            key(&note("RolloutStarted"), &regarding("u1")),
            key(&note("RolloutStarted"), &regarding("u1"))
        );
        assert_ne!(
            key(&note("RolloutStarted"), &regarding("u1")),
            key(&note("RolloutComplete"), &regarding("u1"))
        );
        assert_ne!(
            key(&note("RolloutStarted"), &regarding("u1")),
            key(&note("RolloutStarted"), &regarding("u2"))
        );
    }
}
