//! Speaker-token verification: a valid token is accepted, and each way a token can be wrong is
//! refused with its own error. Keys are generated here and the key set is served from inline
//! text, a temporary file, or a tiny HTTP server on 127.0.0.1; nothing leaves the machine.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use session_core::jwt::cognito::{TokenClaims, TokenKind};
use session_core::jwt::signing::LocalSigner;
use session_core::jwt::{InvalidJwksSpec, JwksSource, JwtConfig, JwtError, Verifier};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool";
const AUDIENCE: &str = "speaker-app-client";
const NOW: i64 = 1_764_000_000;

fn signer(kid: &str) -> LocalSigner {
    LocalSigner::generate(kid).expect("an RSA key is generated")
}

/// Claims that pass every check at [`NOW`].
fn good_claims() -> Value {
    json!({
        "sub": "5f6c1e2a-0000-4000-8000-000000000001",
        "email": "speaker@example.com",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "token_use": "id",
        "iat": NOW - 60,
        "exp": NOW + 3600,
    })
}

/// The good claims with `name` set to `value`.
fn claims_with(name: &str, value: Value) -> Value {
    let mut claims = good_claims();
    claims[name] = value;
    claims
}

/// The good claims without `name`.
fn claims_without(name: &str) -> Value {
    let mut claims = good_claims();
    claims.as_object_mut().expect("claims are an object").remove(name);
    claims
}

fn config(jwks: JwksSource) -> JwtConfig {
    JwtConfig::new(ISSUER, [AUDIENCE], jwks)
}

/// A verifier trusting exactly this signer's key, given inline.
fn verifier_for(signer: &LocalSigner) -> Verifier {
    Verifier::new(config(JwksSource::Inline(signer.jwks_json())))
}

fn sign(signer: &LocalSigner, claims: &Value) -> String {
    signer.sign(claims).expect("the token is signed")
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token put together by hand, signature and all.
fn hand_built(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64_json(header), b64_json(claims), URL_SAFE_NO_PAD.encode(signature))
}

async fn refusal(verifier: &Verifier, token: &str) -> JwtError {
    match verifier.verify(token, NOW).await {
        Ok(claims) => panic!("the token was accepted with {claims:?}"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let claims = verifier.verify(&sign(&signer, &good_claims()), NOW).await.expect("accepted");
    assert_eq!(claims.sub, "5f6c1e2a-0000-4000-8000-000000000001");
    assert_eq!(claims.email.as_deref(), Some("speaker@example.com"));
    assert_eq!(claims.token_use.as_deref(), Some("id"));
    assert_eq!(claims.exp, NOW + 3600);
    assert_eq!(claims.iat, Some(NOW - 60));
    assert_eq!(claims.nbf, None);
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud, vec![AUDIENCE.to_owned()]);
}

#[tokio::test]
async fn an_audience_array_containing_ours_is_accepted() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let token = sign(&signer, &claims_with("aud", json!(["another-client", AUDIENCE])));
    let claims = verifier.verify(&token, NOW).await.expect("accepted");
    assert_eq!(claims.aud, vec!["another-client".to_owned(), AUDIENCE.to_owned()]);

    let token = sign(&signer, &claims_with("aud", json!(["another-client"])));
    assert!(matches!(refusal(&verifier, &token).await, JwtError::WrongAudience));
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let signer = signer("key-1");
    let token = sign(&signer, &claims_with("iss", json!("https://evil.example.com")));
    assert!(matches!(refusal(&verifier_for(&signer), &token).await, JwtError::WrongIssuer));
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let signer = signer("key-1");
    let token = sign(&signer, &claims_with("aud", json!("some-other-client")));
    assert!(matches!(refusal(&verifier_for(&signer), &token).await, JwtError::WrongAudience));
}

