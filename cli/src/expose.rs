//! `slip expose svc/NAME` makes an Ingress (networking.k8s.io/v1) for a Service, where `oc
//! expose` makes a Route; with `--gateway GATEWAY` it makes a Gateway API HTTPRoute
//! (gateway.networking.k8s.io/v1) attached to that Gateway instead. `slip expose
//! dc/NAME|deployment/NAME` makes the Service first (its selector the pod template's labels), and
//! an Ingress (or HTTPRoute) too when a host, path or gateway is given. Everything is checked
//! before anything is written: with two objects to make, both are sent as a server dry run
//! first, so a refusal leaves nothing behind.

use anyhow::bail;
use clap::Args;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use serde_json::{Value, json};

use crate::cluster::{block_on, client};
use crate::objects::{self, Kind, WriteFlags, check_name, from_json, to_json};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    slip expose svc/web --hostname web.example.com\n  \
    slip expose svc/web --hostname web.example.com --path /api --tls-secret web-tls\n  \
    slip expose deployment/web --port 8080 --hostname web.example.com\n  \
    slip expose svc/web --gateway infra/shared --hostname web.example.com --path /")]
pub struct ExposeArgs {
    /// svc/NAME, dc/NAME or deployment/NAME.
    target: String,
    /// The host name the Ingress answers for (any host without it).
    #[arg(long)]
    hostname: Option<String>,
    /// The path prefix the Ingress routes (/ by default).
    #[arg(long)]
    path: Option<String>,
    /// The port: of the Service to route to (its first by default), or, for dc/ and deployment/,
    /// the container port the new Service sends to (the first declared by default).
    #[arg(long)]
    port: Option<String>,
    /// A Secret with the TLS certificate and key for the host (kubernetes.io/tls).
    #[arg(long)]
    tls_secret: Option<String>,
    /// The name of the objects made (the target's by default).
    #[arg(long)]
    name: Option<String>,
    /// The IngressClass (the cluster's default without it).
    #[arg(long, conflicts_with = "gateway")]
    ingress_class: Option<String>,
    /// Route through this Gateway (NAME, or NAMESPACE/NAME for a shared one) with an HTTPRoute
    /// instead of an Ingress. Needs the Gateway API in the cluster; TLS is the Gateway's
    /// listener's, so not with --tls-secret.
    #[arg(long, value_name = "[NAMESPACE/]NAME")]
    gateway: Option<String>,
    #[command(flatten)]
    write: WriteFlags,
}

/// A port given as a number or a name (pure).
fn port_value(text: &str) -> anyhow::Result<Value> {
    if let Ok(number) = text.parse::<u16>() {
        if number == 0 {
            bail!("--port 0 is not a port");
        }
        return Ok(json!(number));
    }
    let valid = slipway_client::names::is_port_name(text);
    if !valid {
        bail!("--port {text:?} is neither a port number (1-65535) nor a port name");
    }
    Ok(json!(text))
}

/// The Service's port to route to (pure): `--port` (a number or a name of one of its ports), or
/// its first.
fn service_port(args: &ExposeArgs, service: &Value) -> anyhow::Result<Value> {
    let service_name = service["metadata"]["name"].as_str().unwrap_or_default();
    let ports = service["spec"]["ports"].as_array().cloned().unwrap_or_default();
    Ok(match &args.port {
        Some(text) => {
            let wanted = port_value(text)?;
            let found = ports.iter().find(|p| p["port"] == wanted || p["name"] == wanted);
            let Some(found) = found else {
                bail!("service {service_name} has no port {text}");
            };
            found["port"].clone()
        }
        None => match ports.first() {
            Some(first) => first["port"].clone(),
            None => bail!("service {service_name} has no ports to expose"),
        },
    })
}

/// The Ingress for `service` (pure): one rule, one path, to the service's port.
fn ingress(args: &ExposeArgs, name: &str, service: &Value) -> anyhow::Result<Value> {
    let service_name = service["metadata"]["name"].as_str().unwrap_or_default();
    let port = service_port(args, service)?;
    let path = args.path.clone().unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        bail!("--path {path:?} must start with /");
    }
    let mut rule = json!({"http": {"paths": [{
        "path": path, "pathType": "Prefix",
        "backend": {"service": {"name": service_name, "port": {"number": port}}}
    }]}});
    if let Some(host) = &args.hostname {
        rule["host"] = json!(host);
    }
    let mut spec = json!({"rules": [rule]});
    if let Some(class) = &args.ingress_class {
        spec["ingressClassName"] = json!(class);
    }
    if let Some(secret) = &args.tls_secret {
        check_name(secret)?;
        let hosts: Vec<&String> = args.hostname.iter().collect();
        spec["tls"] = json!([{"hosts": hosts, "secretName": secret}]);
    }
    Ok(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "labels": service["metadata"]["labels"].clone()},
        "spec": spec,
    }))
}

