//! A backend's `check` value in TOML: a name for the checks that take no parameters, a
//! table with a `type` for the others. Read by hand from a `toml::Value` so a mistake gets a
//! sentence (and a "did you mean") instead of serde's "did not match any variant".
//!
//! ```toml
//! check = "amqp"                      # or "tcp" (the default)
//! check = { type = "amqp-login", user = "monitor", password = "...", vhost = "/" }
//! check = { type = "http", method = "GET", uri = "/api/health/checks/alarms",
//!           headers = [{ name = "Authorization", value = "Basic ..." }], expect_status = [200] }
//! ```

use toml::value::Table;
use toml::Value;

use crate::config::model::{CheckKind, HttpCheck, Secret};
use crate::config::suggest;

const TYPES: [&str; 5] = ["tcp", "amqp", "amqp-login", "http", "tcp-check"];

pub(super) fn parse(value: &Value) -> Result<CheckKind, String> {
    match value {
        Value::String(name) => match name.as_str() {
            "tcp" => Ok(CheckKind::Tcp),
            "amqp" => Ok(CheckKind::Amqp),
            "amqp-login" => Err("\"amqp-login\" needs credentials: write { type = \"amqp-login\", user = \"...\", password = \"...\" }".into()),
            "http" => Ok(CheckKind::Http(http(&Table::new())?)),
            other => Err(format!("unknown check '{other}'; use \"tcp\", \"amqp\", \"amqp-login\" or \"http\"{}", suggest::hint(other, TYPES))),
        },
        Value::Table(table) => {
            let kind = match table.get("type") {
                Some(Value::String(t)) => t.as_str(),
                Some(_) => return Err("'type' must be a string".into()),
                None => return Err("a check table needs a 'type' (\"amqp-login\" or \"http\")".into()),
            };
            match kind {
                "tcp" | "amqp" => {
                    only(table, &["type"])?;
                    Ok(if kind == "tcp" { CheckKind::Tcp } else { CheckKind::Amqp })
                }
                "amqp-login" => {
                    only(table, &["type", "user", "password", "vhost"])?;
                    Ok(CheckKind::AmqpLogin {
                        user: string(table, "user")?.ok_or("\"amqp-login\" needs 'user'")?,
                        password: Secret(string(table, "password")?.ok_or("\"amqp-login\" needs 'password'")?),
                        vhost: string(table, "vhost")?.unwrap_or_else(|| "/".into()),
                    })
                }
                "http" => Ok(CheckKind::Http(http(table)?)),
                "tcp-check" => {
                    only(table, &["type", "rules"])?;
                    let rules = match table.get("rules") {
                        None => Vec::new(),
                        Some(Value::Array(items)) => items
                            .iter()
                            .map(|v| v.as_str().map(str::to_string).ok_or("'rules' holds strings, one tcp-check rule each"))
                            .collect::<Result<Vec<_>, _>>()?,
                        Some(_) => return Err("'rules' must be a list of strings, such as [\"send-binary 414d5150\"]".into()),
                    };
                    Ok(CheckKind::TcpCheck(crate::config::tcp_check::from_lines(&rules)?))
                }
                other => Err(format!("unknown check type '{other}'{}", suggest::hint(other, TYPES))),
            }
        }
        _ => Err("expected a name (\"tcp\", \"amqp\") or a table with a 'type'".into()),
    }
}

