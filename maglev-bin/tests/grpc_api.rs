//! The `maglev.Maglev` RPCs through a tonic client, end to end: the daemon
//! against the simulated VPP with real loopback backends, asserting what
//! the client receives and what the simulator ends up holding.

mod common;
mod grpc_common;

use common::until;
use grpc_common::{eventually, start};
use maglev_bin::grpc::proto;
use tonic::Code;

fn w(list: &[(&str, u8)]) -> Vec<(String, u8)> {
    list.iter().map(|(a, w)| (a.to_string(), *w)).collect()
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| name(i).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontends_backends_and_health_checks_read_as_configured() {
    let (world, mut c) = start(41, |_| {}).await;
    until("web is programmed", || {
        world.weights("192.0.2.41")
            == w(&[("127.0.41.1", 100), ("127.0.41.2", 100), ("127.0.41.3", 0)])
    })
    .await;

    let list = c
        .list_frontends(proto::ListFrontendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&list.frontends, |f| &f.name), ["api", "web"]);

    let web = c
        .get_frontend(proto::GetFrontendRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (web.address.as_str(), web.protocol.as_str(), web.port),
        ("192.0.2.41", "tcp", 80)
    );
    assert_eq!(web.description, "the web site");
    assert_eq!(names(&web.pools, |p| &p.name), ["primary", "fallback"]);
    assert_eq!(web.state, "up");
    assert_eq!(web.active_pool, "primary");
    assert_eq!(web.encap, "gre4");
    assert!(web.released && web.flush_on_down && !web.src_ip_sticky);
    let primary = &web.pools[0].backends;
    assert_eq!(names(primary, |m| &m.name), ["a", "b"]);
    assert_eq!(
        (
            primary[0].weight,
            primary[0].effective_weight,
            primary[0].state.as_str()
        ),
        (100, 100, "up")
    );
    assert_eq!(primary[0].address, "127.0.41.1");
    let fallback = &web.pools[1].backends[0];
    assert_eq!(
        (fallback.name.as_str(), fallback.effective_weight),
        ("c", 0)
    );

    let backends = c
        .list_backends(proto::ListBackendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&backends.backends, |b| &b.name), ["a", "b", "c", "s"]);
    let b = c
        .get_backend(proto::GetBackendRequest { name: "b".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((b.address.as_str(), b.state.as_str()), ("127.0.41.2", "up"));
    assert!(b.enabled);
    assert_eq!(b.healthcheck, "web");
    assert_eq!((b.rise, b.fall), (1, 1));
    assert_eq!(b.frontends, ["api", "web"]);
    let probe = b.last_probe.expect("b was probed");
    assert_eq!(probe.code, "L7OK");
    assert!(probe.unix_nanos > 0);
    let last = b.transitions.last().expect("b went up");
    assert_eq!((last.from.as_str(), last.to.as_str()), ("unknown", "up"));
    assert!(last.unix_nanos > 0);
    let s = &backends.backends[3];
    assert_eq!((s.state.as_str(), s.healthcheck.as_str()), ("up", ""));

    let hcs = c
        .list_health_checks(proto::ListHealthChecksRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&hcs.healthchecks, |h| &h.name), ["web"]);
    let hc = c
        .get_health_check(proto::GetHealthCheckRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (hc.r#type.as_str(), hc.port),
        ("http", u32::from(world.port))
    );
    assert_eq!((hc.path.as_str(), hc.method.as_str()), ("/", "GET"));
    assert_eq!(hc.response_codes, ["200-399"]);
    assert_eq!(hc.interval.unwrap().nanos, 100_000_000);
    assert_eq!(hc.backends, ["a", "b", "c"]);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_reach_the_simulator() {
    let (world, mut c) = start(42, |_| {}).await;
    let web = "192.0.2.42";
    until("web is programmed", || {
        world.weights(web) == w(&[("127.0.42.1", 100), ("127.0.42.2", 100), ("127.0.42.3", 0)])
    })
    .await;
    let req = |name: &str| proto::BackendRequest { name: name.into() };

    let a = c.pause_backend(req("a")).await.unwrap().into_inner();
    assert_eq!(a.state, "paused");
    until("a is drained", || {
        world.weights(web) == w(&[("127.0.42.1", 0), ("127.0.42.2", 100), ("127.0.42.3", 0)])
    })
    .await;
    c.resume_backend(req("a")).await.unwrap();
    until("a is back", || {
        world.weights(web) == w(&[("127.0.42.1", 100), ("127.0.42.2", 100), ("127.0.42.3", 0)])
    })
    .await;

    let b = c.disable_backend(req("b")).await.unwrap().into_inner();
    assert_eq!((b.state.as_str(), b.enabled), ("disabled", false));
    until("b is out of web and api", || {
        world.weights(web) == w(&[("127.0.42.1", 100), ("127.0.42.2", 0), ("127.0.42.3", 0)])
            && world.weights("198.51.100.42") == w(&[("127.0.42.2", 0), ("127.0.42.9", 100)])
    })
    .await;
    let refused = c.pause_backend(req("b")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains('b'), "{}", refused.message());
    let refused = c.resume_backend(req("b")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    c.enable_backend(req("b")).await.unwrap();
    until("b is back", || {
        world.weights("198.51.100.42") == w(&[("127.0.42.2", 50), ("127.0.42.9", 100)])
    })
    .await;

    let fe = c
        .set_frontend_pool_backend_weight(proto::SetWeightRequest {
            frontend: "web".into(),
            pool: "primary".into(),
            backend: "a".into(),
            weight: 30,
            flush: true,
        })
        .await
        .unwrap()
        .into_inner();
    let a = &fe.pools[0].backends[0];
    assert_eq!(
        (a.name.as_str(), a.weight, a.effective_weight),
        ("a", 30, 30)
    );
    // The RPC returns once the sync ran: VPP already holds the weight.
    assert_eq!(
        world.weights(web),
        w(&[("127.0.42.1", 30), ("127.0.42.2", 100), ("127.0.42.3", 0)])
    );
    world.stop().await;
}

/// Asserts a refusal's code and that its message contains `names`.
fn check<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    names: &str,
) {
    let e = r.unwrap_err();
    assert_eq!(e.code(), code, "{e:?}");
    assert!(
        e.message().contains(names),
        "{:?} should name {names:?}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_their_codes_and_name_the_object() {
    let (world, mut c) = start(43, |_| {}).await;
    check(
        c.get_frontend(proto::GetFrontendRequest {
            name: "nope".into(),
        })
        .await,
        Code::NotFound,
        "frontend named \"nope\"",
    );
    check(
        c.get_backend(proto::GetBackendRequest { name: "zed".into() })
            .await,
        Code::NotFound,
        "backend named \"zed\"",
    );
    check(
        c.pause_backend(proto::BackendRequest { name: "zed".into() })
            .await,
        Code::NotFound,
        "zed",
    );
    check(
        c.get_health_check(proto::GetHealthCheckRequest {
            name: "ping".into(),
        })
        .await,
        Code::NotFound,
        "health check named \"ping\"",
    );
    check(
        c.get_frontend(proto::GetFrontendRequest {
            name: String::new(),
        })
        .await,
        Code::InvalidArgument,
        "name",
    );
    let weight = |frontend: &str, pool: &str, backend: &str, weight: u32| proto::SetWeightRequest {
        frontend: frontend.into(),
        pool: pool.into(),
        backend: backend.into(),
        weight,
        flush: false,
    };
    check(
        c.set_frontend_pool_backend_weight(weight("web", "primary", "a", 101))
            .await,
        Code::InvalidArgument,
        "101",
    );
    check(
        c.set_frontend_pool_backend_weight(weight("web", "tertiary", "a", 1))
            .await,
        Code::NotFound,
        "web/tertiary",
    );
    check(
        c.set_frontend_pool_backend_weight(weight("web", "primary", "c", 1))
            .await,
        Code::NotFound,
        "web/primary/c",
    );
    check(
        c.set_frontend_pool_backend_weight(weight("nope", "primary", "a", 1))
            .await,
        Code::NotFound,
        "nope",
    );
    check(
        c.set_frontend_pool_backend_weight(weight("web", "", "a", 1))
            .await,
        Code::InvalidArgument,
        "pool",
    );
    check(
        c.get_vpplb_state(proto::GetVpplbStateRequest {
            frontend: "nope".into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "nope",
    );
    check(
        c.sync_vpplb_state(proto::SyncVpplbStateRequest {
            frontend: "nope".into(),
        })
        .await,
        Code::NotFound,
        "nope",
    );
    check(
        c.watch_events(proto::WatchRequest {
            log: true,
            log_level: "loud".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "loud",
    );
    // The daemon is unharmed.
    let list = c
        .list_frontends(proto::ListFrontendsRequest::default())
        .await
        .unwrap();
    assert_eq!(list.into_inner().frontends.len(), 2);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_vpp_off_vpp_rpcs_are_unavailable() {
    let (world, mut c) = start(44, |s| s.vpp = None).await;
    let unavailable = |e: tonic::Status| {
        assert_eq!(e.code(), Code::Unavailable, "{e:?}");
        assert!(e.message().contains("VPP"), "{}", e.message());
    };
    unavailable(
        c.get_vpp_info(proto::GetVppInfoRequest {})
            .await
            .unwrap_err(),
    );
    unavailable(
        c.get_vpplb_state(proto::GetVpplbStateRequest::default())
            .await
            .unwrap_err(),
    );
    unavailable(
        c.sync_vpplb_state(proto::SyncVpplbStateRequest::default())
            .await
            .unwrap_err(),
    );
    unavailable(
        c.get_vpplb_counters(proto::GetVpplbCountersRequest::default())
            .await
            .unwrap_err(),
    );
    // Health checking goes on.
    let b = c
        .get_backend(proto::GetBackendRequest { name: "s".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.state, "up");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_info_state_sync_and_counters() {
    let (world, mut c) = start(45, |_| {}).await;
    let web = "192.0.2.45";
    until("both VIPs are programmed", || {
        world.weights(web) == w(&[("127.0.45.1", 100), ("127.0.45.2", 100), ("127.0.45.3", 0)])
            && world.weights("198.51.100.45") == w(&[("127.0.45.2", 50), ("127.0.45.9", 100)])
    })
    .await;

    let info = c
        .get_vpp_info(proto::GetVppInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!info.version.is_empty());
    assert!(info.connecttime_ns > 0);

    let state = c
        .get_vpplb_state(proto::GetVpplbStateRequest::default())
        .await
        .unwrap()
        .into_inner();
    let conf = state.conf.expect("lb_conf");
    assert_eq!(conf.ip4_src_address, "192.0.2.254");
    assert_eq!(conf.ip6_src_address, "2001:db8::fe");
    let vips: Vec<(&str, &str, u32)> = state
        .vips
        .iter()
        .map(|v| (v.prefix.as_str(), v.frontend.as_str(), v.port))
        .collect();
    assert_eq!(
        vips,
        [
            ("192.0.2.45/32", "web", 80),
            ("198.51.100.45/32", "api", 443)
        ]
    );
    let v = &state.vips[0];
    assert_eq!(
        (v.protocol, v.encap.as_str(), v.src_ip_sticky),
        (6, "gre4", false)
    );
    let ases: Vec<(&str, u32)> = v
        .ases
        .iter()
        .map(|a| (a.address.as_str(), a.weight))
        .collect();
    assert_eq!(
        ases,
        [("127.0.45.1", 100), ("127.0.45.2", 100), ("127.0.45.3", 0)]
    );
    let buckets: u32 = v.ases.iter().map(|a| a.num_buckets).sum();
    assert_eq!(buckets, v.flow_table_length);
    assert_eq!(v.ases[2].num_buckets, 0);

    let only = c
        .get_vpplb_state(proto::GetVpplbStateRequest {
            frontend: "api".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&only.vips, |v| &v.frontend), ["api"]);

    // A sync of one frontend plans against what the reconciler knows VPP
    // holds: nothing to do.
    let synced = c
        .sync_vpplb_state(proto::SyncVpplbStateRequest {
            frontend: "web".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(synced.ops, Vec::<String>::new());

    // Drift behind the daemon's back: a full sync re-reads VPP and repairs
    // it.
    let key = maglev_core::dataplane::VipKey::host(
        web.parse().unwrap(),
        Some(maglev_core::dataplane::Protocol::Tcp),
        80,
    );
    let drift = maglev_vpp::lb::ops::weight_request(&key, "127.0.45.1".parse().unwrap(), 7, false);
    assert_eq!(world.vpp.sim.with_model(|m| m.set_weight(&drift)), 0);
    let synced = c
        .sync_vpplb_state(proto::SyncVpplbStateRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(synced.ops.len(), 1, "{:?}", synced.ops);
    assert!(synced.ops[0].contains("127.0.45.1"), "{:?}", synced.ops);
    assert_eq!(
        world.weights(web),
        w(&[("127.0.45.1", 100), ("127.0.45.2", 100), ("127.0.45.3", 0)])
    );
    let again = c
        .sync_vpplb_state(proto::SyncVpplbStateRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.ops,
        Vec::<String>::new(),
        "VPP already holds everything"
    );

    // The simulator trickles packets to each VIP; the scrape reads them.
    let counters = eventually("both VIPs have counted packets", || {
        let mut c = c.clone();
        async move {
            let r = c
                .get_vpplb_counters(proto::GetVpplbCountersRequest::default())
                .await
                .ok()?
                .into_inner();
            (r.vips.len() == 2 && r.vips.iter().all(|v| v.first + v.next > 0)).then_some(r)
        }
    })
    .await;
    assert!(counters.scrape_unix_nanos > 0);
    assert_eq!(names(&counters.vips, |v| &v.frontend), ["api", "web"]);
    let api = &counters.vips[0];
    assert_eq!(
        (api.prefix.as_str(), api.protocol, api.port),
        ("198.51.100.45/32", 6, 443)
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_reload_keep_the_running_config_on_error() {
    let (world, mut c) = start(46, |_| {}).await;
    let path = world.config_path().display().to_string();
    let check = c
        .check_config(proto::CheckConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(check.ok, "{check:?}");
    assert_eq!(check.path, path);

    std::fs::write(world.config_path(), "maglev: [unclosed\n").unwrap();
    let check = c
        .check_config(proto::CheckConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!check.ok);
    assert!(check.parse_error.contains("maglev.yaml"), "{check:?}");
    let reload = c
        .reload_config(proto::ReloadConfigRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!reload.ok);
    assert!(
        !reload.parse_error.is_empty() && reload.semantic_error.is_empty(),
        "{reload:?}"
    );

    // A semantic error: a pool naming a backend that does not exist.
    let broken = grpc_common::config(46)
        .replace("{port}", &world.port.to_string())
        .replace("backends: { c: {} }", "backends: { ghost: {} }");
    std::fs::write(world.config_path(), broken).unwrap();
    let reload = c
        .reload_config(proto::ReloadConfigRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!reload.ok);
    assert!(reload.semantic_error.contains("ghost"), "{reload:?}");
    let list = c
        .list_frontends(proto::ListFrontendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        names(&list.frontends, |f| &f.name),
        ["api", "web"],
        "old config kept"
    );

    // A valid file with one more frontend is loaded and programmed.
    let grown = grpc_common::config(46).replace(
        "  frontends:\n",
        "  frontends:\n    extra:\n      address: 203.0.113.46\n      protocol: udp\n      port: 53\n      pools:\n        - name: p\n          backends: { s: {} }\n",
    );
    world.write_config(&grown);
    let reload = c
        .reload_config(proto::ReloadConfigRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(reload.ok, "{reload:?}");
    let list = c
        .list_frontends(proto::ListFrontendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&list.frontends, |f| &f.name), ["api", "extra", "web"]);
    until("extra is programmed", || {
        world.weights("203.0.113.46") == w(&[("127.0.46.9", 100)])
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_info_shows_sync_health() {
    use maglev_vpp::sim::{Fault, FaultAction};
    let (world, c) = start(62, |_| {}).await;
    let info = |pred: fn(&proto::VppInfo) -> bool| {
        let c = c.clone();
        move || {
            let mut c = c.clone();
            async move {
                let i = c
                    .get_vpp_info(proto::GetVppInfoRequest {})
                    .await
                    .ok()?
                    .into_inner();
                pred(&i).then_some(i)
            }
        }
    };
    let done = eventually(
        "a full sync succeeded",
        info(|i| i.last_full_sync_ns > 0 && i.sync_pending.is_empty()),
    )
    .await;
    assert!(!done.sync_full_pending);
    assert_eq!(done.read_errors, 0);

    // VPP refuses every weight change; a (only in web) goes down.
    world.vpp.sim.inject(Fault {
        message: Some("lb_as_set_weight"),
        action: FaultAction::Retval(-1),
        times: usize::MAX,
    });
    world.backends[0].set_healthy(false);
    let stuck = eventually(
        "web is pending after a refusal",
        info(|i| {
            i.sync_pending.iter().any(|p| p.frontend == "web") && i.sync_failures_refused >= 1
        }),
    )
    .await;
    let web = stuck
        .sync_pending
        .iter()
        .find(|p| p.frontend == "web")
        .unwrap();
    assert!(web.waited.is_some());
    assert!(stuck.sync_oldest_pending.is_some());
    assert_eq!(stuck.last_full_sync_ns, done.last_full_sync_ns);

    // VPP accepts again: nothing is pending.
    world.vpp.sim.clear_faults();
    until("a is drained in VPP", || {
        world.weights("192.0.2.62")
            == w(&[("127.0.62.1", 0), ("127.0.62.2", 100), ("127.0.62.3", 0)])
    })
    .await;
    eventually("web is synced", info(|i| i.sync_pending.is_empty())).await;
    world.stop().await;
}
