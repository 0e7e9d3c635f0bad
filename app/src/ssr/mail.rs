//! Outgoing email: SMTP through lettre, or `.eml` files in `<data dir>/outbox/` when no SMTP server is set; sent off the request path, retried, each outcome logged and counted.
//!
//! A request only queues a message ([`Mailer::send`] never waits on the
//! network); one worker task delivers the queue, a few messages at a time,
//! each tried up to [`ATTEMPTS`] times. Bodies hold single-use links, so
//! log lines name the kind of message, the recipient's domain and the
//! outcome, never the body or the link.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::{
    message::{Mailbox, MultiPart},
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{mpsc, Semaphore};

use super::metrics::Metrics;

/// Messages waiting to be sent; beyond this a new one is dropped (and
/// counted), so a flood of requests cannot grow memory without bound.
pub const QUEUE: usize = 1_000;
/// Of those, what one sender (a company, or the base domain) may hold: a
/// company mailing the world cannot crowd out the others' reset links.
pub const SHARE: usize = QUEUE / 4;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 4;
/// Tries per message; the waits between them grow 1 s, 3 s, 9 s.
pub const ATTEMPTS: u32 = 4;

/// One message: a plain-text and an HTML part saying the same.
pub struct Mail {
    /// What it is, for logs and metrics: `password_reset`, `invitation`…
    pub kind: &'static str,
    /// Whose message it is, for the queue's shares: a company's id, or
    /// `None` for the base domain's (signups, "find your workspace").
    pub sender: Option<uuid::Uuid>,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// A message whose point is one link: a greeting paragraph, the link
    /// as a button, and a closing line. Text is escaped for the HTML part.
    pub fn with_link(
        kind: &'static str,
        to: &str,
        subject: &str,
        intro: &str,
        (label, url): (&str, &str),
        outro: &str,
    ) -> Self {
        let text = format!("{intro}\n\n{label}:\n{url}\n\n{outro}\n");
        let html = format!(
            "<!DOCTYPE html><html><body style=\"font-family:sans-serif;line-height:1.5\">\
             <p>{}</p><p><a href=\"{}\" style=\"display:inline-block;padding:.6em 1.2em;\
             background:#2f5bd3;color:#fff;border-radius:6px;text-decoration:none\">{}</a></p>\
             <p style=\"font-size:.9em;color:#555\">{}<br>{}</p></body></html>",
            escape(intro),
            escape(url),
            escape(label),
            escape(outro),
            escape(url),
        );
        Mail {
            kind,
            sender: None,
            to: to.to_owned(),
            subject: subject.to_owned(),
            text,
            html,
        }
    }

    /// The same message, counted in company `id`'s share of the queue.
    pub fn from_company(mut self, id: uuid::Uuid) -> Self {
        self.sender = Some(id);
        self
    }
}

/// Messages queued per sender, each at most [`SHARE`].
#[derive(Clone, Default)]
struct Queued(Arc<std::sync::Mutex<std::collections::HashMap<Option<uuid::Uuid>, usize>>>);

impl Queued {
    /// Counts one more message of `sender`, unless its share is full.
    fn admit(&self, sender: Option<uuid::Uuid>) -> bool {
        let mut queued = self.0.lock().unwrap();
        let n = queued.entry(sender).or_default();
        if *n >= SHARE {
            return false;
        }
        *n += 1;
        true
    }

    /// One message of `sender` left the queue (sent, failed or dropped).
    fn done(&self, sender: Option<uuid::Uuid>) {
        let mut queued = self.0.lock().unwrap();
        if let Some(n) = queued.get_mut(&sender) {
            *n -= 1;
            if *n == 0 {
                queued.remove(&sender);
            }
        }
    }
}

