//! `set_status`: pages set the HTTP status while rendering on the server (a no-op in the browser).
/// Sets the HTTP status of the response being rendered. Pages call it while
/// rendering; the server renders asynchronously, so it lands before the
/// headers are sent. In the browser it does nothing.
pub fn set_status(code: u16) {
    #[cfg(feature = "ssr")]
    crate::ssr::http::set_status(code);
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}
