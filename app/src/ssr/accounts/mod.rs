//! Accounts: who people are and what they may do, on a company's site and on the base domain.
//!
//! * [`auth`]: the signed-in user of a request, sign-in and sign-out, the
//!   role checks server functions start with.
//! * [`sessions`]: the tower-sessions store on the registry database.
//! * [`handoff`]: the single-use token that takes a new company's admin
//!   from signup to a session on the company's subdomain.
//! * [`users`]: a company's users and its audit log.
//! * [`passwords`]: argon2id, always off the async workers.
//! * [`platform`]: platform admins (superadmins) and API tokens.
//! * [`reset`]: password reset by an emailed single-use link.
//! * [`invitations`]: joining a company by an emailed invitation.
//! * [`signups`]: signups held until their email is confirmed.
//! * [`workspaces`]: "find your workspace", by keyed digests of emails.
//! * [`throttle`]: sign-in attempts and reset requests, reserved before
//!   the work they guard.
pub mod auth;
pub mod devices;
pub mod handoff;
pub mod invitations;
pub mod passwords;
pub mod platform;
pub mod reset;
pub mod sessions;
pub mod signups;
pub mod throttle;
pub mod users;
pub mod workspaces;
