//! Session names: what a name may be, checked before anything is taken.

use super::SupervisorError;

/// The longest session name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks a session name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits and `-` `_` `.`
/// `@` `:`, not starting with `.` and without `..` — so that a name is safe as a file name, a
/// URL path segment and a tracing field, whatever the store or the server does with it.
///
/// # Errors
///
/// [`SupervisorError::InvalidName`] saying which rule the name breaks.
pub fn validate_name(name: &str) -> Result<(), SupervisorError> {
    let invalid = |reason: &'static str| SupervisorError::InvalidName {
        name: name.chars().take(MAX_NAME_LEN + 8).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("a session name must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("a session name must be at most 128 bytes long"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':'))
    {
        return Err(invalid(
            "a session name may hold only ASCII letters, digits and - _ . @ :",
        ));
    }
    if name.starts_with('.') || name.contains("..") {
        return Err(invalid(
            "a session name must not start with `.` or contain `..`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_by_the_documented_rules() {
        for ok in [
            "reviewer",
            "user-42",
            "a.b_c@d:e",
            &"x".repeat(MAX_NAME_LEN),
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc",
            "a/b",
            ".hidden",
            "a..b",
            "sp ace",
            "é",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(
                matches!(validate_name(bad), Err(SupervisorError::InvalidName { .. })),
                "{bad}"
            );
        }
    }
}
