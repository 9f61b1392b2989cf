import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOSSL
import ServiceLifecycle
import NIOPosix
import TingxieCore
import TingxieJobs
import TingxiePipeline
import TingxiePostgres
import TingxieText

/// What a node recognises with: the models as loaded from their folders (the tests' fakes in
/// tests). The composition root builds the decode threads, the pipeline and the engine around them.
public struct Recognition: Sendable {
    public var recognizer: any Recognizer
    public var detectors: any VoiceActivityDetectorFactory
    /// For models whose text has no punctuation.
    public var punctuator: (any Punctuator)?
    /// Pronunciations for hotword matching; `nil` refuses requests with hotwords, saying why.
    public var lexicon: Lexicon?
    /// Hotwords for every request (`--hotwords-file`).
    public var hotwords: [Hotword]
    /// Live partial text as audio arrives; without it the offline model re-recognises.
    public var streaming: (any StreamingRecognizer)?

    public init(recognizer: any Recognizer, detectors: any VoiceActivityDetectorFactory, punctuator: (any Punctuator)? = nil,
                lexicon: Lexicon? = nil, hotwords: [Hotword] = [], streaming: (any StreamingRecognizer)? = nil) {
        self.recognizer = recognizer
        self.detectors = detectors
        self.streaming = streaming
        self.punctuator = punctuator
        self.lexicon = lexicon
        self.hotwords = hotwords
    }
}

/// The application of `buildServer`, for tests that drive it directly.
public func buildApplication(configuration: ServerConfiguration, recognition: Recognition, logger: Logger,
                             resources: any ResourceSource = SystemResources(),
                             onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
    try buildServer(configuration: configuration, recognition: recognition, logger: logger, resources: resources,
                    onListening: onListening).application
}

/// A running node: the application with every service it runs, and the workers, which must
/// hear of a shutdown first.
public struct Server<App: ApplicationProtocol>: Service {
    public let application: App
    let workers: WorkerPool
    let logger: Logger

