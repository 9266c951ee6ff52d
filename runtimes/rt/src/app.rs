//! The application: routes, typed shared state, middlewares, and setup/teardown contexts
//! (aiohttp's `web.Application` and `cleanup_ctx`, in Rust terms).

use crate::body::{Request, Response};
pub use crate::runtime::BoxFuture;
use http::{Method, StatusCode};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

type Handler = Arc<dyn Fn(Request) -> BoxFuture<Response> + Send + Sync>;
type Middleware = Arc<dyn Fn(Request, Next) -> BoxFuture<Response> + Send + Sync>;
type Setup = Box<dyn FnOnce(Arc<http::Extensions>) -> BoxFuture<Result<Teardown, String>> + Send>;

/// What a setup step leaves behind: its teardown, run at shutdown.
pub type Teardown = BoxFuture<()>;

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

struct Route {
    method: Method,
    pattern: Vec<Segment>,
    handler: Handler,
}

/// An application: build it, then hand it to a server (`tether_tokio::Server::serve`, or
/// [`Service::start`](crate::Service::start) in an adapter).
///
/// ```
/// use tether_rt::{App, Request, Response};
///
/// struct Greeting(String);
///
/// let app = App::new()
///     .state(Greeting("Hello".into()))
///     .route(http::Method::GET, "/hello/{name}", |req: Request| async move {
///         let greeting = &req.state::<Greeting>().unwrap().0;
///         Response::text(format!("{greeting}, {}!", req.param("name").unwrap_or("you")))
///     });
/// # let _ = app;
/// ```
pub struct App {
    routes: Vec<Route>,
    middlewares: Vec<Middleware>,
    state: http::Extensions,
    setups: Vec<(String, Setup)>,
}

impl Default for App {
    fn default() -> App {
        App::new()
    }
}

impl App {
    /// An empty application.
    pub fn new() -> App {
        App {
            routes: Vec::new(),
            middlewares: Vec::new(),
            state: http::Extensions::new(),
            setups: Vec::new(),
        }
    }

    /// Routes `method` and `path` to `handler`. A path is `/`-separated literal segments and
    /// `{name}` parameters (each matches one segment; read it with [`Request::param`]).
    pub fn route<F, Fut>(mut self, method: Method, path: &str, handler: F) -> App
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let pattern = parse_pattern(path);
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        self.routes.push(Route {
            method,
            pattern,
            handler,
        });
        self
    }

    /// Shared state of type `T`, reachable from every request with [`Request::state`]
    /// (typed, one value per type: the "application as storage" lesson, no globals).
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> App {
        self.state.insert(Arc::new(value));
        self
    }

    /// A middleware around every handler, outermost first: it gets the request and the rest
    /// of the chain, and may answer itself or call `next.run(request)`.
    pub fn middleware<F, Fut>(mut self, middleware: F) -> App
    where
        F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.middlewares
            .push(Arc::new(move |req, next| Box::pin(middleware(req, next))));
        self
    }

    /// A setup/teardown context (aiohttp's `cleanup_ctx`): at start-up the `setup` steps run
    /// in the order they were added; each returns the teardown to run at shutdown. Teardowns
    /// run in reverse order. If a setup fails, the teardowns of the steps already done run
    /// (in reverse) and the server does not start. The state is readable from setups.
    pub fn cleanup_ctx<F, Fut>(mut self, name: &str, setup: F) -> App
    where
        F: FnOnce(Arc<http::Extensions>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Teardown, String>> + Send + 'static,
    {
        self.setups.push((
            name.to_owned(),
            Box::new(move |state| Box::pin(setup(state))),
        ));
        self
    }

    pub(crate) fn into_parts(self) -> (Router, Vec<(String, Setup)>) {
        let router = Router {
            routes: self.routes,
            middlewares: self.middlewares,
            state: Arc::new(self.state),
        };
        (router, self.setups)
    }
}

/// The rest of the middleware chain.
pub struct Next {
    router: Arc<Router>,
    index: usize,
}

impl Next {
    /// Runs the remaining middlewares and the handler.
    pub async fn run(self, request: Request) -> Response {
        self.router.dispatch_from(self.index, request).await
    }
}

/// The frozen application the server runs.
pub(crate) struct Router {
    routes: Vec<Route>,
    middlewares: Vec<Middleware>,
    pub(crate) state: Arc<http::Extensions>,
}

impl Router {
    /// Handles a request: middlewares, then the route, or 404/405.
    pub(crate) fn dispatch(self: &Arc<Self>, request: Request) -> BoxFuture<Response> {
        self.dispatch_from(0, request)
    }

    fn dispatch_from(self: &Arc<Self>, index: usize, request: Request) -> BoxFuture<Response> {
        if let Some(middleware) = self.middlewares.get(index) {
            let next = Next {
                router: self.clone(),
                index: index + 1,
            };
            return middleware(request, next);
        }
        self.route(request)
    }

    fn route(&self, mut request: Request) -> BoxFuture<Response> {
        let mut allowed: Vec<&Method> = Vec::new();
        let mut found = None;
        for route in &self.routes {
            let Some(params) = match_path(&route.pattern, request.uri().path()) else {
                continue;
            };
            let head_for_get = request.method() == Method::HEAD && route.method == Method::GET;
            if route.method == *request.method() || head_for_get {
                found = Some((route, params));
                break;
            }
            allowed.push(&route.method);
        }
        if let Some((route, params)) = found {
            request.set_params(params);
            return (route.handler)(request);
        }
        let response = if allowed.is_empty() {
            Response::status(StatusCode::NOT_FOUND)
        } else {
            let mut names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            if names.contains(&"GET") {
                names.push("HEAD");
            }
            names.sort_unstable();
            names.dedup();
            Response::status(StatusCode::METHOD_NOT_ALLOWED).header("allow", &names.join(", "))
        };
        Box::pin(async move { response })
    }
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

/// Runs the setups in order; on a failure, undoes the ones done (in reverse) and reports it.
pub(crate) async fn run_setups(
    setups: Vec<(String, Setup)>,
    state: Arc<http::Extensions>,
) -> Result<Vec<Teardown>, String> {
    let mut teardowns = Vec::new();
    for (name, setup) in setups {
        match setup(state.clone()).await {
            Ok(teardown) => teardowns.push(teardown),
            Err(e) => {
                run_teardowns(teardowns).await;
                return Err(format!("setup {name:?} failed: {e}"));
            }
        }
    }
    Ok(teardowns)
}

/// Runs teardowns in reverse order of their setups.
pub(crate) async fn run_teardowns(teardowns: Vec<Teardown>) {
    for teardown in teardowns.into_iter().rev() {
        teardown.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = parse_pattern("/users/{id}/posts");
        assert_eq!(match_path(&p, "/users/7/posts").unwrap()["id"], "7");
        assert!(match_path(&p, "/users/7").is_none());
        assert!(match_path(&p, "/users/7/comments").is_none());
        assert!(match_path(&parse_pattern("/"), "/").is_some());
    }
}
