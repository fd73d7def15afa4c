//! The HTTP session API (API Gateway HTTP API, payload format 2.0, JWT authorizer on the
//! writes), PROTOCOL.md "HTTP API".
//!
//! | route | caller | answer |
//! |---|---|---|
//! | `POST /sessions` `{sourceLanguage, qualityTier?}` | a speaker (JWT) | 201, the session, `Location: /sessions/{id}` |
//! | `GET /sessions/{id}` | anyone | 200, the session |
//! | `PATCH /sessions/{id}` `{status: "active" \| "paused"}` | the owner (JWT) | 200, the session |
//! | `DELETE /sessions/{id}` | the owner (JWT) | 200, the ended session (also when it had already ended) |
//! | `GET /health` | anyone | 200 `{"status":"ok"}` |
//!
//! Routes are dispatched on the route key, and the keys come from the contract
//! ([`contract::functions::HTTP`]) and are bound to their operations in `routes.rs`. The caller is the `sub` claim the JWT
//! authorizer verified.
//!
//! [`read_request`] is the first half of [`HttpFunction::handle`], without the store: it reads
//! the route, the caller, the path's session id and the body, and answers every request a
//! client got wrong with its refusal. The property tests (`tests/properties.rs`) drive it with
//! arbitrary events.
//!
//! A session is shown by its public fields (`sessionId, status, sourceLanguage, qualityTier,
//! listenerCount, broadcastState, createdAt, expiresAt`), times in milliseconds since the
//! epoch; the speaker's user id and connection ids are never shown.
//!
//! Every answer is JSON. A refusal's body is `{code, message, details?, retryAfter?}` and its
//! status is the code's HTTP status (PROTOCOL.md), with these documented exceptions:
//!
//! - `PATCH` on an ended session is **409** with code `SESSION_INACTIVE` (rather than 403): the
//!   request is well-formed and the caller owns the session, but it conflicts with the
//!   session's state. Ending is `DELETE`, so `status: "ended"` is `INVALID_PARAMETER`.
//! - A route key this function does not serve is **404** with code `UNKNOWN_ACTION` (rather
//!   than 400): the resource does not exist. API Gateway only sends the routes it was given,
//!   so this means the API and the contract disagree.
//! - A route behind the JWT authorizer whose event has no `sub` claim is 401 `UNAUTHORIZED`
//!   (and logged as a misconfigured API).
//! - A rate-limited `POST` is 429 with `retryAfter` (seconds) in the body and `Retry-After`.
//! - An event that is not a payload 2.0 request at all is 500 `INTERNAL_ERROR`.
//!
//! Pausing, resuming and ending tell the session's connections through `@connections` at the
//! configured management endpoint (`MANAGEMENT_ENDPOINT`, required for this function: it gets
//! no WebSocket event to derive one from, so a cold start without it fails).
//!
//! ## Why events, not `lambda_http` and a router
//!
//! The function reads the payload 2.0 event itself, and dispatches on its route key, rather
//! than run under `lambda_http` with a path router (axum's `Router`), because either would
//! change answers this page documents:
//!
//! - API Gateway has already chosen the route, from the template the contract generates, and
//!   the event names it. A router would choose again from the method and the path by rules
//!   of its own: 405 for a known path with another method, an empty 404, extractor refusals
//!   in plain text rather than `{code, message}`. That is a second routing that can disagree
//!   with the first, and the route key would stop being what decides. The contract's routes
//!   are bound to their operations once, in `routes.rs`, checked at compile time.
//! - `lambda_http` turns the event into an `http::Request` before any handler runs, and that
//!   conversion panics (an invocation error, so a 500 from the gateway) on a body flagged
//!   base64 that is not base64, and on a `rawPath`, `rawQueryString`, `Host` or
//!   `X-Forwarded-Proto` that does not form a URL; an event that does not read (one header
//!   value with a control character is enough) is an invocation error too. Here the first is
//!   a 400 `INVALID_MESSAGE`, the URI is never read, such a header is left out
//!   ([`read_event`]), and an event that still does not read is a 500 with the error body;
//!   the property tests hold the function to that. What `lambda_http` would save is one
//!   base64 decode and the three fields of a response.

