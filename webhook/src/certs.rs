//! The webhook's certificates, shared by its replicas through a Secret and rotated by them.
//!
//! Every replica serves the serving certificate of the Secret (`slipway-webhook-tls` in the
//! webhook's namespace by default) and registers the CA bundle of the Secret with the API server
//! (the caBundle of the admission webhook configurations and of the access APIService). So
//! whichever replica registers last, the API server trusts every replica.
//!
//! The Secret is of type `kubernetes.io/tls`: `tls.crt` and `tls.key` (the serving certificate),
//! `ca.crt` and `ca.key` (the CA that signed it), and during a CA rotation `next-ca.crt` and
//! `next-ca.key` (the CA that takes over) or `previous-ca.crt` (the CA that signed before). The
//! first replica to find it missing makes it (a replica that loses the race to create it reads
//! the winner's); a replica that finds a part of it unreadable, for other names, or due, writes
//! it anew with the resourceVersion it read (when another replica wrote in between, it reads
//! again). Each replica reads it again every check interval and whenever it changes (a watch),
//! and on a change serves the new certificate at once (new connections get it; the server does
//! not restart) and registers the bundle again if it changed.
//!
//! Renewal, with the defaults (`Settings`): a serving certificate is valid for 90 days and renewed
//! when less than a third is left; a CA is valid for 5 years, and when less than a third is left
//! a next CA is made. A certificate never outlives the CA that signed it.
//!
//! Why a CA rotation never fails a call from the API server:
//! 1. A new CA only ever *joins* the bundle first: it is written as `next-ca` and signs nothing
//!    yet. Every replica that reads the Secret registers a bundle with it (the current CA, the
//!    next, the previous).
//! 2. It signs only after it has been in the Secret for the trust delay (twice the check
//!    interval, by which time every replica has read it and registered the bundle with it):
//!    at the first renewal of the serving certificate after that, it becomes the CA and the old
//!    one becomes `previous-ca`.
//! 3. The old CA stays in the bundle until it expires, so a replica that has not yet read the
//!    renewed Secret keeps serving a certificate the API server verifies; and since no
//!    certificate outlives its CA, none signed by the old CA is valid once it leaves.
//!
//! A stale replica registers at worst a bundle without a next CA that signs nothing yet, and
//! registers the current one as soon as it reads the Secret. Only a Secret that is deleted, whose
//! CA has expired, or whose CA a starting replica cannot read gets a fresh CA at once (until the
//! replicas register it, the API server's calls can fail); a running replica that finds the CA
//! unreadable writes back the one it read last.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams, WatchEvent, WatchParams};
use tokio::sync::{Notify, watch};

use crate::tls::{self, Ca, Resolver, Serving, Tls};

/// The Secret's default name.
pub const DEFAULT_SECRET: &str = "slipway-webhook-tls";

pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const NEXT_CA_CRT: &str = "next-ca.crt";
pub const NEXT_CA_KEY: &str = "next-ca.key";
pub const PREVIOUS_CA_CRT: &str = "previous-ca.crt";

/// How many times a write that lost to another replica's is tried again.
const MAX_CONFLICTS: usize = 10;

/// How long certificates live and how often they are checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a new CA is valid; the next one is made when a third of that is left.
    pub ca_validity: Duration,
    /// How long a new serving certificate is valid; it is renewed when a third of that is left.
    pub cert_validity: Duration,
    /// How often the Secret is read again, besides when its watch says it changed.
    pub check_interval: Duration,
    /// How long a next CA is in the bundle before it signs (`Settings::new`: two check
    /// intervals, by which every replica has read it and registered it).
    pub trust_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        let check_interval = Duration::from_secs(60);
        Self {
            ca_validity: tls::DEFAULT_CA_VALIDITY,
            cert_validity: tls::DEFAULT_CERT_VALIDITY,
            check_interval,
            trust_delay: 2 * check_interval,
        }
    }
}

impl Settings {
    /// Settings with a trust delay of two check intervals; checked with [`Settings::validate`].
    pub fn new(
        ca_validity: Duration,
        cert_validity: Duration,
        check_interval: Duration,
    ) -> anyhow::Result<Self> {
        let settings = Self {
            ca_validity,
            cert_validity,
            check_interval,
            trust_delay: 2 * check_interval,
        };
        settings.validate()?;
        Ok(settings)
    }

