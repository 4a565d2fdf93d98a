//! Splits one line of `haproxy.cfg` into words, the way HAProxy's `parse_line()` does.
//!
//! Words are separated by spaces or tabs. `#` starts a comment unless it is quoted or
//! escaped, so end-of-line comments in any language are ignored. A backslash escapes a
//! space, `#`, a quote, another backslash, and stands for `\t`, `\n`, `\r`, `\xHH`; before
//! anything else it stays as written (`^a\.b` reaches a regex unchanged). Inside single
//! quotes nothing is special; inside double quotes backslash escapes still work, and
//! environment variables are expanded: `$VAR`, `${VAR}`, `${VAR-default}` (the default
//! replaces an unset variable, not an empty one) and `${VAR[*]}` (one word per
//! space-separated item). Outside double quotes `$` is an ordinary character, as in
//! HAProxy. Quoted and unquoted parts next to each other form one word (`a"b c"` is `ab c`).

/// Looks up an environment variable (or a pseudo-variable such as `.LINE`).
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The words of one line; an empty vector for blank and comment-only lines.
pub fn words(line: &str, env: &Env<'_>) -> Result<Vec<String>, String> {
    let mut out = Words::default();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => out.end(),
            '#' => break,
            '\\' => {
                out.in_word = true;
                escape(&mut chars, &mut out.current, false)?;
            }
            '\'' => {
                out.in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => out.current.push(ch),
                        None => return Err("unterminated single quote".to_string()),
                    }
                }
            }
            '"' => {
                out.in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => escape(&mut chars, &mut out.current, true)?,
                        Some('$') => variable(&mut chars, &mut out, env)?,
                        Some(ch) => out.current.push(ch),
                        None => return Err("unterminated double quote".to_string()),
                    }
                }
            }
            other => {
                out.in_word = true;
                out.current.push(other);
            }
        }
    }
    out.end();
    Ok(out.words)
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    current: String,
    /// A word exists even when empty (`""`), so track it apart from `current`'s length.
    in_word: bool,
}

impl Words {
    fn end(&mut self) {
        if self.in_word {
            self.words.push(std::mem::take(&mut self.current));
            self.in_word = false;
        }
    }
}

/// Handles the character after a backslash; `in_dquote` allows `\$`.
fn escape(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
    in_dquote: bool,
) -> Result<(), String> {
    match chars.peek().copied() {
        Some('n') => out.push('\n'),
        Some('r') => out.push('\r'),
        Some('t') => out.push('\t'),
        Some('x') => {
            chars.next();
            let hex: String = chars.by_ref().take(2).collect();
            let byte = u8::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 2)
                .ok_or_else(|| format!("invalid escape '\\x{hex}' (expected two hex digits)"))?;
            out.push(char::from(byte));
            return Ok(());
        }
        Some(c @ (' ' | '\\' | '#' | '\'' | '"')) => out.push(c),
        Some('$') if in_dquote => out.push('$'),
        // Not an escape sequence: HAProxy keeps the backslash (regexes rely on it).
        Some(_) | None => {
            out.push('\\');
            return Ok(());
        }
    }
    chars.next();
    Ok(())
}

