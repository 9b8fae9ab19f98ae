//! greenroom's git adapter.
//!
//! One local bare **mirror** per repository ([`Mirrors`], [`Mirror`]), fetched
//! incrementally and narrowly (only the refs a request needs); resolution of
//! branches, tags, tag patterns, pull/merge requests and (abbreviated) SHAs to
//! full commit SHAs ([`Mirror::resolve`], [`Mirror::resolve_all`]); clean,
//! detached checkouts ([`Mirror::checkout`]); and changed paths between two
//! commits ([`Mirror::changed_files`]); staging branches, a base plus every
//! pending pull request merged in order, deterministic and cached per step
//! ([`staging::build_staging`], [`staging::publish`]).
//!
//! It drives the git CLI (`git` on `PATH`) through argument vectors, never a
//! shell: the CLI is everywhere, speaks every transport and uses the
//! credential helpers and config users already have, and is what they debug
//! with; libraries (gix, libgit2) add a big build and lag behind on protocol
//! features. Writes to a mirror are serialized by a per-mirror file lock, so
//! several greenroom processes can share one mirror directory.
//!
//! This crate must never run a shell, prompt for credentials, or modify any
//! repository other than its own mirrors and the checkouts it is asked to
//! create (one exception: [`staging::publish`] pushes the staging ref and its
//! dated tags where it is told to). It knows nothing of components,
//! deployments or forges' APIs.

#![warn(missing_docs)]

mod cmd;
mod error;
mod lock;
mod mirror;
pub mod staging;
mod version;
mod want;

pub use error::{GitError, STDERR_TAIL_LINES};
pub use mirror::{Mirror, Mirrors};
pub use staging::{Conflict, PrHead, Published, StagingBuild, StagingOptions, build_staging, publish};
pub use version::compare_versions;
pub use want::{Forge, Resolved, Want};
