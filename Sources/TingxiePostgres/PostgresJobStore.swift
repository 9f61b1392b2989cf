import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import TingxieCore
import TingxieJobs
import TingxieOperations

/// The shared job store: PostgreSQL, one queue for any number of Tingxie nodes.
///
/// Claims take the oldest due job with `FOR UPDATE SKIP LOCKED`, so nodes never wait on each
/// other's claims; leases and every other time are the database's clock (`now()`), so the nodes'
/// clocks never have to agree. Admission is decided in the transaction that inserts the jobs,
/// under an advisory lock, so queue limits hold across API nodes. The schema is migrated once,
/// under an advisory lock, by whichever node uses the store first.
///
/// The store is a `Service`: its connection pool runs while the service does. A database that
/// cannot be reached fails the calls of the moment with `not_ready`; the pool connects again by
/// itself when it comes back.
public final class PostgresJobStore: JobStore, SharedAudio, NodeDirectory, QueueEvents, Service {
    /// The admission gauge this store keeps current; its limits are also checked in the database.
    public let gauge: QueueGauge
    /// Names this process in alerts, so that one node's start-up closes only its own.
    public let node: String
    private let client: PostgresClient
    private let logger: Logger
    private let migrated = Mutex(false)
    private let observers = Mutex<[@Sendable (QueueEvent) -> Void]>([])
    /// The channel of `NOTIFY`: `queued`, `cancel:<id>` or `ended:<id>`.
    private static let channel = "tingxie_events"

    /// - Parameters:
    ///   - url: `postgres://USER:PASS@HOST:PORT/DB`, with `?sslmode=disable|prefer|require|verify-full`.
    ///   - gauge: this process's admission gauge, told of the queue after every write.
    ///   - node: this process's name in alerts.
    ///   - maximumConnections: the most connections the pool opens (one of them listens).
    /// - Throws: `TingxieError(.invalidArgument)` when the URL cannot be used.
    public init(url: String, gauge: QueueGauge = QueueGauge(), node: String, logger: Logger,
                maximumConnections: Int = 10) throws {
        self.gauge = gauge
        self.node = node
        self.logger = logger
        self.url = url
        var configuration = try PostgresURL.configuration(url)
        configuration.options.maximumConnections = max(2, maximumConnections)
        // The pool logs every failed connection attempt; the store says what matters itself.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .error)
        client = PostgresClient(configuration: configuration, backgroundLogger: poolLogger)
    }

