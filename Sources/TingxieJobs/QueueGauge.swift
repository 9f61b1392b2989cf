import Synchronization
import TingxieCore

/// Admission control: an exact, in-memory view of the queue plus the uploads that were let in
/// and are still arriving. A request reserves its place before its body is read, so with a
/// limit of K queued jobs and K+M simultaneous uploads exactly M are refused.
///
/// The job store keeps the counts exact: it reports the queue from inside every write
/// transaction that changes it (writes are serialised, so reports arrive in order).
public final class QueueGauge: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxQueuedJobs: Int
        public var maxQueuedSeconds: Double

        public init(maxQueuedJobs: Int = 1000, maxQueuedSeconds: Double = 100 * 3600) {
            self.maxQueuedJobs = maxQueuedJobs
            self.maxQueuedSeconds = maxQueuedSeconds
        }

        /// The refusal when `maxQueuedJobs` would be passed.
        public var noRoomForJobs: TingxieError {
            TingxieError(.queueFull, "the queue is full (\(maxQueuedJobs) jobs waiting); try again later")
        }

        /// The refusal when `maxQueuedSeconds` would be passed; `arriving` when uploads still
        /// coming in are counted too.
        public func noRoomForAudio(arriving: Bool = false) -> TingxieError {
            let hours = maxQueuedSeconds >= 3600 ? "\(Int(maxQueuedSeconds / 3600)) h" : "\(Int(maxQueuedSeconds)) s"
            return TingxieError(.queueFull, "the queue is full (\(hours) of audio waiting\(arriving ? " or arriving" : "")); try again later")
        }
    }

    /// Places held by uploads in progress; released once the jobs are queued or the upload fails.
    public final class Reservation: Sendable {
        fileprivate struct Held { var jobs: Int; var seconds: Double; var released = false }
        fileprivate let held: Mutex<Held>

        fileprivate init(jobs: Int) { held = Mutex(Held(jobs: jobs, seconds: 0)) }
    }

    private struct State {
        var stats = QueueStats()
        var reservedJobs = 0
        var reservedSeconds = 0.0
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The queue as last reported by the store.
    public var stats: QueueStats { state.withLock { $0.stats } }

    /// Reserves places for `jobs` more queued jobs.
    /// - Throws: `TingxieError(.queueFull)` when the queue (with uploads in progress) is full.
    public func reserve(jobs: Int = 1) throws -> Reservation {
        try state.withLock { state in
            let jobsAfter = state.stats.queuedJobs + state.reservedJobs + jobs
            guard jobsAfter <= limits.maxQueuedJobs else { throw limits.noRoomForJobs }
            guard state.stats.queuedSeconds + state.reservedSeconds < limits.maxQueuedSeconds else { throw limits.noRoomForAudio() }
            state.reservedJobs += jobs
            return Reservation(jobs: jobs)
        }
    }

    /// Grows a reservation by one more job (a further file of a batch).
    public func extend(_ reservation: Reservation) throws {
        try state.withLock { state in
            guard state.stats.queuedJobs + state.reservedJobs + 1 <= limits.maxQueuedJobs else { throw limits.noRoomForJobs }
            state.reservedJobs += 1
            reservation.held.withLock { $0.jobs += 1 }
        }
    }

    /// Adds the probed audio duration to a reservation.
    /// - Throws: `TingxieError(.queueFull)` when that much audio would overfill the queue.
    public func add(seconds: Double, to reservation: Reservation) throws {
        try state.withLock { state in
            guard state.stats.queuedSeconds + state.reservedSeconds + seconds <= limits.maxQueuedSeconds else {
                throw limits.noRoomForAudio(arriving: true)
            }
            state.reservedSeconds += seconds
            reservation.held.withLock { $0.seconds += seconds }
        }
    }

    /// Gives a reservation's places back (an upload that failed); releasing twice does nothing.
    public func release(_ reservation: Reservation) {
        state.withLock { state in Self.release(reservation, in: &state) }
    }

    /// Takes the queue as the store now sees it, releasing `reservation` in the same step when
    /// its jobs are now part of the queue.
    public func observe(_ stats: QueueStats, settling reservation: Reservation? = nil) {
        state.withLock { state in
            state.stats = stats
            if let reservation { Self.release(reservation, in: &state) }
        }
    }

    private static func release(_ reservation: Reservation, in state: inout State) {
        reservation.held.withLock { held in
            guard !held.released else { return }
            held.released = true
            state.reservedJobs -= held.jobs
            state.reservedSeconds -= held.seconds
        }
    }
}
