import Foundation
import Hummingbird
import NIOCore
import TingxieCore

/// Who is calling, as the API's key middleware found: whose jobs it makes and which it may reach.
struct Caller: Sendable {
    enum Scope: Sendable, Equatable {
        /// Every job: a server without keys, or an `--admin-key`.
        case all
        /// The jobs of this owner (a key's hash).
        case owner(String)
        /// None: the key middleware has not run (a route outside the API's group).
        case none
    }

    /// The owner stored on the jobs this caller creates: its key's hash; `nil` without keys.
    var owner: String?
    var scope: Scope

    /// Reaches nothing, until the key middleware says otherwise.
    static let unresolved = Caller(owner: nil, scope: .none)
    /// The server itself, on jobs a caller it checked already holds (waiting for a result,
    /// canceling the job of a client that left).
    static let server = Caller(owner: nil, scope: .all)

    func mayReach(owner jobOwner: String?) -> Bool {
        switch scope {
        case .all: true
        case .owner(let owner): jobOwner == owner
        case .none: false
        }
    }
}

/// The request context of the HTTP API: the caller, and the connection (to notice a client that leaves).
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var caller = Caller.unresolved
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Runs before routing, on every request: a request naming a host the server does not answer
/// to is a 421, and a path in any spelling but its canonical one is a 404, so that the routes
/// and everything that guards them see one spelling of each path.
struct EdgeMiddleware<Context: RequestContext>: RouterMiddleware {
    let hosts: HostNames

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let style = APIError.Style(for: request)
        guard hosts.allows(authority: request.head.authority) else {
            return APIError(.misdirectedRequest, code: "misdirected_request",
                            "this server does not answer to the host \"\((request.head.authority ?? "").prefix(100))\"; its operator can add it with --public-host")
                .response(style: style)
        }
        guard RequestPath.isCanonical(request.uri.path) else {
            return APIError(.notFound, code: "not_found", "no such endpoint: paths have single slashes, no dot segments, no percent-encoding and no trailing slash")
                .response(style: style)
        }
        return try await next(request, context)
    }
}

/// Guards the API's route group (`/v1/*`, `/metrics`): with keys configured it requires
/// `Authorization: Bearer <key>` with one of them, and resolves the caller: a key sees the jobs
/// it made, an admin key sees every job. Without keys every caller sees every job.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let keys: Keys

    /// The API keys and the admin keys, as bytes for constant-time comparison.
    struct Keys: Sendable {
        let api: [[UInt8]]
        let admin: [[UInt8]]

        init(api: [String], admin: [String]) {
            self.api = api.map { Array($0.utf8) }
            self.admin = admin.map { Array($0.utf8) }
        }

        var isEmpty: Bool { api.isEmpty && admin.isEmpty }

        /// The caller a presented key (or none) makes; `nil` when keys are required and it is none of them.
        func caller(presenting key: String?) -> Caller? {
            guard !isEmpty else { return Caller(owner: nil, scope: .all) }
            guard let key else { return nil }
            let bytes = Array(key.utf8)
            let owner = APIKeyMiddleware.owner(ofKey: key)
            if APIKeyMiddleware.matches(bytes, admin) { return Caller(owner: owner, scope: .all) }
            if APIKeyMiddleware.matches(bytes, api) { return Caller(owner: owner, scope: .owner(owner)) }
            return nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization]
        let presented = header.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let caller = keys.caller(presenting: presented) else {
            throw TingxieError(.unauthorized, header == nil
                ? "this server needs an API key: send Authorization: Bearer <key>"
                : "the API key is not valid")
        }
        var context = context
        context.caller = caller
        return try await next(request, context)
    }

    /// The owner a key's jobs are stored and listed under: a hash of the key (FNV-1a), never
    /// the key itself.
    static func owner(ofKey key: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(hash, radix: 16)
    }

    /// Compares against every key, each in time that depends only on the lengths, so the
    /// answer's timing does not reveal how much of a key was right. A key matches only a
    /// candidate of its own length (a key with bytes appended is not the key).
    static func matches(_ candidate: [UInt8], _ keys: [[UInt8]]) -> Bool {
        var found = false
        for key in keys {
            var difference: UInt8 = 0
            for index in 0..<key.count {
                difference |= key[index] ^ (index < candidate.count ? candidate[index] : 0)
            }
            found = found || (difference == 0 && key.count == candidate.count)
        }
        return found
    }
}

/// Which browser origins may use the server: its own pages (served under a host name it
/// answers to) and the `--cors-origin` entries.
struct OriginPolicy: Sendable {
    let allowed: Set<String>
    let hosts: HostNames

    init(allowed: [String], hosts: HostNames) {
        self.allowed = Set(allowed)
        self.hosts = hosts
    }

    /// Whether a request from the page at `origin`, sent to the host named `host`, is allowed:
    /// a configured origin, or the server's own page: the same authority as the request, under a
    /// host name the server answers to (never whatever name the request itself carries).
    /// Browsers send `http(s)://host[:port]`, or `null` from sandboxed and local pages; other
    /// values come from programs (a WebSocket library's `ws://host`), which no web page can
    /// make a browser send, and are let through.
    func allows(origin: String, host: String?) -> Bool {
        if allowed.contains(origin) { return true }
        guard let url = URL(string: origin), let scheme = url.scheme?.lowercased() else { return false }
        guard ["http", "https"].contains(scheme) else { return true }
        guard let host, let name = url.host else { return false }
        let originHost = name.contains(":") && !name.hasPrefix("[") ? "[\(name)]" : name
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        return originAuthority.lowercased() == host.lowercased() && hosts.allows(authority: originAuthority)
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
                .response(style: .init(for: request))
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
