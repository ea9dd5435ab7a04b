//! Why a run could not be carried out.

/// Why a run could not be carried out (failures of single connections are
/// counted in the reports instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Usage(String),
    #[error("tokens: {0}")]
    Tokens(String),
    #[error("web-frontend: {0}")]
    Web(String),
    #[error("server process: {0}")]
    Process(std::io::Error),
    #[error("deadline passed: {0}")]
    Deadline(String),
}
