import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TingxieCore
import TingxieJobs
import TingxieServer

/// Two nodes on one PostgreSQL queue: an API-only node that takes uploads and a worker node that
/// runs them, each a whole server as `tingxie serve` builds it, sharing the database and the
/// audio folder and nothing else.
@Suite(.enabled(if: TestPostgres.url != nil, TestPostgres.skipReason))
struct SharedQueueTests {
    /// How the nodes share uploaded audio.
    enum AudioPath: String, CaseIterable, Sendable {
        /// In the database (the default with PostgreSQL).
        case database
        /// In one folder every node mounts (`--audio-dir`).
        case sharedFolder
    }

    /// Runs `test` with an API node (no workers) and a worker node on a fresh database; with
    /// `workers: 0` both are API nodes.
    private func withTwoNodes(worker recognizer: FakeRecognizer = FakeRecognizer(), workers: Int = 1, audio path: AudioPath = .database,
                              queue limits: QueueGauge.Limits = .init(),
                              _ test: @Sendable (_ api: any TestClientProtocol, _ worker: any TestClientProtocol,
                                                 _ database: String) async throws -> Void) async throws {
        let database = try await TestPostgres.freshDatabase()
        let folder = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let audio = path == .sharedFolder ? folder : nil
        @Sendable func shared(_ name: String, workers: Int) -> (inout ServerConfiguration) -> Void {
            { configuration in
                configuration.databaseURL = database
                configuration.audioDirectory = audio
                configuration.nodeName = name
                configuration.workers.workers = workers
                configuration.queue = limits
                // No polling and no heartbeat within a test's time: only the database's
                // notifications can tell a node of another's upload or cancel.
                configuration.workers.lease = .seconds(7200)
                configuration.workers.heartbeat = .seconds(3600)
                configuration.workers.sweepInterval = .seconds(3600)
            }
        }
        try await withTestServer(testing: .live, setup: shared("api", workers: 0)) { api, _ in
            try await withTestServer(recognizer: recognizer, testing: .live, setup: shared("worker", workers: workers)) { worker, _ in
                try await test(api, worker, database)
            }
        }
    }

    @Test(arguments: AudioPath.allCases) func anUploadToTheAPINodeIsTranscribedByTheWorkerNode(_ path: AudioPath) async throws {
        let recognizer = FakeRecognizer()
        try await withTwoNodes(worker: recognizer, audio: path) { api, worker, database in
            let id = try await api.submit(Upload.wav(seconds: 3))
            let job = try await api.waitUntilFinished(id)
            #expect(job["status"] as? String == "succeeded")
            let transcript = try await api.get("/v1/jobs/\(id)/transcript")
            #expect(transcript.status == .ok)
            #expect((transcript.json["text"] as? String)?.contains("段") == true)
            #expect(!recognizer.calls.withLock { $0 }.isEmpty, "the worker node decoded it")
            // Both nodes read the one queue.
            #expect(try await worker.get("/v1/jobs/\(id)").json["status"] as? String == "succeeded")
            #expect(try await api.get("/readyz").status == .ok)
            // Every node sees the cluster.
            let nodes = try #require((try await worker.get("/v1/system").json["cluster"] as? [String: Any])?["nodes"] as? [[String: Any]])
            #expect(Set(nodes.compactMap { $0["name"] as? String }) == ["api", "worker"])
            #expect(nodes.first { $0["name"] as? String == "api" }?["workers"] as? Int == 0)
            #expect(try await api.get("/metrics").text.contains("tingxie_cluster_nodes{role=\"server\"} 2"))
            // The audio went with the job's end.
            let chunks: Int = try await TestPostgres.value("SELECT count(*)::int8 FROM audio_chunks", in: database)
            #expect(chunks == 0)
        }
    }

    @Test func uploadsSpreadOverTwoAPINodesAreAdmittedExactly() async throws {
        // Room for 5 queued jobs (no node runs any); 12 uploads at once, half to each node.
        try await withTwoNodes(workers: 0, queue: .init(maxQueuedJobs: 5, maxQueuedSeconds: 3600)) { first, second, database in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<12 {
                    let node = index % 2 == 0 ? first : second
                    group.addTask { try await node.post("/v1/jobs", parts: [.file(Upload.wav(seconds: 1))]).status }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .accepted }.count == 5)
            #expect(statuses.filter { $0 == .serviceUnavailable }.count == 7, "\(statuses)")
            let queued: Int = try await TestPostgres.value("SELECT count(*)::int8 FROM jobs WHERE status = 'queued'", in: database)
            #expect(queued == 5)
            // Refused uploads leave no audio behind.
            let chunks: Int = try await TestPostgres.value("SELECT count(DISTINCT job_id)::int8 FROM audio_chunks", in: database)
            #expect(chunks == 5)
        }
    }

    @Test func aCancelOnTheAPINodeStopsTheDecodeOnTheWorkerNode() async throws {
        // One second per piece: the job runs for a long while unless it is stopped.
        let recognizer = FakeRecognizer(delay: .seconds(1))
        try await withTwoNodes(worker: recognizer) { api, worker, _ in
            let id = try await api.submit(Upload.wav(seconds: 120))
            var running = false
            for _ in 0..<200 where !running {
                running = try await api.get("/v1/jobs/\(id)").json["status"] as? String == "running"
                if !running { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(running)
            let canceled = try await api.execute(uri: "/v1/jobs/\(id)", method: .delete)
            #expect(canceled.json["status"] as? String == "canceled")
            // The worker hears of it at once and stops between pieces.
            var stopped = false
            for _ in 0..<100 where !stopped {
                let system = try await worker.get("/v1/system").json
                stopped = (system["queue"] as? [String: Any])?["running"] as? Int == 0
                if !stopped { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(stopped, "the worker node still runs the canceled job")
            let decoded = recognizer.calls.withLock { $0.count }
            try await Task.sleep(for: .seconds(2))
            #expect(recognizer.calls.withLock { $0.count } == decoded, "decoding went on after the cancel")
            #expect(try await worker.get("/v1/jobs/\(id)").json["status"] as? String == "canceled")
        }
    }
}

/// A server whose shared database is not there: up, not ready, still describing itself.
@Suite struct UnreachableDatabaseTests {
    @Test(.timeLimit(.minutes(1))) func theServerIsUpButNotReady() async throws {
        try await withTestServer(testing: .live, setup: { $0.databaseURL = "postgres://tingxie@127.0.0.1:1/tingxie?sslmode=disable" }) { client, _ in
            #expect(try await client.get("/healthz").status == .ok)
            let ready = try await client.get("/readyz")
            #expect(ready.status == .serviceUnavailable && ready.errorCode == "not_ready", "\(ready.text)")
            let upload = try await client.post("/v1/jobs", parts: [.file(Upload.wav(seconds: 1))])
            #expect(upload.status == .serviceUnavailable && upload.errorCode == "not_ready", "\(upload.text)")
            let system = try await client.get("/v1/system")
            #expect(system.status == .ok)
            #expect(system.json["cluster"] == nil && system.json["queue"] != nil)
        }
    }
}

