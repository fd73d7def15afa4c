//! The claims of the two tokens Amazon Cognito issues a signed-in user, for tokens made locally
//! (`cargo xtask token`, the local stack, tests) to have the shapes real ones have.
//!
//! - The **ID token** (`token_use: id`) names the app client in `aud` and carries the user's
//!   profile (`email`, `cognito:username`).
//! - The **access token** (`token_use: access`) names the app client in `client_id`, has no
//!   `aud`, carries `scope` and `username`, and no profile.
//!
//! Both carry the same `sub` (the user's id), `iss`, `auth_time`, `iat` and `exp`. The HTTP
//! API's JWT authorizer accepts both for an audience list holding the app client id, and so
//! does every other path of this service ([`super`]).

use serde_json::{Value, json};

/// Which of a user's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Id,
    Access,
}

impl TokenKind {
    /// Its `token_use` (`id`, `access`), which is also how it is named on command lines.
    pub const fn token_use(self) -> &'static str {
        match self {
            TokenKind::Id => "id",
            TokenKind::Access => "access",
        }
    }
}

impl std::str::FromStr for TokenKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "id" => Ok(TokenKind::Id),
            "access" => Ok(TokenKind::Access),
            other => Err(format!("{other:?} is not a kind of token: expected id or access")),
        }
    }
}

/// What a token says about whom, issued by whom, for which app client, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims<'a> {
    pub kind: TokenKind,
    pub issuer: &'a str,
    /// The app client the token is issued to (`aud` of an ID token, `client_id` of an access token).
    pub client_id: &'a str,
    /// The user's id.
    pub sub: &'a str,
    /// The user's email (ID tokens only; an access token never carries it).
    pub email: Option<&'a str>,
    /// When it was issued, in seconds since the Unix epoch.
    pub issued_at: i64,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: i64,
}

impl TokenClaims<'_> {
    /// The claims, as Cognito writes them for this kind of token.
    pub fn to_json(&self) -> Value {
        let mut claims = json!({
            "sub": self.sub,
            "iss": self.issuer,
            "token_use": self.kind.token_use(),
            "auth_time": self.issued_at,
            "iat": self.issued_at,
            "exp": self.expires_at,
        });
        let extra = match self.kind {
            TokenKind::Id => {
                let mut extra = json!({ "aud": self.client_id, "cognito:username": self.sub });
                if let Some(email) = self.email {
                    extra["email"] = json!(email);
                    extra["email_verified"] = json!(true);
                }
                extra
            }
            TokenKind::Access => json!({
                "client_id": self.client_id,
                "scope": "aws.cognito.signin.user.admin",
                "username": self.sub,
            }),
        };
        if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: TokenKind) -> Value {
        TokenClaims {
            kind,
            issuer: "https://issuer.example.com",
            client_id: "client-1",
            sub: "user-1",
            email: Some("u@example.com"),
            issued_at: 100,
            expires_at: 200,
        }
        .to_json()
    }

    #[test]
    fn an_id_token_names_the_client_in_aud_and_an_access_token_in_client_id() {
        let id = claims(TokenKind::Id);
        assert_eq!(
            (id["aud"].as_str(), id["token_use"].as_str(), id["email"].as_str()),
            (Some("client-1"), Some("id"), Some("u@example.com"))
        );
        assert!(id.get("client_id").is_none());
        let access = claims(TokenKind::Access);
        assert_eq!((access["client_id"].as_str(), access["token_use"].as_str()), (Some("client-1"), Some("access")));
        assert!(access.get("aud").is_none() && access.get("email").is_none(), "{access}");
        assert_eq!(id["sub"], access["sub"]);
        assert_eq!("access".parse::<TokenKind>(), Ok(TokenKind::Access));
        assert!("refresh".parse::<TokenKind>().is_err());
    }
}
