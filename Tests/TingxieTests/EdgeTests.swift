import Foundation
import Testing
import TingxieAudio
import TingxieCore
import TingxieJobs
import TingxiePostgres
@testable import TingxieServer

/// The edge as a hostile client meets it, over real HTTP on a loopback port: every route in
/// every path spelling with and without keys, Host and Origin headers, and key holders who must
/// not reach each other's jobs.
@Suite struct EdgeTests {
    /// A method and a path of every API route (`{id}` filled in by the test).
    static let routes: [(method: String, path: String)] = [
        ("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/{id}"), ("DELETE", "/v1/jobs/{id}"),
        ("GET", "/v1/jobs/{id}/transcript"), ("GET", "/v1/jobs/{id}/events"), ("POST", "/v1/batches"),
        ("GET", "/v1/batches/{id}"), ("POST", "/v1/audio/transcriptions"), ("POST", "/v1/audio/translations"),
        ("GET", "/v1/models"), ("GET", "/v1/system"), ("GET", "/v1/incidents"), ("GET", "/metrics"),
    ]

    /// Other spellings of `path` that a lenient router or a proxy might take for it.
    static func spellings(of path: String) -> [String] {
        let rest = path.dropFirst()
        var spellings = ["/" + path, path + "/", path.replacingOccurrences(of: "/", with: "//"), "/./" + rest,
                         "/x/../" + rest, path.uppercased(), "/%" + String(format: "%02x", rest.utf8.first!) + rest.dropFirst()]
        if let slash = rest.firstIndex(of: "/") {
            spellings.append("/" + rest[..<slash] + "//" + rest[rest.index(after: slash)...])
            spellings.append("/" + rest[..<slash] + "/./" + rest[rest.index(after: slash)...])
        }
        return spellings
    }

    @Test func everySpellingOfEveryAPIRouteNeedsTheKey() async throws {
        var configuration = ServerConfiguration(port: 0, dataDirectory: try TestData.temporaryDirectory().appendingPathComponent("data"),
                                                workers: WorkerPool.Configuration(workers: 1, shutdownGrace: .seconds(1)))
        configuration.apiKeys = ["key-one"]
        try await withListeningServer(configuration: configuration) { port, _ in
            let id = try await RawHTTP.submit(port: port, key: "key-one").id
            var checked = 0
            for route in Self.routes {
                let path = route.path.replacingOccurrences(of: "{id}", with: id)
                // The canonical spelling: no key, a wrong key and the key with 256 bytes more are 401.
                for key in [nil, "wrong", "key-one" + String(repeating: "x", count: 256)] as [String?] {
                    let answer = try await RawHTTP.request(port: port, method: route.method, target: path, key: key)
                    #expect(answer.status == 401, "\(route.method) \(path) with key \(key.map { String($0.prefix(12)) } ?? "none"): \(answer.status) \(answer.body.prefix(200))")
                    checked += 1
                }
                // Every other spelling is no path at all, with or without the key.
                for spelling in Self.spellings(of: path) {
                    for key in [nil, "key-one"] as [String?] {
                        let answer = try await RawHTTP.request(port: port, method: route.method, target: spelling, key: key)
                        #expect(answer.status == 404, "\(route.method) \(spelling) with key \(key ?? "none"): \(answer.status) \(answer.body.prefix(200))")
                        #expect(answer.json?["error"] != nil, "\(spelling): not the API's error shape: \(answer.body.prefix(200))")
                        checked += 1
                    }
                }
            }
            // With the key, the canonical spelling works.
            #expect(try await RawHTTP.request(port: port, method: "GET", target: "/v1/jobs/\(id)", key: "key-one").status == 200)
            print("edge: \(checked) route × spelling × key requests, none past the key")
        }
    }

