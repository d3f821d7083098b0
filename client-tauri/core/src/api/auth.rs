//! Account requests made before signing in that the sign-in form offers on an error:
//! asking for the address-confirmation mail again.

use super::{ApiClient, ApiError, empty};
use reqwest::Method;

impl ApiClient {
    /// Asks the server to mail the address-confirmation link to `email` again (after a
    /// sign-in refused with `email_unverified`); the links mailed before stop working.
    /// The answer is the same whether or not an account waits for confirmation at that
    /// address (`Ok` either way); errors are a malformed address, the rate limit
    /// (`rate_limited`, with its `Retry-After`) and transport failures.
    pub async fn resend_email_verification(&self, email: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "email": email });
        let resp = self.public(
            Method::POST,
            &["api", "auth", "verify-email", "resend"],
            Some(&body),
        );
        empty(resp.await?).await
    }
}
