//! A router that remembers what it serves. Handlers are registered only
//! through [`Routes`], so the tables it keeps are, by construction, the
//! list of routes the app answers: the JSON API's ([`Routes::table`]),
//! which `tests/api/openapi.rs` holds `openapi.yaml` to in both
//! directions, and the operator console's HTML pages ([`Routes::pages`]),
//! which are not part of the JSON API and so not in `openapi.yaml`.

use super::AppState;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};
use axum::Router;

#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    table: Vec<(Method, &'static str)>,
    pages: Vec<(Method, &'static str)>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::GET, path, routing::get(handler))
    }

    pub(crate) fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::POST, path, routing::post(handler))
    }

    pub(crate) fn put<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::PUT, path, routing::put(handler))
    }

    pub(crate) fn patch<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::PATCH, path, routing::patch(handler))
    }

    pub(crate) fn delete<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::DELETE, path, routing::delete(handler))
    }

    /// Every method on `path`, answered by `handler`, and kept out of the
    /// tables: a catch-all that gives a prefix its own 404 (SCIM clients
    /// expect a SCIM error body), not an operation of the API.
    pub(crate) fn catch_all<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, routing::any(handler));
        self
    }

    /// A page for the public (an invitation link), `GET` and `POST` on
    /// one path: neither an API operation nor a console page, so in
    /// neither table.
    pub(crate) fn public_page<G, TG, P, TP>(mut self, path: &'static str, get: G, post: P) -> Self
    where
        G: Handler<TG, AppState>,
        TG: 'static,
        P: Handler<TP, AppState>,
        TP: 'static,
    {
        self.router = self.router.route(path, routing::get(get).post(post));
        self
    }

    /// Makes `value` available to the handlers added so far (an axum
    /// `Extension`), like [`Routes::body_limit`] only for what is there.
    pub(crate) fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.router = self.router.layer(axum::Extension(value));
        self
    }

    /// An HTML page of the operator console (`GET`).
    pub(crate) fn page_get<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, routing::get(handler));
        self.pages.push((Method::GET, path));
        self
    }

    /// A form target of the operator console (`POST`).
    pub(crate) fn page_post<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, routing::post(handler));
        self.pages.push((Method::POST, path));
        self
    }

    fn add(mut self, method: Method, path: &'static str, on: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, on);
        self.table.push((method, path));
        self
    }

    /// Caps request bodies on the routes added so far (like any axum
    /// layer, it wraps only what the router already holds).
    pub(crate) fn body_limit(mut self, bytes: usize) -> Self {
        self.router = self.router.layer(DefaultBodyLimit::max(bytes));
        self
    }

    pub(crate) fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self.pages.extend(other.pages);
        self
    }

    /// Method and path of every JSON API route, in registration order.
    pub fn table(&self) -> &[(Method, &'static str)] {
        &self.table
    }

    /// Method and path of every console route (HTML pages and form
    /// targets), in registration order.
    pub fn pages(&self) -> &[(Method, &'static str)] {
        &self.pages
    }

    pub(crate) fn into_router(self) -> Router<AppState> {
        self.router
    }
}