mod request;
mod response;
mod routes;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::{HeaderName, HeaderValue};
use contract::{HttpAuth, HttpRoute};
use request::{json_object, route_key, session_id, subject};
use response::{Refusal, Reply};
use routes::Operation;
use serde::Deserialize as _;
use serde_json::Value;
use session_core::config::Limits;
use session_core::deadline::{Deadline, OutOfTime};
use session_core::fanout::Connections;
use session_core::ids::SessionId;
use session_core::lifecycle::{Lifecycle, reasons};
use session_core::model::{Session, SessionStatus};
use session_core::protocol::http::{Health, HealthStatus};
use session_core::protocol::{ErrorCode, Fields, ProtocolError};
use session_core::store::{NewSession, RateDecision, RateLimitKey, RateRule, Store, StoreError};
use session_core::validation::{LanguageCode, QualityTier};

/// The function, built once per cold start.
#[derive(Debug, Clone)]
pub struct HttpFunction {
    pub store: Store,
    pub connections: Connections,
    pub limits: Limits,
}

impl HttpFunction {
    /// Answers one raw event. An event that is not an HTTP API payload 2.0 request is a 500
    /// with the usual error body, not an invocation error.
    pub async fn handle_payload(&self, payload: Value) -> ApiGatewayV2httpResponse {
        self.handle_payload_by(payload, Deadline::NONE).await
    }

    /// As [`HttpFunction::handle_payload`], answering 503 `SERVICE_UNAVAILABLE` if the work is
    /// not done by the reserve before `deadline` (`session_core::deadline`).
    pub async fn handle_payload_by(&self, payload: Value, deadline: Deadline) -> ApiGatewayV2httpResponse {
        match read_event(payload) {
            Ok(request) => self.handle_by(&request, deadline).await,
            Err(error) => {
                tracing::error!(%error, "the event is not an HTTP API payload 2.0 request");
                Refusal::from(ProtocolError::new(ErrorCode::InternalError, "internal error")).into_response()
            }
        }
    }

    /// Answers one request. Never fails: every refusal is a status and a JSON body.
    pub async fn handle(&self, request: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        self.handle_by(request, Deadline::NONE).await
    }

    /// As [`HttpFunction::handle`], with the invocation's deadline.
    pub async fn handle_by(&self, request: &ApiGatewayV2httpRequest, deadline: Deadline) -> ApiGatewayV2httpResponse {
        let key = route_key(request);
        // Boxed: the nested futures of dispatch are otherwise too deep for the compiler to lay
        // out inside the runtime's future (`queries overflow the depth limit`).
        let answered = deadline.run(Box::pin(self.dispatch(request))).await.unwrap_or_else(|OutOfTime| {
            Err(Refusal::from(ProtocolError::unavailable("the service could not finish in time; retry shortly")))
        });
        match answered {
            Ok(reply) => {
                tracing::info!(route = key, status = reply.status(), "answered");
                reply.into_response()
            }
            Err(refusal) => {
                tracing::info!(route = key, status = refusal.status, code = %refusal.error.code,
                    message = %refusal.error.message, "refused");
                refusal.into_response()
            }
        }
    }

    async fn dispatch(&self, request: &ApiGatewayV2httpRequest) -> Result<Reply, Refusal> {
        match read(request)? {
            Request::Health => Ok(Reply::ok(response::body_of(Health { status: HealthStatus::Ok }))),
            Request::GetSession { id } => self.get(&id).await,
            Request::CreateSession { user, source_language, quality_tier } => {
                self.create(user, source_language, quality_tier).await
            }
            Request::UpdateSession { user, id, paused } => self.update(&id, user, paused).await,
            Request::EndSession { user, id } => self.end(&id, user).await,
        }
    }

    /// `POST /sessions`.
    async fn create(
        &self,
        user: &str,
        source_language: LanguageCode,
        quality_tier: QualityTier,
    ) -> Result<Reply, Refusal> {
        self.rate_limit_creation(user).await?;
        let session = self
            .store
            .create_session(NewSession {
                speaker_user_id: user.to_owned(),
                source_language,
                quality_tier,
                lifetime_seconds: self.limits.session_lifetime_seconds,
            })
            .await?;
        tracing::info!(session = %session.session_id, user, "session created");
        let location = routes::session_path(session.session_id.as_str());
        Ok(Reply::created(&session, location))
    }

