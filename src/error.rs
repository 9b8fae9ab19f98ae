//! Errors the CLI turns into exit codes.
//!
//! Most failures travel as `anyhow::Error` with context; the ones a script
//! must tell apart carry a [`UserError`] so that `main` can choose the exit
//! status: 2 for bad input (nothing was touched), 3 for a busy environment.

/// A failure caused by what the user asked for, not by greenroom.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Bad input: config, composition, refs, unknown names. Nothing was changed.
    #[error("{0}")]
    Input(String),
    /// The environment is leased by someone else.
    #[error("{0}")]
    Busy(String),
}

impl UserError {
    /// Exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            UserError::Input(_) => 2,
            UserError::Busy(_) => 3,
        }
    }
}

/// Shorthand: an input error as an `anyhow::Error`.
pub fn input(msg: impl Into<String>) -> anyhow::Error {
    UserError::Input(msg.into()).into()
}
