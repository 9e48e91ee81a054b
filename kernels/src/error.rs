//! The one error type of medpick (kernels, core and every front end above them, as candle-core's `Error` serves
//! candle-transformers). Variants carry the operation and the shapes or paths involved, so a
//! message can be shown to a user as is.

/// Result alias used across medpick.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter could be found or chosen.
    #[error("no GPU adapter available: {reason}")]
    NoAdapter { reason: String },

    /// The adapter exists but is weaker than what medpick needs.
    #[error("GPU adapter '{adapter}' is too limited: {limit} is {have}, medpick needs at least {need}")]
    MissingLimit { adapter: String, limit: &'static str, have: u64, need: u64 },

    /// An optional device feature a request needs (f16 weights need `shader-f16`).
    #[error("GPU adapter '{adapter}' does not offer the {feature} feature, which {what} needs")]
    MissingFeature { adapter: String, feature: &'static str, what: String },

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
    TooLarge { op: &'static str, what: String, bytes: u64, limit: u64 },

    /// A file could not be read (missing, permissions, I/O).
    #[error("{path}: cannot read: {message}")]
    Io { path: String, message: String },

    /// A file was read but its content is not a valid image/volume/archive of the expected kind.
    #[error("{path}: {message}")]
    Decode { path: String, message: String },

    /// A valid file that medpick does not handle (transfer syntax, pixel format, dimensionality ...).
    #[error("{path}: unsupported: {message}")]
    Unsupported { path: String, message: String },

    /// An input whose header claims more pixels than the size cap; refused before allocating.
    #[error(
        "{path}: {what} of {width}x{height}{depth} exceeds the size cap of {cap} pixels"
    )]
    ImageTooLarge { path: String, what: &'static str, width: u64, height: u64, depth: String, cap: u64 },

    /// Invalid user input that is not tied to a file (arguments, options).
    #[error("{0}")]
    Invalid(String),

    /// Unknown name (kernel, strategy, model ...).
    #[error("unknown {kind} '{name}' (known: {known})")]
    Unknown { kind: &'static str, name: String, known: String },
}

impl Error {
    #[doc(hidden)]
    pub fn io(path: impl AsRef<std::path::Path>, e: impl std::fmt::Display) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), message: e.to_string() }
    }

    #[doc(hidden)]
    pub fn decode(path: impl AsRef<std::path::Path>, message: impl Into<String>) -> Self {
        Error::Decode { path: path.as_ref().display().to_string(), message: message.into() }
    }

    #[doc(hidden)]
    pub fn unsupported(path: impl AsRef<std::path::Path>, message: impl Into<String>) -> Self {
        Error::Unsupported { path: path.as_ref().display().to_string(), message: message.into() }
    }

    #[doc(hidden)]
    pub fn shape(op: &'static str, message: impl Into<String>) -> Self {
        Error::Shape { op, message: message.into() }
    }
}
