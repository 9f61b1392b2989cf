import Foundation
import Logging
import PostgresNIO
import TingxieCore

/// Scratch databases for benchmarks and tests: created beside the one a URL names.
public enum PostgresDatabases {
    /// Creates an empty database called `name` on the server `url` points at (the role needs
    /// CREATEDB) and returns the URL of the new one.
    /// - Throws: `TingxieError` saying why the server refused.
    public static func create(named name: String, besides url: String, logger: Logger) async throws -> String {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
              var parts = URLComponents(string: url) else {
            throw TingxieError(.invalidArgument, "a database name is letters, digits and _ only")
        }
        let client = PostgresClient(configuration: try PostgresURL.configuration(url), backgroundLogger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                try await client.query("CREATE DATABASE \(unescaped: name)")
            }
        } catch {
            throw PostgresFailure.describe(error)
        }
        parts.path = "/" + name
        return parts.string!
    }
}
