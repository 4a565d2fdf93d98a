//! The HTTP-mode options of a proxy section: `option http-keep-alive`,
//! `option http-server-close`, `option httpclose`, `option httplog` and
//! `option forwardfor [except <network>] [header <name>]`.

use super::draft::Draft;
use crate::config::model::{ConnMode, CookieMode, CookiePersist, ForwardFor};
use crate::config::report::Report;
use crate::config::suggest;

/// Applies `option <name>` (or `no option <name>`) for an HTTP-only option. Returns
/// whether it was taken (so a tcp-mode proxy gets HAProxy's "only applies to mode http"
/// warning for it); errors are reported here.
pub fn option(
    draft: &mut Draft,
    name: &str,
    args: &[String],
    enabled: bool,
    line: usize,
    report: &mut Report,
) -> bool {
    match name {
        "httplog" => draft.httplog = enabled,
        "http-keep-alive" | "http-server-close" | "httpclose" => {
            let mode = match name {
                "http-keep-alive" => ConnMode::KeepAlive,
                "http-server-close" => ConnMode::ServerClose,
                _ => ConnMode::Close,
            };
            // HAProxy: the last of the three written wins; `no option X` only undoes X.
            if enabled {
                draft.http.connection = mode;
            } else if draft.http.connection == mode {
                draft.http.connection = ConnMode::KeepAlive;
            }
        }
        "forwardfor" => {
            if !enabled {
                if let Some(extra) = args.first() {
                    report.error(
                        line,
                        format!("too many arguments to 'no option forwardfor': remove '{extra}'"),
                    );
                    return false;
                }
                draft.http.forwardfor = None;
                return true;
            }
            match forwardfor(args) {
                Ok(f) => draft.http.forwardfor = Some(f),
                Err(e) => {
                    report.error(line, e);
                    return false;
                }
            }
        }
        "forceclose" => {
            report.error(
                line,
                "'option forceclose' was removed from HAProxy; write 'option httpclose'",
            );
            return false;
        }
        // `http-buffer-request`, `http-pretend-keepalive`.
        _ => {
            if enabled {
                report.warn(
                    line,
                    format!("'option {name}' is ignored: warren streams request bodies and keeps connections as its connection mode says"),
                );
            }
            return false;
        }
    }
    true
}

/// `cookie <name> [rewrite|insert|prefix] [indirect] [nocache] [postonly] [preserve]
/// [httponly] [secure] [domain <d>]* [maxidle <t>] [maxlife <t>] [attr <v>]*`.
pub fn cookie(
    draft: &Draft,
    words: &[String],
    line: usize,
    report: &mut Report,
) -> Option<CookiePersist> {
    const WORDS: [&str; 14] = [
        "rewrite", "insert", "prefix", "indirect", "nocache", "postonly", "preserve", "httponly",
        "secure", "domain", "maxidle", "maxlife", "attr", "dynamic",
    ];
    if draft.kind == super::draft::Kind::Frontend {
        report.warn(
            line,
            "'cookie' is ignored in a frontend section (it belongs to backends)",
        );
        return None;
    }
    let Some(name) = words.get(1) else {
        report.error(
            line,
            "'cookie' needs a cookie name, for example 'cookie SERVERID insert indirect nocache'",
        );
        return None;
    };
    if name.is_empty() || !name.bytes().all(crate::config::http::is_token_byte) {
        report.error(line, format!("'{name}' is not a valid cookie name"));
        return None;
    }
    let mut c = CookiePersist {
        name: name.clone(),
        mode: CookieMode::Rewrite,
        indirect: false,
        nocache: false,
        postonly: false,
        preserve: false,
        httponly: false,
        secure: false,
        domains: Vec::new(),
        maxidle: None,
        maxlife: None,
        attrs: Vec::new(),
    };
    let mut mode_set: Option<&str> = None;
    let mut rest = words[2..].iter();
    while let Some(word) = rest.next() {
        let w = word.as_str();
        match w {
            "rewrite" | "insert" | "prefix" => {
                if let Some(other) = mode_set.filter(|o| *o != w) {
                    report.error(
                        line,
                        format!("'cookie': '{w}' and '{other}' exclude each other"),
                    );
                    return None;
                }
                mode_set = Some(w);
                c.mode = CookieMode::from_name(w).unwrap_or(CookieMode::Rewrite);
            }
            "indirect" => c.indirect = true,
            "nocache" => c.nocache = true,
            "postonly" => c.postonly = true,
            "preserve" => c.preserve = true,
            "httponly" => c.httponly = true,
            "secure" => c.secure = true,
            "domain" | "attr" | "maxidle" | "maxlife" => {
                let Some(value) = rest.next() else {
                    report.error(line, format!("'{w}' in 'cookie' needs a value"));
                    return None;
                };
                match w {
                    "domain" => c.domains.push(value.clone()),
                    "attr" => {
                        if value.contains(';') || value.chars().any(char::is_control) {
                            report.error(
                                line,
                                "a cookie 'attr' may not contain ';' or control characters",
                            );
                            return None;
                        }
                        c.attrs.push(value.clone());
                    }
                    _ => match super::duration(w, Some(value)) {
                        Ok(d) if w == "maxidle" => c.maxidle = (!d.is_zero()).then_some(d),
                        Ok(d) => c.maxlife = (!d.is_zero()).then_some(d),
                        Err(e) => {
                            report.error(line, e);
                            return None;
                        }
                    },
                }
            }
            "dynamic" => {
                report.error(line, "'cookie ... dynamic' is not supported yet: give each server its 'cookie <value>'");
                return None;
            }
            other => {
                report.error(
                    line,
                    format!(
                        "unknown 'cookie' option '{other}'{}",
                        suggest::hint(other, WORDS)
                    ),
                );
                return None;
            }
        }
    }
    if c.preserve && !(c.mode == CookieMode::Insert || c.indirect) {
        report.error(
            line,
            "'cookie ... preserve' needs 'insert' or 'indirect', as in HAProxy",
        );
        return None;
    }
    if (c.maxidle.is_some() || c.maxlife.is_some()) && c.mode != CookieMode::Insert {
        report.error(
            line,
            "'maxidle' and 'maxlife' only work with 'cookie ... insert', as in HAProxy",
        );
        return None;
    }
    Some(c)
}

