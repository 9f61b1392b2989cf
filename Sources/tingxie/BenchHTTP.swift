import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TingxieCore

/// The benchmarks' HTTP client: uploads, polls and plain requests to a server on loopback.
enum BenchHTTP {
    static func submit(_ base: String, _ file: URL) async throws -> String {
        let reply = try await post(base + "/v1/jobs", file: file)
        guard reply.status == .accepted, let id = reply.json["id"] as? String else {
            throw TingxieError(.internalError, "upload answered \(reply.status): \(reply.body)")
        }
        return id
    }

    /// Polls every 20 ms (at most 10 minutes) until the job succeeded.
    static func waitUntilDone(_ base: String, _ id: String) async throws {
        for _ in 0..<30_000 {
            let status = try await get(base + "/v1/jobs/\(id)").json["status"] as? String
            if status == "succeeded" { return }
            if status == "failed" || status == "canceled" { throw TingxieError(.internalError, "job \(id) \(status!)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TingxieError(.timeout, "job \(id) did not finish in 10 minutes")
    }

    struct Reply {
        var status: HTTPResponseStatus
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    static func get(_ url: String) async throws -> Reply {
        try await send(HTTPClientRequest(url: url))
    }

    static func post(_ url: String, file: URL, fields: [String: String] = [:]) async throws -> Reply {
        let boundary = "tingxie-bench-\(UUID().uuidString)"
        var body = Data()
        for (name, value) in fields {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
        }
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(file.lastPathComponent)\"\r\nContent-Type: audio/wav\r\n\r\n".utf8))
        body.append(try Data(contentsOf: file))
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.body = .bytes(ByteBuffer(bytes: body))
        return try await send(request)
    }

    static func send(_ request: HTTPClientRequest) async throws -> Reply {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: response.status, body: String(buffer: body))
    }
}
