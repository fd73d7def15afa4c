//! Connections: one row per WebSocket connection, and the fan-out index.
//!
//! The index `bySessionAudience` (partition `sessionId`, sort `audience`) answers the
//! fan-out queries: the listeners of one language (`audience = listener#de`), all listeners
//! (`begins_with(audience, "listener#")`) and the speaker (`audience = speaker`).

use super::item::{Item, Reader, key_of, n, s};
use super::{Store, StoreError, is_condition_failed, write_if};
use crate::ids::SessionId;
use crate::model::{Connection, LISTENER_AUDIENCE_PREFIX, Role, SPEAKER_AUDIENCE, Session, audience};
use crate::protocol::server::LanguageDistribution;
use crate::validation::LanguageCode;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use contract::tables::connections::{AUDIENCE, BY_SESSION_INDEX, CONNECTION_ID, SESSION_ID, TTL};
use std::collections::HashMap;

const ROLE: &str = "role";
const TARGET_LANGUAGE: &str = "targetLanguage";
const USER_ID: &str = "userId";
const CONNECTED_AT: &str = "connectedAt";
const SOURCE_IP: &str = "sourceIp";
const SESSION_EXPIRES_AT: &str = "sessionExpiresAt";
const COUNTED: &str = "counted";

/// The condition a row meets while it stands for a connection (`Connection::is_live`), with
/// `#ttl`, `#session_expires` and `:now` bound.
const LIVE_ROW: &str = "#ttl > :now AND (attribute_not_exists(#session_expires) OR #session_expires > :now)";

/// Where the next page of a fan-out query starts (DynamoDB's `LastEvaluatedKey`).
#[derive(Debug, Clone, PartialEq)]
pub struct PageToken(Item);

/// A listener's language change ([`Store::change_language`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageChange {
    /// The listener's row as it is now.
    pub connection: Connection,
    /// The listener's session after its per-language counts changed; `None` if they did not
    /// (the language was already the listener's, or the session is gone).
    pub session: Option<Session>,
}

/// A listener's place taken by the connection that refreshes it ([`Store::take_listener_place`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TakenPlace {
    /// The previous connection's row, now deleted.
    pub previous: Connection,
    /// The session after its per-language counts changed; `None` if they did not (the new
    /// connection listens in the previous one's language, or the session is gone).
    pub session: Option<Session>,
}

/// One page of listeners, and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerPage {
    pub connections: Vec<Connection>,
    pub next: Option<PageToken>,
}

