import Foundation
import TingxieCore

/// A classified failure: a job that failed, or an alert the resource monitor opened.
public struct Incident: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable { case job, alert }

    /// What went wrong, in classes an operator can act on.
    public enum Cause: String, Sendable, Codable, CaseIterable {
        case decodeError = "decode_error"
        case unsupportedFormat = "unsupported_format"
        case invalidAudio = "invalid_audio"
        case tooLong = "too_long"
        case timeout
        case outOfMemory = "out_of_memory"
        case modelError = "model_error"
        case workerLost = "worker_lost"
        case ioError = "io_error"
        case overload
        case memoryPressure = "memory_pressure"
        case gpuMemoryPressure = "gpu_memory_pressure"
        case queueWait = "queue_wait"
        case failureRate = "failure_rate"
        case connectionReset = "connection_reset"
        /// A job that succeeded on the readable part of a truncated or corrupt file (`partial=allow`).
        case partialAudio = "partial_audio"
        /// A job that succeeded with stretches of detected speech that gave no text (`Transcript.gaps`).
        case speechGap = "speech_gap"
        case internalError = "internal_error"

        /// The class of a job's failure.
        public init(_ error: TingxieError) {
            let message = error.message.lowercased()
            if message.contains("out of memory") || message.contains("bad_alloc") || message.contains("cannot allocate memory") {
                self = .outOfMemory
                return
            }
            self = switch error.code {
            case .decodeError, .audioTruncated, .audioCorrupt: .decodeError
            case .unsupportedFormat: .unsupportedFormat
            case .invalidAudio, .fileNotFound: .invalidAudio
            case .tooLarge: .tooLong
            case .timeout: .timeout
            case .modelError, .modelNotFound, .invalidModel: .modelError
            case .ioError: .ioError
            case .queueFull, .notReady: .overload
            default: .internalError
            }
        }

        /// The setting or practice that prevents this class, for reports.
        public var remedy: String {
            switch self {
            case .decodeError, .invalidAudio: "Tingxie probes every upload and answers 422 before queueing; re-encode the file (ffmpeg -i in.x -ar 16000 -ac 1 out.wav)"
            case .unsupportedFormat: "uploads are probed against an allow-list of containers and refused with 415 before queueing"
            case .tooLong: "--max-duration refuses long audio with 413 before queueing; Tingxie cuts any length into bounded VAD segments, so memory does not grow with duration"
            case .timeout: "per-job timeouts scale with the audio (5 min + its duration); a job over it fails alone and frees its worker"
            case .outOfMemory: "segments are bounded (<= 30 s) so memory is flat; --workers caps jobs at once and workers stop claiming above 90% memory"
            case .modelError: "`tingxie models verify DIR` checks a model before serving it; the model's metadata is validated at load"
            case .workerLost: "jobs hold leases: a dead worker's job is requeued (at once after a restart) and failed after 3 attempts"
            case .ioError: "check free disk space and the permissions of --data-dir"
            case .overload: "--max-queued-jobs / --max-queued-audio-hours answer 503 with Retry-After before reading the body; add workers or machines"
            case .memoryPressure, .gpuMemoryPressure: "workers stop claiming new jobs while memory is above the alert threshold; lower --workers or add memory"
            case .queueWait: "add workers or machines; clients can watch Retry-After and /v1/system"
            case .failureRate: "look at GET /v1/incidents for the classes behind the failures"
            case .partialAudio: "the file decoded only in part; the transcript covers the readable audio and says so in its warnings. Ask the sender for the whole file"
            case .speechGap: "the model found no words in some detected speech, even decoded on its own (noise, music, another language, or speech the model cannot follow); the transcript lists the stretches in `gaps`. Listen to them, or try a larger model"
            case .connectionReset: "uploads are durable jobs: a client that drops its connection can fetch the result later by job id"
            case .internalError: "see the server log around the incident's time"
            }
        }
    }

    public var id: Int64
    public var kind: Kind
    public var cause: Cause
    public var message: String
    public var jobID: String?
    public var filename: String?
    public var openedAt: Date
    /// When the condition ended (alerts); `nil` while open. Failed jobs are resolved when recorded.
    public var resolvedAt: Date?

    public init(id: Int64 = 0, kind: Kind, cause: Cause, message: String, jobID: String? = nil, filename: String? = nil,
                openedAt: Date = Date(), resolvedAt: Date? = nil) {
        self.id = id
        self.kind = kind
        self.cause = cause
        self.message = message
        self.jobID = jobID
        self.filename = filename
        self.openedAt = openedAt
        self.resolvedAt = resolvedAt
    }
}

extension Incident.Cause {
    /// The incidents a succeeded job's transcript files, with their messages: `partialAudio` when
    /// the audio read only in part (its warnings besides the gaps' own, which comes last),
    /// `speechGap` when speech gave no text; none for a complete transcript.
    public static func shortfalls(of transcript: Transcript) -> [(cause: Incident.Cause, message: String)] {
        var warnings = transcript.warnings ?? []
        var shortfalls: [(cause: Incident.Cause, message: String)] = []
        if transcript.gaps?.isEmpty == false, let gaps = warnings.popLast() { shortfalls.append((.speechGap, gaps)) }
        if !warnings.isEmpty { shortfalls.insert((.partialAudio, warnings.joined(separator: "; ")), at: 0) }
        return shortfalls
    }
}

/// The resource monitor's alerts, by the names it logs and reports.
public enum AlertKind: String, Sendable, CaseIterable {
    case memory, gpuMemory = "gpu_memory", queueWait = "queue_wait", failureRate = "failure_rate"

    public var cause: Incident.Cause {
        switch self {
        case .memory: .memoryPressure
        case .gpuMemory: .gpuMemoryPressure
        case .queueWait: .queueWait
        case .failureRate: .failureRate
        }
    }
}

/// Counts per cause and the mean time to resolve, over a list of incidents.
public struct IncidentSummary: Sendable, Equatable {
    public var counts: [Incident.Cause: Int]
    public var openAlerts: Int
    /// Mean seconds from opening to resolving, over the resolved alerts; `nil` when there are none.
    public var meanTimeToResolve: Double?

    public init(_ incidents: [Incident]) {
        counts = Dictionary(grouping: incidents, by: \.cause).mapValues(\.count)
        let alerts = incidents.filter { $0.kind == .alert }
        openAlerts = alerts.filter { $0.resolvedAt == nil }.count
        let durations = alerts.compactMap { alert in alert.resolvedAt.map { $0.timeIntervalSince(alert.openedAt) } }
        meanTimeToResolve = durations.isEmpty ? nil : durations.reduce(0, +) / Double(durations.count)
    }
}
