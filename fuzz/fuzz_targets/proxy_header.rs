//! PROXY protocol headers (v1 text, v2 binary) from a client on an `accept-proxy` bind.
//!
//! Beyond "no panic": a complete header is exactly `length` bytes (every shorter prefix
//! asks for more, which the byte-by-byte reader relies on), and the addresses it announces
//! survive being encoded again in either version and parsed back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren::proxy_protocol::{encode, parse, Header, Version};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((header, len))) = parse(data) else {
        return;
    };
    assert!(
        len > 0 && len <= data.len(),
        "length {len} of {} bytes",
        data.len()
    );
    assert_eq!(
        parse(&data[..len]),
        Ok(Some((header, len))),
        "the header alone parses differently"
    );
    for cut in 1..len {
        assert_eq!(
            parse(&data[..cut]),
            Ok(None),
            "a prefix of {cut} bytes of a {len}-byte header"
        );
    }
    if let Header::Proxied {
        source,
        destination,
    } = header
    {
        for version in [Version::V1, Version::V2] {
            let again = encode(version, source, destination);
            assert_eq!(
                parse(&again),
                Ok(Some((
                    Header::Proxied {
                        source,
                        destination
                    },
                    again.len()
                ))),
                "{version:?} round trip of {source} -> {destination}"
            );
        }
    }
});
