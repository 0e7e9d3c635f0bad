pub mod guard;
pub mod nav;
pub mod status;
