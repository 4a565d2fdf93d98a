//! Collects every error and warning of one load, each with its `file:line`, so a user sees
//! all problems at once (as with `haproxy -c`) instead of fixing them one run at a time.
//!
//! A configuration may come from several files (`-f a.cfg -f b.cfg`, `-f conf.d/`). The
//! parsers number lines across all of them, one after the other, so line numbers stay plain
//! `usize`s everywhere; the report turns such a number back into the file and the line in
//! it when a message is recorded.

use super::error::Diagnostic;

pub(crate) struct Report {
    /// The first file's name: messages about the configuration as a whole (line 0) name it.
    pub file: String,
    /// Each file's name and the number of lines before it, in reading order.
    files: Vec<(String, usize)>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// `.notice` lines: shown, but neither a warning nor an error.
    pub notices: Vec<Diagnostic>,
}

impl Report {
    pub fn new(file: &str) -> Report {
        Report {
            file: file.to_string(),
            files: vec![(file.to_string(), 0)],
            errors: Vec::new(),
            warnings: Vec::new(),
            notices: Vec::new(),
        }
    }

    /// A report over several files read one after the other: `files` gives each name and
    /// its number of lines.
    pub fn over_files<'a>(files: impl IntoIterator<Item = (&'a str, usize)>) -> Report {
        let mut offset = 0;
        let mut list = Vec::new();
        for (name, lines) in files {
            list.push((name.to_string(), offset));
            offset += lines;
        }
        let first = list.first().map(|(n, _)| n.clone()).unwrap_or_default();
        Report {
            file: first,
            files: list,
            errors: Vec::new(),
            warnings: Vec::new(),
            notices: Vec::new(),
        }
    }

    /// The file holding numbered line `line`, and the line within it.
    fn locate(&self, line: usize) -> (usize, &str, usize) {
        if line == 0 {
            return (0, &self.file, 0);
        }
        let index = self
            .files
            .iter()
            .rposition(|(_, offset)| *offset < line)
            .unwrap_or(0);
        let (name, offset) = &self.files[index];
        (index, name, line - offset)
    }

    /// Where numbered line `line` is, for a message that points at another line:
    /// `line 12` within one file, `b.cfg:12` when there are several.
    pub fn place(&self, line: usize) -> String {
        let (_, name, local) = self.locate(line);
        if self.files.len() > 1 {
            format!("{name}:{local}")
        } else {
            format!("line {local}")
        }
    }

    fn diagnostic(&self, line: usize, message: impl Into<String>) -> Diagnostic {
        let (_, name, local) = self.locate(line);
        Diagnostic::new(name, local, message)
    }

    pub fn error(&mut self, line: usize, message: impl Into<String>) {
        let d = self.diagnostic(line, message);
        self.errors.push(d);
    }

    pub fn warn(&mut self, line: usize, message: impl Into<String>) {
        let d = self.diagnostic(line, message);
        self.warnings.push(d);
    }

    pub fn notice(&mut self, line: usize, message: impl Into<String>) {
        let d = self.diagnostic(line, message);
        self.notices.push(d);
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

    /// Sorts diagnostics by file, then line, so they read in the order the files were
    /// given, whichever pass found them.
    pub fn sort(&mut self) {
        let files: Vec<String> = self.files.iter().map(|(n, _)| n.clone()).collect();
        let order = |d: &Diagnostic| {
            let file = files.iter().position(|name| *name == d.file).unwrap_or(0);
            (file, d.line)
        };
        for list in [&mut self.errors, &mut self.warnings, &mut self.notices] {
            list.sort_by_key(|d| order(d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Report;

    #[test]
    fn lines_map_back_to_their_file() {
        let mut r = Report::over_files([("a.cfg", 3), ("b.cfg", 2), ("c.cfg", 4)]);
        r.error(3, "x");
        r.error(4, "y");
        r.error(6, "z");
        r.error(0, "whole");
        let got: Vec<String> = r.errors.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            ["a.cfg:3: x", "b.cfg:1: y", "c.cfg:1: z", "a.cfg: whole"]
        );
        assert_eq!(r.place(5), "b.cfg:2");
        assert_eq!(Report::new("h.cfg").place(5), "line 5");
        r.sort();
        assert_eq!(r.errors[0].message, "whole");
        assert_eq!(r.errors[3].file, "c.cfg");
    }
}
