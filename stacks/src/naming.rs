//! Logical ids of the template's resources, shared by the stacks and the verifier so both
//! agree on what to look for.

/// `someName`, `$connect`, `GET /sessions/{id}` → `SomeName`, `Connect`, `GETSessionsId`.
pub fn pascal(text: &str) -> String {
    let mut out = String::new();
    let mut upper_next = true;
    for character in text.chars() {
        if character.is_ascii_alphanumeric() {
            if upper_next {
                out.push(character.to_ascii_uppercase());
            } else {
                out.push(character);
            }
            upper_next = false;
        } else {
            upper_next = true;
        }
    }
    out
}

pub const ASSETS_BUCKET: &str = "AssetsBucket";
pub const WEBSOCKET_API: &str = "WebSocketApi";
pub const WEBSOCKET_STAGE: &str = "WebSocketStage";
pub const WEBSOCKET_DEPLOYMENT_PREFIX: &str = "WebSocketDeployment";
pub const CONNECT_AUTHORIZER: &str = "ConnectAuthorizer";
pub const CONNECT_AUTHORIZER_PERMISSION: &str = "ConnectAuthorizerPermission";
pub const HTTP_API: &str = "HttpApi";
pub const HTTP_STAGE: &str = "HttpStage";
pub const HTTP_AUTHORIZER: &str = "HttpJwtAuthorizer";
pub const HTTP_INTEGRATION: &str = "HttpApiIntegration";
pub const HTTP_PERMISSION: &str = "HttpApiPermission";
pub const AUDIO_STREAM: &str = "AudioStream";

pub fn function(name: &str) -> String {
    format!("{}Function", pascal(name))
}

pub fn role(name: &str) -> String {
    format!("{}Role", pascal(name))
}

pub fn log_group(name: &str) -> String {
    format!("{}Logs", pascal(name))
}

/// The log group the stage of API `api` (a logical id) writes its access log to.
pub fn access_log_group(api: &str) -> String {
    format!("{api}AccessLogs")
}

pub fn code_key(name: &str) -> String {
    format!("{}CodeKey", pascal(name))
}

pub fn websocket_integration(name: &str) -> String {
    format!("{}Integration", pascal(name))
}

pub fn websocket_permission(name: &str) -> String {
    format!("{}WebSocketPermission", pascal(name))
}

pub fn websocket_route(route_key: &str) -> String {
    format!("Route{}", pascal(route_key))
}

pub fn http_route(route_key: &str) -> String {
    format!("HttpRoute{}", pascal(route_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_become_distinct_logical_ids() {
        assert_eq!(websocket_route("$connect"), "RouteConnect");
        assert_eq!(websocket_route("joinSession"), "RouteJoinSession");
        assert_eq!(http_route("GET /sessions/{id}"), "HttpRouteGETSessionsId");
        assert_eq!(function("http"), "HttpFunction");
        let keys: std::collections::BTreeSet<String> =
            contract::Action::all_route_keys().map(websocket_route).collect();
        assert_eq!(keys.len(), contract::Action::all_route_keys().count());
    }
}
