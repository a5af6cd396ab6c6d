//! How the C allocator keeps freed memory. libtorch's CPU tensors come from glibc's `malloc`,
//! which by default hands blocks of a few MiB back to the system when they are freed (its
//! dynamic mmap threshold and heap trimming). A training step that frees a batch and allocates
//! the next then pays a page fault and a zero-fill for every 4 KiB of it, every step: measured on
//! the `stream1g` workload without data workers, 950,000 minor page faults in 1500 steps and
//! 1.7 times the step time. PyTorch users reach for tcmalloc or jemalloc for the same reason.

/// Blocks below this size come from the heap and are reused, not mapped and unmapped each time
/// (glibc's own dynamic threshold stops growing here too).
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free memory at the top of the heap kept for reuse before any is given back to the system.
const TRIM_THRESHOLD: libc::c_int = 128 << 20;

/// Makes glibc keep freed blocks of up to 32 MiB for reuse (and up to 128 MiB of free heap),
/// unless the user set `MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_` (glibc's own
/// variables, which then decide, as the memory-measuring tests do).
pub fn keep_freed_blocks() {
    let set_by_user = |name: &str| std::env::var_os(name).is_some();
    if set_by_user("MALLOC_MMAP_THRESHOLD_") || set_by_user("MALLOC_TRIM_THRESHOLD_") {
        return;
    }
    // SAFETY: mallopt only changes the allocator's parameters, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
