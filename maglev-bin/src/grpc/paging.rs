//! Paged lists (AIP-158): the request's `page_size` and `page_token`, the
//! response's `next_page_token`, and the pages' bounds.
//!
//! A page holds at most `page_size` items ([`DEFAULT_PAGE_SIZE`] when 0,
//! never more than [`MAX_PAGE_SIZE`]) and closes before its encoded size
//! passes [`PAGE_BYTES`] (one item larger than that goes alone), so no
//! reply nears gRPC's 4 MB default message limit whatever the items'
//! sizes. The token is opaque to clients; inside, it names its list and
//! carries the last key returned, so the next page starts after that key
//! in the list as it is then: nothing is repeated, and nothing that
//! existed throughout the listing is skipped.
//!
//! The client side is here too: [`Follow`] runs a list RPC page after
//! page and concatenates the items (maglevc, `maglevd --check`, the
//! dashboard).

use std::future::Future;

use base64::Engine;
use prost::Message;
use tonic::Status;

use crate::grpc::proto;
use crate::grpc::proto::maglev_client::MaglevClient;
use tonic::transport::Channel;

/// Items on a page when the request asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 1_000;
/// The most items on a page; a larger `page_size` is read as this.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// A page closes before its encoded size passes this (1 MiB, a quarter of
/// gRPC's default 4 MB message limit).
pub const PAGE_BYTES: usize = 1 << 20;
/// The most pages a follower reads before it gives up (a server that
/// hands out tokens for ever would otherwise keep it busy for ever).
pub const MAX_PAGES: usize = 100_000;

/// Which list a token belongs to (a token of another list is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `ListFrontends`.
    Frontends,
    /// `ListBackends`.
    Backends,
    /// `ListHealthChecks`.
    HealthChecks,
    /// `ListOverrides`.
    Overrides,
    /// `GetVPPLBState`.
    LbState,
    /// `GetVPPLBCounters`.
    Counters,
    /// `ListAnnouncements`.
    Announcements,
}

impl List {
    fn tag(self) -> &'static str {
        match self {
            List::Frontends => "fe",
            List::Backends => "be",
            List::HealthChecks => "hc",
            List::Overrides => "ov",
            List::LbState => "lb",
            List::Counters => "ct",
            List::Announcements => "an",
        }
    }
}

/// The token version: a token of another version is refused.
const VERSION: &str = "p1";

/// A parsed page request: how many items at most, after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The most items on the page.
    pub size: usize,
    /// The last key of the page before; `None` for the first page.
    pub after: Option<String>,
}

impl PageRequest {
    /// The page `page_size` and `page_token` ask for of `list`, or
    /// `INVALID_ARGUMENT` naming the field at fault.
    pub fn parse(list: List, page_size: i32, page_token: &str) -> Result<PageRequest, Status> {
        let size = match usize::try_from(page_size) {
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "page_size {page_size} is negative"
                )));
            }
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(decode(list, page_token)?)
        };
        Ok(PageRequest { size, after })
    }
}

