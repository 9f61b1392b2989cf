import Foundation
import Logging
import ServiceLifecycle
import TingxieJobs

/// Reports this node to the shared queue's directory every `interval` while it runs, and takes
/// it out when it stops, so that every node's `/v1/system` and `/metrics` show the cluster.
struct NodePresence: Service {
    /// A node unheard of for this long is taken for gone.
    static let window = Duration.seconds(15)

    let directory: any NodeDirectory
    let node: NodeStatus
    let pool: WorkerPool
    var interval = Duration.seconds(5)
    let logger: Logger

    func run() async {
        var heard = true
        while !Task.isShuttingDownGracefully {
            var now = node
            now.running = pool.runningCount
            do {
                try await directory.announce(now)
                if !heard { logger.info("reporting to the shared queue again") }
                heard = true
            } catch {
                if heard { logger.warning("cannot report this node to the shared queue: \(error)") }
                heard = false
            }
            let interval = interval
            guard (try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }) != nil else { break }
        }
        try? await directory.leave(id: node.id)
    }
}
