//! Paged list RPCs at a size that pages (1,000 frontends × 16 static
//! backends against the simulated VPP, in a debug build; 300 for VPP's
//! own lists): every list pages, no reply passes
//! the page bound, the pages concatenate to exactly the full sorted list
//! (also across a reload between pages), a bad token is refused naming
//! the field, the real `maglevc` lists every frontend (and every
//! announced prefix) across pages, and a
//! reader that hangs up mid-dump stops the daemon's dump.

mod common;
mod grpc_common;
mod maglevc_common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{HEAD, PATIENCE, World};
use grpc_common::{client, eventually};
use maglev_bin::announce::table::{MemoryTable, RouteTable};
use maglev_bin::daemon::Parts;
use maglev_bin::grpc::paging::PAGE_BYTES;
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use maglev_vpp::sim::{Fault, FaultAction};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

/// How long the first sync of [`FRONTENDS`] may take before a test fails
/// (a debug build on a loaded machine is slow; this only bounds a hang).
const SYNC_PATIENCE: Duration = Duration::from_secs(300);

/// Waits until `cond` holds, polling every 50 ms; fails the test after
/// `patience`.
async fn until_within(what: &str, patience: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + patience;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tick.tick().await;
    }
}

/// Frontends of the test config.
const FRONTENDS: usize = 1_000;
/// Backends of each frontend: 8 in a primary pool, 8 in a fallback.
const MEMBERS: usize = 16;

/// The config body: `frontends` (a range of indexes) each over 16 static
/// backends of its own, and two extra health checks.
fn body(frontends: impl Iterator<Item = usize> + Clone) -> String {
    let mut s = String::from(
        "    other: { type: tcp, port: 81 }\n    third: { type: tcp, port: 82 }\n  backends:\n",
    );
    for f in frontends.clone() {
        for m in 0..MEMBERS {
            let n = f * MEMBERS + m;
            s.push_str(&format!(
                "    be-{f:05}-{m:02}: {{ address: 10.{}.{}.{} }}\n",
                n >> 16,
                (n >> 8) & 255,
                n & 255
            ));
        }
    }
    s.push_str("  frontends:\n");
    for f in frontends {
        let member = |m: usize| format!("be-{f:05}-{m:02}: {{}}");
        let primary: Vec<String> = (0..MEMBERS / 2).map(member).collect();
        let fallback: Vec<String> = (MEMBERS / 2..MEMBERS).map(member).collect();
        s.push_str(&format!(
            "    fe-{f:05}:\n      description: {}\n      address: 198.{}.{}.{}\n      protocol: tcp\n      port: 80\n      pools:\n        - {{ name: primary, backends: {{ {} }} }}\n        - {{ name: fallback, backends: {{ {} }} }}\n",
            // Long enough that a page of 1,000 passes the byte bound.
            "d".repeat(400),
            18 + (f >> 16),
            (f >> 8) & 255,
            f & 255,
            primary.join(", "),
            fallback.join(", ")
        ));
    }
    s
}

/// A daemon with `frontends` on the simulator, serving gRPC, and a
/// client; waits until VPP holds every VIP.
async fn start(net: u8, frontends: std::ops::Range<usize>) -> (World, MaglevClient<Channel>) {
    start_counting(net, frontends, true).await
}

/// [`start`], reading VPP's counters or not (`counters`): the counter
/// scrape re-maps VIPs with reader dumps of its own.
async fn start_counting(
    net: u8,
    frontends: std::ops::Range<usize>,
    counters: bool,
) -> (World, MaglevClient<Channel>) {
    let mut world = World::new(net, 1).await;
    // The extra health checks go in the head's `healthchecks` section.
    world.write_config(&format!("{HEAD}{}", body(frontends.clone())));
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    if !counters && let Some(vpp) = settings.vpp.as_mut() {
        vpp.stats = None;
    }
    world.start(settings).await;
    let c = client(&world).await;
    let want = frontends.len() * MEMBERS;
    until_within("VPP holds every AS", SYNC_PATIENCE, || {
        world.vpp.sim.with_model(|m| {
            m.vips()
                .filter(|(_, v)| v.used)
                .map(|(_, v)| v.ases.iter().flatten().filter(|a| a.used).count())
                .sum::<usize>()
        }) == want
    })
    .await;
    (world, c)
}

