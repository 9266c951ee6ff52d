//! The application: routes, typed shared state, middlewares, and setup/teardown contexts
//! (aiohttp's `web.Application` and `cleanup_ctx`, in Rust terms).

use crate::request::Request;
use crate::response::Response;
use crate::router::{Lookup, RouteError, Router};
pub use crate::runtime::BoxFuture;
use crate::runtime::MaybeSend;
use http::{Method, StatusCode};
use std::future::Future;
use std::sync::Arc;

/// Any error, boxed: what setups and teardowns may fail with (their own types, kept as the
/// source of [`StartError`] and [`CleanupError`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

type Handler<S> = Box<dyn Fn(Request<S>) -> BoxFuture<Response> + Send + Sync>;
type Middleware<S> = Box<dyn Fn(Request<S>, Next<S>) -> BoxFuture<Response> + Send + Sync>;
type Setup<S> = Box<dyn FnOnce(S) -> BoxFuture<Result<(S, Teardown), BoxError>> + Send>;

/// What a setup step leaves behind: the work that undoes it at shutdown.
pub struct Teardown {
    work: BoxFuture<Result<(), BoxError>>,
}

impl std::fmt::Debug for Teardown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teardown").finish_non_exhaustive()
    }
}

impl Teardown {
    /// A teardown that runs `work`; an `Err` is reported (logged, and collected in
    /// [`CleanupError`]) and the other teardowns still run. Any error converts with `?`.
    pub fn new<F>(work: F) -> Teardown
    where
        F: Future<Output = Result<(), BoxError>> + MaybeSend + 'static,
    {
        Teardown {
            work: Box::pin(work),
        }
    }

    /// Nothing to undo.
    pub fn nothing() -> Teardown {
        Teardown {
            work: Box::pin(async { Ok(()) }),
        }
    }
}

/// Why an application could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A route could not be added (a duplicate, a conflict, a malformed pattern): the
    /// application is wrong, not the environment.
    #[error("bad route")]
    Route(#[from] RouteError),
    /// A setup step failed; the steps done before it have been undone.
    #[error("setup {name:?} failed")]
    Setup {
        /// The name the step was added with.
        name: String,
        /// The step's own error.
        #[source]
        source: BoxError,
    },
}

/// One teardown that failed.
#[derive(Debug)]
#[non_exhaustive]
pub struct TeardownFailure {
    /// The name of the setup step it belongs to.
    pub name: String,
    /// The teardown's own error.
    pub error: BoxError,
}

/// Teardowns that failed at shutdown (every teardown still ran).
#[derive(Debug, thiserror::Error)]
#[error("{} teardown(s) failed, the first {:?}: {}", .failures.len(), .failures[0].name, .failures[0].error)]
#[non_exhaustive]
pub struct CleanupError {
    /// Each failure, in the order the teardowns ran.
    pub failures: Vec<TeardownFailure>,
}

/// An application: build it, then hand it to a server (`tether_tokio::Server::serve`, or
/// [`Service::start`](crate::Service::start) in an adapter).
///
/// `S` is the application's state: one value, typed, that every handler reads with
/// [`Request::state`] (no lookups by type, nothing to unwrap). Setup steps
/// ([`App::cleanup_ctx`]) run before the server starts and may change it, so a resource
/// opened at start-up (a database pool, a client) is stored in the state for handlers, and
/// closed by the step's teardown.
///
/// ```
/// use tether_rt::{App, Request, Response};
///
/// struct Greeting(String);
///
/// let app = App::with_state(Greeting("Hello".into()))
///     .route(http::Method::GET, "/hello/{name}", |req: Request<Greeting>| async move {
///         let greeting = &req.state().0;
///         Response::text(format!("{greeting}, {}!", req.param("name").unwrap_or("you")))
///     });
/// # let _ = app;
/// ```
pub struct App<S = ()> {
    routes: Router<Handler<S>>,
    /// What answers a request no route matches (instead of `404`/`405`).
    fallback: Option<Handler<S>>,
    /// The first route that could not be added: reported when the application starts.
    route_error: Option<RouteError>,
    middlewares: Vec<Middleware<S>>,
    state: S,
    setups: Vec<(String, Setup<S>)>,
}

