import Foundation
import Hummingbird
import TingxieCore
import TingxieJobs

/// `/v1/jobs` and `/v1/batches`: durable transcription jobs.
struct JobsController {
    typealias Context = APIRequestContext
    let service: JobService

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/jobs", use: create)
        router.get("/v1/jobs", use: list)
        router.get("/v1/jobs/:id", use: show)
        router.delete("/v1/jobs/:id", use: cancel)
        router.get("/v1/jobs/:id/transcript", use: transcript)
        router.get("/v1/jobs/:id/events", use: events)
        router.post("/v1/batches", use: createBatch)
        router.get("/v1/batches/:id", use: showBatch)
    }

    @Sendable func create(request: Request, context: Context) async throws -> Response {
        let (jobs, _) = try await service.submit(request, caller: context.caller, maxFiles: 1)
        return JSONResponse.make(JobDTO(jobs[0]), status: .accepted)
    }

    @Sendable func show(request: Request, context: Context) async throws -> Response {
        JSONResponse.make(JobDTO(try await service.job(context.parameters.require("id"), for: context.caller)))
    }

    @Sendable func cancel(request: Request, context: Context) async throws -> Response {
        JSONResponse.make(JobDTO(try await service.cancel(context.parameters.require("id"), for: context.caller)))
    }

    @Sendable func transcript(request: Request, context: Context) async throws -> Response {
        let name = request.uri.queryParameters["format"].map(String.init) ?? "json"
        guard let format = OutputFormat(rawValue: name) else {
            throw TingxieError(.invalidArgument, "unknown format \"\(name.prefix(20))\"; use json, txt, srt or vtt")
        }
        let job = try await service.job(context.parameters.require("id"), for: context.caller)
        let transcript = try await service.transcript(of: job)
        return JSONResponse.transcript(format.render(transcript), contentType: format.contentType, warnings: transcript.warnings)
    }

    /// The job's progress and segments as server-sent events while it runs, then the job.
    @Sendable func events(request: Request, context: Context) async throws -> Response {
        try JobEvents.response(for: try await service.job(context.parameters.require("id"), for: context.caller), service: service, context: context)
    }

    @Sendable func list(request: Request, context: Context) async throws -> Response {
        let query = request.uri.queryParameters
        let status = try query["status"].map { value in
            guard let status = Job.Status(rawValue: String(value)) else {
                throw TingxieError(.invalidArgument, "unknown status \"\(value.prefix(20))\"; use one of \(Job.Status.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return status
        }
        let limit = try query["limit"].map { try ClientNumber.integer($0, field: "limit", in: 1...500) } ?? 50
        let cursor = try query["cursor"].map { Int64(try ClientNumber.integer($0, field: "cursor (a value from next_cursor)", in: 0...Int.max)) }
        // With keys, each key holder sees only the jobs its key submitted.
        let owner: String?
        switch context.caller.scope {
        case .all: owner = nil
        case .owner(let mine): owner = mine
        case .none: return JSONResponse.make(ListDTO(jobs: [], nextCursor: nil))
        }
        let page = try await service.store.list(status: status, limit: limit, cursor: cursor, owner: owner)
        return JSONResponse.make(ListDTO(jobs: page.jobs.map(JobDTO.init), nextCursor: page.nextCursor.map(String.init)))
    }

    @Sendable func createBatch(request: Request, context: Context) async throws -> Response {
        let batchID = Job.newID()
        let (jobs, _) = try await service.submit(request, caller: context.caller, maxFiles: service.configuration.maxBatchFiles, batchID: batchID)
        return JSONResponse.make(BatchDTO(id: batchID, jobs: jobs), status: .accepted)
    }

    @Sendable func showBatch(request: Request, context: Context) async throws -> Response {
        let id = try context.parameters.require("id")
        let jobs = Job.isValidID(id) ? try await service.store.jobs(batchID: id).filter { context.caller.mayReach(owner: $0.owner) } : []
        guard !jobs.isEmpty else { throw TingxieError(.notFound, "no batch with id \"\(id.prefix(64))\"") }
        return JSONResponse.make(BatchDTO(id: id, jobs: jobs))
    }
}

/// A job as the API shows it.
struct JobDTO: Encodable {
    var job: Job

    init(_ job: Job) { self.job = job }

    /// Progress as clients see it: three decimals.
    static func rounded(_ progress: Double) -> Double { (progress * 1000).rounded() / 1000 }

    enum CodingKeys: String, CodingKey {
        case id, status, progress, attempts, error, filename, language, task
        case durationS = "duration_s", createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
        case batchID = "batch_id"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(job.id, forKey: .id)
        try container.encode(job.status.rawValue, forKey: .status)
        try container.encode(Self.rounded(job.progress), forKey: .progress)
        try container.encode(job.durationS, forKey: .durationS)
        try container.encode(job.createdAt, forKey: .createdAt)
        try container.encode(job.startedAt, forKey: .startedAt)
        try container.encode(job.finishedAt, forKey: .finishedAt)
        try container.encode(job.attempts, forKey: .attempts)
        try container.encode(job.filename, forKey: .filename)
        try container.encodeIfPresent(job.batchID, forKey: .batchID)
        try container.encodeIfPresent(job.language, forKey: .language)
        try container.encode(job.task.rawValue, forKey: .task)
        if let error = job.error, job.status != .succeeded {
            try container.encode(["code": error.code.rawValue, "message": error.message], forKey: .error)
        }
    }
}

struct ListDTO: Encodable {
    var jobs: [JobDTO]
    var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case jobs
        case nextCursor = "next_cursor"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jobs, forKey: .jobs)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}

/// A batch: its jobs and their aggregate.
struct BatchDTO: Encodable {
    var id: String
    var jobs: [Job]

    enum CodingKeys: String, CodingKey { case id, status, progress, counts, jobs }

    /// `queued` while nothing started, `running` while anything is unfinished, then
    /// `succeeded` or `failed` when all ended so, else `completed`.
    var status: String {
        let statuses = Set(jobs.map(\.status))
        if statuses == [.queued] { return "queued" }
        if statuses.contains(where: { !$0.isTerminal }) { return "running" }
        if statuses.count == 1, let only = statuses.first { return only.rawValue }
        return "completed"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(status, forKey: .status)
        let total = jobs.reduce(0) { $0 + max($1.durationS, 0.001) }
        let done = jobs.reduce(0) { $0 + max($1.durationS, 0.001) * ($1.status.isTerminal ? 1 : $1.progress) }
        try container.encode(JobDTO.rounded(done / total), forKey: .progress)
        try container.encode(Dictionary(grouping: jobs, by: \.status.rawValue).mapValues(\.count), forKey: .counts)
        try container.encode(jobs.map(JobDTO.init), forKey: .jobs)
    }
}