/// `--gateway [NAMESPACE/]NAME` → (namespace if given, name) (pure).
fn parse_gateway(text: &str) -> anyhow::Result<(Option<String>, String)> {
    let (namespace, name) = match text.split_once('/') {
        Some((ns, name)) => {
            slipway_client::names::check_label(ns)
                .map_err(|e| anyhow::anyhow!("--gateway {text:?}: the namespace: {e}"))?;
            (Some(ns.to_string()), name)
        }
        None => (None, text),
    };
    check_name(name).map_err(|e| anyhow::anyhow!("--gateway {text:?}: the name: {e}"))?;
    Ok((namespace, name.to_string()))
}

/// The HTTPRoute for `service` through a Gateway (pure): attached to the Gateway, answering for
/// the host name when given, one path-prefix rule to the service's port.
fn http_route(args: &ExposeArgs, gateway: &str, name: &str, service: &Value) -> anyhow::Result<Value> {
    if args.tls_secret.is_some() {
        bail!(
            "--tls-secret goes on the Gateway's HTTPS listener with the Gateway API (an HTTPRoute carries no certificate); leave it out with --gateway"
        );
    }
    let (gateway_ns, gateway_name) = parse_gateway(gateway)?;
    let service_name = service["metadata"]["name"].as_str().unwrap_or_default();
    let port = service_port(args, service)?;
    if !port.is_number() {
        bail!("an HTTPRoute names a Service port by number; give --port with the number");
    }
    let path = args.path.clone().unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        bail!("--path {path:?} must start with /");
    }
    let mut parent = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway_name});
    if let Some(ns) = gateway_ns {
        parent["namespace"] = json!(ns);
    }
    let mut spec = json!({
        "parentRefs": [parent],
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": path}}],
            "backendRefs": [{"name": service_name, "port": port}],
        }],
    });
    if let Some(host) = &args.hostname {
        spec["hostnames"] = json!([host]);
    }
    Ok(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "labels": service["metadata"]["labels"].clone()},
        "spec": spec,
    }))
}

/// The API of HTTPRoutes in `ns`, when the cluster serves the Gateway API; a clear error when it
/// does not. The Gateway must exist where the user may see it (a Gateway in a namespace the user
/// may not read is left to the Gateway's controller, which reports on the route).
async fn gateway_routes(
    client: &kube::Client,
    ns: &str,
    gateway: &str,
) -> anyhow::Result<Api<DynamicObject>> {
    let group = "gateway.networking.k8s.io";
    let served = match client.list_api_group_resources(&format!("{group}/v1")).await {
        Ok(list) => list.resources.iter().any(|r| r.name == "httproutes"),
        Err(kube::Error::Api(e)) if e.code == 404 => false,
        Err(e) => return Err(crate::cluster::api_error(e)),
    };
    if !served {
        bail!(
            "the cluster has no Gateway API ({group}/v1 HTTPRoute): install its CRDs and a Gateway controller, or expose through an Ingress (leave out --gateway)"
        );
    }
    let (gateway_ns, gateway_name) = parse_gateway(gateway)?;
    let gateway_ns = gateway_ns.unwrap_or_else(|| ns.to_string());
    let gateways: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &gateway_ns,
        &ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(group, "v1", "Gateway"),
            "gateways",
        ),
    );
    match gateways.get_opt(&gateway_name).await {
        Ok(Some(_)) => {}
        Ok(None) => bail!("gateway {gateway_name} not found in namespace {gateway_ns}"),
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        Err(e) => return Err(crate::cluster::api_error(e)),
    }
    Ok(Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(group, "v1", "HTTPRoute"),
            "httproutes",
        ),
    ))
}

/// What routes to the Service: an Ingress, or an HTTPRoute through `--gateway` (its API and
/// object).
async fn front(
    args: &ExposeArgs,
    client: &kube::Client,
    ns: &str,
    name: &str,
    service: &Value,
) -> anyhow::Result<(Api<DynamicObject>, DynamicObject)> {
    match &args.gateway {
        Some(gateway) => {
            let route = from_json(http_route(args, gateway, name, service)?)?;
            Ok((gateway_routes(client, ns, gateway).await?, route))
        }
        None => {
            let ingresses: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                ns,
                &ApiResource::erase::<k8s_openapi::api::networking::v1::Ingress>(&()),
            );
            Ok((ingresses, from_json(ingress(args, name, service)?)?))
        }
    }
}

/// The Service for a DC's or Deployment's pods (pure): selector the pod template's labels, port
/// --port or the first container port.
fn service_for(args: &ExposeArgs, kind: Kind, name: &str, workload: &Value) -> anyhow::Result<Value> {
    let source = workload["metadata"]["name"].as_str().unwrap_or_default();
    let labels = workload["spec"]["template"]["metadata"]["labels"].clone();
    if labels.as_object().is_none_or(serde_json::Map::is_empty) {
        bail!(
            "{}/{source} has no pod template labels to select its pods by",
            kind.short()
        );
    }
    let first_port = workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .next();
    let target = match (&args.port, first_port) {
        (Some(text), _) => port_value(text)?,
        (None, Some(port)) => port["containerPort"].clone(),
        (None, None) => bail!(
            "{}/{source} declares no container port: give --port",
            kind.short()
        ),
    };
    let port = if target.is_number() {
        target.clone()
    } else {
        json!(80)
    };
    Ok(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": workload["metadata"]["labels"].clone()},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}]},
    }))
}

