//! The Claude Code CLI's stream-json wire format.
