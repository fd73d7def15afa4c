//! Names of the environment variables the functions read. Which function reads which, and
//! what the value must be, is declared in [`crate::functions`].

pub const SESSIONS_TABLE: &str = crate::tables::SESSIONS.name_env;
pub const CONNECTIONS_TABLE: &str = crate::tables::CONNECTIONS.name_env;
pub const RATE_LIMITS_TABLE: &str = crate::tables::RATE_LIMITS.name_env;
/// The Kinesis stream receiving audio chunks.
pub const AUDIO_STREAM: &str = "AUDIO_STREAM";
/// The `@connections` management endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
pub const MANAGEMENT_ENDPOINT: &str = "MANAGEMENT_ENDPOINT";
/// Who verifies speaker tokens on `$connect`: `authorizer` (the stage has the `$connect`
/// authorizer and the function trusts its context) or `self` (no authorizer; the function
/// verifies tokens itself).
pub const CONNECT_AUTH: &str = "CONNECT_AUTH";
/// The exact `iss` speaker tokens carry: the HTTP API's JWT authorizer's `Issuer`.
pub const JWT_ISSUER: &str = "JWT_ISSUER";
/// The audiences a speaker token may be for, as the HTTP API's JWT authorizer lists them in its
/// `Audience` (for Cognito, the app client ids), joined by [`LIST_SEPARATOR`]:
/// `1example23client,4another56client`. An audience never holds the separator (the stage files
/// refuse one); readers split at it, trim each part and drop empty ones.
pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
/// Where the JWKS comes from: an `https://` URL, `file:PATH`, or inline JSON.
pub const JWKS_SOURCE: &str = "JWKS_SOURCE";
/// What separates the values of a variable that holds a list ([`JWT_AUDIENCE`]).
pub const LIST_SEPARATOR: char = ',';
pub const MAX_LISTENERS_PER_SESSION: &str = "MAX_LISTENERS_PER_SESSION";
pub const CONNECTS_PER_MINUTE_PER_IP: &str = "CONNECTS_PER_MINUTE_PER_IP";
pub const UNKNOWN_SESSION_CONNECTS_PER_MINUTE_PER_IP: &str = "UNKNOWN_SESSION_CONNECTS_PER_MINUTE_PER_IP";
pub const JOINS_PER_MINUTE_PER_CONNECTION: &str = "JOINS_PER_MINUTE_PER_CONNECTION";
pub const SESSIONS_PER_HOUR_PER_USER: &str = "SESSIONS_PER_HOUR_PER_USER";
pub const SESSION_LIFETIME_SECONDS: &str = "SESSION_LIFETIME_SECONDS";
pub const CONNECTION_TTL_SECONDS: &str = "CONNECTION_TTL_SECONDS";
pub const SPEAKER_GRACE_SECONDS: &str = "SPEAKER_GRACE_SECONDS";
pub const MAX_MESSAGE_BYTES: &str = "MAX_MESSAGE_BYTES";
