import Foundation
import TingxieCore

/// A durable transcription job: one uploaded file and what became of it.
public struct Job: Sendable, Equatable, Identifiable {
    public enum Status: String, Sendable, Codable, CaseIterable {
        case queued, running, succeeded, failed, canceled

        /// Whether the job will change no more.
        public var isTerminal: Bool { self == .succeeded || self == .failed || self == .canceled }
    }

    /// Server-generated identifier; also names the job's audio file.
    public var id: String
    public var batchID: String?
    public var status: Status
    /// The client's name for the file, for display only; never used in a path.
    public var filename: String?
    /// Bytes uploaded.
    public var bytes: Int
    /// Audio duration in seconds as probed on upload (0 when the container did not say).
    public var durationS: Double
    /// The language code the client named, `auto` to detect it, or `nil` for the server's.
    public var language: String?
    /// `translate` for an English translation.
    public var task: RecognitionOptions.Task
    /// Hotwords as the client gave them (parsed again by the worker).
    public var hotwords: String?
    /// The model name the client asked for, if any.
    public var model: String?
    public var progress: Double
    /// How many times a worker has started the job.
    public var attempts: Int
    public var maxAttempts: Int
    public var error: TingxieError?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// A queued job is not claimed before this time (retry backoff).
    public var notBefore: Date?
    /// The worker that holds the job while it runs, and until when: `LeaseClock` seconds in the
    /// embedded store, the database clock's epoch seconds in PostgreSQL.
    public var leaseOwner: String?
    public var leaseExpiresAt: Double?
    /// Whose job it is: a hash of the API key that submitted it, when keys are configured.
    public var owner: String?
    /// Whether audio that decodes only in part (a truncated or corrupt file) gives a transcript
    /// of what was readable, with warnings, instead of failing the job.
    public var allowPartial: Bool

    public init(id: String, batchID: String? = nil, status: Status = .queued, filename: String?, bytes: Int,
                durationS: Double, language: String? = nil, task: RecognitionOptions.Task = .transcribe, hotwords: String? = nil, model: String? = nil,
                progress: Double = 0, attempts: Int = 0, maxAttempts: Int = 3, error: TingxieError? = nil,
                createdAt: Date = Date(), startedAt: Date? = nil, finishedAt: Date? = nil, notBefore: Date? = nil,
                leaseOwner: String? = nil, leaseExpiresAt: Double? = nil, owner: String? = nil, allowPartial: Bool = false) {
        self.id = id
        self.batchID = batchID
        self.status = status
        self.filename = filename
        self.bytes = bytes
        self.durationS = durationS
        self.language = language
        self.task = task
        self.hotwords = hotwords
        self.model = model
        self.progress = progress
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.error = error
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.notBefore = notBefore
        self.allowPartial = allowPartial
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.owner = owner
    }

    /// A new random identifier: 128 bits, lowercase hex, safe in any path or URL.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let value = generator.next() as UInt64
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Whether `id` has the shape of a generated identifier (so it can name a file).
    public static func isValidID(_ id: some StringProtocol) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// What is waiting in the queue.
public struct QueueStats: Sendable, Equatable {
    public var queuedJobs: Int
    /// Audio seconds of the queued jobs.
    public var queuedSeconds: Double
    public var runningJobs: Int

    public init(queuedJobs: Int = 0, queuedSeconds: Double = 0, runningJobs: Int = 0) {
        self.queuedJobs = queuedJobs
        self.queuedSeconds = queuedSeconds
        self.runningJobs = runningJobs
    }
}

/// The clock leases are measured on: monotonic, so that a step of the wall clock (NTP, a
/// hand-set date) or a suspended VM does not expire every lease at once. Its zero is the
/// machine's boot, so values stay comparable across restarts of the server, and a store that
/// outlives a reboot requeues its running jobs at start-up anyway.
public enum LeaseClock {
    public static var now: Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
