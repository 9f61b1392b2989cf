import Foundation
import Testing
import TingxieCore

/// The edge of the real `tingxie serve` process: the spellings that bypassed the key, and a log
/// reader that stops reading.
@Suite(.enabled(if: TestData.tinyModelAvailable, TestData.tinyModelReason))
struct EdgeProcessTests {
    @Test func theServedBinaryTakesNoSpellingPastItsKey() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.tinyModel),
                                             arguments: ["--api-key", "the-key", "--workers", "1"])
        defer { server.stop() }
        let port = server.port
        let answers = try await onOwnThread { () -> [String: Int] in
            var answers: [String: Int] = [:]
            for (method, target) in [("GET", "//v1/jobs"), ("POST", "//v1/jobs"), ("GET", "/metrics/"), ("GET", "/v1//jobs"),
                                     ("GET", "/%761/jobs"), ("GET", "/v1/./system"), ("GET", "/v1/jobs")] {
                answers["\(method) \(target)"] = try RawHTTP.blockingRequest(port: port, method: method, target: target, key: nil,
                                                                            headers: [:], body: Data(), contentType: nil).status
            }
            return answers
        }
        print("tingxie serve --api-key, no key: \(answers.sorted { $0.key < $1.key })")
        #expect(answers.filter { $0.key != "GET /v1/jobs" }.values.allSatisfy { $0 == 404 })
        #expect(answers["GET /v1/jobs"] == 401)
    }

    /// stderr on a FIFO that nobody reads after the first lines: the server logs on (dropping
    /// lines) and every probe answers.
    @Test func aStalledLogReaderDoesNotFreezeTheServer() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let fifo = root.appendingPathComponent("log.fifo")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let reader = open(fifo.path, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        defer { close(reader) }
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["serve", "--port", "0", "--data-dir", root.appendingPathComponent("data").path,
                             "--model-dir", try #require(TestData.tinyModel).path, "--log-format", "json", "--workers", "1"]
        process.standardError = try FileHandle(forWritingTo: fifo)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        // Read until the server says where it listens, then never again.
        let port = try await onOwnThread { () -> Int in
            var text = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            for _ in 0..<600 {
                let count = read(reader, &buffer, buffer.count)
                if count > 0 { text += String(decoding: buffer[..<count], as: UTF8.self) }
                if let line = text.split(separator: "\n").first(where: { $0.contains("\"msg\":\"listening\"") }),
                   let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                   let address = object["address"] as? String, let port = address.split(separator: ":").last.flatMap({ Int($0) }) {
                    return port
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            throw TingxieError(.timeout, "the server did not say where it listens: \(text.suffix(500))")
        }
        // Each refused stream logs a line of about 200 bytes: 3000 are more than the pipe's 64 KB
        // and the server's queue of 2048 lines together hold.
        let slowest = try await onOwnThread { () -> Double in
            var slowest = 0.0
            for index in 0..<3000 {
                if index % 100 == 0 {
                    let started = Date()
                    let status = try RawHTTP.blockingRequest(port: port, method: "GET", target: "/healthz", key: nil, headers: [:],
                                                             body: Data(), contentType: nil).status
                    guard status == 200 else { throw TingxieError(.internalError, "healthz answered \(status) after \(index) streams") }
                    slowest = max(slowest, Date().timeIntervalSince(started))
                }
                let socket = try RawWebSocket(port: port, timeout: 10)
                try socket.send(text: "not a config")
                _ = try socket.nextText()
            }
            return slowest
        }
        let metrics = try await onOwnThread {
            try RawHTTP.blockingRequest(port: port, method: "GET", target: "/metrics", key: nil, headers: [:], body: Data(), contentType: nil).body
        }
        let dropped = metrics.split(separator: "\n").first { $0.hasPrefix("tingxie_log_lines_dropped") }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? 0
        print(String(format: "stalled log reader: 3000 refused streams, every 100th a /healthz (slowest %.3f s); %.0f log lines dropped", slowest, dropped))
        #expect(dropped > 0, "the reader never stalled the log: the test proves nothing")
    }
}
