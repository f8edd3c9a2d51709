//! The `hexdash` binary's library half: configuration, telemetry, operator
//! endpoints and [`App`], which builds and wires every subsystem (engine,
//! matcher, ingest, ws-gateway, api). Integration tests start an `App` on
//! port 0 exactly as `hexdash serve` does. [`demo`] starts the simulated
//! city of `hexdash serve --demo` beside it. [`cli`] holds the other
//! subcommands (`hexdash simulate`).

mod answers;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http_policy;
pub mod http_server;
mod leases;
mod limits;
mod node;
mod notify;
mod ops;
mod regions;
pub mod roles;
pub mod telemetry;
pub mod tls;

pub use app::App;
pub use config::Config;
