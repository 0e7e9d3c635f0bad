//! Response details set from inside rendering or a server function.
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;

use crate::wire::AppError;

pub fn set_status(code: u16) {
    if let (Some(response), Ok(status)) = (
        use_context::<ResponseOptions>(),
        ::http::StatusCode::from_u16(code),
    ) {
        response.set_status(status);
    }
}

/// Sets the status `err` maps to and returns it, for `Err(reject(..))`.
pub fn reject(err: AppError) -> AppError {
    set_status(err.status());
    err
}

/// An unexpected failure: the cause goes to the log, the person sees an
/// opaque message.
pub fn internal(cause: impl std::fmt::Display) -> AppError {
    tracing::error!(error = %cause, "request failed");
    reject(AppError::Internal)
}
