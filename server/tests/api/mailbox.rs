//! Reading the mail Enclave sends: from a real SMTP server the test starts
//! (Debian's `python3-aiosmtpd`, delivering into a Maildir), or from the
//! outbox directory used when no SMTP server is set.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real SMTP server on a free loopback port, killed on drop.
pub struct SmtpServer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl SmtpServer {
    /// Blocking: call it off the async runtime.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    pub fn start_on(port: u16) -> Self {
        let dir =
            std::env::temp_dir().join(format!("enclave-smtp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // Debian's interpreter, where `python3-aiosmtpd` is installed.
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (make setup-system installs it)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer { child, dir, port }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.join("maildir").join("new")
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every message file in `dir`, as raw RFC 5322 text.
pub fn messages(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// Waits until a message to `to` is in `dir` and returns it (decoded of
/// quoted-printable soft line breaks), or panics after 15 s.
pub async fn wait_for(dir: &Path, to: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<String> = messages(dir)
            .into_iter()
            .filter(|m| to_header(m).contains(to))
            .map(|m| unfold(&m))
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no message to {to} in {} after 15 s ({} there)",
            dir.display(),
            messages(dir).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn to_header(message: &str) -> String {
    message
        .lines()
        .take_while(|l| !l.is_empty() && *l != "\r")
        .filter(|l| l.to_ascii_lowercase().starts_with("to:"))
        .collect()
}

/// Undoes quoted-printable soft line breaks and `=3D`, enough to find links.
fn unfold(message: &str) -> String {
    message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The token of the first `/<path>/<64 hex>` link in a message.
pub fn link_token(message: &str, path: &str) -> String {
    let at = message
        .find(path)
        .unwrap_or_else(|| panic!("no {path} link in:\n{message}"));
    let token: String = message[at + path.len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(token.len(), 64, "a 64-hex token after {path}");
    token
}

/// Waits for a message to `to` with a `<path><token>` link and returns the
/// token of the newest such message.
pub async fn wait_for_link(dir: &Path, to: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<String> = messages(dir)
            .into_iter()
            .filter(|m| to_header(m).contains(to))
            .map(|m| unfold(&m))
            .filter(|m| m.contains(path))
            .collect();
        if let Some(last) = found.last() {
            return link_token(last, path);
        }
        assert!(
            Instant::now() < deadline,
            "no {path} link to {to} after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
