//! A stage's account settings: what belongs to the AWS account and the identity provider a
//! stage is deployed with, as opposed to limits and sizes, which stay in code. Each stage has one
//! reviewed YAML file, `stacks/stages/<stage>.yaml`:
//!
//! ```yaml
//! region: eu-west-1
//! identity:                  # who issues speaker tokens (the HTTP API's JWT authorizer)
//!   issuer: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123
//!   jwks_url: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/jwks.json
//!   audiences: [1h2g3f4e5d6c7b8a9z0y1x2w3v]   # Cognito: the app client ids
//! cors:
//!   allowed_origins: [https://console.example.org]
//! examples: []               # keys above still holding this repository's example values
//! ```
//!
//! Unknown keys are refused, and every value is checked ([`parse`]): an error names the file,
//! the key and what is expected. `examples` lists the keys whose values are the repository's
//! examples rather than an account's; `cargo xtask synth --stage`, `deploy` and `diff` refuse a
//! stage while it lists any (docs/infrastructure.md, "Settings a new account must change").
//!
//! This module is also compiled into the crate's build script, which validates every stage file
//! before the crate builds, so it uses nothing but `std`, serde and serde-saphyr.

use serde::Deserialize;
use std::fmt;

/// The keys of a stage file whose values an account supplies, as `examples` names them.
pub const SETTING_KEYS: [&str; 5] =
    ["region", "identity.issuer", "identity.jwks_url", "identity.audiences", "cors.allowed_origins"];

/// A stage file, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// The region the stack is deployed to.
    pub region: String,
    /// Who issues speaker tokens.
    pub identity: JwtSettings,
    /// Which web pages may call the HTTP API.
    pub cors: CorsOrigins,
    /// The keys ([`SETTING_KEYS`]) whose values are still this repository's examples.
    #[serde(default)]
    pub examples: Vec<String>,
}

/// How speaker tokens are issued: exactly what the HTTP API's JWT authorizer is configured with,
/// and what the `$connect` authorizer and the `connection` function check tokens against.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// The exact `iss` of the tokens (Cognito: `https://cognito-idp.<region>.amazonaws.com/<pool id>`).
    pub issuer: String,
    /// Where the issuer publishes its keys: the `jwks_uri` of the issuer's discovery document,
    /// which is where API Gateway fetches them (Cognito: `<issuer>/.well-known/jwks.json`).
    pub jwks_url: String,
    /// A token's `aud`, or without one its `client_id`, must be one of these (Cognito: the app
    /// client ids; ID tokens carry it in `aud`, access tokens in `client_id`).
    pub audiences: Vec<String>,
}

/// The `cors` section of a stage file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsOrigins {
    /// Origins (`scheme://host[:port]`) whose pages may call the HTTP API from a browser.
    pub allowed_origins: Vec<String>,
}

/// Why a stage file is refused: the file, the key (when one is at fault) and what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub file: String,
    /// The key at fault (`identity.issuer`), or `None` when the file does not read as a stage
    /// file at all (then the problem names the line and the key, as the YAML reader says).
    pub key: Option<String>,
    pub problem: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.file, self.problem),
            None => write!(f, "{}: {}", self.file, self.problem),
        }
    }
}

impl std::error::Error for SettingsError {}

/// Reads and checks the stage file `file` (its path, for messages) holding `text`.
pub fn parse(file: &str, text: &str) -> Result<AccountSettings, SettingsError> {
    let settings: AccountSettings = serde_saphyr::from_str(text).map_err(|error| SettingsError {
        file: file.to_owned(),
        key: None,
        problem: format!(
            "{error} (expected exactly the keys region, identity.issuer, identity.jwks_url, identity.audiences, \
             cors.allowed_origins and optionally examples)"
        ),
    })?;
    settings.check().map_err(|(key, problem)| SettingsError { file: file.to_owned(), key: Some(key), problem })?;
    Ok(settings)
}

/// A refused value: the key and what is expected of it.
type Refusal = (String, String);

fn refuse(key: &str, problem: impl Into<String>) -> Refusal {
    (key.to_owned(), problem.into())
}

