import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TingxieCore

/// Downloads a file from a list of mirrors into a partial file that survives interruptions:
/// a later attempt (or a later run) asks for the rest with a `Range` request.
public struct ModelDownloader: Sendable {
    /// Bytes on disk so far, and the total when the server said.
    public typealias Progress = @Sendable (_ received: Int64, _ total: Int64?) -> Void

    private let client: HTTPClient
    private let attemptsPerMirror: Int
    private let retryDelay: Duration

    public init(client: HTTPClient, attemptsPerMirror: Int = 3, retryDelay: Duration = .seconds(1)) {
        self.client = client
        self.attemptsPerMirror = attemptsPerMirror
        self.retryDelay = retryDelay
    }

    /// An HTTP client that goes through the proxy in `https_proxy` / `HTTPS_PROXY` / `http_proxy`
    /// when one is set, with the user and password the proxy's URL carries, for every host
    /// (`no_proxy` is not read). Shut it down when done.
    public static func makeClient(environment: [String: String] = ProcessInfo.processInfo.environment) -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .follow(max: 10, allowCycles: false))
        let proxy = ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"].lazy.compactMap { environment[$0] }.first { !$0.isEmpty }
        if let proxy, let url = URLComponents(string: proxy.contains("://") ? proxy : "http://" + proxy), let host = url.host {
            let credentials = url.user.map { HTTPClient.Authorization.basic(username: $0, password: url.password ?? "") }
            configuration.proxy = .server(host: host, port: url.port ?? 80, authorization: credentials)
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    private struct StatusError: Error {
        var status: HTTPResponseStatus
        /// 4xx other than 408/429: this mirror will not serve the file.
        var permanent: Bool { (400..<500).contains(status.code) && status.code != 408 && status.code != 429 }
    }

    /// Downloads `urls` (mirrors of one file, tried in order) into `file`, resuming what is there.
    /// - Throws: `TingxieError(.ioError)` naming what each mirror answered.
    public func download(_ urls: [URL], to file: URL, progress: Progress? = nil) async throws {
        var failures: [String] = []
        for url in urls {
            for attempt in 1...attemptsPerMirror {
                do {
                    try await fetch(url, to: file, progress: progress)
                    return
                } catch let error as StatusError where error.permanent {
                    failures.append("\(url.absoluteString): HTTP \(error.status.code)")
                    break
                } catch let error as NIOConnectionError {
                    // No such host or nothing listening: retrying will not help.
                    failures.append("\(url.absoluteString): \(error)")
                    break
                } catch {
                    if attempt == attemptsPerMirror {
                        failures.append("\(url.absoluteString): \(error)")
                    } else {
                        try await Task.sleep(for: retryDelay * attempt)
                    }
                }
            }
        }
        throw TingxieError(.ioError, "could not download \(file.lastPathComponent.replacingOccurrences(of: ".part", with: "")) from any mirror: " + failures.joined(separator: "; "))
    }

    private func fetch(_ url: URL, to file: URL, progress: Progress?) async throws {
        let files = FileManager.default
        let have = ((try? files.attributesOfItem(atPath: file.path)[.size]) as? NSNumber)?.int64Value ?? 0
        var request = HTTPClientRequest(url: url.absoluteString)
        if have > 0 { request.headers.add(name: "Range", value: "bytes=\(have)-") }
        let response = try await client.execute(request, timeout: .hours(6))
        var offset: Int64
        switch response.status.code {
        case 206:
            guard let range = response.headers.first(name: "Content-Range"), range.hasPrefix("bytes \(have)-") else {
                // Not the part we asked for: start over.
                try? files.removeItem(at: file)
                throw StatusError(status: .badGateway)
            }
            offset = have
        case 200:
            offset = 0
        case 416 where have > 0:
            // Everything is here already, or the partial file is bad: start over next time.
            if response.headers.first(name: "Content-Range") == "bytes */\(have)" { return }
            try? files.removeItem(at: file)
            throw StatusError(status: .rangeNotSatisfiable)
        default:
            throw StatusError(status: response.status)
        }
        if offset == 0 {
            guard files.createFile(atPath: file.path, contents: nil) else {
                throw TingxieError(.ioError, "cannot write \(file.path)")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: file.path) else { throw TingxieError(.ioError, "cannot write \(file.path)") }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let length = response.headers.first(name: "Content-Length").flatMap(Int64.init)
        let total = length.map { $0 + offset }
        var received = offset
        progress?(received, total)
        for try await buffer in response.body {
            try handle.write(contentsOf: Data(buffer.readableBytesView))
            received += Int64(buffer.readableBytes)
            progress?(received, total)
        }
        if let total, received < total {
            throw TingxieError(.ioError, "the transfer stopped at \(received) of \(total) bytes")
        }
    }
}
