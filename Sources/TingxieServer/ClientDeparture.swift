import Hummingbird
import NIOCore
import Synchronization
import TingxieCore

/// Notices a client that leaves while its request is answered: it closed its side of the
/// connection (what `curl -m 1` and a client's timeout do) or the connection dropped. A
/// client that half-closes and still waits is taken as gone too, as nginx does.
final class DepartureWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    private let left = Wakeup(sticky: true)
    private let action = Mutex<(@Sendable () -> Void)?>(nil)

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { clientLeft() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientLeft()
        context.fireChannelInactive()
    }

    private func clientLeft() {
        left.signal()
        action.withLock { action in
            defer { action = nil }
            return action
        }?()
    }

    /// Runs `action` when the client leaves (at once if it has).
    func onLeave(_ action: @escaping @Sendable () -> Void) {
        self.action.withLock { $0 = action }
        if left.isSignalled { clientLeft() }
    }

    var hasLeft: Bool { left.isSignalled }

    /// Returns when the client has left; never, while it stays (cancel the task to stop waiting).
    func departure() async {
        await left.wait()
    }
}

/// The client went away before its answer was ready.
struct ClientLeft: Error {}

extension APIRequestContext {
    /// Runs `body` with a watcher that tells whether the client has left (followers check it
    /// between writes, which alone would notice only at the next keep-alive).
    /// - Throws: `ClientLeft` when the connection is closed already (its pipeline takes no handler).
    func watchingDeparture<T>(_ body: (DepartureWatcher) async throws -> T) async throws -> T {
        let watcher = DepartureWatcher()
        do {
            try await channel.pipeline.addHandler(watcher, position: .first).get()
        } catch {
            throw ClientLeft()
        }
        defer { channel.pipeline.removeHandler(watcher, promise: nil) }
        return try await body(watcher)
    }

    /// Runs `body` while the client stays connected. When the client leaves first, `body` is
    /// cancelled and `ClientLeft` thrown, so the caller can stop the work nobody will collect.
    func whileClientStays<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await watchingDeparture { watcher in
            try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    await watcher.departure()
                    return nil
                }
                defer { group.cancelAll() }
                // The first to finish: the answer, or the departure (nil) when it came first.
                guard let first = try await group.next(), let value = first else {
                    throw ClientLeft()
                }
                return value
            }
        }
    }
}
