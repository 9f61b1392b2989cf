import Foundation
import Testing
import TingxieCore

/// The shared queue as it is deployed: separate `tingxie` processes on the real Whisper model,
/// one PostgreSQL, faults injected while the jobs run.
@Suite(.enabled(if: TestPostgres.url != nil && TestData.realModelsAvailable,
                "needs TINGXIE_TEST_POSTGRES_URL, TINGXIE_TEST_DATA and the VAD model; run `make test`"))
struct ClusterProcessTests {
    /// 30 jobs of ~13 s of speech each (three corpus sentences), so that the faults land while
    /// jobs run.
    private static func jobsAudio(_ corpus: URL) throws -> [Data] {
        let sentences = try TestData.transcripts(corpus).map { try TestData.samples(corpus.appendingPathComponent("\($0.id).wav")) }
        return (0..<30).map { index in
            let samples = (0..<3).flatMap { sentences[(index + $0 * 7) % sentences.count] }
            return WAVFixture.file(samples.map(Double.init), sampleRate: 16_000)
        }
    }

    @Test func everyJobSucceedsOnceThroughKilledWorkersADatabaseRestartAndTerminatedBackends() async throws {
        let model = try #require(TestData.whisperBase)
        let database = try await TestPostgres.freshDatabase()
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        // Nothing shared but the database: the audio travels through it.
        let shared = ["--database-url", database, "--lease-seconds", "3", "--threads", "1"]
        var started = 0
        func node(_ command: String, workers: Int) async throws -> ServerProcess {
            started += 1
            return try await ServerProcess(command, dataDirectory: root.appendingPathComponent("node-\(started)"), model: model,
                                           arguments: shared + ["--workers", "\(workers)", "--node-name", "node-\(started)"])
        }
        let api = try await node("serve", workers: 0)
        var workers = [try await node("worker", workers: 1), try await node("worker", workers: 1)]
        defer { ([api] + workers).forEach { $0.stop(signal: SIGKILL) } }

        var ids: [String] = []
        for audio in try Self.jobsAudio(try #require(TestData.corpus)) {
            let reply = try await LiveHTTP.submit(api.baseURL, audio)
            #expect(reply.status == 202, "\(reply.body)")
            ids.append(try #require(reply.json["id"] as? String))
        }

        // Faults at milestones of finished jobs, each once, in this order.
        var faults: [(after: Int, name: String)] = [(2, "kill a worker"), (8, "restart PostgreSQL"),
                                                    (14, "terminate every backend"), (20, "kill another worker")]
        var killed: [ServerProcess] = []
        var jobs: [String: [String: Any]] = [:]
        let deadline = ContinuousClock.now + .seconds(900)
        while ContinuousClock.now < deadline {
            jobs = [:]
            for id in ids {
                // The API node answers 503 while its database is away; ask again next round.
                let reply = try await LiveHTTP.request(api.baseURL + "/v1/jobs/\(id)")
                if reply.status == 200 { jobs[id] = reply.json }
            }
            let finished = jobs.values.filter { ["succeeded", "failed", "canceled"].contains($0["status"] as? String ?? "") }.count
            if finished == ids.count { break }
            if let fault = faults.first, finished >= fault.after {
                faults.removeFirst()
                switch fault.name {
                case "kill a worker", "kill another worker":
                    let victim = workers.removeFirst()
                    victim.stop(signal: SIGKILL)
                    killed.append(victim)
                    workers.append(try await node("worker", workers: 1))
                case "restart PostgreSQL":
                    try TestPostgres.restart()
                default:
                    #expect(try await TestPostgres.terminateBackends(in: database) > 0)
                }
            }
            try await Task.sleep(for: .milliseconds(250))
        }

        #expect(faults.isEmpty, "faults not injected: \(faults.map(\.name))")
        let statuses = ids.map { jobs[$0]?["status"] as? String ?? "unknown" }
        #expect(statuses.allSatisfy { $0 == "succeeded" }, "\(statuses)")
        // Killed workers held jobs: those ran again (two kills, at least two more attempts).
        let attempts = ids.reduce(0) { $0 + (jobs[$1]?["attempts"] as? Int ?? 0) }
        #expect(attempts >= 32, "attempts: \(attempts)")
        let results: Int = try await TestPostgres.value("SELECT count(*)::int8 FROM results", in: database)
        #expect(results == 30, "one result per job")
        let chunks: Int = try await TestPostgres.value("SELECT count(*)::int8 FROM audio_chunks", in: database)
        #expect(chunks == 0, "audio left behind")
        for id in ids {
            let transcript = try await LiveHTTP.request(api.baseURL + "/v1/jobs/\(id)/transcript")
            #expect((transcript.json["text"] as? String)?.count ?? 0 > 20, "\(id): \(transcript.body.prefix(200))")
        }
        // No Tingxie process ended but the two that were killed.
        for process in [api] + workers {
            #expect(process.process.isRunning, "a node exited: \(process.logText.suffix(2000))")
        }
        #expect(killed.count == 2)
        // The API node lists the cluster; a worker's port has the probes and metrics, no API.
        let system = try await LiveHTTP.request(api.baseURL + "/v1/system").json
        let roles = ((system["cluster"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []).compactMap { $0["role"] as? String }
        #expect(roles.filter { $0 == "server" }.count == 1 && roles.filter { $0 == "worker" }.count >= 2, "\(roles)")
        let worker = try #require(workers.last)
        #expect(try await LiveHTTP.request(worker.baseURL + "/readyz").status == 200)
        #expect(try await LiveHTTP.request(worker.baseURL + "/metrics").body.contains("tingxie_workers 1"))
        #expect(try await LiveHTTP.request(worker.baseURL + "/v1/jobs").status == 404)
    }
}
