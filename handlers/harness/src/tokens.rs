//! Speaker tokens of every shape that matters, each with whether the HTTP API's JWT authorizer
//! accepts it: one list for every path that checks tokens (the local HTTP API, the `$connect`
//! authorizer, `$connect` with `CONNECT_AUTH=self`), so each is held to the same answers.
//!
//! The answers are API Gateway's documented rules ("Control access to HTTP APIs with JWT
//! authorizers"; "Troubleshooting issues with HTTP API JWT authorizers"): `iss` must be the
//! issuer; `aud` must name one of the audiences, and only when there is no `aud` is `client_id`
//! checked instead; `exp` after now, `nbf` and `iat` before it.

use serde_json::{Value, json};
use session_core::jwt::cognito::{TokenClaims, TokenKind};

/// An app client id no stage lists.
pub const OTHER_CLIENT: &str = "another-app-client";

/// One token and the authorizer's answer.
#[derive(Debug, Clone)]
pub struct TokenCase {
    /// What the token is, for assertion messages.
    pub name: &'static str,
    /// Its claims, to be signed with a key the path trusts.
    pub claims: Value,
    /// Whether the HTTP API's JWT authorizer lets it through.
    pub accepted: bool,
}

/// The cases for a path trusting `issuer` with the app client `client_id` among its audiences,
/// at `now` (seconds since the Unix epoch), every token for the user `sub`.
pub fn token_cases(issuer: &str, client_id: &str, sub: &str, now: i64) -> Vec<TokenCase> {
    let token = |kind: TokenKind| {
        TokenClaims {
            kind,
            issuer,
            client_id,
            sub,
            email: Some("speaker@example.com"),
            issued_at: now - 60,
            expires_at: now + 3600,
        }
        .to_json()
    };
    let with = |kind: TokenKind, changes: Value| {
        let mut claims = token(kind);
        if let (Some(claims), Value::Object(changes)) = (claims.as_object_mut(), changes) {
            for (name, value) in changes {
                if value.is_null() {
                    claims.remove(&name);
                } else {
                    claims.insert(name, value);
                }
            }
        }
        claims
    };
    let case = |name, claims, accepted| TokenCase { name, claims, accepted };
    use TokenKind::{Access, Id};
    vec![
        case("an ID token (aud: the app client)", token(Id), true),
        case("an access token (client_id: the app client, no aud)", token(Access), true),
        case(
            "an ID token whose aud lists the app client among others",
            with(Id, json!({"aud": [OTHER_CLIENT, client_id]})),
            true,
        ),
        case(
            "a token whose aud is the app client and client_id another (aud decides)",
            with(Id, json!({"client_id": OTHER_CLIENT})),
            true,
        ),
        case("an ID token of another app client", with(Id, json!({"aud": OTHER_CLIENT})), false),
        case("an access token of another app client", with(Access, json!({"client_id": OTHER_CLIENT})), false),
        case(
            "an access token whose aud names another client (aud decides, client_id is not looked at)",
            with(Access, json!({"aud": OTHER_CLIENT})),
            false,
        ),
        case("a token with neither aud nor client_id", with(Id, json!({"aud": null})), false),
        case("an ID token of another issuer", with(Id, json!({"iss": "https://issuer.example.net"})), false),
        case("an access token of another issuer", with(Access, json!({"iss": "https://issuer.example.net"})), false),
        case("an expired ID token", with(Id, json!({"exp": now - 120})), false),
        case("an expired access token", with(Access, json!({"exp": now - 120})), false),
        case("a token valid only from tomorrow (nbf)", with(Access, json!({"nbf": now + 86_400})), false),
        case("a token issued tomorrow (iat)", with(Id, json!({"iat": now + 86_400})), false),
        case(
            "a token that never expires (no exp: the guide is silent; refused on every path here)",
            with(Id, json!({"exp": null})),
            false,
        ),
    ]
}
