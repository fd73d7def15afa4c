//! The events API Gateway sends to Lambda, shaped as AWS sends them: WebSocket `CONNECT`,
//! `MESSAGE` and `DISCONNECT` events (payload format 1.0, with the authorizer's context on every
//! route of the connection), the REQUEST authorizer's event, and HTTP API payload format 2.0.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// What API Gateway knows about a WebSocket connection, for every event of it.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub connection_id: String,
    pub connected_at_ms: u64,
    pub api_id: String,
    pub stage: String,
    /// The `Host` the client connected to.
    pub domain_name: String,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// `principalId`, the authorizer's context and `integrationLatency`; `None` without an
    /// authorizer.
    pub authorizer: Option<Map<String, Value>>,
}

/// The request of a WebSocket handshake: headers and query string as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    /// In the order received; names as the HTTP layer gives them.
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

impl Handshake {
    /// A header by name, ignoring case (the last one if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().rev().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// A query string parameter (the last one if repeated).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn single_and_multi(pairs: &[(String, String)]) -> (Value, Value) {
        if pairs.is_empty() {
            return (Value::Null, Value::Null);
        }
        let mut single = Map::new();
        let mut multi: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, value) in pairs {
            single.insert(key.clone(), Value::String(value.clone()));
            multi.entry(key).or_default().push(Value::String(value.clone()));
        }
        let multi = multi.into_iter().map(|(key, values)| (key.to_owned(), Value::Array(values))).collect();
        (Value::Object(single), Value::Object(multi))
    }
}

impl ConnectionContext {
    fn request_context(&self, route_key: &str, event_type: &str) -> Map<String, Value> {
        let now = epoch_ms();
        let request_id = crate::ids::request_id();
        let mut identity = Map::new();
        identity.insert("sourceIp".into(), Value::String(self.source_ip.clone()));
        if let Some(agent) = &self.user_agent {
            identity.insert("userAgent".into(), Value::String(agent.clone()));
        }
        let mut context = json!({
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": self.connected_at_ms,
            "requestTimeEpoch": now,
            "identity": identity,
            "requestId": request_id,
            "domainName": self.domain_name,
            "connectionId": self.connection_id,
            "apiId": self.api_id,
        });
        if let (Some(map), Some(authorizer)) = (context.as_object_mut(), &self.authorizer) {
            map.insert("authorizer".into(), Value::Object(authorizer.clone()));
        }
        match context {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The `$connect` route's event.
    pub fn connect_event(&self, handshake: &Handshake) -> Value {
        let (headers, multi_headers) = Handshake::single_and_multi(&handshake.headers);
        let (query, multi_query) = Handshake::single_and_multi(&handshake.query);
        let mut event = json!({
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "requestContext": self.request_context(contract::CONNECT_ROUTE, "CONNECT"),
            "isBase64Encoded": false,
        });
        if let Some(map) = event.as_object_mut()
            && !query.is_null()
        {
            map.insert("queryStringParameters".into(), query);
            map.insert("multiValueQueryStringParameters".into(), multi_query);
        }
        event
    }

    /// A message's event; binary frames arrive base64-encoded, as on AWS.
    pub fn message_event(&self, route_key: &str, body: &Body) -> Value {
        let mut context = self.request_context(route_key, "MESSAGE");
        context.insert("messageId".into(), Value::String(crate::ids::message_id()));
        let (body, encoded) = match body {
            Body::Text(text) => (text.clone(), false),
            Body::Binary(bytes) => (base64_encode(bytes), true),
        };
        json!({ "requestContext": context, "body": body, "isBase64Encoded": encoded })
    }

    /// The `$disconnect` route's event.
    pub fn disconnect_event(&self, status_code: u16, reason: &str) -> Value {
        let mut context = self.request_context(contract::DISCONNECT_ROUTE, "DISCONNECT");
        context.insert("disconnectStatusCode".into(), json!(status_code));
        context.insert("disconnectReason".into(), json!(reason));
        json!({
            "headers": {"Host": self.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
            "multiValueHeaders": {"Host": [self.domain_name], "x-api-key": [""], "X-Forwarded-For": [""], "x-restapi": [""]},
            "requestContext": context,
            "isBase64Encoded": false,
        })
    }

    /// The REQUEST authorizer's event for this connection's `$connect`.
    pub fn authorizer_event(&self, handshake: &Handshake) -> Value {
        let (headers, multi_headers) = Handshake::single_and_multi(&handshake.headers);
        let (query, multi_query) = Handshake::single_and_multi(&handshake.query);
        json!({
            "type": "REQUEST",
            "methodArn": self.connect_method_arn(),
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "stageVariables": {},
            "requestContext": self.request_context(contract::CONNECT_ROUTE, "CONNECT"),
        })
    }

    /// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/$connect`.
    pub fn connect_method_arn(&self) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{}/{}/{}",
            crate::REGION,
            crate::resolve::ACCOUNT,
            self.api_id,
            self.stage,
            contract::CONNECT_ROUTE
        )
    }
}

/// A message's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    Binary(Vec<u8>),
}

