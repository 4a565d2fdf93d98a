//! The preprocessing HAProxy applies to each file before its sections are read: words with
//! environment variables expanded ([`super::tokenize`]), conditional blocks
//! (`.if` / `.elif` / `.else` / `.endif`, conditions in [`super::cond`]) and the
//! `.notice` / `.warning` / `.alert` messages.
//!
//! As in HAProxy, every line is split into words even inside a block that is skipped (a
//! stray quote is an error wherever it is), a block must end in the file it began, and
//! `.alert` makes the whole configuration invalid.

use super::cond;
use super::tokenize::{self, Env};
use crate::config::report::Report;

/// How deep `.if` blocks may nest (HAProxy's `MAXNESTEDCONDS`).
const MAX_NESTING: usize = 128;

/// Where an open `.if` block stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Branch {
    /// The lines of the current branch are read.
    Taking,
    /// No branch taken yet: a later `.elif`/`.else` may be.
    Waiting,
    /// A branch was taken (or the whole block is inside a skipped one): skip to `.endif`.
    Done,
}

struct Block {
    line: usize,
    branch: Branch,
    seen_else: bool,
}

/// Variables set by the file itself (`setenv`, `presetenv`, `unsetenv`, `resetenv` in
/// `global`), in force for the lines after them, in this file and the next ones.
#[derive(Debug, Default)]
pub struct Vars {
    /// `Some`: set by the file; `None`: unset by it.
    set: std::collections::HashMap<String, Option<String>>,
    /// `resetenv`: the process's variables are hidden, except those kept.
    reset: Option<Vec<String>>,
}

impl Vars {
    fn get(&self, name: &str, env: &Env<'_>) -> Option<String> {
        if let Some(v) = self.set.get(name) {
            return v.clone();
        }
        match &self.reset {
            Some(kept) if !kept.iter().any(|k| k == name) => None,
            _ => env(name),
        }
    }

