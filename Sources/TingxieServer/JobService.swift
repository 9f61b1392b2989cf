import Foundation
import Hummingbird
import TingxieCore
import TingxieJobs

/// What the controllers share: the store, the workers, uploads and the loaded model.
struct JobService: Sendable {
    let configuration: ServerConfiguration
    let store: any JobStore
    /// This process's admission control, kept current by the store.
    let gauge: QueueGauge
    /// Where queued audio goes for other nodes to reach, when the store keeps it.
    let sharedAudio: (any SharedAudio)?
    /// The nodes sharing the queue, when it is shared.
    let nodes: (any NodeDirectory)?
    let pool: WorkerPool
    let uploads: UploadReceiver
    let engine: TranscriptionEngine
    let metrics: ServerMetrics
    let monitor: ResourceMonitor
    /// Wakes those who wait for a job when it changes.
    let signals: JobSignals
    /// Clients following jobs' events, against `--max-followers`.
    let followers: BoundedCount

    /// Which request fields carry the job's options.
    struct FieldNames: Sendable {
        var hotwords = "hotwords"
        /// Whether the hotwords field is free text to find terms in (OpenAI's `prompt`) rather
        /// than a hotword list.
        var hotwordsArePrompt = false
        var language = "language"
        var model = "model"
        /// A request that names no language lets the model detect it where it can (OpenAI's
        /// rule), rather than taking the server's `--language`.
        var detectsOmittedLanguage = false
        /// What the jobs ask of the model.
        var task = RecognitionOptions.Task.transcribe
    }

    /// Admits, receives, validates and queues the files of one request.
    /// - Throws: `queue_full` before the body is read when the queue is full; 413 when the body
    ///   says or turns out to be too large; 400/415/422 for bad input. Nothing is queued then.
    /// - Parameter validate: further checks of the received files and fields before queueing.
    func submit(_ request: Request, caller: Caller, maxFiles: Int, batchID: String? = nil, fieldNames: FieldNames = FieldNames(),
                validate: (ReceivedUpload) throws -> Void = { _ in }) async throws -> (jobs: [Job], fields: [String: String]) {
        let declared = try uploads.checkDeclaredLength(request)
        let reservation = try gauge.reserve()
        defer { gauge.release(reservation) }
        try uploads.checkFreeDisk(for: declared)
        try await checkStoredAudio(adding: declared)
        let upload = try await uploads.receive(request, reservation: reservation, maxFiles: maxFiles)
        let allowPartial: Bool
        do {
            try validate(upload)
            allowPartial = try Self.allowsPartial(request.uri.queryParameters["partial"].map(String.init) ?? upload.fields["partial"])
        } catch {
            for file in upload.files { uploads.audio.remove(file.id) }
            throw error
        }
        let jobs = try await queue(upload, reservation: reservation, batchID: batchID, fieldNames: fieldNames, owner: caller.owner,
                                   allowPartial: allowPartial)
        return (jobs, upload.fields)
    }

    /// Queues the received files as jobs under the reservation their request holds; on any
    /// failure their audio is deleted and nothing is queued.
    func queue(_ upload: ReceivedUpload, reservation: QueueGauge.Reservation, batchID: String? = nil,
               fieldNames: FieldNames = FieldNames(), owner: String? = nil, allowPartial: Bool = false) async throws -> [Job] {
        var stored: [String] = []
        do {
            try uploads.checkFreeDisk(for: 0)
            // The files are in the folder already: counted, nothing more to add.
            try await checkStoredAudio(adding: 0)
            let given = upload.fields[fieldNames.hotwords]
            let hotwords = fieldNames.hotwordsArePrompt
                ? given.map { Hotword.listText(Hotword.terms(inPrompt: $0)) }.flatMap { $0.isEmpty ? nil : $0 }
                : given
            _ = try engine.matcher(for: hotwords)
            let language = try checkLanguage(upload.fields[fieldNames.language], detectingWhenOmitted: fieldNames.detectsOmittedLanguage)
            try engine.model.check(RecognitionOptions(language: language, task: fieldNames.task))
            let now = Date()
            let jobs = upload.files.map { file in
                Job(id: file.id, batchID: batchID, filename: file.filename, bytes: file.bytes, durationS: file.durationS,
                    language: language, task: fieldNames.task, hotwords: hotwords, model: upload.fields[fieldNames.model],
                    maxAttempts: configuration.maxAttempts, createdAt: now, owner: owner, allowPartial: allowPartial)
            }
            if let sharedAudio {
                for file in upload.files {
                    try await sharedAudio.storeAudio(id: file.id, from: uploads.audio.url(for: file.id))
                    stored.append(file.id)
                    uploads.audio.remove(file.id)
                }
            }
            try await store.enqueue(jobs, settling: reservation)
            pool.wake()
            return jobs
        } catch {
            for file in upload.files { uploads.audio.remove(file.id) }
            for id in stored { try? await sharedAudio?.removeAudio(id: id) }
            throw error
        }
    }

    /// `partial=allow` (query or form field): a file that decodes only in part is transcribed as
    /// far as it reads, with warnings; `fail` (the default) fails its job.
    static func allowsPartial(_ value: String?) throws -> Bool {
        switch value?.trimmingCharacters(in: .whitespaces) {
        case nil, "", "fail": false
        case "allow": true
        case let other?: throw TingxieError(.invalidArgument, "partial must be allow or fail, not \"\(other.prefix(20))\"")
        }
    }