#[tokio::test]
async fn an_expired_token_is_refused_beyond_the_leeway() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let token = sign(&signer, &claims_with("exp", json!(NOW - 31)));
    assert!(matches!(refusal(&verifier, &token).await, JwtError::Expired));
    let token = sign(&signer, &claims_with("exp", json!(NOW - 30)));
    assert!(matches!(refusal(&verifier, &token).await, JwtError::Expired));

    // Within the default 30 seconds of leeway, a token that has just expired still passes.
    let token = sign(&signer, &claims_with("exp", json!(NOW - 29)));
    verifier.verify(&token, NOW).await.expect("accepted within the leeway");
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused_beyond_the_leeway() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let token = sign(&signer, &claims_with("nbf", json!(NOW + 120)));
    assert!(matches!(refusal(&verifier, &token).await, JwtError::NotYetValid));

    let token = sign(&signer, &claims_with("nbf", json!(NOW + 30)));
    let claims = verifier.verify(&token, NOW).await.expect("accepted within the leeway");
    assert_eq!(claims.nbf, Some(NOW + 30));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let signer = signer("key-1");
    let header = json!({ "alg": "none", "typ": "JWT", "kid": "key-1" });
    let token = hand_built(&header, &good_claims(), b"");
    assert!(token.ends_with('.'), "an unsecured JWT has an empty signature");
    let error = refusal(&verifier_for(&signer), &token).await;
    assert!(matches!(&error, JwtError::UnsupportedAlgorithm(alg) if alg == "none"), "{error:?}");
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let jwk = signer.jwk();
    let modulus = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("n is base64url");
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": "key-1" });
    let signing_input = format!("{}.{}", b64_json(&header), b64_json(&good_claims()));

    // Two guesses at what a confused verifier would use as the HMAC secret: the modulus bytes
    // and the published JWKS text.
    for secret in [modulus, signer.jwks_json().into_bytes()] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
        let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        let error = refusal(&verifier, &token).await;
        let refused = matches!(&error, JwtError::UnsupportedAlgorithm(alg) if alg == "HS256");
        assert!(refused, "{error:?}");
    }
}

#[tokio::test]
async fn other_rsa_algorithms_are_refused_too() {
    let signer = signer("key-1");
    let header = json!({ "alg": "RS512", "kid": "key-1" });
    let token = signer.sign_with_header(&header, &good_claims()).expect("signed");
    let error = refusal(&verifier_for(&signer), &token).await;
    assert!(matches!(&error, JwtError::UnsupportedAlgorithm(alg) if alg == "RS512"), "{error:?}");
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let signer = signer("key-1");
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "key-9" });
    let token = signer.sign_with_header(&header, &good_claims()).expect("signed");
    let error = refusal(&verifier_for(&signer), &token).await;
    assert!(matches!(&error, JwtError::UnknownKey(kid) if kid == "key-9"), "{error:?}");
}

#[tokio::test]
async fn a_missing_kid_is_refused() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    for header in [json!({ "alg": "RS256", "typ": "JWT" }), json!({ "alg": "RS256", "kid": "" })] {
        let token = signer.sign_with_header(&header, &good_claims()).expect("signed");
        assert!(matches!(refusal(&verifier, &token).await, JwtError::MissingKeyId));
    }
}

#[tokio::test]
async fn garbage_is_refused_as_malformed() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let good = sign(&signer, &good_claims());
    let header_only = format!("{}..", b64_json(&json!({ "alg": "RS256", "kid": "key-1" })));
    let not_json = format!("{}.{}.", URL_SAFE_NO_PAD.encode("not json"), b64_json(&json!({})));
    let padded_signature = format!("{good}==");
    let four_segments = format!("{good}.xyz");
    let no_alg = hand_built(&json!({ "kid": "key-1" }), &good_claims(), b"sig");
    let rs256 = json!({ "alg": "RS256", "kid": "key-1" });
    // An array that would fill the claims struct field by field if arrays were not refused.
    let positional = json!(["subject", null, null, NOW + 60, null, null, ISSUER, AUDIENCE]);
    let claims_array = hand_built(&rs256, &positional, b"sig");
    let header_array = hand_built(&json!(["RS256", "key-1", null]), &good_claims(), b"sig");
    let huge = "a".repeat(20_000);
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        "..",
        "a b.c d.e f",
        header_only.as_str(),
        not_json.as_str(),
        padded_signature.as_str(),
        four_segments.as_str(),
        no_alg.as_str(),
        claims_array.as_str(),
        header_array.as_str(),
        huge.as_str(),
    ] {
        let error = refusal(&verifier, token).await;
        assert!(matches!(error, JwtError::Malformed(_)), "{token:.40}: {error:?}");
        assert!(error.is_client_fault());
    }
}

