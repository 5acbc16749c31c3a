//! VPP 26.10 never reaps a socket client that closes without
//! `sockclnt_delete` after a large reply, and 16 such dead registrations
//! wedge its API (VPP-WIRE A.10). The simulator reproduces the leak (proven
//! here with a raw connection that does just that), and the client says
//! goodbye on every path that leaves a connection, so a hundred client
//! lifetimes with large replies never trigger it.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use bytes::BytesMut;
use maglev_core::dataplane::{Encap, VipKey};
use maglev_vpp::api::error::HandshakeProblem;
use maglev_vpp::api::frame::{decode_frame, encode_frame};
use maglev_vpp::api::messages::{
    CliInband, CliInbandReply, ControlPing, Envelope, LbAsV2Dump, MsgId, SOCKCLNT_CREATE_ID,
    SockclntCreate, SockclntCreateReply, decode_message,
};
use maglev_vpp::api::table::MessageIds;
use maglev_vpp::lb::ops::{as_request, vip_request};
use maglev_vpp::sim::{Fault, FaultAction, Sim, SimClients, SimConfig};
use maglev_vpp::{CLIENT_NAME, Client, ClientConfig, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use common::sock_path;

const VERBOSE: &str = "show lb vips verbose";

/// VIPs in [`big_sim`], of [`ASES`] ASes each.
const VIPS: u8 = 8;
const ASES: u8 = 64;

/// A simulator whose `show lb vips verbose` (about 32 KB) and AS dump
/// (about 30 KB) are larger than its large-reply threshold, lowered to
/// 16 KiB so that a hundred lifetimes stay quick.
async fn big_sim(name: &str) -> Sim {
    let mut config = SimConfig::new(sock_path(name));
    config.large_reply = 16 * 1024;
    let sim = Sim::start(config).await.unwrap();
    sim.with_model(|m| {
        for v in 0..VIPS {
            let key = VipKey {
                address: IpAddr::from([192, 0, 2, v]),
                prefix_len: 32,
                protocol: 6,
                port: 80,
            };
            assert_eq!(
                m.add_del_vip(&vip_request(&key, Encap::Gre4, false, false), 0),
                0
            );
            for a in 0..ASES {
                let r = as_request(&key, IpAddr::from([10, v, 0, a]), 100, false, false);
                assert_eq!(m.add_del_as(&r, 0), 0);
            }
        }
    });
    let text = sim.with_model(|m| m.show_vips_verbose());
    assert!(
        text.len() > sim.config().large_reply,
        "{} bytes is not a large reply",
        text.len()
    );
    sim
}

/// A connection that registers, asks for `cmd` and reads the whole reply,
/// then closes without `sockclnt_delete`: what a client killed after a
/// large reply does.
async fn raw_lifetime_without_goodbye(sim: &Sim, cmd: &str) -> usize {
    let mut s = UnixStream::connect(sim.api_socket()).await.unwrap();
    let mut out = BytesMut::new();
    let create = SockclntCreate {
        name: "raw".to_owned(),
    };
    let env = Envelope {
        msg_id: SOCKCLNT_CREATE_ID,
        client_index: 0,
        context: 1,
    };
    encode_frame(&create, env, &mut out);
    s.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    let reply = read_frame(&mut s, &mut buf).await;
    let (_, created) = decode_message::<SockclntCreateReply>(&reply).unwrap();
    let (ids, problems) = MessageIds::resolve(&created.message_table);
    assert_eq!(problems, []);
    out.clear();
    let env = Envelope {
        msg_id: ids.get(MsgId::CliInband).unwrap(),
        client_index: created.index,
        context: 2,
    };
    encode_frame(
        &CliInband {
            cmd: cmd.to_owned(),
        },
        env,
        &mut out,
    );
    s.write_all(&out).await.unwrap();
    let reply = read_frame(&mut s, &mut buf).await;
    let (_, text) = decode_message::<CliInbandReply>(&reply).unwrap();
    text.reply.len()
    // `s` dropped: EOF without a goodbye.
}

/// Waits for the simulator's registrations to satisfy `pred`; fails
/// (rather than hangs) if they never do.
async fn until(sim: &Sim, what: &str, pred: impl FnMut(&SimClients) -> bool) -> SimClients {
    match tokio::time::timeout(Duration::from_secs(10), sim.clients_until(pred)).await {
        Ok(c) => c,
        Err(_) => panic!("never {what}: {:?}", sim.clients()),
    }
}

async fn read_frame(s: &mut UnixStream, buf: &mut BytesMut) -> bytes::Bytes {
    loop {
        if let Some(p) = decode_frame(buf).unwrap() {
            return p;
        }
        assert_ne!(s.read_buf(buf).await.unwrap(), 0, "EOF before a frame");
    }
}

#[tokio::test(start_paused = true)]
async fn closing_without_goodbye_after_a_large_reply_leaks_and_16_wedge_the_api() {
    let sim = big_sim("leak").await;
    // A small reply: VPP reaps the closed connection.
    raw_lifetime_without_goodbye(&sim, "show version").await;
    let c = until(&sim, "reaped", |c| c.closed == 1).await;
    assert_eq!(c.dead.len(), 0);
    for i in 1..=16 {
        let len = raw_lifetime_without_goodbye(&sim, VERBOSE).await;
        assert!(len > sim.config().large_reply);
        let c = until(&sim, "leaked", |c| c.dead.len() == i).await;
        assert!(c.live.is_empty(), "{c:?}");
    }
    // The 17th handshake is never answered, nor is anything else.
    let config = ClientConfig {
        timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    };
    let err = Client::connect_with(sim.api_socket(), config)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Handshake {
                problem: HandshakeProblem::Timeout(_),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_clears_the_dead_registrations() {
    let mut sim = big_sim("leak-restart").await;
    for _ in 0..16 {
        raw_lifetime_without_goodbye(&sim, VERBOSE).await;
    }
    until(&sim, "leaked 16", |c| c.dead.len() == 16).await;
    sim.restart().await.unwrap();
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    assert!(vpp.ping().await.is_ok());
    assert_eq!(sim.clients().dead.len(), 0);
}

/// One client lifetime with large replies, left in one of three ways.
async fn lifetime(sim: &Sim, i: usize) {
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    // A large reply: the CLI text, or a big dump.
    if i.is_multiple_of(2) {
        let text = vpp.cli(VERBOSE).await.unwrap();
        assert!(text.len() > sim.config().large_reply);
    } else {
        let ases = vpp.dump(&LbAsV2Dump::default()).await.unwrap();
        assert_eq!(ases.len(), usize::from(VIPS) * usize::from(ASES));
    }
    match i % 3 {
        0 => drop(vpp),
        1 => {
            vpp.reconnect().await.unwrap();
            vpp.cli(VERBOSE).await.unwrap();
            drop(vpp);
        }
        _ => vpp.close().await.unwrap(),
    }
}

#[tokio::test]
async fn a_hundred_client_lifetimes_with_large_replies_never_leak() {
    let sim = big_sim("lifetimes").await;
    let mut goodbyes = 0;
    for i in 0..100 {
        lifetime(&sim, i).await;
        goodbyes += if i % 3 == 1 { 2 } else { 1 };
        // The goodbye of a dropped client runs on its own task: wait for
        // the simulator to have seen it.
        let c = until(&sim, "said goodbye", |c| c.deleted == goodbyes).await;
        assert_eq!((c.dead.len(), c.closed), (0, 0), "lifetime {i}: {c:?}");
        assert!(c.live.is_empty(), "lifetime {i}: {c:?}");
    }
    // The simulator still answers.
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    assert!(vpp.ping().await.is_ok());
    assert_eq!(sim.clients().live, [CLIENT_NAME]);
}

#[tokio::test]
async fn a_connect_that_fails_after_registration_says_goodbye() {
    let mut config = SimConfig::new(sock_path("incompat-bye"));
    config.tamper = vec![(MsgId::LbAsSetWeight, None)];
    let sim = Sim::start(config).await.unwrap();
    let err = Client::connect(sim.api_socket()).await.unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    let c = until(&sim, "said goodbye", |c| c.deleted == 1).await;
    assert!(c.live.is_empty() && c.dead.is_empty(), "{c:?}");
}

#[tokio::test]
async fn a_client_killed_mid_request_still_leaves_vpp_answering() {
    // Dropping the client while a large reply is on its way: the goodbye
    // waits behind it, and the registration is freed.
    let sim = big_sim("mid-request").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let pending = vpp
        .start(&CliInband {
            cmd: VERBOSE.to_owned(),
        })
        .unwrap();
    let ping = vpp.start(&ControlPing).unwrap();
    drop(vpp);
    assert!(pending.wait().await.unwrap_err().is_disconnected());
    assert!(ping.wait().await.unwrap_err().is_disconnected());
    let c = until(&sim, "said goodbye", |c| c.deleted == 1).await;
    assert!(c.dead.is_empty(), "{c:?}");
}

#[tokio::test]
async fn closing_while_vpp_is_slow_with_a_large_reply_waits_for_it_then_says_goodbye() {
    // VPP takes longer than the goodbye timeout for a large reply in
    // flight: leaving must not close the socket under that reply (the leak
    // above); the goodbye waits behind it, up to the reply timeout.
    let sim = big_sim("slow-mid-request").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    sim.inject(Fault::once(
        "cli_inband",
        FaultAction::Delay(Duration::from_millis(1500)),
    ));
    let pending = vpp
        .start(&CliInband {
            cmd: VERBOSE.to_owned(),
        })
        .unwrap();
    // The request is out before we leave.
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    for _ in 0..2000 {
        if sim.pending_faults() == 0 {
            break;
        }
        tick.tick().await;
    }
    assert_eq!(sim.pending_faults(), 0, "the request never reached VPP");
    assert!(vpp.close().await.is_ok(), "VPP answered the goodbye");
    assert!(pending.wait().await.unwrap_err().is_disconnected());
    let c = until(&sim, "said goodbye", |c| c.deleted == 1).await;
    assert!(c.dead.is_empty() && c.live.is_empty(), "{c:?}");
}
