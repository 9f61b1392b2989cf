import Foundation
import PostgresNIO
import Synchronization
import Testing
import TingxieCore
import TingxieJobs
import TingxiePostgres

/// What only a shared store has to get right: several nodes on one database at once.
/// (Everything a single store does is in the conformance suite, `JobQueueTests`.)
@Suite(.enabled(if: TestPostgres.url != nil, TestPostgres.skipReason))
struct PostgresStoreTests {
    /// Nodes on one fresh database, each with its own connection pool.
    private func nodes(_ count: Int, limits: QueueGauge.Limits = .init()) async throws -> [TestPostgres.RunningStore] {
        let first = try await TestPostgres.store(limits: limits, node: "node-0")
        var nodes = [first]
        for index in 1..<count {
            nodes.append(try await TestPostgres.store(url: first.url, limits: limits, node: "node-\(index)"))
        }
        return nodes
    }

    private static func job(seconds: Double = 10) -> Job {
        Job(id: Job.newID(), filename: "x.wav", bytes: 1, durationS: seconds)
    }

    @Test func nodesStartingTogetherMigrateOnce() async throws {
        let nodes = try await nodes(4)
        defer { nodes.forEach { $0.stop() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes { group.addTask { try await node.store.ping() } }
            try await group.waitForAll()
        }
        #expect(try await nodes[0].store.job(id: Job.newID()) == nil)
    }

    @Test func admissionIsExactAcrossNodes() async throws {
        // Room for 5 jobs; 12 uploads at once over 3 nodes: exactly 7 are refused.
        let nodes = try await nodes(3, limits: .init(maxQueuedJobs: 5, maxQueuedSeconds: 3600))
        defer { nodes.forEach { $0.stop() } }
        let refusals = await withTaskGroup(of: TingxieError.Code?.self) { group in
            for index in 0..<12 {
                group.addTask {
                    do {
                        try await nodes[index % 3].store.enqueue([Self.job()], settling: nil)
                        return nil
                    } catch {
                        return (error as? TingxieError)?.code ?? .internalError
                    }
                }
            }
            return await group.reduce(into: [TingxieError.Code?]()) { $0.append($1) }
        }
        #expect(refusals.filter { $0 == nil }.count == 5)
        #expect(refusals.filter { $0 == .queueFull }.count == 7)
        #expect(try await nodes[1].store.list(status: .queued, limit: 100, cursor: nil, owner: nil).jobs.count == 5)
        // Queued audio is counted the same way: 3000 s more would pass 3600 s.
        await #expect(throws: TingxieError.self) {
            try await nodes[2].store.enqueue([Self.job(seconds: 3000)], settling: nil)
        }
    }