#[tokio::test]
async fn a_token_signed_by_another_key_with_the_same_kid_is_refused() {
    let trusted = signer("key-1");
    let impostor = signer("key-1");
    let token = sign(&impostor, &good_claims());
    assert!(matches!(refusal(&verifier_for(&trusted), &token).await, JwtError::BadSignature));
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let signer = signer("key-1");
    let good = sign(&signer, &good_claims());
    let signature = good.rsplit('.').next().expect("three segments");
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "key-1" });
    let forged_claims = claims_with("sub", json!("someone-else"));
    let tampered = format!("{}.{}.{signature}", b64_json(&header), b64_json(&forged_claims));
    let verifier = verifier_for(&signer);
    assert!(matches!(refusal(&verifier, &tampered).await, JwtError::BadSignature));

    let unsigned = format!("{}.{}.", b64_json(&header), b64_json(&good_claims()));
    assert!(matches!(refusal(&verifier, &unsigned).await, JwtError::BadSignature));
}

/// Cognito's access token: the app client in `client_id`, no `aud`, `token_use: access`.
fn access_claims() -> Value {
    TokenClaims {
        kind: TokenKind::Access,
        issuer: ISSUER,
        client_id: AUDIENCE,
        sub: "5f6c1e2a-0000-4000-8000-000000000001",
        email: None,
        issued_at: NOW - 60,
        expires_at: NOW + 3600,
    }
    .to_json()
}

#[tokio::test]
async fn an_access_token_names_the_app_client_in_client_id_and_is_accepted() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let claims = verifier.verify(&sign(&signer, &access_claims()), NOW).await.expect("accepted");
    assert_eq!(claims.sub, "5f6c1e2a-0000-4000-8000-000000000001");
    assert_eq!((claims.aud.len(), claims.client_id.as_deref()), (0, Some(AUDIENCE)));
    assert_eq!((claims.token_use.as_deref(), claims.email), (Some("access"), None));

    let mut other_client = access_claims();
    other_client["client_id"] = json!("some-other-client");
    assert!(matches!(refusal(&verifier, &sign(&signer, &other_client)).await, JwtError::WrongAudience));
}

/// API Gateway "validates client_id only if aud is not present": with both, `aud` decides.
#[tokio::test]
async fn with_both_aud_and_client_id_the_aud_decides() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let mut aud_elsewhere = access_claims();
    aud_elsewhere["aud"] = json!("some-other-client");
    assert!(matches!(refusal(&verifier, &sign(&signer, &aud_elsewhere)).await, JwtError::WrongAudience));
    let client_elsewhere = claims_with("client_id", json!("some-other-client"));
    verifier.verify(&sign(&signer, &client_elsewhere), NOW).await.expect("aud names the app client");
}

/// API Gateway does not look at `token_use`, so neither does the verifier: any kind passes.
#[tokio::test]
async fn token_use_is_not_looked_at() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    for claims in [claims_with("token_use", json!("access")), claims_without("token_use")] {
        verifier.verify(&sign(&signer, &claims), NOW).await.expect("accepted");
    }
}

#[tokio::test]
async fn audiences_are_a_list_and_any_of_them_will_do() {
    let signer = signer("key-1");
    let verifier =
        Verifier::new(JwtConfig::new(ISSUER, ["web-client", AUDIENCE], JwksSource::Inline(signer.jwks_json())));
    verifier.verify(&sign(&signer, &good_claims()), NOW).await.expect("the second audience");
    verifier.verify(&sign(&signer, &claims_with("aud", json!("web-client"))), NOW).await.expect("the first");
    let mut access = access_claims();
    access["client_id"] = json!("web-client");
    verifier.verify(&sign(&signer, &access), NOW).await.expect("an access token of the first");
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let token = sign(&signer, &claims_with("iat", json!(NOW + 3600)));
    assert!(matches!(refusal(&verifier, &token).await, JwtError::IssuedInFuture));
    let skewed = sign(&signer, &claims_with("iat", json!(NOW + 20)));
    verifier.verify(&skewed, NOW).await.expect("within the leeway");
}