    /// Applies a `setenv`-family line; `false` when `words` is not one.
    fn apply(&mut self, words: &[String], env: &Env<'_>) -> Result<bool, String> {
        match words[0].as_str() {
            "setenv" | "presetenv" => {
                let [_, name, value] = words else {
                    return Err(format!(
                        "'{}' takes a name and a value (quote a value with spaces)",
                        words[0]
                    ));
                };
                if words[0] == "setenv" || self.get(name, env).is_none() {
                    self.set.insert(name.clone(), Some(value.clone()));
                }
            }
            "unsetenv" => {
                for name in &words[1..] {
                    self.set.insert(name.clone(), None);
                }
            }
            "resetenv" => {
                let kept: Vec<String> = words[1..].to_vec();
                self.set.retain(|name, _| kept.contains(name));
                self.reset = Some(kept);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The active lines of one file with their words, numbered `offset + 1` onwards (the
/// numbering [`Report`] maps back to `file:line`).
pub fn lines(
    text: &str,
    offset: usize,
    file: &str,
    env: &Env<'_>,
    vars: &mut Vars,
    report: &mut Report,
) -> Vec<(usize, Vec<String>)> {
    let mut active = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = offset + index + 1;
        let local_line = (index + 1).to_string();
        let vars_now = &*vars;
        let with_pseudo = |name: &str| match name {
            ".FILE" => Some(file.to_string()),
            ".LINE" => Some(local_line.clone()),
            _ => vars_now.get(name, env),
        };
        let mut words = match tokenize::words(raw, &with_pseudo) {
            Ok(w) if w.is_empty() => continue,
            Ok(w) => w,
            Err(e) => {
                report.error(line, e);
                continue;
            }
        };
        let skipping = blocks.last().is_some_and(|b| b.branch != Branch::Taking);
        match words[0].as_str() {
            ".if" => {
                if blocks.len() >= MAX_NESTING {
                    report.error(
                        line,
                        format!("too many nested '.if' (at most {MAX_NESTING})"),
                    );
                    continue;
                }
                let branch = if skipping {
                    Branch::Done
                } else {
                    match cond::eval(&words[1..], &with_pseudo) {
                        Ok(true) => Branch::Taking,
                        Ok(false) => Branch::Waiting,
                        Err(e) => {
                            report.error(line, format!("{e} in '.if'"));
                            Branch::Done
                        }
                    }
                };
                blocks.push(Block {
                    line,
                    branch,
                    seen_else: false,
                });
            }
            ".elif" | ".else" => {
                let key = words[0].clone();
                let Some(block) = blocks.last_mut() else {
                    report.error(line, format!("'{key}' without a '.if' before it"));
                    continue;
                };
                if block.seen_else {
                    report.error(line, format!("'{key}' after '.else' (a block has at most one '.else', last)"));
                    continue;
                }
                if key == ".else" {
                    block.seen_else = true;
                    if words.len() > 1 {
                        report.error(line, "'.else' takes no condition (write '.elif <condition>')");
                    }
                }
                block.branch = match block.branch {
                    Branch::Taking | Branch::Done => Branch::Done,
                    Branch::Waiting if key == ".else" => Branch::Taking,
                    Branch::Waiting => match cond::eval(&words[1..], &with_pseudo) {
                        Ok(true) => Branch::Taking,
                        Ok(false) => Branch::Waiting,
                        Err(e) => {
                            report.error(line, format!("{e} in '.elif'"));
                            Branch::Done
                        }
                    },
                };
            }
            ".endif" => {
                if blocks.pop().is_none() {
                    report.error(line, "'.endif' without a '.if' before it");
                } else if words.len() > 1 {
                    report.error(line, "'.endif' takes no argument");
                }
            }
            _ if skipping => {}
            key @ (".notice" | ".warning" | ".alert") => {
                if words.len() > 2 {
                    report.error(
                        line,
                        format!("unexpected argument '{}' for '{key}'; put the message in quotes if it contains spaces", words[2]),
                    );
                    continue;
                }
                let message = format!("'{}'", words.get(1).map_or("", String::as_str));
                match key {
                    ".notice" => report.notice(line, message),
                    ".warning" => report.warn(line, message),
                    _ => report.error(line, message),
                }
            }
            key if key.starts_with('.') => report.error(
                line,
                format!("unknown directive '{key}' (warren knows .if, .elif, .else, .endif, .notice, .warning and .alert)"),
            ),
            _ => {
                if let Some(message) = empty_words(&mut words) {
                    report.error(line, message);
                    continue;
                }
                if words.is_empty() {
                    // Only empty quoted words (`""`, an unset "${VAR}"): a blank line to
                    // HAProxy too.
                    continue;
                }
                // The lines after a `setenv` see its variable (the global section then
                // accepts the line as done).
                if let Err(e) = vars.apply(&words, env) {
                    report.error(line, e);
                    continue;
                }
                active.push((line, words));
            }
        }
    }
    // HAProxy reports an open block at the end of the file; the message says where it began.
    let last = offset + text.lines().count();
    for block in blocks {
        report.error(
            last,
            format!(
                "the '.if' block opened at {} has no '.endif' before the end of the file",
                report.place(block.line)
            ),
        );
    }
    active
}

/// Empty words at the end (an unset variable in quotes) are dropped, which is what
/// HAProxy 2.6 makes of them; an empty word before others would make 2.6 silently ignore
/// everything after it, so warren refuses it as later HAProxy versions do.
fn empty_words(words: &mut Vec<String>) -> Option<String> {
    while words.last().is_some_and(String::is_empty) {
        words.pop();
    }
    let position = words.iter().position(String::is_empty)?;
    Some(format!(
        "argument {position} is empty and '{}' follows it: an unset environment variable in quotes? (use \"${{VAR-default}}\" to give it a default)",
        words[position + 1]
    ))
}

#[cfg(test)]
mod tests {
    use super::lines;
    use crate::config::report::Report;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("yes".into()),
            "PORT" => Some("5000".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> (Vec<(usize, Vec<String>)>, Report) {
        let mut report = Report::new("p.cfg");
        let got = lines(
            text,
            0,
            "p.cfg",
            &env,
            &mut super::Vars::default(),
            &mut report,
        );
        (got, report)
    }

    fn kept(text: &str) -> Vec<String> {
        let (got, report) = run(text);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        got.into_iter().map(|(_, w)| w.join(" ")).collect()
    }

    #[test]
    fn blocks_choose_one_branch() {
        let text = ".if defined(SET)\na\n.elif 1\nb\n.else\nc\n.endif\n.if 0\nd\n.elif 1\ne\n.else\nf\n.endif\n.if 0\ng\n.else\nh\n.endif\n";
        assert_eq!(kept(text), ["a", "e", "h"]);
    }

    #[test]
    fn nested_blocks_inside_a_skipped_one_stay_skipped() {
        let text = ".if 0\n.if 1\na\n.else\nb\n.endif\n.else\n.if 1\nc\n.endif\n.endif\nd\n";
        assert_eq!(kept(text), ["c", "d"]);
    }

    #[test]
    fn variables_and_messages() {
        let (got, report) = run("bind \":$PORT\"\n.notice \"port $PORT\"\n.warning hi\n.if 0\n.alert \"not here\"\n.endif\n.alert stop\n");
        assert_eq!(got, [(1, vec!["bind".to_string(), ":5000".to_string()])]);
        assert_eq!(report.notices[0].message, "'port 5000'");
        assert_eq!(
            (report.warnings[0].line, report.warnings[0].message.as_str()),
            (3, "'hi'")
        );
        assert_eq!(report.errors.len(), 1);
        assert_eq!(
            (report.errors[0].line, report.errors[0].message.as_str()),
            (7, "'stop'")
        );
    }

    #[test]
    fn setenv_family_applies_to_later_lines() {
        let text = "x \"$A\"\nsetenv A one\nx \"$A\"\npresetenv A two\npresetenv B two\nx \"$A$B\"\nunsetenv A\nx \"${A-gone}\"\nresetenv B\nx \"${PORT-none}$B\"\n";
        let got: Vec<String> = kept(text)
            .into_iter()
            .filter(|l| l.starts_with('x'))
            .collect();
        assert_eq!(got, ["x", "x one", "x onetwo", "x gone", "x nonetwo"]);
    }

    #[test]
    fn pseudo_variables() {
        assert_eq!(kept("x \"$.FILE:$.LINE\"\n"), ["x p.cfg:1"]);
    }

    #[test]
    fn mistakes_name_their_line() {
        for (text, line, fragment) in [
            (".if 1\nx\n", 2, "opened at line 1 has no '.endif'"),
            (".endif\n", 1, "without a '.if'"),
            (".else\n", 1, "without a '.if'"),
            (".if 1\n.else\n.else\n.endif\n", 3, "after '.else'"),
            (".if 1\n.else 1\n.endif\n", 2, "takes no condition"),
            (".if bogus(1)\n.endif\n", 1, "unknown predicate"),
            (".include x\n", 1, "unknown directive '.include'"),
            (".warning a b\n", 1, "unexpected argument 'b'"),
            (".if 0\nx 'unterminated\n.endif\n", 2, "single quote"),
            ("maxconn \"$NOPE\" 3\n", 1, "argument 1 is empty"),
        ] {
            let (_, report) = run(text);
            assert!(
                report
                    .errors
                    .iter()
                    .any(|d| d.line == line && d.message.contains(fragment)),
                "{text:?}: {:?}",
                report.errors
            );
        }
        assert_eq!(kept("maxconn \"$NOPE\"\n"), ["maxconn"]);
    }
}