/// Every page of one list RPC, asserting each reply's encoded size is
/// within the bound; the items of each page.
async fn pages<Resp, Item>(
    what: &str,
    first: impl Fn(String) -> std::pin::Pin<Box<dyn Future<Output = Result<Resp, tonic::Status>>>>,
    items: impl Fn(Resp) -> (Vec<Item>, String),
) -> Vec<Vec<Item>>
where
    Resp: Message,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let reply = first(token)
            .await
            .unwrap_or_else(|e| panic!("a page of {what}: {e:?}"));
        let size = reply.encoded_len();
        assert!(
            size <= PAGE_BYTES,
            "a reply of {size} bytes passes the page bound"
        );
        let (page, next) = items(reply);
        out.push(page);
        if next.is_empty() {
            return out;
        }
        assert!(out.len() < 10_000, "the pages never end");
        token = next;
    }
}

macro_rules! list {
    ($c:expr, $rpc:ident, $req:expr, $field:ident) => {{
        let c = $c.clone();
        let first = $req;
        pages(
            stringify!($rpc),
            move |token| {
                let mut c = c.clone();
                let mut req = first.clone();
                req.page_token = token;
                Box::pin(async move { c.$rpc(req).await.map(tonic::Response::into_inner) })
            },
            |r| (r.$field, r.next_page_token),
        )
        .await
    }};
}

