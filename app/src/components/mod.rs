//! Reusable pieces of pages: the load guard, the company navigation bar, the response status, the values a refused form kept, what islands need in the browser.
pub mod guard;
pub mod islands;
pub mod kept;
pub mod nav;
pub mod status;
