import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing
import TingxieCore
import TingxieJobs
import TingxiePipeline
import TingxieServer

/// Runs the real application (routes, store, workers) over a temporary data folder, with the
/// fake VAD and (unless given another) the fake recogniser, and hands the test a client.
func withTestServer(
    recognizer: any Recognizer = FakeRecognizer(),
    punctuator: (any Punctuator)? = nil,
    streaming: (any StreamingRecognizer)? = nil,
    hotwords: [Hotword] = [],
    resources: FakeResources = FakeResources(),
    testing: TestingSetup = .router,
    setup: (inout ServerConfiguration) -> Void = { _ in },
    _ test: @Sendable (any TestClientProtocol, ServerConfiguration) async throws -> Void
) async throws {
    let root = try TestData.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    var configuration = ServerConfiguration(dataDirectory: root.appendingPathComponent("data"),
                                            workers: WorkerPool.Configuration(workers: 1, shutdownGrace: .seconds(1)))
    setup(&configuration)
    let configured = configuration
    // The dictionaries load once per process, off the cooperative pool other tests need.
    let lexicon = try await offThePool { Pinyin.lexicon }
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    let app = try buildApplication(configuration: configured,
                                   recognition: Recognition(recognizer: recognizer, detectors: FakeVAD(), punctuator: punctuator,
                                                            lexicon: lexicon, hotwords: hotwords, streaming: streaming),
                                   logger: logger, resources: resources)
    try await app.test(testing) { client in try await test(client, configured) }
}

/// Runs the server as `tingxie serve` does, on a free loopback port (`configuration.port` 0),
/// with the fake VAD; hands `body` the port and the service group (to begin the shutdown
/// early), then shuts the server down and waits for it.
func withListeningServer<T: Sendable>(configuration: ServerConfiguration, recognizer: any Recognizer = FakeRecognizer(),
                                      _ body: @Sendable (_ port: Int, _ group: ServiceGroup) async throws -> T) async throws -> T {
    let port = Mutex(0)
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    let server = try buildServer(configuration: configuration, recognition: Recognition(recognizer: recognizer, detectors: FakeVAD()),
                                 logger: logger) { bound in port.withLock { $0 = bound } }
    let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            for _ in 0..<200 where port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(25)) }
            let bound = port.withLock { $0 }
            try #require(bound != 0, "the server did not listen within 5 s")
            let result = try await body(bound, group)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

/// Memory readings the test sets: 16 GB of memory, `memoryFraction` of it in use, an 8 GB
/// cgroup limit half used, one GPU.
final class FakeResources: ResourceSource {
    let memoryFraction = Mutex(0.5)

    func sample() async -> ResourceSample {
        let total = 16 << 30
        let used = Int(Double(total) * memoryFraction.withLock { $0 })
        return ResourceSample(processResidentBytes: 300 << 20, systemTotalBytes: total, systemAvailableBytes: total - used,
                              cgroupLimitBytes: 8 << 30, cgroupUsageBytes: 4 << 30, gpus: [.init(index: 0, usedBytes: 1 << 30, totalBytes: 8 << 30)])
    }
}

/// Test audio and request bodies.
enum Upload {
    /// `seconds` of 16 kHz WAV with a tone in the middle (one speech segment for the fake VAD).
    static func wav(seconds: Double = 2) -> Data {
        let rate = 16_000
        let samples = (0..<Int(seconds * Double(rate))).map { index -> Double in
            let t = Double(index) / Double(rate)
            return t > 0.2 && t < seconds - 0.2 ? 0.3 * sin(2 * .pi * 300 * t) : 0
        }
        return WAVFixture.file(samples, sampleRate: rate)
    }

    static let boundary = "tingxie-test-boundary-7MA4YWxkTrZu0gW"

    struct Part {
        var name: String
        var filename: String?
        var contentType: String?
        var data: Data

        static func file(_ data: Data, filename: String = "speech.wav") -> Part {
            Part(name: "file", filename: filename, contentType: "audio/wav", data: data)
        }

        static func field(_ name: String, _ value: String) -> Part {
            Part(name: name, data: Data(value.utf8))
        }
    }

    static func multipart(_ parts: [Part]) -> ByteBuffer {
        var body = Data()
        for part in parts {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\"".utf8))
            if let filename = part.filename {
                body.append(Data("; filename=\"".utf8))
                body.append(Data(filename.utf8))
                body.append(Data("\"".utf8))
            }
            body.append(Data("\r\n".utf8))
            if let type = part.contentType { body.append(Data("Content-Type: \(type)\r\n".utf8)) }
            body.append(Data("\r\n".utf8))
            body.append(part.data)
            body.append(Data("\r\n".utf8))
        }
        body.append(Data("--\(boundary)--\r\n".utf8))
        return ByteBuffer(bytes: body)
    }

    static var multipartHeaders: HTTPFields {
        [.contentType: "multipart/form-data; boundary=\(boundary)"]
    }
}

/// Small helpers over the test client.
extension TestClientProtocol {
    func post(_ uri: String, parts: [Upload.Part], headers: HTTPFields = [:]) async throws -> TestResponse {
        var all = Upload.multipartHeaders
        all.append(contentsOf: headers)
        return try await execute(uri: uri, method: .post, headers: all, body: Upload.multipart(parts))
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }

    /// Submits one file and returns the job id.
    func submit(_ data: Data = Upload.wav(), fields: [Upload.Part] = []) async throws -> String {
        let response = try await post("/v1/jobs", parts: [.file(data)] + fields)
        #expect(response.status == .accepted, "\(response.text)")
        return try #require(response.json["id"] as? String)
    }

    /// Polls the job until it is finished (at most 200 times, 50 ms apart).
    func waitUntilFinished(_ id: String) async throws -> [String: Any] {
        for _ in 0..<200 {
            let job = try await get("/v1/jobs/\(id)").json
            if let status = job["status"] as? String, ["succeeded", "failed", "canceled"].contains(status) { return job }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("job \(id) did not finish within 10 s")
        return [:]
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }

    /// The `error.code` of an error response.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? "" }
}