fn sorted_unique(names: &[String]) -> bool {
    names.windows(2).all(|w| w[0] < w[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_pages_within_the_bound_and_the_pages_make_the_whole_list_and_maglevc_follows() {
    let (world, c) = start(61, 0..FRONTENDS).await;
    let h = world.handle();
    let config = h.config();

    // Frontends: the default page closes on bytes (16 members each).
    let fe = list!(
        c,
        list_frontends,
        proto::ListFrontendsRequest::default(),
        frontends
    );
    assert!(fe.len() > 1, "{FRONTENDS} frontends fit one page");
    assert!(fe[0].len() < 1_000, "the byte bound closes the page first");
    let names: Vec<String> = fe.iter().flatten().map(|f| f.name.clone()).collect();
    let want: Vec<String> = config.frontends().keys().cloned().collect();
    assert_eq!(names, want);
    // Small pages: the same list.
    let small = list!(
        c,
        list_frontends,
        proto::ListFrontendsRequest {
            page_size: 333,
            ..Default::default()
        },
        frontends
    );
    assert_eq!(small.len(), FRONTENDS.div_ceil(333));
    let small: Vec<String> = small.iter().flatten().map(|f| f.name.clone()).collect();
    assert_eq!(small, want);

    // Backends.
    let be = list!(
        c,
        list_backends,
        proto::ListBackendsRequest::default(),
        backends
    );
    assert!(be.len() > 1);
    let names: Vec<String> = be.iter().flatten().map(|b| b.name.clone()).collect();
    let want: Vec<String> = config.backends().keys().cloned().collect();
    assert_eq!(names.len(), FRONTENDS * MEMBERS);
    assert_eq!(names, want);
    let b = be
        .iter()
        .flatten()
        .find(|b| b.name == "be-00007-03")
        .unwrap();
    assert_eq!(b.frontends, ["fe-00007"]);

    // Health checks, a page of one each.
    let hc = list!(
        c,
        list_health_checks,
        proto::ListHealthChecksRequest {
            page_size: 1,
            ..Default::default()
        },
        healthchecks
    );
    let names: Vec<String> = hc.iter().flatten().map(|h| h.name.clone()).collect();
    assert_eq!(names, ["other", "third", "web"]);
    assert_eq!(hc.len(), 3);

    // Overrides: three paused backends and two weights, two a page.
    for b in ["be-00003-01", "be-00001-00", "be-00999-15"] {
        h.pause(b).unwrap();
    }
    h.set_weight("fe-00010", "primary", "be-00010-02", 7, false)
        .await
        .unwrap();
    h.set_weight("fe-00002", "fallback", "be-00002-09", 9, false)
        .await
        .unwrap();
    let ov = list!(
        c,
        list_overrides,
        proto::ListOverridesRequest {
            page_size: 2,
            ..Default::default()
        },
        overrides
    );
    assert_eq!(ov.len(), 3);
    let keys: Vec<(String, String, String)> = ov
        .iter()
        .flatten()
        .map(|o| (o.kind.clone(), o.frontend.clone(), o.backend.clone()))
        .collect();
    let k = |kind: &str, f: &str, b: &str| (kind.to_owned(), f.to_owned(), b.to_owned());
    assert_eq!(
        keys,
        [
            k("paused", "", "be-00001-00"),
            k("paused", "", "be-00003-01"),
            k("paused", "", "be-00999-15"),
            k("weight", "fe-00002", "be-00002-09"),
            k("weight", "fe-00010", "be-00010-02"),
        ]
    );

    // The real maglevc follows the pages: every frontend, in table and
    // JSON output.
    let server = world.daemon().grpc_addrs()[0].to_string();
    let run = maglevc_common::maglevc(&["--server", &server, "show", "frontends"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("fe-"))
        .collect();
    let want: Vec<String> = (0..FRONTENDS).map(|f| format!("fe-{f:05}")).collect();
    assert_eq!(names, want);
    let run =
        maglevc_common::maglevc(&["--server", &server, "show", "frontends", "--json"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["frontends"].as_array().unwrap().len(), FRONTENDS);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_consistent_when_a_reload_adds_and_removes_frontends_between_them() {
    let (world, mut c) = start(62, 0..FRONTENDS).await;
    let page = |token: String| proto::ListFrontendsRequest {
        page_size: 300,
        page_token: token,
    };
    let first = c
        .list_frontends(page(String::new()))
        .await
        .unwrap()
        .into_inner();
    let mut seen: Vec<String> = first.frontends.iter().map(|f| f.name.clone()).collect();
    assert_eq!(seen.last().unwrap(), "fe-00299");
    // Between pages: frontends 100..200 (listed) and 500..600 (not yet)
    // go, 1000..1100 come; the rest stay.
    let kept = (0..100).chain(200..500).chain(600..FRONTENDS + 100);
    world.write_config(&format!("{HEAD}{}", body(kept.clone())));
    assert!(world.handle().reload().await.ok());
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let p = c.list_frontends(page(token)).await.unwrap().into_inner();
        seen.extend(p.frontends.iter().map(|f| f.name.clone()));
        token = p.next_page_token;
    }
    assert!(sorted_unique(&seen), "in order, nothing twice");
    let seen: BTreeSet<String> = seen.into_iter().collect();
    // Everything that existed throughout is there.
    for f in kept.filter(|f| *f < FRONTENDS) {
        assert!(seen.contains(&format!("fe-{f:05}")), "fe-{f:05} skipped");
    }
    // The removed ones not yet listed are not; the new ones are.
    assert!(!seen.contains("fe-00550"));
    assert!(seen.contains("fe-01050"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_page_token_or_size_is_refused_naming_the_field() {
    let (world, mut c) = start(63, 0..3).await;
    let check = |r: Result<tonic::Response<proto::ListFrontendsResponse>, tonic::Status>,
                 field: &str| {
        let s = r.expect_err("refused");
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(s.message().starts_with(field), "{}", s.message());
    };
    let garbage = proto::ListFrontendsRequest {
        page_size: 1,
        page_token: "not a token".into(),
    };
    check(c.list_frontends(garbage).await, "page_token");
    // A token of another list.
    let be = c
        .list_backends(proto::ListBackendsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!be.next_page_token.is_empty());
    let foreign = proto::ListFrontendsRequest {
        page_size: 1,
        page_token: be.next_page_token,
    };
    let r = c.list_frontends(foreign).await;
    assert!(r.as_ref().unwrap_err().message().contains("another list"));
    check(r, "page_token");
    let negative = proto::ListFrontendsRequest {
        page_size: -5,
        ..Default::default()
    };
    check(c.list_frontends(negative).await, "page_size");
    // Still answering.
    let all = c
        .list_frontends(proto::ListFrontendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.frontends.len(), 3);
    assert!(all.next_page_token.is_empty());
    world.stop().await;
}

/// Frontends of the announcements' paging test, each on a prefix of its
/// own.
const PREFIXES: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_page_and_the_pages_make_the_whole_list_and_maglevc_follows() {
    let mut world = World::new(64, 1).await;
    world.write_config(&format!(
        "{HEAD}{}  announce:\n    table: 200\n    min-interval: 0s\n",
        body(0..PREFIXES)
    ));
    let table = Arc::new(MemoryTable::new());
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    world.start_with(settings, parts).await;
    let mut c = client(&world).await;
    until_within("every prefix is announced", SYNC_PATIENCE, || {
        table.routes().len() == PREFIXES
    })
    .await;

    // Pages of 7: every prefix once, by address, each with its frontend.
    let pages = list!(
        c,
        list_announcements,
        proto::ListAnnouncementsRequest {
            page_size: 7,
            ..Default::default()
        },
        announcements
    );
    assert_eq!(pages.len(), PREFIXES.div_ceil(7));
    assert!(pages.iter().all(|p| p.len() <= 7));
    let got: Vec<(String, Vec<String>, bool, String)> = pages
        .iter()
        .flatten()
        .map(|a| {
            (
                a.prefix.clone(),
                a.frontends.clone(),
                a.announced,
                a.reason.clone(),
            )
        })
        .collect();
    let want: Vec<(String, Vec<String>, bool, String)> = (0..PREFIXES)
        .map(|f| {
            (
                format!("198.{}.{}.{}/32", 18 + (f >> 16), (f >> 8) & 255, f & 255),
                vec![format!("fe-{f:05}")],
                true,
                "serving".to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // Every page says where the routes go.
    let first = c
        .list_announcements(proto::ListAnnouncementsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (first.enabled, first.table.as_str(), first.in_memory),
        (true, "memory", true)
    );
    let second = c
        .list_announcements(proto::ListAnnouncementsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (second.enabled, second.table.as_str(), second.in_memory),
        (true, "memory", true)
    );
    assert_eq!(second.announcements[0].prefix, want[1].0);
    // A token of another list is refused, naming the field.
    let fe = c
        .list_frontends(proto::ListFrontendsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let e = c
        .list_announcements(proto::ListAnnouncementsRequest {
            page_size: 1,
            page_token: fe.next_page_token,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("page_token"), "{}", e.message());

    // The real maglevc follows the pages: every prefix, in table and
    // JSON output.
    let server = world.daemon().grpc_addrs()[0].to_string();
    let run = maglevc_common::maglevc(&["--server", &server, "show", "announcements"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("routes go to memory (kept in memory"),
        "{}",
        run.stdout
    );
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("198."))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), PREFIXES);
    assert_eq!(
        rows[0][..4],
        ["198.18.0.0/32", "fe-00000", "announced", "serving"]
    );
    let run = maglevc_common::maglevc(
        &["--server", &server, "show", "announcements", "--json"],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["announcements"].as_array().unwrap().len(), PREFIXES);
    assert_eq!(v["in_memory"], true);
    world.stop().await;
}

/// Frontends of the VPP lists' test: VPP's dumps of a debug simulator
/// on a loaded machine must stay within the client's reply timeout.
const VIPS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_lists_page_by_vip_from_one_dump() {
    let (world, c) = start(66, 0..VIPS).await;
    let h = world.handle();
    let config = h.config();
    // VPP's LB state, by VIP: every VIP once, in key order, with its ASes.
    let lb = list!(
        c,
        get_vpplb_state,
        proto::GetVpplbStateRequest {
            page_size: 70,
            ..Default::default()
        },
        vips
    );
    assert_eq!(lb.len(), VIPS.div_ceil(70));
    let vips: Vec<&proto::Vpplbvip> = lb.iter().flatten().collect();
    assert_eq!(vips.len(), VIPS);
    let keys: Vec<(std::net::IpAddr, u32)> = vips
        .iter()
        .map(|v| (v.prefix.split('/').next().unwrap().parse().unwrap(), v.port))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "VIPs in key order, once each"
    );
    assert!(
        vips.iter()
            .all(|v| v.ases.len() == MEMBERS && !v.frontend.is_empty())
    );
    // The pages of that listing were cut from one dump of VPP.
    let reads = h.lb_reads().unwrap();
    // With the default page size: the same VIPs.
    let lb = list!(
        c,
        get_vpplb_state,
        proto::GetVpplbStateRequest::default(),
        vips
    );
    assert_eq!(lb.iter().map(Vec::len).sum::<usize>(), VIPS);
    assert!(
        h.lb_reads().unwrap().dumps <= reads.dumps + 1,
        "one dump for a listing's pages, not one per page"
    );
    // One frontend's VIP.
    let one = list!(
        c,
        get_vpplb_state,
        proto::GetVpplbStateRequest {
            frontend: "fe-00234".into(),
            ..Default::default()
        },
        vips
    );
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].len(), 1);
    assert_eq!(one[0][0].frontend, "fe-00234");

    // Counters, by frontend name, once the scrape has them all.
    until_within("the scrape has every VIP", SYNC_PATIENCE, || {
        h.counters().is_some_and(|c| c.vips.len() == VIPS)
    })
    .await;
    let ct = list!(
        c,
        get_vpplb_counters,
        proto::GetVpplbCountersRequest {
            page_size: 70,
            ..Default::default()
        },
        vips
    );
    assert_eq!(ct.len(), VIPS.div_ceil(70));
    let names: Vec<String> = ct.iter().flatten().map(|v| v.frontend.clone()).collect();
    assert_eq!(
        names,
        config.frontends().keys().cloned().collect::<Vec<_>>()
    );

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_hangs_up_mid_dump_stops_the_dump() {
    // Without the counter scrape, whose re-mapping dumps this call could
    // join (a shared dump goes on for its other waiter): the only reader
    // is this test's.
    let (world, c) = start_counting(65, 0..200, false).await;
    // The reconciler's read after creating the VIPs is done: the delayed
    // dump is a reader's.
    world.until_drift_read().await;
    let h = world.handle();
    let before = h.lb_reads().unwrap();
    // A dump held in the simulator long enough that only the client's
    // going away can end the daemon's wait first. A call answered from a
    // fresh earlier dump leaves the fault for the next; try again.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let call = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reader dump started"
        );
        if world.vpp.sim.pending_faults() == 0 {
            world.vpp.sim.inject(Fault::once(
                "lb_as_v2_dump",
                FaultAction::Delay(Duration::from_secs(3)),
            ));
        }
        let mut c = c.clone();
        let call = tokio::spawn(async move {
            c.get_vpplb_state(proto::GetVpplbStateRequest::default())
                .await
        });
        let started = eventually("a dump starts or the call ends", || {
            let finished = call.is_finished();
            async move {
                if h.lb_reads().unwrap().in_flight == 1 {
                    Some(true)
                } else if finished {
                    Some(false)
                } else {
                    None
                }
            }
        })
        .await;
        if started {
            break call;
        }
    };
    // The client hangs up.
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let after = eventually("the daemon abandons the dump", || async {
        let r = h.lb_reads().unwrap();
        (r.in_flight == 0 && r.abandoned > before.abandoned).then_some(r)
    })
    .await;
    assert_eq!(after.abandoned, before.abandoned + 1);
    // A later read still works (it waits out the simulator's delay).
    let mut c = c.clone();
    let state = c
        .get_vpplb_state(proto::GetVpplbStateRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.vips.len(), 200);
    world.stop().await;
}
