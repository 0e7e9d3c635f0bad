//! The browser entry point: hydrates the page's islands, nothing else.
//!
//! Pages are server-rendered HTML; only the components marked `#[island]`
//! in `app` are compiled here and made live. A page without islands is not
//! sent this module at all (`server::routes::leptos::render_page`).
// Links `app`, whose islands are this module's exports.
use app as _;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // Leptos's island script hydrates each island right after this returns,
    // without waiting on anything but promises; a task queued now runs once
    // every island is live. Tests and the page-weight benchmark wait for it.
    leptos::prelude::set_timeout(
        || {
            if let Some(root) = leptos::prelude::document().document_element() {
                let _ = root.set_attribute("data-hydrated", "");
            }
        },
        std::time::Duration::ZERO,
    );
}
