//! Where connections arrive: the public listener ([`listener`]: TLS, HTTP/1.1 and h2 with
//! upgrades, connection limits, graceful shutdown), its certificate and reload ([`tls`]), the
//! file-descriptor limit those connections need ([`fdlimit`]), and the admin listener
//! ([`admin`]: metrics, health, live sessions) on its own address.
//!
//! The edge hands every request to the [`Router`](crate::route::Router) and knows nothing of
//! what it does with it.

pub mod admin;
pub mod fdlimit;
pub mod listener;
pub mod tls;
