import ArgumentParser
import Foundation
import Logging
import TingxieCore
import TingxieJobs
import TingxieOperations
import TingxiePostgres
import TingxieServer

struct IncidentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incidents",
        abstract: "List the server's incidents: failed jobs and alerts, with counts per cause and mean time to resolve.",
        discussion: "Reads the job store in the server's data folder, or the shared one in PostgreSQL (every node's); works while the servers run."
    )

    @Option(help: "The server's data folder (env TINGXIE_DATA_DIR; default ~/.local/share/tingxie/data).")
    var dataDir: String?

    @Option(help: "The shared job store, postgres://USER:PASS@HOST:PORT/DB (env TINGXIE_DATABASE_URL); the data folder's when absent.")
    var databaseUrl: String?

    @Option(help: "Only incidents opened within this long: 30m, 24h, 7d.")
    var since: String?

    @Option(help: "At most this many incidents.")
    var limit = 200

    @Flag(help: "Print JSON, as GET /v1/incidents answers.")
    var json = false

    func validate() throws {
        if let since, Duration(parsing: since) == nil { throw ValidationError("--since takes a duration such as 30m, 24h or 7d") }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
    }

    func run() async throws {
        let folder = dataDir ?? ProcessInfo.processInfo.environment["TINGXIE_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/share/tingxie/data").path
        let start = since.flatMap(Duration.init(parsing:)).map { Date().addingTimeInterval(-$0.seconds) }
        let incidents: [Incident]
        if let url = databaseUrl ?? ProcessInfo.processInfo.environment["TINGXIE_DATABASE_URL"].flatMap({ $0.isEmpty ? nil : $0 }) {
            var logger = Logger(label: "tingxie")
            logger.logLevel = .error
            let store = try PostgresJobStore(url: url, node: "tingxie-incidents", logger: logger)
            incidents = try await withThrowingTaskGroup(of: [Incident]?.self) { group in
                group.addTask { await store.run(); return nil }
                defer { group.cancelAll() }
                return try await store.incidents(since: start, limit: limit)
            }
        } else {
            incidents = try SQLiteJobStore.incidents(atPath: URL(fileURLWithPath: folder).appendingPathComponent("jobs.sqlite"),
                                                     since: start, limit: limit)
        }
        if json {
            print(IncidentReport.json(incidents), terminator: "")
        } else {
            print(IncidentReport.text(incidents, since: since), terminator: "")
        }
    }
}