/// `except <network>` and `header <name>`, in any order.
fn forwardfor(args: &[String]) -> Result<ForwardFor, String> {
    let mut f = ForwardFor {
        header: ForwardFor::DEFAULT_HEADER.to_string(),
        except: None,
    };
    let mut rest = args.iter();
    while let Some(key) = rest.next() {
        let Some(value) = rest.next() else {
            return Err(format!("'{key}' in 'option forwardfor' needs a value"));
        };
        match key.as_str() {
            "except" => f.except = Some(ForwardFor::parse_network(value)?),
            "header" => {
                if value.is_empty() || !value.bytes().all(crate::config::http::is_token_byte) {
                    return Err(format!("'{value}' is not a valid header name"));
                }
                f.header = value.clone();
            }
            "if-none" => {
                return Err("'if-none' in 'option forwardfor' is not supported yet".to_string())
            }
            other => {
                return Err(format!(
                    "unknown argument '{other}' to 'option forwardfor'; it takes 'except <network>' and 'header <name>'{}",
                    suggest::hint(other, ["except", "header"])
                ))
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use crate::config::{load_str, ConfigError, ConnMode, Mode, Syntax};

    const BASE: &str =
        "defaults\n mode http\n timeout connect 1s\n timeout client 1m\n timeout server 1m\n";

    #[test]
    fn http_listen_with_servers_is_a_proxy() {
        let c = load_str(&format!("{BASE} option http-server-close\nlisten mgmt\n bind :15000\n option forwardfor except 127.0.0.0/8 header X-Client\n option httplog\n timeout http-request 5s\n server a 127.0.0.1:15672\n"), "h.cfg", Syntax::Haproxy)
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let (f, b) = (&c.frontends[0], &c.backends[0]);
        assert_eq!((f.mode, b.mode), (Mode::Http, Mode::Http));
        assert_eq!(f.http.connection, ConnMode::ServerClose);
        let ff = f
            .http
            .forwardfor
            .clone()
            .unwrap_or_else(|| panic!("forwardfor"));
        assert_eq!(ff.header, "X-Client");
        assert_eq!(ff.except_text().as_deref(), Some("127.0.0.0/8"));
        assert!(f.log.httplog);
        assert_eq!(
            f.timeouts.http_request,
            Some(std::time::Duration::from_secs(5))
        );
        assert!(c.stats.is_empty());
    }

    #[test]
    fn bad_http_options_name_their_line() {
        let e = match load_str(&format!("{BASE}listen l\n bind :15001\n option forwardfor excep 10.0.0.0/8\n option forwardfor except 10.0.0.0/40\n option forceclose\n server a 127.0.0.1:1\n"), "h.cfg", Syntax::Haproxy) {
            Err(ConfigError::Invalid(d)) => d,
            other => panic!("expected errors, got {other:?}"),
        };
        let has =
            |line: usize, text: &str| e.iter().any(|d| d.line == line && d.message.contains(text));
        assert!(has(8, "did you mean 'except'"), "{e:?}");
        assert!(has(9, "prefix length"), "{e:?}");
        assert!(has(10, "write 'option httpclose'"), "{e:?}");
    }

    #[test]
    fn last_connection_option_wins_and_no_undoes_it() {
        let c = load_str(&format!("{BASE} option httpclose\nlisten l\n bind :15002\n no option httpclose\n server a 127.0.0.1:1\nlisten m\n bind :15003\n option http-server-close\n option http-keep-alive\n server a 127.0.0.1:1\n"), "h.cfg", Syntax::Haproxy)
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        assert_eq!(c.frontends[0].http.connection, ConnMode::KeepAlive);
        assert_eq!(c.frontends[1].http.connection, ConnMode::KeepAlive);
    }
}
