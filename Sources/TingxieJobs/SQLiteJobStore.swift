import Foundation
import GRDB
import ServiceLifecycle
import Synchronization
import TingxieCore
import TingxieOperations

/// The embedded job store: one SQLite file in WAL mode, one writer (GRDB's `DatabasePool`).
///
/// `synchronous=NORMAL`: a commit survives the process being killed (the WAL is in the OS's
/// hands), not a power cut; that is the trade SQLite documents for WAL and the one Tingxie makes.
/// The process holds an exclusive `flock` on `<file>.lock`, so two servers never share a store
/// and jobs found running at start-up are known to be orphans.
///
/// The store is a `Service`: when its group stops (after everything that uses it) it closes the
/// database and releases the lock at once, so a successor can open the file without waiting for
/// the last reference to go.
public final class SQLiteJobStore: JobStore, Service {
    /// The admission gauge this store keeps current.
    public let gauge: QueueGauge
    private let pool: DatabasePool
    /// The lock file's descriptor; -1 once released.
    private let lock: Mutex<Int32>

    /// Opens (creating when needed) the store at `path`, reporting the queue to `gauge`.
    /// - Throws: `TingxieError(.ioError)` when the file cannot be opened or another process holds it.
    public init(path: URL, gauge: QueueGauge = QueueGauge()) throws {
        self.gauge = gauge
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        let lockPath = path.path + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw TingxieError(.ioError, "cannot create \(lockPath): \(String(cString: strerror(errno)))")
        }
        lock = Mutex(descriptor)
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw TingxieError(.ioError, "\(path.path) is in use by another Tingxie process; give each server its own --data-dir")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path.path, configuration: configuration)
            try Self.migrator.migrate(pool)
            try pool.write { db in self.gauge.observe(try Self.stats(db)) }
        } catch {
            close(descriptor)
            throw TingxieError(.ioError, "cannot open the job store \(path.path): \(error)")
        }
    }

    deinit {
        releaseLock()
    }

    /// Holds the store until the graceful shutdown, then closes the database (later calls fail
    /// with an error) and releases the lock.
    public func run() async {
        try? await gracefulShutdown()
        try? pool.close()
        releaseLock()
    }

    private func releaseLock() {
        lock.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE jobs (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    batch_id TEXT,
                    status TEXT NOT NULL,
                    filename TEXT,
                    bytes INTEGER NOT NULL,
                    duration_s REAL NOT NULL,
                    language TEXT,
                    hotwords TEXT,
                    model TEXT,
                    progress REAL NOT NULL DEFAULT 0,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    max_attempts INTEGER NOT NULL,
                    error_code TEXT,
                    error_message TEXT,
                    created_at REAL NOT NULL,
                    started_at REAL,
                    finished_at REAL,
                    not_before REAL,
                    lease_owner TEXT,
                    lease_expires_at REAL
                );
                CREATE INDEX jobs_by_status ON jobs (status, seq);
                CREATE INDEX jobs_by_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;
                CREATE TABLE results (
                    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
                    transcript TEXT NOT NULL,
                    created_at REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-incidents") { db in
            try db.execute(sql: """
                CREATE TABLE incidents (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    cause TEXT NOT NULL,
                    message TEXT NOT NULL,
                    job_id TEXT,
                    filename TEXT,
                    opened_at REAL NOT NULL,
                    resolved_at REAL
                );
                CREATE INDEX incidents_by_time ON incidents (opened_at);
                CREATE INDEX jobs_by_finish ON jobs (finished_at) WHERE finished_at IS NOT NULL;
                """)
        }
        migrator.registerMigration("v3-owner-monotonic-leases") { db in
            // Leases move to the monotonic clock; none is held while the store is migrated.
            try db.execute(sql: """
                ALTER TABLE jobs ADD COLUMN owner TEXT;
                CREATE INDEX jobs_by_owner ON jobs (owner, seq) WHERE owner IS NOT NULL;
                UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL WHERE status = 'running';
                """)
        }
        migrator.registerMigration("v4-task") { db in
            try db.execute(sql: "ALTER TABLE jobs ADD COLUMN task TEXT")
        }
        migrator.registerMigration("v5-allow-partial") { db in
            try db.execute(sql: "ALTER TABLE jobs ADD COLUMN allow_partial INTEGER NOT NULL DEFAULT 0")
        }
        return migrator
    }

    // MARK: Writes

    public func enqueue(_ jobs: [Job], settling reservation: QueueGauge.Reservation?) async throws {
        try await write(settling: reservation) { db in
            for job in jobs {
                try db.execute(sql: """
                    INSERT INTO jobs (id, batch_id, status, filename, bytes, duration_s, language, task, hotwords, model,
                                      max_attempts, created_at, owner, allow_partial)
                    VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [job.id, job.batchID, job.filename, job.bytes, job.durationS, job.language,
                                     job.task == .translate ? job.task.rawValue : nil, job.hotwords, job.model, job.maxAttempts, job.createdAt.timeIntervalSince1970, job.owner,
                                     job.allowPartial])
            }
        }
    }

    public func claim(owner: String, lease: Duration) async throws -> Job? {
        try await write { db in
            let now = Date().timeIntervalSince1970
            return try Row.fetchOne(db, sql: """
                UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1,
                                started_at = coalesce(started_at, ?), not_before = NULL
                WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' AND (not_before IS NULL OR not_before <= ?)
                             ORDER BY seq LIMIT 1)
                RETURNING *
                """, arguments: [owner, LeaseClock.now + lease.seconds, now, now]).map(Job.init(row:))
        }
    }

    public func heartbeat(id: String, owner: String, progress: Double, lease: Duration) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE jobs SET lease_expires_at = ?, progress = max(progress, ?)
                WHERE id = ? AND status = 'running' AND lease_owner = ?
                """, arguments: [LeaseClock.now + lease.seconds, progress, id, owner])
            return db.changesCount == 1
        }
    }

    public func complete(id: String, owner: String, transcript: Transcript) async throws -> Bool {
        let json = String(decoding: try JSONEncoder().encode(transcript), as: UTF8.self)
        return try await write { db in
            let now = Date().timeIntervalSince1970
            try db.execute(sql: """
                UPDATE jobs SET status = 'succeeded', progress = 1, finished_at = ?, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = ? AND status = 'running' AND lease_owner = ?
                """, arguments: [now, id, owner])
            guard db.changesCount == 1 else { return false }
            try db.execute(sql: "INSERT INTO results (job_id, transcript, created_at) VALUES (?, ?, ?)",
                           arguments: [id, json, now])
            for shortfall in Incident.Cause.shortfalls(of: transcript) {
                try Self.recordFailure(db, jobID: id, cause: shortfall.cause, message: shortfall.message, at: now)
            }
            return true
        }
    }

    public func fail(id: String, owner: String, error: TingxieError, retryAt: Date?) async throws -> Bool {
        try await write { db in
            if let retryAt {
                try db.execute(sql: """
                    UPDATE jobs SET status = 'queued', not_before = ?, error_code = ?, error_message = ?,
                                    lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = ? AND status = 'running' AND lease_owner = ?
                    """, arguments: [retryAt.timeIntervalSince1970, error.code.rawValue, error.message, id, owner])
            } else {
                let now = Date().timeIntervalSince1970
                try db.execute(sql: """
                    UPDATE jobs SET status = 'failed', finished_at = ?, error_code = ?, error_message = ?,
                                    lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = ? AND status = 'running' AND lease_owner = ?
                    """, arguments: [now, error.code.rawValue, error.message, id, owner])
                guard db.changesCount == 1 else { return false }
                try Self.recordFailure(db, jobID: id, cause: Incident.Cause(error), message: error.message, at: now)
                return true
            }
            return db.changesCount == 1
        }
    }

    public func release(id: String, owner: String) async throws {
        try await write { db in
            try db.execute(sql: """
                UPDATE jobs SET status = 'queued', attempts = max(0, attempts - 1), lease_owner = NULL, lease_expires_at = NULL
                WHERE id = ? AND status = 'running' AND lease_owner = ?
                """, arguments: [id, owner])
        }
    }

    public func cancel(id: String) async throws -> Job? {
        try await write { db in
            try db.execute(sql: """
                UPDATE jobs SET status = 'canceled', finished_at = ?, lease_owner = NULL, lease_expires_at = NULL,
                                error_code = 'canceled', error_message = 'canceled by request'
                WHERE id = ? AND status IN ('queued', 'running')
                """, arguments: [Date().timeIntervalSince1970, id])
            return try Self.fetchJob(db, id: id)
        }
    }

    public func recoverExpiredLeases() async throws -> [Job] {
        try await recover(where: "status = 'running' AND lease_expires_at < ?", [LeaseClock.now],
                          reason: "its worker stopped renewing the lease")
    }

    /// Every running job: this process holds the store alone (its lock file).
    public func recoverAtStart() async throws -> [Job] {
        try await recover(where: "status = 'running'", [], reason: "the server stopped while it ran")
    }

    /// Requeues the matching running jobs, failing those that have used all their attempts
    /// (a file that kills its worker every time must not kill it forever).
    private func recover(where condition: String, _ arguments: StatementArguments, reason: String) async throws -> [Job] {
        try await write { db in
            let now = Date().timeIntervalSince1970
            let failed = try Row.fetchAll(db, sql: """
                UPDATE jobs SET status = 'failed', finished_at = ?, error_code = 'internal_error',
                                error_message = 'gave up after ' || attempts || ' attempts: ' || ?,
                                lease_owner = NULL, lease_expires_at = NULL
                WHERE \(condition) AND attempts >= max_attempts
                RETURNING *
                """, arguments: [now, reason] + arguments)
            for row in failed {
                try Self.recordFailure(db, jobID: row["id"], cause: .workerLost, message: row["error_message"], at: now)
            }
            let requeued = try Row.fetchAll(db, sql: """
                UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL
                WHERE \(condition)
                RETURNING *
                """, arguments: arguments)
            return (failed + requeued).map(Job.init(row:))
        }
    }

    /// Runs a write transaction and reports the queue to the gauge from inside it.
    private func write<T: Sendable>(settling reservation: QueueGauge.Reservation? = nil,
                                    _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.write { db in
            let value = try body(db)
            self.gauge.observe(try Self.stats(db), settling: reservation)
            return value
        }
    }

    /// A failed job's incident (or a partial one's), written in the transaction that ends it.
    private static func recordFailure(_ db: Database, jobID: String, cause: Incident.Cause, message: String, at time: Double) throws {
        try db.execute(sql: """
            INSERT INTO incidents (kind, cause, message, job_id, filename, opened_at, resolved_at)
            SELECT 'job', ?, ?, id, filename, ?, ? FROM jobs WHERE id = ?
            """, arguments: [cause.rawValue, message, time, time, jobID])
    }

    private static func stats(_ db: Database) throws -> QueueStats {
        let row = try Row.fetchOne(db, sql: """
            SELECT (SELECT count(*) FROM jobs WHERE status = 'queued'),
                   (SELECT total(duration_s) FROM jobs WHERE status = 'queued'),
                   (SELECT count(*) FROM jobs WHERE status = 'running')
            """)!
        return QueueStats(queuedJobs: row[0], queuedSeconds: row[1], runningJobs: row[2])
    }

    // MARK: Reads

    public func job(id: String) async throws -> Job? {
        try await pool.read { db in try Self.fetchJob(db, id: id) }
    }

    public func jobs(batchID: String) async throws -> [Job] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM jobs WHERE batch_id = ? ORDER BY seq", arguments: [batchID])
                .map(Job.init(row:))
        }
    }

    public func list(status: Job.Status?, limit: Int, cursor: Int64?, owner: String?) async throws -> (jobs: [Job], nextCursor: Int64?) {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let owner {
                conditions.append("owner = ?")
                arguments += [owner]
            }
            if let status {
                conditions.append("status = ?")
                arguments += [status.rawValue]
            }
            if let cursor {
                conditions.append("seq < ?")
                arguments += [cursor]
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM jobs \(filter) ORDER BY seq DESC LIMIT ?",
                                        arguments: arguments + [limit + 1])
            let page = rows.prefix(limit)
            let next: Int64? = rows.count > limit ? page.last?["seq"] : nil
            return (page.map(Job.init(row:)), next)
        }
    }

    public func purge(finishedBefore date: Date) async throws -> Int {
        try await write { db in
            let cutoff = date.timeIntervalSince1970
            try db.execute(sql: """
                DELETE FROM results WHERE job_id IN (SELECT id FROM jobs WHERE finished_at < ?
                                                     AND status IN ('succeeded', 'failed', 'canceled'));
                DELETE FROM incidents WHERE resolved_at < ?;
                DELETE FROM jobs WHERE finished_at < ? AND status IN ('succeeded', 'failed', 'canceled');
                """, arguments: [cutoff, cutoff, cutoff])
            return db.changesCount
        }
    }

    public func transcript(id: String) async throws -> Transcript? {
        let json = try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT transcript FROM results WHERE job_id = ?", arguments: [id])
        }
        return try json.map { try JSONDecoder().decode(Transcript.self, from: Data($0.utf8)) }
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    public func oldestQueuedAt() async throws -> Date? {
        try await pool.read { db in
            try Double.fetchOne(db, sql: "SELECT min(created_at) FROM jobs WHERE status = 'queued'")
                .map(Date.init(timeIntervalSince1970:))
        }
    }

    public func finished(since date: Date) async throws -> (total: Int, failed: Int) {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT count(*), total(status = 'failed') FROM jobs WHERE finished_at >= ?
                """, arguments: [date.timeIntervalSince1970])!
            return (row[0], Int(row[1] as Double))
        }
    }

    public func openAlert(cause: Incident.Cause, message: String) async throws -> Int64 {
        try await pool.write { db in
            try db.execute(sql: "INSERT INTO incidents (kind, cause, message, opened_at) VALUES ('alert', ?, ?, ?)",
                           arguments: [cause.rawValue, message, Date().timeIntervalSince1970])
            return db.lastInsertedRowID
        }
    }

    public func resolveAlert(id: Int64) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE incidents SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
                           arguments: [Date().timeIntervalSince1970, id])
        }
    }

    public func resolveOpenAlerts() async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE incidents SET resolved_at = ? WHERE kind = 'alert' AND resolved_at IS NULL",
                           arguments: [Date().timeIntervalSince1970])
        }
    }

    public func incidents(since date: Date?, limit: Int, owner: String?) async throws -> [Incident] {
        try await pool.read { db in try Self.fetchIncidents(db, since: date, limit: limit, owner: owner) }
    }

    /// Reads the incidents of the store at `path` without taking it over, for `tingxie incidents`
    /// while a server runs.
    public static func incidents(atPath path: URL, since date: Date?, limit: Int) throws -> [Incident] {
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw TingxieError(.fileNotFound, "no job store at \(path.path); pass the server's --data-dir")
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        do {
            let queue = try DatabaseQueue(path: path.path, configuration: configuration)
            return try queue.read { db in
                guard try db.tableExists("incidents") else { return [] }
                return try fetchIncidents(db, since: date, limit: limit)
            }
        } catch {
            throw TingxieError(.ioError, "cannot read \(path.path): \(error)")
        }
    }

    private static func fetchIncidents(_ db: Database, since date: Date?, limit: Int, owner: String? = nil) throws -> [Incident] {
        let mine = owner == nil ? "" : "AND job_id IN (SELECT id FROM jobs WHERE owner = ?)"
        return try Row.fetchAll(db, sql: """
            SELECT * FROM incidents WHERE opened_at >= ? \(mine) ORDER BY opened_at DESC, id DESC LIMIT ?
            """, arguments: StatementArguments([date?.timeIntervalSince1970 ?? 0] + (owner.map { [$0] } ?? []) + [limit]) ?? []).map { row in
            Incident(id: row["id"], kind: Incident.Kind(rawValue: row["kind"]) ?? .job,
                     cause: Incident.Cause(rawValue: row["cause"]) ?? .internalError, message: row["message"],
                     jobID: row["job_id"], filename: row["filename"],
                     openedAt: Date(timeIntervalSince1970: row["opened_at"]),
                     resolvedAt: (row["resolved_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
        }
    }

    private static func fetchJob(_ db: Database, id: String) throws -> Job? {
        try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(Job.init(row:))
    }
}

extension Job {
    init(row: Row) {
        func date(_ column: String) -> Date? {
            (row[column] as Double?).map(Date.init(timeIntervalSince1970:))
        }
        let errorCode = (row["error_code"] as String?).map { TingxieError.Code(rawValue: $0) ?? .internalError }
        self.init(
            id: row["id"], batchID: row["batch_id"], status: Status(rawValue: row["status"]) ?? .failed,
            filename: row["filename"], bytes: row["bytes"], durationS: row["duration_s"], language: row["language"],
            task: (row["task"] as String?).flatMap(RecognitionOptions.Task.init) ?? .transcribe, hotwords: row["hotwords"], model: row["model"], progress: row["progress"], attempts: row["attempts"],
            maxAttempts: row["max_attempts"],
            error: errorCode.map { TingxieError($0, row["error_message"] ?? "") },
            createdAt: date("created_at") ?? Date(timeIntervalSince1970: 0), startedAt: date("started_at"),
            finishedAt: date("finished_at"), notBefore: date("not_before"), leaseOwner: row["lease_owner"],
            leaseExpiresAt: row["lease_expires_at"], owner: row["owner"], allowPartial: row["allow_partial"] ?? false
        )
    }
}
