pub mod home;
pub mod landing;
pub mod no_such_workspace;
pub mod not_found;
pub mod paused;
pub mod tenant_home;
