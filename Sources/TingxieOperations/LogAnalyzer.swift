import Foundation
import TingxieCore

/// Classifies the lines of logs — Tingxie's JSON logs and the plain-text logs of Python ASR
/// services (tracebacks, warnings) — and groups them into incidents.
public enum LogAnalyzer {
    /// One classified line, or one whole traceback.
    public struct Event: Sendable, Equatable {
        public var cause: Incident.Cause
        public var time: Date?
        public var file: String?
        /// The log it came from, and its line number there.
        public var source: String
        public var line: Int
        public var message: String
    }

    /// Events of one cause close together in time.
    public struct Group: Sendable, Equatable {
        public var cause: Incident.Cause
        public var first: Date?
        public var last: Date?
        public var events: [Event]
        public var files: [String] { Array(Set(events.compactMap(\.file))).sorted() }
    }

    public struct Analysis: Sendable {
        public var linesRead: Int
        public var events: [Event]
        /// Incidents in order of their first event.
        public var incidents: [Group]
    }

    /// Analyses logs given as (name, text) pairs. Events of one cause less than `gap` apart
    /// belong to one incident.
    public static func analyze(_ logs: [(name: String, text: String)], gap: TimeInterval = 600) -> Analysis {
        var events: [Event] = []
        var lines = 0
        for log in logs {
            let found = Self.events(in: log.text, source: log.name)
            events += found.events
            lines += found.lines
        }
        return Analysis(linesRead: lines, events: events, incidents: group(events, gap: gap))
    }

    private static func events(in text: String, source: String) -> (events: [Event], lines: Int) {
        var events: [Event] = []
        var lastTime: Date?
        var traceback: (start: Int, lines: [String])?
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (index, line) in lines.enumerated() {
            let number = index + 1
            if line.hasPrefix("{"), let event = jsonEvent(line, source: source, line: number) {
                lastTime = event.time ?? lastTime
                events.append(event)
                continue
            }
            if let time = timestamp(in: line) { lastTime = time }
            if line.contains("Traceback (most recent call last)") {
                traceback = (number, [line])
                continue
            }
            if var open = traceback {
                open.lines.append(line)
                traceback = open
                // The exception line ends a traceback: unindented `Name: message` or a bare name.
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard !line.hasPrefix(" "), !line.hasPrefix("\t"), !trimmed.isEmpty, trimmed.range(of: #"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)?(:|$)"#, options: .regularExpression) != nil,
                      !trimmed.hasPrefix("Traceback") else {
                    if open.lines.count > 200 { traceback = nil }
                    continue
                }
                let whole = open.lines.joined(separator: "\n")
                events.append(Event(cause: classify(whole) ?? .internalError, time: lastTime, file: audioFile(in: whole),
                                    source: source, line: open.start, message: trimmed))
                traceback = nil
                continue
            }
            if let cause = classify(line) {
                events.append(Event(cause: cause, time: lastTime, file: audioFile(in: line), source: source, line: number,
                                    message: line.trimmingCharacters(in: .whitespaces)))
            }
        }
        return (events, lines.count)
    }

    /// A Tingxie JSON log line that reports trouble: a failed job (by its error code) or an alert.
    private static func jsonEvent(_ line: String, source: String, line number: Int) -> Event? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        let level = object["level"] as? String ?? ""
        let message = object["msg"] as? String ?? ""
        let time = (object["ts"] as? String).flatMap(isoDate)
        let file = (object["filename"] as? String) ?? (object["file"] as? String)
        let detail = [message, object["error"] as? String, object["detail"] as? String].compactMap { $0 }.joined(separator: ": ")
        let cause: Incident.Cause?
        if let alert = object["alert"] as? String, message == "alert opened" {
            cause = AlertKind(rawValue: alert)?.cause
        } else if let code = (object["code"] as? String).flatMap(TingxieError.Code.init(rawValue:)) {
            cause = Incident.Cause(TingxieError(code, detail))
        } else if ["error", "critical"].contains(level) {
            cause = classify(detail) ?? .internalError
        } else {
            cause = nil
        }
        return cause.map { Event(cause: $0, time: time, file: file, source: source, line: number, message: detail) }
    }

