//! Error types.

/// Why a line could not be parsed at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON.
    #[error("invalid JSON on a stream-json line ({line_len} bytes): {source}")]
    InvalidJson {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
        /// The line length.
        line_len: usize,
    },
    /// JSON, but not an object.
    #[error("a stream-json line must be a JSON object, got {kind}")]
    NotAnObject {
        /// What it was (`an array`, `a string`, …).
        kind: &'static str,
    },
}
