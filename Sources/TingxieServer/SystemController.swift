import Foundation
import Hummingbird
import TingxieCore
import TingxiePipeline
import TingxieJobs

/// Probes, metrics, the model list and the system overview.
struct SystemController {
    typealias Context = APIRequestContext
    let service: JobService

    /// The API's part: metrics, models, the overview and incidents (behind the keys).
    func addRoutes(to api: some RouterMethods<Context>) {
        addMetrics(to: api)
        api.get("/v1/models", use: models)
        api.get("/v1/system", use: system)
        api.get("/v1/incidents", use: incidents)
    }

    /// What every role serves to anyone: liveness and readiness.
    func addProbes(to router: some RouterMethods<Context>) {
        router.get("/healthz", use: health)
        router.get("/readyz", use: ready)
    }

    func addMetrics(to api: some RouterMethods<Context>) {
        api.get("/metrics", use: metrics)
    }

    @Sendable func metrics(request: Request, context: Context) async throws -> Response {
        let levels = ServerMetrics.Levels(
            queue: service.gauge.stats, running: service.pool.runningCount,
            workers: service.configuration.workers.workers, throttled: service.pool.isThrottled,
            oldestQueuedAge: service.monitor.oldestQueuedAge, resources: await service.monitor.current(), alerts: service.monitor.alerts,
            nodes: try? await service.nodes?.liveNodes(within: NodePresence.window))
        return JSONResponse.text(service.metrics.render(levels), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    @Sendable func incidents(request: Request, context: Context) async throws -> Response {
        let query = request.uri.queryParameters
        let since = try query["since"].map { value in
            Date().addingTimeInterval(-(try ClientNumber.duration(value, field: "since", upTo: Duration.longestParsed)).seconds)
        }
        let limit = try query["limit"].map { try ClientNumber.integer($0, field: "limit", in: 1...1000) } ?? 100
        // A key holder sees its own jobs' incidents; an admin key (or a server without keys) all.
        let owner: String?
        switch context.caller.scope {
        case .all: owner = nil
        case .owner(let mine): owner = mine
        case .none: return JSONResponse.text(IncidentReport.json([]), contentType: "application/json")
        }
        let incidents = try await service.store.incidents(since: since, limit: limit, owner: owner)
        return JSONResponse.text(IncidentReport.json(incidents), contentType: "application/json")
    }

    @Sendable func health(request: Request, context: Context) async throws -> Response {
        JSONResponse.make(["status": "ok"])
    }

    /// Ready when the model is loaded (it is before the server starts) and the store answers.
    @Sendable func ready(request: Request, context: Context) async throws -> Response {
        do {
            try await service.store.ping()
        } catch {
            // Anyone may ask: the reason goes to the log, not to the client.
            context.logger.warning("not ready: the job store does not answer", metadata: ["error": "\(error)"])
            throw TingxieError(.notReady, "the job store does not answer")
        }
        return JSONResponse.make(["status": "ready", "model": service.engine.model.name])
    }

    /// The nodes on the shared queue; `nil` for a server with a store of its own.
    /// - Throws: `not_ready` while the shared database cannot be reached.
    func cluster() async throws -> SystemDTO.Cluster? {
        guard let directory = service.nodes else { return nil }
        return .init(nodes: try await directory.liveNodes(within: NodePresence.window).map(SystemDTO.Node.init))
    }

    @Sendable func models(request: Request, context: Context) async throws -> Response {
        JSONResponse.make(ModelsDTO(data: [.init(id: service.engine.model.name, tingxie: .init(service.engine.model))]))
    }

    @Sendable func system(request: Request, context: Context) async throws -> Response {
        let configuration = service.configuration
        let stats = service.gauge.stats
        let resources = await service.monitor.current()
        return JSONResponse.make(SystemDTO(
            version: tingxieVersion,
            model: .init(service.engine.model),
            language: configuration.language,
            workers: configuration.workers.workers,
            threadsPerWorker: configuration.threadsPerWorker,
            queue: .init(queued: stats.queuedJobs, queuedAudioS: stats.queuedSeconds, running: service.pool.runningCount),
            memory: .init(rssBytes: resources.processResidentBytes, availableBytes: resources.systemAvailableBytes,
                          totalBytes: resources.systemTotalBytes, cgroupLimitBytes: resources.cgroupLimitBytes),
            gpu: resources.gpus.isEmpty ? nil : resources.gpus.map { .init(index: $0.index, usedBytes: $0.usedBytes, totalBytes: $0.totalBytes) },
            throttled: service.pool.isThrottled,
            hotwords: .init(serverTerms: service.engine.serverHotwords.count, maxTerms: Hotword.maxCount, maxTermLength: Hotword.maxLength),
            punctuation: .init(service.engine),
            live: .init(service.engine, partialShare: service.configuration.livePartialShare),
            // The rest of the overview stands while the shared database is away, as in /metrics.
            cluster: try? await cluster(),
            limits: .init(maxUploadBytes: configuration.maxUploadBytes, maxDurationS: configuration.maxDurationSeconds,
                          maxSyncDurationS: configuration.maxSyncDurationSeconds, maxQueuedJobs: configuration.queue.maxQueuedJobs,
                          maxQueuedAudioS: configuration.queue.maxQueuedSeconds, maxBatchFiles: configuration.maxBatchFiles)
        ))
    }
}

struct ModelDetailsDTO: Encodable {
    var family: String
    var name: String
    var tokenTimestamps: Bool
    /// Whether the model times stretches of its text (Whisper), so that sentences are decoded
    /// together (`merge_target_s`) and split back.
    var segmentTimestamps: Bool
    /// Neighbouring sentences are decoded together in pieces of up to this length (0: never).
    var mergeTargetS: Double
    var maxSegmentS: Double
    /// Whether hotwords bias the decoder itself (transducers); the text stage works for all.
    var hotwordsInDecoder: Bool
    /// The `language` values a request may send; the first is the server's default.
    var languages: [String]
    /// Whether `language=auto` (and an OpenAI request without one) lets the model find it.
    var languageDetection: Bool
    /// Whether `POST /v1/audio/translations` works.
    var translation: Bool
    /// OpenAI clients must send some `model`; every value is accepted and this model is used.
    var acceptsAnyModelName = true

    init(_ model: ModelInfo) {
        family = model.family
        name = model.name
        tokenTimestamps = model.givesTokenTimestamps
        segmentTimestamps = model.givesSegmentTimestamps
        mergeTargetS = model.splitsMergedPieces ? model.mergeTargetSeconds : 0
        maxSegmentS = model.maxSegmentSeconds
        hotwordsInDecoder = model.biasesHotwords
        languages = model.languages
        languageDetection = model.detectsLanguage
        translation = model.translates
    }

    enum CodingKeys: String, CodingKey {
        case family, name
        case tokenTimestamps = "token_timestamps", segmentTimestamps = "segment_timestamps", mergeTargetS = "merge_target_s", maxSegmentS = "max_segment_s", acceptsAnyModelName = "accepts_any_model_name"
        case hotwordsInDecoder = "hotwords_in_decoder", languages, languageDetection = "language_detection", translation
    }
}

/// OpenAI's model list, with Tingxie's details on each entry.
struct ModelsDTO: Encodable {
    struct Model: Encodable {
        var id: String
        var object = "model"
        var created = 0
        var owned_by = "tingxie"
        var tingxie: ModelDetailsDTO
    }

    var object = "list"
    var data: [Model]
}

struct SystemDTO: Encodable {
    struct Cluster: Encodable {
        var nodes: [Node]
    }

    /// A node that reported itself within `NodePresence.window`.
    struct Node: Encodable {
        var name: String
        var role: String
        var workers: Int
        var running: Int
        var startedAt: Date
        var lastSeenSAgo: Double
        enum CodingKeys: String, CodingKey {
            case name, role, workers, running, startedAt = "started_at", lastSeenSAgo = "last_seen_s_ago"
        }

        init(_ node: NodeStatus) {
            (name, role, workers, running, startedAt, lastSeenSAgo) =
                (node.name, node.role, node.workers, node.running, node.startedAt, (node.silentSeconds * 10).rounded() / 10)
        }
    }

    struct Queue: Encodable {
        var queued: Int
        var queuedAudioS: Double
        var running: Int
        enum CodingKeys: String, CodingKey { case queued, running, queuedAudioS = "queued_audio_s" }
    }

    struct Memory: Encodable {
        var rssBytes: Int?
        var availableBytes: Int?
        var totalBytes: Int?
        var cgroupLimitBytes: Int?
        enum CodingKeys: String, CodingKey {
            case rssBytes = "rss_bytes", availableBytes = "available_bytes", totalBytes = "total_bytes"
            case cgroupLimitBytes = "cgroup_limit_bytes"
        }
    }

    struct GPU: Encodable {
        var index: Int
        var usedBytes: Int
        var totalBytes: Int
        enum CodingKeys: String, CodingKey { case index, usedBytes = "used_bytes", totalBytes = "total_bytes" }
    }

    struct Hotwords: Encodable {
        /// Terms from `serve --hotwords-file`, applied to every request.
        var serverTerms: Int
        var maxTerms: Int
        var maxTermLength: Int
        enum CodingKeys: String, CodingKey {
            case serverTerms = "server_terms", maxTerms = "max_terms", maxTermLength = "max_term_length"
        }
    }

    struct Limits: Encodable {
        var maxUploadBytes: Int
        var maxDurationS: Double
        var maxSyncDurationS: Double
        var maxQueuedJobs: Int
        var maxQueuedAudioS: Double
        var maxBatchFiles: Int
        enum CodingKeys: String, CodingKey {
            case maxUploadBytes = "max_upload_bytes", maxDurationS = "max_duration_s", maxSyncDurationS = "max_sync_duration_s"
            case maxQueuedJobs = "max_queued_jobs", maxQueuedAudioS = "max_queued_audio_s", maxBatchFiles = "max_batch_files"
        }
    }

    /// Whether finished sentences get punctuation from a punctuation model, and why (not).
    struct Punctuation: Encodable {
        var active: Bool
        var model: String?
        var reason: String

        init(_ engine: TranscriptionEngine) {
            active = engine.pipeline.punctuator != nil
            model = engine.pipeline.punctuator?.name
            if let model {
                reason = "the \(engine.model.family) model gives no punctuation; \(model) adds it to every sentence"
            } else if engine.model.punctuates {
                reason = "the \(engine.model.family) model punctuates its own text"
            } else {
                reason = "the \(engine.model.family) model gives no punctuation and no punctuation model is loaded: `tingxie models pull punctuation-zh-en`, or --punctuation-model DIR"
            }
        }
    }

    /// How live streams show words before a sentence ends: from a streaming model as audio
    /// arrives, or from the offline model re-recognising the open sentence, and why.
    struct Live: Encodable {
        var partials: Bool
        var source: String?
        var streamingModel: String?
        var reason: String
        /// How often the offline model re-recognises (without a streaming model) unless a
        /// client's `chunk_size` says otherwise.
        var partialIntervalS: Double?
        var partialMaxShare: Double

        init(_ engine: TranscriptionEngine, partialShare: Double) {
            partials = partialShare > 0
            partialMaxShare = partialShare
            streamingModel = engine.pipeline.streaming?.name
            if !partials {
                reason = "--live-partial-share is 0: live streams get each sentence as it ends, no text before"
            } else if let streamingModel {
                source = "streaming model"
                reason = "\(streamingModel) decodes each sentence as it is spoken; the \(engine.model.family) model gives the final sentence"
            } else {
                source = "offline model"
                partialIntervalS = TranscriptionPipeline.Configuration().partialIntervalSeconds
                reason = "no streaming model is loaded (`tingxie models pull paraformer-zh-streaming`, or --streaming-model-dir DIR): the \(engine.model.family) model re-recognises the open sentence"
            }
        }

        enum CodingKeys: String, CodingKey {
            case partials, source, reason, streamingModel = "streaming_model", partialIntervalS = "partial_interval_s",
                 partialMaxShare = "partial_max_share"
        }
    }

    var version: String
    var model: ModelDetailsDTO
    var language: String
    var workers: Int
    var threadsPerWorker: Int
    var queue: Queue
    var memory: Memory
    /// `null` without an NVIDIA GPU.
    var gpu: [GPU]?
    /// Whether workers have stopped claiming jobs because memory is short.
    var throttled: Bool
    var hotwords: Hotwords
    var punctuation: Punctuation
    var live: Live
    /// The nodes sharing the queue (PostgreSQL only).
    var cluster: Cluster?
    var limits: Limits

    enum CodingKeys: String, CodingKey {
        case version, model, language, workers, queue, memory, gpu, throttled, hotwords, punctuation, live, cluster, limits
        case threadsPerWorker = "threads_per_worker"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try container.encode(model, forKey: .model)
        try container.encode(language, forKey: .language)
        try container.encode(workers, forKey: .workers)
        try container.encode(threadsPerWorker, forKey: .threadsPerWorker)
        try container.encode(queue, forKey: .queue)
        try container.encode(memory, forKey: .memory)
        try container.encode(gpu, forKey: .gpu)
        try container.encode(throttled, forKey: .throttled)
        try container.encode(hotwords, forKey: .hotwords)
        try container.encode(punctuation, forKey: .punctuation)
        try container.encode(live, forKey: .live)
        try container.encodeIfPresent(cluster, forKey: .cluster)
        try container.encode(limits, forKey: .limits)
    }
}
