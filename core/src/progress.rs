//! Progress of long steps, reported the way the `log` crate reports messages: core calls [`bar`] and [`note`];
//! a front end installs a [`Sink`] once ([`install`]) that draws them (the CLI: indicatif bars or log lines).
//! Without a sink, bars are silent and notes go to stderr on native targets (nowhere in the browser).

use std::sync::OnceLock;

/// A progress bar handle, with indicatif's vocabulary.
pub trait Bar {
    fn set_length(&self, n: u64);
    fn set_position(&self, n: u64);
    fn inc(&self, n: u64);
    fn set_message(&self, message: String);
    fn finish_and_clear(&self);
}

/// Where bars and notes go.
pub trait Sink: Send + Sync {
    fn bar(&self, prefix: &str) -> Box<dyn Bar>;
    fn note(&self, line: &str);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Install the process's sink (the first call wins; returns false when one was installed already).
pub fn install(sink: Box<dyn Sink>) -> bool {
    SINK.set(sink).is_ok()
}

struct Silent;

impl Bar for Silent {
    fn set_length(&self, _: u64) {}
    fn set_position(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn set_message(&self, _: String) {}
    fn finish_and_clear(&self) {}
}

/// A bar for a long step named `prefix` ("embed", "protocol", ...).
pub fn bar(prefix: &str) -> Box<dyn Bar> {
    match SINK.get() {
        Some(s) => s.bar(prefix),
        None => Box::new(Silent),
    }
}

/// One line of what a step did (files skipped, a resume, a fallback chosen).
pub fn note(line: &str) {
    match SINK.get() {
        Some(s) => s.note(line),
        None => {
            #[cfg(not(target_arch = "wasm32"))]
            eprintln!("{line}");
        }
    }
}

/// [`note`] with `format!` arguments (in scope in every module of this crate: `#[macro_use]` in lib.rs).
#[allow(unused_macros)]
macro_rules! note {
    ($($t:tt)*) => { $crate::progress::note(&format!($($t)*)) };
}