#[tokio::test]
async fn accept_is_the_gateways_decision_and_verify_also_needs_a_subject() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    let no_subject = sign(&signer, &claims_without("sub"));
    verifier.accept(&no_subject, NOW).await.expect("API Gateway passes a token without sub on");
    assert!(matches!(refusal(&verifier, &no_subject).await, JwtError::MissingClaim("sub")));
    let expired = sign(&signer, &claims_with("exp", json!(NOW - 3600)));
    assert_eq!(verifier.accept(&expired, NOW).await, Err(JwtError::Expired));
}

#[tokio::test]
async fn missing_claims_are_refused_by_name() {
    let signer = signer("key-1");
    let verifier = verifier_for(&signer);
    for (claims, name) in [
        (claims_without("sub"), "sub"),
        (claims_with("sub", json!("")), "sub"),
        (claims_without("exp"), "exp"),
        (claims_without("iss"), "iss"),
        (claims_without("aud"), "aud or client_id"),
    ] {
        let error = refusal(&verifier, &sign(&signer, &claims)).await;
        let missing_this = matches!(error, JwtError::MissingClaim(missing) if missing == name);
        assert!(missing_this, "{name}: {error:?}");
    }
}

#[tokio::test]
async fn a_saved_key_signs_tokens_its_original_jwks_accepts() {
    let original = signer("key-1");
    let der = original.to_pkcs8_der().expect("exported");
    let loaded = LocalSigner::from_pkcs8_der("key-1", &der).expect("loaded");
    assert_eq!(loaded.jwks_json(), original.jwks_json());
    let token = sign(&loaded, &good_claims());
    verifier_for(&original).verify(&token, NOW).await.expect("accepted");

    assert!(LocalSigner::from_pkcs8_der("key-1", b"not a key").is_err());
}

#[test]
fn the_jwks_holds_one_rs256_signing_key() {
    let signer = signer("key-1");
    let jwks: Value = serde_json::from_str(&signer.jwks_json()).expect("JSON");
    let key = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["kid"], "key-1");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    let modulus = URL_SAFE_NO_PAD.decode(key["n"].as_str().expect("n")).expect("base64url");
    assert_eq!(modulus.len(), 256, "an RSA 2048 modulus");
}

#[tokio::test]
async fn jwks_keys_not_for_rs256_signatures_are_ignored() {
    let signer = signer("key-1");
    let good = signer.jwk();
    let mut for_encryption = good.clone();
    for_encryption["kid"] = json!("enc-key");
    for_encryption["use"] = json!("enc");
    let mut for_rs512 = good.clone();
    for_rs512["kid"] = json!("rs512-key");
    for_rs512["alg"] = json!("RS512");
    let hmac = json!({ "kty": "oct", "kid": "hmac-key", "k": "c2VjcmV0" });
    let jwks = json!({ "keys": [for_encryption, for_rs512, hmac, good] }).to_string();
    let verifier = Verifier::new(config(JwksSource::Inline(jwks)));

    verifier.verify(&sign(&signer, &good_claims()), NOW).await.expect("accepted");
    for kid in ["enc-key", "rs512-key", "hmac-key"] {
        let header = json!({ "alg": "RS256", "kid": kid });
        let token = signer.sign_with_header(&header, &good_claims()).expect("signed");
        let error = refusal(&verifier, &token).await;
        assert!(matches!(&error, JwtError::UnknownKey(unknown) if unknown == kid), "{error:?}");
    }
}

#[tokio::test]
async fn a_modulus_padded_with_a_zero_byte_is_accepted() {
    let signer = signer("key-1");
    let mut jwk = signer.jwk();
    let mut modulus = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("base64url");
    modulus.insert(0, 0);
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(&modulus));
    let verifier = Verifier::new(config(JwksSource::Inline(json!({ "keys": [jwk] }).to_string())));
    verifier.verify(&sign(&signer, &good_claims()), NOW).await.expect("accepted");
}

