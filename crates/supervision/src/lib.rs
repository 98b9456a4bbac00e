//! Generic OTP supervision on ractor (see `docs/semantics.md`).
