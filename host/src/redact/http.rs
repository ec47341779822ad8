//! `http.request` and `upgrade`: headers by name, the query by parameter, and the path through
//! the PEM and token-format passes only.

use super::formats::token_formats;
use super::names::{is_secret, is_secret_header, percent_decoded};
use super::pem::pem_blocks;
use super::scan::{Masker, at, skip_blank};
use super::values::mask_value;
use super::{MASK, text};
use crate::action::{Header, HttpRequest};

pub(super) fn http_request(h: &HttpRequest) -> HttpRequest {
    HttpRequest {
        path: token_formats(&pem_blocks(&h.path)),
        query: h.query.as_deref().map(query),
        headers: h.headers.iter().map(header).collect(),
        ..h.clone()
    }
}

/// A header: a secret one has its value masked (keeping an `Authorization` scheme and cookie
/// names); any other goes through [`text`].
fn header(h: &Header) -> Header {
    let name = h.name.as_bytes();
    let value = if is_secret_header(name) {
        let mut m = Masker::new(&h.value);
        let b = m.b;
        let start = skip_blank(b, 0);
        let mut end = b.len();
        while end > start && at(b, end - 1).is_ascii_whitespace() {
            end -= 1;
        }
        mask_value(&mut m, name, start, end);
        m.finish()
    } else {
        text(&h.value)
    };
    Header {
        name: h.name.clone(),
        value,
    }
}

/// A query string (without `?`): each `name=value` whose name, percent-decoded, is secret has
/// its value masked; other parameters go through [`text`] (and are checked again after it, so
/// that masking twice changes nothing).
fn query(q: &str) -> String {
    let secret_param = |part: &str| {
        part.split_once('=')
            .filter(|(name, _)| is_secret(&percent_decoded(name.as_bytes()), true))
            .map(|(name, value)| {
                if value.is_empty() {
                    format!("{name}=")
                } else {
                    format!("{name}={MASK}")
                }
            })
    };
    let params: Vec<String> = q
        .split('&')
        .map(|part| {
            secret_param(part).unwrap_or_else(|| {
                let part = text(part);
                secret_param(&part).unwrap_or(part)
            })
        })
        .collect();
    params.join("&")
}

/// An upgrade's path: well-known token formats masked, and the query rules after a `?`.
pub(super) fn path_and_query(path: &str) -> String {
    match path.split_once('?') {
        Some((p, q)) => format!("{}?{}", token_formats(&pem_blocks(p)), query(q)),
        None => token_formats(&pem_blocks(path)),
    }
}