impl Default for App<()> {
    fn default() -> App<()> {
        App::new()
    }
}

impl App<()> {
    /// An application without state.
    pub fn new() -> App<()> {
        App::with_state(())
    }
}

impl<S: Send + Sync + 'static> App<S> {
    /// An application whose handlers share `state`.
    pub fn with_state(state: S) -> App<S> {
        App {
            routes: Router::new(),
            fallback: None,
            route_error: None,
            middlewares: Vec::new(),
            state,
            setups: Vec::new(),
        }
    }

    /// Routes `method` and `path` to `handler`. A path is `/`-separated literal segments,
    /// `{name}` parameters (one segment each) and a final `{*name}` catch-all (the rest of
    /// the path); read them, percent-decoded, with [`Request::param`]. A literal segment
    /// wins over a parameter (`/users/me` beside `/users/{id}`). `GET` routes also answer
    /// `HEAD` (without the body). A path that exists for other methods answers `405` with
    /// `Allow`, any other `404`.
    ///
    /// A route that cannot be added (the same method and path twice, a parameter of a
    /// different name where another route has one, a malformed pattern) makes the
    /// application fail to start with [`StartError::Route`].
    pub fn route<F, Fut>(mut self, method: Method, path: &str, handler: F) -> App<S>
    where
        F: Fn(Request<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + MaybeSend + 'static,
    {
        let handler: Handler<S> = Box::new(move |req| Box::pin(handler(req)));
        if let Err(error) = self.routes.insert(method, path, handler) {
            self.route_error.get_or_insert(error);
        }
        self
    }

    /// Answers the requests no route matches with `handler` instead of `404`/`405`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn set_fallback<F, Fut>(mut self, handler: F) -> App<S>
    where
        F: Fn(Request<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + MaybeSend + 'static,
    {
        self.fallback = Some(Box::new(move |req| Box::pin(handler(req))));
        self
    }

    /// A middleware around every handler, outermost first: it gets the request and the rest
    /// of the chain, and may answer itself or call `next.run(request)`.
    pub fn middleware<F, Fut>(mut self, middleware: F) -> App<S>
    where
        F: Fn(Request<S>, Next<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + MaybeSend + 'static,
    {
        self.middlewares
            .push(Box::new(move |req, next| Box::pin(middleware(req, next))));
        self
    }

    /// A setup/teardown context (aiohttp's `cleanup_ctx`). At start-up the setup steps run
    /// in the order they were added, before any connection is served; each gets the state,
    /// may change it (store what it opened), and returns it with the [`Teardown`] that
    /// undoes it (any error converts to [`BoxError`] with `?`). Teardowns run at shutdown in reverse order; one that fails is reported
    /// and the others still run. If a setup fails, the teardowns of the steps already done
    /// run (in reverse) and the server does not start ([`StartError::Setup`], with the
    /// step's error as its source).
    ///
    /// ```
    /// use tether_rt::{App, Request, Response, Teardown};
    ///
    /// #[derive(Default)]
    /// struct State {
    ///     motd: String,
    /// }
    ///
    /// let app = App::with_state(State::default())
    ///     .cleanup_ctx("motd", |mut state: State| async move {
    ///         state.motd = "loaded at start-up".into(); // e.g. read from a database
    ///         Ok((state, Teardown::nothing()))
    ///     })
    ///     .route(http::Method::GET, "/", |req: Request<State>| async move {
    ///         Response::text(req.state().motd.clone())
    ///     });
    /// # let _ = app;
    /// ```
    pub fn cleanup_ctx<F, Fut>(mut self, name: &str, setup: F) -> App<S>
    where
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(S, Teardown), BoxError>> + MaybeSend + 'static,
    {
        self.setups.push((
            name.to_owned(),
            Box::new(move |state| Box::pin(setup(state))),
        ));
        self
    }

    /// Runs the setups; the frozen application and the teardowns to run at shutdown.
    pub(crate) async fn start(
        self,
    ) -> Result<(Arc<Routes<S>>, Vec<(String, Teardown)>), StartError> {
        if let Some(error) = self.route_error {
            return Err(StartError::Route(error));
        }
        let mut state = self.state;
        let mut teardowns = Vec::new();
        for (name, setup) in self.setups {
            match setup(state).await {
                Ok((next, teardown)) => {
                    state = next;
                    teardowns.push((name, teardown));
                }
                Err(source) => {
                    // The state went with the failed step; undo the steps done.
                    if let Err(cleanup) = run_teardowns(teardowns).await {
                        tracing::warn!(error = %cleanup, "teardown after a failed setup");
                    }
                    return Err(StartError::Setup { name, source });
                }
            }
        }
        let routes = Routes {
            routes: self.routes,
            fallback: self.fallback,
            middlewares: self.middlewares,
            state: Arc::new(state),
        };
        Ok((Arc::new(routes), teardowns))
    }
}

/// Runs teardowns in reverse order of their setups; every one runs, failures are logged
/// and returned together.
pub(crate) async fn run_teardowns(teardowns: Vec<(String, Teardown)>) -> Result<(), CleanupError> {
    let mut failures = Vec::new();
    for (name, teardown) in teardowns.into_iter().rev() {
        if let Err(error) = teardown.work.await {
            tracing::warn!(setup = %name, %error, "teardown failed");
            failures.push(TeardownFailure { name, error });
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CleanupError { failures })
    }
}

/// The rest of the middleware chain.
pub struct Next<S = ()> {
    routes: Arc<Routes<S>>,
    index: usize,
}

impl<S: Send + Sync + 'static> Next<S> {
    /// Runs the remaining middlewares and the handler.
    pub async fn run(self, request: Request<S>) -> Response {
        self.routes.dispatch_from(self.index, request).await
    }
}

/// The frozen application the server runs.
pub(crate) struct Routes<S> {
    routes: Router<Handler<S>>,
    fallback: Option<Handler<S>>,
    middlewares: Vec<Middleware<S>>,
    pub(crate) state: Arc<S>,
}

impl<S: Send + Sync + 'static> Routes<S> {
    /// Handles a request: middlewares, then the route, or 404/405.
    pub(crate) fn dispatch(self: &Arc<Self>, request: Request<S>) -> BoxFuture<Response> {
        self.dispatch_from(0, request)
    }

    fn dispatch_from(self: &Arc<Self>, index: usize, request: Request<S>) -> BoxFuture<Response> {
        if let Some(middleware) = self.middlewares.get(index) {
            let next = Next {
                routes: self.clone(),
                index: index + 1,
            };
            return middleware(request, next);
        }
        self.route(request)
    }

    fn route(&self, mut request: Request<S>) -> BoxFuture<Response> {
        let lookup = self.routes.lookup(request.method(), request.uri().path());
        let response = match (lookup, &self.fallback) {
            (Lookup::Found { value, params }, _) => {
                request.set_params(params);
                return value(request);
            }
            (Lookup::MethodNotAllowed { .. } | Lookup::NotFound, Some(fallback)) => {
                return fallback(request);
            }
            (Lookup::MethodNotAllowed { allow }, None) => {
                Response::empty(StatusCode::METHOD_NOT_ALLOWED).header(http::header::ALLOW, allow)
            }
            (Lookup::NotFound, None) => Response::empty(StatusCode::NOT_FOUND),
            (Lookup::BadParam, _) => Response::empty(StatusCode::BAD_REQUEST),
        };
        Box::pin(async move { response })
    }
}
