import Foundation
import TingxieJobs

/// Everything `tingxie serve` can be told; the command line and `TINGXIE_*` variables map onto it.
public struct ServerConfiguration: Sendable {
    /// What a process does: everything (`tingxie serve`, `buildServer`), or only run jobs
    /// (`tingxie worker`, `buildWorker`).
    public enum Role: String, Sendable {
        /// The API, the web UI, live streams and the workers.
        case server
        /// The workers, with the probes and metrics on the port; no API.
        case worker
    }

    /// Address to listen on; loopback unless told otherwise.
    public var host: String
    public var port: Int
    /// Holds the job store (`jobs.sqlite`) and uploaded audio.
    public var dataDirectory: URL
    /// The shared job store, `postgres://…`; the embedded SQLite file in `dataDirectory` when `nil`.
    public var databaseURL: String?
    /// Where uploaded audio is kept: `dataDirectory` unless told otherwise (a mount that every
    /// node sharing `databaseURL` reaches).
    public var audioDirectory: URL?
    /// This process's name in the shared store's alerts.
    public var nodeName: String
    public var workers: WorkerPool.Configuration
    /// ONNX Runtime threads per model call (reported by `/v1/system`).
    public var threadsPerWorker: Int
    /// Largest request body accepted.
    public var maxUploadBytes: Int
    /// Longest audio accepted, in seconds.
    public var maxDurationSeconds: Double
    /// Longest audio `POST /v1/audio/transcriptions` transcribes while the client waits.
    public var maxSyncDurationSeconds: Double
    public var queue: QueueGauge.Limits
    /// Files in one `POST /v1/batches`.
    public var maxBatchFiles: Int
    /// Largest text field of a multipart form.
    public var maxFieldBytes: Int
    /// Bearer keys; each sees only the jobs it submitted. Empty (with no admin keys) means no
    /// authentication.
    public var apiKeys: [String]
    /// Operators' bearer keys: they see every key's jobs, incidents and alerts.
    public var adminKeys: [String]
    /// Names clients reach the server by, besides IP addresses and `localhost` (a reverse
    /// proxy's name, a LAN name); requests for any other host are refused.
    public var publicHosts: [String]
    /// Origins allowed to call the API from a browser.
    public var corsOrigins: [String]
    /// Language the server transcribes (the model's).
    public var language: String
    /// Attempts a job gets before it is failed.
    public var maxAttempts: Int
    /// A connection idle this long is closed (slow clients).
    public var idleTimeoutSeconds: Int
    /// Uploads slower than this on average, once `uploadRateGrace` has passed, are cut off with
    /// a 408 (a client trickling bytes would otherwise hold a connection for ever).
    public var minUploadBytesPerSecond: Int
    public var uploadRateGrace: Duration
    /// When the resource monitor opens alerts, and how often it looks.
    public var alerts: ResourceMonitor.Thresholds
    /// Where alerts are POSTed as JSON, if anywhere.
    public var alertWebhook: URL?
    /// Live WebSocket streams served at once (each holds a thread while it runs).
    public var maxStreams: Int
    /// What a stream must keep up to hold its place.
    public var streamLimits: StreamLimits
    /// Clients following jobs' events at once (`/v1/jobs/{id}/events`, OpenAI's `stream=true`).
    public var maxFollowers: Int
    /// The most of a live stream's running time its partial recognitions may take (0 sends no
    /// partials, only sentences).
    public var livePartialShare: Double
    /// Uploads that would leave less than this free on the data folder's disk are refused.
    public var minFreeDiskBytes: Int
    /// The most audio kept for jobs not yet run (on disk, or in the shared database); `nil`: no bound.
    public var maxStoredAudioBytes: Int?
    /// Finished jobs, their results and incidents are deleted this long after they ended.
    public var retention: Duration
    /// PEM certificate chain and private key: with them the port serves HTTPS and WSS only.
    public var tls: TLSFiles?

