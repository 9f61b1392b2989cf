import Foundation
import Logging
import NIOPosix
import NIOSSL
import PostgresNIO
import TingxieCore

/// `postgres://USER:PASS@HOST:PORT/DB?sslmode=…` as a connection pool's configuration.
public enum PostgresURL {
    /// What the URL names, decoded once.
    struct Parts {
        var host: String
        var port: Int
        var user: String
        var password: String?
        var database: String?
        /// `disable`, `prefer`, `require` or `verify-full`.
        var mode: String

        /// TLS as libpq's modes mean it: `prefer` and `require` encrypt without checking the
        /// server's certificate, `verify-full` checks it.
        var tls: TLSConfiguration {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if mode != "verify-full" { configuration.certificateVerification = .none }
            return configuration
        }
    }

    /// - Throws: `TingxieError(.invalidArgument)` saying what is wrong with the URL.
    static func parts(_ url: String) throws -> Parts {
        guard let parts = URLComponents(string: url), ["postgres", "postgresql"].contains(parts.scheme ?? "") else {
            throw TingxieError(.invalidArgument, "--database-url must look like postgres://USER:PASS@HOST:PORT/DB")
        }
        guard let host = parts.host, !host.isEmpty else {
            throw TingxieError(.invalidArgument, "--database-url names no host")
        }
        // URLComponents has decoded the user and password once already: `50%25off` is `50%off`.
        guard let user = parts.user, !user.isEmpty else {
            throw TingxieError(.invalidArgument, "--database-url names no user")
        }
        let port = parts.port ?? 5432
        guard (1...65535).contains(port) else {
            throw TingxieError(.invalidArgument, "--database-url: port \(port) is out of range")
        }
        let database = String(parts.path.drop { $0 == "/" })
        let mode = parts.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "prefer", "require", "verify-full"].contains(mode) else {
            throw TingxieError(.invalidArgument, "--database-url: sslmode \"\(mode)\" is not one of disable, prefer, require, verify-full")
        }
        return Parts(host: host, port: port, user: user, password: parts.password, database: database.isEmpty ? nil : database, mode: mode)
    }

    /// - Throws: `TingxieError(.invalidArgument)` saying what is wrong with the URL.
    public static func configuration(_ url: String) throws -> PostgresClient.Configuration {
        let parts = try parts(url)
        let tls: PostgresClient.Configuration.TLS = switch parts.mode {
        case "disable": .disable
        case "prefer": .prefer(parts.tls)
        default: .require(parts.tls)
        }
        var configuration = PostgresClient.Configuration(host: parts.host, port: parts.port, username: parts.user,
                                                         password: parts.password, database: parts.database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// Why the database at `url` cannot be used, found by opening one connection: a refused
    /// login, a refused connection, TLS; `nil` when a connection opens. The pool retries quietly,
    /// so this is how an operator learns what is wrong.
    static func diagnose(_ url: String, logger: Logger) async -> TingxieError? {
        do {
            let parts = try parts(url)
            let tls: PostgresConnection.Configuration.TLS = parts.mode == "disable" ? .disable
                : parts.mode == "prefer" ? .prefer(try NIOSSLContext(configuration: parts.tls)) : .require(try NIOSSLContext(configuration: parts.tls))
            var configuration = PostgresConnection.Configuration(host: parts.host, port: parts.port, username: parts.user,
                                                                 password: parts.password, database: parts.database, tls: tls)
            configuration.options.connectTimeout = .seconds(5)
            let connection = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration,
                                                                  id: 0, logger: logger).get()
            try? await connection.close()
            return nil
        } catch {
            return PostgresFailure.describe(error)
        }
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
