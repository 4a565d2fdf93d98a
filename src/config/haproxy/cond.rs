//! The expression of a `.if` / `.elif` line, evaluated as HAProxy's `cfgcond.c` does.
//!
//! ```text
//! expr := and ( '||' expr )?          and := term ( '&&' and )?
//! term := '!'* ( number | '(' expr ')' | predicate '(' args ')' )
//! ```
//!
//! A number is true when it is not 0. The predicates are HAProxy 2.6's: `defined(VAR)`,
//! `feature(NAME)`, `streq(a,b)`, `strneq(a,b)`, `version_atleast(v)`, `version_before(v)`,
//! `openssl_version_atleast(v)`, `openssl_version_before(v)`. Versions are compared with
//! [`HAPROXY_VERSION`]: warren reads the configuration language of HAProxy 2.6, so a file
//! that tests the version takes the branch it would take under 2.6.

use super::tokenize::Env;

/// The HAProxy version whose configuration language warren reads.
pub const HAPROXY_VERSION: &str = "2.6";

/// `feature()` names that are true under warren, with why: TLS through rustls, splice(2)
/// forwarding, threads, getaddrinfo for server names. Everything else is false.
pub const FEATURES: [&str; 5] = ["OPENSSL", "LINUX_SPLICE", "THREAD", "GETADDRINFO", "TFO"];

/// The deepest nesting of parentheses and operators accepted (HAProxy's own bound).
const MAX_DEPTH: usize = 1024;

/// Evaluates the words after `.if`/`.elif`, re-joined with spaces as HAProxy does.
pub fn eval(words: &[String], env: &Env<'_>) -> Result<bool, String> {
    let text = words.join(" ");
    if text.trim().is_empty() {
        // HAProxy: an empty condition is false.
        return Ok(false);
    }
    let mut p = Parser {
        rest: &text,
        env,
        depth: 0,
    };
    let value = p.expr()?;
    p.skip_spaces();
    match p.rest.chars().next() {
        None => Ok(value),
        Some(c) => Err(format!(
            "unexpected character '{c}' at the end of conditional expression '{text}'"
        )),
    }
}

struct Parser<'a, 'e> {
    rest: &'a str,
    env: &'e Env<'e>,
    depth: usize,
}

impl Parser<'_, '_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("conditional expression nested too deeply".to_string());
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<bool, String> {
        self.deeper()?;
        // Both sides are parsed even when the left decides, so a syntax error anywhere
        // in the line is reported.
        let mut value = self.and()?;
        loop {
            self.skip_spaces();
            let Some(rest) = self.rest.strip_prefix("||") else {
                break;
            };
            self.rest = rest;
            let right = self.and()?;
            value = value || right;
        }
        self.depth -= 1;
        Ok(value)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut value = self.term()?;
        loop {
            self.skip_spaces();
            let Some(rest) = self.rest.strip_prefix("&&") else {
                break;
            };
            self.rest = rest;
            let right = self.term()?;
            value = value && right;
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<bool, String> {
        self.skip_spaces();
        let mut negate = false;
        while let Some(rest) = self.rest.strip_prefix('!') {
            negate = !negate;
            self.rest = rest;
            self.skip_spaces();
        }
        let value = self.positive_term()?;
        Ok(value != negate)
    }

    fn positive_term(&mut self) -> Result<bool, String> {
        let digits = self
            .rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+'))
            .unwrap_or(self.rest.len());
        if digits > 0 {
            let (number, rest) = self.rest.split_at(digits);
            let n: i64 = number
                .parse()
                .map_err(|_| format!("'{number}' is not a number"))?;
            self.rest = rest;
            return Ok(n != 0);
        }
        if let Some(rest) = self.rest.strip_prefix('(') {
            self.rest = rest;
            let value = self.expr()?;
            self.skip_spaces();
            let Some(rest) = self.rest.strip_prefix(')') else {
                return Err("expected ')' to close the '(' of the conditional expression".into());
            };
            self.rest = rest;
            return Ok(value);
        }
        let name_end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        let (name, rest) = self.rest.split_at(name_end);
        let Some(rest) = rest.strip_prefix('(') else {
            return Err(format!(
                "unparsable conditional expression '{}' (expected a number, '(' or a predicate such as defined(VAR))",
                self.rest
            ));
        };
        let close = rest
            .find(')')
            .ok_or_else(|| format!("missing ')' after the arguments of '{name}'"))?;
        let args: Vec<&str> = rest[..close].split(',').map(str::trim).collect();
        self.rest = &rest[close + 1..];
        predicate(name, &args, self.env)
    }
}

fn predicate(name: &str, args: &[&str], env: &Env<'_>) -> Result<bool, String> {
    let want = match name {
        "defined" | "feature" | "version_atleast" | "version_before"
        | "openssl_version_atleast" | "openssl_version_before" => 1,
        "streq" | "strneq" => 2,
        _ => {
            return Err(format!(
                "unknown predicate '{name}' in conditional expression (HAProxy 2.6 knows defined, feature, streq, strneq, version_atleast, version_before, openssl_version_atleast, openssl_version_before)"
            ))
        }
    };
    if args.len() != want || (want == 1 && args[0].is_empty()) {
        return Err(format!(
            "'{name}' takes {want} argument{}",
            if want == 1 { "" } else { "s" }
        ));
    }
    let arg = |i: usize| unquote(args[i]);
    Ok(match name {
        "defined" => env(arg(0)).is_some(),
        "feature" => FEATURES.contains(&arg(0)),
        "streq" => arg(0) == arg(1),
        "strneq" => arg(0) != arg(1),
        "version_atleast" => compare(HAPROXY_VERSION, arg(0))?.is_ge(),
        "version_before" => compare(HAPROXY_VERSION, arg(0))?.is_lt(),
        // warren's TLS is rustls, not OpenSSL: there is no OpenSSL version to be at least.
        "openssl_version_atleast" | "openssl_version_before" => {
            compare("0", arg(0))?;
            false
        }
        _ => false,
    })
}

/// HAProxy's argument lists accept quotes around a word.
fn unquote(arg: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = arg.strip_prefix(q).and_then(|a| a.strip_suffix(q)) {
            return inner;
        }
    }
    arg
}

