//! The reader against a real VPP 26.10 stats segment
//! (`../shared/fixtures/vpp-26.10/statseg-w1.bin.zst`): every value must
//! equal what `vpp_papi` read from the same segment
//! (`statseg-w1.expected.json`).

use std::path::PathBuf;

use maglev_vpp::stats::{
    EntryKind, LbCounter, ROUTE_TO, Scrape, StatSegment, StatValue, StatsError,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/vpp-26.10")
}

fn image() -> Vec<u8> {
    let zst = std::fs::read(fixtures().join("statseg-w1.bin.zst")).expect("fixture segment");
    zstd::decode_all(&zst[..]).expect("zstd")
}

fn expected() -> Value {
    let text =
        std::fs::read_to_string(fixtures().join("statseg-w1.expected.json")).expect("fixture json");
    serde_json::from_str(&text).expect("json")
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("number")
}

fn check(seg: &StatSegment, want: &Value) {
    assert_eq!(seg.directory_len().unwrap() as u64, u(&want["num_entries"]));

    // The four LB counters, [thread][vip pool index].
    for c in LbCounter::ALL {
        let got = seg.simple(c.name()).unwrap();
        let rows = want["simple_counters"][c.name()].as_array().unwrap();
        assert_eq!(got.threads(), rows.len(), "{}", c.name());
        for (t, row) in rows.iter().enumerate() {
            let row: Vec<u64> = row.as_array().unwrap().iter().map(u).collect();
            assert_eq!(got.thread(t), &row[..], "{} thread {t}", c.name());
        }
    }

    // /net/route/to for each VIP's stats index.
    let route = seg.combined(ROUTE_TO).unwrap();
    assert_eq!(route.thread(0).len() as u64, u(&want["net_route_to_len"]));
    for (prefix, idx) in want["route_stats_index"].as_object().unwrap() {
        let idx = u(idx) as usize;
        for (t, cell) in want["net_route_to"][prefix]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let got = route.get(t, idx);
            assert_eq!(
                (got.packets, got.bytes),
                (u(&cell[0]), u(&cell[1])),
                "{prefix} thread {t}"
            );
        }
    }
}

#[test]
fn real_segment_reads_as_vpp_papi_saw_it() {
    let bytes = image();
    let want = expected();
    let seg = StatSegment::from_bytes(&bytes).unwrap();
    check(&seg, &want);

    // The same through a file mapping (pointers are relative to `base`).
    let dir = std::env::temp_dir().join(format!("maglev-stats-fixture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("statseg-w1.bin");
    std::fs::write(&path, &bytes).unwrap();
    let mapped = StatSegment::open(&path).unwrap();
    check(&mapped, &want);
    assert!(mapped.identity().is_some());
    drop(mapped);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scrape_of_the_real_segment_sums_threads() {
    let seg = StatSegment::from_bytes(&image()).unwrap();
    let want = expected();
    let routes: Vec<u32> = want["route_stats_index"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| u(v) as u32)
        .collect();
    let mut scrape = Scrape::new([1, 2, 3, 4, 999_999], routes);
    let snap = scrape.run(&seg).unwrap().clone();
    assert_eq!(snap.threads, 2);
    for vip in [1u32, 2, 3] {
        let got = snap.vip(vip).unwrap();
        for c in LbCounter::ALL {
            let rows = want["simple_counters"][c.name()].as_array().unwrap();
            let sum: u64 = rows.iter().map(|r| u(&r[vip as usize])).sum();
            assert_eq!(got.get(c), sum, "vip {vip} {}", c.name());
        }
    }
    assert_eq!(snap.vip(1).unwrap().next_packet, 999);
    assert_eq!(snap.vip(2).unwrap().first_packet, 1);
    // Beyond the vectors: zero.
    assert_eq!(snap.vip(4).unwrap(), Default::default());
    assert_eq!(snap.vip(999_999).unwrap(), Default::default());
    for (prefix, idx) in want["route_stats_index"].as_object().unwrap() {
        let cells = want["net_route_to"][prefix].as_array().unwrap();
        let got = snap.route(u(idx) as u32).unwrap();
        assert_eq!(got.packets, cells.iter().map(|c| u(&c[0])).sum::<u64>());
        assert_eq!(got.bytes, cells.iter().map(|c| u(&c[1])).sum::<u64>());
    }
    // Same epoch: the plan is reused.
    scrape.run(&seg).unwrap();
    assert_eq!(scrape.resolutions(), 1);
}

#[test]
fn real_segment_directory_and_other_types() {
    let seg = StatSegment::from_bytes(&image()).unwrap();
    let list = seg.list().unwrap();
    let by_name = |n: &str| {
        list.iter()
            .find(|e| e.name == n)
            .unwrap_or_else(|| panic!("{n} listed"))
    };
    assert_eq!(by_name("/sys/heartbeat").index, 0);
    assert_eq!(by_name("/sys/heartbeat").kind, EntryKind::Scalar);
    assert_eq!(by_name(ROUTE_TO).kind, EntryKind::Combined);
    assert_eq!(by_name("first session packet").kind, EntryKind::Simple);
    assert!(seg.heartbeat().unwrap() > 0);
    assert_eq!(seg.find("/sys/heartbeat").unwrap().unwrap().index, 0);
    assert!(seg.find("/no/such/entry").unwrap().is_none());

    // A name vector: interface names.
    let names = seg.names("/if/names").unwrap();
    assert_eq!(names[0].as_deref(), Some("local0"));

    // A symlink resolves to one column of its target.
    let link = list
        .iter()
        .find(|e| e.kind == EntryKind::Symlink)
        .expect("a symlink");
    let (_, value) = seg.read_index(link.index).unwrap();
    assert!(
        matches!(
            value,
            StatValue::SimpleColumn(_) | StatValue::CombinedColumn(_)
        ),
        "{value:?}"
    );

    // A gauge (26.02+).
    if let Some(g) = list.iter().find(|e| e.kind == EntryKind::Gauge) {
        assert!(matches!(
            seg.read_index(g.index).unwrap().1,
            StatValue::Gauge(_)
        ));
    }

    assert!(matches!(
        seg.simple(ROUTE_TO),
        Err(StatsError::WrongType {
            found: EntryKind::Combined,
            ..
        })
    ));
    assert!(matches!(
        seg.simple("/nope"),
        Err(StatsError::NotFound { .. })
    ));
}