/// Escapes text for an HTML body or attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("ENCLAVE_SMTP_URL is not a usable SMTP URL: {0}")]
    SmtpUrl(#[source] lettre::transport::smtp::Error),
    #[error("ENCLAVE_MAIL_FROM is not a mailbox (`Name <address>` or `address`): {0}")]
    From(#[source] lettre::address::AddressError),
    #[error("the outbox directory {0}")]
    Outbox(String, #[source] std::io::Error),
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>, Arc<PathBuf>),
}

/// Where mail goes, as `Debug` shows it: never the SMTP URL's credentials.
#[derive(Clone)]
pub struct Mailer {
    queue: mpsc::Sender<Mail>,
    queued: Queued,
    from: Mailbox,
    metrics: Metrics,
    outbox: Option<Arc<PathBuf>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Starts the delivery task: SMTP when `smtp_url` is set
    /// (`smtp://host:port`, `smtps://user:pass@host`, lettre's URL form),
    /// otherwise `.eml` files in `outbox`.
    pub fn start(
        smtp_url: Option<&SecretString>,
        from: &str,
        outbox: PathBuf,
        metrics: Metrics,
    ) -> Result<Self, MailError> {
        let from: Mailbox = from.parse().map_err(MailError::From)?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(MailError::SmtpUrl)?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => {
                super::tenancy::servers::databases::create_private_dir(&outbox)
                    .map_err(|e| MailError::Outbox(outbox.display().to_string(), e))?;
                Transport::Outbox(
                    AsyncFileTransport::<Tokio1Executor>::new(&outbox),
                    Arc::new(outbox),
                )
            }
        };
        let outbox = match &transport {
            Transport::Outbox(_, dir) => Some(dir.clone()),
            Transport::Smtp(_) => None,
        };
        let (queue, rx) = mpsc::channel(QUEUE);
        let queued = Queued::default();
        tokio::spawn(deliver(
            rx,
            transport,
            from.clone(),
            metrics.clone(),
            queued.clone(),
        ));
        Ok(Mailer {
            queue,
            queued,
            from,
            metrics,
            outbox,
        })
    }

    /// The outbox directory, when messages are written there.
    pub fn outbox(&self) -> Option<&std::path::Path> {
        self.outbox.as_deref().map(|p| p.as_path())
    }

    /// Waits, at most `within`, until every queued message is delivered or
    /// given up: a command that sends mail, before it exits.
    pub async fn flush(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.queued.0.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Queues `mail`; returns at once. A full queue drops the message
    /// (logged and counted): the caller's answer must not depend on it.
    pub fn send(&self, mail: Mail) {
        let (kind, sender) = (mail.kind, mail.sender);
        if !self.queued.admit(sender) {
            self.metrics.mail(kind, "dropped");
            tracing::error!(
                kind,
                "this sender's share of the mail queue is full: message dropped"
            );
            return;
        }
        if self.queue.try_send(mail).is_err() {
            self.queued.done(sender);
            self.metrics.mail(kind, "dropped");
            tracing::error!(kind, "mail queue full: message dropped");
        }
    }
}

async fn deliver(
    mut rx: mpsc::Receiver<Mail>,
    transport: Transport,
    from: Mailbox,
    metrics: Metrics,
    queued: Queued,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(mail) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (transport, from, metrics) = (transport.clone(), from.clone(), metrics.clone());
        let (queued, sender) = (queued.clone(), mail.sender);
        tokio::spawn(async move {
            deliver_one(&transport, from, mail, &metrics).await;
            queued.done(sender);
            drop(slot);
        });
    }
}

async fn deliver_one(transport: &Transport, from: Mailbox, mail: Mail, metrics: &Metrics) {
    let kind = mail.kind;
    let domain = mail.to.rsplit('@').next().unwrap_or_default().to_owned();
    let message = match mail
        .to
        .parse::<Mailbox>()
        .map_err(|e| e.to_string())
        .and_then(|to| {
            Message::builder()
                .from(from)
                .to(to)
                .subject(mail.subject)
                .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
                .map_err(|e| e.to_string())
        }) {
        Ok(m) => m,
        Err(error) => {
            metrics.mail(kind, "failed");
            tracing::error!(kind, to_domain = %domain, %error, "mail not built");
            return;
        }
    };
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let outcome = match transport {
            Transport::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Transport::Outbox(files, dir) => files
                .send(message.clone())
                .await
                .map(|id| Some(dir.join(format!("{id}.eml"))))
                .map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(None) => {
                metrics.mail(kind, "sent");
                tracing::info!(kind, to_domain = %domain, attempt, "mail sent");
                return;
            }
            Ok(Some(file)) => {
                metrics.mail(kind, "outbox");
                tracing::info!(kind, to_domain = %domain, file = %file.display(), "mail written to the outbox (no ENCLAVE_SMTP_URL)");
                return;
            }
            Err(error) if attempt < ATTEMPTS => {
                tracing::warn!(kind, to_domain = %domain, attempt, %error, "mail not sent; retrying");
                tokio::time::sleep(wait).await;
                wait *= 3;
            }
            Err(error) => {
                metrics.mail(kind, "failed");
                tracing::error!(kind, to_domain = %domain, attempts = ATTEMPTS, %error, "mail not sent; giving up");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sender_holds_at_most_its_share_of_the_queue() {
        let queued = Queued::default();
        let (a, b) = (
            Some(uuid::Uuid::from_u128(1)),
            Some(uuid::Uuid::from_u128(2)),
        );
        for _ in 0..SHARE {
            assert!(queued.admit(a));
        }
        assert!(!queued.admit(a), "a's share is full");
        assert!(queued.admit(b), "b has its own");
        assert!(queued.admit(None), "and so has the base domain");
        queued.done(a);
        assert!(queued.admit(a), "a sent one: room for one more");
    }

    #[test]
    fn the_html_part_escapes_what_people_typed() {
        let m = Mail::with_link(
            "test",
            "a@b.test",
            "Hi",
            "Welcome to <script>x</script> & co",
            ("Open", "https://acme.example.com/x?a=1&b=\"2\""),
            "Bye",
        );
        assert!(m
            .html
            .contains("Welcome to &lt;script&gt;x&lt;/script&gt; &amp; co"));
        assert!(m
            .html
            .contains("href=\"https://acme.example.com/x?a=1&amp;b=&quot;2&quot;\""));
        assert!(!m.html.contains("<script>"));
        assert!(m.text.contains("https://acme.example.com/x?a=1&b=\"2\""));
    }
}
