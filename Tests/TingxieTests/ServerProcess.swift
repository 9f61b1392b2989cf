import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The real `tingxie serve` binary on a loopback port, with its log in a file.
final class ServerProcess {
    let process = Process()
    let dataDirectory: URL
    let log: URL
    private(set) var port = 0

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts `tingxie COMMAND` (`serve`, or `worker`), with `environment` over this process's,
    /// and waits (at most 60 s) until it listens.
    init(_ command: String = "serve", dataDirectory: URL, model: URL, arguments: [String] = [],
         environment: [String: String] = [:]) async throws {
        self.dataDirectory = dataDirectory
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        log = dataDirectory.deletingLastPathComponent().appendingPathComponent("server-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = CLI.binary
        process.arguments = [command, "--port", "0", "--data-dir", dataDirectory.path, "--model-dir", model.path,
                             "--log-format", "json"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        for _ in 0..<600 {
            if let port = listeningPort() {
                self.port = port
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        stop(signal: SIGKILL)
        Issue.record("the server did not start: \(logText)")
        throw CancellationError()
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    private func listeningPort() -> Int? {
        for line in logText.split(separator: "\n") where line.contains("\"msg\":\"listening\"") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let address = object["address"] as? String, let port = address.split(separator: ":").last else { continue }
            return Int(port)
        }
        return nil
    }

    /// Sends `signal` and waits (at most 60 s) for the process to end.
    func stop(signal: Int32 = SIGTERM) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
        for _ in 0..<600 where process.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop(signal: SIGKILL) }
}

/// HTTP calls against a live server.
enum LiveHTTP {
    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    static func request(_ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = [],
                        body: Data? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Uploads one file as `POST /v1/jobs`.
    static func submit(_ base: String, _ data: Data, filename: String = "a.wav") async throws -> Reply {
        let body = Upload.multipart([.file(data, filename: filename)])
        return try await request(base + "/v1/jobs", method: .POST,
                                 headers: [("Content-Type", "multipart/form-data; boundary=\(Upload.boundary)")],
                                 body: Data(body.readableBytesView))
    }

    /// Polls until every job is finished or `limit` passes; returns the jobs by id.
    static func waitForJobs(_ base: String, _ ids: [String], limit: Duration) async throws -> [String: [String: Any]] {
        let deadline = ContinuousClock.now + limit
        var jobs: [String: [String: Any]] = [:]
        while ContinuousClock.now < deadline {
            for id in ids {
                jobs[id] = try await request(base + "/v1/jobs/\(id)").json
            }
            if jobs.values.allSatisfy({ ["succeeded", "failed", "canceled"].contains($0["status"] as? String ?? "") }) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        return jobs
    }

    /// Sends `head` (and optionally some body bytes) on a raw connection and returns the
    /// status line of the answer, without sending the rest of the body.
    static func rawStatusLine(port: Int, head: String, body: Data = Data()) throws -> String {
        try rawExchange(port: port, head: head, trickle: body, every: .zero)
    }

    /// Sends `head`, then `trickle` one byte per `every` (or at once when `every` is zero), and
    /// returns the first line the server answers (at most after 10 s of silence).
    static func rawExchange(port: Int, head: String, trickle: Data, every interval: Duration) throws -> String {
        let socket = try loopbackSocket(port: port)
        defer { close(socket) }
        func send(_ bytes: Data) { _ = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        var buffer = [UInt8](repeating: 0, count: 4096)
        func answer(waiting: timeval) -> String? {
            var timeout = waiting
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let count = recv(socket, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self).components(separatedBy: "\r\n").first : nil
        }
        send(Data(head.utf8))
        if interval == .zero {
            send(trickle)
        } else {
            for byte in trickle {
                send(Data([byte]))
                let micros = Int(interval.seconds * 1_000_000)
                if let line = answer(waiting: timeval(tv_sec: micros / 1_000_000, tv_usec: Int(micros % 1_000_000))) { return line }
            }
        }
        return answer(waiting: timeval(tv_sec: 10, tv_usec: 0)) ?? ""
    }
}
