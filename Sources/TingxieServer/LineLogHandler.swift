import Foundation
import Logging
import Synchronization

/// Where the server's log lines go: standard error, through a bounded queue that one thread
/// drains with `write(2)`. Logging never waits for the reader: while it stalls (a full pipe,
/// a FIFO nobody reads) lines beyond the queue are dropped and counted, and a reader that went
/// away costs the lines, never the process. SIGPIPE must be ignored (`ignoreBrokenPipes()`),
/// as `serve` does.
public enum LogOutput {
    private static let queue = LineQueue(capacity: 2048)
    private static let dropped = Atomic<Int>(0)

    /// Lines that could not be written (the reader stalled or left, a full disk), for `/metrics`.
    public static var droppedLines: Int { dropped.load(ordering: .relaxed) }

    /// Keeps writes to a closed pipe from ending the process; they fail with EPIPE instead, and
    /// writes what is still queued when the process exits.
    public static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
        atexit { LogOutput.flush(within: 1) }
    }

    /// Queues one line (a newline is added); drops it, counted, when the queue is full.
    public static func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        if !queue.offer(bytes) { dropped.add(1, ordering: .relaxed) }
    }

    /// Waits until the queued lines are written, for at most `seconds`.
    public static func flush(within seconds: Double) {
        queue.waitUntilEmpty(within: seconds)
    }

    fileprivate static func countDropped() { dropped.add(1, ordering: .relaxed) }
}

/// Lines waiting for standard error, and the thread that writes them.
private final class LineQueue: @unchecked Sendable {
    // Every field below is read and written with `condition` held.
    private let condition = NSCondition()
    private var lines: [[UInt8]] = []
    private var writing = false
    private var writer: Thread?
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func offer(_ line: [UInt8]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard lines.count < capacity else { return false }
        lines.append(line)
        if writer == nil {
            let thread = Thread { [unowned self] in self.drain() }
            thread.name = "tingxie-log"
            writer = thread
            thread.start()
        }
        condition.broadcast()
        return true
    }

    func waitUntilEmpty(within seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        while !lines.isEmpty || writing {
            guard condition.wait(until: deadline) else { return }
        }
    }

    private func drain() {
        while true {
            condition.lock()
            while lines.isEmpty { condition.wait() }
            let batch = lines
            lines.removeAll(keepingCapacity: true)
            writing = true
            condition.unlock()
            for line in batch where !Self.writeAll(line) { LogOutput.countDropped() }
            condition.lock()
            writing = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Writes one line whole, or reports that it could not.
    private static func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let result = Glibc.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if result > 0 {
                    offset += result
                } else if result < 0 && errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
    }
}

/// Writes one line per event to stderr (through `LogOutput`), in one of two formats:
/// - `json`: one JSON object per line, `ts`, `level`, `label`, `msg` and the metadata, for log
///   collectors (`--log-format json`);
/// - `text`: `ts level label : key=value ... message`, with every control character escaped
///   (`\n`, `\u{1B}`), so that text a client sent (a file name, a stream's `wav_name`) can never
///   forge or break a log line.
public struct LineLogHandler: LogHandler {
    public enum Format: Sendable { case json, text }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let format: Format

    public init(label: String, format: Format) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
        switch format {
        case .json:
            var fields = merged.mapValues { "\($0)" }
            fields["ts"] = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date())
            fields["level"] = event.level.rawValue
            fields["label"] = label
            fields["msg"] = "\(event.message)"
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            guard let data = try? encoder.encode(fields) else { return }
            LogOutput.write(String(decoding: data, as: UTF8.self))
        case .text:
            let fields = merged.keys.sorted().map { "\(Self.escaped($0))=\(Self.escaped("\(merged[$0]!)"))" }.joined(separator: " ")
            let time = Date.ISO8601FormatStyle(includingFractionalSeconds: false).format(Date())
            LogOutput.write("\(time) \(event.level) \(label) :\(fields.isEmpty ? "" : " " + fields) \(Self.escaped("\(event.message)"))")
        }
    }

    /// The text with control characters written as escapes.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.properties.generalCategory == .control {
                    result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }
}
