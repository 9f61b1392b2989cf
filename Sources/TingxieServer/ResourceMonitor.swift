import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TingxieCore
import TingxieJobs
import TingxieOperations

/// Watches memory, GPU memory, queue wait and the failure rate; opens an alert when one
/// crosses its threshold and closes it when it falls back. Every alert goes to the log, the
/// incident record and, when configured, a webhook. While memory is short the workers claim
/// no new jobs, so the server slows down instead of being killed.
public final class ResourceMonitor: Service {
    public struct Thresholds: Sendable {
        /// Memory in use (machine or cgroup, the fuller), 0...1.
        public var memory: Double
        public var gpuMemory: Double
        /// Longest a queued job may wait.
        public var queueWait: Duration
        /// Failed share of the jobs that ended within `failureWindow`, once at least
        /// `failureMinimumJobs` ended.
        public var failureRate: Double
        public var failureWindow: Duration
        public var failureMinimumJobs: Int
        public var interval: Duration

        public init(memory: Double = 0.9, gpuMemory: Double = 0.9, queueWait: Duration = .seconds(600),
                    failureRate: Double = 0.2, failureWindow: Duration = .seconds(900), failureMinimumJobs: Int = 5,
                    interval: Duration = .seconds(5)) {
            self.memory = memory
            self.gpuMemory = gpuMemory
            self.queueWait = queueWait
            self.failureRate = failureRate
            self.failureWindow = failureWindow
            self.failureMinimumJobs = failureMinimumJobs
            self.interval = interval
        }
    }

    public typealias Alert = AlertKind

    /// What a webhook receives.
    struct Notification: Sendable, Encodable {
        var event: String
        var alert: String
        var cause: String
        var message: String
        var incidentID: Int64
        var at: Date

        enum CodingKeys: String, CodingKey {
            case event, alert, cause, message, at
            case incidentID = "incident_id"
        }
    }

    private struct State {
        var latest = ResourceSample()
        var sampledAt: ContinuousClock.Instant?
        var oldestQueuedAge = 0.0
        var open: [Alert: Int64] = [:]

        mutating func remember(_ sample: ResourceSample) {
            latest = sample
            sampledAt = .now
        }
    }

    public let thresholds: Thresholds
    private let store: any JobQueue & IncidentLog
    private let pool: WorkerPool
    private let source: any ResourceSource
    private let webhook: URL?
    private let logger: Logger
    private let state = Mutex(State())
    private let notifications: AsyncStream<Notification>
    private let notificationSink: AsyncStream<Notification>.Continuation

    public init(store: any JobQueue & IncidentLog, pool: WorkerPool, source: any ResourceSource = SystemResources(),
                thresholds: Thresholds = Thresholds(), webhook: URL? = nil, logger: Logger) {
        self.store = store
        self.pool = pool
        self.source = source
        self.thresholds = thresholds
        self.webhook = webhook
        self.logger = logger
        (notifications, notificationSink) = AsyncStream.makeStream(of: Notification.self)
    }

    /// The latest sample, taken now when none was taken within `interval` (before the first
    /// check, or when the monitor lags).
    public func current() async -> ResourceSample {
        let recent = state.withLock { state in
            state.sampledAt.map { ContinuousClock.now - $0 <= thresholds.interval } == true ? state.latest : nil
        }
        if let recent { return recent }
        let sample = await source.sample()
        state.withLock { $0.remember(sample) }
        return sample
    }
    /// Seconds the oldest queued job had waited at the latest check.
    public var oldestQueuedAge: Double { state.withLock { $0.oldestQueuedAge } }
    /// Every alert and whether it is open.
    public var alerts: [String: Bool] {
        let open = state.withLock { $0.open }
        return Dictionary(uniqueKeysWithValues: Alert.allCases.map { ($0.rawValue, open[$0] != nil) })
    }

