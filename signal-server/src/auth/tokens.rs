//! Access tokens (JWT, HS256 only) and opaque refresh / invite tokens.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::{SessionId, UserId};
use std::path::Path;

const ISSUER: &str = "confab";
const AUDIENCE: &str = "confab-api";

/// The claims of an access token. All are required: a token missing one fails to decode.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub sid: SessionId,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Signs and verifies access tokens.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        // One pinned algorithm: a token whose header names another (including `none`) is
        // refused. nbf and aud are not checked unless asked for, so both are asked for.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Tokens are issued and checked by this one server, so clock skew is not an issue.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
        }
    }

    /// A new access token and its expiry (unix seconds).
    pub fn issue(&self, user: UserId, session: SessionId) -> anyhow::Result<(String, i64)> {
        let now = crate::db::now();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user,
            sid: session,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing access token")?;
        Ok((token, claims.exp))
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> jsonwebtoken::errors::Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims)
    }
}

/// A new opaque token: 256 random bits, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores in place of an opaque token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JWT secret: the configured one, else the one kept in `<data_dir>/jwt-secret`,
/// generated (256 random bits, file mode 0600) on first start.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= 32,
            "the JWT secret must be at least 32 bytes long"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = URL_SAFE_NO_PAD
                .decode(text.trim())
                .with_context(|| format!("{} is not base64", path.display()))?;
            anyhow::ensure!(
                secret.len() >= 32,
                "{} holds fewer than 256 bits",
                path.display()
            );
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = vec![0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            write_private(&path, URL_SAFE_NO_PAD.encode(&secret).as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new JWT signing secret");
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> Jwt {
        Jwt::new(&[7u8; 32], 900)
    }

    #[test]
    fn issued_tokens_verify() {
        let (user, session) = (UserId::new(), SessionId::new());
        let (token, exp) = jwt().issue(user, session).expect("issues");
        let claims = jwt().verify(&token).expect("verifies");
        assert_eq!((claims.sub, claims.sid, claims.exp), (user, session, exp));
    }

    #[test]
    fn other_secrets_algorithms_and_audiences_are_refused() {
        let (token, _) = jwt()
            .issue(UserId::new(), SessionId::new())
            .expect("issues");
        assert!(Jwt::new(&[8u8; 32], 900).verify(&token).is_err());

        let now = crate::db::now();
        let mut claims = Claims {
            iss: ISSUER.into(),
            aud: "someone-else".into(),
            sub: UserId::new(),
            sid: SessionId::new(),
            jti: "x".into(),
            iat: now,
            nbf: now,
            exp: now + 60,
        };
        let key = EncodingKey::from_secret(&[7u8; 32]);
        let wrong_aud =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encodes");
        assert!(jwt().verify(&wrong_aud).is_err());

        claims.aud = AUDIENCE.into();
        claims.nbf = now + 600;
        let not_yet =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encodes");
        assert!(jwt().verify(&not_yet).is_err());

        claims.nbf = now;
        let hs512 =
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).expect("encodes");
        assert!(jwt().verify(&hs512).is_err());
    }

    #[test]
    fn secret_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("confab-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let first = load_or_create_secret(None, &dir).expect("creates");
        let second = load_or_create_secret(None, &dir).expect("reads");
        assert_eq!(first, second);
        assert_eq!(first.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("jwt-secret"))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