impl AccountSettings {
    fn check(&self) -> Result<(), Refusal> {
        check_region(&self.region)?;
        check_identity(&self.identity)?;
        check_origins(&self.cors.allowed_origins)?;
        check_examples(&self.examples)
    }
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`: two letters, words, a number, joined by dashes.
fn check_region(region: &str) -> Result<(), Refusal> {
    let parts: Vec<&str> = region.split('-').collect();
    let well_formed = parts.len() >= 3
        && parts.first().is_some_and(|first| first.len() == 2)
        && parts.last().is_some_and(|last| !last.is_empty() && last.bytes().all(|byte| byte.is_ascii_digit()))
        && parts[..parts.len() - 1].iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()));
    if well_formed {
        Ok(())
    } else {
        Err(refuse("region", format!("{region:?} is not an AWS region: expected a name such as eu-west-1")))
    }
}

fn check_identity(identity: &JwtSettings) -> Result<(), Refusal> {
    let issuer = Url::https(&identity.issuer).map_err(|problem| {
        refuse(
            "identity.issuer",
            format!(
                "{:?} {problem}: expected the https:// URL the tokens carry in `iss` \
                 (Cognito: https://cognito-idp.<region>.amazonaws.com/<user pool id>)",
                identity.issuer
            ),
        )
    })?;
    if let Some(region) = issuer.host.strip_prefix("cognito-idp.").and_then(|rest| rest.strip_suffix(".amazonaws.com"))
    {
        let pool = issuer.path.strip_prefix('/').unwrap_or_default();
        let in_region = pool.split_once('_').is_some_and(|(pool_region, id)| pool_region == region && !id.is_empty());
        if !in_region || pool.contains('/') {
            return Err(refuse(
                "identity.issuer",
                format!(
                    "{:?} is not a Cognito user pool's issuer: expected \
                     https://cognito-idp.{region}.amazonaws.com/{region}_<pool id>, the pool's region in both places",
                    identity.issuer
                ),
            ));
        }
    }
    check_jwks_url(identity, &issuer)?;
    check_audiences(&identity.audiences)
}

/// The keys must be the issuer's: API Gateway fetches them through the issuer's discovery
/// document, and keys from anywhere else would make the functions trust other tokens than the
/// HTTP API does.
fn check_jwks_url(identity: &JwtSettings, issuer: &Url<'_>) -> Result<(), Refusal> {
    let key = "identity.jwks_url";
    let jwks = Url::https(&identity.jwks_url).map_err(|problem| {
        refuse(key, format!("{:?} {problem}: expected the https:// URL of the issuer's key set", identity.jwks_url))
    })?;
    if issuer.host.starts_with("cognito-idp.") {
        let expected = format!("{}/.well-known/jwks.json", identity.issuer.trim_end_matches('/'));
        if identity.jwks_url != expected {
            return Err(refuse(
                key,
                format!(
                    "{:?} is not the user pool's key set: expected {expected} (where API Gateway's JWT authorizer \
                     finds the issuer's keys)",
                    identity.jwks_url
                ),
            ));
        }
    } else if jwks.host != issuer.host {
        return Err(refuse(
            key,
            format!(
                "{:?} is not on the issuer's host {}: expected the jwks_uri of the issuer's \
                 /.well-known/openid-configuration, which is where API Gateway's JWT authorizer finds the keys",
                identity.jwks_url, issuer.host
            ),
        ));
    }
    Ok(())
}

/// At least one, each a plain token: the functions receive them comma-separated
/// (`contract::env::JWT_AUDIENCE`).
fn check_audiences(audiences: &[String]) -> Result<(), Refusal> {
    let key = "identity.audiences";
    if audiences.is_empty() {
        return Err(refuse(key, "is empty: expected at least one audience (Cognito: the app client id)"));
    }
    for (index, audience) in audiences.iter().enumerate() {
        if audience.is_empty() || audience.contains(',') || audience.chars().any(char::is_whitespace) {
            return Err(refuse(
                key,
                format!(
                    "{audience:?} is not an audience: expected a value without commas or spaces (an app client id)"
                ),
            ));
        }
        if audiences[..index].contains(audience) {
            return Err(refuse(key, format!("{audience:?} is listed twice")));
        }
    }
    Ok(())
}

/// Exactly what a browser sends in `Origin`: `scheme://host[:port]`, lower case, nothing after.
/// `https`, or `http` on this machine only (a local console).
fn check_origins(origins: &[String]) -> Result<(), Refusal> {
    let key = "cors.allowed_origins";
    if origins.is_empty() {
        return Err(refuse(
            key,
            "is empty: expected at least one origin, the web console's (https://console.example.org)",
        ));
    }
    for (index, origin) in origins.iter().enumerate() {
        let expected = "expected scheme://host[:port] exactly as a browser sends it in Origin, without a path \
                        or trailing slash (https://console.example.org, http://localhost:4512)";
        let url = Url::parse(origin).map_err(|problem| refuse(key, format!("{origin:?} {problem}: {expected}")))?;
        if !url.path.is_empty() {
            return Err(refuse(key, format!("{origin:?} has a path ({:?}): {expected}", url.path)));
        }
        if origin.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(refuse(key, format!("{origin:?} has upper-case letters: {expected}")));
        }
        let local = matches!(url.hostname(), "localhost" | "127.0.0.1" | "[::1]");
        if url.scheme != "https" && !(url.scheme == "http" && local) {
            return Err(refuse(
                key,
                format!("{origin:?} is not https: expected https://, or http:// only for localhost and 127.0.0.1"),
            ));
        }
        if origins[..index].contains(origin) {
            return Err(refuse(key, format!("{origin:?} is listed twice")));
        }
    }
    Ok(())
}

