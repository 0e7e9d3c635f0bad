//! One module per page.
pub mod admin;
pub mod audit;
pub mod dashboard;
pub mod find;
pub mod home;
pub mod invite;
pub mod landing;
pub mod login;
pub mod no_such_workspace;
pub mod not_found;
pub mod password;
pub mod paused;
pub mod profile;
pub mod settings;
pub mod signup;
pub mod users;
pub mod verify;