    /// Patterns per cause, most specific first; matched case-insensitively.
    static let patterns: [(Incident.Cause, [String])] = [
        (.outOfMemory, ["out of memory", "outofmemoryerror", "memoryerror", "cannot allocate memory", "std::bad_alloc",
                        "oom-kill", "oom_kill", "killed process", "cudnn_status_alloc_failed"]),
        (.tooLong, ["exceeds recommended limit", "duration exceeds", "audio is too long", "too long for", "maximum duration"]),
        (.timeout, ["timeouterror", "timed out", "readtimeout", "deadline exceeded", "504 gateway", "worker timeout"]),
        (.connectionReset, ["connectionreseterror", "connection reset by peer", "brokenpipeerror", "broken pipe",
                            "connectionabortederror", "remotedisconnected", "client disconnected"]),
        (.unsupportedFormat, ["unsupported format", "format not recognised", "format not recognized", "unknown format",
                              "no audio stream"]),
        (.decodeError, ["invalid data found when processing input", "could not decode", "error opening input", "decode error",
                        "libsndfileerror", "nobackenderror", "audioread", "error while decoding"]),
        (.modelError, ["onnxruntimeerror", "onnxruntime", "failed to load model", "model not found", "error in loading model"]),
        (.overload, ["queue full", "queue is full", "503 service unavailable", "too many requests"]),
        (.workerLost, ["worker exited", "worker died", "segmentation fault", "core dumped"]),
    ]

    static func classify(_ text: String) -> Incident.Cause? {
        let lowered = text.lowercased()
        return patterns.first { $0.1.contains { lowered.contains($0) } }?.0
    }

    private static func audioFile(in text: String) -> String? {
        guard let range = text.range(of: #"[^\s'"/\\(),=]+\.(wav|mp3|m4a|flac|ogg|opus|webm|mp4|aac|amr|wma|mkv|pcm)\b"#,
                                     options: [.regularExpression, .caseInsensitive]) else { return nil }
        return String(text[range])
    }

    /// `2026-11-20 14:03:12` or `2026-11-20T14:03:12` at or near the start of a line (UTC assumed).
    private static func timestamp(in line: String) -> Date? {
        guard let range = line.prefix(40).range(of: #"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}"#, options: .regularExpression) else {
            return nil
        }
        return isoDate(line[range].replacingOccurrences(of: " ", with: "T") + "Z")
    }

    private static func isoDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        // `+0000` offsets (swift-log's text format).
        return formatter.date(from: text.replacingOccurrences(of: #"([+-][0-9]{2})([0-9]{2})$"#, with: "$1:$2", options: .regularExpression))
    }

    private static func group(_ events: [Event], gap: TimeInterval) -> [Group] {
        var groups: [Group] = []
        for (cause, ofCause) in Dictionary(grouping: events, by: \.cause) {
            let sorted = ofCause.sorted { ($0.time ?? .distantPast, $0.line) < ($1.time ?? .distantPast, $1.line) }
            for event in sorted {
                if var current = groups.last, current.cause == cause,
                   let last = current.last, let time = event.time, time.timeIntervalSince(last) <= gap {
                    current.events.append(event)
                    current.last = time
                    groups[groups.count - 1] = current
                } else if var current = groups.last, current.cause == cause, current.last == nil, event.time == nil {
                    current.events.append(event)
                    groups[groups.count - 1] = current
                } else {
                    groups.append(Group(cause: cause, first: event.time, last: event.time, events: [event]))
                }
            }
        }
        return groups.sorted { ($0.first ?? .distantPast, $0.events[0].line) < ($1.first ?? .distantPast, $1.events[0].line) }
    }
}
