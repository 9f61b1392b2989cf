import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing
import TingxieAudio
import TingxieCore
@testable import TingxieJobs
import TingxiePipeline
@testable import TingxieServer

/// One regression test per defect of the hardening review: each failed before its fix.
@Suite struct HardeningTests {
    // MARK: Numbers from clients

    @Test func aDurationTooLongForDateArithmeticIsA400() async throws {
        try await withTestServer { client, _ in
            for since in ["1e16d", "1e308s", "9999999999d", "infd", "nand", "-1d"] {
                let response = try await client.get("/v1/incidents?since=\(since)")
                #expect(response.status == .badRequest, "\(since)")
                #expect(response.errorMessage.contains("at most 3650 days"), "\(since): \(response.errorMessage)")
            }
            #expect(try await client.get("/v1/incidents?since=30d").status == .ok)
            #expect(try await client.get("/healthz").status == .ok)
        }
    }

    @Test func boundedNumbersRefuseWhatIsNotInRange() throws {
        #expect(try ClientNumber.integer("42", field: "limit", in: 1...100) == 42)
        #expect(try ClientNumber.number("0.5", field: "t", in: 0...1) == 0.5)
        for text in ["", "-1", "101", "1e2", "NaN", "inf", String(repeating: "9", count: 10_000), "0x10", " 5"] {
            let error = try #require(throws: TingxieError.self) { try ClientNumber.integer(text, field: "limit", in: 1...100) }
            #expect(error.message.hasPrefix("limit must be a whole number from 1 to 100"), "\(text)")
            #expect(error.message.count < 200)
        }
        for text in ["nan", "inf", "-inf", "1e308", "2", String(repeating: "1", count: 40)] {
            #expect(throws: TingxieError.self, "\(text)") { try ClientNumber.number(text, field: "t", in: 0...1) }
        }
        #expect(throws: TingxieError.self) { try ClientNumber.integer(Double.nan, field: "audio_fs", in: 8000...48_000) }
        #expect(throws: TingxieError.self) { try ClientNumber.integer(16_000.5, field: "audio_fs", in: 8000...48_000) }
        #expect(Duration(parsing: "1e16d") == nil)
        #expect(Duration(parsing: "24h") == .seconds(86_400))
    }

    // MARK: Keys, origins and browsers

