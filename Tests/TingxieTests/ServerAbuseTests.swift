import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TingxieCore

/// The real `tingxie serve` process against what hostile clients and broken surroundings do:
/// it must answer with a 4xx and keep serving, never a 5xx, never exit.
@Suite(.serialized, .enabled(if: TestData.tinyModelAvailable, TestData.tinyModelReason))
struct ServerAbuseTests {
    static let extremes = ["1e16", "-1", "0", "NaN", "nan", "inf", "-inf", "1e308", "-1e308", "1.5", "0x10", "9223372036854775808",
                           String(repeating: "9", count: 10_240), "", "%00", "1e16d", "-1d", "infd", "1e308s"]

    /// Every numeric parameter of every route, with every extreme value: never a 5xx, never a
    /// dead process (R7).
    @Test func extremeNumbersNeverGiveA5xxOrKillTheServer() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.tinyModel),
                                             arguments: ["--workers", "1"])
        let base = server.baseURL
        var requests = 0
        var refused = 0
        func check(_ reply: LiveHTTP.Reply, _ what: String) {
            requests += 1
            if (400..<500).contains(reply.status) { refused += 1 }
            #expect(reply.status < 500, "\(what): \(reply.status) \(reply.body.prefix(200))")
        }
        for value in Self.extremes {
            let escaped = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value
            for path in ["/v1/incidents?since=\(escaped)", "/v1/incidents?limit=\(escaped)", "/v1/jobs?limit=\(escaped)",
                         "/v1/jobs?cursor=\(escaped)", "/v1/jobs?status=\(escaped)"] {
                check(try await LiveHTTP.request(base + path), path)
            }
            let fields: [(String, String)] = [("temperature", value), ("hotwords", "飞桨 \(value)")]
            for (field, text) in fields {
                let form = Upload.multipart([.file(Upload.wav(seconds: 1)), .field(field, text), .field("model", "x")])
                for path in ["/v1/audio/transcriptions", "/v1/jobs"] {
                    check(try await LiveHTTP.request(base + path, method: .POST,
                                                     headers: [("Content-Type", "multipart/form-data; boundary=\(Upload.boundary)")],
                                                     body: Data(form.readableBytesView)), "\(path) \(field)=\(value.prefix(20))")
                }
            }
            // The stream's config: audio_fs as any JSON a client could send.
            let config = #"{"mode": "offline", "audio_fs": \#(value.isEmpty ? "null" : value)}"#
            let answer = try await Self.streamAnswer(port: server.port, config: config)
            #expect(!answer.contains("internal_error"), "audio_fs=\(value.prefix(20)): \(answer.prefix(200))")
            requests += 1
        }
        // Headers: a Content-Length that is no number is refused before the body (NIO's parser
        // closes such a connection without an answer), or too large.
        for value in ["-1", "1e16", "99999999999999999999999", "abc", "100000000000"] {
            let port = server.port
            let line = try await offThePool {
                try LiveHTTP.rawStatusLine(port: port, head: "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\nContent-Length: \(value)\r\n\r\n")
            }
            #expect(line.isEmpty || line.hasPrefix("HTTP/1.1 4"), "Content-Length \(value): \(line)")
            requests += 1
        }
        print("extreme numbers: \(requests) requests, \(refused) refused with a 4xx, no 5xx expected; server alive: \(server.process.isRunning)")
        #expect(try await LiveHTTP.request(base + "/healthz").status == 200)
        #expect(server.process.isRunning)
    }

    /// The first text message the stream answers `config` with.
    static func streamAnswer(port: Int, config: String) async throws -> String {
        let received = Inbox()
        try await StreamClient(port: port).send(config: config, into: received)
        return received.texts.withLock { $0.first } ?? ""
    }

    /// `tingxie serve ... | collector`, and the collector goes away: the server keeps serving,
    /// with either log format.
    @Test(arguments: ["json", "text"])
    func aLogReaderThatGoesAwayDoesNotKillTheServer(_ format: String) async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let port = try Self.freePort()
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["serve", "--port", "\(port)", "--data-dir", root.appendingPathComponent("data").path,
                             "--model-dir", try #require(TestData.tinyModel).path, "--log-format", format]
        let log = Pipe()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // Read one line, as `head -1` does, then go away.
        _ = try log.fileHandleForReading.read(upToCount: 1)
        try log.fileHandleForReading.close()
        let base = "http://127.0.0.1:\(port)"
        var up = false
        for _ in 0..<300 where !up {
            up = (try? await LiveHTTP.request(base + "/healthz").status) == 200
            if !up { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(up)
        // Every request and job logs lines that now have no reader.
        for _ in 0..<20 {
            _ = try await LiveHTTP.request(base + "/v1/jobs/none")
            _ = try await LiveHTTP.submit(base, Upload.wav(seconds: 1))
        }
        try await Task.sleep(for: .seconds(1))
        #expect(process.isRunning)
        #expect(try await LiveHTTP.request(base + "/healthz").status == 200)
        let metrics = try await LiveHTTP.request(base + "/metrics").body
        let dropped = metrics.split(separator: "\n").first { $0.hasPrefix("tingxie_log_lines_dropped ") }
        print("\(format) log with no reader: \(dropped ?? "no metric")")
        #expect(dropped.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0 > 0)
    }

    /// Several hundred generated bad files, 8 at a time, while `/healthz` is polled (R4):
    /// 0 restarts, 0 unexpected 5xx, every accepted job terminal.
    @Test func malformedMediaNeverHurtsTheServer() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.tinyModel),
                                             arguments: ["--max-duration", "120", "--max-queued-jobs", "2000"])
        let files = try await offThePool { try MalformedMedia.generate() }
        let base = server.baseURL
        let healthFailures = Atomic<Int>(0)
        let polling = Task {
            var polls = 0
            while !Task.isCancelled, polls < 10_000 {
                if (try? await LiveHTTP.request(base + "/healthz").status) != 200 { healthFailures.add(1, ordering: .relaxed) }
                polls += 1
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        let replies = try await withThrowingTaskGroup(of: (String, LiveHTTP.Reply).self) { group in
            var results: [(String, LiveHTTP.Reply)] = []
            var next = 0
            func add() {
                let (name, data) = files[next]
                next += 1
                group.addTask { (name, try await LiveHTTP.submit(base, data, filename: name)) }
            }
            while next < min(8, files.count) { add() }
            while let result = try await group.next() {
                results.append(result)
                if next < files.count { add() }
            }
            return results
        }
        let accepted = replies.compactMap { $0.1.status == 202 ? $0.1.json["id"] as? String : nil }
        let jobs = try await LiveHTTP.waitForJobs(base, accepted, limit: .seconds(300))
        polling.cancel()
        let serverErrors = replies.filter { $0.1.status >= 500 }
        var byStatus: [Int: Int] = [:]
        for (_, reply) in replies { byStatus[reply.status, default: 0] += 1 }
        let terminal = jobs.values.filter { ["succeeded", "failed", "canceled"].contains($0["status"] as? String ?? "") }.count
        print("malformed media: \(files.count) files, answers \(byStatus.sorted { $0.key < $1.key }), \(accepted.count) accepted, \(terminal) terminal, health check failures \(healthFailures.load(ordering: .relaxed))")
        #expect(serverErrors.isEmpty, "\(serverErrors.prefix(5).map { "\($0.0): \($0.1.status) \($0.1.body.prefix(120))" })")
        #expect(terminal == accepted.count)
        #expect(healthFailures.load(ordering: .relaxed) == 0)
        #expect(server.process.isRunning)
    }

    static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Bad files of every kind a hostile or broken client sends, generated from a seed.
enum MalformedMedia {
    static func generate() throws -> [(String, Data)] {
        var state: UInt64 = 0x5DEE_CE66_D1CE_4E5B
        func random() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        func bytes(_ count: Int) -> Data { Data((0..<count).map { _ in UInt8(truncatingIfNeeded: random()) }) }
        var files: [(String, Data)] = []
        // Valid files in several formats to mutate, made by ffmpeg.
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var valid: [(String, Data)] = []
        let source = directory.appendingPathComponent("source.wav")
        try Subprocess.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=3", source.path],
                           limits: SubprocessLimits())
        for (ext, codec) in [("wav", "pcm_s16le"), ("mp3", "libmp3lame"), ("flac", "flac"), ("m4a", "aac"), ("ogg", "libopus")] {
            let url = directory.appendingPathComponent("encoded.\(ext)")
            try Subprocess.run("ffmpeg", ["-v", "error", "-i", source.path, "-c:a", codec, url.path], limits: SubprocessLimits())
            valid.append((ext, try Data(contentsOf: url)))
        }
        for (ext, data) in valid {
            // Truncations at many points.
            for cut in [0, 1, 4, 12, 44, 45, 100, 1000, data.count / 3, data.count / 2, data.count - 1] where cut < data.count {
                files.append(("cut\(cut).\(ext)", data.prefix(cut)))
            }
            // Bit flips: a few, many, in the header and the body.
            for round in 0..<40 {
                var mutated = data
                let flips = round < 15 ? 1 : round < 30 ? 8 : 64
                for _ in 0..<flips {
                    let index = round % 3 == 0 ? Int(random() % UInt64(min(64, mutated.count))) : Int(random() % UInt64(mutated.count))
                    mutated[index] ^= UInt8(1 << (random() % 8))
                }
                files.append(("flip\(round).\(ext)", mutated))
            }
        }
        // WAV headers that lie.
        let samples = Array(repeating: 0.1, count: 16_000)
        for (name, file) in [
            ("size-huge", WAVFixture.file(samples, sampleRate: 16_000, dataSizeOverride: 0xFFFF_FFFF)),
            ("size-zero", WAVFixture.file(samples, sampleRate: 16_000, dataSizeOverride: 0)),
            ("size-past-end", WAVFixture.file(samples, sampleRate: 16_000, dataSizeOverride: 1_000_000)),
            ("rate-zero", WAVFixture.file(samples, sampleRate: 0)),
            ("rate-huge", WAVFixture.file(samples, sampleRate: 767_999)),
            ("rate-tiny", WAVFixture.file(samples, sampleRate: 1)),
            ("channels-zero", WAVFixture.file(samples, sampleRate: 16_000, channels: 0)),
            ("channels-many", WAVFixture.file(samples, sampleRate: 16_000, channels: 65)),
            ("block-absurd", WAVFixture.file(samples, sampleRate: 16_000, blockAlignOverride: 60_000)),
            ("bits-12", WAVFixture.file([], sampleRate: 16_000, bits: 12)),
            ("no-frames", WAVFixture.file([], sampleRate: 16_000)),
        ] {
            files.append(("\(name).wav", file))
        }
        // Random bytes, with and without a format's magic in front.
        for index in 0..<60 {
            let magic: [Data] = [Data(), Data("RIFF\u{24}\0\0\0WAVE".utf8), Data("ID3".utf8), Data("fLaC".utf8), Data("OggS".utf8),
                                 Data([0, 0, 0, 0x20]) + Data("ftypM4A ".utf8), Data([0x1A, 0x45, 0xDF, 0xA3])]
            files.append(("random\(index).bin", magic[index % magic.count] + bytes(Int(random() % 20_000) + 1)))
        }
        // Other kinds of file, playlists and indirections, empty files.
        let others: [(String, Data)] = [
            ("ls.wav", (try? Data(contentsOf: URL(fileURLWithPath: "/bin/ls")).prefix(300_000)) ?? bytes(1000)),
            ("archive.zip", Data([0x50, 0x4B, 0x03, 0x04]) + bytes(2000)),
            ("image.png", Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(2000)),
            ("doc.pdf", Data("%PDF-1.7\n".utf8) + bytes(2000)),
            ("list.m3u8", Data("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\nhttp://127.0.0.1:1/x.mp3\n".utf8)),
            ("list.m3u", Data("/etc/passwd\n".utf8)),
            ("concat.txt", Data("ffconcat version 1.0\nfile /etc/passwd\n".utf8)),
            ("hls.avi", Data("RIFF\0\0\0\0AVI LIST".utf8) + Data("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\nconcat:file:///etc/passwd\n".utf8)),
            ("empty.wav", Data()), ("empty.mp3", Data()), ("one-byte.ogg", Data([0])),
            ("text.wav", Data("这不是音频文件\n".utf8)),
        ]
        files += others
        return files
    }
}
