//! The image an S2I build produces, derived from the builder's: its config (the builder's plus the
//! new layer, `Cmd`, env and labels) and its manifest (the builder's layers plus the new one).
//! Pure functions over JSON, so that unknown fields of the builder's documents survive.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::registry::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,
};

/// The label giving where scripts live in the builder image.
pub const LABEL_SCRIPTS_URL: &str = "io.openshift.s2i.scripts-url";
/// The label giving where the source and artifacts go (default `/tmp`).
pub const LABEL_DESTINATION: &str = "io.openshift.s2i.destination";
/// The annotation on the output manifest pointing at the saved artifacts blob.
pub const ANNOTATION_ARTIFACTS: &str = "dev.slipway.s2i.artifacts";

/// A label of the builder image's config.
pub fn label<'a>(config: &'a Value, name: &str) -> Option<&'a str> {
    config.pointer("/config/Labels")?.get(name)?.as_str()
}

/// The builder image's user (`config.User`), empty when unset.
pub fn user(config: &Value) -> &str {
    config
        .pointer("/config/User")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The builder image's `Env`, as pairs.
pub fn env(config: &Value) -> Vec<(String, String)> {
    config
        .pointer("/config/Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The builder image's `Volumes` (paths).
pub fn volumes(config: &Value) -> Vec<String> {
    config
        .pointer("/config/Volumes")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The output image's config: the builder's, plus the layer `diff_id`, `Cmd` = `[run]`, the
/// build's `env` (replacing same-named variables) and `labels`.
pub fn derive_config(
    base: &Value,
    diff_id: &str,
    run: &str,
    env: &[(String, String)],
    labels: &BTreeMap<String, String>,
    created: &str,
) -> Value {
    let mut c = base.clone();
    if !c.is_object() {
        c = json!({});
    }
    let obj = c.as_object_mut().expect("an object");
    obj.entry("architecture").or_insert_with(|| json!("amd64"));
    obj.entry("os").or_insert_with(|| json!("linux"));
    obj.insert("created".into(), json!(created));
    let config = obj.entry("config").or_insert_with(|| json!({}));
    if !config.is_object() {
        *config = json!({});
    }
    let cfg = config.as_object_mut().expect("an object");
    let mut vars: Vec<String> = cfg
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    for (k, v) in env {
        let prefix = format!("{k}=");
        vars.retain(|e| !e.starts_with(&prefix));
        vars.push(format!("{k}={v}"));
    }
    cfg.insert("Env".into(), json!(vars));
    cfg.insert("Cmd".into(), json!([run]));
    let l = cfg.entry("Labels").or_insert_with(|| json!({}));
    if !l.is_object() {
        *l = json!({});
    }
    let lm = l.as_object_mut().expect("an object");
    for (k, v) in labels {
        lm.insert(k.clone(), json!(v));
    }
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    if let Some(ids) = rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
        ids.push(json!(diff_id));
    } else {
        *rootfs = json!({"type": "layers", "diff_ids": [diff_id]});
    }
    let history = obj.entry("history").or_insert_with(|| json!([]));
    if let Some(h) = history.as_array_mut() {
        h.push(json!({"created": created, "created_by": "slipway-builder s2i: assemble"}));
    }
    c
}

/// A new layer's descriptor.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
}

/// The output manifest: the builder's layers (as they were), then `layer`, with `config`.
/// Keeps the builder's manifest family (OCI or Docker v2). Returns the bytes and media type.
pub fn derive_manifest(
    builder_manifest_type: &str,
    builder_layers: &[Value],
    config: &Blob,
    layer: &Blob,
    annotations: &BTreeMap<String, String>,
) -> (Vec<u8>, &'static str) {
    let docker = builder_manifest_type == DOCKER_MANIFEST;
    let (mt, config_mt, layer_mt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    } else {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    };
    let mut layers = builder_layers.to_vec();
    layers.push(json!({"mediaType": layer_mt, "digest": layer.digest, "size": layer.size}));
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "digest": config.digest, "size": config.size},
        "layers": layers,
    });
    if !annotations.is_empty() && !docker {
        m["annotations"] = json!(annotations);
    }
    (serde_json::to_vec(&m).unwrap_or_default(), mt)
}

/// An RFC 3339 UTC timestamp of `secs` since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_builder_and_adds_build() {
        let base = json!({
            "architecture": "amd64", "os": "linux", "unknown": 7,
            "config": {"Env": ["PATH=/bin", "A=old"], "User": "1001", "Labels": {"x": "y"},
                       "Volumes": {"/data": {}}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:a"]},
            "history": [{"created_by": "base"}]
        });
        let labels = BTreeMap::from([("io.openshift.s2i.build.commit.id".to_owned(), "abc".to_owned())]);
        let c = derive_config(
            &base,
            "sha256:b",
            "/usr/libexec/s2i/run",
            &[("A".into(), "new".into()), ("B".into(), "1".into())],
            &labels,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(c["unknown"], 7);
        assert_eq!(c["config"]["Env"], json!(["PATH=/bin", "A=new", "B=1"]));
        assert_eq!(c["config"]["Cmd"], json!(["/usr/libexec/s2i/run"]));
        assert_eq!(c["config"]["Labels"]["x"], "y");
        assert_eq!(c["config"]["Labels"]["io.openshift.s2i.build.commit.id"], "abc");
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:a", "sha256:b"]));
        assert_eq!(c["history"].as_array().unwrap().len(), 2);
        assert_eq!(user(&c), "1001");
        assert_eq!(volumes(&c), vec!["/data".to_owned()]);
        // A hostile base (not an object) still gives a valid config.
        let c = derive_config(&json!([1]), "sha256:b", "/run", &[], &BTreeMap::new(), "t");
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:b"]));
    }

    #[test]
    fn manifest_adds_exactly_one_layer() {
        let layers = vec![json!({"mediaType": OCI_LAYER_GZIP, "digest": "sha256:1", "size": 1})];
        let (bytes, mt) = derive_manifest(
            OCI_MANIFEST,
            &layers,
            &Blob {
                digest: "sha256:c".into(),
                size: 2,
            },
            &Blob {
                digest: "sha256:l".into(),
                size: 3,
            },
            &BTreeMap::new(),
        );
        assert_eq!(mt, OCI_MANIFEST);
        let m: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);
        assert_eq!(m["layers"][0]["digest"], "sha256:1");
        assert_eq!(m["layers"][1]["digest"], "sha256:l");
        assert_eq!(m["config"]["mediaType"], OCI_CONFIG);
        let (_, mt) = derive_manifest(
            DOCKER_MANIFEST,
            &layers,
            &Blob {
                digest: "sha256:c".into(),
                size: 2,
            },
            &Blob {
                digest: "sha256:l".into(),
                size: 3,
            },
            &BTreeMap::new(),
        );
        assert_eq!(mt, DOCKER_MANIFEST);
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
