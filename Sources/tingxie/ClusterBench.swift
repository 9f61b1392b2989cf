import Foundation
import Logging
import TingxieCore
import TingxieJobs
import TingxiePostgres

/// The shared queue on one PostgreSQL: throughput with 1 and 2 `tingxie worker` processes behind
/// an API-only `tingxie serve`, how long a SIGKILLed worker's job waits to be claimed again, and
/// what PostgreSQL itself allows: claims per second and their latency with many claimers.
/// Each part runs on a database of its own, created beside the one `databaseURL` names.
struct ClusterBench: Sendable {
    let server: BenchServer
    let files: [URL]
    let audioSeconds: Double
    let databaseURL: String
    let work: URL
    /// The workers' lease in the re-claim measurement.
    var leaseSeconds = 5.0

    func run() async throws {
        say("\n## Cluster: one PostgreSQL, an API-only `tingxie serve --workers 0` and `tingxie worker` processes (1 worker of 1 thread each)")
        say("Throughput: the corpus twice (\(files.count * 2) jobs, \(String(format: "%.0f", audioSeconds * 2)) s of audio) submitted at once to the API node, audio in the database.")
        say("| worker processes | wall | throughput (audio s / wall s) |")
        say("|---:|---:|---:|")
        for workers in [1, 2] {
            try await withCluster(workers: workers, extra: []) { api, _ in
                let started = ContinuousClock.now
                let ids = try await submitAll(api, copies: 2)
                for id in ids { try await BenchHTTP.waitUntilDone(api.base, id) }
                let wall = (ContinuousClock.now - started).seconds
                say(String(format: "| %d | %.1f s | %.2f |", workers, wall, audioSeconds * 2 / wall))
            }
        }
        try await measureReclaim()
        try await measureClaims()
    }

    /// Kills a worker while it runs a job and times how long that job waits for another.
    private func measureReclaim() async throws {
        try await withCluster(workers: 2, extra: ["--lease-seconds", "\(leaseSeconds)"]) { api, workers in
            let ids = try await submitAll(api, copies: 1)
            var running: [String] = []
            for _ in 0..<3000 where running.count < 2 {
                running = try await ids.asyncFilter { try await status(api, $0)?.status == "running" }
                if running.count < 2 { try await Task.sleep(for: .milliseconds(20)) }
            }
            guard running.count == 2 else { throw TingxieError(.internalError, "the two workers did not both start a job") }
            kill(workers[0].pid, SIGKILL)
            let killed = ContinuousClock.now
            var reclaimed: Duration?
            for _ in 0..<6000 where reclaimed == nil {
                for id in running where try await status(api, id).map({ $0.attempts >= 2 }) == true {
                    reclaimed = .now - killed
                }
                if reclaimed == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            guard let reclaimed else { throw TingxieError(.timeout, "the killed worker's job was not claimed again within 2 minutes") }
            for id in ids { try await BenchHTTP.waitUntilDone(api.base, id) }
            say(String(format: "\nRe-claim: a worker SIGKILLed mid-job (--lease-seconds %.0f, sweeps every %.2f s): its job was claimed again after %.2f s; all %d jobs succeeded.",
                       leaseSeconds, min(2, leaseSeconds / 6), reclaimed.seconds, ids.count))
        }
    }

    /// Claims straight against the store: 3000 queued jobs taken by 1, 4 and 16 claimers at once.
    private func measureClaims() async throws {
        say("\nClaims on PostgreSQL alone (`FOR UPDATE SKIP LOCKED`, one transaction each), 3000 queued jobs, each claimer with its own connection:")
        say("| claimers | claims/s | p50 | p99 |")
        say("|---:|---:|---:|---:|")
        for claimers in [1, 4, 16] {
            let store = try PostgresJobStore(url: try await scratchDatabase(), gauge: QueueGauge(limits: .init(maxQueuedJobs: 100_000, maxQueuedSeconds: .infinity)),
                                             node: "bench", logger: Self.quiet, maximumConnections: claimers + 1)
            let pool = Task { await store.run() }
            defer { pool.cancel() }
            for _ in 0..<30 {
                try await store.enqueue((0..<100).map { _ in Job(id: Job.newID(), filename: nil, bytes: 1, durationS: 1) }, settling: nil)
            }
            let started = ContinuousClock.now
            let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                for claimer in 0..<claimers {
                    group.addTask {
                        var mine: [Double] = []
                        while true {
                            let before = ContinuousClock.now
                            guard try await store.claim(owner: "claimer-\(claimer)", lease: .seconds(600)) != nil else { return mine }
                            mine.append((ContinuousClock.now - before).seconds)
                        }
                    }
                }
                return try await group.reduce(into: [Double]()) { $0 += $1 }.sorted()
            }
            let wall = (ContinuousClock.now - started).seconds
            say(String(format: "| %d | %.0f | %.2f ms | %.2f ms |", claimers, Double(latencies.count) / wall,
                       latencies.percentile(0.5) * 1000, latencies.percentile(0.99) * 1000))
        }
    }

    /// An API node and `workers` worker processes on a fresh database; all stopped afterwards.
    private func withCluster(workers: Int, extra: [String],
                             _ body: @Sendable (BenchServer.Running, [BenchServer.Running]) async throws -> Void) async throws {
        let shared = ["--database-url", try await scratchDatabase()] + extra
        var nodes: [BenchServer.Running] = []
        do {
            nodes.append(try await server.start("serve", workers: 0, data: work.appendingPathComponent("api-data"),
                                                log: work.appendingPathComponent("api.log"), extra: shared))
            for index in 0..<workers {
                nodes.append(try await server.start("worker", workers: 1, data: work.appendingPathComponent("worker-\(index)-data"),
                                                    log: work.appendingPathComponent("worker-\(index).log"), extra: shared))
            }
            try await body(nodes[0], Array(nodes.dropFirst()))
        } catch {
            for node in nodes { try? await server.stop(node.pid) }
            throw error
        }
        for node in nodes { try await server.stop(node.pid) }
    }

    /// Errors only: the bench prints its own lines.
    private static var quiet: Logger {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        return logger
    }

    /// A new, empty database beside `databaseURL`.
    private func scratchDatabase() async throws -> String {
        try await PostgresDatabases.create(named: "tingxie_bench_\(Job.newID().prefix(12))", besides: databaseURL, logger: Self.quiet)
    }

    private func submitAll(_ api: BenchServer.Running, copies: Int) async throws -> [String] {
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<copies {
                for file in files { group.addTask { try await BenchHTTP.submit(api.base, file) } }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    private func status(_ api: BenchServer.Running, _ id: String) async throws -> (status: String, attempts: Int)? {
        let job = try await BenchHTTP.get(api.base + "/v1/jobs/\(id)").json
        guard let status = job["status"] as? String, let attempts = job["attempts"] as? Int else { return nil }
        return (status, attempts)
    }
}

private extension Array where Element: Sendable {
    func asyncFilter(_ keep: (Element) async throws -> Bool) async rethrows -> [Element] {
        var kept: [Element] = []
        for element in self where try await keep(element) { kept.append(element) }
        return kept
    }
}
