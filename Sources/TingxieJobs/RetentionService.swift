import Foundation
import Logging
import ServiceLifecycle

/// Keeps the data folder from growing without bound: at start and then every `interval`, it
/// deletes finished jobs, their results and incidents older than the retention period, and
/// audio that no job waits for (a crash between storing an upload and queueing it). Audio is
/// judged against the time this service was made, before the server accepted anything, so an
/// upload still arriving is never taken for an orphan.
public struct RetentionService: Service {
    let store: any JobQueue
    let audio: AudioStore
    let retention: Duration
    let interval: Duration
    let logger: Logger
    private let started = Date()

    public init(store: any JobQueue, audio: AudioStore, retention: Duration, interval: Duration = .seconds(3600), logger: Logger) {
        self.store = store
        self.audio = audio
        self.retention = retention
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let interval = interval
        repeat {
            await sweep()
        } while (try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }) != nil && !Task.isShuttingDownGracefully
    }

    /// One pass; errors are logged and the next pass tries again.
    public func sweep() async {
        do {
            let purged = try await store.purge(finishedBefore: Date().addingTimeInterval(-retention.seconds))
            if purged > 0 { logger.info("purged finished jobs past retention", metadata: ["jobs": "\(purged)"]) }
            // A second's margin: file times can be coarser than the clock.
            for id in audio.ids(writtenBefore: started.addingTimeInterval(-1)) where try await store.job(id: id).map({ $0.status.isTerminal }) ?? true {
                audio.remove(id)
                logger.info("removed audio with no job waiting for it", metadata: ["job": "\(id)"])
            }
        } catch {
            logger.error("retention sweep failed: \(error)")
        }
    }
}