    /// The durations must leave room for the rotation: a CA outlives two serving certificates,
    /// and the renewal window of a serving certificate holds two checks and the trust delay.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.check_interval.is_zero(),
            "the check interval must be positive"
        );
        anyhow::ensure!(
            self.ca_validity >= 2 * self.cert_validity,
            "the CA validity ({:?}) must be at least twice the certificate validity ({:?})",
            self.ca_validity,
            self.cert_validity
        );
        anyhow::ensure!(
            self.cert_validity / 3 >= 2 * self.check_interval && self.cert_validity / 3 >= self.trust_delay,
            "a third of the certificate validity ({:?}) must hold two check intervals ({:?}) and the trust delay ({:?})",
            self.cert_validity,
            self.check_interval,
            self.trust_delay
        );
        Ok(())
    }
}

/// A duration as flags take it: a whole number and a unit, `ms`, `s`, `m`, `h` or `d` (`90d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (ms, s, m, h, d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a whole number and a unit"))?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?}: too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86400),
        _ => Err(format!("{text:?}: the unit is one of ms, s, m, h, d")),
    }
}

/// What the Secret holds; a part that does not read is absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub ca: Option<Ca>,
    pub next_ca: Option<Ca>,
    /// PEM of the CA that signed before the current one.
    pub previous_ca: Option<String>,
    pub serving: Option<Serving>,
}

impl State {
    /// Reads the Secret's data; also says what did not read.
    pub fn from_data(data: &BTreeMap<String, ByteString>) -> (State, Vec<String>) {
        let mut problems = Vec::new();
        // What is not text is no PEM either: it fails to parse below.
        let text = |key: &str| Some(String::from_utf8_lossy(&data.get(key)?.0).into_owned());
        let (ca_crt, ca_key) = (text(CA_CRT), text(CA_KEY));
        let (next_crt, next_key) = (text(NEXT_CA_CRT), text(NEXT_CA_KEY));
        let previous = text(PREVIOUS_CA_CRT);
        let (crt, key) = (text(TLS_CRT), text(TLS_KEY));
        let mut ca = |crt: Option<String>, key: Option<String>, what: &str| match (crt, key) {
            (None, None) => None,
            (Some(crt), Some(key)) => match Ca::parse(&crt, &key) {
                Ok(ca) => Some(ca),
                Err(e) => {
                    problems.push(format!("{what}: {e:#}"));
                    None
                }
            },
            _ => {
                problems.push(format!(
                    "{what}: a certificate without a key or a key without one"
                ));
                None
            }
        };
        let state = State {
            ca: ca(ca_crt, ca_key, "the CA"),
            next_ca: ca(next_crt, next_key, "the next CA"),
            previous_ca: previous.filter(|pem| match tls::not_after(pem) {
                Ok(_) => true,
                Err(e) => {
                    problems.push(format!("the previous CA: {e:#}"));
                    false
                }
            }),
            serving: match (crt, key) {
                (Some(cert_pem), Some(key_pem)) => Some(Serving { cert_pem, key_pem }),
                (None, None) => None,
                _ => {
                    problems.push(
                        "the serving certificate is missing its key, or its key the certificate".into(),
                    );
                    None
                }
            },
        };
        (state, problems)
    }

    /// The Secret's data.
    pub fn to_data(&self) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            data.insert(key.to_string(), ByteString(value.as_bytes().to_vec()));
        };
        if let Some(serving) = &self.serving {
            put(TLS_CRT, &serving.cert_pem);
            put(TLS_KEY, &serving.key_pem);
        }
        if let Some(ca) = &self.ca {
            put(CA_CRT, &ca.cert_pem);
            put(CA_KEY, &ca.key_pem);
        }
        if let Some(next) = &self.next_ca {
            put(NEXT_CA_CRT, &next.cert_pem);
            put(NEXT_CA_KEY, &next.key_pem);
        }
        if let Some(previous) = &self.previous_ca {
            put(PREVIOUS_CA_CRT, previous);
        }
        data
    }

    /// The CAs the API server must trust (PEM): the current one, the next, the previous.
    pub fn ca_bundle(&self) -> String {
        let mut bundle: Vec<&str> = Vec::new();
        let pems = [
            self.ca.as_ref().map(|ca| ca.cert_pem.as_str()),
            self.next_ca.as_ref().map(|ca| ca.cert_pem.as_str()),
            self.previous_ca.as_deref(),
        ];
        for pem in pems.into_iter().flatten().map(str::trim) {
            if !bundle.contains(&pem) {
                bundle.push(pem);
            }
        }
        bundle.iter().map(|pem| format!("{pem}\n")).collect()
    }
}

