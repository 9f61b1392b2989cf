/// An error with a stable machine-readable code and a message that says what
/// was wrong and what to do about it. The HTTP mapping lives at the edge.
public struct TingxieError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable, snake_case error codes; clients and tests rely on the raw values.
    public enum Code: String, Sendable, Codable, CaseIterable {
        case modelNotFound = "model_not_found"
        case invalidModel = "invalid_model"
        case modelError = "model_error"
        case fileNotFound = "file_not_found"
        case unsupportedFormat = "unsupported_format"
        case invalidAudio = "invalid_audio"
        case decodeError = "decode_error"
        /// The audio ends long before its container said it would (a cut-off file).
        case audioTruncated = "audio_truncated"
        /// The decoder met damaged data inside the audio.
        case audioCorrupt = "audio_corrupt"
        case ioError = "io_error"
        case timeout
        case requestTimeout = "request_timeout"
        case canceled
        case invalidArgument = "invalid_argument"
        case notFound = "not_found"
        case tooLarge = "too_large"
        case queueFull = "queue_full"
        case unauthorized
        case forbidden
        case insufficientStorage = "insufficient_storage"
        case jobNotFinished = "job_not_finished"
        case jobFinished = "job_finished"
        case notReady = "not_ready"
        case internalError = "internal_error"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
