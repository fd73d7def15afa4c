//! Identifiers shaped like API Gateway's and Lambda's.

use base64::Engine;

/// A connection id like API Gateway's (`JC1dgf9yoAMCK-g=`): 11 random bytes, URL-safe base64.
pub fn connection_id() -> String {
    let bytes: [u8; 11] = rand::random();
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// A message id, shaped like a connection id.
pub fn message_id() -> String {
    connection_id()
}

/// A request id shaped like Lambda's (a UUID).
pub fn request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_aws_shapes_and_differ() {
        let connection = connection_id();
        assert_eq!(connection.len(), 16);
        assert!(connection.ends_with('='));
        assert_ne!(connection, connection_id());
        let request = request_id();
        assert_eq!(request.len(), 36);
        assert_eq!(request.matches('-').count(), 4);
    }
}
