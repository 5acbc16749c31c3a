//! Entry points for the cargo-fuzz targets in `fuzz/`; not a stable API.

use crate::grpc::{access, audit};
use crate::transport::CertNames;
use crate::web::auth::{Passwords, basic_credentials};

/// Feeds arbitrary bytes to the audit trail as the body of every write
/// RPC, as the access guard reads a client's request: a short text
/// always, never a panic, never longer than the cap.
pub fn write_request(data: &[u8]) {
    for rpc in access::write_rpcs() {
        let text = audit::arguments("maglev.Maglev", &rpc, data);
        assert!(
            text.len() <= audit::MAX_ARGUMENTS + '…'.len_utf8(),
            "{rpc}: {} bytes of arguments",
            text.len()
        );
    }
}

/// Feeds arbitrary bytes as a client certificate's DER to the name
/// reader: names or an error, never a panic.
pub fn client_certificate(data: &[u8]) {
    if let Ok(names) = CertNames::from_der(data) {
        let _ = names.subject();
        assert_eq!(
            names.names().count(),
            usize::from(names.common_name.is_some()) + names.alt_names.len()
        );
    }
}

/// Feeds arbitrary bytes to the dashboard's password-file reader (as
/// text) and its basic-credentials decoder (as a header value): users or
/// an error naming the line, never a panic.
pub fn password_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Passwords::parse(&text, std::path::Path::new("fuzz")) {
        assert!(e.to_string().starts_with("fuzz:"), "{e}");
    }
    let _ = basic_credentials(&text);
}

/// Feeds arbitrary bytes to the route-table reader as one dumped route
/// message: a prefix of ours or nothing, never a panic; a prefix's length
/// fits its family.
pub fn route_message(data: &[u8]) {
    if let Some(p) = crate::announce::kernel::dumped_prefix(data) {
        let max = if p.addr.is_ipv4() { 32 } else { 128 };
        assert!(p.len <= max, "{}/{}", p.addr, p.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What CI runs of the fuzz entries: the corner cases they start from.
    #[test]
    fn the_fuzz_entries_take_any_bytes() {
        for data in [
            &b""[..],
            &[0],
            &[0, 0, 0, 0, 0],
            &[0, 255, 255, 255, 255, 1],
            &[1, 0, 0, 0, 1, 0],
            &[0, 0, 0, 0, 3, 0x0a, 0x01, 0xff],
            &[0x30, 0x82, 0xff, 0xff],
            b"alice:$2y$04$x\nalice",
            b"Basic YWxpY2U6c2VjcmV0",
        ] {
            write_request(data);
            client_certificate(data);
            password_file(data);
            route_message(data);
        }
        // A route of ours as the kernel dumps it, then cut short at every
        // length and with its prefix length made too long.
        let route = crate::announce::kernel::emitted_route("192.0.2.1/32");
        assert!(crate::announce::kernel::dumped_prefix(&route).is_some());
        for n in 0..route.len() {
            route_message(&route[..n]);
        }
        let mut long = route.clone();
        long[1] = 200;
        route_message(&long);
    }
}
