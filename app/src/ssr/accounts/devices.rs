//! Browsers an account has signed in from: a keyed cookie that exempts them
//! from the account's own limit on failed sign-ins.
//!
//! Failures are counted per account from every address together (the
//! throttle's `per_email`), so guessing one account's password from many
//! addresses slows down. That alone would let a stranger lock the owner out;
//! so a browser that signed in to the account before carries a cookie only
//! this server can make, naming the site and the account, and its attempts
//! are counted per address only, as before. (OWASP's "device cookies".)
use crate::ssr::secrets::{random_hex, Cipher};

/// The cookie's name; one per host (host-only), holding the last account
/// signed in there.
pub const COOKIE: &str = "enclave_device";

/// The cookie's value for `email` on `site` (a company's id, or the
/// platform): a random nonce and a keyed digest of all three.
pub fn issue(cipher: &Cipher, site: &str, email: &str) -> String {
    let nonce = random_hex(8);
    let mac = mac(cipher, site, email, &nonce);
    format!("{nonce}.{mac}")
}

/// Whether `value` is a cookie [`issue`] made for `email` on `site`.
pub fn recognises(cipher: &Cipher, site: &str, email: &str, value: &str) -> bool {
    let Some((nonce, given)) = value.split_once('.') else {
        return false;
    };
    nonce.len() == 16
        && nonce.bytes().all(|b| b.is_ascii_hexdigit())
        && constant_time_eq(mac(cipher, site, email, nonce).as_bytes(), given.as_bytes())
}

fn mac(cipher: &Cipher, site: &str, email: &str, nonce: &str) -> String {
    cipher.keyed_digest("device cookie", &format!("{site}\n{email}\n{nonce}"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_cookie_names_its_site_and_account_and_cannot_be_made_elsewhere() {
        let cipher = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        let v = issue(&cipher, "acme", "a@acme.test");
        assert!(recognises(&cipher, "acme", "a@acme.test", &v));
        assert!(
            !recognises(&cipher, "acme", "b@acme.test", &v),
            "another account"
        );
        assert!(
            !recognises(&cipher, "globex", "a@acme.test", &v),
            "another site"
        );
        let other = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        assert!(
            !recognises(&other, "acme", "a@acme.test", &v),
            "another key"
        );
        assert!(!recognises(
            &cipher,
            "acme",
            "a@acme.test",
            "0123456789abcdef.00"
        ));
        assert!(!recognises(&cipher, "acme", "a@acme.test", "junk"));
    }
}
