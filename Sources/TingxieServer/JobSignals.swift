import Synchronization
import TingxieCore

/// Tells the requests that wait on a job (a synchronous OpenAI request, an events follower)
/// that it changed: it started, a segment was recognised, it ended or was canceled, here or,
/// through the shared store's notifications, on another node. Waiters read the store when told,
/// and only then, besides a slow fallback tick.
final class JobSignals: Sendable {
    private let tickets = Mutex<[String: [ObjectIdentifier: Ticket]]>([:])

    /// One waiter's subscription to one job's changes.
    final class Ticket: Sendable {
        let id: String
        private let changed = Wakeup(sticky: false)

        init(id: String) { self.id = id }

        func signal() { changed.signal() }

        /// Returns once the job changed since the last call, or after `timeout`, or when the
        /// task is cancelled.
        func wait(atMost timeout: Duration) async {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.changed.wait() }
                group.addTask { try? await Task.sleep(for: timeout) }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Subscribes to the changes of job `id` from now on, until `body` returns.
    func subscribe<T>(to id: String, _ body: (Ticket) async throws -> T) async rethrows -> T {
        let ticket = Ticket(id: id)
        tickets.withLock { $0[id, default: [:]][ObjectIdentifier(ticket)] = ticket }
        defer {
            tickets.withLock { tickets in
                tickets[id]?[ObjectIdentifier(ticket)] = nil
                if tickets[id]?.isEmpty == true { tickets[id] = nil }
            }
        }
        return try await body(ticket)
    }

    /// Job `id` changed.
    func notify(_ id: String) {
        for ticket in tickets.withLock({ Array(($0[id] ?? [:]).values) }) { ticket.signal() }
    }

    /// Every job may have changed (the shared store was out of touch for a while).
    func notifyAll() {
        for ticket in tickets.withLock({ $0.values.flatMap(\.values) }) { ticket.signal() }
    }

    /// Requests waiting on some job now.
    var waiting: Int { tickets.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}

/// Counts what is open (streams, followers) against a limit.
final class BoundedCount: Sendable {
    let limit: Int
    private let count = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// Takes a place; `false` when all are taken.
    func enter() -> Bool {
        if count.add(1, ordering: .relaxed).newValue > limit {
            count.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func leave() { count.subtract(1, ordering: .relaxed) }

    var current: Int { count.load(ordering: .relaxed) }
}

/// One place of a `BoundedCount`, given back when the last reference to it goes: a response
/// body that is never written (the client left first) gives it back too.
final class FollowerPlace: Sendable {
    private let count: BoundedCount

    init(_ count: BoundedCount) { self.count = count }

    deinit { count.leave() }
}

/// A signal one task waits for. `sticky`: once signalled, every wait returns at once (a client
/// that left); otherwise a signal wakes one wait, or the next one when none waits (a change).
final class Wakeup: Sendable {
    private let sticky: Bool
    private let state = Mutex<(signalled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    init(sticky: Bool) { self.sticky = sticky }

    var isSignalled: Bool { state.withLock { $0.signalled } }

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            let waiter = state.waiter
            state.waiter = nil
            state.signalled = sticky || waiter == nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns once signalled, or when the task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    guard !state.signalled, !Task.isCancelled else {
                        if !sticky { state.signalled = false }
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                let waiter = state.waiter
                state.waiter = nil
                return waiter
            }
            waiter?.resume()
        }
    }
}
