//! The integrated registry's token service: Slipway is the issuer of the distribution registry's
//! token authentication (its `docs/spec/auth/token.md`).
//!
//! A registry client (`buildah push`, a kubelet pulling, `docker login`) that the registry
//! answers 401 asks `GET /registry/token?service=<service>&scope=repository:<project>/<stream>:pull,push`
//! here with HTTP Basic credentials whose password is a Kubernetes token (a user's or a service
//! account's; the user name is ignored, as OpenShift's registry ignores it). The token is checked
//! with a TokenReview, and each requested action with a SubjectAccessReview of the token's user
//! on `imagestreams/layers` in the repository's project (`get` for pull, `update` for push, as
//! OpenShift's `system:image-puller` and `system:image-pusher` grant): never with Slipway's own
//! rights. The answer is a short-lived token (see [`token`]) for exactly the actions granted; an
//! action refused is left out, and the registry then refuses the request it was for.

pub mod notify;
pub mod prune;
pub mod token;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReviewSpec};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use token::{Access, Action, Issuer, MAX_SCOPES, Requested};

/// The path of the token endpoint (the registry's `auth.token.realm` ends with it).
pub const TOKEN_PATH: &str = "/registry/token";
/// The longest query string read.
const MAX_QUERY_BYTES: usize = 8 * 1024;
/// The longest `Authorization` header read (a service account token is about 1 KiB).
const MAX_AUTHORIZATION_BYTES: usize = 16 * 1024;
/// The resource whose RBAC decides registry access.
const LAYERS: &str = "imagestreams";
const LAYERS_SUBRESOURCE: &str = "layers";

struct TokenState {
    client: Client,
    issuer: Issuer,
}

/// The router of the token endpoint.
pub fn router(client: Client, issuer: Issuer) -> Router {
    Router::new()
        .route(TOKEN_PATH, get(token_endpoint))
        .with_state(Arc::new(TokenState { client, issuer }))
}

/// A refusal: the status and a message, as JSON; 401s ask for Basic credentials.
fn refuse(status: StatusCode, message: String) -> Response {
    tracing::info!(status = status.as_u16(), %message, "registry token refused");
    let mut response = (
        status,
        Json(json!({"errors": [{"code": code(status), "message": message}]})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Slipway registry: a Kubernetes token as the password\""),
        );
    }
    response
}

fn code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::BAD_REQUEST => "INVALID_REQUEST",
        _ => "UNAVAILABLE",
    }
}

/// What a token request asks for: the service and the scopes (a malformed one refuses all).
fn parse_query(query: &str, service: &str) -> Result<Vec<Requested>, String> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "a query of {} bytes is longer than {MAX_QUERY_BYTES}",
            query.len()
        ));
    }
    let mut asked_service = None;
    let mut scopes = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "service" => asked_service = Some(value.into_owned()),
            // OAuth2 joins scopes with spaces; docker sends one parameter each.
            "scope" => scopes.extend(value.split(' ').filter(|s| !s.is_empty()).map(str::to_string)),
            _ => {}
        }
    }
    match asked_service.as_deref() {
        Some(s) if s == service => {}
        Some(other) => {
            return Err(format!(
                "this token service issues tokens for {service:?}, not {other:?}"
            ));
        }
        None => {
            return Err(format!(
                "the service parameter is missing (this is the token service of {service:?})"
            ));
        }
    }
    if scopes.len() > MAX_SCOPES {
        return Err(format!("{} scopes are more than {MAX_SCOPES}", scopes.len()));
    }
    // One entry per repository, its actions merged: each is asked about once.
    let mut requested: Vec<Requested> = Vec::new();
    for scope in &scopes {
        if let Some(r) = token::parse_scope(scope)? {
            match requested.iter_mut().find(|q| q.repository() == r.repository()) {
                Some(q) => {
                    q.actions.extend(r.actions);
                    q.actions.sort();
                    q.actions.dedup();
                }
                None => requested.push(r),
            }
        }
    }
    Ok(requested)
}

/// The token of HTTP Basic credentials (the password; the user name is not used).
fn basic_password(headers: &HeaderMap) -> Result<String, String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("no credentials: log in with a Kubernetes token as the password")?;
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(format!(
            "the Authorization header is longer than {MAX_AUTHORIZATION_BYTES} bytes"
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    let encoded = value
        .strip_prefix("Basic ")
        .ok_or("only Basic credentials are accepted (a Kubernetes token as the password)")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "the Basic credentials are not base64")?;
    let decoded = String::from_utf8(decoded).map_err(|_| "the Basic credentials are not UTF-8")?;
    let (_, password) = decoded
        .split_once(':')
        .ok_or("the Basic credentials are not user:password")?;
    if password.is_empty() {
        return Err("the password is empty: log in with a Kubernetes token as the password".into());
    }
    Ok(password.to_string())
}

/// Who the API server says the token is, or None when it does not accept it: a token for the API
/// server (a user's, a service account's), or one made for the registry alone (audience
/// `service`: the per-project pull and push Secrets Slipway writes hold such tokens, which the
/// API server itself refuses).
async fn review_token(client: &Client, token: &str, service: &str) -> Result<Option<UserInfo>, kube::Error> {
    for audiences in [None, Some(vec![service.to_string()])] {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences,
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        if let Some(user) = answer
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
        {
            return Ok(Some(user));
        }
    }
    Ok(None)
}

