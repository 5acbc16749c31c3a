//! The only module of this crate with `unsafe`: a raw view of the shared
//! memory of a stats segment, and ownership of file descriptors received
//! over `SCM_RIGHTS`.
//!
//! A [`Region`] is either memory (a mapping that cannot shrink, or an owned
//! buffer) read with volatile/atomic loads, or a file read with `pread`
//! (a segment that could shrink under a mapping and raise `SIGBUS`): the
//! same bounds-checked accessors serve both, and a `pread` that comes back
//! short is a [`Fault::Truncated`], never a signal.
//!
//! VPP (or our simulator) writes the segment while we read it, so Rust must
//! never see a reference (`&[u8]`, `&T`) into it: [`Region`] keeps a raw base
//! pointer and a length, checks every offset against that length (and its
//! alignment) before touching memory, and copies values out with volatile or
//! atomic loads. Values read here may be garbage until the caller's epoch
//! check passes; the checks here only guarantee that every access stays
//! inside the mapping, so garbage can never become undefined behaviour.
//!
//! **Invariant:** every pointer dereferenced in this module is
//! `base + offset` with `offset + size_of::<T>() <= len` and `offset`
//! aligned for `T`; `base..base + len` is a live mapping that cannot shrink
//! (or an owned buffer) for as long as the [`Region`] exists. A file-backed
//! region has a null `base` that is never dereferenced.
#![allow(
    unsafe_code,
    reason = "maps and reads shared memory written by another process; every block carries a SAFETY comment"
)]

use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

use memmap2::MmapRaw;

/// What keeps the memory of a [`Region`] alive.
#[derive(Debug)]
enum Backing {
    /// A `mmap` of a file or memfd (read-only or read-write).
    Map(#[allow(dead_code, reason = "only owns the memory that `ptr` points into")] MmapRaw),
    /// A heap buffer of `u64`s (8-byte aligned), for images and fuzzing.
    Owned(#[allow(dead_code, reason = "only owns the memory that `ptr` points into")] Box<[u64]>),
    /// A file or memfd read with `pread` (`ptr` is null).
    File(OwnedFd),
}

/// A bounds-checked raw view of a stats segment.
#[derive(Debug)]
pub(crate) struct Region {
    /// Start of the memory; null for a [`Backing::File`] region.
    ptr: *mut u8,
    len: usize,
    #[cfg_attr(
        not(feature = "sim"),
        allow(dead_code, reason = "only the simulator writes")
    )]
    writable: bool,
    _backing: Backing,
}

// SAFETY: `Region` only hands out copies of the bytes it points to, made
// with volatile/atomic accesses; the pointer is never exposed as a
// reference, so sharing it between threads is as safe as sharing the
// mapping itself (which other processes already do).
unsafe impl Send for Region {}
// SAFETY: as above: all accesses through `&Region` are volatile or atomic
// loads and (for writable regions) atomic or volatile stores of plain
// integers; no reference into the memory is ever created.
unsafe impl Sync for Region {}

/// An access outside the region or at a misaligned offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `offset + size` is beyond the end of the region.
    OutOfBounds,
    /// `offset` is not a multiple of the size of the value.
    Misaligned,
    /// A `pread` of a file-backed region came back short: the file shrank
    /// below the size it had when it was opened.
    Truncated,
    /// A `pread` of a file-backed region failed.
    Io(Errno),
}

impl Region {
    /// Wraps a mapping. `writable` says whether stores are allowed (the
    /// mapping must then have been made with `PROT_WRITE`).
    pub(crate) fn from_map(map: MmapRaw, writable: bool) -> Self {
        let ptr = map.as_mut_ptr();
        let len = map.len();
        Region {
            ptr,
            len,
            writable,
            _backing: Backing::Map(map),
        }
    }

