//! A cache hint: start loading a value the simulator will touch soon (the next event's queue entry
//! and node), so that its memory latency overlaps the work on the current event.

/// Asks the CPU to bring `value`'s first cache line into cache. Only a hint: it never changes what
/// a program computes, only how long it waits for memory (a no-op off x86_64).
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and writes nothing; `value` is a live reference besides. The
    // intrinsic needs `sse`, which every x86_64 target has.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
