import Foundation
import Hummingbird
import TingxieCore
import TingxieJobs

/// Probes, the model list and the system overview.
struct SystemController<Context: RequestContext> {
    let service: JobService

    func addRoutes(to router: Router<Context>) {
        router.get("/healthz", use: health)
        router.get("/readyz", use: ready)
        router.get("/v1/models", use: models)
        router.get("/v1/system", use: system)
    }

    @Sendable func health(request: Request, context: Context) async throws -> Response {
        JSONResponse.make(["status": "ok"])
    }

    /// Ready when the model is loaded (it is before the server starts) and the store answers.
    @Sendable func ready(request: Request, context: Context) async throws -> Response {
        do {
            try await service.store.ping()
        } catch {
            throw TingxieError(.notReady, "the job store does not answer: \(error)")
        }
        return JSONResponse.make(["status": "ready", "model": service.engine.model.name])
    }

    @Sendable func models(request: Request, context: Context) async throws -> Response {
        JSONResponse.make(ModelsDTO(data: [.init(id: service.engine.model.name, tingxie: .init(service.engine.model))]))
    }

    @Sendable func system(request: Request, context: Context) async throws -> Response {
        let configuration = service.configuration
        let stats = service.store.gauge.stats
        let memory = MemoryReading.now()
        return JSONResponse.make(SystemDTO(
            version: tingxieVersion,
            model: .init(service.engine.model),
            language: configuration.language,
            workers: configuration.workers.workers,
            threadsPerWorker: configuration.threadsPerWorker,
            queue: .init(queued: stats.queuedJobs, queuedAudioS: stats.queuedSeconds, running: service.pool.runningCount),
            memory: .init(rssBytes: memory.residentBytes, availableBytes: memory.availableBytes),
            gpu: nil,
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
    var maxSegmentS: Double
    /// OpenAI clients must send some `model`; every value is accepted and this model is used.
    var acceptsAnyModelName = true

    init(_ model: ModelInfo) {
        family = model.family
        name = model.name
        tokenTimestamps = model.givesTokenTimestamps
        maxSegmentS = model.maxSegmentSeconds
    }

    enum CodingKeys: String, CodingKey {
        case family, name
        case tokenTimestamps = "token_timestamps", maxSegmentS = "max_segment_s", acceptsAnyModelName = "accepts_any_model_name"
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
    struct Queue: Encodable {
        var queued: Int
        var queuedAudioS: Double
        var running: Int
        enum CodingKeys: String, CodingKey { case queued, running, queuedAudioS = "queued_audio_s" }
    }

    struct Memory: Encodable {
        var rssBytes: Int?
        var availableBytes: Int?
        enum CodingKeys: String, CodingKey { case rssBytes = "rss_bytes", availableBytes = "available_bytes" }
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

    var version: String
    var model: ModelDetailsDTO
    var language: String
    var workers: Int
    var threadsPerWorker: Int
    var queue: Queue
    var memory: Memory
    /// Always `null`: Tingxie runs on the CPU.
    var gpu: String?
    var limits: Limits

    enum CodingKeys: String, CodingKey {
        case version, model, language, workers, queue, memory, gpu, limits
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
        try container.encode(limits, forKey: .limits)
    }
}

/// The process's resident memory and the machine's available memory, from `/proc`.
public struct MemoryReading: Sendable {
    public var residentBytes: Int?
    public var availableBytes: Int?

    public static func now() -> MemoryReading {
        MemoryReading(residentBytes: kilobytes("VmRSS:", in: "/proc/self/status").map { $0 * 1024 },
                      availableBytes: kilobytes("MemAvailable:", in: "/proc/meminfo").map { $0 * 1024 })
    }

    private static func kilobytes(_ key: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }
}
