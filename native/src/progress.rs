//! Progress bars that also reach a log. On a terminal indicatif redraws the bar in place; when stderr is a file or
//! a pipe (a batch run under nohup, a scheduler's log) indicatif would draw nothing at all, so an hour-long
//! embedding would say nothing until it ends. There the bar is written as a plain line instead, at most once every
//! `MEDPICK_PROGRESS_EVERY` seconds (default 30; 0 writes every update).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// A bar with medpick's style and `prefix`, drawn on the terminal or, when stderr is not one, as log lines.
pub(crate) fn bar(prefix: &str) -> ProgressBar {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {per_sec} ETA {eta} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::term_like(Box::new(LogLines::new(log_interval()))));
    }
    pb
}

/// `MEDPICK_PROGRESS_EVERY` (seconds between log lines), 30 when unset or not a number.
fn log_interval() -> Duration {
    let secs = std::env::var("MEDPICK_PROGRESS_EVERY").ok().and_then(|v| v.trim().parse::<f64>().ok());
    Duration::from_secs_f64(secs.filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(30.0))
}

/// A `TermLike` for logs: cursor moves are ignored, what a redraw writes is collected and, on flush, written to
/// stderr as one line when `every` has passed since the last one. An empty redraw (a cleared bar) writes nothing.
/// Text given to `ProgressBar::println` would be throttled with the bar, so medpick prints with `eprintln!` instead.
#[derive(Debug)]
struct LogLines {
    every: Duration,
    state: Mutex<(String, Option<Instant>)>,
}

impl LogLines {
    fn new(every: Duration) -> Self {
        LogLines { every, state: Mutex::new((String::new(), None)) }
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)?;
        self.write_str("\n")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0.push_str(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let text = std::mem::take(&mut st.0);
        let line = text.replace('\r', "");
        let line = line.trim();
        if line.is_empty() || st.1.is_some_and(|t| t.elapsed() < self.every) {
            return Ok(());
        }
        st.1 = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        writeln!(err, "{line}")?;
        err.flush()
    }
}

/// Core's progress (`medpick_core::progress`) drawn by this CLI: indicatif bars as above, notes on stderr.
pub(crate) struct CliSink;

struct CliBar(ProgressBar);

impl medpick_core::progress::Bar for CliBar {
    fn set_length(&self, n: u64) {
        self.0.set_length(n)
    }
    fn set_position(&self, n: u64) {
        self.0.set_position(n)
    }
    fn inc(&self, n: u64) {
        self.0.inc(n)
    }
    fn set_message(&self, message: String) {
        self.0.set_message(message)
    }
    fn finish_and_clear(&self) {
        self.0.finish_and_clear()
    }
}

impl medpick_core::progress::Sink for CliSink {
    fn bar(&self, prefix: &str) -> Box<dyn medpick_core::progress::Bar> {
        Box::new(CliBar(bar(prefix)))
    }
    fn note(&self, line: &str) {
        eprintln!("{line}");
    }
}
