//! Route lookup: the router (`src/router.rs`, matchit's radix tree, then a small method
//! table per path) against the linear scan it replaces.
//!
//! Two REST-ish route tables, of 10 and 200 routes (a route is a method and a path): literal
//! prefixes, `{id}` parameters, a few nested ones. For each, four lookups:
//!
//! * `first`: the first route added;
//! * `last`: the last route added (two parameters);
//! * `param_middle`: a one-parameter route added half-way;
//! * `miss`: a path no route has (404).
//!
//! Each lookup is timed with what it returns dropped, parameters included, since a handler
//! gets them: the router's `Params`, the linear scan's `HashMap<String, String>`.
//!
//! `before_linear` is the router as it was (`app.rs` until the router was added): a scan
//! over every route, each a `Vec<Segment>` and a method, matching segment by segment. Its
//! code is copied below, as it was, with only the `Request`/`Response` parts taken out.
//!
//! Run with `cargo bench -p tether-rt --bench router`.

use criterion::Criterion;
use http::Method;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

// The router, compiled into this bench as a module of its own: it stays crate-private in
// `tether-rt`, without a public door for the bench. The tests see it whole; here some of it
// is unused.
#[allow(dead_code)]
#[path = "../src/router.rs"]
mod router;

use router::{Lookup, Router};

// ---- the router before: linear scan over Vec<Segment> ----

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

struct Route {
    method: Method,
    pattern: Vec<Segment>,
    value: usize,
}

fn parse_pattern(path: &str) -> Vec<Segment> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(s.to_owned()),
            },
        )
        .collect()
}

fn match_path(pattern: &[Segment], path: &str) -> Option<HashMap<String, String>> {
    let mut parts = path.split('/').filter(|s| !s.is_empty());
    let mut params = HashMap::new();
    for segment in pattern {
        let part = parts.next()?;
        match segment {
            Segment::Literal(lit) if lit == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => {
                params.insert(name.clone(), part.to_owned());
            }
        }
    }
    // Every segment of the path must be matched.
    parts.next().is_none().then_some(params)
}

/// What the linear scan finds: the value and parameters, a 405's `Allow`, or nothing.
enum Linear<'a> {
    Found(&'a usize, HashMap<String, String>),
    MethodNotAllowed(String),
    NotFound,
}

/// `Router::route` as it was, answering with a [`Linear`] instead of calling the handler.
fn linear_lookup<'a>(routes: &'a [Route], method: &Method, path: &str) -> Linear<'a> {
    let mut allowed: Vec<&Method> = Vec::new();
    let mut found = None;
    for route in routes {
        let Some(params) = match_path(&route.pattern, path) else {
            continue;
        };
        let head_for_get = *method == Method::HEAD && route.method == Method::GET;
        if route.method == *method || head_for_get {
            found = Some((route, params));
            break;
        }
        allowed.push(&route.method);
    }
    if let Some((route, params)) = found {
        return Linear::Found(&route.value, params);
    }
    if allowed.is_empty() {
        Linear::NotFound
    } else {
        let mut names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        if names.contains(&"GET") {
            names.push("HEAD");
        }
        names.sort_unstable();
        names.dedup();
        Linear::MethodNotAllowed(names.join(", "))
    }
}

// ---- the route tables ----

/// The 10-route table: a small API.
fn small_table() -> Vec<(Method, String)> {
    [
        (Method::GET, "/health"),
        (Method::GET, "/api/users"),
        (Method::POST, "/api/users"),
        (Method::GET, "/api/users/{id}"),
        (Method::PUT, "/api/users/{id}"),
        (Method::DELETE, "/api/users/{id}"),
        (Method::GET, "/api/users/{id}/posts"),
        (Method::GET, "/api/posts"),
        (Method::GET, "/api/posts/{id}"),
        (Method::GET, "/api/posts/{id}/comments/{comment}"),
    ]
    .into_iter()
    .map(|(m, p)| (m, p.to_owned()))
    .collect()
}

/// The resources of the 200-route table.
const RESOURCES: [&str; 19] = [
    "users",
    "accounts",
    "teams",
    "projects",
    "issues",
    "labels",
    "milestones",
    "releases",
    "builds",
    "deployments",
    "invoices",
    "payments",
    "products",
    "orders",
    "carts",
    "reviews",
    "tickets",
    "events",
    "webhooks",
];

