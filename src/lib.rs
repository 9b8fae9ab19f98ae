//! greenroom: a self-hosted staging orchestrator.
//!
//! This crate wires the pure core (`greenroom-core`) to its adapters — git
//! mirrors (`greenroom-git`), drivers (`greenroom-driver`) and the state
//! store (`greenroom-store`) — and exposes them as the `greenroom` CLI. See
//! `ARCHITECTURE.md` for the map.

pub mod app;
pub mod approving;
pub mod audit;
pub mod blockers;
pub mod build;
pub mod cancelling;
pub mod cli;
pub mod client;
pub mod engine;
pub mod ephemeral;
pub mod error;
pub mod errorwatch;
pub mod feedback;
pub mod feeds;
pub mod forge;
pub mod gates;
pub mod identity;
pub mod leasing;
pub mod matrix;
pub mod notify;
pub mod pausing;
pub mod pending;
pub mod progress;
pub mod promote;
pub mod quickstart;
pub mod resolve;
pub mod retention;
pub mod rollback;
pub mod sample;
pub mod server;
pub mod status;
pub mod verify;