    /// Copies `bytes` into an owned, 8-byte aligned buffer (for segment
    /// images held in memory and for fuzzing). Read-only.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        let words = bytes.len().div_ceil(8).max(1);
        let mut buf = vec![0u64; words].into_boxed_slice();
        for (word, chunk) in buf.iter_mut().zip(bytes.chunks(8)) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_ne_bytes(w);
        }
        let ptr = buf.as_mut_ptr().cast::<u8>();
        Region {
            ptr,
            len: bytes.len(),
            writable: false,
            _backing: Backing::Owned(buf),
        }
    }

    /// A region of the first `len` bytes of the file behind `fd`, read with
    /// `pread` (for segments that may shrink: nothing is mapped, so a
    /// shrinking file gives [`Fault::Truncated`] instead of `SIGBUS`).
    /// Read-only.
    pub(crate) fn from_file(fd: OwnedFd, len: usize) -> Self {
        Region {
            ptr: std::ptr::null_mut(),
            len,
            writable: false,
            _backing: Backing::File(fd),
        }
    }

    /// Size of the region in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is memory (mapped or owned) rather than a file
    /// read with `pread`.
    pub(crate) fn is_memory(&self) -> bool {
        !matches!(self._backing, Backing::File(_))
    }

    /// The file of a file-backed region.
    #[inline]
    fn file(&self) -> Option<&OwnedFd> {
        match &self._backing {
            Backing::File(fd) => Some(fd),
            _ => None,
        }
    }

    /// `pread`s `out.len()` bytes at `offset` (already bounds-checked)
    /// from `fd`, all of them or a fault.
    fn pread(fd: &OwnedFd, offset: usize, out: &mut [u8]) -> Result<(), Fault> {
        let mut done = 0;
        while done < out.len() {
            let at = i64::try_from(offset + done).map_err(|_| Fault::OutOfBounds)?;
            match nix::sys::uio::pread(fd, &mut out[done..], at) {
                Ok(0) => return Err(Fault::Truncated),
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Fault::Io(e)),
            }
        }
        Ok(())
    }

    /// `out.len()` bytes at `offset` (bounds-checked) of a file-backed
    /// region. Out of line: memory regions never come here, and the hot
    /// loads stay small.
    #[cold]
    #[inline(never)]
    fn file_bytes(&self, offset: usize, out: &mut [u8]) -> Result<(), Fault> {
        match self.file() {
            Some(fd) => Self::pread(fd, offset, out),
            None => Err(Fault::OutOfBounds),
        }
    }

    /// `N` bytes at `offset` (bounds-checked) of a file-backed region.
    #[inline]
    fn file_array<const N: usize>(&self, offset: usize) -> Result<[u8; N], Fault> {
        let mut b = [0u8; N];
        self.file_bytes(offset, &mut b)?;
        Ok(b)
    }

    /// `out.len()` words at `offset` (bounds-checked) of a file-backed
    /// region: one `pread` per 512 words, through a stack buffer.
    #[cold]
    #[inline(never)]
    fn file_u64s(&self, offset: usize, out: &mut [u64]) -> Result<(), Fault> {
        let mut buf = [0u8; 4096];
        for (k, chunk) in out.chunks_mut(buf.len() / 8).enumerate() {
            let bytes = &mut buf[..8 * chunk.len()];
            self.file_bytes(offset + k * 4096, bytes)?;
            for (slot, w) in chunk.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut a = [0u8; 8];
                a.copy_from_slice(w);
                *slot = u64::from_ne_bytes(a);
            }
        }
        Ok(())
    }

    /// Checks that `[offset, offset + size)` lies inside the region and that
    /// `offset` is a multiple of `align`.
    #[inline]
    fn check(&self, offset: usize, size: usize, align: usize) -> Result<(), Fault> {
        match offset.checked_add(size) {
            Some(end) if end <= self.len => {}
            _ => return Err(Fault::OutOfBounds),
        }
        // The base is page- or 8-byte aligned, so offset alignment is
        // address alignment.
        if !offset.is_multiple_of(align) {
            return Err(Fault::Misaligned);
        }
        Ok(())
    }

    /// Volatile load of the byte at `offset`.
    #[inline]
    pub(crate) fn u8(&self, offset: usize) -> Result<u8, Fault> {
        self.check(offset, 1, 1)?;
        if self.ptr.is_null() {
            return Ok(self.file_array::<1>(offset)?[0]);
        }
        // SAFETY: `check` proved `offset < len`, so the byte is inside the
        // live region; `u8` has no alignment requirement.
        Ok(unsafe { self.ptr.add(offset).read_volatile() })
    }

    /// Volatile load of the native-endian `u32` at `offset` (4-aligned).
    #[inline]
    pub(crate) fn u32(&self, offset: usize) -> Result<u32, Fault> {
        self.check(offset, 4, 4)?;
        if self.ptr.is_null() {
            return Ok(u32::from_ne_bytes(self.file_array(offset)?));
        }
        // SAFETY: `check` proved the 4 bytes are inside the region and the
        // address is 4-aligned (and the region is memory, not a file).
        Ok(unsafe { self.ptr.add(offset).cast::<u32>().read_volatile() })
    }

    /// Volatile load of the native-endian `u64` at `offset` (8-aligned).
    #[inline]
    pub(crate) fn u64(&self, offset: usize) -> Result<u64, Fault> {
        self.check(offset, 8, 8)?;
        if self.ptr.is_null() {
            return Ok(u64::from_ne_bytes(self.file_array(offset)?));
        }
        // SAFETY: `check` proved the 8 bytes are inside the region and the
        // address is 8-aligned (and the region is memory, not a file).
        Ok(unsafe { self.ptr.add(offset).cast::<u64>().read_volatile() })
    }

    /// Acquire load of the `u64` at `offset` (8-aligned), for the header's
    /// `epoch` and `in_progress` words.
    #[inline]
    pub(crate) fn u64_acquire(&self, offset: usize) -> Result<u64, Fault> {
        if self.ptr.is_null() {
            // The `pread` is a system call that copies from the file's
            // pages; the fence orders our later reads after it.
            let v = self.u64(offset)?;
            std::sync::atomic::fence(Ordering::Acquire);
            return Ok(v);
        }
        Ok(self.atomic(offset)?.load(Ordering::Acquire))
    }

    /// The `AtomicU64` at `offset`, after the bounds and alignment check
    /// (memory regions only).
    #[inline]
    fn atomic(&self, offset: usize) -> Result<&AtomicU64, Fault> {
        self.check(offset, 8, 8)?;
        if self.ptr.is_null() {
            return Err(Fault::OutOfBounds);
        }
        // SAFETY: the 8 bytes are inside the live region and 8-aligned
        // (checked above); the region outlives the returned reference,
        // which borrows `self`. `AtomicU64` has interior mutability, so a
        // shared reference to memory that others write is allowed, and all
        // our own accesses to these header words are atomic.
        Ok(unsafe { AtomicU64::from_ptr(self.ptr.add(offset).cast::<u64>()) })
    }

    /// Copies `out.len()` consecutive `u64`s starting at `offset`.
    #[inline]
    pub(crate) fn u64s(&self, offset: usize, out: &mut [u64]) -> Result<(), Fault> {
        let size = out.len().checked_mul(8).ok_or(Fault::OutOfBounds)?;
        self.check(offset, size, 8)?;
        if self.ptr.is_null() {
            return self.file_u64s(offset, out);
        }
        for (i, slot) in out.iter_mut().enumerate() {
            // SAFETY: `offset + 8 * i + 8 <= offset + size <= len` and the
            // address is 8-aligned (checked once above for the whole run).
            *slot = unsafe { self.ptr.add(offset + 8 * i).cast::<u64>().read_volatile() };
        }
        Ok(())
    }

    /// Copies `out.len()` bytes starting at `offset`.
    pub(crate) fn bytes(&self, offset: usize, out: &mut [u8]) -> Result<(), Fault> {
        self.check(offset, out.len(), 1)?;
        if self.ptr.is_null() {
            return self.file_bytes(offset, out);
        }
        for (i, slot) in out.iter_mut().enumerate() {
            // SAFETY: `offset + i < offset + out.len() <= len` (checked
            // above), the region is memory; bytes need no alignment.
            *slot = unsafe { self.ptr.add(offset + i).read_volatile() };
        }
        Ok(())
    }

    /// Acquire fence: orders the loads before it (counter copies) before
    /// the loads after it (the closing epoch check).
    #[inline]
    pub(crate) fn fence_acquire() {
        std::sync::atomic::fence(Ordering::Acquire);
    }
}

