//! Basic-auth credentials checked against a `userlist`: `insecure-password` compared as
//! is, `password` hashes checked with the system's crypt(3) (libcrypt: `$1$`, `$5$`,
//! `$6$`, `$y$`, ... whatever the system supports), exactly as HAProxy checks them.
//! A hash check costs what its scheme costs (SHA-512 crypt: about a millisecond), once
//! per request that carries credentials for a rule that asks.

use std::ffi::{c_char, CStr, CString};

use base64::Engine;

use crate::config::rules::{Password, Userlist};

/// Size of libcrypt's `struct crypt_data` (libxcrypt: 32768 bytes).
const CRYPT_DATA_SIZE: usize = 32768;

#[link(name = "crypt")]
extern "C" {
    /// libxcrypt: `char *crypt_rn(const char *phrase, const char *setting, void *data,
    /// int size)`, reentrant; returns NULL on failure.
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut std::ffi::c_void,
        size: i32,
    ) -> *mut c_char;
}

/// `user:password` from an `Authorization: Basic ...` value.
pub fn basic(value: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, b64) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Whether `user`/`password` are valid in `list`.
pub fn check(list: &Userlist, user: &str, password: &str) -> bool {
    let Some(u) = list.users.iter().find(|u| u.name == user) else {
        return false;
    };
    match &u.password {
        Password::Plain(p) => constant_time_eq(p.0.as_bytes(), password.as_bytes()),
        Password::Crypt(hash) => crypt_matches(password, hash),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn crypt_matches(password: &str, hash: &str) -> bool {
    let (Ok(phrase), Ok(setting)) = (CString::new(password), CString::new(hash)) else {
        return false;
    };
    let mut data = vec![0u8; CRYPT_DATA_SIZE];
    // SAFETY: both strings are NUL-terminated and live across the call; `data` is a
    // writable buffer of the size passed; the result, when not NULL, points into `data`
    // and is read before `data` is dropped.
    let out = unsafe {
        crypt_rn(
            phrase.as_ptr(),
            setting.as_ptr(),
            data.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as i32,
        )
    };
    if out.is_null() {
        return false;
    }
    // SAFETY: see above; crypt_rn returns a NUL-terminated string inside `data`.
    let computed = unsafe { CStr::from_ptr(out) };
    // libxcrypt marks failure with a string starting with '*'.
    let computed = computed.to_bytes();
    !computed.starts_with(b"*") && constant_time_eq(computed, hash.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::rules::{SecretEq, User};

    #[test]
    fn plain_and_crypt_passwords() {
        // `openssl passwd -6 -salt saltsalt guest`.
        let hash = "$6$saltsalt$fIy/LDohE2R3rq6yytMB5xPT65Qt7X.GabD.3RvFJC6h8Of33i3Wzz8cBNOAS2swzjMbN984mt5K.D6KXmjKb/";
        let list = Userlist {
            name: "u".into(),
            users: vec![
                User {
                    name: "a".into(),
                    password: Password::Plain(SecretEq("pw".into())),
                    groups: vec![],
                },
                User {
                    name: "guest".into(),
                    password: Password::Crypt(hash.into()),
                    groups: vec![],
                },
            ],
        };
        assert!(check(&list, "a", "pw") && !check(&list, "a", "px") && !check(&list, "b", "pw"));
        assert!(check(&list, "guest", "guest"), "sha-512 crypt");
        assert!(!check(&list, "guest", "guesT"));
        assert_eq!(
            basic(b"Basic Z3Vlc3Q6Z3Vlc3Q="),
            Some(("guest".into(), "guest".into()))
        );
        assert_eq!(basic(b"Bearer x"), None);
    }
}
