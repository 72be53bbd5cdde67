//! The fixtures module compiled into each test, so tests need no feature flag.
#![allow(dead_code)]

#[path = "../../src/fixtures.rs"]
mod fixtures;
pub use fixtures::*;
