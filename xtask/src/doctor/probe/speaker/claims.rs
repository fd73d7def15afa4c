//! What a speaker token says about itself, read without checking its signature: when a
//! stage refuses the token, its claims against the stage's JWT settings (its stage file) say
//! which to look at: expired, another issuer (a local token on a real stage), another app
//! client (`aud`, or an access token's `client_id`, as API Gateway reads them), or none of
//! these (then its signature, or the deployed settings).

use base64::Engine as _;
use serde_json::{Map, Value};
use stacks::StageConfig;

/// Seconds since the epoch, now.
pub(super) fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The token's claims (its middle part), if it is a JWT.
fn payload(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// `seconds` as a person says it: `45s`, `12min`, `3h`, `2d`.
fn span(seconds: i64) -> String {
    match seconds {
        ..120 => format!("{seconds}s"),
        120..7_200 => format!("{}min", seconds / 60),
        7_200..172_800 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// What the token's claims show against `stage`'s JWT settings, at `now`.
pub(super) fn findings(stage: &StageConfig, token: &str, now: i64) -> String {
    let Some(claims) = payload(token) else {
        return "it is not a JWT: three base64url parts, the middle one JSON".to_owned();
    };
    let jwt = &stage.jwt;
    let number = |name: &str| claims.get(name).and_then(Value::as_f64).map(|value| value as i64);
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let mut findings = Vec::new();
    match number("exp") {
        Some(exp) if exp <= now => findings.push(format!("it expired {} ago", span(now - exp))),
        Some(_) => {}
        None => findings.push("it has no exp".to_owned()),
    }
    if let Some(nbf) = number("nbf").filter(|nbf| *nbf > now) {
        findings.push(format!("it is not valid for another {}", span(nbf - now)));
    }
    match text("iss") {
        Some(issuer) if issuer == jwt.issuer => {}
        Some(devstack::identity::LOCAL_ISSUER) => findings.push(format!(
            "it is a local token, from `cargo xtask token` (issuer {}): only the local stack accepts it, \
             signed with that stack's key",
            devstack::identity::LOCAL_ISSUER
        )),
        Some(issuer) => findings.push(format!("its issuer is {issuer}, the stage's is {}", jwt.issuer)),
        None => findings.push("it has no iss".to_owned()),
    }
    // API Gateway reads `client_id` only when there is no `aud` (an access token).
    let (claim, named): (&str, Vec<&str>) = match claims.get("aud") {
        Some(Value::String(audience)) => ("aud", vec![audience.as_str()]),
        Some(Value::Array(audiences)) => ("aud", audiences.iter().filter_map(Value::as_str).collect()),
        _ => ("client_id", text("client_id").into_iter().collect()),
    };
    if !named.iter().any(|audience| jwt.audiences.iter().any(|stage| stage == audience)) {
        let has =
            if named.is_empty() { "no aud or client_id".to_owned() } else { format!("{claim} {}", named.join(", ")) };
        findings.push(format!("it has {has}, the stage's app clients (audiences) are {}", jwt.audiences.join(", ")));
    }
    if findings.is_empty() {
        format!(
            "its claims match the stage's settings (issuer, app client, not expired): so its \
             signature is not from the issuer's keys ({}), or the deployed settings differ from the stage's",
            jwt.jwks_url
        )
    } else {
        findings.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(claims: &Value) -> String {
        let encode = |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
        format!("{}.{}.c2ln", encode(&json!({"alg": "RS256"})), encode(claims))
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_refused_token_says_which_setting_it_misses() {
        let stage = stacks::stages::dev();
        let client = stage.jwt.audiences[0].clone();
        let good = json!({
            "iss": stage.jwt.issuer, "aud": client, "token_use": "id", "exp": NOW + 60, "sub": "s",
        });
        assert!(findings(&stage, &token(&good), NOW).starts_with("its claims match"));
        let access = json!({
            "iss": stage.jwt.issuer, "client_id": client, "token_use": "access", "exp": NOW + 60, "sub": "s",
        });
        assert!(findings(&stage, &token(&access), NOW).starts_with("its claims match"), "an access token");

        let mut expired = good.clone();
        expired["exp"] = json!(NOW - 3 * 3600);
        assert_eq!(findings(&stage, &token(&expired), NOW), "it expired 3h ago");

        let mut other = good.clone();
        other["iss"] = json!("https://elsewhere");
        other["aud"] = json!(["a", "b"]);
        let text = findings(&stage, &token(&other), NOW);
        assert!(text.contains("its issuer is https://elsewhere"), "{text}");
        assert!(text.contains(&format!("it has aud a, b, the stage's app clients (audiences) are {client}")), "{text}");

        let mut other_client = access.clone();
        other_client["client_id"] = json!("c");
        let text = findings(&stage, &token(&other_client), NOW);
        assert!(text.contains("it has client_id c, the stage's app clients"), "{text}");
        let mut aud_wins = access;
        aud_wins["aud"] = json!("c");
        let text = findings(&stage, &token(&aud_wins), NOW);
        assert!(text.contains("it has aud c, the stage's app clients"), "{text}");

        let mut local = good;
        local["iss"] = json!(devstack::identity::LOCAL_ISSUER);
        assert!(findings(&stage, &token(&local), NOW).starts_with("it is a local token"));

        assert!(findings(&stage, "not-a-token", NOW).contains("not a JWT"));
        assert!(findings(&stage, &token(&json!({})), NOW).contains("it has no exp"));
    }

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(45), "45s");
        assert_eq!(span(600), "10min");
        assert_eq!(span(3 * 3600), "3h");
        assert_eq!(span(3 * 86_400), "3d");
    }
}