    @Test func hostsTheServerDoesNotAnswerToReachNothing() async throws {
        var configuration = ServerConfiguration(port: 0, dataDirectory: try TestData.temporaryDirectory().appendingPathComponent("data"),
                                                workers: WorkerPool.Configuration(workers: 1, shutdownGrace: .seconds(1)))
        configuration.publicHosts = ["asr.example.lan"]
        try await withListeningServer(configuration: configuration) { port, _ in
            // A rebinding domain: the page's origin and the Host agree, and still nothing answers.
            let rebound = ["Host": "evil.example:\(port)", "Origin": "http://evil.example:\(port)"]
            for (method, path) in [("GET", "/"), ("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/healthz"), ("GET", "/app.js")] {
                let answer = try await RawHTTP.request(port: port, method: method, target: path, headers: rebound)
                #expect(answer.status == 421, "\(method) \(path) for evil.example: \(answer.status)")
                #expect(answer.json?["error"] != nil)
            }
            // The same upload from the server's own page, under names it answers to, is taken.
            for host in ["127.0.0.1:\(port)", "localhost:\(port)", "asr.example.lan:\(port)", "[::1]:\(port)"] {
                let answer = try await RawHTTP.upload(port: port, headers: ["Host": host, "Origin": "http://\(host)"])
                #expect(answer.status == 202, "upload for \(host): \(answer.status) \(answer.body.prefix(200))")
            }
            // Another page on this machine is not the server's own.
            let other = try await RawHTTP.upload(port: port, headers: ["Host": "127.0.0.1:\(port)", "Origin": "http://localhost:\(port + 1)"])
            #expect(other.status == 403)
            // Malformed Hosts are refused too.
            for host in ["evil.example:\(port):1", "127.0.0.1:99999", "a b", "[::1", "x@127.0.0.1"] {
                #expect(try await RawHTTP.request(port: port, method: "GET", target: "/v1/jobs", headers: ["Host": host]).status == 421, "Host \(host)")
            }
            // A WebSocket upgrade for a rebinding domain is not upgraded.
            let upgrade = try await RawHTTP.request(port: port, method: "GET", target: "/v1/stream", headers: [
                "Host": "evil.example:\(port)", "Origin": "http://evil.example:\(port)", "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
            ])
            // (The upgrade path answers a refused upgrade with its own 400.)
            #expect((400..<500).contains(upgrade.status), "not upgraded: \(upgrade.status)")
            // Nor one for another spelling of the stream's path.
            let spelled = try await RawHTTP.request(port: port, method: "GET", target: "//v1/stream", headers: [
                "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
            ])
            #expect((400..<500).contains(spelled.status), "not upgraded: \(spelled.status)")
        }
    }

    @Test func keyHoldersCannotSeeOrTouchEachOthersJobs() async throws {
        var configuration = ServerConfiguration(port: 0, dataDirectory: try TestData.temporaryDirectory().appendingPathComponent("data"),
                                                workers: WorkerPool.Configuration(workers: 1, shutdownGrace: .seconds(1)))
        configuration.apiKeys = ["alice-key", "bob-key"]
        configuration.adminKeys = ["operator-key"]
        let failing = FakeRecognizer(failure: TingxieError(.decodeError, "the audio could not be decoded"))
        try await withListeningServer(configuration: configuration, recognizer: failing) { port, _ in
            let (job, batch) = try await RawHTTP.submit(port: port, key: "alice-key", batch: true)
            // Alice's job fails, which records an incident naming it.
            for _ in 0..<200 {
                let status = try await RawHTTP.request(port: port, method: "GET", target: "/v1/jobs/\(job)", key: "alice-key").json?["status"] as? String
                if status == "failed" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            for (method, path) in [("GET", "/v1/jobs/\(job)"), ("GET", "/v1/jobs/\(job)/transcript"), ("GET", "/v1/jobs/\(job)/events"),
                                   ("DELETE", "/v1/jobs/\(job)"), ("GET", "/v1/batches/\(batch!)")] {
                let bob = try await RawHTTP.request(port: port, method: method, target: path, key: "bob-key")
                #expect(bob.status == 404, "bob: \(method) \(path): \(bob.status)")
                let alice = try await RawHTTP.request(port: port, method: method, target: path, key: "alice-key")
                #expect(alice.status != 404, "alice: \(method) \(path): \(alice.status)")
            }
            let bobsList = try await RawHTTP.request(port: port, method: "GET", target: "/v1/jobs", key: "bob-key").json?["jobs"] as? [Any]
            #expect(bobsList?.isEmpty == true)
            func incidentJobs(_ key: String) async throws -> [String] {
                let answer = try await RawHTTP.request(port: port, method: "GET", target: "/v1/incidents", key: key)
                return (answer.json?["incidents"] as? [[String: Any]] ?? []).compactMap { $0["job_id"] as? String }
            }
            #expect(try await incidentJobs("alice-key") == [job])
            #expect(try await incidentJobs("bob-key").isEmpty)
            #expect(try await incidentJobs("operator-key") == [job])
            // The operator reaches every job.
            #expect(try await RawHTTP.request(port: port, method: "GET", target: "/v1/jobs/\(job)", key: "operator-key").status == 200)
        }
    }
}

extension EdgeTests {
    /// A password is percent-decoded once, as libpq does: `50%25off` is `50%off`.
    @Test func databasePasswordsAreDecodedOnce() throws {
        for (written, meant) in [("50%25off", "50%off"), ("p%2541ss", "p%41ss"), ("a%40b%3Ac", "a@b:c"), ("plain", "plain")] {
            let configuration = try PostgresURL.configuration("postgres://tingxie:\(written)@127.0.0.1:5432/jobs")
            #expect(configuration.password == meant, "\(written)")
        }
    }

