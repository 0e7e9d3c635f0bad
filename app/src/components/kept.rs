//! What a refused plain form post had typed, given back by the server as `keep.<field>` in the query (see `server::routes::leptos::server_fn`).
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The value typed into `field` before a plain post was refused, or
/// `default`: for an input's `value`.
pub fn kept(
    field: &'static str,
    default: impl Into<String>,
) -> impl Fn() -> String + Send + Sync + Clone + 'static {
    let query = use_query_map();
    let default = default.into();
    move || {
        query
            .read()
            .get(&format!("keep.{field}"))
            .unwrap_or_else(|| default.clone())
    }
}