/// Stores, for the simulator's writer.
#[cfg(feature = "sim")]
impl Region {
    /// Fails with `OutOfBounds` unless this region was mapped writable.
    #[inline]
    fn check_writable(&self) -> Result<(), Fault> {
        if self.writable {
            Ok(())
        } else {
            Err(Fault::OutOfBounds)
        }
    }

    /// Volatile store of the `u64` at `offset` (8-aligned).
    #[inline]
    pub(crate) fn set_u64(&self, offset: usize, value: u64) -> Result<(), Fault> {
        self.check_writable()?;
        self.check(offset, 8, 8)?;
        // SAFETY: inside the region, 8-aligned (checked), and the mapping
        // is writable (checked). Readers only ever copy this word out.
        unsafe { self.ptr.add(offset).cast::<u64>().write_volatile(value) };
        Ok(())
    }

    /// Release store of the `u64` at `offset` (8-aligned).
    #[inline]
    pub(crate) fn set_u64_release(&self, offset: usize, value: u64) -> Result<(), Fault> {
        self.check_writable()?;
        self.atomic(offset)?.store(value, Ordering::Release);
        Ok(())
    }

    /// Volatile store of the `u32` at `offset` (4-aligned).
    #[inline]
    pub(crate) fn set_u32(&self, offset: usize, value: u32) -> Result<(), Fault> {
        self.check_writable()?;
        self.check(offset, 4, 4)?;
        // SAFETY: inside the writable region and 4-aligned (checked).
        unsafe { self.ptr.add(offset).cast::<u32>().write_volatile(value) };
        Ok(())
    }

