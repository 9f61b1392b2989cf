import Foundation
import HTTPTypes
import Hummingbird
import Logging
import TingxieCore

/// The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`, with the
/// HTTP status that belongs to the code. The OpenAI-compatible route adds OpenAI's `type` and
/// `param` fields to the same object.
struct APIError: Error, Sendable {
    enum Style: Sendable {
        case tingxie, openAI

        /// OpenAI's routes answer in OpenAI's shape, their refusals included.
        init(for request: Request) {
            self = request.uri.path.hasPrefix("/v1/audio/") ? .openAI : .tingxie
        }
    }

    var code: String
    var message: String
    var status: HTTPResponse.Status
    var retryAfter: Int?

    init(_ status: HTTPResponse.Status, code: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    init(_ error: TingxieError, retryAfter: Int? = nil) {
        let status: HTTPResponse.Status = switch error.code {
        case .invalidArgument, .modelNotFound, .invalidModel: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .insufficientStorage: .init(code: 507, reasonPhrase: "Insufficient Storage")
        case .notFound, .fileNotFound: .notFound
        case .jobNotFinished, .jobFinished, .canceled: .conflict
        case .tooLarge: .contentTooLarge
        case .unsupportedFormat: .unsupportedMediaType
        case .invalidAudio, .decodeError, .audioTruncated, .audioCorrupt: .unprocessableContent
        case .queueFull, .notReady: .serviceUnavailable
        case .timeout: .gatewayTimeout
        case .requestTimeout: .requestTimeout
        case .modelError, .ioError, .internalError: .internalServerError
        }
        self.init(status, code: error.code.rawValue, error.message,
                  retryAfter: [.queueFull, .notReady, .insufficientStorage].contains(error.code) ? retryAfter ?? 5 : nil)
    }

    /// The fields of the `error` object in `style`'s shape.
    func fields(style: Style) -> [String: String?] {
        var fields: [String: String?] = ["code": code, "message": message]
        if style == .openAI {
            fields["type"] = status.code >= 500 ? "server_error" : "invalid_request_error"
            fields["param"] = .some(nil)
        }
        return fields
    }

    func response(style: Style) -> Response {
        var response = JSONResponse.make(["error": fields(style: style)], status: status)
        response.headers[.tingxieError] = code
        if let retryAfter {
            response.headers[.retryAfter] = String(retryAfter)
        }
        return response
    }
}

/// Turns every error a route throws into the API's error shape; unexpected errors are logged
/// and answered with a 500 that does not leak internals.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Seconds a client refused for a full queue should wait.
    var retryAfter: @Sendable () -> Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let style = APIError.Style(for: request)
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response(style: style)
        } catch let error as TingxieError {
            return APIError(error, retryAfter: error.code == .queueFull ? retryAfter() : nil).response(style: style)
        } catch is ClientLeft {
            // Nobody reads it; said for the log and the metrics.
            return APIError(.init(code: 499, reasonPhrase: "Client Closed Request"), code: "client_left",
                            "the client left before its answer was ready; its job was canceled").response(style: style)
        } catch let error as HTTPError {
            let code = switch error.status {
            case .notFound: "not_found"
            case .methodNotAllowed: "method_not_allowed"
            case .contentTooLarge: "too_large"
            case .badRequest: "invalid_argument"
            default: error.status.code >= 500 ? "internal_error" : "http_\(error.status.code)"
            }
            let message = error.body ?? (error.status == .notFound ? "no such endpoint: \(request.method) \(request.uri.path)" : error.status.reasonPhrase)
            return APIError(error.status, code: code, message).response(style: style)
        } catch {
            context.logger.error("unexpected error", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return APIError(.internalServerError, code: "internal_error", "the server failed to handle the request; see its log").response(style: style)
        }
    }
}

enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    /// A JSON response; encoding the API's plain DTOs cannot fail.
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return text(String(decoding: data, as: UTF8.self) + "\n", contentType: "application/json", status: status)
    }

    /// A rendered transcript; one that lacks audio says how many warnings it has in
    /// `X-Tingxie-Warnings`, whatever the format (JSON and WebVTT carry them in the body too).
    static func transcript(_ body: String, contentType: String, warnings: [String]?) -> Response {
        var response = text(body, contentType: contentType)
        if let warnings, !warnings.isEmpty {
            response.headers[.tingxieWarnings] = String(warnings.count)
        }
        return response
    }

    static func text(_ body: String, contentType: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

extension HTTPField.Name {
    /// Error responses name their code here too, for metrics and for clients that only read headers.
    static var tingxieError: Self { Self("X-Tingxie-Error")! }
    /// How many warnings a transcript that lacks audio carries.
    static var tingxieWarnings: Self { Self("X-Tingxie-Warnings")! }
}
