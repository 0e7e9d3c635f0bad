use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;

pub fn set_status(code: u16) {
    if let (Some(response), Ok(status)) = (
        use_context::<ResponseOptions>(),
        ::http::StatusCode::from_u16(code),
    ) {
        response.set_status(status);
    }
}