/// One HTTP API request, as the gateway received and routed it.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub api_id: &'a str,
    pub domain_name: &'a str,
    pub route_key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub raw_query: &'a str,
    /// Lower-case names; repeated headers joined with commas, as payload 2.0 does.
    pub headers: BTreeMap<String, String>,
    pub path_parameters: BTreeMap<String, String>,
    pub source_ip: &'a str,
    pub body: &'a [u8],
    /// The JWT's claims, when a JWT authorizer passed the request.
    pub claims: Option<Map<String, Value>>,
}

impl HttpRequest<'_> {
    /// Payload format 2.0.
    pub fn event_v2(&self) -> Value {
        let now = epoch_ms();
        let (body, encoded) = match std::str::from_utf8(self.body) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (base64_encode(self.body), true),
        };
        let mut context = json!({
            "accountId": crate::resolve::ACCOUNT,
            "apiId": self.api_id,
            "domainName": self.domain_name,
            "domainPrefix": self.domain_name.split('.').next().unwrap_or_default(),
            "http": {
                "method": self.method,
                "path": self.path,
                "protocol": "HTTP/1.1",
                "sourceIp": self.source_ip,
                "userAgent": self.headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": crate::ids::request_id(),
            "routeKey": self.route_key,
            "stage": "$default",
            "time": request_time(now),
            "timeEpoch": now,
        });
        if let (Some(map), Some(claims)) = (context.as_object_mut(), &self.claims) {
            map.insert("authorizer".into(), json!({"jwt": {"claims": claims, "scopes": null}}));
        }
        let query: Map<String, Value> = crate::http_api::query_pairs(self.raw_query)
            .into_iter()
            .map(|(key, value)| (key, Value::String(value)))
            .collect();
        let mut event = json!({
            "version": "2.0",
            "routeKey": self.route_key,
            "rawPath": self.path,
            "rawQueryString": self.raw_query,
            "headers": self.headers,
            "requestContext": context,
            "isBase64Encoded": encoded,
        });
        if let Some(map) = event.as_object_mut() {
            if !query.is_empty() {
                map.insert("queryStringParameters".into(), Value::Object(query));
            }
            if !self.path_parameters.is_empty() {
                map.insert("pathParameters".into(), json!(self.path_parameters));
            }
            if !self.body.is_empty() {
                map.insert("body".into(), Value::String(body));
            }
        }
        event
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis() as u64).unwrap_or_default()
}

/// `25/Nov/2026:19:01:21 +0000`, the format of `requestTime`.
pub fn request_time(epoch_ms: u64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let seconds = epoch_ms / 1000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let time = seconds % 86_400;
    let month_name = MONTHS.get(month.saturating_sub(1) as usize).copied().unwrap_or("Jan");
    format!("{day:02}/{month_name}/{year}:{:02}:{:02}:{:02} +0000", time / 3600, time % 3600 / 60, time % 60)
}

/// Year, month (1–12) and day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::events::WebSocketEvent;

    fn context() -> ConnectionContext {
        let mut authorizer = Map::new();
        authorizer.insert("principalId".into(), json!("anonymous"));
        authorizer.insert("authenticated".into(), json!("false"));
        ConnectionContext {
            connection_id: "L0SM9cOFvHcCIhw=".into(),
            connected_at_ms: 1_795_633_281_000,
            api_id: "websocketapi".into(),
            stage: "dev".into(),
            domain_name: "127.0.0.1:4510".into(),
            source_ip: "127.0.0.1".into(),
            user_agent: Some("test".into()),
            authorizer: Some(authorizer),
        }
    }

    #[test]
    fn request_time_is_formatted_like_api_gateway() {
        assert_eq!(request_time(1_795_633_281_000), "25/Nov/2026:19:01:21 +0000");
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(request_time(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn events_parse_as_the_functions_read_them() {
        let handshake = Handshake {
            headers: vec![("host".into(), "127.0.0.1:4510".into())],
            query: vec![("sessionId".into(), "quiet-harbor-417".into()), ("targetLanguage".into(), "de".into())],
        };
        let connect: WebSocketEvent = serde_json::from_value(context().connect_event(&handshake)).expect("parses");
        assert_eq!(connect.request_context.route_key, "$connect");
        assert_eq!(connect.request_context.event_type, "CONNECT");
        assert_eq!(
            connect.query_string_parameters.and_then(|query| query.get("targetLanguage").cloned()).as_deref(),
            Some("de")
        );
        let message: WebSocketEvent =
            serde_json::from_value(context().message_event("heartbeat", &Body::Text("{}".into()))).expect("parses");
        assert_eq!(message.request_context.connection_id, "L0SM9cOFvHcCIhw=");
        let authorizer = message.request_context.authorizer.expect("the context reaches every route");
        assert_eq!(authorizer.get("authenticated"), Some(&json!("false")));
        let disconnect = context().disconnect_event(1001, "Going away");
        assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], json!(1001));
        assert_eq!(
            context().connect_method_arn(),
            "arn:aws:execute-api:us-east-1:123456789012:websocketapi/dev/$connect"
        );
    }

    #[test]
    fn a_tokenless_handshake_has_no_query_string_fields() {
        let connect = context().connect_event(&Handshake::default());
        assert!(connect.get("queryStringParameters").is_none());
        assert_eq!(context().message_event("x", &Body::Binary(vec![1, 2]))["isBase64Encoded"], json!(true));
    }
}
