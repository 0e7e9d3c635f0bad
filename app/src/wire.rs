//! Types sent between server and browser. Never SeaORM entities, never a
//! password hash or a credential.
use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

use crate::domain::Role;

/// Errors of every server function. Each variant names the HTTP status the
/// server answers with; unexpected errors are logged on the server with
/// their cause and reach the browser only as `Internal`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// 401: not signed in here. Pages send the person to the sign-in form.
    #[error("Please sign in.")]
    Unauthenticated,
    /// 401: the email and password do not match an active account.
    #[error("Wrong email or password.")]
    BadCredentials,
    /// 403: signed in, but not allowed.
    #[error("You are not allowed to do that.")]
    Forbidden,
    /// 404
    #[error("Not found.")]
    NotFound,
    /// 422: `field` broke a rule; `message` says which.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// 409: e.g. the subdomain or email is taken, or the last admin would go.
    #[error("{message}")]
    Conflict { field: String, message: String },
    /// 429: too many sign-in attempts, or companies created, from here.
    #[error("Too many attempts. Try again in {} minute(s).", retry_after_secs.div_ceil(60))]
    Throttled { retry_after_secs: u64 },
    /// 503: no database connection came free in time, or the company's
    /// database cannot take the request now (its server is down, or it is
    /// being moved to another).
    #[error("The service is busy; please try again in a moment.")]
    Unavailable,
    /// 500: the cause is in the server's log.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request or response itself failed (network, encoding).
    #[error("{0}")]
    Transport(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::Forbidden => 403,
            AppError::NotFound => 404,
            AppError::Conflict { .. } => 409,
            AppError::Invalid { .. } => 422,
            AppError::Throttled { .. } => 429,
            AppError::Unavailable => 503,
            AppError::Internal | AppError::Transport(_) => 500,
        }
    }

    pub fn invalid(field: &str, message: impl ToString) -> Self {
        AppError::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn conflict(field: &str, message: impl ToString) -> Self {
        AppError::Conflict {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// The form field this error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. } | AppError::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

/// The signed-in person, as pages show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub created: String,
}

/// An invitation not yet accepted, as admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub expires: String,
}

/// Whom an invitation link is for, as its page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitee {
    pub email: String,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub at: String,
}

/// One export of a company's data, as its settings page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRow {
    pub id: String,
    /// `running`, `ready`, `failed` or `expired`.
    pub status: String,
    /// What it has done so far, or what it came to.
    pub detail: String,
    /// When it was asked for (RFC 3339, UTC).
    pub started: String,
    /// Ready: its download, and until when.
    pub download: Option<(String, String)>,
}

/// One of a company's own domains, as its settings page, the CLI and the
/// platform API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRow {
    pub domain: String,
    /// `verified`, `missing` (verified, its record gone, still served for
    /// the grace period) or `pending` (not served).
    pub state: String,
    /// The record pointing it at the platform: `CNAME` (or `A` at a
    /// zone's apex) and what it points at.
    pub route: (String, String),
    /// The TXT record that proves it: its name and value.
    pub txt: (String, String),
    pub primary: bool,
    pub redirect: bool,
    /// When it was first verified (RFC 3339).
    pub verified_at: Option<String>,
}

/// A company's address settings: its subdomain and its domains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addresses {
    pub subdomain: String,
    /// The company's address now, `https://acme.example.com/` or its
    /// primary domain's.
    pub primary_url: String,
    pub domains: Vec<DomainRow>,
}

/// One page of a company's audit log, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    /// From 1.
    pub page: u64,
    pub pages: u64,
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub company: String,
    pub subdomain: String,
    pub users: u64,
    pub admins: u64,
    pub disabled: u64,
    pub me: Me,
    pub recent: Vec<AuditRow>,
}

/// A signup waiting for its email to be confirmed, as its page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignup {
    pub company: String,
    pub subdomain: String,
    pub email: String,
}

/// The live answer while someone types a subdomain on the signup form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubdomainCheck {
    Available,
    Taken,
    Invalid(String),
}

/// A company as the platform admin sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRow {
    pub name: String,
    pub subdomain: String,
    pub status: String,
    /// The database server it is on (`dbserver list`).
    pub server: String,
    /// The newest migration applied (shown on hover).
    pub schema_version: String,
    /// The same as a person reads it: "5 of 5", or "unknown".
    pub schema: String,
    /// Why its last migration failed (cleared when one succeeds).
    pub migration_error: Option<String>,
    /// Its last restore from backup, as a short label and the detail shown
    /// on hover: in progress (and at which step), done, undone or failed.
    pub restore: Option<(String, String)>,
    /// Scheduled for deletion: when it will be purged.
    pub purge_after: Option<String>,
    pub created: String,
}

/// One page of the platform admin's companies, as the query string asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantPage {
    pub rows: Vec<TenantRow>,
    /// Companies matching, over every page.
    pub total: u64,
    /// From 1.
    pub page: u64,
    pub pages: u64,
}
