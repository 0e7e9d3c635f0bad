//! Reusable pieces of pages: the load guard, the company navigation bar, the response status.
pub mod guard;
pub mod nav;
pub mod status;
