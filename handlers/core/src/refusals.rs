//! How failures become protocol refusals: store and token errors mapped to PROTOCOL.md codes.
//!
//! Internal failures are logged here with their details and reach clients only as a generic
//! `INTERNAL_ERROR`, or `SERVICE_UNAVAILABLE` with `retryAfter` when DynamoDB is throttling,
//! failing (5xx) or unreachable (connection refused, a timeout), so clients know a retry may
//! succeed.

use crate::jwt::JwtError;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::store::StoreError;

impl From<StoreError> for ProtocolError {
    fn from(error: StoreError) -> ProtocolError {
        match &error {
            StoreError::SessionNotFound(id) => {
                ProtocolError::new(ErrorCode::SessionNotFound, format!("session {id} does not exist"))
            }
            StoreError::SessionEnded { id } | StoreError::InvalidTransition { id, .. } => {
                ProtocolError::new(ErrorCode::SessionInactive, format!("session {id} is not active: {error}"))
            }
            StoreError::SessionFull { id, cap } => {
                ProtocolError::new(ErrorCode::SessionFull, format!("session {id} already has {cap} listeners"))
            }
            StoreError::ConnectionNotFound(_) => ProtocolError::new(
                ErrorCode::Forbidden,
                "this connection is not registered (it may have expired); reconnect",
            ),
            StoreError::NotAListener(_) => ProtocolError::new(ErrorCode::Forbidden, "only listeners can do this"),
            StoreError::IdsExhausted { .. } => {
                tracing::error!(%error, "no free session id");
                ProtocolError::unavailable("no session id is free right now; retry")
            }
            StoreError::Aws { .. } if error.is_unavailable() => {
                tracing::error!(%error, "DynamoDB unavailable");
                ProtocolError::unavailable("the service is busy; retry shortly")
            }
            StoreError::Aws { .. } | StoreError::Corrupt { .. } => internal(&error),
        }
    }
}

impl From<JwtError> for ProtocolError {
    fn from(error: JwtError) -> ProtocolError {
        if error.is_client_fault() {
            ProtocolError::new(ErrorCode::Unauthorized, format!("the speaker token is not valid: {error}"))
        } else {
            tracing::error!(%error, "could not verify a speaker token");
            ProtocolError::unavailable("speaker tokens cannot be verified right now; retry")
        }
    }
}

/// A generic internal error; the details go to the log only.
pub fn internal(error: &dyn std::fmt::Display) -> ProtocolError {
    tracing::error!(%error, "internal error");
    ProtocolError::new(ErrorCode::InternalError, "internal error")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;

    fn id() -> SessionId {
        SessionId::parse("quiet-harbor-417").expect("id")
    }

    #[test]
    fn store_refusals_map_to_their_codes() {
        let cases = [
            (StoreError::SessionNotFound(id()), ErrorCode::SessionNotFound),
            (StoreError::SessionEnded { id: id() }, ErrorCode::SessionInactive),
            (StoreError::SessionFull { id: id(), cap: 3 }, ErrorCode::SessionFull),
            (StoreError::NotAListener("c".into()), ErrorCode::Forbidden),
            (StoreError::IdsExhausted { attempts: 5 }, ErrorCode::ServiceUnavailable),
            (
                StoreError::Aws { operation: "GetItem", table: "t".into(), message: "boom".into(), unavailable: true },
                ErrorCode::ServiceUnavailable,
            ),
            (
                StoreError::Aws { operation: "GetItem", table: "t".into(), message: "boom".into(), unavailable: false },
                ErrorCode::InternalError,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(ProtocolError::from(error).code, code);
        }
    }

    #[test]
    fn internal_details_do_not_reach_clients() {
        let error = StoreError::Corrupt { table: "secret-table".into(), key: "k".into(), problem: "p".into() };
        let refusal = ProtocolError::from(error);
        assert_eq!(refusal.code, ErrorCode::InternalError);
        assert!(!refusal.message.contains("secret-table"));
    }

    #[test]
    fn token_refusals_are_401_and_key_set_failures_503() {
        assert_eq!(ProtocolError::from(JwtError::Expired).code, ErrorCode::Unauthorized);
        assert_eq!(ProtocolError::from(JwtError::JwksUnavailable("down".into())).code, ErrorCode::ServiceUnavailable);
    }
}
