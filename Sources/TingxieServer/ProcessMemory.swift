#if canImport(Glibc)
import CMalloc
#endif

/// glibc's allocator gives threads that allocate at the same time arenas of their own (up to
/// eight per core) and seldom hands their free pages back: a server whose many threads
/// (streams, workers, event loops) each pass megabytes through grows for hours. Two arenas
/// and a trim now and then keep its resident memory close to what it uses.
public enum ProcessMemory {
    /// Call first thing, before the threads that allocate start.
    public static func limitArenas() {
        #if canImport(Glibc)
        _ = mallopt(M_ARENA_MAX, 2)
        #endif
    }

    /// Returns the heap's free pages to the system.
    public static func trim() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}
