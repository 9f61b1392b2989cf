import COpenCC
import Synchronization
import TingxieCore

/// Converts between Chinese character sets with OpenCC (for example Traditional to Simplified).
///
/// OpenCC does not document its converter as thread-safe, so calls are serialised; a
/// conversion of one sentence takes microseconds, far below a recognition call.
public final class ChineseConverter: Sendable {
    // The handle is only used while holding the mutex.
    private let handle: Mutex<UnsafeMutableRawPointer>

    /// Opens an OpenCC configuration.
    /// - Parameter configuration: an OpenCC configuration name such as `t2s.json`, or a path.
    /// - Throws: `TingxieError` when OpenCC cannot open it (for example, OpenCC's data is not installed).
    public init(configuration: String = "t2s.json") throws {
        guard let opened = opencc_open(configuration),
              opened != UnsafeMutableRawPointer(bitPattern: -1) else {
            let reason = opencc_error().map { String(cString: $0) } ?? "unknown error"
            throw TingxieError(.invalidArgument,
                               "cannot open OpenCC configuration \(configuration): \(reason) (is Debian's opencc installed?)")
        }
        handle = Mutex(opened)
    }

    deinit {
        handle.withLock { _ = opencc_close($0) }
    }

    /// Returns `text` converted; on an OpenCC failure the text is returned unchanged.
    public func convert(_ text: String) -> String {
        guard !text.isEmpty else { return text }
        return handle.withLock { opencc in
            var utf8 = Array(text.utf8)
            let count = utf8.count
            utf8.append(0)
            let converted = utf8.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { opencc_convert_utf8(opencc, $0.baseAddress, count) }
            }
            guard let converted else { return text }
            defer { opencc_convert_utf8_free(converted) }
            return String(cString: converted)
        }
    }
}
