//! How a command ends, and the one place its exit code is decided: 0 success, 1 a check failed
//! (an infeasible layer, an unproven optimum, a gap above the limit: the report is still
//! printed), 2 bad input, 3 a fault of qmap's own (with a request for a bug report).

use crate::spec::InputError;
use std::path::{Path, PathBuf};

/// Exit code of a run that did what was asked.
const OK: i32 = 0;
/// Exit code of a run whose check failed (infeasible, not proven, gap too large).
const CHECK_FAILED: i32 = 1;
/// Exit code of bad input (an input file, the command line, an output that cannot be written).
pub const BAD_INPUT: i32 = 2;
/// Exit code of an internal error (a failed self-check, HiGHS failing).
const INTERNAL: i32 = 3;

/// How a command that ran to its end came out: its report is printed either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A check failed: a layer is infeasible, an optimum is not proven, a gap is too large.
    CheckFailed,
}

impl Outcome {
    /// `Ok` when `pass`, else `CheckFailed`.
    pub fn check(pass: bool) -> Outcome {
        if pass {
            Outcome::Ok
        } else {
            Outcome::CheckFailed
        }
    }

    pub fn code(self) -> i32 {
        match self {
            Outcome::Ok => OK,
            Outcome::CheckFailed => CHECK_FAILED,
        }
    }
}

/// Why a command did not run to its end.
#[derive(Debug)]
pub enum Error {
    /// Bad input (exit code 2).
    Input(InputError),
    /// An engine's (MILP, search, table builder) error about `file`'s problem: an internal
    /// error when it says so or HiGHS failed (exit code 3), else a request the solver refuses
    /// (bad input, exit code 2).
    Solver { file: PathBuf, message: String },
    /// A fault of qmap's own (exit code 3).
    Internal(String),
}

impl Error {
    /// An engine's `String` error about `file`'s problem.
    pub fn solver(file: &Path, message: String) -> Error {
        Error::Solver {
            file: file.to_path_buf(),
            message,
        }
    }

    fn solver_is_internal(message: &str) -> bool {
        message.starts_with("internal error") || message.starts_with("HiGHS")
    }

    pub fn code(&self) -> i32 {
        match self {
            Error::Input(_) => BAD_INPUT,
            Error::Solver { message, .. } if Self::solver_is_internal(message) => INTERNAL,
            Error::Solver { .. } => BAD_INPUT,
            Error::Internal(_) => INTERNAL,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Input(e) => write!(f, "{e}"),
            Error::Solver { message, .. } if message.starts_with("internal error") => {
                write!(f, "{message}")
            }
            Error::Solver { message, .. } if message.starts_with("HiGHS") => {
                write!(f, "{}", crate::certify::internal_error(message))
            }
            Error::Solver { file, message } => {
                write!(f, "{}", InputError::new(file, "(solver)", message.as_str()))
            }
            Error::Internal(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<InputError> for Error {
    fn from(e: InputError) -> Error {
        Error::Input(e)
    }
}

/// The exit code of a run.
pub fn exit_code(result: &Result<Outcome, Error>) -> i32 {
    match result {
        Ok(outcome) => outcome.code(),
        Err(e) => e.code(),
    }
}
