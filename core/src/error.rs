//! The one error type of medpick-core. Variants carry the operation and the shapes or paths involved, so a
//! message can be shown to a user as is.

/// Result alias used across medpick-core.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter could be found or chosen.
    #[error("no GPU adapter available: {reason}")]
    NoAdapter { reason: String },

    /// The adapter exists but is weaker than what medpick needs.
    #[error(
        "GPU adapter '{adapter}' is too limited: {limit} is {have}, medpick needs at least {need}"
    )]
    MissingLimit {
        adapter: String,
        limit: &'static str,
        have: u64,
        need: u64,
    },

    /// `request_device` failed.
    #[error("could not open GPU device on '{adapter}': {message}")]
    Device { adapter: String, message: String },

    /// A shader failed to compile or validate (naga, Tint or the driver).
    #[error("shader '{name}' failed validation: {message}")]
    Shader { name: String, message: String },

    /// A validation or out-of-memory error reported by the GPU API while running an operation.
    #[error("GPU error in {op}: {message}")]
    Gpu { op: String, message: String },

    /// Mapping a buffer for readback failed.
    #[error("GPU readback failed: {message}")]
    Readback { message: String },

    /// Arguments of an operation do not fit together.
    #[error("{op}: {message}")]
    Shape { op: &'static str, message: String },

    /// A buffer would exceed the device's limits.
    #[error("{op}: {what} needs {bytes} bytes, more than the device limit of {limit} bytes")]
    TooLarge {
        op: &'static str,
        what: String,
        bytes: u64,
        limit: u64,
    },

    /// Unknown name (kernel, strategy, model ...).
    #[error("unknown {kind} '{name}' (known: {known})")]
    Unknown {
        kind: &'static str,
        name: String,
        known: String,
    },
}

impl Error {
    pub(crate) fn shape(op: &'static str, message: impl Into<String>) -> Self {
        Error::Shape {
            op,
            message: message.into(),
        }
    }
}
