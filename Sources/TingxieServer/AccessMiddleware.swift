import Hummingbird
import TingxieCore

/// Requires `Authorization: Bearer <key>` with one of the configured keys (when any are
/// configured). Probes stay open so orchestrators can check the process without a key.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: [[UInt8]]

    init(keys: [String]) {
        self.keys = keys.map { Array($0.utf8) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !keys.isEmpty, request.uri.path != "/healthz", request.uri.path != "/readyz" else {
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

/// CORS for the configured origins only: they get their own origin back (never `*`) and
/// preflight answers; every other origin gets no CORS headers, so browsers refuse it. Sits
/// outside the error middleware so that error responses carry the headers too.
struct OriginMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains(origin) else {
            return try await next(request, context)
        }
        var response: Response
        if request.method == .options {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST, DELETE, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type"
            response.headers[.accessControlMaxAge] = "600"
        } else {
            response = try await next(request, context)
        }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlExposeHeaders] = "Retry-After"
        response.headers[.vary] = "Origin"
        return response
    }
}