fn http(table: &Table) -> Result<HttpCheck, String> {
    only(
        table,
        &[
            "type",
            "method",
            "uri",
            "headers",
            "expect_status",
            "expect_string",
            "expect_rstring",
        ],
    )?;
    let uri = string(table, "uri")?.unwrap_or_else(|| "/".into());
    if uri != "*" && !uri.starts_with('/') {
        return Err(format!(
            "'uri' must start with '/' (or be '*'), not '{uri}'"
        ));
    }
    let mut headers = Vec::new();
    match table.get("headers") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::Table(h) = item else {
                    return Err(
                        "each header is a table: { name = \"...\", value = \"...\" }".into(),
                    );
                };
                only(h, &["name", "value"])?;
                let name = string(h, "name")?.ok_or("a header needs 'name'")?;
                let value = string(h, "value")?.ok_or("a header needs 'value'")?;
                headers.push((name, Secret(value)));
            }
        }
        Some(_) => return Err("'headers' must be an array of { name, value } tables".into()),
    }
    let mut expect_status = Vec::new();
    match table.get("expect_status") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item.as_integer().and_then(|n| u16::try_from(n).ok()) {
                    Some(n) if (100..=599).contains(&n) => expect_status.push(n),
                    _ => {
                        return Err(format!(
                            "'expect_status' holds HTTP status codes (100 to 599), not {item}"
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(
                "'expect_status' must be an array of status codes, for example [200]".into(),
            )
        }
    }
    let expect_body = match (
        string(table, "expect_string")?,
        string(table, "expect_rstring")?,
    ) {
        (Some(_), Some(_)) => {
            return Err("give 'expect_string' or 'expect_rstring', not both".into())
        }
        (Some(s), None) => Some(crate::config::model::BodyExpect::Contains(s)),
        (None, Some(r)) => Some(crate::config::model::BodyExpect::Matches(
            crate::config::rules::Pattern(
                regex::Regex::new(&r)
                    .map_err(|e| format!("bad regular expression in 'expect_rstring': {e}"))?,
            ),
        )),
        (None, None) => None,
    };
    Ok(HttpCheck {
        method: string(table, "method")?.unwrap_or_else(|| "OPTIONS".into()),
        uri,
        headers,
        expect_status,
        expect_body,
    })
}

/// Refuses keys outside `allowed`, as `deny_unknown_fields` does elsewhere.
fn only(table: &Table, allowed: &[&str]) -> Result<(), String> {
    match table.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "unknown key '{key}'{}",
            suggest::hint(key, allowed.iter().copied())
        )),
        None => Ok(()),
    }
}

fn string(table: &Table, key: &str) -> Result<Option<String>, String> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("'{key}' must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<CheckKind, String> {
        let doc: Table = toml::from_str(&format!("check = {text}")).expect("toml");
        parse(&doc["check"])
    }

    #[test]
    fn names_and_tables() {
        assert_eq!(check("\"amqp\""), Ok(CheckKind::Amqp));
        assert_eq!(check("{ type = \"tcp\" }"), Ok(CheckKind::Tcp));
        let CheckKind::AmqpLogin {
            user,
            password,
            vhost,
        } = check("{ type = \"amqp-login\", user = \"u\", password = \"p\" }").expect("login")
        else {
            panic!("not a login check");
        };
        assert_eq!(
            (user.as_str(), password.0.as_str(), vhost.as_str()),
            ("u", "p", "/")
        );
        let CheckKind::Http(h) = check("{ type = \"http\", uri = \"/api\", headers = [{ name = \"A\", value = \"b\" }], expect_status = [200, 204] }").expect("http") else {
            panic!("not an http check");
        };
        assert_eq!(
            (
                h.method.as_str(),
                h.uri.as_str(),
                h.expect_status.as_slice()
            ),
            ("OPTIONS", "/api", &[200, 204][..])
        );
        assert_eq!(h.headers[0].1 .0, "b");
    }

    #[test]
    fn mistakes_are_sentences() {
        assert!(check("\"amqq\"")
            .unwrap_err()
            .contains("did you mean 'amqp'"));
        assert!(check("{ type = \"amqp-login\", user = \"u\" }")
            .unwrap_err()
            .contains("needs 'password'"));
        assert!(
            check("{ type = \"amqp-login\", usr = \"u\", password = \"p\" }")
                .unwrap_err()
                .contains("did you mean 'user'")
        );
        assert!(check("{ type = \"http\", expect_status = [99] }")
            .unwrap_err()
            .contains("100 to 599"));
        assert!(check("{ type = \"http\", uri = \"api\" }")
            .unwrap_err()
            .contains("must start with '/'"));
        assert!(check("3").is_err());
    }
}
