import Foundation
import NIOSSL
import PostgresNIO
import TingxieCore

/// `postgres://USER:PASS@HOST:PORT/DB?sslmode=…` as a connection pool's configuration.
public enum PostgresURL {
    /// - Throws: `TingxieError(.invalidArgument)` saying what is wrong with the URL.
    public static func configuration(_ url: String) throws -> PostgresClient.Configuration {
        guard let parts = URLComponents(string: url), ["postgres", "postgresql"].contains(parts.scheme ?? "") else {
            throw TingxieError(.invalidArgument, "--database-url must look like postgres://USER:PASS@HOST:PORT/DB")
        }
        guard let host = parts.host, !host.isEmpty else {
            throw TingxieError(.invalidArgument, "--database-url names no host")
        }
        guard let user = parts.user, !user.isEmpty else {
            throw TingxieError(.invalidArgument, "--database-url names no user")
        }
        let port = parts.port ?? 5432
        guard (1...65535).contains(port) else {
            throw TingxieError(.invalidArgument, "--database-url: port \(port) is out of range")
        }
        let database = String(parts.path.drop { $0 == "/" })
        let mode = parts.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer", "require":
            // As libpq: encrypted, the server's certificate not checked.
            var unchecked = TLSConfiguration.makeClientConfiguration()
            unchecked.certificateVerification = .none
            tls = mode == "prefer" ? .prefer(unchecked) : .require(unchecked)
        case "verify-full": tls = .require(.makeClientConfiguration())
        default:
            throw TingxieError(.invalidArgument, "--database-url: sslmode \"\(mode)\" is not one of disable, prefer, require, verify-full")
        }
        var configuration = PostgresClient.Configuration(
            // URLComponents has decoded them once already: `50%25off` is the password `50%off`.
            host: host, port: port, username: user,
            password: parts.password, database: database.isEmpty ? nil : database, tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}

/// What a failed database call means for a client: the database being away is `not_ready`
/// (503, try again), anything else is an internal error that names the server's complaint.
enum PostgresFailure {
    static func describe(_ error: any Error) -> TingxieError {
        if let error = error as? TingxieError { return error }
        if let failed = error as? PostgresTransactionError,
           let cause = failed.closureError ?? failed.beginError ?? failed.commitError {
            return describe(cause)
        }
        guard let error = error as? PSQLError else {
            return TingxieError(.notReady, "the job database cannot be reached: \(error)")
        }
        if let state = error.serverInfo?[.sqlState] {
            let message = error.serverInfo?[.message] ?? "no message"
            // Class 28: the login was refused; said without the password.
            if state.hasPrefix("28") {
                return TingxieError(.notReady, "the job database refused the login (\(state): \(message)); check the user and password in --database-url (percent-encode %, @, : and / in them)")
            }
            // Class 08: connection exceptions; 57P: the server is shutting down or restarting;
            // 53: out of resources (connections, memory, disk).
            if state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53") {
                return TingxieError(.notReady, "the job database is not available (\(state): \(message)); try again shortly")
            }
            return TingxieError(.internalError, "the job database refused a query (\(state): \(message))")
        }
        let cause = error.underlying.map { ": \($0)" } ?? ""
        return TingxieError(.notReady, "the job database cannot be reached (\(error.code))\(cause); try again shortly")
    }
}
