#if canImport(Glibc)
import CMalloc
#endif

/// glibc's allocator gives threads that allocate at the same time arenas of their own (up to
/// eight per core) and seldom hands their free pages back: a server whose many threads
/// (streams, workers, event loops) each pass megabytes through grows for hours. Two arenas
/// and a trim now and then keep its resident memory close to what it uses.
///
/// Blocks of 256 KB and more (audio buffers, model tensors) are mapped on their own and
/// unmapped when freed. glibc would otherwise raise that threshold to the largest block freed
/// so far (up to 32 MB), after which such blocks are cut from the arenas and fragment them: in
/// the soak benchmark that left the server 50 MB larger and growing faster.
public enum ProcessMemory {
    /// Call first thing, before the threads that allocate start.
    public static func limitArenas() {
        #if canImport(Glibc)
        _ = mallopt(M_ARENA_MAX, 2)
        _ = mallopt(M_MMAP_THRESHOLD, 256 << 10)
        #endif
    }

    /// Returns the heap's free pages to the system.
    public static func trim() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}
