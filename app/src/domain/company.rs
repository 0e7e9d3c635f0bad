//! Validated values of accounts and companies: company name, email, password, role.
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum InputError {
    #[error("Enter the company's name.")]
    NameEmpty,
    #[error("A company name can have at most {max} characters.", max = CompanyName::MAX_CHARS)]
    NameTooLong,
    #[error("A company name cannot contain control characters.")]
    NameControl,
    #[error("A company name cannot contain invisible formatting characters (such as direction marks or zero-width spaces).")]
    NameFormat,
    #[error("Enter an email address.")]
    EmailEmpty,
    #[error("An email address can have at most 254 characters.")]
    EmailTooLong,
    #[error("Enter an email address like name@example.com.")]
    EmailMalformed,
    #[error("A password needs at least {min} characters.", min = Password::MIN_CHARS)]
    PasswordTooShort,
    #[error("A password can have at most {max} characters.", max = Password::MAX_CHARS)]
    PasswordTooLong,
    #[error("A role is either admin or member.")]
    RoleUnknown,
}

/// Unicode's format characters (general category Cf) that change how text
/// around them shows: bidirectional controls, zero-width characters, the
/// soft hyphen, invisible operators, the byte-order mark, tags.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// A company's display name: trimmed, 1–100 characters, no control or
/// format characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyName(String);

impl CompanyName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(input: &str) -> Result<Self, InputError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(InputError::NameEmpty);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(InputError::NameTooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(InputError::NameControl);
        }
        // Names reach mail subjects and pages: nothing that reorders or
        // hides text around it.
        if s.chars().any(is_format) {
            return Err(InputError::NameFormat);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, trimmed and lower-cased: one `@`, a non-empty local
/// part, a dotted domain. Deliverability is not checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, InputError> {
        let s = input.trim().to_lowercase();
        if s.is_empty() {
            return Err(InputError::EmailEmpty);
        }
        if s.len() > 254 {
            return Err(InputError::EmailTooLong);
        }
        let (local, domain) = s.split_once('@').ok_or(InputError::EmailMalformed)?;
        let domain_ok = domain.contains('.')
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c));
        if !domain_ok || !local_ok {
            return Err(InputError::EmailMalformed);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: 10–1024 characters. Never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(input: &str) -> Result<Self, InputError> {
        let n = input.chars().count();
        if n < Self::MIN_CHARS {
            return Err(InputError::PasswordTooShort);
        }
        if n > Self::MAX_CHARS {
            return Err(InputError::PasswordTooLong);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_names_refuse_direction_marks_and_zero_width_characters() {
        for name in [
            "Acme\u{202E}lgoog",
            "Ac\u{200B}me",
            "\u{2067}Acme",
            "Acme\u{FEFF}",
            "A\u{00AD}cme",
        ] {
            assert_eq!(
                CompanyName::parse(name),
                Err(InputError::NameFormat),
                "{name:?}"
            );
        }
        // Letters of any script, and their joiners' neighbours, are names.
        assert!(CompanyName::parse("Müller & Söhne").is_ok());
        assert!(CompanyName::parse("שלום Ltd").is_ok());
        assert!(CompanyName::parse("株式会社アクメ").is_ok());
    }

    #[test]
    fn company_names_are_trimmed_and_bounded() {
        assert_eq!(
            CompanyName::parse("  Acme Corp ").unwrap().as_str(),
            "Acme Corp"
        );
        assert_eq!(CompanyName::parse(" "), Err(InputError::NameEmpty));
        assert!(CompanyName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            CompanyName::parse(&"é".repeat(101)),
            Err(InputError::NameTooLong)
        );
        assert_eq!(
            CompanyName::parse("Ac\u{0}me"),
            Err(InputError::NameControl)
        );
    }

    #[test]
    fn emails_are_folded_and_checked() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@exa mple.com",
            "ann@@example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(InputError::EmailMalformed), "{bad}");
        }
        assert_eq!(Email::parse(""), Err(InputError::EmailEmpty));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(InputError::EmailTooLong));
    }

    #[test]
    fn passwords_are_bounded_and_never_printed() {
        assert_eq!(
            Password::parse("short").unwrap_err(),
            InputError::PasswordTooShort
        );
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        let p = Password::parse("correct horse battery").unwrap();
        assert_eq!(format!("{p:?}"), "Password([redacted])");
    }
}

/// A company user's role. On the server it is also the `users.role`
/// column of company databases, stored as its string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "ssr",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::N(16))"
    )
)]
pub enum Role {
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "admin"))]
    Admin,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "member"))]
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Result<Self, InputError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(InputError::RoleUnknown),
        }
    }
}
