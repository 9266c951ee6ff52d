//! The router: which value (a handler, to the application) a method and a path lead to.
//!
//! Paths are matched by [`matchit`] (axum's radix-tree router), then the method is looked up
//! in the small table of the matched path. Patterns:
//!
//! * literal text: `/users/me`;
//! * `{name}`: one parameter, up to the next `/` (or the literal suffix of its segment, as in
//!   `/img{id}.png`); one parameter per segment;
//! * `{*name}`: a catch-all, the rest of the path without its leading `/` (`/files/{*path}`
//!   gives `path = "a/b.txt"` for `/files/a/b.txt`); last in a pattern, and it needs at
//!   least one character (`/files/` is not matched by `/files/{*path}`);
//! * `{{` and `}}`: literal braces.
//!
//! Rules:
//!
//! * Literal segments win over parameters, whatever the order routes were added in:
//!   `/users/me` and `/users/{id}` both get their requests. The match is made on the path
//!   alone, then on the method: if `/users/me` only has `POST`, a `GET /users/me` is a 405,
//!   not a request for `/users/{id}`.
//! * The path is matched as it came, still percent-encoded (`/us%65rs` is not `/users`);
//!   only the parameters are percent-decoded, after the match (so `%2F` inside a parameter
//!   is a `/` of its value, not a separator).
//! * A trailing slash makes another path: `/users/` does not match `/users`, nor the other
//!   way round, and an empty segment (`//`) is not skipped. Add both patterns to serve both
//!   (or redirect one to the other). The linear router before this one skipped empty
//!   segments, so `/users/` used to match `/users`.
//! * `HEAD` is served by the `GET` route when the path has no `HEAD` route of its own (the
//!   caller drops the body); the `Allow` of a 405 lists `HEAD` wherever `GET` is routed.
//!
//! This file uses nothing of the crate (no `crate::` paths): `benches/router.rs` includes
//! it as a module of its own to measure it.

use http::{HeaderValue, Method};
use percent_encoding::percent_decode_str;
use std::collections::HashMap;
use std::fmt;

/// The error behind a [`RouteError`], boxed so that the router's own types stay private.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a route could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The same method and path were routed twice.
    #[error("route {method} {path} is already defined")]
    Duplicate {
        /// The method routed twice.
        method: Method,
        /// The path routed twice, as given.
        path: String,
    },
    /// The path would match requests an earlier path already matches, as `/users/{name}`
    /// does after `/users/{id}` (the two parameters differ only by name).
    #[error("route path {path:?} conflicts with the earlier {with:?}")]
    Conflict {
        /// The path that could not be added, as given.
        path: String,
        /// The earlier path it conflicts with.
        with: String,
        /// The router's own report.
        #[source]
        source: BoxError,
    },
    /// The path is not a valid pattern: it does not start with `/`, has an unclosed or empty
    /// `{}`, two parameters in one segment, or a catch-all before its end.
    #[error("invalid route path {path:?}")]
    InvalidPath {
        /// The path, as given.
        path: String,
        /// What is wrong with it.
        #[source]
        source: BoxError,
    },
}

/// A path that does not start with `/`: no request path can match it.
#[derive(Debug, thiserror::Error)]
#[error("a route path starts with '/'")]
struct NoLeadingSlash;

/// Paths to values, per method.
pub(crate) struct Router<T> {
    /// Path patterns to indexes in `paths`.
    tree: matchit::Router<usize>,
    /// The method table of each path pattern.
    paths: Vec<Methods<T>>,
    /// Each path pattern as given, to its index in `paths`: a second method for a path is
    /// no conflict.
    indexes: HashMap<String, usize>,
}

/// The routes of one path pattern.
struct Methods<T> {
    /// Few methods per path: a linear search beats a map.
    routes: Vec<(Method, T)>,
    /// The `Allow` header of a 405 on this path.
    allow: HeaderValue,
}

