import Foundation
import TingxieCore

/// A `tingxie serve` child process for the server benchmarks, so that the memory figures are the
/// server's own (read from `/proc/PID/status`), not those of the bench's clients.
struct BenchServer: Sendable {
    /// This executable, and the model flags every server gets (`--model-dir`, `--vad-model`, `--language`).
    let executable: String
    let modelArguments: [String]

    /// What the benchmarks see of a running server.
    struct Running: Sendable {
        let base: String
        let port: Int
        let pid: pid_t

        /// Resident memory now (`VmRSS`) and at its highest so far (`VmHWM`), in bytes.
        var residentBytes: Int { Self.status(pid, "VmRSS:") }
        var peakResidentBytes: Int { Self.status(pid, "VmHWM:") }

        /// CPU time the server has used so far (user and system, from `/proc/PID/stat`), in seconds.
        var cpuSeconds: Double {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { return 0 }
            // Fields after the command name: state is the 3rd field, utime the 14th, stime the 15th.
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
            return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }

        private static func status(_ pid: pid_t, _ field: String) -> Int {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
                  let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
            return kilobytes * 1024
        }
    }

    /// Starts `tingxie serve` on a free loopback port with a fresh data folder under `work` and
    /// `workers` workers of one thread, runs `body` against it, then stops it with SIGTERM (SIGKILL
    /// after a minute). Its log goes to `work/server.log`.
    func run<T: Sendable>(workers: Int, work: URL, _ body: @Sendable (Running) async throws -> T) async throws -> T {
        let data = work.appendingPathComponent("server-data")
        try? FileManager.default.removeItem(at: data)
        let log = work.appendingPathComponent("server.log")
        try? FileManager.default.removeItem(at: log)
        let arguments = ["serve"] + modelArguments + ["--host", "127.0.0.1", "--port", "0", "--data-dir", data.path,
                                                      "--workers", "\(workers)", "--threads", "1"]
        let pid = try spawn(arguments, log: log)
        do {
            let port = try await waitForPort(pid: pid, log: log)
            let result = try await body(Running(base: "http://127.0.0.1:\(port)", port: port, pid: pid))
            try await stop(pid)
            return result
        } catch {
            try? await stop(pid)
            throw error
        }
    }

    private func spawn(_ arguments: [String], log: URL) throws -> pid_t {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw TingxieError(.internalError, "cannot start \(executable) serve: error \(spawned)") }
        return pid
    }

    /// The port from the server's `listening` log line (it binds port 0), within 5 minutes (model load).
    private func waitForPort(pid: pid_t, log: URL) async throws -> Int {
        for _ in 0..<3000 {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasSuffix(" listening") }),
               let match = line.firstMatch(of: /address=127\.0\.0\.1:(\d+)/), let port = Int(match.1) {
                return port
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw TingxieError(.internalError, "tingxie serve exited before listening; its log:\n" + text.suffix(2000))
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TingxieError(.internalError, "tingxie serve did not listen within 5 minutes; see \(log.path)")
    }

    private func stop(_ pid: pid_t) async throws {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<600 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
    }
}
