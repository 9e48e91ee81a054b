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
    #[error("{path}: {what} of {width}x{height}{depth} exceeds the size cap of {cap} pixels")]
    ImageTooLarge { path: String, what: &'static str, width: u64, height: u64, depth: String, cap: u64 },

    /// Invalid user input that is not tied to a file (arguments, options).
    #[error("{0}")]
    Invalid(String),

    /// Work stopped on request before it finished (what was stopped, and where).
    #[error("{0}")]
    Cancelled(String),

    /// An error of the OS or a library, reached through `?` (give it a context that names the file).
    #[error("{message}")]
    External { message: String },

    /// What was being done when `inner` happened (the file, the run, the step), as anyhow's context. Not a
    /// `source()`: the message carries the whole story, so a front end that prints chains prints it once.
    #[error("{context}: {inner}")]
    Context { context: String, inner: Box<Error> },

    /// A setting (an option of a command) has a value that cannot work. `message` may name other settings as
    /// ‹name›; [`Error::render`] lets a front end spell settings its own way (the CLI: `--name`).
    #[error("{name} {value}: {}", unmark(message))]
    Setting { name: &'static str, value: String, message: String },

    /// An output that exists already, refused so that nothing a user had is overwritten.
    #[error("{path} already exists")]
    Exists { path: String },

    /// Unknown name (kernel, strategy, model ...).
    #[error("unknown {kind} '{name}' (known: {known})")]
    Unknown { kind: &'static str, name: String, known: String },
}

/// A setting's message with its ‹name› marks taken out.
fn unmark(message: &str) -> String {
    message.replace(['‹', '›'], "")
}

impl Error {
    /// An input refused for its size (directly or inside a context).
    pub fn is_over_size_cap(&self) -> bool {
        match self {
            Error::ImageTooLarge { .. } => true,
            Error::Context { inner, .. } => inner.is_over_size_cap(),
            _ => false,
        }
    }

    /// A setting's error, `message` naming other settings as ‹name›.
    pub fn setting(name: &'static str, value: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Error::Setting { name, value: value.to_string(), message: message.into() }
    }

    /// The message, with `front` given the first say on every error of the chain (a front end's own wording of a
    /// setting, an existing output, a size cap); `setting` spells a setting's name (the CLI: `--name`).
    pub fn render(&self, front: &dyn Fn(&Error) -> Option<String>, setting: &dyn Fn(&str) -> String) -> String {
        if let Some(s) = front(self) {
            return s;
        }
        match self {
            Error::Context { context, inner } => format!("{context}: {}", inner.render(front, setting)),
            Error::Setting { name, value, message } => {
                let mut m = message.clone();
                while let (Some(a), Some(b)) = (m.find('‹'), m.find('›')) {
                    if b < a {
                        break;
                    }
                    let spelled = setting(&m[a + '‹'.len_utf8()..b]);
                    m.replace_range(a..b + '›'.len_utf8(), &spelled);
                }
                format!("{} {value}: {m}", setting(name))
            }
            other => other.to_string(),
        }
    }

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

/// anyhow-style context for medpick's errors: `result.context("reading the head")?`,
/// `result.with_context(|| format!("{s} at budget {b}"))?`.
pub trait Context<T> {
    fn context(self, context: impl std::fmt::Display) -> Result<T>;
    fn with_context<C: std::fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::Context { context: context.to_string(), inner: Box::new(e.into()) })
    }

    fn with_context<C: std::fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Context { context: f().to_string(), inner: Box::new(e.into()) })
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::External { message: e.to_string() }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::External { message: e.to_string() }
    }
}
