//! A segment that shrinks under the reader: never `SIGBUS`.
//!
//! VPP seals its stats memfd with `F_SEAL_SHRINK` (and so does the
//! simulator), so a mapped segment can never shrink; a segment that could
//! (a regular file, a memfd without seals that cannot be sealed, as VPP's
//! hugepage segment) is read with `pread`, and a peer that truncates it
//! gives [`StatsError::Truncated`].
#![cfg(feature = "sim")]

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use maglev_vpp::stats::sim::SegmentWriter;
use maglev_vpp::stats::{EntryKind, LbCounter, Scrape, SegmentAccess, StatSegment, StatsError};
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

fn seals(fd: impl AsFd) -> SealFlag {
    SealFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GET_SEALS).unwrap())
}

/// A writer holding one LB counter (pool indexes 0..4, 2 threads) with a
/// value in VIP 1's cells.
fn populated(mut w: SegmentWriter) -> SegmentWriter {
    w.add_scalar("/sys/heartbeat", 7).unwrap();
    let i = w
        .add_counters(LbCounter::NextPacket.name(), EntryKind::Simple, 2, 4)
        .unwrap();
    w.set(i, 0, 1, 40, 0).unwrap();
    w.set(i, 1, 1, 2, 0).unwrap();
    w
}

fn truncate(fd: &OwnedFd, len: i64) -> nix::Result<()> {
    nix::unistd::ftruncate(fd, len)
}

#[test]
fn the_simulator_seals_its_memfd_as_vpp_does_so_it_is_mapped() {
    let w = populated(SegmentWriter::new(1 << 20).unwrap());
    assert!(
        seals(w.fd()).contains(SealFlag::F_SEAL_SHRINK),
        "VPP's clib_mem_vm_create_fd adds F_SEAL_SHRINK"
    );
    let seg = StatSegment::from_fd(w.fd().try_clone().unwrap()).unwrap();
    assert_eq!(seg.access(), SegmentAccess::Mapped);
    // A peer holding the descriptor cannot shrink it...
    assert_eq!(truncate(w.fd(), 4096), Err(nix::Error::EPERM));
    // ...but may grow it (VPP does not, but the seal allows it).
    truncate(w.fd(), 2 << 20).unwrap();
    assert_eq!(seg.simple(LbCounter::NextPacket.name()).unwrap().sum(1), 42);
}

#[test]
fn a_memfd_that_allows_sealing_is_sealed_by_the_reader_then_mapped() {
    let fd = memfd_create(c"peer", MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC).unwrap();
    let img = maglev_vpp::stats::fuzzing::seed();
    nix::unistd::write(&fd, &img).unwrap();
    assert!(!seals(&fd).contains(SealFlag::F_SEAL_SHRINK));
    let seg = StatSegment::from_fd(fd.try_clone().unwrap()).unwrap();
    assert_eq!(seg.access(), SegmentAccess::Mapped);
    assert!(seals(&fd).contains(SealFlag::F_SEAL_SHRINK));
    assert_eq!(truncate(&fd, 0), Err(nix::Error::EPERM));
    assert_eq!(seg.heartbeat().unwrap(), 5);
}

#[test]
fn an_unsealable_memfd_is_read_with_pread_and_shrinking_is_an_error() {
    let w = populated(SegmentWriter::new_unsealed(1 << 20).unwrap());
    assert!(seals(w.fd()).contains(SealFlag::F_SEAL_SEAL));
    let fd = w.fd().try_clone().unwrap();
    let seg = StatSegment::from_fd(fd.try_clone().unwrap()).unwrap();
    assert_eq!(seg.access(), SegmentAccess::Pread);
    let mut scrape = Scrape::new([1, 3], []);
    assert_eq!(scrape.run(&seg).unwrap().vip(1).unwrap().next_packet, 42);
    assert_eq!(seg.heartbeat().unwrap(), 7);

    // The peer cuts the segment after its directory: the header still
    // reads, the counter rows do not.
    drop(w);
    truncate(&fd, 8192).unwrap();
    let size = seg.size();
    assert!(matches!(
        seg.simple(LbCounter::NextPacket.name()),
        Err(StatsError::Truncated { offset, size: s }) if offset >= 8192 && s == size
    ));
    assert_eq!(seg.list().unwrap().len(), 2, "the directory is still there");
    assert!(matches!(
        seg.read_index(1),
        Err(StatsError::Truncated { .. })
    ));
    // Then to nothing: even the header is gone.
    truncate(&fd, 0).unwrap();
    assert!(matches!(
        seg.heartbeat(),
        Err(StatsError::Truncated { offset, .. }) if offset < 40
    ));
    let err = scrape.run(&seg).unwrap_err();
    assert!(matches!(err, StatsError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("shrank under the reader"), "{err}");
}

#[test]
fn a_reader_racing_a_peer_that_truncates_gets_an_error_not_sigbus() {
    let w = populated(SegmentWriter::new_unsealed(1 << 20).unwrap());
    let fd = w.fd().try_clone().unwrap();
    let seg = StatSegment::from_fd(fd.try_clone().unwrap()).unwrap();
    drop(w);
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let reads = reads.clone();
        std::thread::spawn(move || {
            let mut scrape = Scrape::new([1, 2, 3], []);
            loop {
                match scrape.run(&seg) {
                    Ok(snap) => {
                        assert_eq!(snap.vip(1).unwrap().next_packet, 42);
                        reads.fetch_add(1, Ordering::Release);
                    }
                    Err(e) => return e,
                }
            }
        })
    };
    // Truncate once the reader is known to be reading (no clocks).
    while reads.load(Ordering::Acquire) < 3 {
        std::thread::yield_now();
    }
    truncate(&fd, 0).unwrap();
    let err = reader.join().expect("reader panicked");
    assert!(matches!(err, StatsError::Truncated { .. }), "{err}");
}

#[test]
fn a_regular_file_is_read_with_pread_and_shrinking_is_an_error() {
    let path = std::env::temp_dir().join(format!("maglev-stats-trunc-{}.img", std::process::id()));
    std::fs::write(&path, maglev_vpp::stats::fuzzing::seed()).unwrap();
    let seg = StatSegment::open(&path).unwrap();
    assert_eq!(seg.access(), SegmentAccess::Pread);
    assert_eq!(seg.heartbeat().unwrap(), 5);
    assert_eq!(seg.simple("first session packet").unwrap().sum(1), 9);

    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(5000).unwrap();
    assert!(matches!(
        seg.simple("first session packet"),
        Err(StatsError::Truncated { .. })
    ));
    file.set_len(0).unwrap();
    assert!(matches!(seg.heartbeat(), Err(StatsError::Truncated { .. })));
    let _ = std::fs::remove_file(&path);
}
