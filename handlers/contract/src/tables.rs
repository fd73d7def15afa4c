//! The DynamoDB tables, declared exactly as the store in `session-core` queries them.
//!
//! The attribute names here are the ones the store writes; the store takes them from these
//! constants, so a renamed key changes the store, the template and the test tables together.

use crate::model::{AttributeType, GlobalIndex, KeyAttribute, Projection, TableId, TableSchema};

const fn string_key(name: &'static str) -> KeyAttribute {
    KeyAttribute { name, kind: AttributeType::String }
}

/// Sessions, keyed by session id. `expiresAt` (epoch seconds) is the TTL.
pub const SESSIONS: TableSchema = TableSchema {
    id: TableId::Sessions,
    logical_id: "SessionsTable",
    name_env: "SESSIONS_TABLE",
    partition_key: string_key(sessions::SESSION_ID),
    sort_key: None,
    global_indexes: &[],
    ttl_attribute: Some(sessions::EXPIRES_AT),
};

/// Attribute names of the Sessions table.
pub mod sessions {
    pub const SESSION_ID: &str = "sessionId";
    pub const EXPIRES_AT: &str = "expiresAt";
}

/// Connections, keyed by connection id, with an index on the session for the fan-out.
///
/// The index's sort key `audience` is `listener#<language>` for listeners and `speaker` for
/// the speaker, so one index answers "listeners of this language", "all listeners" (prefix
/// `listener#`) and "the speaker's connection" without a scan. Every row carries both index
/// keys, so no row is missing from the (sparse, AWS_FACTS 13) index.
pub const CONNECTIONS: TableSchema = TableSchema {
    id: TableId::Connections,
    logical_id: "ConnectionsTable",
    name_env: "CONNECTIONS_TABLE",
    partition_key: string_key(connections::CONNECTION_ID),
    sort_key: None,
    global_indexes: &[GlobalIndex {
        name: connections::BY_SESSION_INDEX,
        partition_key: string_key(connections::SESSION_ID),
        sort_key: Some(string_key(connections::AUDIENCE)),
        projection: Projection::All,
    }],
    ttl_attribute: Some(connections::TTL),
};

/// Attribute and index names of the Connections table.
pub mod connections {
    pub const CONNECTION_ID: &str = "connectionId";
    pub const SESSION_ID: &str = "sessionId";
    pub const AUDIENCE: &str = "audience";
    pub const TTL: &str = "ttl";
    pub const BY_SESSION_INDEX: &str = "bySessionAudience";
}

/// Rate-limit counters, keyed by `{operation}:{kind}:{value}`, one fixed window per row.
pub const RATE_LIMITS: TableSchema = TableSchema {
    id: TableId::RateLimits,
    logical_id: "RateLimitsTable",
    name_env: "RATE_LIMITS_TABLE",
    partition_key: string_key(rate_limits::IDENTIFIER),
    sort_key: None,
    global_indexes: &[],
    ttl_attribute: Some(rate_limits::TTL),
};

/// Attribute names of the RateLimits table.
pub mod rate_limits {
    pub const IDENTIFIER: &str = "identifier";
    pub const TTL: &str = "ttl";
}

/// Every table of the service.
pub const ALL: &[TableSchema] = &[SESSIONS, CONNECTIONS, RATE_LIMITS];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CONTRACT;
    use std::collections::BTreeSet;

    #[test]
    fn every_table_id_has_exactly_one_schema() {
        for id in [TableId::Sessions, TableId::Connections, TableId::RateLimits] {
            assert_eq!(ALL.iter().filter(|table| table.id == id).count(), 1, "{id:?}");
            assert_eq!(CONTRACT.table(id).id, id);
        }
    }

    #[test]
    fn logical_ids_and_env_names_are_unique() {
        let logical: BTreeSet<_> = ALL.iter().map(|table| table.logical_id).collect();
        let env: BTreeSet<_> = ALL.iter().map(|table| table.name_env).collect();
        assert_eq!(logical.len(), ALL.len());
        assert_eq!(env.len(), ALL.len());
    }

    #[test]
    fn key_attributes_are_listed_once_including_index_keys() {
        let names: Vec<_> = CONNECTIONS.key_attributes().iter().map(|key| key.name).collect();
        assert_eq!(names, ["connectionId", "sessionId", "audience"]);
        let names: Vec<_> = SESSIONS.key_attributes().iter().map(|key| key.name).collect();
        assert_eq!(names, ["sessionId"]);
    }

    #[test]
    fn the_fan_out_index_is_found_by_name() {
        let index = CONNECTIONS.index(connections::BY_SESSION_INDEX).expect("declared");
        assert_eq!(index.partition_key.name, connections::SESSION_ID);
        assert!(CONNECTIONS.index("nope").is_none());
    }

    #[test]
    fn the_contract_serializes_for_review() {
        let json = serde_json::to_value(CONTRACT).expect("serializable");
        assert_eq!(json["routeSelectionExpression"], "$request.body.action");
        assert_eq!(json["tables"][1]["globalIndexes"][0]["sortKey"]["name"], "audience");
        assert_eq!(json["tables"][0]["partitionKey"]["kind"], "String");
    }
}
