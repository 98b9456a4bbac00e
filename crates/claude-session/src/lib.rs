//! One Claude Code session: a ractor actor owning one CLI process.