    /// Runs until SIGTERM or SIGINT, then shuts down: the workers stop claiming jobs at once
    /// (running ones get the shutdown grace), while HTTP drains and the rest stops in turn.
    public func runService() async throws {
        try await ServiceGroup(configuration: .init(services: [self], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }

    public func run() async throws {
        // Services shut down in reverse order: the notice, last, is told first.
        try await ServiceGroup(configuration: .init(services: [application, ShutdownNotice(workers: workers)], logger: logger)).run()
    }

    /// Tells the workers as soon as the shutdown begins.
    struct ShutdownNotice: Service {
        let workers: WorkerPool

        func run() async throws {
            try? await gracefulShutdown()
            workers.beginShutdown()
        }
    }
}

/// `tingxie serve`'s composition root, shared with the tests: the API, the web UI, live streams
/// and the workers (none with `workers.workers == 0`) over the store the configuration names.
/// - Parameters:
///   - resources: where memory readings come from (tests pass their own).
///   - onListening: called with the bound port once the server listens.
/// - Throws: `TingxieError(.ioError)` when the data folder cannot be used.
public func buildServer(configuration: ServerConfiguration, recognition: Recognition, logger: Logger,
                        resources: any ResourceSource = SystemResources(),
                        onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> Server<some ApplicationProtocol> {
    try buildNode(role: .server, configuration: configuration, recognition: recognition, logger: logger, resources: resources,
                  onListening: onListening)
}

/// `tingxie worker`'s composition root: the workers on the shared queue, with only the probes
/// and metrics on the port.
public func buildWorker(configuration: ServerConfiguration, recognition: Recognition, logger: Logger,
                        resources: any ResourceSource = SystemResources(),
                        onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> Server<some ApplicationProtocol> {
    try buildNode(role: .worker, configuration: configuration, recognition: recognition, logger: logger, resources: resources,
                  onListening: onListening)
}

/// Builds everything a role runs: the store, the decode threads and the engine, the workers,
/// the monitor, node presence and retention, as services of one group, and the routes.
private func buildNode(role: ServerConfiguration.Role, configuration: ServerConfiguration, recognition: Recognition, logger: Logger,
                       resources: any ResourceSource,
                       onListening: @escaping @Sendable (Int) async -> Void) throws -> Server<some ApplicationProtocol> {
    let gauge = QueueGauge(limits: configuration.queue)
    let (store, storeService) = try openJobStore(configuration: configuration, gauge: gauge, logger: logger)
    let audio = try AudioStore(directory: configuration.audioDirectory ?? configuration.dataDirectory,
                               shared: configuration.databaseURL != nil)
    // Jobs and live streams share the workers' decode slots: memory is that of so many decodes
    // however many streams are open. A job decodes its pieces in batches of as many as there are
    // workers, side by side on the slots no other work holds at the time (or as many as a batch
    // decoder takes in one call, on one slot).
    let decodePool = NIOThreadPool(numberOfThreads: max(1, configuration.workers.workers))
    let pipeline = try TranscriptionPipeline(
        recognizer: SharedRecognizer(recognition.recognizer, limit: configuration.workers.workers), detectors: recognition.detectors,
        configuration: .init(language: configuration.language, batchSize: max(configuration.workers.workers, recognition.recognizer.info.batchPieces)),
        punctuator: recognition.punctuator, streaming: recognition.streaming, threadPool: decodePool
    )
    let engine = try TranscriptionEngine(pipeline: pipeline, lexicon: recognition.lexicon, serverHotwords: recognition.hotwords)
    let metrics = ServerMetrics()
    // Those who wait for a job hear of it as it changes: a segment, its start and end, here or elsewhere.
    let signals = JobSignals()
    engine.running.observe { signals.notify($0) }
    // With PostgreSQL, audio travels through the database unless every node shares --audio-dir.
    let sharedAudio = configuration.audioDirectory == nil ? store as? any SharedAudio : nil
    let pool = WorkerPool(store: store, processor: engine, audio: audio, sharedAudio: sharedAudio,
                          configuration: configuration.workers, logger: logger) { event in
        metrics.observe(event)
        switch event {
        case .started(let job), .finished(let job, _, _, _): signals.notify(job.id)
        }
    }
    // Another node's upload wakes this node's idle workers; another node's cancel stops the job
    // here; a job's end on any node wakes those who wait for it here.
    (store as? any QueueEvents)?.observe { [weak pool] event in
        switch event {
        case .queued: pool?.wake()
        case .canceled(let id):
            pool?.stopCanceled(id: id)
            signals.notify(id)
        case .ended(let id): signals.notify(id)
        case .resync:
            pool?.wake()
            signals.notifyAll()
        }
    }
    let monitor = ResourceMonitor(store: store, pool: pool, source: resources, thresholds: configuration.alerts,
                                  webhook: configuration.alertWebhook, logger: logger)
    let nodes = store as? any NodeDirectory
    let presence = nodes.map { directory in
        NodePresence(directory: directory,
                     node: NodeStatus(id: Job.newID(), name: configuration.nodeName, role: role.rawValue,
                                      workers: configuration.workers.workers, running: 0, startedAt: Date()),
                     pool: pool, logger: logger)
    }
    let service = JobService(
        configuration: configuration, store: store, gauge: gauge, sharedAudio: sharedAudio, nodes: nodes, pool: pool,
        uploads: UploadReceiver(audio: audio, gauge: gauge, configuration: configuration, threadPool: .singleton),
        engine: engine, metrics: metrics, monitor: monitor, signals: signals, followers: BoundedCount(limit: configuration.maxFollowers)
    )
    let router = role == .server ? buildRouter(service: service) : buildWorkerRouter(service: service)
    let streamPool = NIOThreadPool(numberOfThreads: role == .server ? configuration.maxStreams : 1)
    let webSocketRouter = Router(context: BasicWebSocketRequestContext.self)
    if role == .server {
        StreamController(service: service, threadPool: streamPool, active: .init(limit: configuration.maxStreams))
            .addRoutes(to: webSocketRouter)
    }
    var server = HTTPServerBuilder.http1WebSocketUpgrade(
        webSocketRouter: webSocketRouter,
        configuration: .init(http1: .init(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds))),
                             ws: .init(maxFrameSize: 1 << 20, autoPing: .disabled))
    )
    if let tls = configuration.tls {
        server = try .tls(server, tlsConfiguration: try tlsConfiguration(tls))
    }
    // Services stop in reverse order: the store, first, outlives everything that uses it,
    // and the decode threads outlive the workers and streams that decode on them.
    let services: [any Service] = [storeService] + (presence.map { [$0] } ?? []) + [
        ThreadPoolService(pool: decodePool), pool, monitor, ThreadPoolService(pool: streamPool),
        RetentionService(store: store, audio: audio, retention: configuration.retention, logger: logger),
    ]
    // Started once nothing more can fail; their services stop them.
    decodePool.start()
    streamPool.start()
    let application = Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Tingxie"),
        services: services,
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            logger.info("listening", metadata: [
                "role": "\(role.rawValue)", "address": "\(configuration.host):\(port)", "tls": "\(configuration.tls != nil)",
                "workers": "\(configuration.workers.workers)", "model": "\(engine.model.name)",
                "data_dir": "\(configuration.dataDirectory.path)", "job_store": "\(configuration.databaseURL == nil ? "sqlite" : "postgresql")",
                "punctuation": "\(pipeline.punctuator?.name ?? (engine.model.punctuates ? "the model's own" : "none"))",
                "live_partials": "\(pipeline.streaming?.name ?? "re-recognised by the offline model")",
            ])
            await onListening(port)
        },
        logger: logger
    )
    return Server(application: application, workers: pool, logger: logger)
}

