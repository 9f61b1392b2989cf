import Foundation

/// Memory of the process, the machine, its cgroup and its GPUs at one moment.
public struct ResourceSample: Sendable, Equatable {
    public struct GPU: Sendable, Equatable {
        public var index: Int
        public var usedBytes: Int
        public var totalBytes: Int

        public init(index: Int, usedBytes: Int, totalBytes: Int) {
            self.index = index
            self.usedBytes = usedBytes
            self.totalBytes = totalBytes
        }
    }

    public var processResidentBytes: Int?
    public var systemTotalBytes: Int?
    public var systemAvailableBytes: Int?
    /// The cgroup's memory limit, when there is one.
    public var cgroupLimitBytes: Int?
    public var cgroupUsageBytes: Int?
    public var gpus: [GPU]

    public init(processResidentBytes: Int? = nil, systemTotalBytes: Int? = nil, systemAvailableBytes: Int? = nil,
                cgroupLimitBytes: Int? = nil, cgroupUsageBytes: Int? = nil, gpus: [GPU] = []) {
        self.processResidentBytes = processResidentBytes
        self.systemTotalBytes = systemTotalBytes
        self.systemAvailableBytes = systemAvailableBytes
        self.cgroupLimitBytes = cgroupLimitBytes
        self.cgroupUsageBytes = cgroupUsageBytes
        self.gpus = gpus
    }

    /// The fuller of the machine's and the cgroup's memory, 0...1.
    public var memoryFraction: Double? {
        var fractions: [Double] = []
        if let total = systemTotalBytes, let available = systemAvailableBytes, total > 0 {
            fractions.append(1 - Double(available) / Double(total))
        }
        if let limit = cgroupLimitBytes, let usage = cgroupUsageBytes, limit > 0 {
            fractions.append(Double(usage) / Double(limit))
        }
        return fractions.max()
    }

    /// The fullest GPU's memory, 0...1; `nil` without a GPU.
    public var gpuMemoryFraction: Double? {
        gpus.filter { $0.totalBytes > 0 }.map { Double($0.usedBytes) / Double($0.totalBytes) }.max()
    }
}

/// Where resource samples come from; tests substitute their own.
public protocol ResourceSource: Sendable {
    func sample() async -> ResourceSample
}

/// Reads `/proc`, the cgroup (v2, else v1) and, when `nvidia-smi` is on the PATH, the GPUs.
public struct SystemResources: ResourceSource {
    private let nvidiaSMI: String?

    public init() {
        nvidiaSMI = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/nvidia-smi" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public func sample() async -> ResourceSample {
        var sample = ResourceSample(
            processResidentBytes: Self.kilobytes("VmRSS:", in: "/proc/self/status").map { $0 * 1024 },
            systemTotalBytes: Self.kilobytes("MemTotal:", in: "/proc/meminfo").map { $0 * 1024 },
            systemAvailableBytes: Self.kilobytes("MemAvailable:", in: "/proc/meminfo").map { $0 * 1024 }
        )
        if let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
           let memory = Self.cgroupMemory(membership: membership) {
            sample.cgroupLimitBytes = memory.limit
            sample.cgroupUsageBytes = memory.usage
        }
        if let nvidiaSMI {
            sample.gpus = await Self.gpus(nvidiaSMI)
        }
        return sample
    }

    /// The memory limit that binds this process and the usage it is measured against: the
    /// tightest `memory.max` (v2) or `memory.limit_in_bytes` (v1) on the way from the process's
    /// own cgroup (`/proc/self/cgroup`, as systemd's `MemoryMax` sets it) up to the root. Usage
    /// is the working set, as the kernel's OOM decisions and the kubelet see it: the cgroup's
    /// usage less its inactive file cache (`memory.stat`), which the kernel reclaims before
    /// it kills anything. Otherwise reading files (a build, uploads) would look like pressure.
    static func cgroupMemory(membership: String, root: String = "/sys/fs/cgroup") -> (limit: Int, usage: Int?)? {
        let lines = membership.split(separator: "\n").map { $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false) }
        let files: (base: String, limit: String, usage: String, inactiveFile: String, path: Substring)
        if let v1 = lines.first(where: { $0.count == 3 && $0[1].split(separator: ",").contains("memory") }) {
            files = (root + "/memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file", v1[2])
        } else if let v2 = lines.first(where: { $0.count == 3 && $0[0] == "0" && $0[1].isEmpty }) {
            files = (root, "memory.max", "memory.current", "inactive_file", v2[2])
        } else {
            return nil
        }
        var components = files.path.split(separator: "/").map(String.init).filter { $0 != ".." }
        var best: (limit: Int, usage: Int?)?
        while true {
            let directory = ([files.base] + components).joined(separator: "/")
            // v1 writes "no limit" as a huge number, v2 as `max`.
            if let limit = number(at: directory + "/" + files.limit), limit < 1 << 60, limit < best?.limit ?? .max {
                let inactive = statistic(files.inactiveFile, at: directory + "/memory.stat") ?? 0
                best = (limit, number(at: directory + "/" + files.usage).map { max(0, $0 - inactive) })
            }
            guard !components.isEmpty else { return best }
            components.removeLast()
        }
    }

    /// One `name value` line of a cgroup's `memory.stat`.
    private static func statistic(_ name: String, at path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == name { return Int(fields[1]) }
        }
        return nil
    }

    /// `nvidia-smi --query-gpu`, at most 5 s; no GPUs when it fails.
    private static func gpus(_ executable: String) async -> [ResourceSample.GPU] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--query-gpu=index,memory.used,memory.total", "--format=csv,noheader,nounits"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return [] }
        for _ in 0..<100 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning {
            process.terminate()
            return []
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 3, let index = Int(fields[0]), let used = Int(fields[1]), let total = Int(fields[2]) else { return nil }
            return ResourceSample.GPU(index: index, usedBytes: used << 20, totalBytes: total << 20)
        }
    }

    /// The number after `key` in a `/proc` status file (kB for memory lines).
    public static func kilobytes(_ key: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    /// A file holding one number (`max` and anything else reads as none).
    private static func number(at path: String) -> Int? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
