//! Readers racing a writer that reallocates vectors, reuses directory
//! slots and bumps epochs: every read is a consistent snapshot of one
//! generation, or `Busy`; never a torn mix.
#![cfg(feature = "sim")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use maglev_vpp::stats::sim::SegmentWriter;
use maglev_vpp::stats::{Counter, EntryKind, LbCounter, ROUTE_TO, Scrape, StatSegment, StatsError};

const THREADS: usize = 4;
const GENERATIONS: u64 = 300;
const VIPS: [u32; 5] = [1, 59, 60, 2999, 9999];
const ROUTES: [u32; 4] = [0, 59, 2999, 3001];

/// Vector length in generation `g`: alternates so blocks move.
fn len_of(g: u64) -> usize {
    [60, 3000, 100, 3002][g as usize % 4]
}

/// Generation `g`, written in one structural change: every counter entry
/// removed and registered again (new blocks, slots reused in another
/// order) at `len_of(g)`, every cell = `g` (routes: `g` packets, `2g`
/// bytes), and the scalar `/test/generation` = `g`.
fn write_generation(w: &mut SegmentWriter, g: u64) {
    w.change(|w| {
        let names: Vec<&str> = LbCounter::ALL
            .iter()
            .map(|c| c.name())
            .chain([ROUTE_TO])
            .collect();
        for name in &names {
            if let Some(i) = w.index_of(name) {
                w.remove(i)?;
            }
        }
        let len = len_of(g);
        for name in names.iter().rev() {
            let kind = if *name == ROUTE_TO {
                EntryKind::Combined
            } else {
                EntryKind::Simple
            };
            let i = w.add_counters(name, kind, THREADS, len)?;
            for t in 0..THREADS {
                for c in 0..len {
                    w.set(i, t, c, g, 2 * g)?;
                }
            }
        }
        let gen_ix = w.index_of("/test/generation").expect("generation scalar");
        w.set_value(gen_ix, g)
    })
    .expect("generation");
}

/// Checks one scrape against the generation it claims to be.
fn check_scrape(scrape: &mut Scrape, seg: &StatSegment) -> Result<u64, StatsError> {
    let snap = scrape.run(seg)?;
    let g = snap.vip(1).unwrap().next_packet / THREADS as u64;
    let len = len_of(g);
    for vip in VIPS {
        let want = if (vip as usize) < len {
            THREADS as u64 * g
        } else {
            0
        };
        let c = snap.vip(vip).unwrap();
        for k in LbCounter::ALL {
            assert_eq!(
                c.get(k),
                want,
                "torn scrape: vip {vip} {k:?} in generation {g} (len {len})"
            );
        }
    }
    for r in ROUTES {
        let want = if (r as usize) < len {
            Counter {
                packets: THREADS as u64 * g,
                bytes: 2 * THREADS as u64 * g,
            }
        } else {
            Counter::default()
        };
        assert_eq!(
            snap.route(r).unwrap(),
            want,
            "torn scrape: route {r} in generation {g}"
        );
    }
    Ok(g)
}

/// Checks a whole-vector read and the generation scalar.
fn check_full(seg: &StatSegment) -> Result<(), StatsError> {
    let v = seg.simple(LbCounter::Untracked.name())?;
    assert_eq!(v.threads(), THREADS);
    let g = v.get(0, 0);
    let len = len_of(g);
    for t in 0..THREADS {
        assert_eq!(
            v.thread(t).len(),
            len,
            "torn vector length in generation {g}"
        );
        assert!(
            v.thread(t).iter().all(|&x| x == g),
            "torn cells in generation {g}"
        );
    }
    Ok(())
}