/// Compares dotted versions numerically (`2.10` is after `2.6`); a suffix such as `-dev`
/// after the numbers is ignored.
fn compare(ours: &str, theirs: &str) -> Result<std::cmp::Ordering, String> {
    let parse = |v: &str| -> Result<Vec<u32>, String> {
        let numeric = v.split(['-', '+', ' ']).next().unwrap_or("");
        numeric
            .split('.')
            .map(|part| part.parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("'{v}' is not a version such as 2.4 or 2.6.12"))
    };
    let (mut a, mut b) = (parse(ours)?, parse(theirs)?);
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    Ok(a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use super::eval;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "x".to_string())
    }

    fn e(text: &str) -> Result<bool, String> {
        eval(&[text.to_string()], &env)
    }

    #[test]
    fn haproxy_expressions() {
        for (text, want) in [
            ("1", true),
            ("0", false),
            ("", false),
            ("!0", true),
            ("!!1", true),
            ("defined(SET)", true),
            ("defined(UNSET)", false),
            ("!defined(UNSET) && 1", true),
            ("0 || defined(SET)", true),
            ("0 || 1 && 0", false),
            ("(0 || 1) && 1", true),
            ("streq(a,a)", true),
            ("streq(a, b)", false),
            ("strneq(a,b)", true),
            ("streq(\"a b\",'a b')", true),
            ("version_atleast(2.4)", true),
            ("version_atleast(2.6)", true),
            ("version_atleast(2.10)", false),
            ("version_before(2.8)", true),
            ("version_before(2.6.0)", false),
            ("feature(OPENSSL)", true),
            ("feature(LUA)", false),
            ("openssl_version_atleast(1.1.1)", false),
        ] {
            assert_eq!(e(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (text, fragment) in [
            ("strstr(a,b)", "unknown predicate"),
            ("enabled(POLL)", "unknown predicate"),
            ("defined()", "takes 1 argument"),
            ("streq(a)", "takes 2 arguments"),
            ("1 2", "unexpected character '2'"),
            ("(1", "expected ')'"),
            ("version_atleast(two)", "not a version"),
            ("defined(X", "missing ')'"),
            ("foo", "unparsable"),
        ] {
            let got = e(text).expect_err(text);
            assert!(got.contains(fragment), "{text}: {got}");
        }
    }
}
