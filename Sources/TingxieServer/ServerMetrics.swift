import Foundation
import Hummingbird
import Prometheus
import TingxieCore
import TingxieJobs

/// Tingxie's Prometheus metrics. Events (jobs, requests, refusals) are counted as they happen;
/// levels (queue, memory, alerts) are set from the latest readings when `/metrics` is read.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let jobsStarted: Counter
    private let queueWait: ValueHistogram
    private let jobDuration: ValueHistogram
    private let rtf: ValueHistogram
    private let audioProcessed: Counter
    private let speechGaps: Counter

    public init() {
        jobsStarted = registry.makeCounter(descriptor: Self.name("jobs_started", "total", "Jobs taken from the queue by a worker (retries included)"))
        queueWait = registry.makeValueHistogram(
            descriptor: Self.name("queue_wait", "seconds", "Time from upload to a worker taking the job"),
            buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600])
        jobDuration = registry.makeValueHistogram(
            descriptor: Self.name("job_duration", "seconds", "Wall time a worker spent on a finished job"),
            buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600])
        rtf = registry.makeValueHistogram(
            descriptor: Self.name("job_rtf", "", "Real-time factor of succeeded jobs (processing time / audio duration)"),
            buckets: [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2])
        audioProcessed = registry.makeCounter(descriptor: Self.name("audio_processed", "seconds_total", "Audio seconds of succeeded jobs"))
        speechGaps = registry.makeCounter(descriptor: Self.name("speech_gap", "seconds_total", "Seconds of detected speech in succeeded jobs that gave no text, even decoded again on their own"))
        // Series that exist from the start, so that rates over them work from the first scrape.
        for status in [Job.Status.succeeded, .failed, .canceled] { _ = finished(status) }
        for code in TingxieError.Code.allCases { _ = rejections(code.rawValue) }
    }

    /// Counts what the worker pool reports.
    public func observe(_ event: WorkerPool.Event) {
        switch event {
        case .started(let job):
            jobsStarted.increment()
            if job.attempts == 1 {
                queueWait.record(max(0, Date().timeIntervalSince(job.createdAt)))
            }
        case .finished(_, let status, let transcript, let running):
            finished(status).increment()
            if running > .zero { jobDuration.record(running.seconds) }
            if let transcript, status == .succeeded {
                audioProcessed.increment(by: transcript.durationS)
                if transcript.durationS > 0 { rtf.record(transcript.rtf) }
                countGaps(transcript)
            }
        }
    }

    /// Counts the seconds of a transcript's gaps (a job's or a live stream's).
    func countGaps(_ transcript: Transcript) {
        speechGaps.increment(by: (transcript.gaps ?? []).reduce(0) { $0 + $1.end - $1.start })
    }

    /// An error answer, by its code.
    func rejected(reason: String) {
        rejections(reason).increment()
    }

    private func rejections(_ reason: String) -> Counter {
        registry.makeCounter(descriptor: Self.name("rejections", "total", "Requests answered with an error, by error code"),
                             labels: [("reason", reason)])
    }

    func request(route: String, method: String, status: Int) {
        registry.makeCounter(descriptor: Self.name("http_requests", "total", "HTTP requests by route, method and status"),
                             labels: [("route", route), ("method", method), ("status", String(status))]).increment()
    }

    /// The levels at the moment of a scrape.
    public struct Levels: Sendable {
        public var queue: QueueStats
        public var running: Int
        public var workers: Int
        public var throttled: Bool
        public var oldestQueuedAge: Double
        public var resources: ResourceSample
        /// Every alert the monitor knows, and whether it is open.
        public var alerts: [String: Bool]
        /// The live nodes on a shared queue (`nil` with a store of the server's own, or when the
        /// database does not answer).
        public var nodes: [NodeStatus]?
    }

    /// The exposition text with `levels` set.
    public func render(_ levels: Levels) -> String {
        func set(_ metric: String, _ unit: String, _ help: String, _ value: Double?, labels: [(String, String)] = []) {
            guard let value else { return }
            registry.makeGauge(descriptor: Self.name(metric, unit, help), labels: labels).set(value)
        }
        set("queue_jobs", "", "Jobs waiting in the queue", Double(levels.queue.queuedJobs))
        set("queue_audio", "seconds", "Audio seconds waiting in the queue", levels.queue.queuedSeconds)
        set("oldest_queued_job_age", "seconds", "How long the oldest queued job has waited (0 when none)", levels.oldestQueuedAge)
        set("jobs_running", "", "Jobs running in this server", Double(levels.running))
        set("workers", "", "Configured workers", Double(levels.workers))
        set("workers_throttled", "", "1 while workers claim no new jobs because memory is short", levels.throttled ? 1 : 0)
        let resources = levels.resources
        set("process_resident_memory", "bytes", "Resident memory of the Tingxie process", resources.processResidentBytes.map(Double.init))
        set("system_memory_total", "bytes", "Memory of the machine", resources.systemTotalBytes.map(Double.init))
        set("system_memory_available", "bytes", "Memory available on the machine", resources.systemAvailableBytes.map(Double.init))
        set("cgroup_memory_limit", "bytes", "Memory limit of Tingxie's cgroup, when it has one", resources.cgroupLimitBytes.map(Double.init))
        set("cgroup_memory_usage", "bytes", "Memory used by Tingxie's cgroup, when it has a limit", resources.cgroupUsageBytes.map(Double.init))
        for gpu in resources.gpus {
            set("gpu_memory_used", "bytes", "GPU memory in use", Double(gpu.usedBytes), labels: [("gpu", String(gpu.index))])
            set("gpu_memory_total", "bytes", "GPU memory", Double(gpu.totalBytes), labels: [("gpu", String(gpu.index))])
        }
        set("log_lines_dropped", "", "Log lines that could not be written (the log's reader went away)", Double(LogOutput.droppedLines))
        for (alert, open) in levels.alerts {
            set("alert_open", "", "1 while the server's own monitor has this alert open", open ? 1 : 0, labels: [("alert", alert)])
        }
        if let nodes = levels.nodes {
            for role in [ServerConfiguration.Role.server, .worker] {
                let present = nodes.filter { $0.role == role.rawValue }
                set("cluster_nodes", "", "Live nodes on the shared queue, by role", Double(present.count), labels: [("role", role.rawValue)])
                set("cluster_workers", "", "Workers of the live nodes on the shared queue, by role",
                    Double(present.reduce(0) { $0 + $1.workers }), labels: [("role", role.rawValue)])
            }
        }
        return registry.emitToString()
    }

    private func finished(_ status: Job.Status) -> Counter {
        registry.makeCounter(descriptor: Self.name("jobs_finished", "total", "Jobs that ended, by final status"),
                             labels: [("status", status.rawValue)])
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "tingxie", metricName: metric, unitName: unit, helpText: help)
    }
}

/// Counts requests by the route that answered them (`/v1/jobs/{id}`; the web UI's files as
/// `/web`, anything else as `unmatched`, so the number of series stays bounded) and error
/// answers by code. Sits outside the error middleware, so it sees every final status.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        let route = context.endpointPath ?? (response.status.code < 400 && request.method == .get ? "/web" : "unmatched")
        metrics.request(route: route, method: request.method.rawValue, status: response.status.code)
        if response.status.code >= 400, let reason = response.headers[.tingxieError] {
            metrics.rejected(reason: reason)
        }
        return response
    }
}
