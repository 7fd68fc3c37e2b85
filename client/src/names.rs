//! What Kubernetes accepts as a name, with the reason when it does not.

/// A DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a
/// letter or digit (namespaces, Services, most kinds' names).
pub fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && alphanumeric_ends(name) && name.bytes().all(label_byte)
}

/// A DNS-1123 subdomain: at most 253 characters, labels joined by '.' (ConfigMaps, Secrets,
/// custom resources).
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && alphanumeric_ends(name)
        && name.bytes().all(|b| label_byte(b) || b == b'.')
        && name.split('.').all(alphanumeric_ends)
}

/// An environment variable's name: a letter, '_' or '.', then letters, digits, '_', '-' and '.'
/// (what the API server accepts for a container's `env`).
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Checks that `name` is a DNS-1123 subdomain; the error says what a name may be.
pub fn check_subdomain(name: &str) -> Result<(), String> {
    if is_dns_subdomain(name) {
        return Ok(());
    }
    Err(format!(
        "{name:?} is not a valid name: lower-case letters, digits, '-' and '.', starting and ending \
         with a letter or digit, at most 253 characters"
    ))
}

/// Checks that `name` is a DNS-1123 label; the error says what a name may be.
pub fn check_label(name: &str) -> Result<(), String> {
    if is_dns_label(name) {
        return Ok(());
    }
    Err(format!(
        "{name:?} is not a valid name: lower-case letters, digits and '-', starting and ending with \
         a letter or digit, at most 63 characters"
    ))
}

/// A Service port's name (IANA_SVC_NAME): at most 15 lower-case letters, digits and '-', with a
/// letter, no '-' at either end and no "--".
pub fn is_port_name(name: &str) -> bool {
    name.len() <= 15
        && alphanumeric_ends(name)
        && name.bytes().all(label_byte)
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.contains("--")
}

/// An image tag: at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'.
pub fn is_image_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        && !tag.starts_with(['.', '-'])
}

/// Splits an ImageStreamTag's name `stream:tag` (`stream` alone means `latest`) and checks both
/// parts; the error says which part is wrong.
pub fn parse_stream_tag(text: &str) -> Result<(&str, &str), String> {
    let (stream, tag) = text.split_once(':').unwrap_or((text, "latest"));
    let shown: String = text.chars().take(80).collect();
    if !is_dns_subdomain(stream) {
        return Err(format!(
            "{shown:?} is not an image stream tag: the stream name must be lower-case letters, digits, '-' and '.'"
        ));
    }
    if !is_image_tag(tag) {
        return Err(format!(
            "{shown:?} is not an image stream tag: the tag must be letters, digits, '_', '.' and '-', at most 128"
        ));
    }
    Ok((stream, tag))
}

fn label_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

fn alphanumeric_ends(name: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    name.as_bytes().first().is_some_and(alnum) && name.as_bytes().last().is_some_and(alnum)
}

/// The namespace and name of a service account from the user name its tokens carry
/// (`system:serviceaccount:NAMESPACE:NAME`); None for any other user.
pub fn service_account_of(user: &str) -> Option<(&str, &str)> {
    let (namespace, name) = user.strip_prefix("system:serviceaccount:")?.split_once(':')?;
    (is_dns_label(namespace) && !name.is_empty()).then_some((namespace, name))
}

/// The groups every token of a service account of `namespace` carries.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_user_names_give_their_namespace_and_groups() {
        assert_eq!(
            service_account_of("system:serviceaccount:team:builder"),
            Some(("team", "builder"))
        );
        assert_eq!(service_account_of("alice"), None);
        assert_eq!(service_account_of("system:serviceaccount:Team:x"), None);
        assert_eq!(service_account_of("system:serviceaccount:team:"), None);
        assert_eq!(service_account_groups("team")[1], "system:serviceaccounts:team");
    }

    #[test]
    fn labels() {
        for good in ["a", "web", "web-1", "1a", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", &"a".repeat(64), "ä"] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn subdomains() {
        for good in ["a", "a.b", "web-1.example.com", &"a".repeat(253)] {
            assert!(is_dns_subdomain(good), "{good}");
        }
        for bad in ["", ".a", "a.", "a..b", "a.-b", "a-.b", "A.b", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
        assert!(
            check_subdomain("Web")
                .unwrap_err()
                .contains("\"Web\" is not a valid name")
        );
        assert!(check_label("a.b").unwrap_err().contains("at most 63"));
    }

    #[test]
    fn port_names_tags_and_stream_tags() {
        for good in ["http", "8080-tcp", "a1"] {
            assert!(is_port_name(good), "{good}");
        }
        for bad in ["", "8080", "-http", "http-", "h--p", "Http", "abcdefghijklmnop"] {
            assert!(!is_port_name(bad), "{bad}");
        }
        assert!(is_image_tag("v1.2_3-x") && is_image_tag(&"a".repeat(128)));
        for bad in ["", ".a", "-a", "a/b", "a:b", &"a".repeat(129)] {
            assert!(!is_image_tag(bad), "{bad}");
        }
        assert_eq!(parse_stream_tag("web"), Ok(("web", "latest")));
        assert_eq!(parse_stream_tag("web.v2:1.0"), Ok(("web.v2", "1.0")));
        assert!(parse_stream_tag("Web:1").unwrap_err().contains("stream name"));
        assert!(parse_stream_tag("web:").unwrap_err().contains("the tag"));
        assert!(parse_stream_tag("web:a:b").unwrap_err().contains("the tag"));
    }

    #[test]
    fn env_names() {
        for good in ["A", "_x", "a.b", "APP_MODULE", "x-1"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "A B", "A=B", "ä"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
