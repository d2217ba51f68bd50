//! Assembling a running gateway: from its parts ([`start`]), from a config file ([`config`],
//! [`serve`], [`check`], [`reload`], [`authn`]), or on its embedded default ([`demo`], with the `demo`
//! feature); and the process's log ([`logging`]).

pub mod authn;
pub mod check;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod logging;
pub mod reload;
pub mod serve;
pub mod start;

pub use start::{Running, StartOptions, start};
