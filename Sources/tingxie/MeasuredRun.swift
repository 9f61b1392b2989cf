import Foundation
import TingxieCore

/// Runs a child process and reports its wall time and peak resident memory (from `wait4`).
struct MeasuredRun {
    var status: Int32
    var wallSeconds: Double
    var peakRSSBytes: Int

    static func run(_ executable: String, _ arguments: [String]) throws -> MeasuredRun {
        let started = ContinuousClock.now
        // The child's transcripts and progress are not part of the figures.
        let pid = try spawn(executable, arguments, output: "/dev/null")
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) == -1 && errno == EINTR {}
        let wall = ContinuousClock.now - started
        return MeasuredRun(
            status: (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F),
            wallSeconds: Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18,
            peakRSSBytes: usage.ru_maxrss * 1024
        )
    }

    /// Starts `executable` with stdin from /dev/null and stdout and stderr into `output`
    /// (created or emptied, readable by this user only); returns its process id.
    static func spawn(_ executable: String, _ arguments: [String], output: String) throws -> pid_t {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw TingxieError(.internalError, "cannot start \(executable): error \(spawned)") }
        return pid
    }
}