/// The token that continues `list` after `key`.
pub fn token(list: List, key: &str) -> String {
    let text = format!("{VERSION}\n{}\n{key}", list.tag());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode(list: List, token: &str) -> Result<String, Status> {
    let bad = |why: &str| {
        Status::invalid_argument(format!(
            "page_token {:?} is not a page token of this list ({why}); pass the next_page_token of the page before, or none for the first page",
            shorten(token)
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad("not base64url"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let mut parts = text.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(VERSION), Some(tag), Some(key)) if tag == list.tag() => Ok(key.to_owned()),
        (Some(VERSION), Some(_), Some(_)) => Err(bad("it is another list's")),
        _ => Err(bad("malformed")),
    }
}

/// At most 64 characters of a token, for an error message.
fn shorten(token: &str) -> String {
    let mut s: String = token.chars().take(64).collect();
    if s.len() < token.len() {
        s.push('…');
    }
    s
}

/// What a page holds: its items and the key to continue after, if more
/// follow.
#[derive(Debug)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// The key of the last item when more follow; `None` on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The response's `next_page_token` for `list`.
    pub fn next_token(&self, list: List) -> String {
        self.next
            .as_deref()
            .map(|k| token(list, k))
            .unwrap_or_default()
    }
}

/// A page of `items` (already starting after the request's key, in list
/// order, each with its key), each converted by `convert` only once it is
/// its turn: at most `size` items and, past the first, at most `bytes`
/// encoded bytes (each item counted as the repeated field holds it).
pub fn collect<K, I, T>(
    items: impl IntoIterator<Item = (K, I)>,
    size: usize,
    bytes: usize,
    mut convert: impl FnMut(I) -> T,
) -> Page<T>
where
    K: Into<String>,
    T: Message,
{
    let mut out = Vec::new();
    let mut used = 0usize;
    let mut last: Option<String> = None;
    let mut items = items.into_iter().peekable();
    while let Some((key, item)) = items.next() {
        let converted = convert(item);
        // A repeated message field: a one-byte tag, the length, the body.
        let len = converted.encoded_len();
        let cost = 1 + prost::length_delimiter_len(len) + len;
        if !out.is_empty() && (out.len() >= size || used + cost > bytes) {
            return Page {
                items: out,
                next: last,
            };
        }
        used += cost;
        out.push(converted);
        last = Some(key.into());
        if out.len() >= size && items.peek().is_some() {
            return Page {
                items: out,
                next: last,
            };
        }
    }
    Page {
        items: out,
        next: None,
    }
}

/// A paged list RPC as a client sees it: its request with a token, its
/// response's items and token.
pub trait Paged: Default {
    /// The request type.
    type Request: Clone;
    /// The request for the page after `token` (empty for the first).
    fn with_token(req: &Self::Request, token: String) -> Self::Request;
    /// This page's token of the next (empty on the last page).
    fn next_token(&self) -> &str;
    /// Appends `page`'s items to this one's (keeping this one's other
    /// fields) and takes its token.
    fn append(&mut self, page: Self);
}

macro_rules! paged {
    ($resp:ty, $req:ty, $field:ident) => {
        impl Paged for $resp {
            type Request = $req;
            fn with_token(req: &$req, token: String) -> $req {
                let mut r = req.clone();
                r.page_token = token;
                r
            }
            fn next_token(&self) -> &str {
                &self.next_page_token
            }
            fn append(&mut self, page: Self) {
                self.$field.extend(page.$field);
                self.next_page_token = page.next_page_token;
            }
        }
    };
}

paged!(
    proto::ListFrontendsResponse,
    proto::ListFrontendsRequest,
    frontends
);
paged!(
    proto::ListBackendsResponse,
    proto::ListBackendsRequest,
    backends
);
paged!(
    proto::ListHealthChecksResponse,
    proto::ListHealthChecksRequest,
    healthchecks
);
paged!(
    proto::ListOverridesResponse,
    proto::ListOverridesRequest,
    overrides
);
paged!(proto::VpplbState, proto::GetVpplbStateRequest, vips);
paged!(proto::VpplbCounters, proto::GetVpplbCountersRequest, vips);
paged!(
    proto::ListAnnouncementsResponse,
    proto::ListAnnouncementsRequest,
    announcements
);

/// Follows a paged list: calls `rpc` for the first page and for every
/// page after it, and returns them concatenated (the first page's other
/// fields, no `next_page_token`).
pub async fn follow<R, F, Fut>(req: R::Request, mut rpc: F) -> Result<R, Status>
where
    R: Paged,
    F: FnMut(R::Request) -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    let mut all = rpc(req.clone()).await?;
    for _ in 0..MAX_PAGES {
        if all.next_token().is_empty() {
            return Ok(all);
        }
        let page = rpc(R::with_token(&req, all.next_token().to_owned())).await?;
        all.append(page);
    }
    Err(Status::out_of_range(format!(
        "the server's list did not end within {MAX_PAGES} pages"
    )))
}

/// Client followers: each list RPC of a [`MaglevClient`] followed to its
/// last page.
macro_rules! follower {
    ($(#[$doc:meta])* $fn:ident, $rpc:ident, $req:ty, $resp:ty) => {
        $(#[$doc])*
        pub async fn $fn(client: &MaglevClient<Channel>, req: $req) -> Result<$resp, Status> {
            follow(req, |r| {
                let mut c = client.clone();
                async move { c.$rpc(r).await.map(tonic::Response::into_inner) }
            })
            .await
        }
    };
}

follower!(
    /// Every frontend (`ListFrontends`, every page).
    all_frontends,
    list_frontends,
    proto::ListFrontendsRequest,
    proto::ListFrontendsResponse
);
follower!(
    /// Every backend (`ListBackends`, every page).
    all_backends,
    list_backends,
    proto::ListBackendsRequest,
    proto::ListBackendsResponse
);
follower!(
    /// Every health check (`ListHealthChecks`, every page).
    all_health_checks,
    list_health_checks,
    proto::ListHealthChecksRequest,
    proto::ListHealthChecksResponse
);
follower!(
    /// Every override (`ListOverrides`, every page).
    all_overrides,
    list_overrides,
    proto::ListOverridesRequest,
    proto::ListOverridesResponse
);
follower!(
    /// VPP's whole LB state, or one frontend's (`GetVPPLBState`, every
    /// page).
    all_lb_state,
    get_vpplb_state,
    proto::GetVpplbStateRequest,
    proto::VpplbState
);
follower!(
    /// Every VIP's counters (`GetVPPLBCounters`, every page).
    all_counters,
    get_vpplb_counters,
    proto::GetVpplbCountersRequest,
    proto::VpplbCounters
);

follower!(
    /// Every VIP prefix's announcement (`ListAnnouncements`, every page).
    all_announcements,
    list_announcements,
    proto::ListAnnouncementsRequest,
    proto::ListAnnouncementsResponse
);

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize) -> proto::OperatorOverride {
        proto::OperatorOverride {
            backend: "x".repeat(n),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_another_lists_or_garbage() {
        let t = token(List::Frontends, "web-01");
        let p = PageRequest::parse(List::Frontends, 0, &t).unwrap();
        assert_eq!(
            p,
            PageRequest {
                size: DEFAULT_PAGE_SIZE,
                after: Some("web-01".into())
            }
        );
        let e = PageRequest::parse(List::Backends, 0, &t).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("page_token"), "{}", e.message());
        assert!(e.message().contains("another list"), "{}", e.message());
        let e = PageRequest::parse(List::Frontends, 0, "!!!").unwrap_err();
        assert!(
            e.message().starts_with("page_token \"!!!\""),
            "{}",
            e.message()
        );
        let e = PageRequest::parse(List::Frontends, -1, "").unwrap_err();
        assert!(e.message().contains("page_size -1"), "{}", e.message());
        assert_eq!(
            PageRequest::parse(List::Frontends, i32::MAX, "")
                .unwrap()
                .size,
            MAX_PAGE_SIZE
        );
    }

    #[test]
    fn a_page_closes_at_its_size_or_its_bytes_and_a_huge_item_goes_alone() {
        let items = |n: usize, len: usize| (0..n).map(move |i| (format!("{i:03}"), len));
        let p = collect(items(10, 10), 4, PAGE_BYTES, item);
        assert_eq!((p.items.len(), p.next.as_deref()), (4, Some("003")));
        let p = collect(items(4, 10), 4, PAGE_BYTES, item);
        assert_eq!((p.items.len(), p.next), (4, None));
        // 100-byte bodies: 3 + 100 + 2 + 1 bytes each; 500 bytes hold 4.
        let p = collect(items(10, 100), 100, 500, item);
        assert_eq!((p.items.len(), p.next.as_deref()), (4, Some("003")));
        let encoded = proto::ListOverridesResponse {
            overrides: p.items,
            next_page_token: String::new(),
        }
        .encoded_len();
        assert!(encoded <= 500, "{encoded}");
        // One item larger than the bound goes alone.
        let p = collect(items(3, 1000), 100, 500, item);
        assert_eq!((p.items.len(), p.next.as_deref()), (1, Some("000")));
        let p = collect(items(0, 1), 100, 500, item);
        assert_eq!((p.items.len(), p.next), (0, None));
    }
}