/// What a request's method and path lead to.
#[derive(Debug)]
pub(crate) enum Lookup<'a, T> {
    /// The route's value and the path's parameters.
    Found {
        /// The value routed.
        value: &'a T,
        /// The parameters, percent-decoded.
        params: Params,
    },
    /// The path exists for other methods: answer 405 with this `Allow` value (sorted,
    /// comma-separated; includes `HEAD` when `GET` is routed).
    MethodNotAllowed {
        /// The methods routed for this path.
        allow: HeaderValue,
    },
    /// No route has this path: answer 404.
    NotFound,
    /// A parameter is not valid UTF-8 once percent-decoded: answer 400.
    BadParam,
}

impl<T> Router<T> {
    /// A router without routes.
    pub(crate) fn new() -> Self {
        Router {
            tree: matchit::Router::new(),
            paths: Vec::new(),
            indexes: HashMap::new(),
        }
    }

    /// Routes `method` and `path` to `value`.
    pub(crate) fn insert(
        &mut self,
        method: Method,
        path: &str,
        value: T,
    ) -> Result<(), RouteError> {
        let index = match self.indexes.get(path) {
            Some(&index) => index,
            None => {
                if !path.starts_with('/') {
                    return Err(RouteError::InvalidPath {
                        path: path.to_owned(),
                        source: Box::new(NoLeadingSlash),
                    });
                }
                let index = self.paths.len();
                self.tree.insert(path, index).map_err(|e| match e {
                    matchit::InsertError::Conflict { ref with } => RouteError::Conflict {
                        path: path.to_owned(),
                        with: with.clone(),
                        source: Box::new(e),
                    },
                    e => RouteError::InvalidPath {
                        path: path.to_owned(),
                        source: Box::new(e),
                    },
                })?;
                self.paths.push(Methods {
                    routes: Vec::new(),
                    allow: HeaderValue::from_static(""),
                });
                self.indexes.insert(path.to_owned(), index);
                index
            }
        };
        let methods = &mut self.paths[index];
        if methods.routes.iter().any(|(m, _)| *m == method) {
            return Err(RouteError::Duplicate {
                method,
                path: path.to_owned(),
            });
        }
        methods.routes.push((method, value));
        methods.allow = allow(&methods.routes);
        Ok(())
    }

    /// Where `method` and `path` (the request's path, without its query) lead.
    pub(crate) fn lookup(&self, method: &Method, path: &str) -> Lookup<'_, T> {
        let Ok(matched) = self.tree.at(path) else {
            return Lookup::NotFound;
        };
        let methods = &self.paths[*matched.value];
        let find = |wanted: &Method| {
            methods
                .routes
                .iter()
                .find(|(m, _)| m == wanted)
                .map(|(_, value)| value)
        };
        let found = match find(method) {
            None if *method == Method::HEAD => find(&Method::GET),
            found => found,
        };
        let Some(value) = found else {
            return Lookup::MethodNotAllowed {
                allow: methods.allow.clone(),
            };
        };
        match Params::decode(&matched.params, path) {
            Some(params) => Lookup::Found { value, params },
            None => Lookup::BadParam,
        }
    }
}

/// The `Allow` value of a path's routes: their methods, and `HEAD` if `GET` is one, sorted
/// and comma-separated.
fn allow<T>(routes: &[(Method, T)]) -> HeaderValue {
    let mut names: Vec<&str> = routes.iter().map(|(m, _)| m.as_str()).collect();
    if routes.iter().any(|(m, _)| m == Method::GET) {
        names.push(Method::HEAD.as_str());
    }
    names.sort_unstable();
    names.dedup();
    HeaderValue::from_str(&names.join(", ")).expect("method names are tokens")
}

/// The path parameters of the matched route, percent-decoded (`%20` is a space, and `%2F`
/// a `/` of the value). For the route `/users/{id}/files/{*path}` and the request path
/// `/users/7/files/a%20b/c`, `get("id")` is `Some("7")` and `get("path")` is `Some("a b/c")`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// The names and values back to back: name, value, name, value...
    text: String,
    /// Where each parameter's name and value end in `text`.
    ends: Vec<(usize, usize)>,
}

/// Room reserved for each parameter's name in the buffer of [`Params`] (a longer one grows it).
const NAME_ROOM: usize = 16;

