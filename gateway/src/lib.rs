//! podgate: the front door between people and the pods of many Kubernetes clusters.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod audit;
pub mod browser;
pub mod clusters;
pub mod demo;
pub mod fdlimit;
pub mod gateway;
pub mod headers;
pub mod http;
pub mod limits;
pub mod proxy;
pub mod relay;
pub mod router;
pub mod serve;
pub mod server;
pub mod sessions;
pub mod tls;
pub mod upstream;
pub mod web;
