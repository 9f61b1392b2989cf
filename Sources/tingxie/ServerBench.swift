import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TingxieAudio
import TingxieCore

/// Server figures: throughput of the job queue with 1 and 2 workers, and the latency of a
/// short synchronous request while the workers are busy. The server is a `tingxie serve` child
/// process driven over loopback HTTP.
struct ServerBench: Sendable {
    let server: BenchServer
    let files: [URL]
    let audioSeconds: Double
    let runs: Int
    let work: URL

    func run() async throws {
        say("\n## Server: all \(files.count) corpus files submitted at once to POST /v1/jobs, 1 thread per worker")
        say("workers  wall min  wall median  throughput (audio s / wall s)")
        var throughput: [Int: Double] = [:]
        for workers in [1, 2] {
            var walls: [Double] = []
            for _ in 0..<runs {
                walls.append(try await server.run(workers: workers, work: work) { server in
                    let base = server.base
                    let started = ContinuousClock.now
                    let ids = try await withThrowingTaskGroup(of: String.self) { group in
                        for file in files { group.addTask { try await BenchHTTP.submit(base, file) } }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    for id in ids { try await BenchHTTP.waitUntilDone(base, id) }
                    return (ContinuousClock.now - started).seconds
                })
            }
            walls.sort()
            throughput[workers] = audioSeconds / walls[0]
            say(String(format: "%7d  %7.2fs  %10.2fs  %.2f", workers, walls[0], walls[walls.count / 2], audioSeconds / walls[0]))
        }
        say(String(format: "throughput(2 workers) / throughput(1 worker) = %.3f (goal >= 1.8)", throughput[2]! / throughput[1]!))
        try await measureLatency()
    }

    /// One long file as the only job of a 2-core server, run with one worker of two threads and
    /// with two workers of one thread (the job decodes pieces side by side on the idle worker's slot).
    func loneJob(_ file: URL) async throws {
        let seconds = try WAVReader(url: file).duration ?? 0
        say(String(format: "\n## One %.0f s file, the only job on the server (%@), wall from submit to done, best of %d; the server's peak RSS, highest of them", seconds, file.lastPathComponent, runs))
        say("workers x threads  wall  RTF  peak RSS")
        for (workers, threads) in [(1, 2), (2, 1)] {
            var measured: [(wall: Double, peak: Int)] = []
            for _ in 0..<runs {
                measured.append(try await server.run(workers: workers, work: work, extra: ["--threads", "\(threads)"]) { server in
                    let started = ContinuousClock.now
                    try await BenchHTTP.waitUntilDone(server.base, try await BenchHTTP.submit(server.base, file))
                    return ((ContinuousClock.now - started).seconds, server.peakResidentBytes)
                })
            }
            let best = measured.map(\.wall).min()!
            say(String(format: "%7d x %d  %7.2fs  %.4f  %.0f MB", workers, threads, best, best / seconds, Double(measured.map(\.peak).max()!) / 1e6))
        }
    }

    /// Latency of `POST /v1/audio/transcriptions` with the corpus file closest to 5 s, one
    /// request at a time, while two clients keep submitting corpus files to `/v1/jobs` and
    /// waiting for them (the 2 workers stay busy; the queue stays short).
    private func measureLatency() async throws {
        let durations = try files.map { ($0, try WAVReader(url: $0).duration ?? 0) }
        let (probe, probeSeconds) = durations.min { abs($0.1 - 5) < abs($1.1 - 5) }!
        let requests = 40
        let latencies = try await server.run(workers: 2, work: work) { server in
            let base = server.base
            return try await withThrowingTaskGroup(of: [Double].self) { group in
                for client in 0..<2 {
                    group.addTask {
                        var index = client
                        while !Task.isCancelled {
                            let id = try await BenchHTTP.submit(base, files[index % files.count])
                            try await BenchHTTP.waitUntilDone(base, id)
                            index += 2
                        }
                        return []
                    }
                }
                group.addTask {
                    var measured: [Double] = []
                    for _ in 0..<requests {
                        let started = ContinuousClock.now
                        let reply = try await BenchHTTP.post(base + "/v1/audio/transcriptions", file: probe, fields: ["model": "bench"])
                        guard reply.status == .ok else { throw TingxieError(.internalError, "sync request answered \(reply.status)") }
                        measured.append((ContinuousClock.now - started).seconds)
                    }
                    return measured
                }
                let measured = try await group.next()!
                group.cancelAll()
                return measured
            }
        }
        let sorted = latencies.sorted()
        say(String(format: "\n## Latency of a %.1f s file via POST /v1/audio/transcriptions under load (2 workers busy with corpus jobs), %d requests",
                   probeSeconds, sorted.count))
        say(String(format: "p50 %.3f s  p99 %.3f s  min %.3f s  max %.3f s", sorted.percentile(0.5), sorted.percentile(0.99), sorted.first!, sorted.last!))
    }

    /// Soak: three clients for `minutes`, each alternating a job through `POST /v1/jobs` (submit,
    /// wait for it) and a synchronous `POST /v1/audio/transcriptions`, over the corpus in turn.
    /// RSS is sampled every 5 s; the slope is fitted after the first tenth (warm-up: model
    /// arenas, caches) so it shows growth, not start-up.
    func soak(minutes: Double) async throws {
        say(String(format: "\n## Soak: 3 clients alternating /v1/jobs and /v1/audio/transcriptions for %.0f minutes, 2 workers", minutes))
        enum Part: Sendable { case samples([(seconds: Double, bytes: Int)]), client(requests: Int, failed: Int) }
        let parts = try await server.run(workers: 2, work: work) { server in
            let base = server.base
            let started = ContinuousClock.now
            let deadline = started + .seconds(minutes * 60)
            return try await withThrowingTaskGroup(of: Part.self) { group in
                group.addTask {
                    var samples: [(seconds: Double, bytes: Int)] = []
                    while ContinuousClock.now < deadline {
                        samples.append(((ContinuousClock.now - started).seconds, server.residentBytes))
                        try await Task.sleep(for: .seconds(5))
                    }
                    return .samples(samples)
                }
                for client in 0..<3 {
                    group.addTask {
                        var count = 0, failed = 0
                        while ContinuousClock.now < deadline {
                            let file = files[(client + 3 * count) % files.count]
                            do {
                                if count % 2 == 0 {
                                    try await BenchHTTP.waitUntilDone(base, try await BenchHTTP.submit(base, file))
                                } else {
                                    let reply = try await BenchHTTP.post(base + "/v1/audio/transcriptions", file: file, fields: ["model": "bench"])
                                    if reply.status != .ok { failed += 1 }
                                }
                            } catch {
                                failed += 1
                            }
                            count += 1
                        }
                        return .client(requests: count, failed: failed)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        var all: [(seconds: Double, bytes: Int)] = []
        var requests = 0, failures = 0
        for part in parts {
            switch part {
            case .samples(let samples): all = samples
            case .client(let count, let failed): requests += count; failures += failed
            }
        }
        let settled = Array(all.dropFirst(all.count / 10))
        guard settled.count >= 4 else { return say("too few samples for a slope: run at least a few minutes") }
        let megabytes = settled.map { (hours: $0.seconds / 3600, mb: Double($0.bytes) / 1_048_576) }
        func mean(_ part: ArraySlice<(hours: Double, mb: Double)>) -> Double { part.map(\.mb).reduce(0, +) / Double(part.count) }
        let meanT = megabytes.map(\.hours).reduce(0, +) / Double(megabytes.count)
        let meanM = mean(megabytes[...])
        let slope = megabytes.map { ($0.hours - meanT) * ($0.mb - meanM) }.reduce(0, +)
            / megabytes.map { ($0.hours - meanT) * ($0.hours - meanT) }.reduce(0, +)
        let minute = max(1, min(12, settled.count / 4))   // 12 samples: one minute
        say("\(requests) requests, \(failures) failed; \(all.count) RSS samples")
        say(String(format: "RSS first sample %.0f MB; after warm-up %.0f MB (mean of its first minute), last minute %.0f MB, peak %.0f MB",
                   Double(all[0].bytes) / 1_048_576, mean(megabytes.prefix(minute)), mean(megabytes.suffix(minute)),
                   Double(all.map(\.bytes).max()!) / 1_048_576))
        say(String(format: "slope after warm-up: %+.1f MB/h (goal < 20 MB/h)", slope))
    }
}
