//! CORS on the local HTTP API, as the template's `CorsConfiguration` sets it and API Gateway
//! applies it ("Configure CORS for HTTP APIs in API Gateway"), so a page in a browser works
//! locally exactly as against the deployed stage:
//!
//! - A **preflight** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//!   by the gateway itself, `204`, before any route or authorizer, whatever the path: a
//!   preflight carries no token, and never reaches the JWT authorizer or a function. For an
//!   allowed origin the answer lists the configured methods, headers and max age; for any other
//!   origin it carries no CORS header, and the browser refuses the request it was asking about.
//! - Every **other response** to a request from an allowed origin carries
//!   `Access-Control-Allow-Origin` (and the configured exposed headers and credentials flag);
//!   one to another origin carries none. CORS headers a function returns are dropped: API
//!   Gateway ignores an integration's CORS headers once CORS is configured.
//!
//! The gateway's own refusals (the JWT authorizer's 401, a 404 without a route) carry the
//! headers too, so a page can read them; API Gateway's guide promises the headers on
//! integration responses and says nothing of its own refusals (HTTP APIs have no gateway
//! responses to configure them). Without a `CorsConfiguration` nothing here applies: an
//! `OPTIONS` request is routed like any other (404 without an `OPTIONS` route), as on AWS.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use stacks::template::{self, prop};

/// A `CorsConfiguration`, as the template writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<i64>,
    pub allow_credentials: bool,
}

impl Cors {
    /// The `CorsConfiguration` of an API's properties, if it has one.
    pub fn of_api(properties: &Value) -> Option<Cors> {
        let cors = prop(properties, "CorsConfiguration");
        if !cors.is_object() {
            return None;
        }
        Some(Cors {
            allow_origins: template::strings(prop(cors, "AllowOrigins")),
            allow_methods: template::strings(prop(cors, "AllowMethods")),
            allow_headers: template::strings(prop(cors, "AllowHeaders")),
            expose_headers: template::strings(prop(cors, "ExposeHeaders")),
            max_age: prop(cors, "MaxAge").as_i64(),
            allow_credentials: template::is_true(prop(cors, "AllowCredentials")),
        })
    }

    /// Whether a request is a preflight: `OPTIONS` asking, from an origin, about a method.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The gateway's answer to a preflight from `origin`.
    pub fn preflight(&self, origin: Option<&str>) -> Response {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Some(allowed) = origin.and_then(|origin| self.allowed_origin(origin)) {
            let headers = response.headers_mut();
            self.allow(headers, &allowed);
            set(headers, header::ACCESS_CONTROL_ALLOW_METHODS, &self.allow_methods.join(","));
            set(headers, header::ACCESS_CONTROL_ALLOW_HEADERS, &self.allow_headers.join(","));
            if let Some(max_age) = self.max_age {
                set(headers, header::ACCESS_CONTROL_MAX_AGE, &max_age.to_string());
            }
        }
        response
    }

    /// `response`, to a request from `origin`, as the browser gets it: the function's CORS
    /// headers dropped, the configured ones added for an allowed origin.
    pub fn apply(&self, origin: Option<&str>, response: &mut Response) {
        let headers = response.headers_mut();
        let theirs: Vec<HeaderName> =
            headers.keys().filter(|name| name.as_str().starts_with("access-control-")).cloned().collect();
        for name in theirs {
            headers.remove(name);
        }
        if let Some(allowed) = origin.and_then(|origin| self.allowed_origin(origin)) {
            self.allow(headers, &allowed);
            if !self.expose_headers.is_empty() {
                set(headers, header::ACCESS_CONTROL_EXPOSE_HEADERS, &self.expose_headers.join(","));
            }
        }
    }

    /// What `Access-Control-Allow-Origin` says to `origin`: the origin itself when listed, `*`
    /// when every origin is (and credentials are not allowed); `None` for any other origin.
    fn allowed_origin(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|allowed| allowed == origin) {
            return Some(origin.to_owned());
        }
        let wildcard = self.allow_origins.iter().any(|allowed| allowed == "*");
        match (wildcard, self.allow_credentials) {
            (true, false) => Some("*".to_owned()),
            (true, true) => Some(origin.to_owned()),
            (false, _) => None,
        }
    }

    fn allow(&self, headers: &mut HeaderMap, origin: &str) {
        set(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.allow_credentials {
            set(headers, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        if origin != "*" {
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
    }
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cors() -> Cors {
        Cors::of_api(&json!({"CorsConfiguration": {
            "AllowOrigins": ["http://localhost:4512"],
            "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["Authorization", "Content-Type"],
            "MaxAge": 7200,
        }}))
        .expect("configured")
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers().get(name).and_then(|value| value.to_str().ok())
    }

    #[test]
    fn the_configuration_reads_from_the_api() {
        let cors = cors();
        assert_eq!(cors.allow_origins, ["http://localhost:4512"]);
        assert_eq!((cors.max_age, cors.allow_credentials), (Some(7200), false));
        assert_eq!(Cors::of_api(&json!({"Name": "x"})), None);
    }

    #[test]
    fn a_preflight_is_answered_for_an_allowed_origin_only() {
        let allowed = cors().preflight(Some("http://localhost:4512"));
        assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&allowed, "access-control-allow-origin"), Some("http://localhost:4512"));
        assert_eq!(header(&allowed, "access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(header(&allowed, "access-control-allow-headers"), Some("Authorization,Content-Type"));
        assert_eq!(header(&allowed, "access-control-max-age"), Some("7200"));
        let refused = cors().preflight(Some("https://elsewhere.example"));
        assert_eq!(refused.status(), StatusCode::NO_CONTENT);
        assert!(refused.headers().keys().all(|name| !name.as_str().starts_with("access-control-")));
    }

    #[test]
    fn responses_carry_the_origin_for_allowed_origins_and_never_the_functions_cors_headers() {
        let answered = || {
            let mut response = StatusCode::OK.into_response();
            response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            response
        };
        let mut allowed = answered();
        cors().apply(Some("http://localhost:4512"), &mut allowed);
        assert_eq!(header(&allowed, "access-control-allow-origin"), Some("http://localhost:4512"));
        assert_eq!(header(&allowed, "vary"), Some("origin"));
        for origin in [Some("https://elsewhere.example"), None] {
            let mut refused = answered();
            cors().apply(origin, &mut refused);
            assert_eq!(header(&refused, "access-control-allow-origin"), None, "{origin:?}");
        }
    }

    #[test]
    fn a_wildcard_allows_every_origin() {
        let cors = Cors { allow_origins: vec!["*".into()], ..cors() };
        assert_eq!(header(&cors.preflight(Some("https://a.example")), "access-control-allow-origin"), Some("*"));
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://a.example"));
        assert!(!Cors::is_preflight(&Method::OPTIONS, &headers), "no method asked about");
        headers.insert(header::ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("POST"));
        assert!(Cors::is_preflight(&Method::OPTIONS, &headers));
        assert!(!Cors::is_preflight(&Method::POST, &headers));
    }
}
