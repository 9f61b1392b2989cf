import Foundation
import Hummingbird
import TingxieCore

/// Requires `Authorization: Bearer <key>` with one of the configured keys (when any are
/// configured) for the API: `/v1/*` and `/metrics`. The web UI's files and the probes stay
/// open, so that the page can ask for the key and orchestrators can check the process.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: [[UInt8]]

    init(keys: [String]) {
        self.keys = keys.map { Array($0.utf8) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !keys.isEmpty, Self.isGuarded(request.uri.path) else {
            return try await next(request, context)
        }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), Self.matches(Array(header.dropFirst(7).utf8), keys) else {
            throw TingxieError(.unauthorized, header.isEmpty
                ? "this server needs an API key: send Authorization: Bearer <key>"
                : "the API key is not valid")
        }
        return try await next(request, context)
    }

    static func isGuarded(_ path: String) -> Bool {
        path.hasPrefix("/v1/") || path == "/v1" || path == "/metrics"
    }

    /// The owner a key's jobs are stored and listed under: a hash of the key (FNV-1a), never
    /// the key itself.
    static func owner(ofKey key: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(hash, radix: 16)
    }

    /// The owner of a request's jobs: its key's, when the server has keys.
    static func owner(of request: Request, keys: [String]) -> String? {
        guard !keys.isEmpty, let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        return owner(ofKey: String(header.dropFirst(7)))
    }

    /// Compares against every key, each in time that depends only on the lengths, so the
    /// answer's timing does not reveal how much of a key was right.
    static func matches(_ candidate: [UInt8], _ keys: [[UInt8]]) -> Bool {
        var found = false
        for key in keys {
            var difference = UInt8(truncatingIfNeeded: key.count ^ candidate.count)
            for index in 0..<key.count {
                difference |= key[index] ^ (index < candidate.count ? candidate[index] : 0)
            }
            found = found || difference == 0
        }
        return found
    }
}

/// Which browser origins may use the server: its own (the page it serves) and the
/// `--cors-origin` entries.
struct OriginPolicy: Sendable {
    let allowed: Set<String>

    init(allowed: [String]) { self.allowed = Set(allowed) }

    /// Whether a request from the page at `origin`, sent to the host named `host`, is allowed.
    /// Browsers send `http(s)://host[:port]`, or `null` from sandboxed and local pages; other
    /// values come from programs (a WebSocket library's `ws://host`), which no web page can
    /// make a browser send, and are let through.
    func allows(origin: String, host: String?) -> Bool {
        if allowed.contains(origin) { return true }
        guard let url = URL(string: origin), let scheme = url.scheme?.lowercased() else { return false }
        guard ["http", "https"].contains(scheme) else { return true }
        guard let host, let originHost = url.host else { return false }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        return originAuthority.lowercased() == host.lowercased()
    }
}

/// What browsers are told and held to. Requests that change state (anything but GET, HEAD and
/// OPTIONS) and carry an `Origin` are refused with a 403 unless the origin is the server's own
/// or a configured one, so that no other web page can drive the server, with or without keys.
/// Configured origins get CORS answers (their own origin back, never `*`); every response
/// varies by `Origin` and carries a Content-Security-Policy that keeps the web UI to its own
/// files. Sits outside the error middleware so that error responses carry the headers too.
struct BrowserPolicyMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: OriginPolicy

    static var contentSecurityPolicy: String {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
            + "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let origin = request.headers[.origin]
        var response: Response
        if let origin, policy.allowed.contains(origin), request.method == .options {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST, DELETE, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type"
            response.headers[.accessControlMaxAge] = "600"
        } else if let origin, ![.get, .head, .options].contains(request.method), !policy.allows(origin: origin, host: request.head.authority) {
            response = APIError(TingxieError(.forbidden, "requests from the web page at \(origin.prefix(100)) are not allowed; add it with --cors-origin"))
                .response(style: request.uri.path.hasPrefix("/v1/audio/") ? .openAI : .tingxie)
        } else {
            response = try await next(request, context)
        }
        if let origin, policy.allowed.contains(origin) {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlExposeHeaders] = "Retry-After"
        }
        response.headers[.vary] = "Origin"
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}