/// The job store the configuration names, with the service that holds it open: PostgreSQL
/// shared by many nodes, or the embedded SQLite file in the data folder.
func openJobStore(configuration: ServerConfiguration, gauge: QueueGauge, logger: Logger) throws -> (any JobStore, any Service) {
    if let url = configuration.databaseURL {
        let store = try PostgresJobStore(url: url, gauge: gauge, node: configuration.nodeName, logger: logger)
        return (store, store)
    }
    let store = try SQLiteJobStore(path: configuration.dataDirectory.appendingPathComponent("jobs.sqlite"), gauge: gauge)
    return (store, store)
}

/// The server side of TLS from PEM files.
/// - Throws: `TingxieError(.invalidArgument)` naming the file that cannot be read.
func tlsConfiguration(_ files: ServerConfiguration.TLSFiles) throws -> TLSConfiguration {
    let chain: [NIOSSLCertificate]
    do {
        chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain.path)
    } catch {
        throw TingxieError(.invalidArgument, "cannot read the TLS certificate \(files.certificateChain.path) as PEM: \(error)")
    }
    guard !chain.isEmpty else { throw TingxieError(.invalidArgument, "no certificate in \(files.certificateChain.path)") }
    let key: NIOSSLPrivateKey
    do {
        key = try NIOSSLPrivateKey(file: files.privateKey.path, format: .pem)
    } catch {
        throw TingxieError(.invalidArgument, "cannot read the TLS private key \(files.privateKey.path) as PEM: \(error)")
    }
    return .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
}

/// The API and the web UI. Before routing, every request passes the edge (a host the server
/// answers to, the canonical spelling of its path); the API's routes form one group behind the
/// key middleware, so whatever reaches an API route has been through it.
func buildRouter(service: JobService) -> Router<APIRequestContext> {
    let router = Router(context: APIRequestContext.self)
    let configuration = service.configuration
    addEdge(to: router, service: service,
            browserPolicy: OriginPolicy(allowed: configuration.corsOrigins, hosts: configuration.hostNames))
    if let web = Bundle.module.url(forResource: "Web", withExtension: nil) {
        router.add(middleware: FileMiddleware(web.path, cacheControl: .init([(MediaType(type: .any), [.noCache])]), searchForIndexHtml: true))
    }
    let system = SystemController(service: service)
    system.addProbes(to: router)
    let api = router.group().add(middleware: APIKeyMiddleware(keys: configuration.keys))
    system.addRoutes(to: api)
    JobsController(service: service).addRoutes(to: api)
    OpenAIController(service: service).addRoutes(to: api)
    return router
}

/// A worker's port: the probes, and the metrics behind the keys.
func buildWorkerRouter(service: JobService) -> Router<APIRequestContext> {
    let router = Router(context: APIRequestContext.self)
    addEdge(to: router, service: service, browserPolicy: nil)
    let system = SystemController(service: service)
    system.addProbes(to: router)
    system.addMetrics(to: router.group().add(middleware: APIKeyMiddleware(keys: service.configuration.keys)))
    return router
}

/// What every request passes first: counted, the edge, the browser policy (outside the error
/// middleware, so that error responses carry its headers), then errors in the API's shape.
private func addEdge(to router: Router<APIRequestContext>, service: JobService, browserPolicy: OriginPolicy?) {
    router.add(middleware: MetricsMiddleware(metrics: service.metrics))
    router.add(middleware: EdgeMiddleware(hosts: service.configuration.hostNames))
    if let browserPolicy {
        router.add(middleware: BrowserPolicyMiddleware(policy: browserPolicy))
    }
    router.add(middleware: ErrorMiddleware(retryAfter: service.retryAfter))
}

/// Keeps a thread pool for the server's lifetime and shuts it down after it.
struct ThreadPoolService: Service {
    let pool: NIOThreadPool

    func run() async throws {
        try? await gracefulShutdown()
        try await pool.shutdownGracefully()
    }
}
