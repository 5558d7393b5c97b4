//! Tools for plugin authors: `weir new` scaffolds a plugin project, `weir test` runs a plugin on
//! a sample file and shows its answer, `weir test --conformance` checks a plugin keeps the ABI.

pub mod conformance;
pub mod runner;
pub mod sample;
pub mod scaffold;

use std::path::PathBuf;

/// Errors of the authoring tools; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    /// A sample file could not be read.
    #[error("{path}: {message}")]
    Input {
        /// The sample.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The output file could not be written.
    #[error("{path}: {message}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A project could not be scaffolded.
    #[error("weir new: {0}")]
    Scaffold(String),
}