fn check_examples(examples: &[String]) -> Result<(), Refusal> {
    for (index, example) in examples.iter().enumerate() {
        if !SETTING_KEYS.contains(&example.as_str()) {
            return Err(refuse(
                "examples",
                format!("{example:?} is not a setting: expected some of {}", SETTING_KEYS.join(", ")),
            ));
        }
        if examples[..index].contains(example) {
            return Err(refuse("examples", format!("{example:?} is listed twice")));
        }
    }
    Ok(())
}

/// The parts of an absolute URL these settings need, read strictly: `scheme://host[:port][path]`
/// with no user, query or fragment.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    scheme: &'a str,
    /// The host and port as written (`localhost:4512`, `[::1]:80`).
    host: &'a str,
    /// Everything after the host, from its `/` (empty when there is none).
    path: &'a str,
}

impl<'a> Url<'a> {
    fn parse(text: &'a str) -> Result<Url<'a>, &'static str> {
        let (scheme, rest) = text.split_once("://").ok_or("is not a URL")?;
        if scheme.is_empty() || !scheme.bytes().all(|byte| byte.is_ascii_alphabetic()) {
            return Err("is not a URL");
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("contains spaces");
        }
        if rest.contains(['?', '#']) {
            return Err("has a query or fragment");
        }
        let (host, path) = rest.find('/').map_or((rest, ""), |slash| rest.split_at(slash));
        if host.contains('@') {
            return Err("names a user");
        }
        let url = Url { scheme, host, path };
        let hostname = url.hostname();
        let valid_name = !hostname.is_empty()
            && (hostname.starts_with('[') && hostname.ends_with(']')
                || hostname.split('.').all(|label| {
                    !label.is_empty() && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                }));
        if !valid_name {
            return Err("has no valid host");
        }
        if let Some(port) = url.port()
            && !matches!(port.parse::<u16>(), Ok(port) if port != 0)
        {
            return Err("has an invalid port");
        }
        Ok(url)
    }

    fn https(text: &'a str) -> Result<Url<'a>, &'static str> {
        let url = Url::parse(text)?;
        if url.scheme == "https" { Ok(url) } else { Err("is not https") }
    }