fn left(end: SystemTime, now: SystemTime) -> Duration {
    end.duration_since(now).unwrap_or_default()
}

/// Brings `state` up to date at `now` for `names`: drops what expired, makes what is missing,
/// renews what is due, following the rotation in the module's comment. Returns what it changed
/// (empty when nothing).
pub fn plan(
    state: &mut State,
    names: &[String],
    now: SystemTime,
    settings: &Settings,
) -> anyhow::Result<Vec<String>> {
    let mut changes = Vec::new();
    if state.next_ca.as_ref().is_some_and(|next| next.not_after <= now) {
        state.next_ca = None;
        changes.push("dropped the next CA, expired".to_string());
    }
    if let Some(previous) = &state.previous_ca
        && tls::not_after(previous).map_or(true, |end| end <= now)
    {
        state.previous_ca = None;
        changes.push("dropped the previous CA from the bundle, expired".to_string());
    }
    if let Some(ca) = &state.ca
        && state.previous_ca.as_deref().map(str::trim) == Some(ca.cert_pem.trim())
    {
        state.previous_ca = None;
    }
    // The CA. One that expired has nothing valid left to verify: the next one (or a new one)
    // takes over at once.
    let current = state.ca.take().filter(|ca| ca.not_after > now);
    let ca = match (current, state.next_ca.take()) {
        (Some(ca), next) => {
            state.next_ca = next;
            ca
        }
        (None, Some(next)) => {
            changes.push("no valid CA: the next CA takes over".into());
            next
        }
        (None, None) => {
            changes.push("no valid CA: made one".into());
            Ca::generate(now, settings.ca_validity)?
        }
    };
    // The next CA, trusted long before it signs.
    if state.next_ca.is_none() && left(ca.not_after, now) < settings.ca_validity / 3 {
        state.next_ca = Some(Ca::generate(now, settings.ca_validity)?);
        changes.push("the CA expires soon: made the next one (trusted now, signing later)".into());
    }
    state.ca = Some(ca);
    // The serving certificate.
    let ca = state.ca.as_ref().context("no CA")?;
    let due = match &state.serving {
        None => Some("no serving certificate".to_string()),
        Some(serving) => match serving.check(ca, names, now) {
            Err(e) => Some(format!("the serving certificate does not do ({e:#})")),
            Ok(end) if left(end, now) < settings.cert_validity / 3 => {
                Some("the serving certificate expires soon".to_string())
            }
            Ok(_) => None,
        },
    };
    if let Some(why) = due {
        if let Some(next) = &state.next_ca
            && now >= next.made_at() + settings.trust_delay
        {
            let next = state.next_ca.take();
            let old = std::mem::replace(&mut state.ca, next);
            state.previous_ca = old.map(|ca| ca.cert_pem);
            changes.push("the next CA, trusted for the trust delay, signs from now on".into());
        }
        let ca = state.ca.as_ref().context("no CA")?;
        state.serving = Some(ca.issue(names, now, settings.cert_validity)?);
        changes.push(format!("{why}: issued a new one"));
    }
    Ok(changes)
}

