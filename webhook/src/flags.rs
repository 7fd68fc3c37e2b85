//! What the server's flags mean, decided before anything runs (pure, so `--check-flags` and the
//! tests see the same answers as the server): where the API server reaches it, the names its
//! certificate must carry, and the access API's Service.

use crate::register::Endpoint;

/// Where the API server reaches this server, from `--url https://HOST:PORT` or `--service
/// NAMESPACE/NAME:PORT`, and the host names it calls (the first is the one it calls admission at).
pub fn endpoint(url: Option<&str>, service: Option<&str>) -> Result<(Endpoint, Vec<String>), String> {
    match (url, service) {
        (Some(url), None) => {
            let host = url
                .strip_prefix("https://")
                .ok_or("--url must be an https URL")?
                .split(['/', ':'])
                .next()
                .unwrap_or_default();
            if host.is_empty() {
                return Err("--url must name a host: https://HOST:PORT".into());
            }
            Ok((Endpoint::Url(url.to_string()), vec![host.to_string()]))
        }
        (None, Some(service)) => {
            const FORM: &str = "--service takes NAMESPACE/NAME:PORT";
            let (namespace, rest) = service.split_once('/').ok_or(FORM)?;
            let (name, port) = rest.split_once(':').ok_or(FORM)?;
            let port: i32 = port
                .parse()
                .ok()
                .filter(|p| (1..=65535).contains(p))
                .ok_or("--service: the port must be a number from 1 to 65535")?;
            // The API server calls NAME.NAMESPACE.svc (the first name).
            let names = vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
            ];
            let endpoint = Endpoint::Service {
                namespace: namespace.into(),
                name: name.into(),
                port,
            };
            Ok((endpoint, names))
        }
        _ => Err(
            "say where the API server reaches this server: --url https://HOST:PORT or --service NAMESPACE/NAME:PORT"
                .into(),
        ),
    }
}

/// The access API's Service, NAMESPACE/NAME, when the access API is served.
pub fn access_service(serving: bool, service: &str) -> Result<Option<(String, String)>, String> {
    if !serving {
        return Ok(None);
    }
    let (namespace, name) = service
        .split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
        .ok_or("--access-service takes NAMESPACE/NAME")?;
    Ok(Some((namespace.into(), name.into())))
}

/// The names of the one certificate both servers share: `(all it carries, those the API server
/// calls)`. A certificate made elsewhere must carry the called names; one made here gets all.
pub fn certificate_names(
    names: Vec<String>,
    access: Option<&(String, String)>,
) -> (Vec<String>, Vec<String>) {
    let mut called: Vec<String> = names.first().cloned().into_iter().collect();
    let mut all = names;
    if let Some((namespace, service)) = access {
        let access = crate::access::service_dns_name(namespace, service);
        for name in [access.clone(), "localhost".into()] {
            if !all.contains(&name) {
                all.push(name);
            }
        }
        if !called.contains(&access) {
            called.push(access);
        }
    }
    (all, called)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_a_url_or_a_service() {
        let (endpoint, names) = endpoint(Some("https://10.0.0.1:8443/x"), None).unwrap();
        assert!(matches!(endpoint, Endpoint::Url(u) if u == "https://10.0.0.1:8443/x"));
        assert_eq!(names, ["10.0.0.1"]);
        let (endpoint, names) = super::endpoint(None, Some("slipway-system/slipway-webhook:443")).unwrap();
        assert!(matches!(endpoint, Endpoint::Service { port: 443, .. }));
        assert_eq!(
            names,
            [
                "slipway-webhook.slipway-system.svc",
                "slipway-webhook.slipway-system.svc.cluster.local"
            ]
        );
        for (url, service, error) in [
            (Some("http://x"), None, "https URL"),
            (Some("https://"), None, "name a host"),
            (None, Some("ns/name"), "NAMESPACE/NAME:PORT"),
            (None, Some("ns/name:http"), "port must be a number"),
            (None, Some("ns/name:70000"), "port must be a number"),
            (None, None, "say where"),
        ] {
            let got = super::endpoint(url, service).unwrap_err();
            assert!(got.contains(error), "{url:?} {service:?}: {got}");
        }
    }

    #[test]
    fn the_certificate_carries_the_access_service_and_localhost() {
        let names = vec!["w.ns.svc".to_string(), "w.ns.svc.cluster.local".to_string()];
        let access = access_service(true, "ns/acc").unwrap();
        let (all, called) = certificate_names(names.clone(), access.as_ref());
        assert_eq!(
            all,
            ["w.ns.svc", "w.ns.svc.cluster.local", "acc.ns.svc", "localhost"]
        );
        assert_eq!(called, ["w.ns.svc", "acc.ns.svc"]);
        let (all, called) = certificate_names(names, None);
        assert_eq!(all.len(), 2);
        assert_eq!(called, ["w.ns.svc"]);
        assert_eq!(access_service(false, "junk").unwrap(), None);
        assert!(access_service(true, "junk").is_err());
    }
}
