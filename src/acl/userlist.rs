//! `userlist` sections: who `http_auth(<userlist>)` lets in. Plain data, here because the
//! ACL fetch names the list; the password check itself (crypt(3)) is `http::auth`.

/// A password in a userlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// `insecure-password`.
    Plain(SecretEq),
    /// `password`: a crypt(3) hash, checked with the system's crypt as HAProxy does.
    Crypt(String),
}

/// A secret that compares by value (for configuration equality) but never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretEq(pub String);

impl std::fmt::Debug for SecretEq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MASKED")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: Password,
    pub groups: Vec<String>,
}

/// A `userlist` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userlist {
    pub name: String,
    pub users: Vec<User>,
}
