//! Output buffers for whole-file work (`kompass scrub`'s scrubbed document), which the kernel
//! is asked to back with transparent huge pages: writing 50 MB into fresh memory then takes
//! about 25 page faults instead of about 13,000. A hint only: where it is not granted (another
//! OS, THP off), the buffer is a plain allocation and behaves the same.
//!
//! The input is read as `std::fs::read` reads it: advised too, it made the scrub's system
//! time bimodal on this project's VM (51 or 366 ms at 20,000 activities, bench/notes.md),
//! when the kernel had to take huge pages from memory the hypervisor had taken back.

/// Below this, a buffer cannot hold a whole huge page (2 MiB on x86-64 and aarch64 with 4 KiB
/// pages), so advising it would buy nothing.
const MIN_ADVISED: usize = 4 << 20;

/// Asks the kernel to back the whole pages inside `len` bytes from `ptr` with huge pages.
/// `madvise(MADV_HUGEPAGE)` changes no byte and no mapping, only how later page faults are
/// served, so it is sound on memory the allocator owns; its failure is ignored.
#[cfg(target_os = "linux")]
fn advise(ptr: *const u8, len: usize) {
    if len < MIN_ADVISED {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as usize,
        _ => return,
    };
    let start = (ptr as usize).next_multiple_of(page);
    let end = (ptr as usize + len) / page * page;
    if end > start {
        // SAFETY: [start, end) lies inside one live allocation of ours; MADV_HUGEPAGE only
        // sets a policy flag on the mapping, it neither frees nor changes memory.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_ptr: *const u8, _len: usize) {}

/// An empty string with room for `capacity` bytes, advised for huge pages.
pub fn string_with_capacity(capacity: usize) -> String {
    let s = String::with_capacity(capacity);
    advise(s.as_ptr(), s.capacity());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_buffers_have_their_capacity_and_grow_as_usual() {
        let mut s = string_with_capacity(MIN_ADVISED + 1);
        assert!(s.capacity() > MIN_ADVISED && s.is_empty());
        s.push_str(&"x".repeat(MIN_ADVISED * 2));
        assert_eq!(s.len(), MIN_ADVISED * 2);
        assert!(string_with_capacity(10).capacity() >= 10);
    }
}
