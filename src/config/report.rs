//! Collects every error and warning of one load, each with its `file:line`, so a user sees
//! all problems at once (as with `haproxy -c`) instead of fixing them one run at a time.

use super::error::Diagnostic;

pub(crate) struct Report {
    pub file: String,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Report {
    pub fn new(file: &str) -> Report {
        Report {
            file: file.to_string(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn error(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(&self.file, line, message));
    }

    pub fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings
            .push(Diagnostic::new(&self.file, line, message));
    }

    /// Records `result`'s error at `line` and turns it into an `Option`.
    pub fn check<T>(&mut self, line: usize, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(line, message);
                None
            }
        }
    }

    /// Sorts diagnostics by line so they read in file order, whichever pass found them.
    pub fn sort(&mut self) {
        self.errors.sort_by_key(|d| d.line);
        self.warnings.sort_by_key(|d| d.line);
    }
}