    async fn rate_limit_creation(&self, user: &str) -> Result<(), Refusal> {
        let key = RateLimitKey::new("createSession", "user", user);
        let rule = RateRule::new(self.limits.sessions_per_hour_per_user, 3600);
        match self.store.hit_rate_limit(&key, rule).await? {
            RateDecision::Allowed { .. } => Ok(()),
            RateDecision::Limited { retry_after } => Err(ProtocolError::rate_limited(retry_after).into()),
        }
    }

    /// `GET /sessions/{id}`: the session as it is now, ended first if its speaker's grace
    /// period is over.
    async fn get(&self, id: &SessionId) -> Result<Reply, Refusal> {
        let session = self.find(id).await?;
        let ended = self.lifecycle().settle(&session).await?;
        Ok(Reply::session(ended.as_ref().unwrap_or(&session)))
    }

    /// `PATCH /sessions/{id}`: pause or resume. An ended session is a 409.
    async fn update(&self, id: &SessionId, user: &str, paused: bool) -> Result<Reply, Refusal> {
        let session = self.owned(id, user).await?;
        if !session.is_live() {
            let inactive = ProtocolError::new(ErrorCode::SessionInactive, format!("session {id} has ended"));
            return Err(Refusal::from(inactive).conflict_if_inactive());
        }
        let updated = self
            .lifecycle()
            .set_paused(id, paused)
            .await
            .map_err(|error| Refusal::from(error).conflict_if_inactive())?;
        Ok(Reply::session(&updated))
    }

    /// `DELETE /sessions/{id}`: end the session; ending an ended session is a success.
    async fn end(&self, id: &SessionId, user: &str) -> Result<Reply, Refusal> {
        self.owned(id, user).await?;
        let ended = self.lifecycle().end(id, reasons::ENDED_BY_SPEAKER).await?;
        Ok(Reply::session(&ended))
    }

    /// The session, or `SESSION_NOT_FOUND`.
    async fn find(&self, id: &SessionId) -> Result<Session, Refusal> {
        self.store.get_session(id).await?.ok_or_else(|| StoreError::SessionNotFound(id.clone()).into())
    }

    /// The session, if `user` owns it (`FORBIDDEN` otherwise).
    async fn owned(&self, id: &SessionId, user: &str) -> Result<Session, Refusal> {
        let session = self.find(id).await?;
        if session.speaker_user_id != user {
            return Err(ProtocolError::new(ErrorCode::Forbidden, format!("you do not own session {id}")).into());
        }
        Ok(session)
    }

    fn lifecycle(&self) -> Lifecycle<'_> {
        Lifecycle::new(&self.store, &self.connections, &self.limits)
    }
}

/// Reads a payload 2.0 event.
///
/// The function reads no header, so headers the event's reader refuses (a value with a control
/// character, which an `http::HeaderValue` cannot hold) are left out rather than making the
/// whole event unreadable, which would answer a client's request with a 500.
pub fn read_event(mut payload: Value) -> Result<ApiGatewayV2httpRequest, serde_json::Error> {
    match ApiGatewayV2httpRequest::deserialize(&payload) {
        Ok(request) => Ok(request),
        Err(error) => {
            let Some(event) = payload.as_object_mut() else {
                return Err(error);
            };
            let mut dropped = 0;
            for name in ["headers", "multiValueHeaders"] {
                if let Some(Value::Object(headers)) = event.get_mut(name) {
                    let before = headers.len();
                    headers.retain(|name, value| readable_header(name, value));
                    dropped += before - headers.len();
                }
            }
            if dropped == 0 {
                return Err(error);
            }
            tracing::warn!(%error, dropped, "left out headers that do not read");
            serde_json::from_value(payload)
        }
    }
}

/// Whether a header of an event reads as an HTTP header: a valid name, and a value (or every
/// value of a list) that is valid text for a header.
fn readable_header(name: &str, value: &Value) -> bool {
    let text = |value: &Value| value.as_str().is_some_and(|text| HeaderValue::from_str(text).is_ok());
    HeaderName::try_from(name).is_ok()
        && match value {
            Value::Array(values) => values.iter().all(text),
            other => text(other),
        }
}