impl Params {
    /// The parameters matchit found in `path`, percent-decoded: `None` if one is not UTF-8
    /// once decoded. Two allocations (plus one per encoded value, to decode it), whatever
    /// their number; none without parameters.
    fn decode(raw: &matchit::Params<'_, '_>, path: &str) -> Option<Params> {
        if raw.is_empty() {
            return Some(Params::default());
        }
        // The values take at most the path's length; the names are short. One pass, as
        // matchit checks the UTF-8 of each name and value as it hands them out.
        let mut params = Params {
            text: String::with_capacity(path.len() + NAME_ROOM * raw.len()),
            ends: Vec::with_capacity(raw.len()),
        };
        for (name, value) in raw.iter() {
            params.text.push_str(name);
            let name_end = params.text.len();
            if value.contains('%') {
                params
                    .text
                    .push_str(&percent_decode_str(value).decode_utf8().ok()?);
            } else {
                params.text.push_str(value);
            }
            params.ends.push((name_end, params.text.len()));
        }
        Some(params)
    }

    /// The value of the parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|&(n, _)| n == name)
            .map(|(_, value)| value)
    }

    /// The parameters as `(name, value)`, in the order of the route's path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let name = &self.text[start..name_end];
            let value = &self.text[name_end..value_end];
            start = value_end;
            (name, value)
        })
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none (the route's path has no parameters).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(Method, &str)]) -> Router<usize> {
        let mut router = Router::new();
        for (i, (method, path)) in routes.iter().enumerate() {
            router.insert(method.clone(), path, i).unwrap();
        }
        router
    }

    /// The value and parameters found, or panics.
    fn found(router: &Router<usize>, method: Method, path: &str) -> (usize, Vec<(String, String)>) {
        match router.lookup(&method, path) {
            Lookup::Found { value, params } => (
                *value,
                params
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            ),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    fn allow_of(router: &Router<usize>, method: Method, path: &str) -> String {
        match router.lookup(&method, path) {
            Lookup::MethodNotAllowed { allow } => allow.to_str().unwrap().to_owned(),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn params_and_catch_all() {
        let r = router(&[
            (Method::GET, "/users/{id}"),
            (Method::GET, "/users/{id}/posts/{post}"),
            (Method::GET, "/files/{*path}"),
            (Method::GET, "/img/{name}.png"),
        ]);
        assert_eq!(
            found(&r, Method::GET, "/users/7"),
            (0, pairs(&[("id", "7")]))
        );
        assert_eq!(
            found(&r, Method::GET, "/users/7/posts/42"),
            (1, pairs(&[("id", "7"), ("post", "42")]))
        );
        assert_eq!(
            found(&r, Method::GET, "/files/a/b/c.txt"),
            (2, pairs(&[("path", "a/b/c.txt")]))
        );
        assert_eq!(
            found(&r, Method::GET, "/img/cat.png"),
            (3, pairs(&[("name", "cat")]))
        );
        // A parameter is one segment, and is not empty; so is a catch-all.
        assert!(matches!(
            r.lookup(&Method::GET, "/users/7/x"),
            Lookup::NotFound
        ));
        assert!(matches!(
            r.lookup(&Method::GET, "/users/"),
            Lookup::NotFound
        ));
        assert!(matches!(
            r.lookup(&Method::GET, "/files/"),
            Lookup::NotFound
        ));
        assert!(matches!(r.lookup(&Method::GET, "/files"), Lookup::NotFound));

        let Lookup::Found { params, .. } = r.lookup(&Method::GET, "/users/7/posts/42") else {
            panic!()
        };
        assert_eq!(params.get("id"), Some("7"));
        assert_eq!(params.get("post"), Some("42"));
        assert_eq!(params.get("nope"), None);
        assert_eq!(params.len(), 2);
        assert_eq!(format!("{params:?}"), r#"{"id": "7", "post": "42"}"#);
        assert_eq!(params.clone(), params);
    }

    #[test]
    fn no_params_no_allocation() {
        let r = router(&[(Method::GET, "/health")]);
        let Lookup::Found { params, .. } = r.lookup(&Method::GET, "/health") else {
            panic!()
        };
        assert!(params.is_empty());
        assert_eq!(params.text.capacity(), 0);
        assert_eq!(params.ends.capacity(), 0);
        assert_eq!(params.iter().count(), 0);
    }

    #[test]
    fn percent_decoding() {
        let r = router(&[
            (Method::GET, "/users/{name}"),
            (Method::GET, "/files/{*path}"),
        ]);
        assert_eq!(
            found(&r, Method::GET, "/users/John%20Doe"),
            (0, pairs(&[("name", "John Doe")]))
        );
        // `%2F` is a `/` of the value, not a separator.
        assert_eq!(
            found(&r, Method::GET, "/users/a%2Fb"),
            (0, pairs(&[("name", "a/b")]))
        );
        assert_eq!(
            found(&r, Method::GET, "/users/caf%C3%A9"),
            (0, pairs(&[("name", "café")]))
        );
        assert_eq!(
            found(&r, Method::GET, "/files/a%20b/c%25d"),
            (1, pairs(&[("path", "a b/c%d")]))
        );
        // A `%` not followed by two hex digits stays as it is.
        assert_eq!(
            found(&r, Method::GET, "/users/100%"),
            (0, pairs(&[("name", "100%")]))
        );
        // Not UTF-8 once decoded.
        assert!(matches!(
            r.lookup(&Method::GET, "/users/%FF"),
            Lookup::BadParam
        ));
        assert!(matches!(
            r.lookup(&Method::GET, "/files/ok/%C3"),
            Lookup::BadParam
        ));
        // The match is made on the path as it came: the literal part is not decoded.
        let r = router(&[(Method::GET, "/users")]);
        assert!(matches!(
            r.lookup(&Method::GET, "/us%65rs"),
            Lookup::NotFound
        ));
    }

    #[test]
    fn static_beats_param_in_either_order() {
        let orders: [&[(Method, &str)]; 2] = [
            &[(Method::GET, "/users/me"), (Method::GET, "/users/{id}")],
            &[(Method::GET, "/users/{id}"), (Method::GET, "/users/me")],
        ];
        for routes in orders {
            let r = router(routes);
            let me = routes.iter().position(|(_, p)| *p == "/users/me").unwrap();
            let id = 1 - me;
            assert_eq!(found(&r, Method::GET, "/users/me"), (me, vec![]));
            assert_eq!(
                found(&r, Method::GET, "/users/7"),
                (id, pairs(&[("id", "7")]))
            );
            // A prefix of the literal is a parameter value.
            assert_eq!(
                found(&r, Method::GET, "/users/m"),
                (id, pairs(&[("id", "m")]))
            );
            assert_eq!(
                found(&r, Method::GET, "/users/mee"),
                (id, pairs(&[("id", "mee")]))
            );
        }
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        let r = router(&[
            (Method::POST, "/users"),
            (Method::GET, "/users"),
            (Method::DELETE, "/users/{id}"),
            (Method::PUT, "/users/{id}"),
            (Method::HEAD, "/ping"),
        ]);
        assert!(matches!(r.lookup(&Method::GET, "/nope"), Lookup::NotFound));
        assert!(matches!(r.lookup(&Method::POST, "/user"), Lookup::NotFound));
        assert_eq!(allow_of(&r, Method::PUT, "/users"), "GET, HEAD, POST");
        assert_eq!(allow_of(&r, Method::DELETE, "/users"), "GET, HEAD, POST");
        // No GET, so no HEAD.
        assert_eq!(allow_of(&r, Method::GET, "/users/7"), "DELETE, PUT");
        assert_eq!(allow_of(&r, Method::HEAD, "/users/7"), "DELETE, PUT");
        // A HEAD route alone does not serve GET.
        assert_eq!(allow_of(&r, Method::GET, "/ping"), "HEAD");
        // A literal path is matched before the method: a 405 there, not the parameter route.
        let r = router(&[(Method::POST, "/users/me"), (Method::GET, "/users/{id}")]);
        assert_eq!(allow_of(&r, Method::GET, "/users/me"), "POST");
    }

    #[test]
    fn head_served_by_get() {
        let r = router(&[(Method::GET, "/users/{id}")]);
        assert_eq!(
            found(&r, Method::HEAD, "/users/7"),
            (0, pairs(&[("id", "7")]))
        );
    }

    #[test]
    fn head_route_preferred() {
        for routes in [
            [(Method::GET, "/a"), (Method::HEAD, "/a")],
            [(Method::HEAD, "/a"), (Method::GET, "/a")],
        ] {
            let r = router(&routes);
            let head = routes.iter().position(|(m, _)| *m == Method::HEAD).unwrap();
            assert_eq!(found(&r, Method::HEAD, "/a"), (head, vec![]));
            assert_eq!(found(&r, Method::GET, "/a"), (1 - head, vec![]));
            assert_eq!(allow_of(&r, Method::POST, "/a"), "GET, HEAD");
        }
    }

    #[test]
    fn duplicate_route() {
        let mut r = router(&[(Method::GET, "/users/{id}"), (Method::POST, "/users/{id}")]);
        let err = r.insert(Method::GET, "/users/{id}", 9).unwrap_err();
        assert!(
            matches!(&err, RouteError::Duplicate { method, path } if *method == Method::GET && path == "/users/{id}"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "route GET /users/{id} is already defined");
        // The first route stays.
        assert_eq!(
            found(&r, Method::GET, "/users/7"),
            (0, pairs(&[("id", "7")]))
        );
    }

    #[test]
    fn conflicting_param_names() {
        let mut r = router(&[(Method::GET, "/users/{id}")]);
        // Even for another method: the path is one tree, whatever the method.
        let err = r.insert(Method::POST, "/users/{name}", 1).unwrap_err();
        match &err {
            RouteError::Conflict { path, with, .. } => {
                assert_eq!(path, "/users/{name}");
                assert_eq!(with, "/users/{id}");
            }
            other => panic!("{other:?}"),
        }
        assert!(std::error::Error::source(&err).is_some());
        // Nothing was added.
        assert_eq!(allow_of(&r, Method::POST, "/users/7"), "GET, HEAD");
        // Two catch-alls at one place conflict too.
        let mut r = router(&[(Method::GET, "/files/{*path}")]);
        assert!(matches!(
            r.insert(Method::GET, "/files/{*rest}", 1),
            Err(RouteError::Conflict { .. })
        ));
    }

    #[test]
    fn invalid_pattern() {
        for path in [
            "/users/{id",
            "/users/{}",
            "/users/{a}{b}",
            "/files/{*path}/more",
            "users",
            "",
        ] {
            let mut r = Router::new();
            let err = r.insert(Method::GET, path, 0).unwrap_err();
            match &err {
                RouteError::InvalidPath { path: p, .. } => assert_eq!(p, path),
                other => panic!("{path:?}: {other:?}"),
            }
            assert!(std::error::Error::source(&err).is_some(), "{path:?}");
            assert!(matches!(r.lookup(&Method::GET, "/"), Lookup::NotFound));
        }
    }

    #[test]
    fn root_path() {
        let r = router(&[(Method::GET, "/"), (Method::GET, "/{page}")]);
        assert_eq!(found(&r, Method::GET, "/"), (0, vec![]));
        assert_eq!(
            found(&r, Method::GET, "/about"),
            (1, pairs(&[("page", "about")]))
        );
        assert!(matches!(r.lookup(&Method::GET, ""), Lookup::NotFound));
    }

    #[test]
    fn trailing_slash_is_another_path() {
        let r = router(&[(Method::GET, "/users"), (Method::GET, "/posts/")]);
        assert_eq!(found(&r, Method::GET, "/users"), (0, vec![]));
        assert!(matches!(
            r.lookup(&Method::GET, "/users/"),
            Lookup::NotFound
        ));
        assert_eq!(found(&r, Method::GET, "/posts/"), (1, vec![]));
        assert!(matches!(r.lookup(&Method::GET, "/posts"), Lookup::NotFound));
        // Empty segments are not skipped.
        assert!(matches!(
            r.lookup(&Method::GET, "//users"),
            Lookup::NotFound
        ));
        // Both can be routed.
        let r = router(&[(Method::GET, "/users"), (Method::GET, "/users/")]);
        assert_eq!(found(&r, Method::GET, "/users"), (0, vec![]));
        assert_eq!(found(&r, Method::GET, "/users/"), (1, vec![]));
    }
}