pub fn expose(args: ExposeArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let allowed = [Kind::Service, Kind::DeploymentConfig, Kind::Deployment];
    let (kind, target) = objects::parse_target(&args.target, &allowed, "slip expose")?;
    let name = args.name.clone().unwrap_or_else(|| target.clone());
    check_name(&name)?;
    if let Some(path) = &args.path
        && !path.starts_with('/')
    {
        bail!("--path {path:?} must start with /");
    }
    if let Some(gateway) = &args.gateway {
        parse_gateway(gateway)?;
    }
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let source_api = objects::api(&client, kind, &ns);
        let source = to_json(&objects::get(&source_api, kind, &target, &ns).await?)?;
        let mut made = Vec::new();
        if kind == Kind::Service {
            made.push(front(&args, &client, &ns, &name, &source).await?);
        } else {
            let service = service_for(&args, kind, &name, &source)?;
            let wants_front = args.hostname.is_some()
                || args.path.is_some()
                || args.tls_secret.is_some()
                || args.gateway.is_some();
            let front = if wants_front {
                Some(front(&args, &client, &ns, &name, &service).await?)
            } else {
                None
            };
            made.push((objects::api(&client, Kind::Service, &ns), from_json(service)?));
            made.extend(front);
        }
        args.write.create_all(&made, "exposed").await
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ExposeArgs,
    }

    fn args(extra: &[&str]) -> ExposeArgs {
        let mut argv = vec!["expose", "svc/web"];
        argv.extend_from_slice(extra);
        Wrapper::parse_from(argv).args
    }

    #[test]
    fn an_ingress_routes_the_host_path_and_port_with_tls() {
        let service = json!({"metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]}});
        let made = ingress(
            &args(&[
                "--hostname",
                "w.example.com",
                "--path",
                "/api",
                "--port",
                "admin",
                "--tls-secret",
                "tls",
            ]),
            "web",
            &service,
        )
        .unwrap();
        let path = &made["spec"]["rules"][0]["http"]["paths"][0];
        assert_eq!(made["spec"]["rules"][0]["host"], "w.example.com");
        assert_eq!(path["path"], "/api");
        assert_eq!(path["backend"]["service"]["port"]["number"], 9000);
        assert_eq!(
            made["spec"]["tls"],
            json!([{"hosts": ["w.example.com"], "secretName": "tls"}])
        );
        assert_eq!(made["metadata"]["labels"]["app"], "web");
        let err = ingress(&args(&["--port", "8443"]), "web", &service).unwrap_err();
        assert_eq!(err.to_string(), "service web has no port 8443");
    }

    #[test]
    fn an_http_route_attaches_to_the_gateway_with_the_host_path_and_port() {
        let service = json!({"metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]}});
        let route = http_route(
            &args(&["--hostname", "w.example.com", "--path", "/api", "--port", "admin"]),
            "infra/shared",
            "web",
            &service,
        )
        .unwrap();
        assert_eq!(route["kind"], "HTTPRoute");
        assert_eq!(
            route["spec"]["parentRefs"],
            json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared", "namespace": "infra"}])
        );
        assert_eq!(route["spec"]["hostnames"], json!(["w.example.com"]));
        assert_eq!(
            route["spec"]["rules"][0],
            json!({"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                   "backendRefs": [{"name": "web", "port": 9000}]})
        );
        let local = http_route(&args(&[]), "gw", "web", &service).unwrap();
        assert_eq!(local["spec"]["parentRefs"][0].get("namespace"), None);
        assert!(local["spec"].get("hostnames").is_none());
        let tls = http_route(&args(&["--tls-secret", "t"]), "gw", "web", &service).unwrap_err();
        assert!(tls.to_string().contains("Gateway's HTTPS listener"), "{tls}");
        for bad in ["", "a/b/c", "Bad", "ns/", "/gw", &"g".repeat(300)] {
            assert!(parse_gateway(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_service_selects_the_pod_template_labels_and_needs_a_port() {
        let dc = json!({"metadata": {"name": "web"}, "spec": {"template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "x"}]}}}});
        let err = service_for(&args(&[]), Kind::DeploymentConfig, "web", &dc).unwrap_err();
        assert_eq!(err.to_string(), "dc/web declares no container port: give --port");
        let service = service_for(&args(&["--port", "8080"]), Kind::DeploymentConfig, "web", &dc).unwrap();
        assert_eq!(service["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(service["spec"]["ports"][0]["targetPort"], 8080);
        assert!(port_value("99999").is_err() && port_value("Bad_Name").is_err());
    }
}
