import ArgumentParser
import Foundation
import Logging
import TingxieCore
import TingxieJobs
import TingxieModels
import TingxieServer
import TingxieSherpa
import TingxieText

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API and the job workers (--workers 0: the API alone).",
        discussion: "Every flag also reads TINGXIE_<FLAG> from the environment (e.g. TINGXIE_MAX_DURATION); flags win."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await options.run(role: .server)
    }
}

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run job workers on the queue a --database-url names; the port serves /healthz, /readyz and /metrics.",
        discussion: "Takes serve's flags (the API's own do nothing here). Every flag also reads TINGXIE_<FLAG> from the environment; flags win."
    )

    @OptionGroup var options: ServerOptions

    func validate() throws {
        guard options.setting(options.databaseUrl, "DATABASE_URL") != nil else {
            throw ValidationError("a worker takes jobs from a shared queue: pass --database-url postgres://USER:PASS@HOST:PORT/DB")
        }
    }

    func run() async throws {
        try await options.run(role: .worker)
    }
}

/// What `serve` and `worker` are told: the model, the workers, the limits, the store.
struct ServerOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions

    @Option(help: "Address to listen on.") var host: String?
    @Option(help: "Port to listen on (0 picks a free one).") var port: Int?
    @Option(help: "Folder for the job store and uploads (default ~/.local/share/tingxie/data).") var dataDir: String?
    @Option(help: "Share one queue between nodes: jobs, results and incidents in PostgreSQL, postgres://USER:PASS@HOST:PORT/DB (default: SQLite in --data-dir).") var databaseUrl: String?
    @Option(help: "Folder for uploaded audio (default --data-dir); with --database-url, a mount every node reaches.") var audioDir: String?
    @Option(help: "This node's name in shared alerts (default: the host name).") var nodeName: String?
    @Option(help: "Jobs run at once (default: what the cores and memory allow; 0 accepts jobs without running them).") var workers: Int?
    @Option(help: "Largest upload in MB (default 2048).") var maxUploadMb: Int?
    @Option(help: "Longest audio in seconds (default 21600, 6 hours).") var maxDuration: Double?
    @Option(help: "Longest audio POST /v1/audio/transcriptions takes, in seconds (default 600).") var maxSyncDuration: Double?
    @Option(help: "Jobs allowed to wait in the queue (default 1000).") var maxQueuedJobs: Int?
    @Option(help: "Hours of audio allowed to wait in the queue (default 100).") var maxQueuedAudioHours: Double?
    @Option(help: "Require this bearer key; each key sees only its own jobs (repeatable; env: comma-separated).") var apiKey: [String] = []
    @Option(help: "An operator's bearer key: sees every key's jobs, incidents and alerts (repeatable; env: comma-separated).") var adminKey: [String] = []
    @Option(help: "A host name clients reach this server by, besides IP addresses and localhost (a proxy's or LAN name); requests naming other hosts are refused (repeatable; env: comma-separated).") var publicHost: [String] = []
    @Option(help: "Allow browsers from this origin (repeatable; env: comma-separated).") var corsOrigin: [String] = []
    @Option(help: "PEM certificate chain: with --tls-key the port serves HTTPS and WSS (FunASR clients' default).") var tlsCert: String?
    @Option(help: "PEM private key for --tls-cert.") var tlsKey: String?
    @Option(help: "Seconds running jobs may finish in after SIGTERM before they are requeued (default 30).") var shutdownGrace: Double?
    @Option(help: "Lease of a running job in seconds; a job whose worker stops renewing it is requeued (default 30).") var leaseSeconds: Double?
    @Option(help: "Hotwords for every request: a file with one term per line, optionally `term weight`.") var hotwordsFile: String?
    @Option(help: "Streaming model folder (streaming Paraformer or Zipformer transducer) for live text while people speak (default: paraformer-zh-streaming in the models folder when installed; `none`: the offline model re-recognises instead).") var streamingModelDir: String?
    @Option(help: "The most (0-1) of a live stream's running time its partial recognitions may take; 0 sends sentences only (default 0.5).") var livePartialShare: Double?
    @Option(help: "Live WebSocket streams served at once (default 4).") var maxStreams: Int?
    @Option(help: "Seconds of audio per second a stream must send once its grace has passed (default 0.5).") var streamMinRate: Double?
    @Option(help: "Seconds before a stream's audio rate is checked (default 30).") var streamRateGrace: Double?
    @Option(help: "Longest a live stream may last, in minutes (default 360).") var maxStreamMinutes: Double?
    @Option(help: "Clients following jobs' events at once (GET /v1/jobs/{id}/events, OpenAI stream=true); more get 503 (default 100).") var maxFollowers: Int?
    @Option(help: "Log format: text or json.") var logFormat: String?
    @Option(help: "Uploads slower than this many bytes/s on average are cut off with a 408 (default 8192).") var minUploadRate: Int?
    @Option(help: "Seconds before the upload rate is checked (default 30).") var uploadRateGrace: Double?
    @Option(help: "Refuse uploads that would leave less than this many MB free on the data folder's disk (default 1024).") var minFreeDiskMb: Int?
    @Option(help: "Days finished jobs, their transcripts and incidents are kept (default 30).") var retentionDays: Double?
    @Option(help: "Most audio, in GB, kept for jobs not yet run, on disk or in the shared database; more uploads get 507 (default: no limit).") var maxStoredAudioGb: Double?
    @Option(help: "POST alerts as JSON to this URL.") var alertWebhook: String?
    @Option(help: "Memory use (0-1) that opens the memory alert and stops workers claiming jobs (default 0.9).") var alertMemory: Double?
    @Option(help: "GPU memory use (0-1) that opens the GPU alert (default 0.9).") var alertGpuMemory: Double?
    @Option(help: "Seconds the oldest queued job may wait before an alert (default 600).") var alertQueueWait: Double?
    @Option(help: "Share (0-1) of failed jobs over 15 minutes that opens an alert (default 0.2).") var alertFailureRate: Double?

    func validate() throws {
        if model.parallel != nil {
            throw ValidationError("--parallel is for transcribe; the server decodes as many pieces at once as it has --workers")
        }
        if let format = setting(logFormat, "LOG_FORMAT"), format != "text", format != "json" {
            throw ValidationError("--log-format must be text or json")
        }
    }

    func run(role: ServerConfiguration.Role) async throws {
        ProcessMemory.limitArenas()
        let format = setting(logFormat, "LOG_FORMAT") ?? "text"
        LogOutput.ignoreBrokenPipes()
        // The job store, its journal and every upload are readable by this user only.
        umask(0o077)
        LoggingSystem.bootstrap { label in
            LineLogHandler(label: label, format: format == "json" ? .json : .text)
        }
        let logger = Logger(label: "tingxie")
        let configuration = try await serverConfiguration()
        let recognition = try recognition(threads: configuration.threadsPerWorker, logger: logger)
        switch role {
        case .server: try await buildServer(configuration: configuration, recognition: recognition, logger: logger).runService()
        case .worker: try await buildWorker(configuration: configuration, recognition: recognition, logger: logger).runService()
        }
    }

    /// The models the flags name, loaded; hotwords are unavailable (and say so) without the dictionaries.
    private func recognition(threads: Int, logger: Logger) throws -> Recognition {
        let directory = try model.modelDirectory()
        logger.info("loading model", metadata: ["model_dir": "\(directory.path)", "threads": "\(threads)"])
        let recognizer = try model.loadRecognizer(threads: threads)
        let lexicon: Lexicon?
        do {
            lexicon = try Lexicon()
        } catch {
            logger.warning("hotwords are unavailable: \(error)")
            lexicon = nil
        }
        return Recognition(recognizer: recognizer, detectors: try model.loadVAD(), punctuator: try model.loadPunctuation(for: recognizer.info),
                           lexicon: lexicon, hotwords: try setting(hotwordsFile, "HOTWORDS_FILE").map(Hotword.load) ?? [],
                           streaming: try loadStreaming())
    }

    /// The streaming model: the flag's or the environment's folder, else the installed
    /// `paraformer-zh-streaming`; `nil` when there is none or it is turned off (`none`).
    private func loadStreaming() throws -> SherpaStreamingRecognizer? {
        let folder: URL
        if let given = setting(streamingModelDir, "STREAMING_MODEL_DIR") {
            guard given != "none" else { return nil }
            folder = URL(fileURLWithPath: given)
        } else {
            let installed = ModelLocations.modelsDirectory().appendingPathComponent("paraformer-zh-streaming")
            guard FileManager.default.fileExists(atPath: installed.path) else { return nil }
            folder = installed
        }
        return try SherpaStreamingRecognizer(directory: try StreamingModelDirectory.detect(folder))
    }

    /// Flags, else `TINGXIE_*` variables, else defaults sized to this machine.
    func serverConfiguration() async throws -> ServerConfiguration {
        let threads = try option(model.threads, "THREADS") ?? 1
        let workerCount: Int
        if let configured = try option(workers, "WORKERS") {
            workerCount = configured
        } else {
            workerCount = await Self.defaultWorkers(threadsPerWorker: threads,
                                                    modelBytes: Int(ModelInstaller.size(of: try model.modelDirectory())))
        }
        var pool = WorkerPool.Configuration(workers: workerCount)
        if let grace = try option(shutdownGrace, "SHUTDOWN_GRACE") {
            pool.shutdownGrace = .seconds(grace)
        }
        if let lease = try option(leaseSeconds, "LEASE_SECONDS") {
            guard lease >= 1 else { throw ValidationError("--lease-seconds must be at least 1") }
            pool.lease = .seconds(lease)
            pool.heartbeat = .seconds(lease / 6)
            pool.sweepInterval = .seconds(min(2, lease / 6))
        }
        let defaults = ServerConfiguration(dataDirectory: URL(fileURLWithPath: "/"))
        let partialShare = try option(livePartialShare, "LIVE_PARTIAL_SHARE") ?? defaults.livePartialShare
        guard partialShare >= 0, partialShare <= 1 else { throw ValidationError("--live-partial-share must be from 0 to 1") }
        var alerts = defaults.alerts
        if let value = try option(alertMemory, "ALERT_MEMORY") { alerts.memory = value }
        if let value = try option(alertGpuMemory, "ALERT_GPU_MEMORY") { alerts.gpuMemory = value }
        if let value: Double = try option(alertQueueWait, "ALERT_QUEUE_WAIT") {
            alerts.queueWait = .seconds(value)
        }
        if let value = try option(alertFailureRate, "ALERT_FAILURE_RATE") { alerts.failureRate = value }
        let webhook = try setting(alertWebhook, "ALERT_WEBHOOK").map { text in
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? "") else {
                throw ValidationError("--alert-webhook must be an http(s) URL")
            }
            return url
        }
        let dataDirectory = setting(dataDir, "DATA_DIR").map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/share/tingxie/data")
        let uploadMB: Int? = try option(maxUploadMb, "MAX_UPLOAD_MB")
        let queuedHours: Double? = try option(maxQueuedAudioHours, "MAX_QUEUED_AUDIO_HOURS")
        return ServerConfiguration(
            host: setting(host, "HOST") ?? defaults.host,
            port: try option(port, "PORT") ?? defaults.port,
            dataDirectory: dataDirectory,
            databaseURL: setting(databaseUrl, "DATABASE_URL"),
            audioDirectory: setting(audioDir, "AUDIO_DIR").map { URL(fileURLWithPath: $0) },
            nodeName: setting(nodeName, "NODE_NAME") ?? defaults.nodeName,
            workers: pool,
            threadsPerWorker: threads,
            maxUploadBytes: uploadMB.map { $0 << 20 } ?? defaults.maxUploadBytes,
            maxDurationSeconds: try option(maxDuration, "MAX_DURATION") ?? defaults.maxDurationSeconds,
            maxSyncDurationSeconds: try option(maxSyncDuration, "MAX_SYNC_DURATION") ?? defaults.maxSyncDurationSeconds,
            queue: QueueGauge.Limits(
                maxQueuedJobs: try option(maxQueuedJobs, "MAX_QUEUED_JOBS") ?? defaults.queue.maxQueuedJobs,
                maxQueuedSeconds: queuedHours.map { $0 * 3600 } ?? defaults.queue.maxQueuedSeconds
            ),
            apiKeys: list(apiKey, "API_KEY"),
            adminKeys: list(adminKey, "ADMIN_KEY"),
            publicHosts: list(publicHost, "PUBLIC_HOST"),
            corsOrigins: list(corsOrigin, "CORS_ORIGIN"),
            language: model.language,
            alerts: alerts,
            alertWebhook: webhook,
            maxStreams: try streamCount(),
            streamLimits: try streamLimits(),
            maxFollowers: try followerCount(),
            livePartialShare: partialShare,
            minUploadBytesPerSecond: try option(minUploadRate, "MIN_UPLOAD_RATE") ?? defaults.minUploadBytesPerSecond,
            uploadRateGrace: try option(uploadRateGrace, "UPLOAD_RATE_GRACE").map { .seconds($0) } ?? defaults.uploadRateGrace,
            minFreeDiskBytes: try option(minFreeDiskMb, "MIN_FREE_DISK_MB").map { $0 << 20 } ?? defaults.minFreeDiskBytes,
            maxStoredAudioBytes: try storedAudioLimit(),
            retention: try retention(),
            tls: try tls()
        )
    }

    private func streamCount() throws -> Int {
        let count = try option(maxStreams, "MAX_STREAMS") ?? 4
        guard (1...1000).contains(count) else { throw ValidationError("--max-streams must be from 1 to 1000") }
        return count
    }

    private func storedAudioLimit() throws -> Int? {
        guard let gigabytes: Double = try option(maxStoredAudioGb, "MAX_STORED_AUDIO_GB") else { return nil }
        guard gigabytes > 0, gigabytes <= 1_000_000 else { throw ValidationError("--max-stored-audio-gb must be more than 0 and at most 1000000") }
        return Int(gigabytes * 1e9)
    }

    private func followerCount() throws -> Int {
        let count = try option(maxFollowers, "MAX_FOLLOWERS") ?? 100
        guard (1...100_000).contains(count) else { throw ValidationError("--max-followers must be from 1 to 100000") }
        return count
    }

    private func streamLimits() throws -> ServerConfiguration.StreamLimits {
        let defaults = ServerConfiguration.StreamLimits()
        let rate = try option(streamMinRate, "STREAM_MIN_RATE") ?? defaults.minAudioRate
        guard rate >= 0, rate <= 10 else { throw ValidationError("--stream-min-rate must be from 0 to 10") }
        let grace = try option(streamRateGrace, "STREAM_RATE_GRACE") ?? defaults.rateGrace.seconds
        guard grace >= 1, grace <= 3600 else { throw ValidationError("--stream-rate-grace must be from 1 to 3600 seconds") }
        let minutes = try option(maxStreamMinutes, "MAX_STREAM_MINUTES") ?? defaults.maxSession.seconds / 60
        guard minutes >= 1, minutes <= 7 * 24 * 60 else { throw ValidationError("--max-stream-minutes must be from 1 to 10080") }
        return .init(minAudioRate: rate, rateGrace: .seconds(grace), maxSession: .seconds(minutes * 60))
    }

    private func tls() throws -> ServerConfiguration.TLSFiles? {
        switch (setting(tlsCert, "TLS_CERT"), setting(tlsKey, "TLS_KEY")) {
        case (nil, nil): return nil
        case let (certificate?, key?):
            return .init(certificateChain: URL(fileURLWithPath: certificate), privateKey: URL(fileURLWithPath: key))
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    private func retention() throws -> Duration {
        guard let days: Double = try option(retentionDays, "RETENTION_DAYS") else { return .seconds(30 * 86_400) }
        guard days > 0, days <= 36_500 else { throw ValidationError("--retention-days must be more than 0 and at most 36500") }
        return .seconds(days * 86_400)
    }

    /// One worker per `threadsPerWorker` cores (two jobs of one thread beat one job of two by
    /// ~8% on 2 cores), and no more than the available memory holds once the model (shared by
    /// all workers) is loaded, at ~512 MB a job (Whisper base peaked at 435 MB in all).
    static func defaultWorkers(threadsPerWorker: Int, modelBytes: Int) async -> Int {
        let byCores = max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, threadsPerWorker))
        guard let available = await SystemResources().sample().systemAvailableBytes else { return byCores }
        return max(1, min(byCores, (Int(Double(available) * 0.8) - modelBytes) / (512 << 20)))
    }

    /// A numeric flag, else `TINGXIE_<name>` parsed as a number.
    private func option<T: LosslessStringConvertible>(_ flag: T?, _ name: String) throws -> T? {
        if let flag { return flag }
        return try setting(nil, name).map { try number($0, "TINGXIE_" + name) }
    }

    func setting(_ flag: String?, _ name: String) -> String? {
        if let flag { return flag }
        guard let value = ProcessInfo.processInfo.environment["TINGXIE_" + name], !value.isEmpty else { return nil }
        return value
    }

    private func list(_ flags: [String], _ name: String) -> [String] {
        if !flags.isEmpty { return flags }
        return setting(nil, name)?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
    }

    private func number<T: LosslessStringConvertible>(_ text: String, _ name: String) throws -> T {
        guard let value = T(text) else { throw ValidationError("\(name) must be a number, not \"\(text)\"") }
        return value
    }
}