/// A request as read from its event, before the store is asked anything: what it asks for,
/// and for whom.
#[derive(Debug, Clone, PartialEq)]
pub enum Request<'a> {
    /// `GET /health`.
    Health,
    /// `GET /sessions/{id}`.
    GetSession { id: SessionId },
    /// `POST /sessions`, for the caller `user`.
    CreateSession { user: &'a str, source_language: LanguageCode, quality_tier: QualityTier },
    /// `PATCH /sessions/{id}`: pause (`paused`) or resume.
    UpdateSession { user: &'a str, id: SessionId, paused: bool },
    /// `DELETE /sessions/{id}`.
    EndSession { user: &'a str, id: SessionId },
}

/// Reads a request as far as it can be read without the store: its route, its caller, the
/// session id of its path and its body. A refusal is the response the function answers with
/// (the same as [`HttpFunction::handle`]'s), so everything a client can get wrong is decided
/// here, and a request this accepts only meets the store's answers after it.
pub fn read_request(request: &ApiGatewayV2httpRequest) -> Result<Request<'_>, Box<ApiGatewayV2httpResponse>> {
    read(request).map_err(|refusal| Box::new(refusal.into_response()))
}

fn read(request: &ApiGatewayV2httpRequest) -> Result<Request<'_>, Refusal> {
    let key = route_key(request);
    let Some((route, operation)) = routes::find(key) else {
        return Err(unknown_route(key));
    };
    let user = caller(request, &route)?;
    match (operation, user) {
        (Operation::Health, _) => Ok(Request::Health),
        (Operation::GetSession, _) => Ok(Request::GetSession { id: session_id(request)? }),
        (Operation::CreateSession, Some(user)) => {
            let body = json_object(request)?;
            let fields = Fields::new(&body);
            Ok(Request::CreateSession {
                user,
                source_language: fields.required("sourceLanguage", LanguageCode::parse)?,
                quality_tier: fields.optional("qualityTier", QualityTier::parse)?.unwrap_or_default(),
            })
        }
        (Operation::UpdateSession, Some(user)) => {
            let id = session_id(request)?;
            let body = json_object(request)?;
            let paused = Fields::new(&body).required("status", paused_from_status)?;
            Ok(Request::UpdateSession { user, id, paused })
        }
        (Operation::EndSession, Some(user)) => Ok(Request::EndSession { user, id: session_id(request)? }),
        // Not reached: `routes` checks at compile time that these routes use the authorizer.
        (Operation::CreateSession | Operation::UpdateSession | Operation::EndSession, None) => {
            Err(ProtocolError::new(ErrorCode::Unauthorized, "this route needs a valid bearer token").into())
        }
    }
}

/// The caller's user id on a route behind the JWT authorizer; `None` on open routes.
fn caller<'a>(request: &'a ApiGatewayV2httpRequest, route: &HttpRoute) -> Result<Option<&'a str>, Refusal> {
    match route.auth {
        HttpAuth::Jwt => Ok(Some(subject(request)?)),
        HttpAuth::None => Ok(None),
    }
}

/// `status` of a `PATCH`: `paused` pauses, `active` resumes; ending is `DELETE`.
fn paused_from_status(status: &str) -> Result<bool, &'static str> {
    match SessionStatus::parse(status) {
        Some(SessionStatus::Paused) => Ok(true),
        Some(SessionStatus::Active) => Ok(false),
        Some(SessionStatus::Ended) => Err("must be \"active\" or \"paused\"; end a session with DELETE"),
        None => Err("must be \"active\" or \"paused\""),
    }
}

/// A route key this function does not serve: 404 with `UNKNOWN_ACTION` (documented above).
fn unknown_route(key: &str) -> Refusal {
    tracing::error!(route = key, "a route this function does not serve; the API and the contract disagree");
    let message = format!("no route {key:?}; routes: {}", routes::route_keys().join(", "));
    Refusal::from(ProtocolError::new(ErrorCode::UnknownAction, message)).with_status(404)
}
