//! Input rules for accounts, shared by registration and password change.

use crate::error::FieldErrors;
use shared::api::{PASSWORD_MAX, PASSWORD_MIN, USERNAME_MAX, USERNAME_MIN};
use zxcvbn::Score;

/// Normalizes a username (trimmed, lowercased) and checks its rules.
pub fn username(raw: &str, errors: &mut FieldErrors) -> String {
    let name = raw.trim().to_lowercase();
    let len = name.chars().count();
    let message = if name.is_empty() {
        Some("is required".to_owned())
    } else if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        Some(format!(
            "must be {USERNAME_MIN} to {USERNAME_MAX} characters long"
        ))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    {
        Some("may contain only letters a-z, digits and _ . -".to_owned())
    } else {
        None
    };
    if let Some(m) = message {
        errors.insert("username".into(), m);
    }
    name
}

/// Normalizes an email address (trimmed, lowercased) and checks its syntax.
pub fn email(raw: &str, errors: &mut FieldErrors) -> String {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        errors.insert("email".into(), "is required".into());
    } else if email.len() > 254
        || !email_address::EmailAddress::is_valid(&email)
        || !email.contains('.')
    {
        errors.insert("email".into(), "is not a valid email address".into());
    }
    email
}

/// Checks a new password and its confirmation. `field` names the password field.
pub fn new_password(
    password: &str,
    confirm: &str,
    field: &str,
    others: &[&str],
    errors: &mut FieldErrors,
) {
    let len = password.chars().count();
    let message = if password.is_empty() {
        Some("is required".to_owned())
    } else if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        Some(format!(
            "must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
        ))
    } else if is_common(password, others) {
        Some("is too common or too easy to guess".to_owned())
    } else {
        None
    };
    if let Some(m) = message {
        errors.insert(field.into(), m);
    }
    if confirm != password {
        errors.insert(
            "confirm_password".into(),
            "does not match the password".into(),
        );
    }
}

/// True for a password zxcvbn rates below "somewhat guessable" (score 2): one of the most
/// common passwords or a variant of one (reversed, l33t, capitalised, with digits), a
/// keyboard walk, repeats, sequences, dates, or the user's own name or email, alone or
/// with a little padding. Such passwords fall to a million guesses or fewer.
fn is_common(password: &str, user_inputs: &[&str]) -> bool {
    zxcvbn::zxcvbn(password, user_inputs).score() < Score::Two
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password_errors(pw: &str) -> FieldErrors {
        let mut e = FieldErrors::new();
        new_password(pw, pw, "password", &["alice"], &mut e);
        e
    }

    #[test]
    fn common_passwords_are_refused() {
        for pw in [
            "password",
            "password1",
            "12345678",
            "qwertyuiop",
            "iloveyou",
            "P@ssw0rd",
            "aaaaaaaaaa",
            "alice1234",
        ] {
            assert!(
                password_errors(pw).contains_key("password"),
                "{pw} should be refused"
            );
        }
    }

    #[test]
    fn reasonable_passwords_pass() {
        for pw in [
            "correct-horse-battery",
            "Tr4in!Station#88",
            "my cat eats lemons",
        ] {
            assert!(
                password_errors(pw).is_empty(),
                "{pw} should pass: {:?}",
                password_errors(pw)
            );
        }
    }

    #[test]
    fn usernames_are_lowercased_and_checked() {
        let mut e = FieldErrors::new();
        assert_eq!(username("  Alice_1 ", &mut e), "alice_1");
        assert!(e.is_empty());
        for bad in ["ab", "has space", "émile", &"x".repeat(33)] {
            let mut e = FieldErrors::new();
            username(bad, &mut e);
            assert!(e.contains_key("username"), "{bad} should be refused");
        }
    }

    #[test]
    fn emails_are_checked() {
        let mut e = FieldErrors::new();
        assert_eq!(email("Bob@Example.COM", &mut e), "bob@example.com");
        assert!(e.is_empty());
        for bad in [
            "",
            "bob",
            "bob@",
            "@example.com",
            "bob@@example.com",
            "bob@localhost",
        ] {
            let mut e = FieldErrors::new();
            email(bad, &mut e);
            assert!(e.contains_key("email"), "{bad} should be refused");
        }
    }
}
