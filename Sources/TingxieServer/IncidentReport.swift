import Foundation
import TingxieJobs
import TingxieOperations

/// Incidents as `GET /v1/incidents` and `tingxie incidents` show them.
public enum IncidentReport {
    /// `{"incidents": [...], "counts": {cause: n}, "open_alerts", "mean_time_to_resolve_s"}`.
    public static func json(_ incidents: [Incident]) -> String {
        let data = (try? JSONResponse.encoder.encode(IncidentsDTO(incidents))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// A summary table per cause, then one line per incident, newest first.
    public static func text(_ incidents: [Incident], since: String?) -> String {
        let summary = IncidentSummary(incidents)
        var lines = ["\(incidents.count) incident\(incidents.count == 1 ? "" : "s")" + (since.map { " in the last \($0)" } ?? "")]
        guard !incidents.isEmpty else { return lines.joined(separator: "\n") + "\n" }
        lines.append("")
        lines.append("cause                 count")
        for (cause, count) in summary.counts.sorted(by: { ($1.value, $0.key.rawValue) < ($0.value, $1.key.rawValue) }) {
            lines.append(cause.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%7d", count))
        }
        let mttr = summary.meanTimeToResolve.map { String(format: "%.0f s", $0) } ?? "none resolved"
        lines.append("alerts open: \(summary.openAlerts); mean time to resolve: \(mttr)")
        lines.append("")
        lines.append("opened (UTC)          kind   cause               resolved  subject                           message")
        let format = DateFormatter()
        format.dateFormat = "yyyy-MM-dd HH:mm:ss"
        format.timeZone = TimeZone(identifier: "UTC")
        for incident in incidents {
            let resolved = incident.kind == .job ? "-" : incident.resolvedAt.map { String(format: "%.0fs", $0.timeIntervalSince(incident.openedAt)) } ?? "open"
            let subject = incident.filename.map { "\($0) (\(incident.jobID?.prefix(8) ?? ""))" } ?? incident.jobID ?? "-"
            lines.append([format.string(from: incident.openedAt) + "  ", incident.kind.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0),
                          incident.cause.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0),
                          resolved.padding(toLength: 10, withPad: " ", startingAt: 0),
                          String(subject.prefix(32)).padding(toLength: 34, withPad: " ", startingAt: 0),
                          String(incident.message.prefix(120))].joined())
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Incidents newest first, with counts per cause and the mean time to resolve alerts.
struct IncidentsDTO: Encodable {
    struct Item: Encodable {
        var incident: Incident

        enum CodingKeys: String, CodingKey {
            case id, kind, cause, message, filename
            case jobID = "job_id", openedAt = "opened_at", resolvedAt = "resolved_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(incident.id, forKey: .id)
            try container.encode(incident.kind.rawValue, forKey: .kind)
            try container.encode(incident.cause.rawValue, forKey: .cause)
            try container.encode(incident.message, forKey: .message)
            try container.encode(incident.jobID, forKey: .jobID)
            try container.encode(incident.filename, forKey: .filename)
            try container.encode(incident.openedAt, forKey: .openedAt)
            try container.encode(incident.resolvedAt, forKey: .resolvedAt)
        }
    }

    var incidents: [Item]
    var counts: [String: Int]
    var openAlerts: Int
    var meanTimeToResolveS: Double?

    init(_ incidents: [Incident]) {
        let summary = IncidentSummary(incidents)
        self.incidents = incidents.map(Item.init)
        counts = Dictionary(uniqueKeysWithValues: summary.counts.map { ($0.key.rawValue, $0.value) })
        openAlerts = summary.openAlerts
        meanTimeToResolveS = summary.meanTimeToResolve
    }

    enum CodingKeys: String, CodingKey {
        case incidents, counts
        case openAlerts = "open_alerts", meanTimeToResolveS = "mean_time_to_resolve_s"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(incidents, forKey: .incidents)
        try container.encode(counts, forKey: .counts)
        try container.encode(openAlerts, forKey: .openAlerts)
        try container.encode(meanTimeToResolveS, forKey: .meanTimeToResolveS)
    }
}
