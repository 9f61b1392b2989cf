import ArgumentParser
import Foundation
import TingxieJobs
import TingxieOperations

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Work with logs.",
        subcommands: [Analyze.self]
    )

    struct Analyze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Classify the failures in Tingxie's JSON logs and in plain-text logs of Python ASR services.",
            discussion: "Prints counts per class over time, the incidents they form, the files involved, and the Tingxie setting that prevents each class."
        )

        @Argument(help: "Log files.") var files: [String]
        @Option(help: "Events of one class less than this many minutes apart form one incident.") var gapMinutes: Double = 10
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("give at least one log file") }
            guard gapMinutes > 0 else { throw ValidationError("--gap-minutes must be positive") }
        }

        func run() async throws {
            let logs = try files.map { path in
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("cannot read \(path)")
                }
                return (name: URL(fileURLWithPath: path).lastPathComponent, text: String(decoding: data, as: UTF8.self))
            }
            let analysis = LogAnalyzer.analyze(logs, gap: gapMinutes * 60)
            print(json ? Self.json(analysis) : Self.text(analysis), terminator: "")
        }

        private static let timeFormat: DateFormatter = {
            let format = DateFormatter()
            format.dateFormat = "yyyy-MM-dd HH:mm:ss"
            format.timeZone = TimeZone(identifier: "UTC")
            return format
        }()

        private static func time(_ date: Date?) -> String { date.map(timeFormat.string(from:)) ?? "-" }

        /// Per class: events, incidents, first and last seen, files.
        private static func classes(_ analysis: LogAnalyzer.Analysis) -> [(cause: Incident.Cause, events: [LogAnalyzer.Event], incidents: Int)] {
            Dictionary(grouping: analysis.events, by: \.cause).map { cause, events in
                (cause, events, analysis.incidents.filter { $0.cause == cause }.count)
            }.sorted { ($1.events.count, $0.cause.rawValue) < ($0.events.count, $1.cause.rawValue) }
        }

        static func text(_ analysis: LogAnalyzer.Analysis) -> String {
            var lines = ["\(analysis.linesRead) lines read; \(analysis.events.count) events in \(analysis.incidents.count) incidents"]
            guard !analysis.events.isEmpty else { return lines.joined(separator: "\n") + "\n" }
            lines += ["", "class                 events  incidents  first seen (UTC)     last seen (UTC)      files"]
            for entry in classes(analysis) {
                let times = entry.events.compactMap(\.time)
                let files = Set(entry.events.compactMap(\.file)).sorted()
                lines.append(entry.cause.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0)
                             + String(format: "%7d  %9d  ", entry.events.count, entry.incidents)
                             + time(times.min()).padding(toLength: 21, withPad: " ", startingAt: 0)
                             + time(times.max()).padding(toLength: 21, withPad: " ", startingAt: 0)
                             + (files.isEmpty ? "-" : files.prefix(5).joined(separator: ", ") + (files.count > 5 ? ", ..." : "")))
            }
            let hourly = Dictionary(grouping: analysis.events.filter { $0.time != nil }) { event in
                Date(timeIntervalSince1970: (event.time!.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
            }
            if !hourly.isEmpty {
                lines += ["", "per hour (UTC)"]
                for (hour, events) in hourly.sorted(by: { $0.key < $1.key }) {
                    let counts = Dictionary(grouping: events, by: \.cause).map { "\($0.key.rawValue) \($0.value.count)" }.sorted()
                    lines.append("\(time(hour).prefix(16))  " + counts.joined(separator: ", "))
                }
            }
            lines += ["", "incidents"]
            for (index, incident) in analysis.incidents.enumerated() {
                let span = incident.first == incident.last ? time(incident.first) : "\(time(incident.first)) - \(time(incident.last).suffix(8))"
                let files = incident.files.isEmpty ? "" : "  files: " + incident.files.prefix(5).joined(separator: ", ")
                lines.append("#\(index + 1) \(incident.cause.rawValue)  \(span)  \(incident.events.count) event\(incident.events.count == 1 ? "" : "s")\(files)")
                lines.append("    \(incident.events[0].source):\(incident.events[0].line): \(incident.events[0].message.prefix(160))")
            }
            lines += ["", "what prevents each class in Tingxie"]
            for entry in classes(analysis) {
                lines.append("\(entry.cause.rawValue): \(entry.cause.remedy)")
            }
            return lines.joined(separator: "\n") + "\n"
        }

        static func json(_ analysis: LogAnalyzer.Analysis) -> String {
            let iso = ISO8601DateFormatter()
            let object: [String: Any] = [
                "lines_read": analysis.linesRead,
                "events": analysis.events.count,
                "classes": Dictionary(uniqueKeysWithValues: classes(analysis).map { entry in
                    (entry.cause.rawValue, [
                        "events": entry.events.count,
                        "incidents": entry.incidents,
                        "first_seen": entry.events.compactMap(\.time).min().map(iso.string(from:)) as Any,
                        "last_seen": entry.events.compactMap(\.time).max().map(iso.string(from:)) as Any,
                        "files": Set(entry.events.compactMap(\.file)).sorted(),
                        "remedy": entry.cause.remedy,
                    ] as [String: Any])
                }),
                "incidents": analysis.incidents.map { incident in
                    [
                        "class": incident.cause.rawValue,
                        "first": incident.first.map(iso.string(from:)) as Any,
                        "last": incident.last.map(iso.string(from:)) as Any,
                        "events": incident.events.count,
                        "files": incident.files,
                        "example": "\(incident.events[0].source):\(incident.events[0].line): \(incident.events[0].message)",
                    ] as [String: Any]
                },
            ]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }
}
