//! The pure parts of `slip set`: parsing what the user typed and editing an object's JSON.

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::objects::Kind;

/// One `slip set env` change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvChange {
    Set(String, String),
    Remove(String),
}

use slipway_client::names::is_env_name as valid_env_name;

/// `KEY=VALUE` and `KEY-` arguments (pure).
pub fn parse_env_changes(items: &[String]) -> anyhow::Result<Vec<EnvChange>> {
    items
        .iter()
        .map(|item| {
            if let Some((key, value)) = item.split_once('=') {
                if !valid_env_name(key) {
                    bail!("invalid environment variable name {key:?} in {item:?}: letters, digits, '_', '-' and '.', not starting with a digit");
                }
                return Ok(EnvChange::Set(key.to_string(), value.to_string()));
            }
            match item.strip_suffix('-') {
                Some(key) if valid_env_name(key) => Ok(EnvChange::Remove(key.to_string())),
                _ => bail!("malformed environment change {item:?}: expected KEY=VALUE or KEY-"),
            }
        })
        .collect()
}

/// Where a BuildConfig's strategy options are (`/spec/strategy/dockerStrategy`...), created
/// when missing.
pub fn strategy_pointer(bc: &mut Value) -> anyhow::Result<&'static str> {
    let (field, pointer) = match bc["spec"]["strategy"]["type"].as_str() {
        Some("Source") => ("sourceStrategy", "/spec/strategy/sourceStrategy"),
        Some("Docker") => ("dockerStrategy", "/spec/strategy/dockerStrategy"),
        other => bail!(
            "a {} build strategy has no pull secret",
            other.unwrap_or("missing")
        ),
    };
    if !bc["spec"]["strategy"][field].is_object() {
        bc["spec"]["strategy"][field] = json!({});
    }
    Ok(pointer)
}

/// The strategy parameters a dc's hook at `point` goes in: `recreateParams` (pre, mid, post) or
/// `rollingParams` (pre, post), created when missing.
pub fn hook_params<'v>(dc: &'v mut Value, point: &str) -> anyhow::Result<&'v mut Map<String, Value>> {
    let strategy = &mut dc["spec"]["strategy"];
    let field = match strategy["type"].as_str().unwrap_or("Rolling") {
        "Recreate" => "recreateParams",
        "Rolling" if point == "mid" => bail!("a Rolling strategy has no mid hook: use --pre or --post"),
        "Rolling" => "rollingParams",
        other => bail!("a {other} strategy has no hooks"),
    };
    if !strategy.is_object() {
        *strategy = json!({"type": "Rolling"});
    }
    if !strategy[field].is_object() {
        strategy[field] = json!({});
    }
    strategy[field]
        .as_object_mut()
        .context("the strategy parameters are not an object")
}

/// Adds a volume to the pod template and mounts it in the containers named (all when empty)
/// (pure). A volume of that name, or a mount at that path, already there is an error.
pub fn add_volume(object: &mut Value, volume: Value, mount: &Value, wanted: &[String]) -> anyhow::Result<()> {
    let name = volume["name"].clone();
    let spec = &mut object["spec"]["template"]["spec"];
    if spec["volumes"]
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x["name"] == name))
    {
        bail!(
            "there is a volume {name} already: remove it first (--remove --name {})",
            name.as_str().unwrap_or_default()
        );
    }
    if !spec["volumes"].is_array() {
        spec["volumes"] = json!([]);
    }
    if let Some(list) = spec["volumes"].as_array_mut() {
        list.push(volume);
    }
    for container in containers(object, wanted)? {
        let cname = container["name"].as_str().unwrap_or_default().to_string();
        if !container["volumeMounts"].is_array() {
            container["volumeMounts"] = json!([]);
        }
        let mounts = container["volumeMounts"]
            .as_array_mut()
            .context("volumeMounts is not a list")?;
        if mounts.iter().any(|m| m["mountPath"] == mount["mountPath"]) {
            bail!(
                "container {cname} mounts something at {} already",
                mount["mountPath"]
            );
        }
        mounts.push(mount.clone());
    }
    Ok(())
}

/// Removes a volume and every mount of it (pure); a volume that is not there is an error.
pub fn remove_volume(object: &mut Value, name: &str) -> anyhow::Result<()> {
    let spec = &mut object["spec"]["template"]["spec"];
    let Some(list) = spec["volumes"]
        .as_array_mut()
        .filter(|v| v.iter().any(|x| x["name"] == name))
    else {
        bail!("there is no volume {name:?}");
    };
    list.retain(|v| v["name"] != name);
    for container in spec["containers"].as_array_mut().into_iter().flatten() {
        if let Some(mounts) = container["volumeMounts"].as_array_mut() {
            mounts.retain(|m| m["name"] != name);
        }
    }
    Ok(())
}

