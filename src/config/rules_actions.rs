//! `http-request` and `http-response` actions, read from the words of a line (the
//! condition after `if`/`unless` is read by `rules_parse`).

use super::haproxy::http_rules::{errorfile, ERRORFILE_CODES};
use super::http::is_token_byte;
use super::rules::{Action, Pattern, RedirectKind, Reply, Rule};
use super::rules_parse::{condition, format, join, Scope};
use super::suggest;

/// `\1` back-references as the regex crate writes them (`${1}`); a literal `$` is `$$`.
fn backrefs(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let d = chars.next().unwrap_or('0');
                out.push_str(&format!("${{{d}}}"));
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

fn status(word: Option<&String>, allowed: &[u16], what: &str) -> Result<u16, String> {
    let code: u16 = word
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("'{what}' needs a status code"))?;
    if allowed.is_empty() && (200..=599).contains(&code) || allowed.contains(&code) {
        Ok(code)
    } else {
        Err(format!(
            "'{what} {code}' is not a status warren can send here"
        ))
    }
}

fn header_name(word: Option<&String>, action: &str) -> Result<String, String> {
    match word {
        Some(h) if !h.is_empty() && h.bytes().all(is_token_byte) => Ok(h.clone()),
        Some(h) => Err(format!("'{h}' is not a valid header name")),
        None => Err(format!("'{action}' needs a header name")),
    }
}

/// An `http-request` (or, with `scope.response`, `http-response`) line after its keyword.
pub fn rule(words: &[String], scope: &Scope<'_>) -> Result<Rule, String> {
    let keyword = if scope.response {
        "http-response"
    } else {
        "http-request"
    };
    let cond_at = words
        .iter()
        .position(|w| w == "if" || w == "unless")
        .unwrap_or(words.len());
    let (body, cond) = words.split_at(cond_at);
    // The words `warren convert` writes back, when they differ from those read.
    let mut text_words: Option<Vec<String>> = None;
    let condition = if cond.is_empty() {
        None
    } else {
        Some(condition(cond, scope)?)
    };
    let Some(name) = body.first().map(String::as_str) else {
        return Err(format!("'{keyword}' needs an action"));
    };
    let extra = |n: usize| -> Result<(), String> {
        match body.get(n) {
            Some(w) => Err(format!("unexpected '{w}' in '{keyword} {name}'")),
            None => Ok(()),
        }
    };
    let request_only = |a: Action| -> Result<Action, String> {
        if scope.response {
            Err(format!(
                "'{name}' is an http-request action; http-response cannot use it"
            ))
        } else {
            Ok(a)
        }
    };
    let action = match name {
        "set-header" | "add-header" => {
            let h = header_name(body.get(1), name)?;
            let Some(v) = body.get(2) else {
                return Err(format!("'{name}' needs a header name and a value"));
            };
            extra(3)?;
            let f = format(v, scope)?;
            if name == "set-header" {
                Action::SetHeader(h, f)
            } else {
                Action::AddHeader(h, f)
            }
        }
        "del-header" => {
            let h = header_name(body.get(1), name)?;
            extra(2)?;
            Action::DelHeader(h)
        }
        "replace-header" | "replace-value" if body.len() >= 4 => {
            if name == "replace-value" {
                return Err("'replace-value' is not supported yet; use 'replace-header'".into());
            }
            let h = header_name(body.get(1), name)?;
            let r = regex::Regex::new(&format!("^(?:{})$", body[2]))
                .map_err(|e| format!("bad regular expression '{}': {e}", body[2]))?;
            extra(4)?;
            // HAProxy writes back-references `\1`; the regex crate `${1}`.
            let with = backrefs(&body[3]);
            Action::ReplaceHeader(h, Pattern(r), with)
        }
        "replace-header" => {
            return Err(
                "'replace-header' needs a header name, a regular expression and a replacement"
                    .into(),
            )
        }
        "set-path" => {
            let Some(v) = body.get(1) else {
                return Err("'set-path' needs a path".into());
            };
            extra(2)?;
            request_only(Action::SetPath(format(v, scope)?))?
        }
        "deny" => {
            // HAProxy: a denied request gets 403, a denied response 502.
            let default = if scope.response { 502 } else { 403 };
            let (code, reply, written) = reply(&body[1..], default, true, scope)?;
            text_words = Some([&[body[0].clone()][..], &written, cond].concat());
            Action::Deny(code, reply)
        }
        "return" => {
            let (code, reply, written) = reply(&body[1..], 200, false, scope)?;
            text_words = Some([&[body[0].clone()][..], &written, cond].concat());
            request_only(Action::Return(code, reply))?
        }
        "redirect" => {
            let kind = match body.get(1).map(String::as_str) {
                Some("location") => RedirectKind::Location,
                Some("prefix") => RedirectKind::Prefix,
                Some("scheme") => RedirectKind::Scheme,
                _ => {
                    return Err(
                        "'redirect' needs 'location', 'prefix' or 'scheme' and a value".into(),
                    )
                }
            };
            let Some(v) = body.get(2) else {
                return Err("'redirect' needs a value".into());
            };
            let mut code = 302;
            let mut i = 3;
            while let Some(w) = body.get(i) {
                match w.as_str() {
                    "code" => code = status(body.get(i + 1), &[301, 302, 303, 307, 308], "code")?,
                    other => {
                        return Err(format!(
                            "'redirect ... {other}' is not supported yet (warren has 'code')"
                        ))
                    }
                }
                i += 2;
            }
            request_only(Action::Redirect {
                kind,
                value: format(v, scope)?,
                code,
            })?
        }
        "auth" => {
            let realm = match body.get(1).map(String::as_str) {
                None => "HAProxy".to_string(),
                Some("realm") => {
                    extra(3)?;
                    body.get(2).cloned().ok_or("'realm' needs a value")?
                }
                Some(other) => {
                    return Err(format!(
                        "unexpected '{other}' after 'auth' (it takes 'realm <name>')"
                    ))
                }
            };
            request_only(Action::Auth { realm })?
        }
        other => {
            const ACTIONS: [&str; 10] = [
                "set-header",
                "add-header",
                "del-header",
                "replace-header",
                "set-path",
                "deny",
                "return",
                "redirect",
                "auth",
                "allow",
            ];
            return Err(format!(
                "'{keyword} {other}' is not supported yet; warren has set-header, add-header, del-header, replace-header, set-path, deny, return, redirect and auth{}",
                suggest::hint(other, ACTIONS)
            ));
        }
    };
    Ok(Rule {
        action,
        condition,
        text: join(text_words.as_deref().unwrap_or(words)),
    })
}