    @Test func nodesClaimingAtOnceNeverShareAJob() async throws {
        let nodes = try await nodes(3)
        defer { nodes.forEach { $0.stop() } }
        let ids = (0..<60).map { _ in Self.job() }
        try await nodes[0].store.enqueue(ids, settling: nil)
        let claims = await withTaskGroup(of: [String].self) { group in
            for (index, node) in nodes.enumerated() {
                for worker in 0..<3 {
                    group.addTask {
                        var mine: [String] = []
                        for _ in 0..<100 {
                            guard let job = try? await node.store.claim(owner: "n\(index)-w\(worker)", lease: .seconds(60)) else { break }
                            mine.append(job.id)
                        }
                        return mine
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(claims.count == 60)
        #expect(Set(claims) == Set(ids.map(\.id)))
    }

    @Test func leasesRunOnTheDatabaseClock() async throws {
        let nodes = try await nodes(2)
        defer { nodes.forEach { $0.stop() } }
        let job = Self.job()
        try await nodes[0].store.enqueue([job], settling: nil)
        let claimed = try #require(try await nodes[0].store.claim(owner: "a", lease: .seconds(30)))
        let expires = try #require(claimed.leaseExpiresAt)
        // The expiry is the database's now() plus the lease, in epoch seconds.
        let databaseNow: Double = try await TestPostgres.value("SELECT extract(epoch FROM now())::float8", in: nodes[0].url)
        #expect(abs(expires - (databaseNow + 30)) < 5)
        // Another node sweeps only expired leases; this one is live.
        #expect(try await nodes[1].store.recoverExpiredLeases().isEmpty)
        #expect(try await nodes[1].store.recoverAtStart().isEmpty)
    }

    @Test func alertsAreClosedOnlyByTheNodeThatOpenedThem() async throws {
        let nodes = try await nodes(2)
        defer { nodes.forEach { $0.stop() } }
        _ = try await nodes[0].store.openAlert(cause: .memoryPressure, message: "node 0: memory 95% used")
        _ = try await nodes[1].store.openAlert(cause: .memoryPressure, message: "node 1: memory 95% used")
        try await nodes[1].store.resolveOpenAlerts()
        let incidents = try await nodes[0].store.incidents(since: nil, limit: 10)
        #expect(incidents.count == 2)
        #expect(incidents.filter { $0.resolvedAt == nil }.map(\.message) == ["node 0: memory 95% used"])
    }

    @Test func audioTravelsThroughTheDatabaseInChunksAndGoesWithTheJob() async throws {
        let nodes = try await nodes(2)
        defer { nodes.forEach { $0.stop() } }
        let folder = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        var generator = SystemRandomNumberGenerator()
        let bytes = Data((0..<(3 << 20) + 12345).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let upload = folder.appendingPathComponent("upload")
        try bytes.write(to: upload)
        let kept = Self.job(), dropped = Self.job()
        for job in [kept, dropped] { try await nodes[0].store.storeAudio(id: job.id, from: upload) }
        try await nodes[0].store.enqueue([kept, dropped], settling: nil)
        let chunks: Int = try await TestPostgres.value("SELECT count(*)::int8 FROM audio_chunks WHERE job_id = '\(kept.id)'", in: nodes[0].url)
        #expect(chunks == 4, "1 MiB chunks")

        // Another node reads it back whole.
        let copy = folder.appendingPathComponent("copy")
        #expect(try await nodes[1].store.loadAudio(id: kept.id, to: copy))
        #expect(try Data(contentsOf: copy) == bytes)
        #expect(try await nodes[1].store.loadAudio(id: Job.newID(), to: folder.appendingPathComponent("none")) == false)

        // A job's end takes its audio: succeeded, and canceled.
        let claimed = try #require(try await nodes[1].store.claim(owner: "w", lease: .seconds(30)))
        #expect(claimed.id == kept.id)
        let transcript = Transcript(text: "好", durationS: 1, language: "zh", model: "m", segments: [], processingS: 0.1)
        #expect(try await nodes[1].store.complete(id: kept.id, owner: "w", transcript: transcript))
        _ = try await nodes[0].store.cancel(id: dropped.id)
        let left: Int = try await TestPostgres.value("SELECT count(*)::int8 FROM audio_chunks", in: nodes[0].url)
        #expect(left == 0)
    }

    @Test func theIncidentsCommandListsEveryNodesIncidents() async throws {
        let nodes = try await nodes(2)
        defer { nodes.forEach { $0.stop() } }
        _ = try await nodes[0].store.openAlert(cause: .memoryPressure, message: "node 0: memory 95% used")
        _ = try await nodes[1].store.openAlert(cause: .queueWait, message: "node 1: the oldest job waited 700 s")
        let json = try await CLI.run(["incidents", "--database-url", nodes[0].url, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let messages = (parsed?["incidents"] as? [[String: Any]])?.compactMap { $0["message"] as? String }
        #expect(Set(messages ?? []) == ["node 0: memory 95% used", "node 1: the oldest job waited 700 s"])
        #expect(parsed?["open_alerts"] as? Int == 2)
    }

    @Test func aDatabaseRestartIsNotReadyThenWorksAgain() async throws {
        let node = try await TestPostgres.store()
        defer { node.stop() }
        try await node.store.enqueue([Self.job()], settling: nil)
        try TestPostgres.restart()
        // Calls in flight during the restart may fail, as `not_ready`; then the pool reconnects.
        var failures: [TingxieError.Code] = []
        var answered = false
        for _ in 0..<100 where !answered {
            do {
                answered = try await node.store.list(status: nil, limit: 10, cursor: nil, owner: nil).jobs.count == 1
            } catch {
                failures.append((error as? TingxieError)?.code ?? .internalError)
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(answered)
        #expect(failures.allSatisfy { $0 == .notReady }, "failures: \(failures)")
    }
}

@Suite struct PostgresURLTests {
    /// Nothing listens on port 1: calls answer `not_ready` after a few seconds, where the
    /// connection pool alone would keep them waiting for about a minute.
    @Test(.timeLimit(.minutes(1))) func aDatabaseThatIsNotThereIsNotReady() async throws {
        let store = try PostgresJobStore(url: "postgres://tingxie@127.0.0.1:1/tingxie?sslmode=disable", node: "n", logger: TestPostgres.quiet)
        let pool = Task { await store.run() }
        defer { pool.cancel() }
        for _ in 0..<2 {
            let error = await #expect(throws: TingxieError.self) { try await store.ping() }
            #expect(error?.code == .notReady, "\(String(describing: error))")
        }
    }

    @Test func aBadURLIsRefusedSayingWhy() throws {
        let logger = Logger(label: "test")
        for (url, complaint) in [("mysql://a@b/c", "must look like postgres://"), ("postgres:///db", "names no host"),
                                 ("postgres://h/db", "names no user"), ("postgres://u@h/db?sslmode=maybe", "sslmode \"maybe\"")] {
            let error = #expect(throws: TingxieError.self) {
                _ = try PostgresJobStore(url: url, node: "n", logger: logger)
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains(complaint) == true, "\(url): \(error?.message ?? "")")
        }
    }
}