/// The volumes and where each container mounts them, one per line (pure).
pub fn list_volumes(object: &Value) -> String {
    let spec = &object["spec"]["template"]["spec"];
    let mut out = String::new();
    for volume in spec["volumes"].as_array().into_iter().flatten() {
        let name = volume["name"].as_str().unwrap_or_default();
        let kind = volume
            .as_object()
            .and_then(|m| m.keys().find(|k| *k != "name").cloned())
            .unwrap_or_default();
        out.push_str(&format!("{name} ({kind})\n"));
        for container in spec["containers"].as_array().into_iter().flatten() {
            for mount in container["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["name"] == name)
            {
                let cname = container["name"].as_str().unwrap_or_default();
                out.push_str(&format!(
                    "  mounted at {} in container {cname}\n",
                    mount["mountPath"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    out
}

/// Applies the changes to an `env` list in place (pure): a set replaces the variable's value
/// (and any valueFrom), or appends it; a remove drops it.
pub fn apply_env(env: &mut Value, changes: &[EnvChange]) -> anyhow::Result<()> {
    if env.is_null() {
        *env = json!([]);
    }
    let list = env.as_array_mut().context("env is not a list")?;
    for change in changes {
        match change {
            EnvChange::Set(key, value) => {
                let entry = json!({"name": key, "value": value});
                match list.iter_mut().find(|e| e["name"] == json!(key)) {
                    Some(existing) => *existing = entry,
                    None => list.push(entry),
                }
            }
            EnvChange::Remove(key) => list.retain(|e| e["name"] != json!(key)),
        }
    }
    Ok(())
}

/// The env list of a BuildConfig's strategy (created when missing).
pub fn strategy_env(bc: &mut Value) -> anyhow::Result<&mut Value> {
    let strategy = &mut bc["spec"]["strategy"];
    let field = match strategy["type"].as_str() {
        Some("Source") => "sourceStrategy",
        Some("Docker") => "dockerStrategy",
        Some("Custom") => "customStrategy",
        other => bail!(
            "a {} build strategy has no environment",
            other.unwrap_or("missing")
        ),
    };
    if !strategy[field].is_object() {
        strategy[field] = json!({});
    }
    let env = &mut strategy[field]["env"];
    if env.is_null() {
        *env = json!([]);
    }
    Ok(env)
}

/// The pod template's containers named in `wanted` (all when empty); a name that is not there is
/// an error naming the ones that are.
pub fn containers<'v>(object: &'v mut Value, wanted: &[String]) -> anyhow::Result<Vec<&'v mut Value>> {
    let list = object["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .context("the pod template has no containers")?;
    let present: Vec<String> = list
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    if let Some(missing) = wanted.iter().find(|w| !present.contains(w)) {
        bail!(
            "no container {missing:?} (the containers are {})",
            present.join(", ")
        );
    }
    Ok(list
        .iter_mut()
        .filter(|c| wanted.is_empty() || wanted.iter().any(|w| c["name"] == json!(w)))
        .collect())
}

fn env_lines(env: &Value) -> String {
    let mut out = String::new();
    for entry in env.as_array().into_iter().flatten() {
        let name = entry["name"].as_str().unwrap_or_default();
        let from = &entry["valueFrom"];
        if let Some((what, reference)) = [("secret", "secretKeyRef"), ("config map", "configMapKeyRef")]
            .into_iter()
            .find_map(|(what, key)| from[key].is_object().then_some((what, &from[key])))
        {
            let source = reference["name"].as_str().unwrap_or_default();
            let key = reference["key"].as_str().unwrap_or_default();
            out.push_str(&format!("# {name} from {what} {source}, key {key}\n"));
        } else if from.is_object() {
            out.push_str(&format!("# {name} from a field or resource reference\n"));
        } else {
            out.push_str(&format!(
                "{name}={}\n",
                entry["value"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

/// What `slip set env --list` prints: a header per container (or strategy), then KEY=VALUE.
pub fn list_env(kind: Kind, name: &str, object: &Value, wanted: &[String]) -> anyhow::Result<String> {
    if kind == Kind::BuildConfig {
        let mut copy = object.clone();
        let env = strategy_env(&mut copy)?.clone();
        return Ok(format!(
            "# buildconfigs/{name}, build strategy\n{}",
            env_lines(&env)
        ));
    }
    let mut copy = object.clone();
    let mut out = String::new();
    for container in containers(&mut copy, wanted)? {
        let cname = container["name"].as_str().unwrap_or_default();
        let plural = if kind == Kind::DeploymentConfig {
            "deploymentconfigs"
        } else {
            "deployments"
        };
        out.push_str(&format!("# {plural}/{name}, container {cname}\n"));
        out.push_str(&env_lines(&container["env"]));
    }
    Ok(out)
}

/// `A=B` pairs (pure); `what` names the form in errors.
pub fn parse_pairs(items: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
            _ => bail!("malformed {item:?}: expected {what}"),
        })
        .collect()
}

/// A Kubernetes quantity: a decimal number with an optional suffix (pure, an approximation of
/// the API server's grammar that accepts everything it accepts for cpu and memory).
fn valid_quantity(text: &str) -> bool {
    let number_end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '+' || *c == '-'))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    let number_ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    let suffixes = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u",
    ];
    let exponent = suffix.strip_prefix(['e', 'E']).is_some_and(|e| {
        let e = e.trim_start_matches(['+', '-']);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    number_ok && (suffixes.contains(&suffix) || exponent)
}

/// `RESOURCE=QUANTITY` pairs for --limits or --requests (pure).
pub fn parse_quantities(items: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    let pairs = parse_pairs(items, &format!("{flag} RESOURCE=QUANTITY, e.g. cpu=500m"))?;
    for (resource, quantity) in &pairs {
        if !valid_quantity(quantity) {
            bail!("{flag}: {quantity:?} is not a quantity for {resource} (e.g. 500m, 1, 512Mi, 2Gi)");
        }
    }
    Ok(pairs)
}

/// A port: a number 1-65535 or an IANA service name (pure).
fn port(text: &str, flag: &str) -> anyhow::Result<Value> {
    if text.is_empty() {
        bail!("{flag}: the probe has no port");
    }
    if let Ok(number) = text.parse::<u32>() {
        if !(1..=65535).contains(&number) {
            bail!("{flag}: port {number} is not between 1 and 65535");
        }
        return Ok(json!(number));
    }
    let valid = slipway_client::names::is_port_name(text);
    if !valid {
        bail!("{flag}: {text:?} is neither a port number nor a port name");
    }
    Ok(json!(text))
}

/// The probe handler for --get-url, --open-tcp or a command (pure); None when none is given.
pub fn probe_handler(
    get_url: Option<&str>,
    open_tcp: Option<&str>,
    command: &[String],
) -> anyhow::Result<Option<Value>> {
    if let Some(url) = get_url {
        let (scheme, rest) = url
            .split_once("://")
            .with_context(|| format!("--get-url {url:?} is not SCHEME://[HOST]:PORT[/PATH]"))?;
        let scheme = match scheme {
            "http" => "HTTP",
            "https" => "HTTPS",
            other => bail!("--get-url {url:?}: the scheme is http or https, not {other:?}"),
        };
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let Some((host, port_text)) = authority.rsplit_once(':') else {
            bail!(
                "--get-url {url:?} names no port: write it as {}://{authority}:PORT{path}",
                scheme.to_lowercase()
            );
        };
        let mut get = json!({"scheme": scheme, "path": path, "port": port(port_text, "--get-url")?});
        if !host.is_empty() {
            get["host"] = json!(host);
        }
        return Ok(Some(json!({"httpGet": get})));
    }
    if let Some(text) = open_tcp {
        return Ok(Some(json!({"tcpSocket": {"port": port(text, "--open-tcp")?}})));
    }
    if !command.is_empty() {
        return Ok(Some(json!({"exec": {"command": command}})));
    }
    Ok(None)
}

/// The probe: the existing one with its handler replaced (when one is given) and the timing
/// given set; without a handler there must be an existing probe to retime (pure).
pub fn merge_probe(
    existing: Option<&Value>,
    handler: Option<&Value>,
    timing: &[(&str, Option<u32>)],
) -> anyhow::Result<Value> {
    let mut probe: Map<String, Value> = existing.and_then(Value::as_object).cloned().unwrap_or_default();
    match handler {
        Some(handler) => {
            for key in ["httpGet", "tcpSocket", "exec", "grpc"] {
                probe.remove(key);
            }
            probe.extend(handler.as_object().cloned().unwrap_or_default());
        }
        None if existing.is_none() => {
            bail!("there is no probe to change: give --get-url, --open-tcp or -- COMMAND")
        }
        None => {}
    }
    for (field, value) in timing {
        if let Some(value) = value {
            probe.insert((*field).to_string(), json!(value));
        }
    }
    Ok(Value::Object(probe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_changes_set_replace_and_remove() {
        let changes = parse_env_changes(&["A=1".into(), "B=x=y".into(), "C-".into()]).unwrap();
        assert_eq!(changes[1], EnvChange::Set("B".into(), "x=y".into()));
        let mut env = json!([{"name": "A", "value": "0"}, {"name": "C", "value": "gone"},
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]);
        apply_env(&mut env, &changes).unwrap();
        assert_eq!(
            env,
            json!([{"name": "A", "value": "1"},
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "B", "value": "x=y"}])
        );
        assert_eq!(env_lines(&env), "A=1\n# D from secret s, key k\nB=x=y\n");
        let err = parse_env_changes(&["NOEQUALS".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed environment change \"NOEQUALS\": expected KEY=VALUE or KEY-"
        );
        assert!(
            parse_env_changes(&["=v".into()])
                .unwrap_err()
                .to_string()
                .contains("invalid environment variable name")
        );
        assert!(parse_env_changes(&["1A=v".into()]).is_err());
    }

    #[test]
    fn a_bc_env_is_its_strategy_env() {
        let mut bc = json!({"spec": {"strategy": {"type": "Docker"}}});
        apply_env(
            strategy_env(&mut bc).unwrap(),
            &[EnvChange::Set("K".into(), "v".into())],
        )
        .unwrap();
        assert_eq!(
            bc["spec"]["strategy"]["dockerStrategy"]["env"],
            json!([{"name": "K", "value": "v"}])
        );
        let mut jenkins = json!({"spec": {"strategy": {"type": "JenkinsPipeline"}}});
        assert!(strategy_env(&mut jenkins).is_err());
    }

    #[test]
    fn containers_are_chosen_by_name() {
        let mut dc = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}});
        assert_eq!(containers(&mut dc, &[]).unwrap().len(), 2);
        assert_eq!(containers(&mut dc, &["b".into()]).unwrap()[0]["name"], "b");
        let err = containers(&mut dc, &["c".into()]).unwrap_err();
        assert_eq!(err.to_string(), "no container \"c\" (the containers are a, b)");
    }

    #[test]
    fn quantities_are_checked() {
        for good in ["500m", "1", "0.5", "512Mi", "2Gi", "1e3", "100k"] {
            assert!(valid_quantity(good), "{good}");
        }
        for bad in ["", "lots", "512MB", "1.2.3", "m"] {
            assert!(!valid_quantity(bad), "{bad}");
        }
        let err = parse_quantities(&["memory=lots".into()], "--limits").unwrap_err();
        assert!(err.to_string().contains("\"lots\" is not a quantity for memory"));
        assert!(parse_quantities(&["cpu".into()], "--limits").is_err());
    }

    #[test]
    fn probes_need_a_port_and_keep_their_timing() {
        let get = probe_handler(Some("http://:8080/healthz"), None, &[])
            .unwrap()
            .unwrap();
        assert_eq!(
            get,
            json!({"httpGet": {"scheme": "HTTP", "path": "/healthz", "port": 8080}})
        );
        let err = probe_handler(Some("http://localhost/healthz"), None, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--get-url \"http://localhost/healthz\" names no port: write it as http://localhost:PORT/healthz"
        );
        assert!(
            probe_handler(Some("http://:/x"), None, &[])
                .unwrap_err()
                .to_string()
                .contains("no port")
        );
        assert!(
            probe_handler(None, Some(""), &[])
                .unwrap_err()
                .to_string()
                .contains("no port")
        );
        assert!(probe_handler(None, Some("70000"), &[]).is_err());
        let tcp = probe_handler(None, Some("web"), &[]).unwrap().unwrap();
        let existing = json!({"httpGet": {"port": 1}, "periodSeconds": 3});
        let merged = merge_probe(Some(&existing), Some(&tcp), &[("timeoutSeconds", Some(2))]).unwrap();
        assert_eq!(
            merged,
            json!({"tcpSocket": {"port": "web"}, "periodSeconds": 3, "timeoutSeconds": 2})
        );
        assert!(merge_probe(None, None, &[("periodSeconds", Some(1))]).is_err());
    }
}