/// The arguments of `deny` and `return` (HAProxy's "http reply"):
/// `[status|deny_status <code>] [content-type <type>] [default-errorfiles | errorfile <file>
/// | errorfiles <name> | string <text>]`. Returns the status, the reply, and the
/// arguments as `warren convert` must write them (an `errorfiles <name>` becomes the
/// `errorfile` it resolved to, since warren's TOML has no http-errors sections).
fn reply(
    args: &[String],
    default: u16,
    deny: bool,
    scope: &Scope<'_>,
) -> Result<(u16, Reply, Vec<String>), String> {
    let action = if deny { "deny" } else { "return" };
    let mut code = default;
    let mut content_type: Option<String> = None;
    let mut payload: Option<(&str, &String)> = None;
    let mut written: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let value = args.get(i + 1);
        match w.as_str() {
            "status" | "deny_status" if w == "status" || deny => {
                code = status(value, &[], w)?;
            }
            "content-type" => {
                content_type = Some(value.cloned().ok_or("'content-type' needs a value")?)
            }
            "default-errorfiles" => {
                if payload.replace((w, w)).is_some() {
                    return Err(format!("'{action}' takes one of default-errorfiles, errorfile, errorfiles and string"));
                }
                written.push(w.clone());
                i += 1;
                continue;
            }
            "errorfile" | "errorfiles" | "string" => {
                let v = value.ok_or_else(|| format!("'{w}' needs a value"))?;
                if payload.replace((w, v)).is_some() {
                    return Err(format!("'{action}' takes one of default-errorfiles, errorfile, errorfiles and string"));
                }
                if w != "errorfiles" {
                    written.extend([w.clone(), v.clone()]);
                }
                i += 2;
                continue;
            }
            "lf-string" | "file" | "lf-file" | "hdr" => {
                return Err(format!("'{action} ... {w}' is not supported yet (warren has status, content-type, default-errorfiles, errorfile, errorfiles and string)"))
            }
            other => return Err(format!("unexpected '{other}' in '{action}'")),
        }
        written.extend([w.clone(), value.cloned().unwrap_or_default()]);
        i += 2;
    }
    let errorfile_code = |what: &str| {
        if ERRORFILE_CODES.contains(&code) {
            Ok(())
        } else {
            Err(format!("'{action} ... {what}' needs a status warren (as HAProxy) has errorfiles for: {ERRORFILE_CODES:?}"))
        }
    };
    let reply = match payload {
        // HAProxy: `deny [deny_status <code>]` alone means its errorfiles.
        None if deny && content_type.is_none() => Reply::Default,
        None => Reply::Text {
            content_type: None,
            body: String::new(),
        },
        Some(("default-errorfiles", _)) => {
            errorfile_code("default-errorfiles")?;
            Reply::Default
        }
        Some(("errorfile", path)) => {
            errorfile_code("errorfile")?;
            let bytes = errorfile(path)?;
            Reply::Errorfile(std::sync::Arc::new(bytes), path.clone())
        }
        Some(("errorfiles", name)) => {
            errorfile_code("errorfiles")?;
            let Some(section) = scope.http_errors.iter().find(|s| s.name == *name) else {
                return Err(format!(
                    "no http-errors section named '{name}'{}",
                    suggest::hint(name, scope.http_errors.iter().map(|s| s.name.as_str()))
                ));
            };
            match section.files.iter().find(|(c, _, _)| *c == code) {
                Some((_, bytes, path)) => {
                    written.extend(["errorfile".to_string(), path.clone()]);
                    Reply::Errorfile(std::sync::Arc::new(bytes.clone()), path.clone())
                }
                // HAProxy warns and answers the bare status.
                None => Reply::Text {
                    content_type: None,
                    body: String::new(),
                },
            }
        }
        Some((_, text)) => {
            if content_type.is_none() {
                return Err(format!(
                    "'{action} ... string' needs a 'content-type', as in HAProxy"
                ));
            }
            Reply::Text {
                content_type,
                body: text.clone(),
            }
        }
    };
    Ok((code, reply, written))
}
