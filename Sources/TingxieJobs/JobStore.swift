import Foundation
import TingxieCore
import TingxieOperations

/// Everything a Tingxie process keeps durably, by responsibility: the queue, the results, the
/// incident log. `SQLiteJobStore` (one process) and `PostgresJobStore` (shared by many) each
/// implement all three; a shared store also offers `SharedAudio`, `NodeDirectory` and
/// `QueueEvents`. `openJobStore` (TingxieServer) chooses one.
public typealias JobStore = JobQueue & JobResults & IncidentLog

/// The durable queue of jobs, with leases.
///
/// Jobs run at least once; results are written exactly once: `complete` writes the transcript in
/// the same transaction that marks the job succeeded, and only while the caller still holds the
/// job's lease.
///
/// A store reports the queue to the process's `QueueGauge` (given when it is opened) after every
/// write, so admission control sees it exactly without asking.
public protocol JobQueue: Sendable {
    /// Adds jobs as queued, all or none, settling the reservation (of this process's gauge) their upload held.
    func enqueue(_ jobs: [Job], settling reservation: QueueGauge.Reservation?) async throws
    func job(id: String) async throws -> Job?
    /// The jobs of a batch, oldest first (empty when there is no such batch).
    func jobs(batchID: String) async throws -> [Job]
    /// Jobs newest first, `limit` at most, older than `cursor` when given, of `owner` alone when given.
    func list(status: Job.Status?, limit: Int, cursor: Int64?, owner: String?) async throws -> (jobs: [Job], nextCursor: Int64?)

    /// Claims the oldest queued job that is due, leasing it to `owner` for `lease`.
    func claim(owner: String, lease: Duration) async throws -> Job?
    /// Extends the lease and records progress. `false` when the job is no longer `owner`'s
    /// (canceled, or its lease expired and it was requeued).
    func heartbeat(id: String, owner: String, progress: Double, lease: Duration) async throws -> Bool
    /// Stores the result and marks the job succeeded, if `owner` still holds it.
    func complete(id: String, owner: String, transcript: Transcript) async throws -> Bool
    /// Marks the job failed, or queues it again at `retryAt` when given, if `owner` still holds it.
    func fail(id: String, owner: String, error: TingxieError, retryAt: Date?) async throws -> Bool
    /// Gives a running job back to the queue without counting the attempt (graceful shutdown).
    func release(id: String, owner: String) async throws
    /// Cancels a queued or running job. Returns the job as it is afterwards, `nil` when unknown.
    func cancel(id: String) async throws -> Job?

    /// Queues again the running jobs whose lease expired; fails those out of attempts.
    /// Returns the jobs changed.
    func recoverExpiredLeases() async throws -> [Job]
    /// Queues again, at start-up, the running jobs that no live worker holds: every running job
    /// for a store this process holds alone (they belonged to a process that died), only those
    /// whose lease expired for a store that other nodes share.
    func recoverAtStart() async throws -> [Job]

    /// Deletes finished jobs, their results and their incidents, and resolved alerts, from
    /// before `date` (retention); returns how many jobs went.
    func purge(finishedBefore date: Date) async throws -> Int
    /// Checks that the store answers.
    func ping() async throws

    /// When the oldest job still queued was created; `nil` when none is.
    func oldestQueuedAt() async throws -> Date?
    /// Jobs that ended since `date`: how many, and how many of them failed.
    func finished(since date: Date) async throws -> (total: Int, failed: Int)
}

/// The transcripts of succeeded jobs (written by `JobQueue.complete`).
public protocol JobResults: Sendable {
    func transcript(id: String) async throws -> Transcript?
}

/// Failed jobs (recorded by the queue as they fail) and the monitor's alerts, in one list.
public protocol IncidentLog: Sendable {
    /// Records an alert as an open incident; returns its id.
    func openAlert(cause: Incident.Cause, message: String) async throws -> Int64
    func resolveAlert(id: Int64) async throws
    /// Closes, at start-up, the alerts this node's previous process left open: every open alert
    /// in a store of its own, only this node's in a shared one.
    func resolveOpenAlerts() async throws
    /// Incidents newest first (failed jobs are recorded by `fail` and the lease sweeps); with
    /// `owner`, only those of that owner's jobs.
    func incidents(since date: Date?, limit: Int, owner: String?) async throws -> [Incident]
}

extension IncidentLog {
    /// Every incident, newest first.
    public func incidents(since date: Date?, limit: Int) async throws -> [Incident] {
        try await incidents(since: date, limit: limit, owner: nil)
    }
}