#[tokio::test]
async fn a_key_set_without_usable_keys_is_unavailable() {
    let signer = signer("key-1");
    let token = sign(&signer, &good_claims());
    for jwks in ["{\"keys\": []}", "{\"no_keys\": true}", "{not json"] {
        let verifier = Verifier::new(config(JwksSource::Inline(jwks.to_owned())));
        let error = refusal(&verifier, &token).await;
        assert!(matches!(error, JwtError::JwksUnavailable(_)), "{jwks}: {error:?}");
        assert!(!error.is_client_fault());
    }
}

#[test]
fn jwks_sources_are_read_from_their_three_forms() {
    let cognito = "https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json";
    assert_eq!(JwksSource::from_spec(cognito), Ok(JwksSource::Url(cognito.to_owned())));
    assert_eq!(
        JwksSource::from_spec("http://127.0.0.1:9000/jwks.json"),
        Ok(JwksSource::Url("http://127.0.0.1:9000/jwks.json".to_owned()))
    );
    assert_eq!(
        JwksSource::from_spec("file:/etc/session/jwks.json"),
        Ok(JwksSource::File(PathBuf::from("/etc/session/jwks.json")))
    );
    assert_eq!(
        JwksSource::from_spec("file:///etc/session/jwks.json"),
        Ok(JwksSource::File(PathBuf::from("/etc/session/jwks.json")))
    );
    assert_eq!(JwksSource::from_spec(" {\"keys\": []} "), Ok(JwksSource::Inline("{\"keys\": []}".to_owned())));
}

#[test]
fn an_invalid_jwks_spec_names_the_accepted_forms() {
    for spec in ["", "jwks.json", "ftp://example.com/jwks.json", "file:", "[]"] {
        let error = JwksSource::from_spec(spec).expect_err(spec);
        assert!(matches!(&error, InvalidJwksSpec(_)));
        let message = error.to_string();
        for form in ["http://", "https://", "file:", "JSON"] {
            assert!(message.contains(form), "{message:?} lacks {form:?}");
        }
    }
}

#[tokio::test]
async fn a_jwks_file_is_read() {
    let signer = signer("key-1");
    let path = unique_temp_path("jwks.json");
    std::fs::write(&path, signer.jwks_json()).expect("the JWKS is written");
    let spec = format!("file:{}", path.display());
    let verifier = Verifier::new(config(JwksSource::from_spec(&spec).expect("a file spec")));
    let result = verifier.verify(&sign(&signer, &good_claims()), NOW).await;
    std::fs::remove_file(&path).expect("the JWKS is removed");
    assert_eq!(result.expect("accepted").sub, "5f6c1e2a-0000-4000-8000-000000000001");
}

#[tokio::test]
async fn a_missing_jwks_file_is_unavailable() {
    let signer = signer("key-1");
    let verifier = Verifier::new(config(JwksSource::File(unique_temp_path("absent.json"))));
    let error = refusal(&verifier, &sign(&signer, &good_claims())).await;
    assert!(matches!(error, JwtError::JwksUnavailable(_)), "{error:?}");
    assert!(!error.is_client_fault());
}

#[tokio::test]
async fn a_served_jwks_is_fetched_once_and_cached() {
    let signer = signer("key-1");
    let server = JwksServer::start(signer.jwks_json()).await;
    let verifier = Verifier::new(config(JwksSource::from_spec(&server.url).expect("a URL spec")));
    let token = sign(&signer, &good_claims());

    // Concurrent first requests share one fetch.
    let first = futures::future::join_all((0..8).map(|_| verifier.verify(&token, NOW))).await;
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    assert_eq!(server.requests(), 1);

    for _ in 0..5 {
        verifier.clone().verify(&token, NOW).await.expect("accepted");
    }
    assert_eq!(server.requests(), 1, "the key set is cached");
}