    /// The host without its port.
    fn hostname(&self) -> &'a str {
        match self.host.rsplit_once(':') {
            Some((name, _)) if !self.host.ends_with(']') => name,
            _ => self.host,
        }
    }

    /// The port, when the host names one.
    fn port(&self) -> Option<&'a str> {
        match self.host.rsplit_once(':') {
            Some((_, port)) if !self.host.ends_with(']') => Some(port),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "\
region: eu-west-1
identity:
  issuer: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123
  jwks_url: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/jwks.json
  audiences: [client-one, client-two]
cors:
  allowed_origins: [https://console.example.org, http://localhost:4512]
";

    fn refusal(text: &str) -> SettingsError {
        parse("stacks/stages/test.yaml", text).expect_err("refused")
    }

    /// The valid file with one line replaced.
    fn with(from: &str, to: &str) -> String {
        assert!(VALID.contains(from), "{from}");
        VALID.replace(from, to)
    }

    #[test]
    fn a_valid_file_reads_whole() {
        let settings = parse("stacks/stages/test.yaml", VALID).expect("valid");
        assert_eq!(settings.region, "eu-west-1");
        assert_eq!(settings.identity.audiences, ["client-one", "client-two"]);
        assert_eq!(settings.cors.allowed_origins, ["https://console.example.org", "http://localhost:4512"]);
        assert!(settings.examples.is_empty());
        let marked = parse("f", &format!("{VALID}examples: [identity.issuer, cors.allowed_origins]\n")).expect("valid");
        assert_eq!(marked.examples, ["identity.issuer", "cors.allowed_origins"]);
    }

    #[test]
    fn an_unknown_or_missing_key_is_refused_naming_the_file_and_the_key() {
        let unknown = refusal(&with("  audiences:", "  audience: [x]\n  audiences:"));
        let text = unknown.to_string();
        assert!(text.starts_with("stacks/stages/test.yaml: "), "{text}");
        assert!(text.contains("audience"), "{text}");
        let top = refusal(&format!("{VALID}token_use: id\n")).to_string();
        assert!(top.contains("token_use"), "{top}");
        let missing = refusal(&with("region: eu-west-1\n", "")).to_string();
        assert!(missing.contains("region"), "{missing}");
        assert!(refusal("not: [yaml").key.is_none());
    }

    #[test]
    fn each_value_is_checked_and_the_message_says_what_is_expected() {
        let cases = [
            (with("eu-west-1\n", "Ireland\n"), "region", "eu-west-1"),
            (with("region: eu-west-1", "region: eu-west"), "region", "AWS region"),
            (with("issuer: https://cognito-idp", "issuer: http://cognito-idp"), "identity.issuer", "is not https"),
            (
                with("eu-west-1.amazonaws.com/eu-west-1_AbCdEf123\n", "eu-west-1.amazonaws.com/us-east-1_AbCdEf123\n"),
                "identity.issuer",
                "pool's region in both places",
            ),
            (with("AbCdEf123/.well-known/jwks.json", "Other/.well-known/jwks.json"), "identity.jwks_url", "key set"),
            (with("[client-one, client-two]", "[]"), "identity.audiences", "at least one"),
            (with("[client-one, client-two]", "['a,b']"), "identity.audiences", "without commas"),
            (with("[client-one, client-two]", "[a, a]"), "identity.audiences", "twice"),
            (with("https://console.example.org,", "https://console.example.org/,"), "cors.allowed_origins", "path"),
            (with("https://console.example.org,", "https://console.example.org/app,"), "cors.allowed_origins", "path"),
            (with("https://console.example.org,", "http://console.example.org,"), "cors.allowed_origins", "https"),
            (with("https://console.example.org,", "'*',"), "cors.allowed_origins", "not a URL"),
            (with("https://console.example.org,", "https://Console.example.org,"), "cors.allowed_origins", "upper"),
            (with("http://localhost:4512", "http://localhost:99999"), "cors.allowed_origins", "port"),
            (with("[https://console.example.org, http://localhost:4512]", "[]"), "cors.allowed_origins", "empty"),
        ];
        for (text, key, expected) in cases {
            let error = refusal(&text);
            assert_eq!(error.key.as_deref(), Some(key), "{error}");
            assert!(error.to_string().contains(expected), "{error} should say {expected:?}");
        }
        let unknown = refusal(&format!("{VALID}examples: [identity.issuer, identity.token_use]\n"));
        assert_eq!(unknown.key.as_deref(), Some("examples"));
        assert!(unknown.problem.contains("identity.audiences"), "{unknown}");
    }

    #[test]
    fn another_issuer_keeps_its_keys_on_its_own_host() {
        let other = with(
            "  issuer: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123\n  jwks_url: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/jwks.json",
            "  issuer: https://login.example.org/\n  jwks_url: https://login.example.org/oauth/keys",
        );
        assert!(parse("f", &other).is_ok(), "{:?}", parse("f", &other));
        let elsewhere = other.replace("https://login.example.org/oauth/keys", "https://keys.example.net/jwks.json");
        assert_eq!(refusal(&elsewhere).key.as_deref(), Some("identity.jwks_url"));
    }

    #[test]
    fn urls_are_read_strictly() {
        let url = Url::parse("http://[::1]:4512").expect("valid");
        assert_eq!((url.hostname(), url.port(), url.path), ("[::1]", Some("4512"), ""));
        assert_eq!(Url::parse("https://a.example/x").map(|url| url.path), Ok("/x"));
        for bad in
            ["https://", "https://a b", "https://user@a.example", "https://a.example?x", "a.example", "https://a..b"]
        {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
