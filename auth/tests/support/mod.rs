//! Shared by the integration tests and the benchmark; each uses a part.
#![allow(dead_code)]

pub mod fake_idp;
pub mod keys;
pub mod provider;