    /// A real login with a password full of URL characters works when the URL percent-encodes
    /// it once; a wrong password is said to be a refused login, without the password.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TINGXIE_TEST_POSTGRES_PASSWORD_URL"] != nil, TestPostgres.skipReason))
    func aPasswordLoginWorksAndAWrongOneIsSaidPlainly() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["TINGXIE_TEST_POSTGRES_PASSWORD_URL"])
        let one: Int = try await TestPostgres.value("SELECT 1::int8", in: url)
        #expect(one == 1)
        let running = try await TestPostgres.store(url: url.replacingOccurrences(of: "50%25off", with: "49%25off"))
        defer { running.stop() }
        let error = try await #require(throws: TingxieError.self) { try await running.store.ping() }
        print("a wrong password: \(error.code.rawValue): \(error.message)")
        #expect(error.message.contains("refused the login"))
        #expect(!error.message.contains("49%off"))
    }

    /// `--max-stored-audio-gb`: once the audio kept for queued jobs would pass it, uploads get 507.
    @Test func storedAudioIsBounded() async throws {
        try await withTestServer(setup: {
            $0.workers.workers = 0
            $0.maxStoredAudioBytes = 150_000
        }) { client, _ in
            // Each upload is 2 s of 16-bit audio: 64 KB.
            var statuses: [Int] = []
            for _ in 0..<4 {
                let response = try await client.post("/v1/jobs", parts: [.file(Upload.wav())])
                statuses.append(Int(response.status.code))
                if response.status.code == 507 { #expect(response.errorMessage.contains("--max-stored-audio-gb")) }
            }
            print("uploads of 64 KB under a 150 KB bound: \(statuses)")
            #expect(statuses == [202, 202, 507, 507])
        }
    }

    /// A run that lost its lease and ends after the same job was claimed again here neither
    /// feeds nor removes the new run's live segments, and a follower starts again with the new run.
    @Test func anOldRunLeavesANewRunsSegments() {
        let running = RunningSegments()
        let old = running.begin("job")
        var follower = RunningSegments.Cursor()
        running.append(.init(id: 0, start: 0, end: 1, text: "旧的"), to: "job", run: old)
        #expect(running.next(of: "job", after: &follower).map(\.text) == ["旧的"])
        let new = running.begin("job")
        running.append(.init(id: 0, start: 0, end: 1, text: "新的"), to: "job", run: new)
        running.append(.init(id: 1, start: 1, end: 2, text: "旧的二"), to: "job", run: old)
        running.end("job", run: old)
        // The follower starts again with the new run, which the old one neither fed nor ended.
        #expect(running.next(of: "job", after: &follower).map(\.text) == ["新的"])
        #expect(follower.sent == 1)
        running.end("job", run: new)
        #expect(running.next(of: "job", after: &follower).isEmpty)
    }

    /// `curl -m 1` on the synchronous OpenAI route: the client leaves while its job runs, and
    /// the job is canceled, its worker free again, without waiting for the job's timeout.
    @Test func aSyncClientThatLeavesCancelsItsJob() async throws {
        var configuration = ServerConfiguration(port: 0, dataDirectory: try TestData.temporaryDirectory().appendingPathComponent("data"),
                                                workers: WorkerPool.Configuration(workers: 1, shutdownGrace: .seconds(1)))
        configuration.maxAttempts = 1
        try await withListeningServer(configuration: configuration, recognizer: FakeRecognizer(delay: .seconds(20))) { port, _ in
            var multipart = Upload.multipart([.file(Upload.wav()), .field("model", "whisper-1")])
            let body = Data(multipart.readBytes(length: multipart.readableBytes) ?? [])
            let left = try await onOwnThread { () -> Date in
                let socket = try loopbackSocket(port: port)
                let head = "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: \(body.count)\r\n"
                    + "Content-Type: multipart/form-data; boundary=\(Upload.boundary)\r\n\r\n"
                let bytes = Array(head.utf8) + Array(body)
                _ = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                Thread.sleep(forTimeInterval: 1)
                close(socket)
                return Date()
            }
            var status = ""
            var waited = 0.0
            for _ in 0..<100 where status != "canceled" {
                let jobs = try await RawHTTP.request(port: port, method: "GET", target: "/v1/jobs").json?["jobs"] as? [[String: Any]]
                status = jobs?.first?["status"] as? String ?? ""
                waited = Date().timeIntervalSince(left)
                if status != "canceled" { try await Task.sleep(for: .milliseconds(50)) }
            }
            print(String(format: "sync client left after 1 s: its job %@ %.2f s later (the decode would take 20 s)", status, waited))
            #expect(status == "canceled")
        }
    }

    /// Followers of a job's events on the shared PostgreSQL store: up to `--max-followers` are
    /// served and woken by the job's own events, more get a clear 503, and the service stays
    /// ready for everyone meanwhile.
    @Test(.enabled(if: TestPostgres.url != nil, TestPostgres.skipReason))
    func manyFollowersOnPostgreSQLAreBoundedAndWoken() async throws {
        var configuration = ServerConfiguration(port: 0, dataDirectory: try TestData.temporaryDirectory().appendingPathComponent("data"),
                                                workers: WorkerPool.Configuration(workers: 1, shutdownGrace: .seconds(1)))
        configuration.databaseURL = try await TestPostgres.freshDatabase()
        configuration.maxFollowers = 400
        try await withListeningServer(configuration: configuration, recognizer: FakeRecognizer(delay: .seconds(4))) { port, _ in
            let id = try await RawHTTP.submit(port: port, key: nil).id
            let followers = 500
            let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for _ in 0..<followers {
                    group.addTask {
                        let answer = try await RawHTTP.request(port: port, method: "GET", target: "/v1/jobs/\(id)/events?follow=all")
                        return (answer.status, answer.body.contains("job.done"))
                    }
                }
                // Readiness while they follow.
                var ready = 0
                for _ in 0..<10 {
                    if try await RawHTTP.request(port: port, method: "GET", target: "/readyz").status == 200 { ready += 1 }
                    try await Task.sleep(for: .milliseconds(300))
                }
                #expect(ready == 10)
                return try await group.reduce(into: [(Int, Bool)]()) { $0.append($1) }
            }
            let served = outcomes.filter { $0.0 == 200 }
            let refused = outcomes.filter { $0.0 == 503 }
            print("followers on PostgreSQL: \(served.count) served (\(served.filter(\.1).count) saw job.done), \(refused.count) refused with 503, of \(followers)")
            #expect(served.count + refused.count == followers)
            #expect(served.count <= 400 && refused.count >= 100)
            #expect(served.allSatisfy { $0.1 })
        }
    }

    /// Free disk is looked at while an upload arrives, not only against its declared length
    /// (a chunked body declares none): the upload stops with 507 and leaves nothing behind.
    @Test func freeDiskIsCheckedWhileAnUploadArrives() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        var stats = statvfs()
        #expect(statvfs(root.path, &stats) == 0)
        let free = Int(stats.f_bavail) * Int(stats.f_frsize)
        var configuration = ServerConfiguration(port: 0, dataDirectory: root.appendingPathComponent("data"),
                                                workers: WorkerPool.Configuration(workers: 1, shutdownGrace: .seconds(1)))
        // Room for the headers' check, none for 16 MB more.
        configuration.minFreeDiskBytes = free - (4 << 20)
        let uploads = configuration.dataDirectory.appendingPathComponent("uploads")
        try await withListeningServer(configuration: configuration) { port, _ in
            let answer = try await RawHTTP.request(port: port, method: "POST", target: "/v1/jobs?filename=big.wav",
                                                   headers: ["Transfer-Encoding": "chunked"], body: Data(count: 16 << 20), contentType: "audio/wav")
            print("a chunked 16 MB upload with 4 MB of room: \(answer.status) \(answer.json?["error"] ?? "")")
            #expect(answer.status == 507)
            #expect(try FileManager.default.contentsOfDirectory(atPath: uploads.path).isEmpty)
        }
    }

    /// A FLAC cut to a third of its bytes: the job fails saying how much was readable; with
    /// `partial=allow` it succeeds with that part, and says so in every format and an incident.
    @Test(.enabled(if: TestData.corpus != nil, TestData.skipReason))
    func aTruncatedUploadFailsItsJobUnlessPartialAudioIsAllowed() async throws {
        let corpus = try #require(TestData.corpus)
        let whole = try Data(contentsOf: corpus.appendingPathComponent("formats/003.flac"))
        let cut = whole.prefix(whole.count / 3)
        try await withTestServer { client, _ in
            let failing = try await client.post("/v1/jobs", parts: [.file(cut, filename: "cut.flac")])
            #expect(failing.status == .accepted)
            let failed = try await client.waitUntilFinished(try #require(failing.json["id"] as? String))
            let error = failed["error"] as? [String: Any]
            #expect(failed["status"] as? String == "failed")
            #expect(error?["code"] as? String == "audio_truncated")
            let message = error?["message"] as? String ?? ""
            #expect(message.contains("of the 5.0 s"), "\(message)")

            #expect(try await client.post("/v1/jobs?partial=maybe", parts: [.file(cut, filename: "cut.flac")]).status == .badRequest)
            let allowed = try await client.post("/v1/jobs?partial=allow", parts: [.file(cut, filename: "cut.flac")])
            let id = try #require(allowed.json["id"] as? String)
            #expect(try await client.waitUntilFinished(id)["status"] as? String == "succeeded")
            for format in ["json", "txt", "srt", "vtt"] {
                let transcript = try await client.get("/v1/jobs/\(id)/transcript?format=\(format)")
                #expect(transcript.headers[.init("X-Tingxie-Warnings")!] == "1", "\(format)")
                if format == "json" { #expect((transcript.json["warnings"] as? [String])?.first?.contains("ends after") == true) }
                if format == "vtt" { #expect(transcript.text.contains("NOTE cut.flac: the audio ends after")) }
            }
            let incidents = try await client.get("/v1/incidents").json["incidents"] as? [[String: Any]] ?? []
            #expect(incidents.contains { $0["job_id"] as? String == id && $0["cause"] as? String == "partial_audio" })
        }
    }

    /// Speech that gives no text, even decoded on its own, reaches the client and the operator:
    /// `gaps` and a warning in the transcript, a `speech_gap` incident and the gap metric.
    @Test func speechThatGivesNoTextIsAGapInTheJobItsIncidentAndMetrics() async throws {
        let recognizer = FakeRecognizer(timestamps: .stretches, inaudibleAbove: 0.45)
        let audio = PipelineTests().audio(seconds: 7, bursts: [(1, 2), (2.6, 4.1), (4.7, 5.7)], loud: [1])
        try await withTestServer(recognizer: recognizer) { client, _ in
            let posted = try await client.post("/v1/jobs", parts: [.file(audio, filename: "gap.wav")])
            let id = try #require(posted.json["id"] as? String)
            #expect(try await client.waitUntilFinished(id)["status"] as? String == "succeeded")
            let transcript = try await client.get("/v1/jobs/\(id)/transcript")
            #expect(transcript.headers[.init("X-Tingxie-Warnings")!] == "1")
            let gaps = transcript.json["gaps"] as? [[String: Double]] ?? []
            #expect(gaps.count == 1 && abs((gaps.first?["start"] ?? 0) - 2.6) < 0.01, "\(gaps)")
            #expect((transcript.json["warnings"] as? [String])?.first?.contains("gave no text") == true)
            let incidents = try await client.get("/v1/incidents").json["incidents"] as? [[String: Any]] ?? []
            #expect(incidents.contains { $0["job_id"] as? String == id && $0["cause"] as? String == "speech_gap" })
            let metrics = try await client.get("/metrics").text
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("tingxie_speech_gap_seconds_total ") }
            #expect(line.flatMap { Double($0.split(separator: " ")[1]) }.map { abs($0 - 1.5) < 0.03 } == true, "\(line ?? "none")")
        }
    }

    /// FunASR's client sends `60 ms × chunk_size[1] / chunk_interval` of audio per message: 1371
    /// bytes for `chunk_interval` 7, an odd number. Every sample must come out as from one message.
    @Test func oddSizedPCMMessagesGiveTheSameSamples() {
        let samples = (0..<47_965).map { Int16(truncatingIfNeeded: $0 &* 7919) }
        let bytes = samples.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        var whole = PCMFramer()
        let expected = whole.samples(bytes)
        for size in [1371, 1, 3, 4097] {
            var framer = PCMFramer()
            var received: [Float] = []
            var offset = 0
            while offset < bytes.count {
                received += framer.samples(bytes[offset..<min(bytes.count, offset + size)])
                offset += size
            }
            let wrong = zip(received, expected).filter { $0 != $1 }.count + abs(received.count - expected.count)
            print("PCM in \(size)-byte messages: \(wrong) of \(expected.count) samples wrong")
            #expect(wrong == 0)
        }
        #expect(expected.count == samples.count)
    }

    /// Streams that hold their place without sending audio are closed, saying which limit they
    /// broke, and their places go to the next clients.
    @Test func tricklingStreamsAreClosedAndTheirPlacesFreed() async throws {
        var configuration = ServerConfiguration(port: 0, dataDirectory: try TestData.temporaryDirectory().appendingPathComponent("data"),
                                                workers: WorkerPool.Configuration(workers: 1, shutdownGrace: .seconds(1)))
        configuration.streamLimits = .init(minAudioRate: 0.5, rateGrace: .seconds(2), maxSession: .seconds(3600))
        let places = configuration.maxStreams
        try await withListeningServer(configuration: configuration) { port, _ in
            let closed = try await onOwnThread { () -> [String] in
                let config = #"{"mode": "2pass", "wav_name": "trickle", "is_speaking": true}"#
                let sockets = try (0..<places).map { _ in try RawWebSocket(port: port, timeout: 10) }
                for socket in sockets { try socket.send(text: config) }
                // Each takes its place once upgraded, a moment after the 101.
                Thread.sleep(forTimeInterval: 0.3)
                // While they trickle (2 bytes every 200 ms: 0.0003x real time), a third is refused.
                let third = try RawWebSocket(port: port, timeout: 10)
                try third.send(text: config)
                let refusal = try third.nextText() ?? ""
                #expect(refusal.contains("queue_full"), "\(refusal)")
                let started = Date()
                var messages: [String] = []
                for socket in sockets {
                    var message: String?
                    for _ in 0..<40 where message == nil {
                        try socket.send(binary: Data([0, 0]))
                        Thread.sleep(forTimeInterval: 0.2)
                        // The watchdog's message arrives once the rate is checked.
                        var ready = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
                        if poll(&ready, 1, 0) > 0 { message = try socket.nextText() }
                    }
                    messages.append(message ?? "")
                }
                print(String(format: "%d trickling streams (every place) closed after %.1f s", sockets.count, Date().timeIntervalSince(started)))
                return messages
            }
            for message in closed {
                #expect(message.contains("request_timeout") && message.contains("--stream-min-rate"), "\(message)")
            }
            // Their places are free again.
            try await onOwnThread {
                let next = try RawWebSocket(port: port, timeout: 10)
                try next.send(text: #"{"mode": "offline", "wav_name": "next", "is_speaking": true}"#)
                try next.send(text: #"{"is_speaking": false}"#)
                let answer = try next.nextText() ?? ""
                #expect(!answer.contains("queue_full"), "\(answer)")
            }
        }
    }
}

/// Runs blocking client code on a new thread, leaving every pool to the server under test.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Plain HTTP/1.1 over a socket, the request target sent exactly as given (curl's --path-as-is).
enum RawHTTP {
    struct Answer {
        var status: Int
        var body: String
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    /// On a thread of its own: neither the cooperative pool nor the shared thread pool, which
    /// the server under test needs.
    static func request(port: Int, method: String, target: String, key: String? = nil, headers: [String: String] = [:],
                        body: Data = Data(), contentType: String? = nil) async throws -> Answer {
        try await onOwnThread { try blockingRequest(port: port, method: method, target: target, key: key, headers: headers, body: body, contentType: contentType) }
    }

    static func blockingRequest(port: Int, method: String, target: String, key: String?, headers: [String: String],
                                body: Data, contentType: String?) throws -> Answer {
        var head = "\(method) \(target) HTTP/1.1\r\n"
        var fields = ["Host": "127.0.0.1:\(port)", "Connection": "close", "Content-Length": String(body.count)]
        if let key { fields["Authorization"] = "Bearer \(key)" }
        if let contentType { fields["Content-Type"] = contentType }
        fields.merge(headers) { $1 }
        if fields["Upgrade"] != nil { fields["Content-Length"] = nil }
        // A chunked body declares no length.
        var body = body
        if fields["Transfer-Encoding"] == "chunked" {
            fields["Content-Length"] = nil
            var chunked = Data()
            for start in stride(from: 0, to: body.count, by: 65_536) {
                let piece = body[(body.startIndex + start)..<(body.startIndex + min(body.count, start + 65_536))]
                chunked.append(Data((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Data("\r\n".utf8))
            }
            body = chunked + Data("0\r\n\r\n".utf8)
        }
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        let socket = try loopbackSocket(port: port)
        defer { close(socket) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array((head + "\r\n").utf8) + Array(body)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { break }
            sent += count
        }
        // An upgrade or an event stream does not end: the head and what came with it suffice
        // (`?follow=all` reads an event stream to its end).
        let open = fields["Upgrade"] != nil || target.hasSuffix("/events")
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while received.count < 4 << 20 {
            let count = recv(socket, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received += buffer[..<count]
            if open, let text = String(bytes: received, encoding: .utf8), text.contains("\r\n\r\n") { break }
        }
        let text = String(decoding: received, as: UTF8.self)
        let statusLine = text.split(separator: "\r\n", maxSplits: 1).first ?? ""
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        let parts = text.components(separatedBy: "\r\n\r\n")
        var payload = parts.count > 1 ? parts.dropFirst().joined(separator: "\r\n\r\n") : ""
        if text.lowercased().contains("transfer-encoding: chunked") { payload = dechunked(payload) }
        return Answer(status: status, body: payload)
    }

    /// The body of a chunked response (sizes are bytes, and `\r\n` is one Character: bytes it is).
    static func dechunked(_ text: String) -> String {
        var rest = ArraySlice(Array(text.utf8))
        var body: [UInt8] = []
        let newline: [UInt8] = [13, 10]
        while let line = rest.firstRange(of: newline),
              let size = Int(String(decoding: rest[..<line.lowerBound], as: UTF8.self), radix: 16), size > 0,
              line.upperBound + size <= rest.endIndex {
            body += rest[line.upperBound..<(line.upperBound + size)]
            rest = rest[(line.upperBound + size)...].dropFirst(2)
        }
        return String(decoding: body, as: UTF8.self)
    }

    /// POSTs a short WAV to `/v1/jobs` (or `/v1/batches`).
    static func upload(port: Int, key: String? = nil, batch: Bool = false, headers: [String: String] = [:]) async throws -> Answer {
        var body = Data()
        var multipart = Upload.multipart([.file(Upload.wav())])
        body.append(contentsOf: multipart.readBytes(length: multipart.readableBytes) ?? [])
        return try await request(port: port, method: "POST", target: batch ? "/v1/batches" : "/v1/jobs", key: key, headers: headers,
                           body: body, contentType: "multipart/form-data; boundary=\(Upload.boundary)")
    }

    /// Submits a job (in a batch of its own with `batch`) and returns its id and the batch's.
    static func submit(port: Int, key: String?, batch: Bool = false) async throws -> (id: String, batch: String?) {
        let answer = try await upload(port: port, key: key, batch: batch)
        guard answer.status == 202 else { throw TingxieError(.internalError, "upload: \(answer.status) \(answer.body)") }
        if batch {
            let jobs = answer.json?["jobs"] as? [[String: Any]]
            return (jobs?.first?["id"] as? String ?? "", answer.json?["id"] as? String)
        }
        return (answer.json?["id"] as? String ?? "", nil)
    }
}
