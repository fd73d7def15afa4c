//! The service's default limits: what PROTOCOL.md asks for, and what docs/audiences.md's "Limits"
//! section explains. Both stages start from these (`stacks::stages`), and a function whose
//! environment does not set a limit falls back to them (`session_core::config::Limits`).
//!
//! The per-address limits admit a venue: a whole audience behind one NAT address joining
//! within a minute. Abuse is bounded by what a venue never does (a stream of handshakes for
//! sessions that do not exist, a connection sending `joinSession` over and over), by the
//! session cap, and by the stage's throttling.

/// Listeners one session admits.
pub const MAX_LISTENERS_PER_SESSION: u32 = 500;
/// WebSocket handshakes per source address per minute: a full session's audience behind one
/// address, twice over (refreshes, reconnects after a network change, a second session in the
/// same building).
pub const CONNECTS_PER_MINUTE_PER_IP: u32 = 1_000;
/// Handshakes per source address per minute that name a session that does not exist (or has
/// ended). Past it, every handshake from that address is refused for the rest of the minute
/// at the cost of the counter alone, without reading any session.
pub const UNKNOWN_SESSION_CONNECTS_PER_MINUTE_PER_IP: u32 = 30;
/// `joinSession` frames per connection per minute (a client sends one, or a few on retry).
pub const JOINS_PER_MINUTE_PER_CONNECTION: u32 = 10;
/// Sessions one speaker creates per hour.
pub const SESSIONS_PER_HOUR_PER_USER: u32 = 50;
/// The largest client message, in bytes (API Gateway's own limit).
pub const MAX_MESSAGE_BYTES: u32 = 128 * 1024;
/// How long a session lives before its row expires.
pub const SESSION_LIFETIME_SECONDS: u32 = 12 * 3600;
/// How long a connection row lives: past API Gateway's 2-hour maximum, as a backstop for a
/// `$disconnect` that never arrives.
pub const CONNECTION_TTL_SECONDS: u32 = 3 * 3600;
/// How long a session waits for a speaker who left without refreshing.
pub const SPEAKER_GRACE_SECONDS: u32 = 60;