impl Store {
    /// Stores a connection, replacing any row with the same id.
    pub async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .set_item(Some(connection_item(connection)))
            .send()
            .await
            .map_err(|error| StoreError::aws("PutItem", &self.tables.connections, error))?;
        Ok(())
    }

    /// Records that listener `connection_id`'s place is in its session's count (written once
    /// the count's write is known to have been applied). `false` if the row is gone (the
    /// connection closed meanwhile: its `$disconnect` found it uncounted and gave nothing back).
    pub async fn mark_counted(&self, connection_id: &str) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key(CONNECTION_ID, s(connection_id))
            .update_expression("SET #counted = :counted")
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", CONNECTION_ID)
            .expression_attribute_names("#counted", COUNTED)
            .expression_attribute_values(":counted", AttributeValue::Bool(true));
        write_if(request, &self.tables.connections).await
    }

    /// The connection, or `None` if it does not exist or has expired.
    pub async fn get_connection(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.connections)
            .key(CONNECTION_ID, s(connection_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| StoreError::aws("GetItem", &self.tables.connections, error))?;
        output.item.map(|item| self.live_connection(&item)).transpose().map(Option::flatten)
    }

    /// Deletes the connection and returns what it was, or `None` if there was no live row.
    pub async fn delete_connection(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        self.delete_connection_of(connection_id, Rows::Live).await
    }

    /// Deletes the connection and returns what it was, expired or not, or `None` if there was
    /// no row (for the recount, which uncounts expired rows too).
    pub(super) async fn delete_connection_any(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        self.delete_connection_of(connection_id, Rows::All).await
    }

    async fn delete_connection_of(&self, connection_id: &str, rows: Rows) -> Result<Option<Connection>, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.tables.connections)
            .key(CONNECTION_ID, s(connection_id))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|error| StoreError::aws("DeleteItem", &self.tables.connections, error))?;
        let Some(item) = output.attributes.filter(|item| !item.is_empty()) else {
            return Ok(None);
        };
        match rows {
            Rows::Live => self.live_connection(&item),
            Rows::All => read_connection(&item, &self.tables.connections).map(Some),
        }
    }

    /// Moves a listener to another target language: its row, then its session's per-language
    /// counts (one write each; the counts only if the language is another).
    pub async fn change_language(
        &self,
        connection_id: &str,
        language: LanguageCode,
    ) -> Result<LanguageChange, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key(CONNECTION_ID, s(connection_id))
            .update_expression("SET #language = :language, #audience = :audience")
            .condition_expression(format!("attribute_exists(#id) AND #role = :listener AND {LIVE_ROW}"))
            .expression_attribute_names("#session_expires", SESSION_EXPIRES_AT)
            .expression_attribute_names("#id", CONNECTION_ID)
            .expression_attribute_names("#language", TARGET_LANGUAGE)
            .expression_attribute_names("#audience", AUDIENCE)
            .expression_attribute_names("#role", ROLE)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":language", s(language.as_str()))
            .expression_attribute_values(":audience", s(audience(Role::Listener, Some(language))))
            .expression_attribute_values(":listener", s(Role::Listener.as_str()))
            .expression_attribute_values(":now", n(self.clock.now_seconds()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let before = match result {
            Ok(output) => read_connection(&output.attributes.unwrap_or_default(), &self.tables.connections)?,
            Err(error) if is_condition_failed(&error) => {
                return match self.get_connection(connection_id).await? {
                    None => Err(StoreError::ConnectionNotFound(connection_id.to_owned())),
                    Some(_) => Err(StoreError::NotAListener(connection_id.to_owned())),
                };
            }
            Err(error) => return Err(StoreError::aws("UpdateItem", &self.tables.connections, error)),
        };
        let session = match (&before.session_id, before.target_language) {
            (Some(session), Some(from)) if from != language => self.move_listener(session, from, language).await?,
            _ => None,
        };
        let connection = Connection { target_language: Some(language), ..before };
        Ok(LanguageChange { connection, session })
    }

    /// One page of a session's live listeners: of one language, or of every language.
    pub async fn listeners_page(
        &self,
        session: &SessionId,
        language: Option<LanguageCode>,
        start: Option<PageToken>,
    ) -> Result<ListenerPage, StoreError> {
        let (condition, value) = match language {
            Some(language) => {
                ("#session = :session AND #audience = :audience", audience(Role::Listener, Some(language)))
            }
            None => ("#session = :session AND begins_with(#audience, :audience)", LISTENER_AUDIENCE_PREFIX.to_owned()),
        };
        self.query_page(session, condition, value, start).await
    }

    /// Every live listener of a session (of one language, or of every language), across
    /// as many pages as it takes.
    pub async fn listeners(
        &self,
        session: &SessionId,
        language: Option<LanguageCode>,
    ) -> Result<Vec<Connection>, StoreError> {
        self.all_pages(|start| self.listeners_page(session, language, start)).await
    }

    /// How many live listener rows a session has in each target language, not counting
    /// `except`'s: its listener rows read from the fan-out index (only their language and
    /// the filter's attributes, rows past their TTL filtered out). This reads every listener
    /// of the session, so only the recount (a count that says full) and sessions stored
    /// before the per-language counts existed use it; the distribution clients see comes from
    /// the session item ([`Store::language_distribution`]).
    pub async fn live_listener_languages(
        &self,
        session: &SessionId,
        except: Option<&str>,
    ) -> Result<LanguageDistribution, StoreError> {
        let mut languages = LanguageDistribution::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.tables.connections)
                .index_name(BY_SESSION_INDEX)
                .key_condition_expression("#session = :session AND begins_with(#audience, :listeners)")
                .projection_expression("#language")
                .expression_attribute_names("#session", SESSION_ID)
                .expression_attribute_names("#audience", AUDIENCE)
                .expression_attribute_names("#language", TARGET_LANGUAGE)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_names("#session_expires", SESSION_EXPIRES_AT)
                .expression_attribute_values(":session", s(session.as_str()))
                .expression_attribute_values(":listeners", s(LISTENER_AUDIENCE_PREFIX))
                .expression_attribute_values(":now", n(self.clock.now_seconds()))
                .limit(self.page_size)
                .set_exclusive_start_key(start);
            request = match except {
                Some(except) => request
                    .filter_expression(format!("{LIVE_ROW} AND #id <> :except"))
                    .expression_attribute_names("#id", CONNECTION_ID)
                    .expression_attribute_values(":except", s(except)),
                None => request.filter_expression(LIVE_ROW),
            };
            let output =
                request.send().await.map_err(|error| StoreError::aws("Query", &self.tables.connections, error))?;
            for item in output.items.unwrap_or_default() {
                let reader = Reader { item: &item, table: &self.tables.connections, key: "?" };
                // Every listener row has a language ($connect refuses a listener without one).
                if reader.opt_string(TARGET_LANGUAGE)?.is_some() {
                    let language = reader.parsed(TARGET_LANGUAGE, LanguageCode::parse)?;
                    *languages.entry(language).or_default() += 1;
                }
            }
            match output.last_evaluated_key.filter(|key| !key.is_empty()) {
                Some(next) => start = Some(next),
                None => return Ok(languages),
            }
        }
    }

    /// Deletes listener `connection_id`'s row if it is a listener of `session`: its place in
    /// the session's listener count is then `to`'s, the connection that replaces it and
    /// listens in `language` (the place moves to that language if it was another's), and
    /// `to`'s row is marked counted. `None` if there is no such row (gone already, or another
    /// session's, or a speaker's) or the row held no place (never marked counted), and then
    /// there is no place to take.
    pub async fn take_listener_place(
        &self,
        connection_id: &str,
        session: &SessionId,
        to: &str,
        language: LanguageCode,
    ) -> Result<Option<TakenPlace>, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.connections)
            .key(CONNECTION_ID, s(connection_id))
            .condition_expression(format!("#session = :session AND #role = :listener AND {LIVE_ROW}"))
            .expression_attribute_names("#session", SESSION_ID)
            .expression_attribute_names("#role", ROLE)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#session_expires", SESSION_EXPIRES_AT)
            .expression_attribute_values(":now", n(self.clock.now_seconds()))
            .expression_attribute_values(":session", s(session.as_str()))
            .expression_attribute_values(":listener", s(Role::Listener.as_str()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let previous = match result {
            Ok(output) => match output.attributes {
                Some(item) => read_connection(&item, &self.tables.connections)?,
                None => return Ok(None),
            },
            Err(error) if is_condition_failed(&error) => return Ok(None),
            Err(error) => return Err(StoreError::aws("DeleteItem", &self.tables.connections, error)),
        };
        if !previous.counted {
            return Ok(None);
        }
        self.mark_place_taken(to).await;
        let session = match previous.target_language {
            Some(from) if from != language => self.move_listener(session, from, language).await?,
            _ => None,
        };
        Ok(Some(TakenPlace { previous, session }))
    }

    /// Every listener row of a session, expired ones included, except `except`'s: what a
    /// recount examines (`Store::admit_listener`).
    pub(super) async fn listener_rows(&self, session: &SessionId, except: &str) -> Result<Vec<Connection>, StoreError> {
        let condition = "#session = :session AND begins_with(#audience, :audience)";
        let mut rows = self
            .all_pages(|start| {
                self.query_page_of(session, condition, LISTENER_AUDIENCE_PREFIX.to_owned(), start, Rows::All)
            })
            .await?;
        rows.retain(|row| row.connection_id != except);
        Ok(rows)
    }

    /// The live speaker connections of a session, newest first. There is usually one; during
    /// a refresh the old and the new connection are both present for a moment.
    pub async fn speaker_connections(&self, session: &SessionId) -> Result<Vec<Connection>, StoreError> {
        let condition = "#session = :session AND #audience = :audience";
        let mut all =
            self.all_pages(|start| self.query_page(session, condition, SPEAKER_AUDIENCE.to_owned(), start)).await?;
        all.sort_by_key(|connection| std::cmp::Reverse(connection.connected_at));
        Ok(all)
    }

    /// Every connection of the pages `page` returns, following each page's token.
    async fn all_pages<F, Fut>(&self, page: F) -> Result<Vec<Connection>, StoreError>
    where
        F: Fn(Option<PageToken>) -> Fut,
        Fut: std::future::Future<Output = Result<ListenerPage, StoreError>>,
    {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let ListenerPage { connections, next } = page(start).await?;
            all.extend(connections);
            match next {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }

    async fn query_page(
        &self,
        session: &SessionId,
        condition: &str,
        audience_value: String,
        start: Option<PageToken>,
    ) -> Result<ListenerPage, StoreError> {
        self.query_page_of(session, condition, audience_value, start, Rows::Live).await
    }

    async fn query_page_of(
        &self,
        session: &SessionId,
        condition: &str,
        audience_value: String,
        start: Option<PageToken>,
        rows: Rows,
    ) -> Result<ListenerPage, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.connections)
            .index_name(BY_SESSION_INDEX)
            .key_condition_expression(condition)
            .expression_attribute_names("#session", SESSION_ID)
            .expression_attribute_names("#audience", AUDIENCE)
            .expression_attribute_values(":session", s(session.as_str()))
            .expression_attribute_values(":audience", s(audience_value))
            .limit(self.page_size)
            .set_exclusive_start_key(start.map(|token| token.0))
            .send()
            .await
            .map_err(|error| StoreError::aws("Query", &self.tables.connections, error))?;
        let mut connections = Vec::new();
        for item in output.items.unwrap_or_default() {
            let connection = match rows {
                Rows::Live => self.live_connection(&item)?,
                Rows::All => Some(read_connection(&item, &self.tables.connections)?),
            };
            connections.extend(connection);
        }
        let next = output.last_evaluated_key.filter(|key| !key.is_empty()).map(PageToken);
        Ok(ListenerPage { connections, next })
    }

    fn live_connection(&self, item: &Item) -> Result<Option<Connection>, StoreError> {
        let connection = read_connection(item, &self.tables.connections)?;
        Ok(connection.is_live(self.clock.now_seconds()).then_some(connection))
    }
}

