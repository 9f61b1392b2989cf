import Foundation
import TingxieCore
import TingxieServer

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
        var residentBytes: Int { (SystemResources.kilobytes("VmRSS:", in: "/proc/\(pid)/status") ?? 0) * 1024 }
        var peakResidentBytes: Int { (SystemResources.kilobytes("VmHWM:", in: "/proc/\(pid)/status") ?? 0) * 1024 }

        /// CPU time the server has used so far (user and system, from `/proc/PID/stat`), in seconds.
        var cpuSeconds: Double {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { return 0 }
            // Fields after the command name: state is the 3rd field, utime the 14th, stime the 15th.
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
            return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
    }

    /// Starts `tingxie serve` on a free loopback port with a fresh data folder under `work` and
    /// `workers` workers of one thread, runs `body` against it, then stops it with SIGTERM (SIGKILL
    /// after a minute). Its log goes to `work/server.log`; `extra` flags go last (and win).
    func run<T: Sendable>(workers: Int, work: URL, extra: [String] = [], _ body: @Sendable (Running) async throws -> T) async throws -> T {
        let server = try await start(workers: workers, data: work.appendingPathComponent("server-data"),
                                     log: work.appendingPathComponent("server.log"), extra: extra)
        do {
            let result = try await body(server)
            try await stop(server.pid)
            return result
        } catch {
            try? await stop(server.pid)
            throw error
        }
    }

    /// Starts `tingxie COMMAND` (`serve` or `worker`) on a free loopback port with a fresh `data`
    /// folder, `workers` workers of one thread and `extra` flags; returns once it listens.
    func start(_ command: String = "serve", workers: Int, data: URL, log: URL, extra: [String] = []) async throws -> Running {
        try? FileManager.default.removeItem(at: data)
        try? FileManager.default.removeItem(at: log)
        let arguments = [command] + modelArguments + ["--host", "127.0.0.1", "--port", "0", "--data-dir", data.path,
                                                      "--workers", "\(workers)", "--threads", "1"] + extra
        let pid = try MeasuredRun.spawn(executable, arguments, output: log.path)
        do {
            let port = try await waitForPort(pid: pid, log: log)
            return Running(base: "http://127.0.0.1:\(port)", port: port, pid: pid)
        } catch {
            try? await stop(pid)
            throw error
        }
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
                throw TingxieError(.internalError, "the server exited before listening; its log:\n" + text.suffix(2000))
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TingxieError(.internalError, "the server did not listen within 5 minutes; see \(log.path)")
    }

    /// SIGTERM, then SIGKILL after a minute; returns once the process is gone.
    func stop(_ pid: pid_t) async throws {
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