/// Certificates kept current in the background; dropping this stops that.
pub struct Rotating {
    /// What the servers present, and the bundle to register.
    pub tls: Tls,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rotating {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the certificates for `names` from the Secret `namespace/name` (making them, or new ones,
/// as the module's comment says) and keeps them current: every `settings.check_interval` and
/// whenever the Secret changes. Fails only if the Secret cannot be read or written at start.
pub async fn start(
    client: Client,
    namespace: &str,
    name: &str,
    names: Vec<String>,
    settings: Settings,
) -> anyhow::Result<Rotating> {
    settings.validate()?;
    let keeper = Keeper {
        api: Api::namespaced(client, namespace),
        secret: format!("{namespace}/{name}"),
        name: name.to_string(),
        names,
        settings,
    };
    let state = keeper.sync(None).await?;
    let serving = state.serving.clone().context("no serving certificate")?;
    let resolver = Arc::new(Resolver::new(&serving)?);
    let (bundle, ca_bundle) = watch::channel(state.ca_bundle());
    tracing::info!(secret = %keeper.secret, "serving the certificate of the secret");
    let task = tokio::spawn(keeper.run(state, resolver.clone(), bundle));
    Ok(Rotating {
        tls: Tls { resolver, ca_bundle },
        task,
    })
}

struct Keeper {
    api: Api<Secret>,
    /// NAMESPACE/NAME, for the logs.
    secret: String,
    name: String,
    names: Vec<String>,
    settings: Settings,
}

impl Keeper {
    /// Reads the Secret, and writes it when it needs a change; returns what it holds then.
    /// `last` is what this replica read before: a CA that no longer reads is restored from it.
    async fn sync(&self, last: Option<&State>) -> anyhow::Result<State> {
        for _ in 0..MAX_CONFLICTS {
            let found = self
                .api
                .get_opt(&self.name)
                .await
                .with_context(|| format!("reading the secret {}", self.secret))?;
            let (mut state, problems) = match &found {
                Some(secret) => State::from_data(secret.data.as_ref().unwrap_or(&BTreeMap::new())),
                None => (State::default(), Vec::new()),
            };
            for problem in &problems {
                tracing::warn!(secret = %self.secret, problem, "the certificates' secret is damaged");
            }
            let now = SystemTime::now();
            if found.is_some()
                && state.ca.is_none()
                && let Some(last) = last
                && last.ca.as_ref().is_some_and(|ca| ca.not_after > now)
            {
                tracing::warn!(secret = %self.secret, "writing back the CA this replica read last");
                state.ca = last.ca.clone();
                state.next_ca = state.next_ca.or_else(|| last.next_ca.clone());
                state.previous_ca = state.previous_ca.or_else(|| last.previous_ca.clone());
            }
            let changes = plan(&mut state, &self.names, now, &self.settings)?;
            if changes.is_empty() {
                return Ok(state);
            }
            let written = match found {
                None => {
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/component".to_string(),
                                "webhook".to_string(),
                            )])),
                            ..Default::default()
                        },
                        type_: Some("kubernetes.io/tls".into()),
                        data: Some(state.to_data()),
                        ..Default::default()
                    };
                    self.api.create(&PostParams::default(), &secret).await
                }
                Some(mut secret) => {
                    // The resourceVersion read makes this fail if another replica wrote since.
                    secret.data = Some(state.to_data());
                    secret.string_data = None;
                    secret.metadata.managed_fields = None;
                    self.api
                        .replace(&self.name, &PostParams::default(), &secret)
                        .await
                }
            };
            match written {
                Ok(_) => {
                    tracing::info!(secret = %self.secret, changes = changes.join("; "), "wrote the certificates");
                    return Ok(state);
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    tracing::debug!(secret = %self.secret, "another replica wrote the secret first: reading it again");
                }
                Err(e) => return Err(e).with_context(|| format!("writing the secret {}", self.secret)),
            }
        }
        anyhow::bail!(
            "the secret {} changed under every one of {MAX_CONFLICTS} writes",
            self.secret
        )
    }

    /// Checks the Secret every interval and on every change, and applies what it holds.
    async fn run(self, mut state: State, resolver: Arc<Resolver>, bundle: watch::Sender<String>) {
        let changed = Arc::new(Notify::new());
        let check = async {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.check_interval) => {}
                    _ = changed.notified() => {}
                }
                match self.sync(Some(&state)).await {
                    Ok(new) => {
                        self.apply(&new, &resolver, &bundle);
                        state = new;
                    }
                    Err(e) => {
                        tracing::warn!(secret = %self.secret, error = format!("{e:#}"), "checking the certificates")
                    }
                }
            }
        };
        tokio::join!(check, self.watch(&changed));
    }

    /// Serves the state's certificate and publishes its bundle (to be registered).
    fn apply(&self, state: &State, resolver: &Resolver, bundle: &watch::Sender<String>) {
        if let Some(serving) = &state.serving {
            match resolver.set(serving) {
                Ok(true) => tracing::info!(secret = %self.secret, "serving the renewed certificate"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(secret = %self.secret, error = format!("{e:#}"), "the renewed certificate")
                }
            }
        }
        let new = state.ca_bundle();
        bundle.send_if_modified(|current| {
            if *current == new {
                return false;
            }
            tracing::info!(secret = %self.secret, "the CA bundle changed");
            *current = new;
            true
        });
    }

    /// Wakes `changed` whenever the Secret changes (and when the watch starts again).
    async fn watch(&self, changed: &Notify) {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", self.name))
            .timeout(290);
        loop {
            match self.api.watch(&params, "0").await {
                Ok(events) => {
                    let mut events = std::pin::pin!(events);
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_)) => {
                                changed.notify_one();
                            }
                            Ok(WatchEvent::Bookmark(_)) => {}
                            Ok(WatchEvent::Error(e)) => {
                                tracing::debug!(secret = %self.secret, error = %e, "the watch ended");
                                break;
                            }
                            Err(e) => {
                                tracing::debug!(secret = %self.secret, error = %e, "the watch ended");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(secret = %self.secret, error = %e, "watching the secret"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::UNIX_EPOCH;

    const S: Duration = Duration::from_secs(1);
    const HOUR: Duration = Duration::from_secs(3600);

    fn names() -> Vec<String> {
        vec!["hook.ns.svc".into(), "127.0.0.1".into()]
    }

    fn settings() -> Settings {
        Settings {
            ca_validity: 300 * HOUR,
            cert_validity: 30 * HOUR,
            check_interval: HOUR,
            trust_delay: 2 * HOUR,
        }
    }

    fn start() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn roundtrip(state: &State) -> State {
        let (read, problems) = State::from_data(&state.to_data());
        assert!(problems.is_empty(), "{problems:?}");
        read
    }

    #[test]
    fn durations_read_as_flags_give_them() {
        assert_eq!(parse_duration("90d"), Ok(90 * 24 * HOUR));
        assert_eq!(parse_duration("12h"), Ok(12 * HOUR));
        assert_eq!(parse_duration("5m"), Ok(300 * S));
        assert_eq!(parse_duration("45s"), Ok(45 * S));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn settings_leave_room_for_the_rotation() {
        assert!(Settings::default().validate().is_ok());
        assert!(Settings::new(10 * HOUR, 6 * HOUR, HOUR).is_err());
        assert!(Settings::new(100 * HOUR, 3 * HOUR, HOUR).is_err());
        assert!(Settings::new(100 * HOUR, 6 * HOUR, HOUR).is_ok());
    }

    #[test]
    fn an_empty_secret_gets_a_ca_and_a_certificate_then_is_left_alone() {
        let mut state = State::default();
        let changes = plan(&mut state, &names(), start(), &settings()).unwrap();
        assert!(!changes.is_empty());
        let ca = state.ca.clone().unwrap();
        assert!(state.next_ca.is_none() && state.previous_ca.is_none());
        state
            .serving
            .as_ref()
            .unwrap()
            .check(&ca, &names(), start())
            .unwrap();
        assert_eq!(state.ca_bundle(), format!("{}\n", ca.cert_pem.trim()));
        // Read back from the Secret's data, nothing is due.
        let mut read = roundtrip(&state);
        assert_eq!(read, state);
        assert!(
            plan(&mut read, &names(), start() + HOUR, &settings())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_certificate_for_other_names_or_due_is_reissued_by_the_same_ca() {
        let mut state = State::default();
        plan(&mut state, &names(), start(), &settings()).unwrap();
        let (ca, first) = (state.ca.clone(), state.serving.clone());
        let more = vec!["hook.ns.svc".to_string(), "hook.ns.svc.cluster.local".to_string()];
        assert!(!plan(&mut state, &more, start(), &settings()).unwrap().is_empty());
        assert_eq!(state.ca, ca);
        assert_ne!(state.serving, first);
        let second = state.serving.clone();
        // 19 hours in, 11 of 30 are left: not yet; 21 hours in, 9 are left: renewed.
        assert!(
            plan(&mut state, &more, start() + 19 * HOUR, &settings())
                .unwrap()
                .is_empty()
        );
        assert!(
            !plan(&mut state, &more, start() + 21 * HOUR, &settings())
                .unwrap()
                .is_empty()
        );
        assert_ne!(state.serving, second);
        assert_eq!(state.ca, ca);
    }

    #[test]
    fn damaged_parts_are_reported_and_replaced() {
        let mut state = State::default();
        plan(&mut state, &names(), start(), &settings()).unwrap();
        let mut data = state.to_data();
        data.insert(TLS_CRT.into(), ByteString(b"garbage".to_vec()));
        let (mut read, problems) = State::from_data(&data);
        assert!(problems.is_empty(), "the serving certificate is checked by plan");
        assert!(
            !plan(&mut read, &names(), start(), &settings())
                .unwrap()
                .is_empty()
        );
        assert_eq!(read.ca, state.ca);
        read.serving
            .as_ref()
            .unwrap()
            .check(read.ca.as_ref().unwrap(), &names(), start())
            .unwrap();

        data.insert(CA_CRT.into(), ByteString(b"not a certificate".to_vec()));
        data.insert(CA_KEY.into(), ByteString(vec![0xff, 0xfe]));
        data.insert(PREVIOUS_CA_CRT.into(), ByteString(b"nor this".to_vec()));
        let (mut read, problems) = State::from_data(&data);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(read.ca.is_none() && read.previous_ca.is_none());
        plan(&mut read, &names(), start(), &settings()).unwrap();
        assert_ne!(read.ca, state.ca);
        read.serving
            .as_ref()
            .unwrap()
            .check(read.ca.as_ref().unwrap(), &names(), start())
            .unwrap();
    }

    #[test]
    fn an_expired_ca_is_replaced_at_once() {
        let mut state = State::default();
        plan(&mut state, &names(), start(), &settings()).unwrap();
        let later = start() + 400 * HOUR;
        plan(&mut state, &names(), later, &settings()).unwrap();
        let ca = state.ca.clone().unwrap();
        assert!(ca.not_after > later);
        assert!(state.previous_ca.is_none(), "an expired CA verifies nothing");
        state
            .serving
            .as_ref()
            .unwrap()
            .check(&ca, &names(), later)
            .unwrap();
    }

    /// Steps through three CA lifetimes, one check at a time: every serving certificate is valid
    /// when served and signed by a CA that was in the bundle for the trust delay before, and the
    /// bundle holds both CAs around each rotation.
    #[test]
    fn a_ca_signs_only_once_trusted_and_stays_trusted_while_its_certificates_live() {
        let settings = settings();
        let mut state = State::default();
        let mut now = start();
        plan(&mut state, &names(), now, &settings).unwrap();
        // When each CA (by PEM) first entered the bundle.
        let mut trusted_since: BTreeMap<String, SystemTime> = BTreeMap::new();
        let mut bundles_with_two = 0;
        let mut cas = std::collections::BTreeSet::new();
        // Every certificate served so far, and its CA: a replica that has not yet read the
        // renewed Secret serves an earlier one.
        let mut served: Vec<(Serving, Ca)> = Vec::new();
        let end = start() + 3 * settings.ca_validity;
        while now < end {
            let bundle = state.ca_bundle();
            let in_bundle: Vec<String> = [&state.ca, &state.next_ca]
                .into_iter()
                .flatten()
                .map(|ca| ca.cert_pem.trim().to_string())
                .chain(state.previous_ca.iter().map(|pem| pem.trim().to_string()))
                .collect();
            for pem in &in_bundle {
                assert!(bundle.contains(pem.as_str()));
                trusted_since.entry(pem.clone()).or_insert(now);
            }
            if in_bundle.len() == 2 {
                bundles_with_two += 1;
            }
            let ca = state.ca.clone().unwrap();
            cas.insert(ca.cert_pem.clone());
            let since = trusted_since[ca.cert_pem.trim()];
            assert!(
                since == start() || now.duration_since(since).unwrap() >= settings.trust_delay,
                "a CA signs {:?} after it joined the bundle",
                now.duration_since(since).unwrap()
            );
            state.serving.as_ref().unwrap().check(&ca, &names(), now).unwrap();
            served.push((state.serving.clone().unwrap(), ca.clone()));
            served.retain(|(serving, _)| tls::not_after(&serving.cert_pem).unwrap() > now);
            for (serving, ca) in &served {
                assert!(
                    bundle.contains(ca.cert_pem.trim()),
                    "a live certificate's CA left the bundle"
                );
                serving.check(ca, &names(), now).unwrap();
            }
            // Read back from the Secret at every step, as a replica does.
            state = roundtrip(&state);
            now += settings.check_interval;
            plan(&mut state, &names(), now, &settings).unwrap();
        }
        assert!(cas.len() >= 3, "{} CAs", cas.len());
        assert!(bundles_with_two > 0);
    }
}