/// Whether `user` may do `action` with the stream `wanted` names.
async fn may(
    client: &Client,
    user: &UserInfo,
    wanted: &Requested,
    action: Action,
) -> Result<bool, kube::Error> {
    let spec = SubjectAccessReviewSpec {
        user: user.username.clone(),
        groups: user.groups.clone(),
        uid: user.uid.clone(),
        extra: user.extra.clone(),
        resource_attributes: Some(ResourceAttributes {
            group: Some(slipway_crds::GROUP.into()),
            resource: Some(LAYERS.into()),
            subresource: Some(LAYERS_SUBRESOURCE.into()),
            verb: Some(action.verb().into()),
            namespace: Some(wanted.namespace.clone()),
            // The stream: a grant limited to some streams (resourceNames) counts.
            name: Some(wanted.stream.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    crate::access::allowed(client, spec).await
}

async fn token_endpoint(
    State(state): State<Arc<TokenState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let requested = match parse_query(query.as_deref().unwrap_or_default(), &state.issuer.service) {
        Ok(r) => r,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    let password = match basic_password(&headers) {
        Ok(p) => p,
        Err(message) => return refuse(StatusCode::UNAUTHORIZED, message),
    };
    let user = match review_token(&state.client, &password, &state.issuer.service).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the API server did not accept the token (expired, revoked or not a Kubernetes token)".into(),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "reviewing a registry login's token");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the token could not be checked now; try again".into(),
            );
        }
    };
    let subject = user.username.clone().unwrap_or_default();
    let mut access = Vec::new();
    for wanted in &requested {
        let checks = wanted
            .actions
            .iter()
            .map(|action| may(&state.client, &user, wanted, *action));
        let answers = futures::future::join_all(checks).await;
        let mut granted = Vec::new();
        for (action, answer) in wanted.actions.iter().zip(answers) {
            match answer {
                Ok(true) => granted.push(*action),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, repository = %wanted.repository(), "checking a registry action");
                    return refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "{} of {} could not be checked now; try again",
                            action.as_str(),
                            wanted.repository()
                        ),
                    );
                }
            }
        }
        tracing::info!(
            user = %subject,
            repository = %wanted.repository(),
            asked = ?wanted.actions,
            granted = ?granted,
            "registry token"
        );
        if !granted.is_empty() {
            access.push(Access::repository(&wanted.repository(), &granted));
        }
    }
    let claims = state.issuer.claims(&subject, access);
    match state.issuer.sign(&claims) {
        Ok(signed) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "token": signed,
                "access_token": signed,
                "expires_in": state.issuer.lifetime.as_secs(),
                "issued_at": k8s_openapi::jiff::Timestamp::now().to_string(),
            })),
        )
            .into_response(),
        Err(message) => refuse(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_service_and_bounded_scopes() {
        let asked = parse_query(
            "service=reg&scope=repository%3Aa%2Fweb%3Apull%2Cpush&scope=registry:catalog:*&account=x",
            "reg",
        )
        .unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].repository(), "a/web");
        let spaced = parse_query(
            "service=reg&scope=repository:a/web:pull+repository:b/api:push",
            "reg",
        )
        .unwrap();
        assert_eq!(spaced.len(), 2);
        let repeated = parse_query(
            "service=reg&scope=repository:a/web:pull&scope=repository:a/web:push&scope=repository:a/web:pull",
            "reg",
        )
        .unwrap();
        assert_eq!(repeated.len(), 1, "{repeated:?}");
        assert_eq!(repeated[0].actions, [Action::Pull, Action::Push]);
        assert!(
            parse_query("scope=repository:a/web:pull", "reg")
                .unwrap_err()
                .contains("missing")
        );
        assert!(
            parse_query("service=other", "reg")
                .unwrap_err()
                .contains("not \"other\"")
        );
        assert!(parse_query("service=reg&scope=repository:a/b/c:pull", "reg").is_err());
        let many = "&scope=repository:a/web:pull".repeat(MAX_SCOPES + 1);
        assert!(
            parse_query(&format!("service=reg{many}"), "reg")
                .unwrap_err()
                .contains("more than")
        );
        assert!(
            parse_query(&"x".repeat(MAX_QUERY_BYTES + 1), "reg")
                .unwrap_err()
                .contains("longer")
        );
    }

    #[test]
    fn basic_credentials_give_the_password_and_anything_else_is_refused() {
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode("anyone:tok:en");
        assert_eq!(
            basic_password(&header(&format!("Basic {encoded}"))).unwrap(),
            "tok:en"
        );
        assert!(basic_password(&HeaderMap::new()).is_err());
        assert!(
            basic_password(&header("Bearer abc"))
                .unwrap_err()
                .contains("only Basic")
        );
        assert!(
            basic_password(&header("Basic !!!"))
                .unwrap_err()
                .contains("base64")
        );
        let empty = base64::engine::general_purpose::STANDARD.encode("user:");
        assert!(
            basic_password(&header(&format!("Basic {empty}")))
                .unwrap_err()
                .contains("empty")
        );
        let huge = format!("Basic {}", "A".repeat(MAX_AUTHORIZATION_BYTES));
        assert!(basic_password(&header(&huge)).unwrap_err().contains("longer"));
    }
}
