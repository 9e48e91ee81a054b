//! Integration tests live in tests/root.rs (one test binary).
