import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing
import TingxieCore
import TingxieJobs
import TingxieOperations
import TingxieServer

/// The value of one sample in Prometheus text: `name{labels} value`.
func metric(_ text: String, _ series: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(series + " ") }
        .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
}

/// Sample logs of a Python ASR service and of Tingxie.
let sampleLogs = TestData.projectRoot.appendingPathComponent("Tests/TingxieTests/Fixtures/logs")

/// Polls `condition` every 20 ms for at most 10 s.
func waitFor(_ condition: () -> Bool) async throws {
    for _ in 0..<500 where !condition() {
        try await Task.sleep(for: .milliseconds(20))
    }
    #expect(condition(), "condition not met within 10 s")
}

@Suite struct OperationsTests {
    @Test func metricsMoveAsJobsRun() async throws {
        try await withTestServer { client, _ in
            let before = try await client.get("/metrics")
            #expect(before.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(metric(before.text, #"tingxie_jobs_finished_total{status="succeeded"}"#) == 0)
            #expect(metric(before.text, "tingxie_system_memory_total_bytes") == Double(16 << 30))
            #expect(metric(before.text, #"tingxie_gpu_memory_total_bytes{gpu="0"}"#) == Double(8 << 30))

            let id = try await client.submit(Upload.wav(seconds: 2))
            _ = try await client.waitUntilFinished(id)
            _ = try await client.execute(uri: "/v1/jobs", method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "x"))

            let after = try await client.get("/metrics").text
            #expect(metric(after, #"tingxie_jobs_finished_total{status="succeeded"}"#) == 1)
            #expect(metric(after, "tingxie_jobs_started_total") == 1)
            #expect(abs((metric(after, "tingxie_audio_processed_seconds_total") ?? 0) - 2) < 0.01)
            #expect(metric(after, "tingxie_queue_wait_seconds_count") == 1)
            #expect(metric(after, "tingxie_job_rtf_count") == 1)
            #expect(metric(after, "tingxie_queue_jobs") == 0)
            #expect(metric(after, #"tingxie_rejections_total{reason="unsupported_format"}"#) == 1)
            #expect(metric(after, #"tingxie_http_requests_total{route="/v1/jobs/{id}",method="GET",status="200"}"#) ?? 0 >= 1)
            #expect(metric(after, #"tingxie_http_requests_total{route="/v1/jobs",method="POST",status="202"}"#) == 1)
        }
    }

    @Test func everyMetricTheDeployFilesUseIsExported() async throws {
        let deploy = TestData.projectRoot.appendingPathComponent("deploy")
        var used = Set<String>()
        for file in ["prometheus/tingxie-rules.yml", "grafana/tingxie-dashboard.json"] {
            let text = try String(contentsOf: deploy.appendingPathComponent(file), encoding: .utf8)
            for match in text.matches(of: /tingxie_[a-z_]+/) {
                used.insert(String(match.output).replacing(/_(bucket|sum|count)$/, with: ""))
            }
        }
        #expect(used.count >= 15)
        let names = used.sorted()
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: deploy.appendingPathComponent("grafana/tingxie-dashboard.json")))
        #expect((dashboard as? [String: Any])?["panels"] as? [Any] != nil)
        try await withTestServer { client, _ in
            _ = try await client.get("/healthz")
            let exported = try await client.get("/metrics").text
            let missing = names.filter { !exported.contains("# TYPE \($0) ") }
            #expect(missing.isEmpty, "used in deploy/ but not exported: \(missing)")
        }
    }

    @Test func aMemoryAlertOpensThrottlesClosesAndReachesTheWebhook() async throws {
        let bodies = Mutex<[Data]>([])
        @Sendable func received() -> [[String: Any]] {
            bodies.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
        let listener = Router()
        listener.post("/hook") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 16)
            bodies.withLock { $0.append(Data(body.readableBytesView)) }
            return .ok
        }
        try await Application(router: listener).test(.live) { hook in
            let resources = FakeResources()
            try await withTestServer(resources: resources, setup: {
                $0.alerts.interval = .milliseconds(50)
                $0.alertWebhook = URL(string: "http://127.0.0.1:\(hook.port!)/hook")
            }) { client, _ in
                resources.memoryFraction.withLock { $0 = 0.95 }
                try await waitFor { received().count >= 1 }
                let opened = try #require(received().first)
                #expect(opened["event"] as? String == "opened")
                #expect(opened["alert"] as? String == "memory")
                #expect(opened["cause"] as? String == "memory_pressure")
                #expect((opened["message"] as? String)?.contains("95%") == true)
                #expect(try await client.get("/v1/system").json["throttled"] as? Bool == true)
                #expect(metric(try await client.get("/metrics").text, #"tingxie_alert_open{alert="memory"}"#) == 1)
                // While throttled, an upload is accepted but not started.
                let id = try await client.submit()
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await client.get("/v1/jobs/\(id)").json["status"] as? String == "queued")

                resources.memoryFraction.withLock { $0 = 0.5 }
                try await waitFor { received().count >= 2 }
                #expect(received()[1]["event"] as? String == "resolved")
                #expect(try await client.waitUntilFinished(id)["status"] as? String == "succeeded")
                let incidents = try await client.get("/v1/incidents?since=1h").json
                let alert = try #require((incidents["incidents"] as? [[String: Any]])?.first { $0["kind"] as? String == "alert" })
                #expect(alert["cause"] as? String == "memory_pressure")
                #expect(alert["resolved_at"] is String)
                #expect(incidents["open_alerts"] as? Int == 0)
                #expect(incidents["mean_time_to_resolve_s"] is Double)
            }
        }
    }

    @Test func aFailedDecodeIsAClassifiedIncidentInTheAPIAndTheCLI() async throws {
        let recognizer = FakeRecognizer(failure: TingxieError(.decodeError, "the decoder gave up"))
        try await withTestServer(recognizer: recognizer) { client, configuration in
            let response = try await client.post("/v1/jobs", parts: [.file(Upload.wav(), filename: "voicemail.wav")])
            let id = try #require(response.json["id"] as? String)
            let job = try await client.waitUntilFinished(id)
            #expect(job["status"] as? String == "failed")
            #expect((job["error"] as? [String: Any])?["code"] as? String == "decode_error")

            let incidents = try await client.get("/v1/incidents").json
            #expect((incidents["counts"] as? [String: Int]) == ["decode_error": 1])
            let incident = try #require((incidents["incidents"] as? [[String: Any]])?.first)
            #expect(incident["job_id"] as? String == id)
            #expect(incident["filename"] as? String == "voicemail.wav")
            #expect(try await client.get("/v1/incidents?since=yesterday").status == .badRequest)

            // The CLI reads the store while the server holds it.
            let json = try await CLI.run(["incidents", "--data-dir", configuration.dataDirectory.path, "--since", "1h", "--json"])
            #expect(json.status == 0, "\(json.stderr)")
            let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect((parsed?["counts"] as? [String: Int]) == ["decode_error": 1])
            let text = try await CLI.run(["incidents", "--data-dir", configuration.dataDirectory.path])
            #expect(text.stdout.hasPrefix("1 incident\n"))
            #expect(text.stdout.contains("decode_error") && text.stdout.contains("voicemail.wav"))
        }
    }

    @Test func logAnalysisClassifiesPythonTracebacksAndTingxieLogs() throws {
        let names = ["funasr-webui.log", "gunicorn.log", "tingxie.jsonl"]
        let logs = try names.map { (name: $0, text: try String(contentsOf: sampleLogs.appendingPathComponent($0), encoding: .utf8)) }
        let analysis = LogAnalyzer.analyze(logs)
        let counts = Dictionary(grouping: analysis.events, by: \.cause).mapValues(\.count)
        #expect(counts == [.outOfMemory: 3, .tooLong: 2, .decodeError: 2, .timeout: 3, .connectionReset: 1,
                           .workerLost: 1, .memoryPressure: 1])
        // The two OOMs 2 minutes apart are one incident; the one two hours later is another.
        let oom = analysis.incidents.filter { $0.cause == .outOfMemory }
        #expect(oom.map(\.events.count) == [2, 1])
        #expect(oom[0].files == ["board-meeting-2026-11-19.mp3"])
        #expect(oom[0].events[0].message.contains("Tried to allocate 2.10 GiB"))
        #expect(analysis.events.first { $0.cause == .decodeError && $0.source == "tingxie.jsonl" }?.file == "voicemail.amr")
        #expect(analysis.linesRead == 51)
    }

    @Test func logsAnalyzeReportsClassesFilesAndRemedies() async throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: sampleLogs.path).sorted().map { sampleLogs.appendingPathComponent($0).path }
        let json = try await CLI.run(["logs", "analyze", "--json"] + files)
        #expect(json.status == 0, "\(json.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let classes = try #require(report["classes"] as? [String: [String: Any]])
        #expect(classes["out_of_memory"]?["events"] as? Int == 3)
        #expect(classes["out_of_memory"]?["incidents"] as? Int == 2)
        #expect(classes["too_long"]?["files"] as? [String] == ["all-hands-q3.m4a", "board-meeting-2026-11-19.mp3"])
        #expect((classes["too_long"]?["remedy"] as? String)?.contains("--max-duration") == true)
        #expect(classes["out_of_memory"]?["first_seen"] as? String == "2026-11-20T14:03:12Z")

        let text = try await CLI.run(["logs", "analyze"] + files)
        #expect(text.stdout.hasPrefix("51 lines read; 13 events in 12 incidents"))
        #expect(text.stdout.contains("what prevents each class in Tingxie"))
    }
}
