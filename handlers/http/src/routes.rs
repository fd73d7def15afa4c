//! The routes this function serves, bound to the contract's declarations.
//!
//! The contract lists the `http` function's routes; [`ROUTES`] pairs each of them, by
//! position, with the [`Operation`] that serves it. Route keys, paths and authorization are
//! only ever read from the contract. A compile-time check keeps the pairing honest: the
//! contract must declare exactly as many routes, each with the method its operation expects,
//! and every operation that acts for a user must sit behind the JWT authorizer.
//!
//! A request is found by the route key API Gateway selected, never by matching its method
//! and path a second time (the crate doc says why there is no path router).

use contract::functions::HTTP;
use contract::{HttpAuth, HttpMethod, HttpRoute};

/// The path parameter of the routes on one session (`/sessions/{id}`).
pub(crate) const ID_PARAMETER: &str = "id";

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    CreateSession,
    GetSession,
    UpdateSession,
    EndSession,
    Health,
}

impl Operation {
    /// The method of the route this operation serves.
    const fn method(self) -> HttpMethod {
        match self {
            Operation::CreateSession => HttpMethod::Post,
            Operation::GetSession | Operation::Health => HttpMethod::Get,
            Operation::UpdateSession => HttpMethod::Patch,
            Operation::EndSession => HttpMethod::Delete,
        }
    }

    /// Whether the operation acts for the caller (and so needs the token's `sub`).
    pub(crate) const fn needs_user(self) -> bool {
        matches!(self, Operation::CreateSession | Operation::UpdateSession | Operation::EndSession)
    }
}

/// `GET /sessions/{id}`, whose path is also the `Location` of a created session.
pub(crate) const SESSION_ROUTE: HttpRoute = HTTP.http_routes[1];

/// Every route of the contract with the operation serving it, in the contract's order.
pub(crate) const ROUTES: [(HttpRoute, Operation); 5] = [
    (HTTP.http_routes[0], Operation::CreateSession),
    (SESSION_ROUTE, Operation::GetSession),
    (HTTP.http_routes[2], Operation::UpdateSession),
    (HTTP.http_routes[3], Operation::EndSession),
    (HTTP.http_routes[4], Operation::Health),
];

// The contract and `ROUTES` agree: same routes, same methods, users behind the authorizer.
const _: () = {
    assert!(HTTP.http_routes.len() == ROUTES.len(), "the contract's HTTP routes and ROUTES differ in number");
    let mut index = 0;
    while index < ROUTES.len() {
        let (route, operation) = ROUTES[index];
        assert!(route.method as u8 == operation.method() as u8, "a contract route has another method than ROUTES");
        assert!(
            !operation.needs_user() || matches!(route.auth, HttpAuth::Jwt),
            "an operation acting for a user is on a route without the JWT authorizer"
        );
        index += 1;
    }
};

/// The route with this key (`POST /sessions`) and the operation serving it.
pub(crate) fn find(route_key: &str) -> Option<(HttpRoute, Operation)> {
    ROUTES.into_iter().find(|(route, _)| route.route_key() == route_key)
}

/// Every route key served, for messages about unknown routes.
pub(crate) fn route_keys() -> Vec<String> {
    ROUTES.iter().map(|(route, _)| route.route_key()).collect()
}

/// The path of a session's resource, for `Location`.
pub(crate) fn session_path(id: &str) -> String {
    SESSION_ROUTE.path.replace(&format!("{{{ID_PARAMETER}}}"), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_route_is_found_by_its_key() {
        for route in HTTP.http_routes {
            let (found, _) = find(&route.route_key()).expect("served");
            assert_eq!(found, *route);
        }
        assert!(find("GET /sessions").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn routes_on_one_session_have_the_id_parameter() {
        let placeholder = format!("{{{ID_PARAMETER}}}");
        for (route, operation) in ROUTES {
            let takes_id =
                matches!(operation, Operation::GetSession | Operation::UpdateSession | Operation::EndSession);
            assert_eq!(route.path.contains(&placeholder), takes_id, "{}", route.route_key());
        }
    }

    #[test]
    fn the_location_of_a_session_is_its_get_path() {
        assert_eq!(session_path("quiet-harbor-417"), "/sessions/quiet-harbor-417");
    }
}
