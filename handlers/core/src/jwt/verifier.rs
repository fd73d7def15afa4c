//! The verifier: a configuration and a cache of the issuer's keys, shared by every request.

use super::claims::{Claims, RawClaims};
use super::keys::KeySet;
use super::token::ParsedToken;
use super::{JwtConfig, JwtError};
use jsonwebtoken::DecodingKey;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// The least time between two fetches of the key set prompted by unknown key ids. It bounds
/// how often tokens with made-up key ids can make this service call the issuer.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Verifies speaker tokens. Cheap to clone: clones share the configuration and the key cache.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: JwtConfig,
    cache: RwLock<KeyCache>,
}

/// The keys as last loaded, and when an unknown key id last prompted a fetch.
#[derive(Debug, Default)]
struct KeyCache {
    keys: Option<KeySet>,
    last_refetch: Option<Instant>,
}

impl KeyCache {
    /// Whether an unknown key id may prompt a fetch now, given the last one it prompted.
    fn may_refetch(&self, now: Instant) -> bool {
        self.last_refetch.is_none_or(|last| now.duration_since(last) >= REFETCH_INTERVAL)
    }
}

impl Verifier {
    /// A verifier for this configuration. Nothing is loaded until the first token arrives.
    pub fn new(config: JwtConfig) -> Self {
        let inner = Inner { config, cache: RwLock::new(KeyCache::default()) };
        Verifier { inner: Arc::new(inner) }
    }

    /// The configuration this verifier checks tokens against.
    pub fn config(&self) -> &JwtConfig {
        &self.inner.config
    }

    /// Verifies a compact JWT at `now_epoch_secs` (seconds since the Unix epoch) and returns
    /// its claims, or the reason it is refused: [`Verifier::accept`], and the token must name
    /// its subject (`sub`), which is who a speaker is.
    pub async fn verify(&self, token: &str, now_epoch_secs: i64) -> Result<Claims, JwtError> {
        self.accepted(token, now_epoch_secs).await?.into_claims()
    }

    /// Whether the HTTP API's JWT authorizer configured as this verifier is would let `token`
    /// through at `now_epoch_secs`: what the local HTTP API decides before its functions run.
    ///
    /// The checks run in this order: the token's shape, its algorithm (RS256 only) and key id;
    /// the key (fetching the key set if needed); the signature; then the claims `iss`, `aud`
    /// (or `client_id`), and the times `exp`, `nbf` and `iat`, give or take the leeway.
    pub async fn accept(&self, token: &str, now_epoch_secs: i64) -> Result<(), JwtError> {
        self.accepted(token, now_epoch_secs).await.map(drop)
    }

    async fn accepted(&self, token: &str, now_epoch_secs: i64) -> Result<RawClaims, JwtError> {
        let parsed = ParsedToken::parse(token)?;
        let key = self.key(&parsed.kid).await?;
        parsed.check_signature(&key)?;
        parsed.claims.check_as_api_gateway(&self.inner.config, now_epoch_secs)?;
        Ok(parsed.claims)
    }

    /// Loads the key set now rather than on the first token, so that a broken source is found
    /// at start-up. Later unknown key ids still prompt fetches as usual.
    pub async fn preload(&self) -> Result<(), JwtError> {
        let keys = KeySet::load(&self.inner.config.jwks).await?;
        self.inner.cache.write().await.keys = Some(keys);
        Ok(())
    }

    /// The key with this id: from the cache if it holds it, otherwise after loading the key set
    /// (the first time) or fetching it again (at most once per [`REFETCH_INTERVAL`]).
    async fn key(&self, kid: &str) -> Result<DecodingKey, JwtError> {
        if let Some(key) = self.cached(kid).await {
            return Ok(key);
        }
        let mut cache = self.inner.cache.write().await;
        // Another request may have loaded or fetched the keys while this one waited.
        if let Some(keys) = &cache.keys {
            if let Some(key) = keys.get(kid) {
                return Ok(key.clone());
            }
            let now = Instant::now();
            if !cache.may_refetch(now) {
                return Err(JwtError::UnknownKey(kid.to_owned()));
            }
            cache.last_refetch = Some(now);
            tracing::info!(kid, "unknown key id; fetching the key set again");
        }
        // A failed fetch leaves the keys already held in place.
        cache.keys = Some(KeySet::load(&self.inner.config.jwks).await?);
        cache.keys.as_ref().and_then(|keys| keys.get(kid)).cloned().ok_or_else(|| JwtError::UnknownKey(kid.to_owned()))
    }

    /// The key with this id if the cache holds it.
    async fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.inner.cache.read().await.keys.as_ref()?.get(kid).cloned()
    }
}
