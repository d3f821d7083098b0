//! Outgoing mail over SMTP (lettre): the password-reset and address-confirmation
//! messages, each with a plain-text and an HTML body. Without `--smtp-url` the server sends nothing and says so in its log; the
//! operator then hands out links with `confab-server admin reset-link USER`.

use crate::config::Config;
use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends the server's mail, or, when no SMTP server is configured, does not.
#[derive(Clone)]
pub struct Mailer {
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("configured", &self.smtp.is_some())
            .finish()
    }
}

impl Mailer {
    /// The mailer `--smtp-url` and its companions describe (a configuration error is
    /// reported at startup, not at the first mail).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let Some(url) = config.smtp_url.as_deref() else {
            return Ok(Self { smtp: None });
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("--smtp-url must look like smtp://host:25, smtp://host:587?tls=required or smtps://host:465")?;
        if let Some(user) = &config.smtp_user {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                config.smtp_password.clone().unwrap_or_default(),
            ));
        }
        let from = config
            .smtp_from
            .as_deref()
            .context("--smtp-from is required with --smtp-url")?
            .parse::<Mailbox>()
            .context("--smtp-from must be an address such as \"Confab <confab@example.org>\"")?;
        Ok(Self {
            smtp: Some((builder.build(), from)),
        })
    }

    /// Whether mail can be sent at all.
    pub fn is_configured(&self) -> bool {
        self.smtp.is_some()
    }

    /// Sends `to` the link (and the code in it) that resets their password.
    pub async fn send_password_reset(
        &self,
        to: &str,
        username: &str,
        link: &str,
        token: &str,
        valid_minutes: u64,
    ) -> anyhow::Result<()> {
        self.send(
            to,
            "Reset your Confab password",
            reset_text(username, link, token, valid_minutes),
            reset_html(username, link, token, valid_minutes),
        )
        .await
    }

    /// Sends `to` the link that confirms their address (`--require-email-verification`).
    pub async fn send_verification(
        &self,
        to: &str,
        username: &str,
        link: &str,
        valid_hours: u64,
    ) -> anyhow::Result<()> {
        self.send(
            to,
            "Confirm your email address for Confab",
            verify_text(username, link, valid_hours),
            verify_html(username, link, valid_hours),
        )
        .await
    }

    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> anyhow::Result<()> {
        let Some((transport, from)) = &self.smtp else {
            anyhow::bail!("no SMTP server is configured");
        };
        let to: Mailbox = to.parse().context("the account's email address")?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .context("building the message")?;
        transport
            .send(message)
            .await
            .context("sending through the SMTP server")?;
        Ok(())
    }
}

/// The confirmation mail's plain-text body.
fn verify_text(username: &str, link: &str, valid_hours: u64) -> String {
    format!(
        "Hello {username},\n\n\
         welcome to Confab. Open this link to confirm your email address; you can sign in\n\
         once it is confirmed:\n\n{link}\n\n\
         It works for {valid_hours} hours. If you did not create this account, ignore this message.\n"
    )
}

/// The confirmation mail's HTML body. Every interpolated value is escaped.
fn verify_html(username: &str, link: &str, valid_hours: u64) -> String {
    let (username, link) = (escape(username), escape(link));
    format!(
        "<!doctype html>\n<html><body style=\"font-family: sans-serif\">\n\
         <p>Hello {username},</p>\n\
         <p>welcome to Confab. Confirm your email address to sign in:</p>\n\
         <p><a href=\"{link}\">Confirm my address</a></p>\n\
         <p>It works for {valid_hours} hours. If you did not create this account, ignore this message.</p>\n\
         </body></html>\n"
    )
}

/// The plain-text body.
fn reset_text(username: &str, link: &str, token: &str, valid_minutes: u64) -> String {
    format!(
        "Hello {username},\n\n\
         someone (hopefully you) asked to reset the password of your Confab account.\n\
         Open this link to choose a new one:\n\n{link}\n\n\
         or enter this code in the app: {token}\n\n\
         It works once, for {valid_minutes} minutes. Resetting signs out all your devices.\n\
         If you did not ask for this, ignore this message: your password stays as it is.\n"
    )
}

/// The HTML body. Every interpolated value is escaped.
fn reset_html(username: &str, link: &str, token: &str, valid_minutes: u64) -> String {
    let (username, link, token) = (escape(username), escape(link), escape(token));
    format!(
        "<!doctype html>\n<html><body style=\"font-family: sans-serif\">\n\
         <p>Hello {username},</p>\n\
         <p>someone (hopefully you) asked to reset the password of your Confab account.</p>\n\
         <p><a href=\"{link}\">Choose a new password</a></p>\n\
         <p>or enter this code in the app: <code>{token}</code></p>\n\
         <p>It works once, for {valid_minutes} minutes. Resetting signs out all your devices.\n\
         If you did not ask for this, ignore this message: your password stays as it is.</p>\n\
         </body></html>\n"
    )
}

/// HTML escaping for text and attribute values.
pub(crate) fn escape(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_body_escapes_what_it_interpolates() {
        let html = reset_html("a<b", "https://x/?a=1&b=\"2\"", "t", 30);
        assert!(html.contains("a&lt;b"));
        assert!(html.contains("href=\"https://x/?a=1&amp;b=&quot;2&quot;\""));
        assert!(!html.contains("a<b"));
    }

    #[test]
    fn both_bodies_carry_the_link_and_the_code() {
        for body in [
            reset_text("bob", "https://x/r?token=abc", "abc", 30),
            reset_html("bob", "https://x/r?token=abc", "abc", 30),
        ] {
            assert!(body.contains("https://x/r?token=abc") && body.contains("30 minutes"));
        }
    }
}