    /// Refuses an upload that would take the audio kept for queued jobs past
    /// `--max-stored-audio-gb` (on disk, and in the shared database when it keeps the audio).
    func checkStoredAudio(adding bytes: Int) async throws {
        guard let limit = configuration.maxStoredAudioBytes else { return }
        let stored = try await (sharedAudio?.storedAudioBytes() ?? 0) + uploads.audio.storedBytes()
        guard stored + bytes > limit else { return }
        throw TingxieError(.insufficientStorage, String(format: "the server keeps %.2f GB of audio for queued jobs, its limit is %.2f GB (--max-stored-audio-gb); try again once the queue has shrunk",
                                                        Double(stored) / 1e9, Double(limit) / 1e9))
    }

    /// The language a request names, as the model takes it (a code, or `auto` to detect it);
    /// when it names none, the server's `--language`, or `auto` with `detectingWhenOmitted` for
    /// a model that detects.
    /// - Throws: 400 listing the languages the model supports.
    func checkLanguage(_ requested: String?, detectingWhenOmitted: Bool = false) throws -> String {
        guard let requested = requested?.trimmingCharacters(in: .whitespaces), !requested.isEmpty else {
            return detectingWhenOmitted && engine.model.detectsLanguage ? ModelInfo.detect : configuration.language
        }
        return try engine.model.language(named: requested)
    }

    /// The job with `id` when `caller` may reach it (its own, or any for an admin key or a
    /// server without keys); a 404 otherwise, the same as for a job that does not exist.
    func job(_ id: String, for caller: Caller) async throws -> Job {
        guard Job.isValidID(id), let job = try await store.job(id: id), caller.mayReach(owner: job.owner) else {
            throw TingxieError(.notFound, "no job with id \"\(id.prefix(64))\"")
        }
        return job
    }

    /// Cancels a job `caller` may reach and stops it if it is running here.
    func cancel(_ id: String, for caller: Caller) async throws -> Job {
        let before = try await job(id, for: caller)
        guard !before.status.isTerminal else {
            throw TingxieError(.jobFinished, "job \(id) has already \(before.status.rawValue); there is nothing to cancel")
        }
        guard let after = try await store.cancel(id: id) else { throw TingxieError(.notFound, "no job with id \"\(id)\"") }
        signals.notify(id)
        if !pool.stopCanceled(id: id) {
            uploads.audio.remove(id)
        }
        return after
    }

    /// Waits until the job is finished, for at most `timeout`: the store is read when the job
    /// changes (`signals`), and otherwise once every `fallbackTick`. When the server shuts down,
    /// a job still queued will not run here before it stops: the wait ends with a 503, so that
    /// HTTP can drain.
    func waitForResult(_ id: String, timeout: Duration) async throws -> Job {
        let deadline = ContinuousClock.now + timeout
        return try await signals.subscribe(to: id) { ticket in
            while true {
                let current = try await job(id, for: .server)
                if current.status.isTerminal { return current }
                if current.status == .queued, pool.isStopping {
                    throw TingxieError(.notReady, "the server is shutting down before job \(id) could run; try again shortly")
                }
                let left = deadline - .now
                guard left > .zero else {
                    throw TingxieError(.timeout, "job \(id) did not finish within \(Int(timeout.seconds)) s; it goes on: GET /v1/jobs/\(id)")
                }
                try Task.checkCancellation()
                await ticket.wait(atMost: min(left, Self.fallbackTick))
            }
        }
    }

    /// How often a waiter reads the store when nothing told it of a change (a retry scheduled,
    /// a shutdown beginning, a notification lost).
    static let fallbackTick = Duration.seconds(1)
    /// The same for followers, which also see the progress heartbeats save (every few seconds).
    static let followerFallbackTick = Duration.seconds(5)

    /// A follower's place, taken before the response starts; a 503 when `--max-followers` are
    /// following already. The response body holds it and gives it back when it is done with.
    func followerPlace() throws -> FollowerPlace {
        guard followers.enter() else {
            throw TingxieError(.notReady, "\(followers.limit) clients are following jobs already (--max-followers); try again shortly, or poll GET /v1/jobs/{id}")
        }
        return FollowerPlace(followers)
    }

    /// The transcript of a finished job, or why there is none.
    func transcript(of job: Job) async throws -> Transcript {
        switch job.status {
        case .succeeded:
            guard let transcript = try await store.transcript(id: job.id) else {
                throw TingxieError(.internalError, "job \(job.id) succeeded but its transcript is missing")
            }
            return transcript
        case .queued, .running:
            throw TingxieError(.jobNotFinished, String(format: "job %@ is %@ (%.0f%% done); ask again later", job.id, job.status.rawValue, job.progress * 100))
        case .failed:
            throw APIError(.conflict, code: "job_failed", "job \(job.id) failed: \(job.error?.message ?? "unknown error")")
        case .canceled:
            throw APIError(.conflict, code: "job_canceled", "job \(job.id) was canceled")
        }
    }

    /// Seconds a client refused for a full queue should wait: about the time the workers need
    /// to get through a tenth of the queued audio, between 1 and 300.
    func retryAfter() -> Int {
        let stats = gauge.stats
        let workers = max(1, configuration.workers.workers)
        let estimate = stats.queuedSeconds * 0.15 / Double(workers) / 10
        return Int(min(300, max(1, estimate.rounded(.up))))
    }
}
