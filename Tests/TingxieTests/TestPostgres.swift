import Foundation
import Logging
import PostgresNIO
import Testing
import TingxieCore
import TingxieJobs
import TingxiePostgres

/// The private PostgreSQL that `make test` starts (scripts/test-postgres sets
/// TINGXIE_TEST_POSTGRES_URL to its maintenance database).
enum TestPostgres {
    static let url: URLComponents? = ProcessInfo.processInfo.environment["TINGXIE_TEST_POSTGRES_URL"]
        .flatMap { $0.isEmpty ? nil : URLComponents(string: $0) }

    static let skipReason: Comment = "needs TINGXIE_TEST_POSTGRES_URL (a PostgreSQL server that scripts/test-postgres starts); run `make test`"

    /// Only what goes wrong badly (PostgresNIO warns when a query waits for the pool to start).
    static var quiet: Logger {
        var logger = Logger(label: "test-postgres")
        logger.logLevel = .critical
        return logger
    }

    /// A new, empty database on the test server; its URL.
    static func freshDatabase() async throws -> String {
        guard let url = url?.string else { try Test.cancel(skipReason) }
        return try await PostgresDatabases.create(named: "tingxie_\(Job.newID().prefix(12))", besides: url, logger: quiet)
    }

    /// A store on a fresh database, its connection pool running until `stop` is called.
    static func store(url: String? = nil, limits: QueueGauge.Limits = .init(), node: String = "test") async throws -> RunningStore {
        let databaseURL: String
        if let url { databaseURL = url } else { databaseURL = try await freshDatabase() }
        let store = try PostgresJobStore(url: databaseURL, gauge: QueueGauge(limits: limits), node: node, logger: quiet)
        return RunningStore(store: store, url: databaseURL, task: Task { await store.run() })
    }

    /// The first column of the first row `sql` returns in the database at `url`.
    static func value<T: PostgresDecodable & Sendable>(_ sql: String, in url: String) async throws -> T {
        let client = PostgresClient(configuration: try PostgresURL.configuration(url), backgroundLogger: quiet)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await client.run(); return nil }
            let value = try await client.query(PostgresQuery(unsafeSQL: sql)).collect()[0].decode(T.self)
            group.cancelAll()
            return value
        }
    }

    /// Ends every other connection to the database at `url` (`pg_terminate_backend`); how many.
    static func terminateBackends(in url: String) async throws -> Int {
        try await value("""
            SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            """, in: url)
    }

    /// Restarts the test server (`scripts/test-postgres restart`): every connection is cut.
    static func restart() throws {
        let process = Process()
        process.executableURL = TestData.projectRoot.appendingPathComponent("scripts/test-postgres")
        process.arguments = ["restart"]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TingxieError(.internalError, "scripts/test-postgres restart exited with \(process.terminationStatus)")
        }
    }

    struct RunningStore: Sendable {
        let store: PostgresJobStore
        let url: String
        let task: Task<Void, Never>

        func stop() { task.cancel() }
    }
}
