//! greenroom-core: the pure decision logic of greenroom.
//!
//! This crate owns the configuration model and its validation, the
//! composition grammar (`COMPONENT=REF`), manifests and their content ids,
//! deploy plans (order, what is replaced, what is carried over), lease
//! decisions, the scheduling policy ([`policy`]) and its simulator
//! ([`simulate`]). It must never do I/O: no processes, no network, no database,
//! no clock. Time is always passed in as an argument ([`time::Millis`]). The
//! one exception is [`config::load`], which reads the config file's text and
//! hands it to the pure [`config::parse`].

pub mod blockers;
pub mod chat;
pub mod command;
pub mod compose;
pub mod config;
pub mod culprit;
pub mod errorwatch;
pub mod failure;
pub mod feed;
pub mod fleet;
pub mod gate;
pub mod impact;
pub mod junit;
pub mod lease;
pub mod manifest;
pub mod matrix;
pub mod notify;
pub mod pending;
pub mod plan;
pub mod policy;
pub mod refname;
pub mod retention;
pub mod secret;
pub mod simulate;
pub mod template;
pub mod time;