    /// Runs the connection pool, and the listener for other nodes' events, until the service
    /// group shuts down.
    public func run() async {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.client.run() }
                group.addTask { await self.listen() }
                await group.waitForAll()
            }
        }
    }

    public func observe(_ handler: @escaping @Sendable (QueueEvent) -> Void) {
        observers.withLock { $0.append(handler) }
    }

    /// Holds one connection on `LISTEN`, again after every loss; after each (re)connection the
    /// observers hear `.resync`, for whatever happened while no one listened.
    private func listen() async {
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                try await client.withConnection { db in
                    try await db.listen(on: Self.channel) { notifications in
                        delay = .milliseconds(500)
                        self.publish(.resync)
                        for try await notification in notifications {
                            let payload = notification.payload
                            if payload.hasPrefix("cancel:") {
                                self.publish(.canceled(id: String(payload.dropFirst(7))))
                            } else if payload.hasPrefix("ended:") {
                                self.publish(.ended(id: String(payload.dropFirst(6))))
                            } else {
                                self.publish(.queued)
                            }
                        }
                    }
                }
            } catch {
                guard !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
                logger.warning("not hearing other nodes' events; listening again", metadata: ["error": "\(PostgresFailure.describe(error).message)"])
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(30))
        }
    }

    private func publish(_ event: QueueEvent) {
        for handler in observers.withLock({ $0 }) { handler(event) }
    }

    // MARK: Writes

    public func enqueue(_ jobs: [Job], settling reservation: QueueGauge.Reservation?) async throws {
        let limits = gauge.limits
        try await write(settling: reservation) { db in
            // One admission at a time across every node: the count and the insert are one step.
            try await db.query("SELECT pg_advisory_xact_lock(\(Self.admissionLock))", logger: self.logger)
            let queue = try await Self.stats(db, logger: self.logger)
            let seconds = jobs.reduce(0) { $0 + $1.durationS }
            guard queue.queuedJobs + jobs.count <= limits.maxQueuedJobs else { throw limits.noRoomForJobs }
            guard seconds == 0 || queue.queuedSeconds + seconds <= limits.maxQueuedSeconds else { throw limits.noRoomForAudio() }
            for job in jobs {
                let task = job.task == .translate ? job.task.rawValue : nil
                try await db.query("""
                    INSERT INTO jobs (id, batch_id, status, filename, bytes, duration_s, language, task, hotwords, model,
                                      max_attempts, created_at, owner, allow_partial)
                    VALUES (\(job.id), \(job.batchID), 'queued', \(job.filename), \(job.bytes), \(job.durationS), \(job.language),
                            \(task), \(job.hotwords), \(job.model), \(job.maxAttempts), \(job.createdAt), \(job.owner), \(job.allowPartial))
                    """, logger: self.logger)
            }
            // Delivered on commit, to every node listening.
            try await db.query("SELECT pg_notify(\(Self.channel), 'queued')", logger: self.logger)
        }
    }

    public func claim(owner: String, lease: Duration) async throws -> Job? {
        try await write { db in
            try await Self.jobs(db.query("""
                UPDATE jobs SET status = 'running', lease_owner = \(owner), lease_expires_at = now() + make_interval(secs => \(lease.seconds)),
                                attempts = attempts + 1, started_at = coalesce(started_at, now()), not_before = NULL
                WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' AND (not_before IS NULL OR not_before <= now())
                             ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING \(unescaped: Self.columns)
                """, logger: self.logger)).first
        }
    }

    public func heartbeat(id: String, owner: String, progress: Double, lease: Duration) async throws -> Bool {
        try await changes(query: """
            UPDATE jobs SET lease_expires_at = now() + make_interval(secs => \(lease.seconds)), progress = greatest(progress, \(progress))
            WHERE id = \(id) AND status = 'running' AND lease_owner = \(owner)
            RETURNING id
            """) == 1
    }

    public func complete(id: String, owner: String, transcript: Transcript) async throws -> Bool {
        let json = String(decoding: try JSONEncoder().encode(transcript), as: UTF8.self)
        return try await write { db in
            let done = try await db.query("""
                UPDATE jobs SET status = 'succeeded', progress = 1, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
                WHERE id = \(id) AND status = 'running' AND lease_owner = \(owner)
                RETURNING id
                """, logger: self.logger).collect()
            guard done.count == 1 else { return false }
            try await db.query("INSERT INTO results (job_id, transcript, created_at) VALUES (\(id), \(json), now())",
                               logger: self.logger)
            for shortfall in Incident.Cause.shortfalls(of: transcript) {
                try await self.recordFailure(db, jobID: id, cause: shortfall.cause, message: shortfall.message)
            }
            try await db.query("SELECT pg_notify(\(Self.channel), \("ended:" + id))", logger: self.logger)
            try await self.deleteAudio(db, jobID: id)
            return true
        }
    }

    public func fail(id: String, owner: String, error: TingxieError, retryAt: Date?) async throws -> Bool {
        try await write { db in
            if let retryAt {
                let delay = max(0, retryAt.timeIntervalSinceNow)
                return try await db.query("""
                    UPDATE jobs SET status = 'queued', not_before = now() + make_interval(secs => \(delay)),
                                    error_code = \(error.code.rawValue), error_message = \(error.message),
                                    lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = \(id) AND status = 'running' AND lease_owner = \(owner)
                    RETURNING id
                    """, logger: self.logger).collect().count == 1
            }
            let failed = try await db.query("""
                UPDATE jobs SET status = 'failed', finished_at = now(), error_code = \(error.code.rawValue),
                                error_message = \(error.message), lease_owner = NULL, lease_expires_at = NULL
                WHERE id = \(id) AND status = 'running' AND lease_owner = \(owner)
                RETURNING id
                """, logger: self.logger).collect()
            guard failed.count == 1 else { return false }
            try await self.recordFailure(db, jobID: id, cause: Incident.Cause(error), message: error.message)
            try await db.query("SELECT pg_notify(\(Self.channel), \("ended:" + id))", logger: self.logger)
            try await self.deleteAudio(db, jobID: id)
            return true
        }
    }

    public func release(id: String, owner: String) async throws {
        try await write { db in
            _ = try await db.query("""
                UPDATE jobs SET status = 'queued', attempts = greatest(0, attempts - 1), lease_owner = NULL, lease_expires_at = NULL
                WHERE id = \(id) AND status = 'running' AND lease_owner = \(owner)
                """, logger: self.logger)
        }
    }

    public func cancel(id: String) async throws -> Job? {
        try await write { db in
            let canceled = try await db.query("""
                UPDATE jobs SET status = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL,
                                error_code = 'canceled', error_message = 'canceled by request'
                WHERE id = \(id) AND status IN ('queued', 'running')
                RETURNING id
                """, logger: self.logger).collect()
            if !canceled.isEmpty {
                try await self.deleteAudio(db, jobID: id)
                try await db.query("SELECT pg_notify(\(Self.channel), \("cancel:" + id))", logger: self.logger)
            }
            return try await Self.jobs(db.query("SELECT \(unescaped: Self.columns) FROM jobs WHERE id = \(id)", logger: self.logger)).first
        }
    }

    public func recoverExpiredLeases() async throws -> [Job] {
        try await write { db in
            let failed = try await Self.jobs(db.query("""
                UPDATE jobs SET status = 'failed', finished_at = now(), error_code = 'internal_error',
                                error_message = 'gave up after ' || attempts || ' attempts: its worker stopped renewing the lease',
                                lease_owner = NULL, lease_expires_at = NULL
                WHERE status = 'running' AND lease_expires_at < now() AND attempts >= max_attempts
                RETURNING \(unescaped: Self.columns)
                """, logger: self.logger))
            for job in failed {
                try await self.recordFailure(db, jobID: job.id, cause: .workerLost, message: job.error?.message ?? "")
                try await self.deleteAudio(db, jobID: job.id)
                try await db.query("SELECT pg_notify(\(Self.channel), \("ended:" + job.id))", logger: self.logger)
            }
            let requeued = try await Self.jobs(db.query("""
                UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL
                WHERE status = 'running' AND lease_expires_at < now()
                RETURNING \(unescaped: Self.columns)
                """, logger: self.logger))
            return failed + requeued
        }
    }

    /// Only expired leases: the other nodes' running jobs are alive, and a node that died
    /// mid-job is found out when its lease runs out.
    public func recoverAtStart() async throws -> [Job] {
        try await recoverExpiredLeases()
    }

    public func purge(finishedBefore date: Date) async throws -> Int {
        try await write { db in
            try await db.query("""
                DELETE FROM results WHERE job_id IN (SELECT id FROM jobs WHERE finished_at < \(date)
                                                     AND status IN ('succeeded', 'failed', 'canceled'))
                """, logger: self.logger)
            try await db.query("DELETE FROM incidents WHERE resolved_at < \(date)", logger: self.logger)
            try await db.query("DELETE FROM nodes WHERE last_seen < now() - interval '1 day'", logger: self.logger)
            // Audio of uploads that never became jobs (a node died between storing and queueing).
            try await db.query("""
                DELETE FROM audio_chunks WHERE stored_at < now() - interval '1 hour'
                                           AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = audio_chunks.job_id)
                """, logger: self.logger)
            return try await db.query("""
                DELETE FROM jobs WHERE finished_at < \(date) AND status IN ('succeeded', 'failed', 'canceled') RETURNING id
                """, logger: self.logger).collect().count
        }
    }

    public func openAlert(cause: Incident.Cause, message: String) async throws -> Int64 {
        try await read { db in
            let row = try await db.query("""
                INSERT INTO incidents (kind, cause, message, node, opened_at)
                VALUES ('alert', \(cause.rawValue), \(message), \(self.node), now()) RETURNING id
                """, logger: self.logger).collect()
            return try row[0].decode(Int64.self)
        }
    }

    public func resolveAlert(id: Int64) async throws {
        _ = try await changes(query: "UPDATE incidents SET resolved_at = now() WHERE id = \(id) AND resolved_at IS NULL RETURNING id")
    }

    /// Closes this node's open alerts; the other nodes' stay as they are.
    public func resolveOpenAlerts() async throws {
        _ = try await changes(query: """
            UPDATE incidents SET resolved_at = now() WHERE kind = 'alert' AND resolved_at IS NULL AND node = \(node) RETURNING id
            """)
    }

    // MARK: Audio

    /// Chunks of 1 MiB: one is all a node holds in memory while audio moves.
    private static let chunkBytes = 1 << 20

    public func storedAudioBytes() async throws -> Int {
        try await read { db in
            try await db.query("SELECT coalesce(sum(octet_length(data)), 0)::int8 FROM audio_chunks", logger: self.logger)
                .collect().first?.decode(Int.self) ?? 0
        }
    }

    public func storeAudio(id: String, from url: URL) async throws {
        guard let file = FileHandle(forReadingAtPath: url.path) else {
            throw TingxieError(.ioError, "cannot read the upload to store it")
        }
        defer { try? file.close() }
        var seq = 0
        do {
            while let chunk = try file.read(upToCount: Self.chunkBytes), !chunk.isEmpty {
                try await read { [seq] db in
                    _ = try await db.query("INSERT INTO audio_chunks (job_id, seq, data) VALUES (\(id), \(seq), \(chunk))",
                                           logger: self.logger)
                }
                seq += 1
            }
        } catch {
            if seq > 0 { try? await removeAudio(id: id) }
            throw error as? TingxieError ?? TingxieError(.ioError, "cannot store the upload: \(error)")
        }
    }

    public func loadAudio(id: String, to url: URL) async throws -> Bool {
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: AudioStore.privateFile),
              let file = FileHandle(forWritingAtPath: url.path) else {
            throw TingxieError(.ioError, "cannot write the job's audio to \(url.path)")
        }
        defer { try? file.close() }
        var seq = 0
        while let chunk = try await read({ [seq] db in
            try await db.query("SELECT data FROM audio_chunks WHERE job_id = \(id) AND seq = \(seq)", logger: self.logger)
                .collect().first?.decode(Data.self)
        }) {
            try file.write(contentsOf: chunk)
            seq += 1
        }
        return seq > 0
    }

    public func removeAudio(id: String) async throws {
        try await read { db in try await self.deleteAudio(db, jobID: id) }
    }

    private func deleteAudio(_ db: PostgresConnection, jobID: String) async throws {
        try await db.query("DELETE FROM audio_chunks WHERE job_id = \(jobID)", logger: logger)
    }

    // MARK: Nodes

    public func announce(_ node: NodeStatus) async throws {
        _ = try await changes(query: """
            INSERT INTO nodes (id, name, role, workers, running, started_at, last_seen)
            VALUES (\(node.id), \(node.name), \(node.role), \(node.workers), \(node.running), \(node.startedAt), now())
            ON CONFLICT (id) DO UPDATE SET workers = excluded.workers, running = excluded.running, last_seen = now()
            RETURNING id
            """)
    }

    public func leave(id: String) async throws {
        _ = try await changes(query: "DELETE FROM nodes WHERE id = \(id) RETURNING id")
    }

    public func liveNodes(within window: Duration) async throws -> [NodeStatus] {
        try await read { db in
            try await db.query("""
                SELECT id, name, role, workers, running, started_at, extract(epoch FROM now() - last_seen)::float8
                FROM nodes WHERE last_seen > now() - make_interval(secs => \(window.seconds)) ORDER BY name, started_at
                """, logger: self.logger).collect().map { row in
                let (id, name, role, workers, running, startedAt, silent) =
                    try row.decode((String, String, String, Int, Int, Date, Double).self)
                return NodeStatus(id: id, name: name, role: role, workers: workers, running: running, startedAt: startedAt,
                                  silentSeconds: silent)
            }
        }
    }

    // MARK: Reads

    public func job(id: String) async throws -> Job? {
        try await read { db in
            try await Self.jobs(db.query("SELECT \(unescaped: Self.columns) FROM jobs WHERE id = \(id)", logger: self.logger)).first
        }
    }

    public func jobs(batchID: String) async throws -> [Job] {
        try await read { db in
            try await Self.jobs(db.query("SELECT \(unescaped: Self.columns) FROM jobs WHERE batch_id = \(batchID) ORDER BY seq",
                                         logger: self.logger))
        }
    }

    public func list(status: Job.Status?, limit: Int, cursor: Int64?, owner: String?) async throws -> (jobs: [Job], nextCursor: Int64?) {
        try await read { db in
            let rows = try await db.query("""
                SELECT \(unescaped: Self.columns) FROM jobs
                WHERE (\(owner)::text IS NULL OR owner = \(owner)) AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
                      AND (\(cursor)::int8 IS NULL OR seq < \(cursor))
                ORDER BY seq DESC LIMIT \(limit + 1)
                """, logger: self.logger).collect()
            let page = try rows.prefix(limit).map(Job.init(postgres:))
            let next: Int64? = rows.count > limit ? try rows[limit - 1].makeRandomAccess()["seq"].decode(Int64.self) : nil
            return (page, next)
        }
    }

    public func transcript(id: String) async throws -> Transcript? {
        let json = try await read { db in
            try await db.query("SELECT transcript FROM results WHERE job_id = \(id)", logger: self.logger).collect()
                .first?.decode(String.self)
        }
        return try json.map { try JSONDecoder().decode(Transcript.self, from: Data($0.utf8)) }
    }

    public func ping() async throws {
        try await read { db in _ = try await db.query("SELECT 1", logger: self.logger).collect() }
    }

    public func oldestQueuedAt() async throws -> Date? {
        try await read { db in
            try await db.query("SELECT min(created_at) FROM jobs WHERE status = 'queued'", logger: self.logger).collect()
                .first?.decode(Date?.self)
        }
    }

    public func finished(since date: Date) async throws -> (total: Int, failed: Int) {
        try await read { db in
            let row = try await db.query("""
                SELECT count(*)::int8, count(*) FILTER (WHERE status = 'failed')::int8 FROM jobs WHERE finished_at >= \(date)
                """, logger: self.logger).collect()
            let (total, failed) = try row[0].decode((Int, Int).self)
            return (total, failed)
        }
    }

    public func incidents(since date: Date?, limit: Int, owner: String?) async throws -> [Incident] {
        try await read { db in
            try await db.query("""
                SELECT id, kind, cause, message, job_id, filename, opened_at, resolved_at FROM incidents
                WHERE opened_at >= \(date ?? Date(timeIntervalSince1970: 0))
                  AND (\(owner)::text IS NULL OR job_id IN (SELECT id FROM jobs WHERE owner = \(owner)))
                ORDER BY opened_at DESC, id DESC LIMIT \(limit)
                """, logger: self.logger).collect().map { row in
                let (id, kind, cause, message, jobID, filename, openedAt, resolvedAt) =
                    try row.decode((Int64, String, String, String, String?, String?, Date, Date?).self)
                return Incident(id: id, kind: Incident.Kind(rawValue: kind) ?? .job, cause: Incident.Cause(rawValue: cause) ?? .internalError,
                                message: message, jobID: jobID, filename: filename, openedAt: openedAt, resolvedAt: resolvedAt)
            }
        }
    }

    // MARK: Plumbing

    /// `pg_advisory_xact_lock` key that serialises admissions ("tingxie" in ASCII).
    private static let admissionLock: Int64 = 0x7469_6e67_7869_65
    /// The columns a `Job` is read from, with the lease's expiry as epoch seconds.
    private static let columns = """
        seq, id, batch_id, status, filename, bytes, duration_s, language, task, hotwords, model, progress, attempts,
        max_attempts, error_code, error_message, created_at, started_at, finished_at, not_before, lease_owner,
        extract(epoch FROM lease_expires_at)::float8 AS lease_expires_at, owner, allow_partial
        """

    /// Runs `body` in a transaction and reports the queue to the gauge after it commits.
    private func write<T: Sendable>(settling reservation: QueueGauge.Reservation? = nil,
                                    _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let (value, stats) = try await read { db in
            try await db.withTransaction(logger: self.logger) { db in
                let value = try await body(db)
                return (value, try await Self.stats(db, logger: self.logger))
            }
        }
        gauge.observe(stats, settling: reservation)
        return value
    }

    /// Runs `body` on a pooled connection once the schema is current; a database that cannot be
    /// reached is `not_ready`.
    private func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            try await migrateOnce()
            return try await withConnection(body)
        } catch {
            throw PostgresFailure.describe(error)
        }
    }

    /// How long a call waits for a connection. The pool itself keeps callers waiting while it
    /// tries to connect (about a minute before it gives up), which would hold every request,
    /// probe and worker for as long.
    private static let connectionWait = Duration.seconds(5)

    /// The URL, for `whyUnavailable`.
    private let url: String
    /// The last diagnosis and when it was made: one connection attempt per 10 s at most.
    private let diagnosis = Mutex<(at: ContinuousClock.Instant, error: TingxieError)?>(nil)

    /// Why no pooled connection came: a refused login or connection says so (the pool itself
    /// retries without telling); otherwise the database did not answer in time.
    private func whyUnavailable() async -> TingxieError {
        if let last = diagnosis.withLock({ $0 }), ContinuousClock.now - last.at < .seconds(10) { return last.error }
        let error = await PostgresURL.diagnose(url, logger: logger)
            ?? TingxieError(.notReady, "the job database did not answer within \(Self.connectionWait.seconds) s; try again shortly")
        diagnosis.withLock { $0 = (.now, error) }
        return error
    }

    /// `body` on a pooled connection, or `not_ready` when none is to be had within `connectionWait`
    /// (once it has one, `body` takes as long as it takes).
    private func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let leased = Flag()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.client.withConnection { db in
                    leased.set()
                    return try await body(db)
                }
            }
            group.addTask {
                try await Task.sleep(for: Self.connectionWait)
                guard leased.isSet else {
                    throw await self.whyUnavailable()
                }
                return nil
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
            }
            throw CancellationError()
        }
    }

    /// The number of rows a `… RETURNING` statement changed.
    private func changes(query: PostgresQuery) async throws -> Int {
        try await read { db in try await db.query(query, logger: self.logger).collect().count }
    }

    private func recordFailure(_ db: PostgresConnection, jobID: String, cause: Incident.Cause, message: String) async throws {
        try await db.query("""
            INSERT INTO incidents (kind, cause, message, job_id, filename, node, opened_at, resolved_at)
            SELECT 'job', \(cause.rawValue), \(message), id, filename, \(node), now(), now() FROM jobs WHERE id = \(jobID)
            """, logger: logger)
    }

    private static func stats(_ db: PostgresConnection, logger: Logger) async throws -> QueueStats {
        let row = try await db.query("""
            SELECT count(*) FILTER (WHERE status = 'queued')::int8,
                   coalesce(sum(duration_s) FILTER (WHERE status = 'queued'), 0)::float8,
                   count(*) FILTER (WHERE status = 'running')::int8
            FROM jobs WHERE status IN ('queued', 'running')
            """, logger: logger).collect()
        let (queued, seconds, running) = try row[0].decode((Int, Double, Int).self)
        return QueueStats(queuedJobs: queued, queuedSeconds: seconds, runningJobs: running)
    }

    private static func jobs(_ rows: PostgresRowSequence) async throws -> [Job] {
        try await rows.collect().map(Job.init(postgres:))
    }

    /// Applies the schema's migrations the first time the store is used (again after a failure).
    private func migrateOnce() async throws {
        guard !migrated.withLock({ $0 }) else { return }
        try await withConnection { db in try await PostgresSchema.migrate(db, logger: self.logger) }
        migrated.withLock { $0 = true }
    }
}

