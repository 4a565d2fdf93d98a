//! Splits one line of `haproxy.cfg` into words, the way HAProxy does.
//!
//! Words are separated by spaces or tabs. `#` starts a comment unless it is quoted or
//! escaped, so end-of-line comments in any language are ignored. A backslash escapes the
//! next character (`Haproxy\ Manager` is one word); inside single quotes nothing is special;
//! inside double quotes backslash escapes still work. Quoted and unquoted parts next to each
//! other form one word (`a"b c"` is `ab c`).

/// The words of one line; an empty vector for blank and comment-only lines.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    // A word exists even when empty (`""`), so track it apart from `current`'s length.
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            '#' => break,
            '\\' => {
                in_word = true;
                escape(&mut chars, &mut current)?;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => current.push(ch),
                        None => return Err("unterminated single quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => escape(&mut chars, &mut current)?,
                        Some(ch) => current.push(ch),
                        None => return Err("unterminated double quote".to_string()),
                    }
                }
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// Handles the character after a backslash.
fn escape(chars: &mut std::str::Chars<'_>, out: &mut String) -> Result<(), String> {
    match chars.next() {
        Some('n') => out.push('\n'),
        Some('r') => out.push('\r'),
        Some('t') => out.push('\t'),
        Some('x') => {
            let hex: String = chars.by_ref().take(2).collect();
            let byte = u8::from_str_radix(&hex, 16)
                .map_err(|_| format!("invalid escape '\\x{hex}' (expected two hex digits)"))?;
            out.push(char::from(byte));
        }
        Some(other @ (' ' | '\\' | '#' | '\'' | '"')) => out.push(other),
        // HAProxy leaves other combinations as written (`\1` in a regex replacement).
        Some(other) => {
            out.push('\\');
            out.push(other);
        }
        // HAProxy accepts a trailing backslash as a literal one.
        None => out.push('\\'),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::words;

    fn w(line: &str) -> Vec<String> {
        words(line).expect("valid line")
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
        assert_eq!(
            w(r"x v2-\1"),
            ["x", r"v2-\1"],
            "unknown escapes stay as written"
        );
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert!(words("realm 'abc").unwrap_err().contains("single quote"));
        assert!(words("realm \"abc").unwrap_err().contains("double quote"));
        assert!(words(r"x \xZZ").is_err());
    }
}
