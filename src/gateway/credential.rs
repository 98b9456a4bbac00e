//! [`Credential`]: the real API credential the gateway adds to forwarded requests.

use axum::http::{HeaderName, HeaderValue, header};

use super::GatewayError;

/// The real credential of the upstream API. Only the gateway holds it; its `Debug` prints `***`
/// and no error, log line, health report or event carries it.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// An API key, sent as `x-api-key: <key>`.
    ApiKey(String),
    /// A bearer token (an OAuth or gateway token), sent as `authorization: Bearer <token>`.
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKey(_) => f.write_str("ApiKey(***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl Credential {
    /// The CLI's environment variable for it, and its value (for a tree without a gateway).
    pub(crate) fn env_var(&self) -> (&'static str, &str) {
        match self {
            Self::ApiKey(key) => ("ANTHROPIC_API_KEY", key),
            Self::Bearer(token) => ("ANTHROPIC_AUTH_TOKEN", token),
        }
    }

    /// The header it travels in, with its value marked sensitive (HTTP/2 never indexes it).
    pub(crate) fn header(&self) -> Result<(HeaderName, HeaderValue), GatewayError> {
        let (name, value) = match self {
            Self::ApiKey(key) => (HeaderName::from_static("x-api-key"), key.clone()),
            Self::Bearer(token) => (header::AUTHORIZATION, format!("Bearer {token}")),
        };
        let secret = match self {
            Self::ApiKey(s) | Self::Bearer(s) => s,
        };
        if secret.is_empty() {
            return Err(GatewayError::InvalidCredential {
                reason: "it is empty",
            });
        }
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| GatewayError::InvalidCredential {
                reason: "it contains characters a header value cannot carry",
            })?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let key = Credential::ApiKey("sk-ant-secret-1".into());
        let token = Credential::Bearer("tok-secret-2".into());
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(format!("{token:?}"), "Bearer(***)");
        assert!(!format!("{:#?}", (key, token)).contains("secret"));
    }

    #[test]
    fn each_kind_travels_in_its_header() {
        let (name, value) = Credential::ApiKey("k1".into()).header().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-api-key", "k1")
        );
        assert!(value.is_sensitive());
        let (name, value) = Credential::Bearer("t1".into()).header().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer t1")
        );
    }

    #[test]
    fn unusable_credentials_are_refused_without_showing_them() {
        let err = Credential::ApiKey("bad\nsecret-3".into())
            .header()
            .unwrap_err();
        assert!(!err.to_string().contains("secret-3"), "{err}");
        assert!(Credential::Bearer(String::new()).header().is_err());
    }
}
