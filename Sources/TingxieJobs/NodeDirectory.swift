import Foundation

/// A Tingxie process on the shared queue, as it last reported itself.
public struct NodeStatus: Sendable, Equatable {
    /// Random per process: a node that restarts is a new entry.
    public var id: String
    /// `--node-name` (the host name by default).
    public var name: String
    /// `server` or `worker`.
    public var role: String
    public var workers: Int
    /// Jobs it ran when it last reported.
    public var running: Int
    public var startedAt: Date
    /// Seconds since it last reported, on the database's clock.
    public var silentSeconds: Double

    public init(id: String, name: String, role: String, workers: Int, running: Int, startedAt: Date, silentSeconds: Double = 0) {
        self.id = id
        self.name = name
        self.role = role
        self.workers = workers
        self.running = running
        self.startedAt = startedAt
        self.silentSeconds = silentSeconds
    }
}

/// The nodes that share a queue: each reports itself now and then; any can list the others.
public protocol NodeDirectory: Sendable {
    /// Records that `node` is alive, with what it runs now.
    func announce(_ node: NodeStatus) async throws
    /// Removes the node (it is shutting down).
    func leave(id: String) async throws
    /// Nodes heard from within `window`, by name.
    func liveNodes(within window: Duration) async throws -> [NodeStatus]
}