#[tokio::test]
async fn an_unknown_kid_prompts_at_most_one_refetch() {
    let signer = signer("key-1");
    let server = JwksServer::start(signer.jwks_json()).await;
    let verifier = Verifier::new(config(JwksSource::Url(server.url.clone())));
    verifier.verify(&sign(&signer, &good_claims()), NOW).await.expect("accepted");
    assert_eq!(server.requests(), 1);

    let header = json!({ "alg": "RS256", "kid": "made-up" });
    let unknown = signer.sign_with_header(&header, &good_claims()).expect("signed");
    for _ in 0..3 {
        let error = refusal(&verifier, &unknown).await;
        assert!(matches!(&error, JwtError::UnknownKey(kid) if kid == "made-up"), "{error:?}");
    }
    assert_eq!(server.requests(), 2, "one refetch within the minute, not one per token");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_a_refetch() {
    let old = signer("key-1");
    let new = signer("key-2");
    let server = JwksServer::start(old.jwks_json()).await;
    let verifier = Verifier::new(config(JwksSource::Url(server.url.clone())));
    verifier.verify(&sign(&old, &good_claims()), NOW).await.expect("accepted");

    server.set_body(json!({ "keys": [new.jwk()] }).to_string());
    let claims = verifier.verify(&sign(&new, &good_claims()), NOW).await.expect("accepted");
    assert_eq!(claims.sub, "5f6c1e2a-0000-4000-8000-000000000001");
    assert_eq!(server.requests(), 2);

    // The refetched set replaced the old one: the retired key is no longer trusted, and asking
    // for it again within the minute does not fetch again.
    let error = refusal(&verifier, &sign(&old, &good_claims())).await;
    assert!(matches!(&error, JwtError::UnknownKey(kid) if kid == "key-1"), "{error:?}");
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn an_unreachable_jwks_is_not_the_clients_fault() {
    let signer = signer("key-1");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/.well-known/jwks.json");
    let verifier = Verifier::new(config(JwksSource::Url(url)));
    let error = refusal(&verifier, &sign(&signer, &good_claims())).await;
    assert!(matches!(error, JwtError::JwksUnavailable(_)), "{error:?}");
    assert!(!error.is_client_fault());
    assert!(verifier.preload().await.is_err());
}

#[tokio::test]
async fn every_refusal_of_a_token_is_the_clients_fault() {
    let errors = [
        JwtError::Malformed("x"),
        JwtError::UnsupportedAlgorithm("none".to_owned()),
        JwtError::MissingKeyId,
        JwtError::UnknownKey("k".to_owned()),
        JwtError::BadSignature,
        JwtError::Expired,
        JwtError::NotYetValid,
        JwtError::WrongIssuer,
        JwtError::WrongAudience,
        JwtError::IssuedInFuture,
        JwtError::MissingClaim("sub"),
    ];
    for error in errors {
        assert!(error.is_client_fault(), "{error}");
    }
    assert!(!JwtError::JwksUnavailable("down".to_owned()).is_client_fault());
}

/// A path in the temporary directory that no other test (or test run) uses.
fn unique_temp_path(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    std::env::temp_dir().join(format!("session-core-jwt-{pid}-{nanos}-{count}-{name}"))
}

/// A minimal HTTP/1.1 server on 127.0.0.1 that answers every request with a JWKS document
/// and counts the requests.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("an address");
        let body = Arc::new(Mutex::new(body));
        let requests = Arc::new(AtomicUsize::new(0));
        let (served_body, counted) = (Arc::clone(&body), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (served_body, counted) = (Arc::clone(&served_body), Arc::clone(&counted));
                tokio::spawn(async move {
                    if read_request(&mut socket).await {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let body = served_body.lock().expect("the body lock").clone();
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                });
            }
        });
        JwksServer { url: format!("http://{address}/.well-known/jwks.json"), body, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn set_body(&self, body: String) {
        *self.body.lock().expect("the body lock") = body;
    }
}

/// Reads a request's head (a GET has no body); false if the connection ends first.
async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
    let mut request = Vec::new();
    let mut buffer = [0; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    true
}
