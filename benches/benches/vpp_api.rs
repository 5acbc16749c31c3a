//! VPP binary API: encode/decode per message, and `lb_as_set_weight` calls
//! per second against the simulator, pipelined and one at a time.
//!
//! `cargo bench -p maglev-benches --bench vpp_api`. With
//! `MAGLEV_BENCH_API_SOCKET=/path/api.sock` the client benches talk to that
//! socket (e.g. a `maglev-vppsim` process, the same one `vpp_papi` is
//! measured against; see docs/performance.md) instead of an in-process
//! simulator.

use std::hint::black_box;
use std::net::IpAddr;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use maglev_core::dataplane::{Encap, VipKey};
use maglev_vpp::Client;
use maglev_vpp::api::messages::*;
use maglev_vpp::api::types::{LbVip, Prefix};
use maglev_vpp::lb::ops::weight_request;
use maglev_vpp::sim::{Sim, SimConfig};

fn vip() -> VipKey {
    VipKey {
        address: "192.0.2.1".parse().unwrap(),
        prefix_len: 32,
        protocol: 6,
        port: 80,
    }
}

fn bench_codec<M: Message + Clone>(c: &mut Criterion, msg: M) {
    let mut buf = BytesMut::with_capacity(4096);
    let env = Envelope {
        msg_id: 101,
        client_index: 0x8000_0001,
        context: 7,
    };
    encode_message(&msg, env, &mut buf);
    let bytes = buf.clone().freeze();
    let mut g = c.benchmark_group(format!("codec/{}", M::NAME));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_message(black_box(&msg), env, &mut buf);
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| decode_message::<M>(black_box(&bytes)).unwrap())
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let pfx = Prefix {
        address: "192.0.2.1".parse().unwrap(),
        len: 32,
    };
    bench_codec(
        c,
        weight_request(&vip(), "10.0.0.1".parse().unwrap(), 50, true),
    );
    bench_codec(
        c,
        LbAsV2Details {
            vip: LbVip {
                pfx,
                protocol: 6,
                port: 80,
            },
            app_srv: "2001:db8::1".parse().unwrap(),
            flags: 1,
            in_use_since: 0,
            weight: 100,
            num_buckets: 512,
        },
    );
    bench_codec(
        c,
        CliInbandReply {
            retval: 0,
            reply: " ip4-gre4 [1] 192.0.2.1/32\n  new_size:1024\n".repeat(20),
        },
    );
    bench_codec(
        c,
        SockclntCreateReply {
            response: 0,
            index: 0x8000_0001,
            message_table: (0..850)
                .map(|i| maglev_vpp::api::types::MessageTableEntry {
                    index: i,
                    name: format!("some_message_name_{i}_deadbeef"),
                })
                .collect(),
        },
    );
}

/// An in-process simulator, or the socket named by `MAGLEV_BENCH_API_SOCKET`.
async fn target() -> (Option<Sim>, Client) {
    let (sim, path) = match std::env::var_os("MAGLEV_BENCH_API_SOCKET") {
        Some(p) => (None, p.into()),
        None => {
            let path =
                std::env::temp_dir().join(format!("maglev-bench-{}.sock", std::process::id()));
            (Some(Sim::start(SimConfig::new(&path)).await.unwrap()), path)
        }
    };
    let client = Client::connect(&path).await.unwrap();
    let _ = client.add_vip(&vip(), Encap::Gre4, false).await;
    let _ = client
        .add_as(&vip(), "10.0.0.1".parse().unwrap(), 100)
        .await;
    (sim, client)
}

fn set_weight(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_sim, client) = rt.block_on(target());
    let address: IpAddr = "10.0.0.1".parse().unwrap();
    let reqs: Vec<LbAsSetWeight> = (0..=100u8)
        .map(|w| weight_request(&vip(), address, w, false))
        .collect();
    const N: usize = 1000;
    let mut g = c.benchmark_group("lb_as_set_weight");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("pipelined_1000", |b| {
        b.iter(|| {
            rt.block_on(async {
                let pending: Vec<_> = (0..N)
                    .map(|i| client.start(&reqs[i % reqs.len()]).unwrap())
                    .collect();
                for p in pending {
                    p.wait().await.unwrap();
                }
            })
        })
    });
    g.bench_function("sequential_1000", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..N {
                    client.call(&reqs[i % reqs.len()]).await.unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, codec, set_weight);
criterion_main!(benches);