    @Test func withKeysTheWebUIStillOpensAndOnlyTheAPIAsksForOne() async throws {
        try await withTestServer(setup: { $0.apiKeys = ["secret-key"] }) { client, _ in
            for path in ["/", "/index.html", "/app.js", "/app.css"] {
                #expect(try await client.get(path).status == .ok, "\(path)")
            }
            for path in ["/v1/jobs", "/v1/system", "/metrics"] {
                let response = try await client.get(path)
                #expect(response.status == .unauthorized, "\(path)")
                #expect(response.errorCode == "unauthorized")
            }
            #expect(try await client.get("/v1/system", headers: [.authorization: "Bearer secret-key"]).status == .ok)
            // OpenAI's clients read OpenAI's error shape.
            let openAI = try await client.post("/v1/audio/transcriptions", parts: [.file(Upload.wav())])
            #expect(openAI.status == .unauthorized)
            let error = try #require(openAI.json["error"] as? [String: Any])
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error.keys.contains("param"))
        }
    }

    @Test func otherWebPagesCannotDriveTheServer() async throws {
        try await withTestServer(testing: .live, setup: { $0.corsOrigins = ["https://app.example"]; $0.workers.workers = 0 }) { client, _ in
            let port = try #require(client.port)
            func post(origin: String?) async throws -> TestResponse {
                var headers: HTTPFields = [:]
                if let origin { headers[.origin] = origin }
                return try await client.post("/v1/jobs", parts: [.file(Upload.wav())], headers: headers)
            }
            let evil = try await post(origin: "https://evil.example")
            #expect(evil.status == .forbidden)
            #expect(evil.errorCode == "forbidden")
            #expect(try await post(origin: "null").status == .forbidden)
            // The test client names the server `localhost`.
            #expect(try await post(origin: "http://localhost").status == .accepted, "the server's own page")
            #expect(try await post(origin: "http://localhost:\(port + 1)").status == .forbidden)
            #expect(try await post(origin: "https://app.example").status == .accepted)
            #expect(try await post(origin: nil).status == .accepted)
            // Reading stays open to every origin (CORS decides what a browser may see).
            #expect(try await client.get("/healthz", headers: [.origin: "https://evil.example"]).status == .ok)
        }
    }

    @Test func responsesCarryTheBrowserPolicyHeaders() async throws {
        try await withTestServer { client, _ in
            for path in ["/", "/v1/jobs/nope"] {
                let response = try await client.get(path)
                #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true, "\(path)")
                #expect(response.headers[.vary] == "Origin", "\(path)")
                #expect(response.headers[.xContentTypeOptions] == "nosniff", "\(path)")
            }
        }
    }

    @Test func eachKeyHolderListsOnlyItsOwnJobs() async throws {
        try await withTestServer(setup: { $0.apiKeys = ["key-a", "key-b"]; $0.workers.workers = 0 }) { client, _ in
            func submit(_ key: String) async throws -> String {
                let response = try await client.post("/v1/jobs", parts: [.file(Upload.wav())], headers: [.authorization: "Bearer \(key)"])
                return try #require(response.json["id"] as? String)
            }
            let a = try await submit("key-a")
            let b = try await submit("key-b")
            func listed(_ key: String) async throws -> [String] {
                let jobs = try await client.get("/v1/jobs", headers: [.authorization: "Bearer \(key)"]).json["jobs"] as? [[String: Any]]
                return (jobs ?? []).compactMap { $0["id"] as? String }
            }
            #expect(try await listed("key-a") == [a])
            #expect(try await listed("key-b") == [b])
        }
    }

    @Test func aStreamTakesItsKeyAsASubprotocolAndRefusesOtherPages() async throws {
        try await withTestServer(testing: .live, setup: { $0.apiKeys = ["stream-key"] }) { client, _ in
            let port = try #require(client.port)
            // A refusal comes right after the upgrade: a plain socket reads it wherever it lands.
            func firstMessage(protocols: [String], origin: String? = nil) async throws -> [String: Any] {
                var headers: [String: String] = [:]
                if !protocols.isEmpty { headers["Sec-WebSocket-Protocol"] = protocols.joined(separator: ", ") }
                if let origin { headers["Origin"] = origin }
                let request = headers
                let text = try await offThePool {
                    let socket = try RawWebSocket(port: port, headers: request)
                    try socket.send(text: #"{"mode": "offline", "wav_name": "k"}"#)
                    try socket.send(binary: StreamClient.pcm(seconds: 1, bursts: [(0.2, 0.8)]))
                    try socket.send(text: #"{"is_speaking": false}"#)
                    return try socket.nextText()
                }
                let answer = try #require(text, "the server closed without a message")
                return try #require(try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any])
            }
            let unkeyed = try await firstMessage(protocols: [])
            #expect((unkeyed["error"] as? [String: Any])?["code"] as? String == "unauthorized")
            let keyed = try await firstMessage(protocols: ["tingxie", "tingxie-key.stream-key"])
            #expect(keyed["mode"] as? String == "offline", "\(keyed)")
            let foreign = try await firstMessage(protocols: ["tingxie", "tingxie-key.stream-key"], origin: "https://evil.example")
            #expect((foreign["error"] as? [String: Any])?["code"] as? String == "forbidden")
        }
    }

    // MARK: Streams

    @Test func pushedAudioWaitsForTheReaderInsteadOfFillingMemory() async throws {
        let source = PushedAudioSource(sampleRate: 16_000, bufferSeconds: 1)
        let pushed = Atomic<Int>(0)
        let (done, finished) = AsyncStream.makeStream(of: Void.self)
        let pusher = Task {
            for _ in 0..<50 {
                await source.push([Float](repeating: 0.1, count: 1600))
                pushed.add(1, ordering: .relaxed)
            }
            finished.yield()
        }
        // Nobody reads: once a second (10 chunks) waits, the tenth push does not return.
        for _ in 0..<40 where pushed.load(ordering: .relaxed) < 9 { try await Task.sleep(for: .milliseconds(25)) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(pushed.load(ordering: .relaxed) == 9)
        #expect(source.bufferedSeconds <= 1)
        // Reading makes room; everything arrives, and the buffer never grows past its bound.
        let largest = try await offThePool {
            var read = 0, largest = 0.0
            while read < 50 * 1600, let chunk = try source.nextChunk() {
                read += chunk.count
                largest = max(largest, source.bufferedSeconds)
            }
            return largest
        }
        #expect(largest <= 1)
        var iterator = done.makeAsyncIterator()
        _ = await iterator.next()
        pusher.cancel()
        source.end()
        #expect(try source.nextChunk() == nil)
    }

    @Test func aStreamThatSendsNothingIsClosedAfterTheIdleTimeout() async throws {
        try await withTestServer(testing: .live, setup: { $0.idleTimeoutSeconds = 1 }) { client, _ in
            let port = try #require(client.port)
            let received = Inbox()
            var logger = Logger(label: "ws-test")
            logger.logLevel = .error
            let started = ContinuousClock.now
            try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/stream", logger: logger) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    if case .text(let text) = message { received.texts.withLock { $0.append(text) } }
                }
            }
            #expect(ContinuousClock.now - started < .seconds(30))
            let message = try #require(received.texts.withLock { $0.first })
            #expect(message.contains("\"request_timeout\""), "\(message)")
        }
    }

    @Test func anOfflineStreamWhoseClientLeavesCancelsItsJob() async throws {
        try await withTestServer(recognizer: FakeRecognizer(delay: .seconds(3)), testing: .live) { client, _ in
            let port = try #require(client.port)
            var logger = Logger(label: "ws-test")
            logger.logLevel = .error
            try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/stream", logger: logger) { _, outbound, _ in
                try await outbound.write(.text(#"{"mode": "offline", "wav_name": "leaver"}"#))
                try await outbound.write(.binary(ByteBuffer(bytes: StreamClient.pcm(seconds: 2, bursts: [(0.2, 1.8)]))))
                try await outbound.write(.text(#"{"is_speaking": false}"#))
                try await Task.sleep(for: .milliseconds(500))
                try await outbound.close(.normalClosure, reason: nil)
            }
            // The job ran through the queue and was canceled when its client left.
            var status: String?
            for _ in 0..<100 {
                let jobs = try await client.get("/v1/jobs").json["jobs"] as? [[String: Any]]
                status = jobs?.first?["status"] as? String
                if status == "canceled" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(status == "canceled")
        }
    }

    // MARK: Subprocesses and logs

    @Test func aProgramThatCannotStartIsAnErrorNotACrash() throws {
        let error = try #require(throws: TingxieError.self) {
            try Subprocess(executable: "ffmpeg", arguments: ["-version"], launcher: "/nonexistent/prlimit")
        }
        #expect(error.code == .ioError)
        #expect(error.message.hasPrefix("cannot start ffmpeg"))
    }

    @Test func aChildThatFillsStderrDoesNotHangItsReader() throws {
        // 1 MB on stderr (16 pipes' worth) before a word on stdout.
        let output = try Subprocess.run("/bin/sh", ["-c", "head -c 1048576 /dev/zero >&2; echo done"])
        #expect(output == "done\n")
        let failure = try #require(throws: TingxieError.self) { try Subprocess.run("/bin/sh", ["-c", "echo broken >&2; exit 3"]) }
        #expect(failure.message == "sh failed (exit status 3): broken")
    }

    @Test func textLogsEscapeControlCharacters() {
        #expect(LineLogHandler.escaped("a\nb\r\tc\u{1B}[31m") == "a\\nb\\r\\tc\\u{1B}[31m")
        #expect(LineLogHandler.escaped("会议.wav") == "会议.wav")
    }

    // MARK: Resources

    @Test func sharedRecognizerRunsAtMostItsLimitOfDecodesAtOnce() async throws {
        /// Records how many calls overlap.
        final class Overlap: Recognizer {
            let info = ModelInfo(family: "fake", name: "fake", emitsTraditional: false, maxSegmentSeconds: 10)
            let state = Mutex((now: 0, most: 0))
            func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
                state.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                Thread.sleep(forTimeInterval: 0.02)
                state.withLock { $0.now -= 1 }
                return batch.map { _ in RecognitionResult(text: "") }
            }
        }
        let base = Overlap()
        let shared = SharedRecognizer(base, limit: 2)
        try await withThreadPool(threads: 8) { threads in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await threads.runIfActive { for _ in 0..<5 { _ = try shared.recognize([0]) } } }
                }
                try await group.waitForAll()
            }
        }
        #expect(base.state.withLock { $0.most } == 2)
    }

    @Test func theMemoryLimitIsThatOfTheServicesOwnCgroup() throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        func write(_ path: String, _ text: String) throws {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        // v2, as systemd's MemoryMax sets it: the root says max, the service's cgroup 1 GiB.
        try write("v2/memory.max", "max\n")
        try write("v2/system.slice/memory.max", "max\n")
        try write("v2/system.slice/tingxie.service/memory.max", "1073741824\n")
        try write("v2/system.slice/tingxie.service/memory.current", "536870912\n")
        // Inactive file cache is reclaimed before anything is killed: not pressure.
        try write("v2/system.slice/tingxie.service/memory.stat", "anon 268435456\nfile 268435456\ninactive_file 134217728\n")
        let v2 = SystemResources.cgroupMemory(membership: "0::/system.slice/tingxie.service\n", root: root.appendingPathComponent("v2").path)
        #expect(v2?.limit == 1 << 30)
        #expect(v2?.usage == (1 << 29) - (1 << 27))
        // v1: the tightest limit on the way up binds.
        try write("v1/memory/memory.limit_in_bytes", "9223372036854771712\n")
        try write("v1/memory/a/memory.limit_in_bytes", "2147483648\n")
        try write("v1/memory/a/memory.usage_in_bytes", "1000\n")
        try write("v1/memory/a/memory.stat", "cache 800\ninactive_file 300\ntotal_inactive_file 600\n")
        try write("v1/memory/a/b/memory.limit_in_bytes", "9223372036854771712\n")
        let v1 = SystemResources.cgroupMemory(membership: "4:memory:/a/b\n1:cpu:/\n", root: root.appendingPathComponent("v1").path)
        #expect(v1?.limit == 2 << 30)
        #expect(v1?.usage == 400)
        #expect(SystemResources.cgroupMemory(membership: "0::/\n", root: root.appendingPathComponent("none").path) == nil)
    }

    @Test func uploadsAreKeptPrivateAndAFullDiskRefusesThem() async throws {
        try await withTestServer(setup: { $0.workers.workers = 0 }) { client, configuration in
            let id = try await client.submit()
            let files = FileManager.default
            let audio = configuration.dataDirectory.appendingPathComponent("audio/\(id)")
            #expect((try files.attributesOfItem(atPath: audio.path)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            #expect((try files.attributesOfItem(atPath: configuration.dataDirectory.path)[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        }
        try await withTestServer(setup: { $0.minFreeDiskBytes = Int.max / 2 }) { client, _ in
            let response = try await client.post("/v1/jobs", parts: [.file(Upload.wav())])
            #expect(response.status.code == 507)
            #expect(response.errorCode == "insufficient_storage")
            #expect(response.headers[.retryAfter] != nil)
        }
    }

    @Test func errorsShowTheClientsFileNameNeverAServerPath() async throws {
        try await withTestServer { client, configuration in
            let response = try await client.post("/v1/jobs", parts: [.file(Data("#EXTM3U\nfile:///etc/passwd\n".utf8), filename: "list.mp3")])
            #expect(response.status == .unsupportedMediaType)
            #expect(response.errorMessage.hasPrefix("list.mp3: "), "\(response.errorMessage)")
            #expect(!response.errorMessage.contains(configuration.dataDirectory.path))
            #expect(!response.errorMessage.contains("uploads/"))
        }
    }

    @Test func aVBRMP3WithoutAXingHeaderIsTranscribedWhole() async throws {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Silence, then a tone: ffprobe estimates the length from the first frames' bitrate.
        let mp3 = directory.appendingPathComponent("vbr.mp3")
        let probed = try #require(try await offThePool {
            try Subprocess.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono:d=20", "-f", "lavfi",
                                          "-i", "sine=frequency=300:sample_rate=16000:duration=8", "-filter_complex", "[0][1]concat=n=2:v=0:a=1",
                                          "-c:a", "libmp3lame", "-q:a", "0", "-write_xing", "0", mp3.path], limits: SubprocessLimits())
            return try FFmpegSource.probe(mp3).duration
        })
        #expect(abs(probed - 28) > 2, "ffprobe's estimate should be off for this test to mean anything (\(probed) s)")
        try await withTestServer { client, _ in
            let id = try await client.submit(try Data(contentsOf: mp3))
            let job = try await client.waitUntilFinished(id)
            #expect(job["status"] as? String == "succeeded", "\(job)")
        }
    }

    // MARK: Leases, shutdown, retention

    /// Claims by hand, like another worker would.
    static func store(in directory: URL) throws -> SQLiteJobStore {
        try SQLiteJobStore(path: directory.appendingPathComponent("jobs.sqlite"))
    }

    @Test func leasesAreOnTheMonotonicClock() async throws {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Self.store(in: directory)
        try await store.enqueue([Job(id: Job.newID(), filename: nil, bytes: 1, durationS: 1)], settling: nil)
        let before = LeaseClock.now
        let claimed = try #require(try await store.claim(owner: "w", lease: .seconds(30)))
        let expires = try #require(claimed.leaseExpiresAt)
        #expect(expires >= before + 30 && expires <= LeaseClock.now + 30)
    }

    /// A failure reported for a job that was taken over meanwhile leaves it to its new owner:
    /// not failed, its audio kept.
    @Test func aWorkerThatLostItsLeaseLeavesTheJobAlone() async throws {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Self.store(in: directory)
        let audio = try AudioStore(directory: directory)
        let id = Job.newID()
        try Data("audio".utf8).write(to: audio.url(for: id))
        try await store.enqueue([Job(id: id, filename: nil, bytes: 5, durationS: 1)], settling: nil)
        let release = AsyncStream<Void>.makeStream()
        let processor = BlockingProcessor(release: release.stream)
        let events = Mutex<[Job.Status]>([])
        let pool = WorkerPool(store: store, processor: processor, audio: audio,
                              configuration: .init(workers: 1, lease: .milliseconds(300), heartbeat: .seconds(60), sweepInterval: .seconds(60)),
                              logger: Logger(label: "test")) { event in
            if case .finished(_, let status, _, _) = event { events.withLock { $0.append(status) } }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            for _ in 0..<100 where processor.started.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(20)) }
            try await Task.sleep(for: .milliseconds(400))
            // The lease ran out; another worker takes the job.
            #expect(try await store.recoverExpiredLeases().map(\.id) == [id])
            #expect(try await store.claim(owner: "other", lease: .seconds(60))?.id == id)
            release.continuation.yield()
            for _ in 0..<100 where processor.finished.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(20)) }
            try await Task.sleep(for: .milliseconds(200))
            group.cancelAll()
        }
        let job = try #require(try await store.job(id: id))
        #expect(job.status == .running && job.leaseOwner == "other")
        #expect(FileManager.default.fileExists(atPath: audio.url(for: id).path))
        #expect(events.withLock { $0 }.isEmpty)
    }

    /// Finished jobs past retention go with their results and incidents; audio no job waits
    /// for goes when it was written before the service started (a crash between storing an
    /// upload and queueing it), however recent; audio written since may be an upload finishing.
    @Test func retentionPurgesOldFinishedJobsAndOrphanedAudio() async throws {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Self.store(in: directory)
        let audio = try AudioStore(directory: directory)
        let failed = Job.newID(), waiting = Job.newID(), canceled = Job.newID(), orphan = Job.newID(), arriving = Job.newID()
        try await store.enqueue([failed, waiting, canceled].map { Job(id: $0, filename: nil, bytes: 1, durationS: 1) }, settling: nil)
        let claimed = try #require(try await store.claim(owner: "w", lease: .seconds(60)))
        #expect(claimed.id == failed)
        #expect(try await store.fail(id: failed, owner: "w", error: TingxieError(.decodeError, "bad"), retryAt: nil))
        _ = try await store.cancel(id: canceled)
        for id in [waiting, canceled, orphan] {
            try Data("x".utf8).write(to: audio.url(for: id))
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-60)], ofItemAtPath: audio.url(for: id).path)
        }
        let retention = RetentionService(store: store, audio: audio, retention: .seconds(0), logger: Logger(label: "test"))
        try Data("x".utf8).write(to: audio.url(for: arriving))
        await retention.sweep()
        #expect(try await store.job(id: failed) == nil)
        #expect(try await store.job(id: canceled) == nil)
        #expect(try await store.incidents(since: nil, limit: 10).isEmpty)
        #expect(try await store.job(id: waiting)?.status == .queued)
        let exists = { (id: String) in FileManager.default.fileExists(atPath: audio.url(for: id).path) }
        #expect(exists(waiting) && exists(arriving))
        #expect(!exists(canceled) && !exists(orphan))
    }

    /// On shutdown the workers stop claiming at once, even while HTTP still drains a request.
    @Test func workersStopClaimingAsSoonAsTheShutdownBegins() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let configuration = ServerConfiguration(port: 0, dataDirectory: root.appendingPathComponent("data"),
                                                workers: .init(workers: 1, shutdownGrace: .seconds(20)))
        // The first job runs 4 s: the second could only start after it, and the shutdown begins well before.
        let ids = try await withListeningServer(configuration: configuration, recognizer: FakeRecognizer(delay: .seconds(4))) { port, group in
            let base = "http://127.0.0.1:\(port)"
            let first = try #require(try await LiveHTTP.submit(base, Upload.wav(seconds: 2)).json["id"] as? String)
            let second = try #require(try await LiveHTTP.submit(base, Upload.wav(seconds: 2)).json["id"] as? String)
            // A request that keeps HTTP draining: the OpenAI endpoint waits for its job.
            let body = Upload.multipart([.file(Upload.wav(seconds: 2)), .field("model", "x")])
            let draining = Task {
                _ = try? await LiveHTTP.request(base + "/v1/audio/transcriptions", method: .POST,
                                                headers: [("Content-Type", "multipart/form-data; boundary=\(Upload.boundary)")],
                                                body: Data(body.readableBytesView))
            }
            try await Task.sleep(for: .milliseconds(300))
            await group.triggerGracefulShutdown()
            await draining.value
            return (first, second)
        }
        let store = try Self.store(in: configuration.dataDirectory)
        #expect(try await store.job(id: ids.0)?.status == .succeeded)
        let second = try #require(try await store.job(id: ids.1))
        #expect(second.status == .queued && second.attempts == 0, "\(second.status), \(second.attempts) attempts")
    }
}

/// Blocks each job until released, then fails it for good (decode error).
final class BlockingProcessor: JobProcessor {
    let release: AsyncStream<Void>
    let started = Atomic<Int>(0)
    let finished = Atomic<Int>(0)

    init(release: AsyncStream<Void>) { self.release = release }

    func process(_ job: Job, audio: URL, progress: @escaping @Sendable (Double) -> Void) async throws -> Transcript {
        started.add(1, ordering: .relaxed)
        defer { finished.add(1, ordering: .relaxed) }
        for await _ in release { break }
        throw TingxieError(.decodeError, "the audio could not be decoded")
    }
}