    public func run() async throws {
        // Alerts a previous process left open are over: this one starts watching afresh.
        try? await store.resolveOpenAlerts()
        await withTaskGroup(of: Void.self) { group in
            if let webhook {
                group.addTask { await self.deliver(to: webhook) }
            }
            while !Task.isShuttingDownGracefully {
                await check()
                let interval = thresholds.interval
                guard (try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }) != nil else { break }
            }
            notificationSink.finish()
        }
    }

    /// Takes a sample and opens or closes alerts accordingly.
    public func check() async {
        ProcessMemory.trim()
        let sample = await source.sample()
        let oldest = (try? await store.oldestQueuedAt()) ?? nil
        let age = oldest.map { max(0, Date().timeIntervalSince($0)) } ?? 0
        state.withLock {
            $0.remember(sample)
            $0.oldestQueuedAge = age
        }
        if let fraction = sample.memoryFraction {
            let high = fraction >= thresholds.memory
            pool.setThrottled(high)
            await set(.memory, high, String(format: "memory is %.0f%% used (threshold %.0f%%); workers claim no new jobs until it falls",
                                            fraction * 100, thresholds.memory * 100))
        }
        if let fraction = sample.gpuMemoryFraction {
            await set(.gpuMemory, fraction >= thresholds.gpuMemory,
                      String(format: "GPU memory is %.0f%% used (threshold %.0f%%)", fraction * 100, thresholds.gpuMemory * 100))
        }
        await set(.queueWait, age > thresholds.queueWait.seconds,
                  String(format: "the oldest queued job has waited %.0f s (threshold %.0f s)", age, thresholds.queueWait.seconds))
        if let ended = try? await store.finished(since: Date().addingTimeInterval(-thresholds.failureWindow.seconds)) {
            let rate = ended.total > 0 ? Double(ended.failed) / Double(ended.total) : 0
            await set(.failureRate, ended.total >= thresholds.failureMinimumJobs && rate > thresholds.failureRate,
                      String(format: "%d of %d jobs failed in the last %.0f min (threshold %.0f%%)", ended.failed, ended.total,
                             thresholds.failureWindow.seconds / 60, thresholds.failureRate * 100))
        }
    }

    private func set(_ alert: Alert, _ active: Bool, _ message: String) async {
        let openID = state.withLock { $0.open[alert] }
        do {
            if active, openID == nil {
                let id = try await store.openAlert(cause: alert.cause, message: message)
                state.withLock { $0.open[alert] = id }
                logger.warning("alert opened", metadata: ["alert": "\(alert.rawValue)", "incident": "\(id)", "detail": "\(message)"])
                notificationSink.yield(Notification(event: "opened", alert: alert.rawValue, cause: alert.cause.rawValue,
                                                    message: message, incidentID: id, at: Date()))
            } else if !active, let id = openID {
                try await store.resolveAlert(id: id)
                state.withLock { _ = $0.open.removeValue(forKey: alert) }
                logger.info("alert resolved", metadata: ["alert": "\(alert.rawValue)", "incident": "\(id)"])
                notificationSink.yield(Notification(event: "resolved", alert: alert.rawValue, cause: alert.cause.rawValue,
                                                    message: message, incidentID: id, at: Date()))
            }
        } catch {
            logger.error("cannot record the \(alert.rawValue) alert: \(error)")
        }
    }

    /// POSTs each notification as JSON, in order, retrying 4 times (1, 2, 4, 8 s apart).
    private func deliver(to url: URL) async {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        for await notification in notifications {
            guard let body = try? encoder.encode(notification) else { continue }
            var delay = Duration.seconds(1)
            for attempt in 1...5 {
                var request = HTTPClientRequest(url: url.absoluteString)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body))
                if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(10)),
                   (200..<300).contains(response.status.code) {
                    break
                }
                guard attempt < 5 else {
                    logger.error("alert webhook failed 5 times; notification dropped", metadata: ["alert": "\(notification.alert)"])
                    break
                }
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
    }
}
