//! `userlist` sections, read before the proxies (a proxy may name a userlist defined
//! further down, as in HAProxy):
//!
//! ```text
//! userlist admins
//!     group ops users alice
//!     user alice password $6$salt$hash...     # crypt(3), checked as HAProxy does
//!     user bob insecure-password s3cret groups ops
//! ```

use crate::config::report::Report;
use crate::config::rules::{Password, SecretEq, User, Userlist};
use crate::config::suggest;

/// Section keywords (a userlist ends at the next one).
const SECTIONS: [&str; 8] = [
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "resolvers",
];

/// Every userlist of the configuration (its preprocessed lines, with their numbers);
/// errors go to `report` with their lines.
pub fn collect(lines: &[(usize, Vec<String>)], report: &mut Report) -> Vec<Userlist> {
    let mut lists: Vec<Userlist> = Vec::new();
    let mut current: Option<Userlist> = None;
    // Group memberships declared with `group <g> users a,b`, applied at the end.
    let mut members: Vec<(String, String)> = Vec::new();
    for (line, words) in lines {
        let line = *line;
        let Some(first) = words.first() else { continue };
        if SECTIONS.contains(&first.as_str()) {
            if let Some(done) = current.take() {
                lists.push(done);
            }
            if first == "userlist" {
                match words.get(1) {
                    Some(name) if lists.iter().any(|l| l.name == *name) => {
                        report.error(line, format!("a userlist named '{name}' already exists"))
                    }
                    Some(name) => {
                        current = Some(Userlist {
                            name: name.clone(),
                            users: Vec::new(),
                        })
                    }
                    None => report.error(line, "'userlist' needs a name"),
                }
            }
            continue;
        }
        let Some(list) = current.as_mut() else {
            continue;
        };
        match first.as_str() {
            "user" => match user(words) {
                Ok(u) => list.users.push(u),
                Err(e) => report.error(line, e),
            },
            "group" => {
                let Some(group) = words.get(1) else {
                    report.error(line, "'group' needs a name");
                    continue;
                };
                match (words.get(2).map(String::as_str), words.get(3)) {
                    (None, _) => {}
                    (Some("users"), Some(names)) => {
                        for n in names.split(',').filter(|n| !n.is_empty()) {
                            members.push((n.to_string(), group.clone()));
                        }
                    }
                    _ => report.error(
                        line,
                        "'group' takes a name and optionally 'users <a,b,...>'",
                    ),
                }
            }
            other => report.error(
                line,
                format!(
                    "unknown keyword '{other}' in a userlist section (it has 'user' and 'group'){}",
                    suggest::hint(other, ["user", "group"])
                ),
            ),
        }
    }
    if let Some(done) = current.take() {
        lists.push(done);
    }
    for list in &mut lists {
        for (user, group) in &members {
            if let Some(u) = list.users.iter_mut().find(|u| u.name == *user) {
                if !u.groups.contains(group) {
                    u.groups.push(group.clone());
                }
            }
        }
    }
    lists
}

/// `user <name> password <hash> | insecure-password <password> [groups <a,b>]`.
fn user(words: &[String]) -> Result<User, String> {
    let Some(name) = words.get(1) else {
        return Err("'user' needs a name".into());
    };
    let mut password = None;
    let mut groups = Vec::new();
    let mut i = 2;
    while let Some(key) = words.get(i) {
        let Some(value) = words.get(i + 1) else {
            return Err(format!("'{key}' in 'user' needs a value"));
        };
        match key.as_str() {
            "password" => password = Some(Password::Crypt(value.clone())),
            "insecure-password" => password = Some(Password::Plain(SecretEq(value.clone()))),
            "groups" => groups = value.split(',').filter(|g| !g.is_empty()).map(String::from).collect(),
            // Not repeated: it may be a mistyped keyword in front of a password.
            _ => return Err("unknown argument in 'user' (not shown: it may be next to a password); it takes 'password', 'insecure-password' and 'groups'".into()),
        }
        i += 2;
    }
    let Some(password) = password else {
        return Err(format!(
            "user '{name}' needs 'password <crypt hash>' or 'insecure-password <password>'"
        ));
    };
    Ok(User {
        name: name.clone(),
        password,
        groups,
    })
}