/// `$NAME`, `${NAME}`, `${NAME-default}` or `${NAME[*]}` inside double quotes, the `$`
/// already read.
fn variable(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut Words,
    env: &Env<'_>,
) -> Result<(), String> {
    let braced = chars.next_if_eq(&'{').is_some();
    let mut name = String::new();
    if let Some(dot) = chars.next_if_eq(&'.') {
        name.push(dot);
    }
    match chars.peek() {
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {}
        other => {
            return Err(format!(
                "'{}' cannot start an environment variable name (after '$' write a letter or '_'; write '\\$' for a dollar sign)",
                other.map_or("end of line".to_string(), |c| c.to_string())
            ))
        }
    }
    while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
        name.push(c);
    }
    let mut value = env(&name);
    if name.starts_with('.') && value.is_none() {
        return Err(format!(
            "unknown pseudo-variable '{name}' (warren knows .FILE and .LINE)"
        ));
    }
    let mut expand = false;
    if braced {
        if chars.next_if_eq(&'[').is_some() {
            if chars.next() != Some('*') || chars.next() != Some(']') {
                return Err(format!("'${{{name}[' must be written '${{{name}[*]}}'"));
            }
            expand = true;
        }
        if chars.next_if_eq(&'-').is_some() {
            let mut default = String::new();
            loop {
                match chars.next() {
                    Some('}') => break,
                    Some(c) => default.push(c),
                    None => return Err(format!("unmatched brace in '${{{name}'")),
                }
            }
            value = value.or(Some(default));
        } else if chars.next() != Some('}') {
            return Err(format!("unmatched brace in '${{{name}'"));
        }
    }
    let value = value.unwrap_or_default();
    if !expand {
        out.current.push_str(&value);
        return Ok(());
    }
    // `"${LIST[*]}"`: each space-separated item is a word of its own; an empty list adds
    // no word at all (HAProxy drops the surrounding quotes then).
    let mut items = value.split_whitespace().peekable();
    if items.peek().is_none() && out.current.is_empty() {
        out.in_word = false;
        return Ok(());
    }
    let starts_with_space = value.starts_with(char::is_whitespace);
    if starts_with_space {
        out.end();
    }
    while let Some(item) = items.next() {
        out.in_word = true;
        out.current.push_str(item);
        if items.peek().is_some() {
            out.end();
        }
    }
    if value.ends_with(char::is_whitespace) {
        out.end();
    }
    out.in_word = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::words;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("5672".into()),
            "EMPTY" => Some(String::new()),
            "LIST" => Some("a b  c".into()),
            ".LINE" => Some("7".into()),
            _ => None,
        }
    }

    fn w(line: &str) -> Vec<String> {
        words(line, &env).expect("valid line")
    }

    #[test]
    fn splits_on_spaces_and_tabs() {
        assert_eq!(
            w("  server a\t127.0.0.1:1  check"),
            ["server", "a", "127.0.0.1:1", "check"]
        );
        assert!(w("   ").is_empty());
    }

    #[test]
    fn comments_end_the_line_even_in_chinese() {
        assert_eq!(
            w("    log 127.0.0.1 local3 # 日志文件"),
            ["log", "127.0.0.1", "local3"]
        );
        assert_eq!(w("maxconn 4000# 最大连接数"), ["maxconn", "4000"]);
        assert!(w("#option  forwardfor   # 如果").is_empty());
    }

    #[test]
    fn escapes_and_quotes() {
        assert_eq!(
            w(r"stats realm Haproxy\ Manager"),
            ["stats", "realm", "Haproxy Manager"]
        );
        assert_eq!(w(r"a\#b"), ["a#b"]);
        assert_eq!(
            w("realm 'Haproxy # Manager'"),
            ["realm", "Haproxy # Manager"]
        );
        assert_eq!(w(r#"realm "a \"b\" c""#), ["realm", r#"a "b" c"#]);
        assert_eq!(w(r#"x a"b c"d"#), ["x", "ab cd"]);
        assert_eq!(w(r#"x "" y"#), ["x", "", "y"]);
        assert_eq!(w(r"x \x41"), ["x", "A"]);
        assert_eq!(w(r"-m reg ^a\.b\d$"), ["-m", "reg", r"^a\.b\d$"]);
        assert_eq!(w(r"x \\"), ["x", r"\"]);
        assert_eq!(
            w(r"x v2-\1"),
            ["x", r"v2-\1"],
            "unknown escapes stay as written"
        );
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        let none = |_: &str| None;
        assert!(words("realm 'abc", &none)
            .unwrap_err()
            .contains("single quote"));
        assert!(words("realm \"abc", &none)
            .unwrap_err()
            .contains("double quote"));
        assert!(words(r"x \xZZ", &none).is_err());
    }

    #[test]
    fn variables_expand_inside_double_quotes_only() {
        assert_eq!(w(r#"bind ":$PORT""#), ["bind", ":5672"]);
        assert_eq!(w(r#"bind ":${PORT}0""#), ["bind", ":56720"]);
        assert_eq!(w("bind :$PORT"), ["bind", ":$PORT"]);
        assert_eq!(w(r#"x '$PORT'"#), ["x", "$PORT"]);
        assert_eq!(w(r#"x "\$PORT""#), ["x", "$PORT"]);
        assert_eq!(w(r#"x "${NOPE-dflt}""#), ["x", "dflt"]);
        assert_eq!(
            w(r#"x "${EMPTY-dflt}""#),
            ["x", ""],
            "default for unset only"
        );
        assert_eq!(w(r#"x "$NOPE""#), ["x", ""]);
        assert_eq!(w(r#"x "${NOPE-}" y"#), ["x", "", "y"]);
        assert_eq!(w(r#"x "${LIST[*]}" y"#), ["x", "a", "b", "c", "y"]);
        assert_eq!(w(r#"x "${NOPE[*]}" y"#), ["x", "y"]);
        assert_eq!(w(r#"at "$.LINE""#), ["at", "7"]);
    }

    #[test]
    fn bad_variables_are_errors() {
        for bad in [
            r#"x "$1""#,
            r#"x "${PORT""#,
            r#"x "${PORT[x]}""#,
            r#"x "$""#,
            r#"x "${.SECTION}""#,
        ] {
            assert!(words(bad, &env).is_err(), "{bad}");
        }
    }
}