    /// Limits that keep a stream from holding its place without using it.
    public struct StreamLimits: Sendable {
        /// Seconds of audio per second the client holds the stream, after `rateGrace`.
        public var minAudioRate: Double
        public var rateGrace: Duration
        /// The longest a stream may last.
        public var maxSession: Duration

        public init(minAudioRate: Double = 0.5, rateGrace: Duration = .seconds(30), maxSession: Duration = .seconds(6 * 3600)) {
            self.minAudioRate = min(10, max(0, minAudioRate))
            self.rateGrace = rateGrace
            self.maxSession = maxSession
        }
    }

    public struct TLSFiles: Sendable {
        public var certificateChain: URL
        public var privateKey: URL

        public init(certificateChain: URL, privateKey: URL) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }
    }

    public init(host: String = "127.0.0.1", port: Int = 8080, dataDirectory: URL, databaseURL: String? = nil,
                audioDirectory: URL? = nil, nodeName: String = ProcessInfo.processInfo.hostName,
                workers: WorkerPool.Configuration = WorkerPool.Configuration(), threadsPerWorker: Int = 1,
                maxUploadBytes: Int = 2048 << 20, maxDurationSeconds: Double = 6 * 3600,
                maxSyncDurationSeconds: Double = 600, queue: QueueGauge.Limits = QueueGauge.Limits(),
                maxBatchFiles: Int = 100, maxFieldBytes: Int = 64 << 10, apiKeys: [String] = [], adminKeys: [String] = [],
                publicHosts: [String] = [], corsOrigins: [String] = [], language: String = "zh", maxAttempts: Int = 3, idleTimeoutSeconds: Int = 60,
                alerts: ResourceMonitor.Thresholds = ResourceMonitor.Thresholds(), alertWebhook: URL? = nil,
                maxStreams: Int = 4, streamLimits: StreamLimits = StreamLimits(), maxFollowers: Int = 100, livePartialShare: Double = 0.5, minUploadBytesPerSecond: Int = 8192, uploadRateGrace: Duration = .seconds(30),
                minFreeDiskBytes: Int = 1 << 30, maxStoredAudioBytes: Int? = nil, retention: Duration = .seconds(30 * 86_400), tls: TLSFiles? = nil) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.databaseURL = databaseURL
        self.audioDirectory = audioDirectory
        self.nodeName = nodeName
        self.workers = workers
        self.threadsPerWorker = threadsPerWorker
        self.maxUploadBytes = maxUploadBytes
        self.maxDurationSeconds = maxDurationSeconds
        self.maxSyncDurationSeconds = maxSyncDurationSeconds
        self.queue = queue
        self.maxBatchFiles = maxBatchFiles
        self.maxFieldBytes = maxFieldBytes
        self.apiKeys = apiKeys
        self.adminKeys = adminKeys
        self.publicHosts = publicHosts
        self.corsOrigins = corsOrigins
        self.language = language
        self.maxAttempts = maxAttempts
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.alerts = alerts
        self.alertWebhook = alertWebhook
        self.maxStreams = max(1, maxStreams)
        self.streamLimits = streamLimits
        self.maxFollowers = max(1, maxFollowers)
        self.livePartialShare = min(1, max(0, livePartialShare))
        self.minUploadBytesPerSecond = max(0, minUploadBytesPerSecond)
        self.uploadRateGrace = uploadRateGrace
        self.minFreeDiskBytes = max(0, minFreeDiskBytes)
        self.maxStoredAudioBytes = maxStoredAudioBytes
        self.tls = tls
        self.retention = retention
    }

    /// The host names requests may carry.
    var hostNames: HostNames { HostNames(listenHost: host, publicHosts: publicHosts) }

    /// The keys the API takes.
    var keys: APIKeyMiddleware.Keys { .init(api: apiKeys, admin: adminKeys) }

    /// Whether the API asks for a key.
    public var requiresKeys: Bool { !apiKeys.isEmpty || !adminKeys.isEmpty }
}
