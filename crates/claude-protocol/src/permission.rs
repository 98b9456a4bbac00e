//! Permission modes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// A permission mode, as spelled on the wire and for `--permission-mode`.
///
/// 2.1.329's `--help` lists `acceptEdits`, `auto`, `bypassPermissions`, `manual`,
/// `dontAsk` and `plan`; `system/init` reports `default` for the default mode. Any other
/// spelling is kept in [`PermissionMode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum PermissionMode {
    /// `default`: ask for anything that is not allowed by rules.
    Default,
    /// `acceptEdits`: file edits are allowed without asking.
    AcceptEdits,
    /// `plan`: plan only, no changes.
    Plan,
    /// `bypassPermissions`: nothing is asked (needs `IS_SANDBOX=1` as root).
    BypassPermissions,
    /// `dontAsk`: deny whatever would have prompted.
    DontAsk,
    /// `auto`: the CLI's automatic classifier mode.
    Auto,
    /// `manual`: listed by `--help` of 2.1.329.
    Manual,
    /// A mode this crate does not know yet, spelled as on the wire.
    #[serde(untagged)]
    Other(String),
}

impl PermissionMode {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Default => "default",
            Self::AcceptEdits => "acceptEdits",
            Self::Plan => "plan",
            Self::BypassPermissions => "bypassPermissions",
            Self::DontAsk => "dontAsk",
            Self::Auto => "auto",
            Self::Manual => "manual",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for PermissionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PermissionMode {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "default" => Self::Default,
            "acceptEdits" => Self::AcceptEdits,
            "plan" => Self::Plan,
            "bypassPermissions" => Self::BypassPermissions,
            "dontAsk" => Self::DontAsk,
            "auto" => Self::Auto,
            "manual" => Self::Manual,
            other => Self::Other(other.to_owned()),
        })
    }
}

impl<'de> Deserialize<'de> for PermissionMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = crate::serde_util::Key::deserialize(d)?;
        Ok(PermissionMode::from(s.as_str()))
    }
}

impl From<&str> for PermissionMode {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(m) => m,
            Err(never) => match never {},
        }
    }
}