extension Job {
    init(postgres row: PostgresRow) throws {
        let row = row.makeRandomAccess()
        let errorCode = try row["error_code"].decode(String?.self).map { TingxieError.Code(rawValue: $0) ?? .internalError }
        self.init(
            id: try row["id"].decode(String.self), batchID: try row["batch_id"].decode(String?.self),
            status: Status(rawValue: try row["status"].decode(String.self)) ?? .failed,
            filename: try row["filename"].decode(String?.self), bytes: try row["bytes"].decode(Int.self),
            durationS: try row["duration_s"].decode(Double.self), language: try row["language"].decode(String?.self),
            task: try row["task"].decode(String?.self).flatMap(RecognitionOptions.Task.init) ?? .transcribe,
            hotwords: try row["hotwords"].decode(String?.self), model: try row["model"].decode(String?.self),
            progress: try row["progress"].decode(Double.self), attempts: try row["attempts"].decode(Int.self),
            maxAttempts: try row["max_attempts"].decode(Int.self),
            error: try errorCode.map { TingxieError($0, try row["error_message"].decode(String?.self) ?? "") },
            createdAt: try row["created_at"].decode(Date.self), startedAt: try row["started_at"].decode(Date?.self),
            finishedAt: try row["finished_at"].decode(Date?.self), notBefore: try row["not_before"].decode(Date?.self),
            leaseOwner: try row["lease_owner"].decode(String?.self), leaseExpiresAt: try row["lease_expires_at"].decode(Double?.self),
            owner: try row["owner"].decode(String?.self), allowPartial: try row["allow_partial"].decode(Bool.self)
        )
    }
}

/// Set once, read from any task.
private final class Flag: Sendable {
    private let state = Mutex(false)

    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}
