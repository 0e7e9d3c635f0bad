//! What an island needs in the browser that the router gives a server-rendered page.
#[cfg(feature = "hydrate")]
use leptos::prelude::*;

/// Lets the island's `ServerAction`s find the error a refused plain form
/// post left in the URL (`__path`, `__err`), as they do on the server
/// (where the router provides it): the island then shows after hydration
/// the error the server rendered, instead of wiping it.
pub fn provide_url_action_error() {
    #[cfg(feature = "hydrate")]
    {
        let Ok(search) = window().location().search() else {
            return;
        };
        let Ok(params) = leptos::web_sys::UrlSearchParams::new_with_str(&search) else {
            return;
        };
        if let (Some(path), Some(err)) = (params.get("__path"), params.get("__err")) {
            provide_context(leptos::server::ServerActionError::new(&path, &err));
        }
    }
}