/// The 200-route table: 10 site routes, then 10 routes for each of 19 resources.
fn large_table() -> Vec<(Method, String)> {
    let mut table: Vec<(Method, String)> = [
        (Method::GET, "/"),
        (Method::GET, "/health"),
        (Method::GET, "/metrics"),
        (Method::GET, "/login"),
        (Method::POST, "/login"),
        (Method::POST, "/logout"),
        (Method::GET, "/favicon.ico"),
        (Method::GET, "/docs"),
        (Method::GET, "/docs/{page}"),
        (Method::GET, "/assets/{file}"),
    ]
    .into_iter()
    .map(|(m, p)| (m, p.to_owned()))
    .collect();
    for resource in RESOURCES {
        let base = format!("/api/v1/{resource}");
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::POST, ""),
            (Method::GET, "/{id}"),
            (Method::PUT, "/{id}"),
            (Method::PATCH, "/{id}"),
            (Method::DELETE, "/{id}"),
            (Method::GET, "/{id}/history"),
            (Method::GET, "/{id}/comments"),
            (Method::POST, "/{id}/comments"),
            (Method::GET, "/{id}/comments/{comment}"),
        ] {
            table.push((method, format!("{base}{suffix}")));
        }
    }
    table
}

/// A table's lookups: (name, method, path, index of the route expected, or `None` for 404).
type Cases = [(&'static str, Method, &'static str, Option<usize>); 4];

fn small_cases() -> Cases {
    [
        ("first", Method::GET, "/health", Some(0)),
        ("last", Method::GET, "/api/posts/7/comments/3", Some(9)),
        ("param_middle", Method::GET, "/api/users/42", Some(3)),
        ("miss", Method::GET, "/api/orders/42", None),
    ]
}

fn large_cases() -> Cases {
    [
        ("first", Method::GET, "/", Some(0)),
        (
            "last",
            Method::GET,
            "/api/v1/webhooks/7/comments/3",
            Some(199),
        ),
        // The 10th resource of 19 ("deployments"), `GET .../{id}`: route 10 + 9 * 10 + 2.
        (
            "param_middle",
            Method::GET,
            "/api/v1/deployments/42",
            Some(102),
        ),
        ("miss", Method::GET, "/api/v1/nothing/42", None),
    ]
}

fn build(table: &[(Method, String)]) -> (Vec<Route>, Router<usize>) {
    let linear = table
        .iter()
        .enumerate()
        .map(|(value, (method, path))| Route {
            method: method.clone(),
            pattern: parse_pattern(path),
            value,
        })
        .collect();
    let mut router = Router::new();
    for (value, (method, path)) in table.iter().enumerate() {
        router.insert(method.clone(), path, value).unwrap();
    }
    (linear, router)
}

/// Both routers find what each case expects, with the same parameters.
fn check(linear: &[Route], router: &Router<usize>, cases: &Cases) {
    for (name, method, path, expected) in cases {
        let old = match linear_lookup(linear, method, path) {
            Linear::Found(&value, params) => {
                let mut params: Vec<(String, String)> = params.into_iter().collect();
                params.sort();
                Some((value, params))
            }
            Linear::NotFound => None,
            Linear::MethodNotAllowed(allow) => panic!("{name}: 405 {allow}"),
        };
        let new = match router.lookup(method, path) {
            Lookup::Found { value, params } => {
                let mut params: Vec<(String, String)> = params
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                params.sort();
                Some((*value, params))
            }
            Lookup::NotFound => None,
            _ => panic!("{name}: neither found nor 404"),
        };
        assert_eq!(
            old.as_ref().map(|(v, _)| *v),
            *expected,
            "{name}: linear scan"
        );
        assert_eq!(old, new, "{name}: the two routers differ");
    }
}

// ---- criterion ----

fn bench_router(c: &mut Criterion) {
    for (size, table, cases) in [
        (10, small_table(), small_cases()),
        (200, large_table(), large_cases()),
    ] {
        assert_eq!(table.len(), size);
        let (linear, router) = build(&table);
        check(&linear, &router, &cases);
        let mut group = c.benchmark_group(format!("router/{size}"));
        for (name, method, path, _) in &cases {
            group.bench_function(format!("before_linear/{name}"), |b| {
                b.iter(|| linear_lookup(&linear, black_box(method), black_box(path)))
            });
            group.bench_function(format!("after_matchit/{name}"), |b| {
                b.iter(|| router.lookup(black_box(method), black_box(path)))
            });
        }
        group.finish();
    }
}

fn main() {
    // Short by default: the lookups take nanoseconds to microseconds.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_router(&mut criterion);
    criterion.final_summary();
}
