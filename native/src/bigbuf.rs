//! Buffers for whole-file work (`kompass scrub`: the input and the scrubbed document), which
//! the kernel is asked to back with transparent huge pages: touching 100 MB of fresh memory
//! then takes about 50 page faults instead of about 25,000, and the faults were a third of
//! the scrub's system time. A hint only: where it is not granted (another OS, THP off), the
//! buffers are plain allocations and behave the same.

use std::io::Read;
use std::path::Path;

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

/// An empty byte buffer with room for `capacity` bytes, advised for huge pages.
pub fn bytes_with_capacity(capacity: usize) -> Vec<u8> {
    let v = Vec::with_capacity(capacity);
    advise(v.as_ptr(), v.capacity());
    v
}

/// An empty string with room for `capacity` bytes, advised for huge pages.
pub fn string_with_capacity(capacity: usize) -> String {
    let s = String::with_capacity(capacity);
    advise(s.as_ptr(), s.capacity());
    s
}

/// The whole file, as [`std::fs::read`] reads it (same errors), into an advised buffer.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = bytes_with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_file_reads_what_std_reads_and_fails_as_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, 4095, MIN_ADVISED + 12_345] {
            let path = dir.path().join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(read_file(&path).unwrap(), bytes);
        }
        for path in [dir.path().join("missing"), dir.path().to_path_buf()] {
            let ours = read_file(&path).unwrap_err();
            let std = std::fs::read(&path).unwrap_err();
            assert_eq!((ours.kind(), ours.to_string()), (std.kind(), std.to_string()));
        }
    }

    #[test]
    fn advised_buffers_have_their_capacity_and_grow_as_usual() {
        let mut s = string_with_capacity(MIN_ADVISED + 1);
        assert!(s.capacity() > MIN_ADVISED && s.is_empty());
        s.push_str(&"x".repeat(MIN_ADVISED * 2));
        assert_eq!(s.len(), MIN_ADVISED * 2);
        assert!(bytes_with_capacity(10).capacity() >= 10);
    }
}
