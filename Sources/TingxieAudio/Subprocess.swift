import Foundation
import Synchronization
import TingxieCore

/// Limits for a decoder subprocess: it handles untrusted files, so it gets bounded CPU time,
/// memory and output, and is killed when it stalls.
public struct SubprocessLimits: Sendable {
    /// CPU seconds the process may use.
    public var cpuSeconds: Int
    /// Address-space limit in bytes.
    public var memoryBytes: Int
    /// The process is killed when the reader has waited this long for output.
    public var stallSeconds: Double

    public init(cpuSeconds: Int = 600, memoryBytes: Int = 1 << 30, stallSeconds: Double = 30) {
        self.cpuSeconds = cpuSeconds
        self.memoryBytes = memoryBytes
        self.stallSeconds = stallSeconds
    }
}

/// A child process started under `prlimit` with its stdout as a pipe, stderr kept (last 4 KB),
/// and a watchdog that kills it when a read waits longer than the stall limit.
final class LimitedProcess {
    let process = Process()
    private let stdout = Pipe()
    private let stderr = Pipe()
    /// What the stderr reader and the watchdog share with the reading thread.
    private final class Shared: Sendable {
        let errorTail = Mutex<Data>(Data())
        /// Uptime (ns) when the current read started waiting; 0 while not waiting.
        let waitingSince = Atomic<UInt64>(0)
        let stalled = Atomic<Bool>(false)
        let stderrDone = DispatchSemaphore(value: 0)
    }

    private let shared = Shared()
    private let watchdog: DispatchSourceTimer

    init(executable: String, arguments: [String], limits: SubprocessLimits) throws {
        let stallSeconds = limits.stallSeconds
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        process.arguments = ["--cpu=\(limits.cpuSeconds)", "--as=\(limits.memoryBytes)", "--core=0", "--", executable] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        watchdog = DispatchSource.makeTimerSource(queue: .global())
        do {
            try process.run()
        } catch {
            throw TingxieError(.decodeError, "cannot start \(executable) (is Debian's ffmpeg installed?): \(error.localizedDescription)")
        }
        // Drain stderr on its own thread so that a chatty child never blocks on it.
        let handle = stderr.fileHandleForReading
        Thread { [shared] in
            while let data = try? handle.read(upToCount: 4096), !data.isEmpty {
                shared.errorTail.withLock { tail in
                    tail.append(data)
                    if tail.count > 4096 { tail = tail.suffix(4096) }
                }
            }
            shared.stderrDone.signal()
        }.start()
        let pid = process.processIdentifier
        watchdog.schedule(deadline: .now() + 1, repeating: 1)
        watchdog.setEventHandler { [shared] in
            let since = shared.waitingSince.load(ordering: .relaxed)
            guard since != 0, Double(DispatchTime.now().uptimeNanoseconds - since) / 1e9 > stallSeconds else { return }
            shared.stalled.store(true, ordering: .relaxed)
            kill(pid, SIGKILL)
        }
        watchdog.resume()
    }

    deinit {
        terminate()
    }

    /// Reads up to `count` bytes of stdout; empty at the end.
    func read(upToCount count: Int) throws -> Data {
        shared.waitingSince.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        defer { shared.waitingSince.store(0, ordering: .relaxed) }
        return try stdout.fileHandleForReading.read(upToCount: count) ?? Data()
    }

    /// Reads all of stdout up to `limit` bytes.
    func readAll(limit: Int) throws -> Data {
        var data = Data()
        while data.count < limit {
            let chunk = try read(upToCount: min(65_536, limit - data.count))
            if chunk.isEmpty { break }
            data.append(chunk)
        }
        return data
    }

    /// Waits for the process to end; returns its exit status (128 + signal when killed).
    func wait() -> Int32 {
        process.waitUntilExit()
        shared.stderrDone.wait()
        shared.stderrDone.signal()
        watchdog.cancel()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    var wasStalled: Bool { shared.stalled.load(ordering: .relaxed) }

    /// The last line the process wrote to stderr.
    var lastErrorLine: String {
        let text = String(decoding: shared.errorTail.withLock { $0 }, as: UTF8.self)
        return text.split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Kills the process if it still runs and closes the pipes; safe to call more than once.
    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        watchdog.cancel()
        try? stdout.fileHandleForReading.close()
    }
}