#[test]
fn readers_see_whole_generations_or_busy() {
    let mut w = SegmentWriter::new(4 << 20).unwrap();
    w.add_scalar("/sys/heartbeat", 1).unwrap();
    w.add_scalar("/test/generation", 0).unwrap();
    write_generation(&mut w, 1);
    let fd = w.fd().try_clone().unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let consistent = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let loops = Arc::new(AtomicU64::new(0));
    // The readers' segments, shared so the writer can see their retries.
    let segs: Vec<Arc<StatSegment>> = (0..2)
        .map(|r| {
            let mut seg = StatSegment::from_fd(fd.try_clone().unwrap()).unwrap();
            // One reader gives up quickly, to see `Busy` too.
            seg.set_max_attempts(if r == 0 { 2 } else { 10_000 });
            Arc::new(seg)
        })
        .collect();
    let readers: Vec<_> = segs
        .iter()
        .enumerate()
        .map(|(r, seg)| {
            let (seg, done, consistent, busy, loops) = (
                seg.clone(),
                done.clone(),
                consistent.clone(),
                busy.clone(),
                loops.clone(),
            );
            std::thread::spawn(move || {
                let mut scrape = Scrape::new(VIPS, ROUTES);
                let mut last = 0;
                while !done.load(Ordering::Acquire) {
                    match check_scrape(&mut scrape, &seg) {
                        Ok(g) => {
                            assert!(g >= last, "generations went back: {g} after {last}");
                            last = g;
                            consistent.fetch_add(1, Ordering::Release);
                        }
                        Err(StatsError::Busy { .. }) => {
                            busy.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("reader {r}: {e}"),
                    }
                    match check_full(&seg) {
                        Ok(()) | Err(StatsError::Busy { .. }) => {}
                        Err(e) => panic!("reader {r}: {e}"),
                    }
                    match seg.scalar("/test/generation") {
                        Ok(g) => assert!(g >= 1),
                        Err(StatsError::Busy { .. }) => {}
                        Err(e) => panic!("reader {r}: {e}"),
                    }
                    loops.fetch_add(1, Ordering::Release);
                }
                // Quiet now: the last generation, exactly (a quiet segment
                // needs one window, so even the impatient reader gets it).
                assert_eq!(check_scrape(&mut scrape, &seg).unwrap(), GENERATIONS);
                check_full(&seg).unwrap();
                scrape.resolutions()
            })
        })
        .collect();
    let retries = || segs.iter().map(|s| s.retries()).sum::<u64>();

    // First a race that certainly happens: hold a change open (in_progress
    // = 1) until a reader has retried because of it. The readers loop
    // without end, so this waits for an event, not for a time.
    let before = retries();
    w.change(|_| {
        while retries() == before && !readers.iter().any(|r| r.is_finished()) {
            std::thread::yield_now();
        }
        Ok(())
    })
    .unwrap();
    assert!(retries() > before, "a reader raced the open change");
    // Then one consistent scrape in this quiet epoch, before the
    // generations move it on.
    let quiet = consistent.load(Ordering::Acquire);
    while consistent.load(Ordering::Acquire) == quiet && !readers.iter().any(|r| r.is_finished()) {
        std::thread::yield_now();
    }

    for g in 2..=GENERATIONS {
        write_generation(&mut w, g);
        w.bump_epoch().unwrap();
        // Let the readers through a few loops (some in quiet windows, some
        // racing the next change) before the next generation; no clocks.
        let seen = loops.load(Ordering::Acquire);
        while loops.load(Ordering::Acquire) < seen + 2 && !readers.iter().any(|r| r.is_finished()) {
            std::thread::yield_now();
        }
    }
    done.store(true, Ordering::Release);
    let mut resolutions = 0;
    for r in readers {
        let n = r.join().expect("reader panicked");
        assert!(n >= 1);
        resolutions += n;
    }
    // Each reader resolved at least once; the one that scraped the quiet
    // epoch resolved again for the last generation's epoch.
    assert!(
        resolutions >= 3,
        "a reader saw the epoch change: {resolutions}"
    );
    eprintln!(
        "{} consistent scrapes, {} busy, {} retried windows, {resolutions} resolutions, epoch {}",
        consistent.load(Ordering::Relaxed),
        busy.load(Ordering::Relaxed),
        retries(),
        w.epoch()
    );
}