    /// Volatile copy of `data` to `offset`.
    pub(crate) fn set_bytes(&self, offset: usize, data: &[u8]) -> Result<(), Fault> {
        self.check_writable()?;
        self.check(offset, data.len(), 1)?;
        for (i, b) in data.iter().enumerate() {
            // SAFETY: `offset + i < offset + data.len() <= len` (checked)
            // and the region is writable.
            unsafe { self.ptr.add(offset + i).write_volatile(*b) };
        }
        Ok(())
    }

    /// Full fence for the writer, between `in_progress = 1` and the
    /// structural edits that follow it.
    #[inline]
    pub(crate) fn fence_seqcst() {
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// Takes ownership of a descriptor the kernel just handed us (from
/// `accept4` or an `SCM_RIGHTS` message), so it is closed exactly once.
pub(crate) fn own_fd(fd: RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` was returned by the kernel to this process a moment ago
    // (accept4/recvmsg) and nothing else in the process knows about it, so
    // nobody else owns or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Registers a non-blocking socket with tokio's reactor.
pub(crate) fn register_async(fd: OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is an open descriptor that it alone closes, and
    // `as_raw_fd` returns the same number for its whole life; the
    // `AsyncFd` owns it from here on and we never swap it through
    // `get_mut` (only `get_ref` is used).
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_and_alignment_checked() {
        let r = Region::from_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(r.u64(0), Ok(1));
        assert_eq!(r.u32(8), Ok(2));
        assert_eq!(r.u64(8), Err(Fault::OutOfBounds));
        assert_eq!(r.u64(4), Err(Fault::Misaligned));
        assert_eq!(r.u32(usize::MAX - 1), Err(Fault::OutOfBounds));
        assert_eq!(r.u8(12), Err(Fault::OutOfBounds));
        let mut out = [0u64; 2];
        assert_eq!(r.u64s(0, &mut out), Err(Fault::OutOfBounds));
        assert!(r.is_memory());
        #[cfg(feature = "sim")]
        assert_eq!(
            r.set_u64(0, 5),
            Err(Fault::OutOfBounds),
            "owned images are read-only"
        );
    }
}
