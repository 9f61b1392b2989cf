import Foundation
import Synchronization

/// Limits for a child process: it may handle untrusted files, so it gets bounded CPU time,
/// memory and open files, and is killed when it stalls.
public struct SubprocessLimits: Sendable {
    /// CPU seconds the process may use.
    public var cpuSeconds: Int
    /// Address-space limit in bytes.
    public var memoryBytes: Int
    /// Files the process may hold open.
    public var openFiles: Int
    /// The process is killed when the reader has waited this long for output.
    public var stallSeconds: Double

    public init(cpuSeconds: Int = 600, memoryBytes: Int = 1 << 30, openFiles: Int = 256, stallSeconds: Double = 30) {
        self.cpuSeconds = cpuSeconds
        self.memoryBytes = memoryBytes
        self.openFiles = openFiles
        self.stallSeconds = stallSeconds
    }

    /// For installers (pip, the Whisper converter, tar): generous, but still bounded.
    public static let tools = SubprocessLimits(cpuSeconds: 3600, memoryBytes: 8 << 30, openFiles: 1024, stallSeconds: 600)
}

/// The one way Tingxie runs a program: under `prlimit`, stdin closed, stdout a pipe the caller
/// reads, stderr drained on its own thread (its last 4 KB kept) so that a chatty child never
/// blocks, and a watchdog that kills it when a read waits longer than the stall limit. Failing
/// to start (no file descriptors left, the process limit reached) is a thrown error, never a
/// trap.
public final class Subprocess {
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
    /// Made only once the process runs: a timer source released without ever being resumed
    /// would end the whole process in libdispatch.
    private var watchdog: DispatchSourceTimer?
    private let name: String

    /// Only what a program needs to be found and to run: the server's secrets (its database
    /// URL, its keys) stay out of a decoder's environment.
    public static var minimalEnvironment: [String: String] {
        ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LC_ALL": "C"]
    }

    /// - Parameter executable: a name looked up on the PATH, or a path.
    /// - Throws: `TingxieError(.ioError)` when the program cannot be started.
    /// - Parameter launcher: what applies the limits (tests name one that cannot start).
    public init(executable: String, arguments: [String], limits: SubprocessLimits = SubprocessLimits(),
                environment: [String: String]? = nil, launcher: String = "/usr/bin/prlimit") throws {
        name = URL(fileURLWithPath: executable).lastPathComponent
        process.executableURL = URL(fileURLWithPath: launcher)
        process.arguments = ["--cpu=\(limits.cpuSeconds)", "--as=\(limits.memoryBytes)", "--nofile=\(limits.openFiles)", "--core=0",
                             "--", executable] + arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        do {
            try process.run()
        } catch {
            try? stdout.fileHandleForReading.close()
            try? stderr.fileHandleForReading.close()
            throw TingxieError(.ioError, "cannot start \(name): \(error.localizedDescription)")
        }
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
        let stallSeconds = limits.stallSeconds
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 1, repeating: 1)
        timer.setEventHandler { [shared] in
            let since = shared.waitingSince.load(ordering: .relaxed)
            guard since != 0, Double(DispatchTime.now().uptimeNanoseconds - since) / 1e9 > stallSeconds else { return }
            shared.stalled.store(true, ordering: .relaxed)
            kill(pid, SIGKILL)
        }
        timer.resume()
        watchdog = timer
    }

    deinit {
        terminate()
    }

    /// Reads up to `count` bytes of stdout; empty at the end.
    public func read(upToCount count: Int) throws -> Data {
        shared.waitingSince.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        defer { shared.waitingSince.store(0, ordering: .relaxed) }
        return try stdout.fileHandleForReading.read(upToCount: count) ?? Data()
    }

    /// Reads all of stdout up to `limit` bytes.
    public func readAll(limit: Int) throws -> Data {
        var data = Data()
        while data.count < limit {
            let chunk = try read(upToCount: min(65_536, limit - data.count))
            if chunk.isEmpty { break }
            data.append(chunk)
        }
        return data
    }

    /// Waits for the process to end; returns its exit status (128 + signal when killed).
    public func wait() -> Int32 {
        process.waitUntilExit()
        shared.stderrDone.wait()
        shared.stderrDone.signal()
        watchdog?.cancel()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    public var wasStalled: Bool { shared.stalled.load(ordering: .relaxed) }

    /// What the process wrote to stderr (its last 4 KB).
    public var errorText: String {
        String(decoding: shared.errorTail.withLock { $0 }, as: UTF8.self)
    }

    /// The last line the process wrote to stderr.
    public var lastErrorLine: String {
        errorText.split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Kills the process if it still runs and closes the pipes; safe to call more than once.
    public func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        watchdog?.cancel()
        try? stdout.fileHandleForReading.close()
    }

    /// Runs a tool to its end and returns its stdout (at most `outputLimit` bytes).
    /// - Throws: `TingxieError(.ioError)` naming the tool and its last words when it fails.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], limits: SubprocessLimits = .tools,
                           environment: [String: String]? = nil, outputLimit: Int = 16 << 20) throws -> String {
        let child = try Subprocess(executable: executable, arguments: arguments, limits: limits, environment: environment)
        let output = try child.readAll(limit: outputLimit)
        let status = child.wait()
        guard status == 0 else {
            let said = child.errorText.trimmingCharacters(in: .whitespacesAndNewlines)
            throw TingxieError(.ioError, "\(child.name) failed (exit status \(status))" + (said.isEmpty ? "" : ": " + said))
        }
        return String(decoding: output, as: UTF8.self)
    }
}
