//! The C allocator, set up once per process.
//!
//! glibc's malloc gives a thread that meets contention an arena of its own
//! (up to 8 per core), and memory freed into one arena serves only the
//! allocations of threads attached to it. jko allocates its per-task
//! buffers on rayon's threads (each list build's cluster candidates, the
//! tree's per-task arrays) and its step's vectors on the driver's thread,
//! so which arena holds what depends on timing, and the freed memory of one
//! build may not serve the next: the peak of the same 3D step then varies
//! from run to run, by up to 38%, and not with one arena, in the same time
//! (BENCHMARKS.md, "Memory"). The hot loops allocate nothing, so one arena
//! costs no contention there.

/// One malloc arena for the whole process (glibc), unless the user set
/// `MALLOC_ARENA_MAX` (glibc reads it at start; it wins). Call it before
/// any thread starts: arenas created before stay. Elsewhere a no-op.
pub fn single_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt sets a parameter of the allocator and takes its
        // locks; it reads and writes no memory of ours.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