/// Which rows a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// Rows whose TTL has not passed.
    Live,
    /// Every row, expired or not.
    All,
}

fn connection_item(connection: &Connection) -> Item {
    let mut item = HashMap::from([
        (CONNECTION_ID.to_owned(), s(&connection.connection_id)),
        (AUDIENCE.to_owned(), s(connection.audience())),
        (ROLE.to_owned(), s(connection.role.as_str())),
        (CONNECTED_AT.to_owned(), n(connection.connected_at)),
        (SOURCE_IP.to_owned(), s(&connection.source_ip)),
        (TTL.to_owned(), n(connection.ttl)),
    ]);
    // A connection without a session has no `sessionId`, so it is not in the fan-out index.
    if let Some(session) = &connection.session_id {
        item.insert(SESSION_ID.to_owned(), s(session.as_str()));
    }
    if let Some(language) = connection.target_language {
        item.insert(TARGET_LANGUAGE.to_owned(), s(language.as_str()));
    }
    if let Some(user) = &connection.user_id {
        item.insert(USER_ID.to_owned(), s(user));
    }
    if let Some(expires) = connection.session_expires_at {
        item.insert(SESSION_EXPIRES_AT.to_owned(), n(expires));
    }
    if connection.counted {
        item.insert(COUNTED.to_owned(), AttributeValue::Bool(true));
    }
    item
}

fn read_connection(item: &Item, table: &str) -> Result<Connection, StoreError> {
    let reader = Reader { item, table, key: key_of(item, CONNECTION_ID) };
    let target_language = match reader.opt_string(TARGET_LANGUAGE)? {
        Some(_) => Some(reader.parsed(TARGET_LANGUAGE, LanguageCode::parse)?),
        None => None,
    };
    Ok(Connection {
        connection_id: reader.string(CONNECTION_ID)?.to_owned(),
        session_id: match reader.opt_string(SESSION_ID)? {
            Some(_) => Some(reader.parsed(SESSION_ID, SessionId::parse)?),
            None => None,
        },
        role: reader.parsed(ROLE, |text| Role::parse(text).ok_or("unknown role"))?,
        target_language,
        user_id: reader.opt_string(USER_ID)?.map(str::to_owned),
        connected_at: reader.number(CONNECTED_AT)?,
        source_ip: reader.string(SOURCE_IP)?.to_owned(),
        ttl: reader.number(TTL)?,
        session_expires_at: reader.opt_number(SESSION_EXPIRES_AT)?,
        counted: reader.opt_bool(COUNTED)?.unwrap_or(false),
    })
}
