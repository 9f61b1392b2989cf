/// What a shared queue tells every node at once, so that none has to poll for it.
public enum QueueEvent: Sendable, Equatable {
    /// Jobs were queued (or nodes should look again: the store was out of touch for a while).
    case queued
    /// A job was canceled; whichever node runs it stops it.
    case canceled(id: String)
    /// A job ended (succeeded, or failed for good); whoever waits for it looks.
    case ended(id: String)
    /// Events may have been missed (the store was out of touch): look at everything again.
    case resync
}

/// A store that pushes `QueueEvent`s to its observers as they happen, on any node.
public protocol QueueEvents: Sendable {
    /// Calls `handler` with every event from now on, from any thread.
    func observe(_ handler: @escaping @Sendable (QueueEvent) -> Void)
}
