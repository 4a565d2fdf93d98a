//! Inputs the fuzz targets (`fuzz/`, see the README's "Fuzzing" section) once failed on,
//! replayed in the ordinary test suite so the fixes stay fixed.

use warren::proxy_protocol::{self, HeaderError};

/// proxy_header: `TCP6` with an IPv4 source was accepted, giving a mixed-family pair that
/// no longer round-tripped through `encode` (which writes mixed pairs as IPv6).
#[test]
fn proxy_v1_tcp6_with_an_ipv4_address_is_refused() {
    let input = b"PROXY TCP6 200.168.0.1 2::264 12 5372\r\n";
    assert!(matches!(proxy_protocol::parse(input), Err(HeaderError::Malformed(_))));
    let input = b"PROXY TCP6 2::264 200.168.0.1 12 5372\r\n";
    assert!(matches!(proxy_protocol::parse(input), Err(HeaderError::Malformed(_))));
}
