import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TingxieCore
import TingxieJobs
import TingxieOperations
import TingxieServer

/// A processor whose behaviour per attempt the test decides.
final class ScriptedProcessor: JobProcessor {
    enum Step: Sendable {
        case succeed(after: Duration)
        case fail(TingxieError)
        /// Runs until cancelled.
        case hang
    }

    let steps: @Sendable (Job) -> Step
    let started = Mutex<[String]>([])
    let sawCancel = Mutex(0)

    init(_ steps: @escaping @Sendable (Job) -> Step) {
        self.steps = steps
    }

    func process(_ job: Job, audio: URL, progress: @escaping @Sendable (Double) -> Void) async throws -> Transcript {
        started.withLock { $0.append(job.id) }
        switch steps(job) {
        case .succeed(let duration):
            progress(0.5)
            try await sleepNoticingCancel(duration)
            return Transcript(text: "第\(job.attempts)次", durationS: job.durationS, language: "zh", model: "scripted",
                              segments: [], processingS: duration.seconds)
        case .fail(let error):
            throw error
        case .hang:
            try await sleepNoticingCancel(.seconds(3600))
            throw TingxieError(.internalError, "unreachable")
        }
    }

    private func sleepNoticingCancel(_ duration: Duration) async throws {
        do {
            try await Task.sleep(for: duration)
        } catch {
            sawCancel.withLock { $0 += 1 }
            throw TingxieError(.canceled, "transcription canceled")
        }
    }

    var startCount: Int { started.withLock { $0.count } }
}

/// The job stores that the queue's conformance tests run against.
enum StoreKind: String, CaseIterable, Sendable {
    /// The embedded store, held by one process.
    case sqlite
    /// The shared store, on the private PostgreSQL that `make test` starts.
    case postgres
}

/// A store and an audio folder in a temporary directory, and a pool to run over them.
struct QueueFixture {
    let root: URL
    let kind: StoreKind
    let store: any JobStore
    /// The admission gauge the store reports to.
    let gauge: QueueGauge
    let audio: AudioStore
    private let stopStore: @Sendable () -> Void

    /// - Note: cancels the test (reported as skipped) when `kind` needs a PostgreSQL server that is not there.
    init(_ kind: StoreKind) async throws {
        self.kind = kind
        root = try TestData.temporaryDirectory()
        switch kind {
        case .sqlite:
            let sqlite = try SQLiteJobStore(path: root.appendingPathComponent("jobs.sqlite"))
            (store, gauge) = (sqlite, sqlite.gauge)
            stopStore = {}
        case .postgres:
            let running = try await TestPostgres.store()
            (store, gauge) = (running.store, running.store.gauge)
            stopStore = running.stop
        }
        audio = try AudioStore(directory: root)
    }

    /// The lease of a claim made by a process that then died. A store held alone gives such jobs
    /// back at start-up whatever their lease; a shared one must wait for the lease to run out.
    var deadProcessLease: Duration { kind == .sqlite ? .seconds(3600) : .milliseconds(500) }

    /// Queues a job with an (empty) audio file.
    func add(durationS: Double = 10, maxAttempts: Int = 3) async throws -> Job {
        let job = Job(id: Job.newID(), filename: "x.wav", bytes: 1, durationS: durationS, maxAttempts: maxAttempts)
        FileManager.default.createFile(atPath: audio.url(for: job.id).path, contents: Data([0]))
        try await store.enqueue([job], settling: nil)
        return job
    }

    /// Runs a pool until `until` holds (checked every 20 ms, at most `limit`), then shuts it
    /// down gracefully and waits for it.
    func run(_ processor: any JobProcessor, _ configuration: WorkerPool.Configuration, limit: Duration = .seconds(20),
             until: @escaping @Sendable () async throws -> Bool) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let pool = WorkerPool(store: store, processor: processor, audio: audio, configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [pool], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let deadline = ContinuousClock.now + limit
            while try await !until(), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    func status(_ id: String) async throws -> Job.Status? {
        try await store.job(id: id)?.status
    }

    func remove() {
        stopStore()
        try? FileManager.default.removeItem(at: root)
    }
}

/// The conformance suite: every store behaves the same under these tests.
@Suite struct JobQueueTests {
    @Test(arguments: StoreKind.allCases) func onlyTheLeaseHolderCanStoreAResult(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let job = try await fixture.add()
        let claimed = try #require(try await fixture.store.claim(owner: "first", lease: .milliseconds(50)))
        #expect(claimed.id == job.id && claimed.attempts == 1)
        try await Task.sleep(for: .milliseconds(80))
        #expect(try await fixture.store.recoverExpiredLeases().map(\.id) == [job.id])
        #expect(try await fixture.store.claim(owner: "second", lease: .seconds(30))?.attempts == 2)

        let transcript = Transcript(text: "好", durationS: 1, language: "zh", model: "m", segments: [], processingS: 0.1)
        #expect(try await fixture.store.complete(id: job.id, owner: "first", transcript: transcript) == false)
        #expect(try await fixture.store.heartbeat(id: job.id, owner: "first", progress: 0.5, lease: .seconds(30)) == false)
        #expect(try await fixture.store.complete(id: job.id, owner: "second", transcript: transcript))
        #expect(try await fixture.store.complete(id: job.id, owner: "second", transcript: transcript) == false)
        #expect(try await fixture.store.transcript(id: job.id)?.text == "好")
        #expect(try await fixture.status(job.id) == .succeeded)
    }

    @Test(arguments: StoreKind.allCases) func aJobLeftRunningByADeadProcessIsRunAgainAndSucceedsOnce(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let job = try await fixture.add()
        // A process claimed the job and was killed before the pool started.
        _ = try await fixture.store.claim(owner: "dead-process", lease: fixture.deadProcessLease)
        let processor = ScriptedProcessor { _ in .succeed(after: .milliseconds(10)) }
        try await fixture.run(processor, .init(workers: 1, heartbeat: .milliseconds(100), sweepInterval: .milliseconds(100))) {
            try await fixture.status(job.id) == .succeeded
        }
        let done = try #require(try await fixture.store.job(id: job.id))
        #expect(done.status == .succeeded)
        #expect(done.attempts == 2)
        #expect(try await fixture.store.transcript(id: job.id)?.text == "第2次")
        #expect(!FileManager.default.fileExists(atPath: fixture.audio.url(for: job.id).path))
    }

    @Test(arguments: StoreKind.allCases) func anExpiredLeaseIsSweptBackIntoTheQueue(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let job = try await fixture.add()
        let claimedAt = Mutex<ContinuousClock.Instant?>(nil)
        let sweptAfter = Mutex<Duration?>(nil)
        // A pool without workers only sweeps. Once it runs (its start-up recovery is over), a
        // worker elsewhere claims the job and dies.
        try await fixture.run(ScriptedProcessor { _ in .hang }, .init(workers: 0, sweepInterval: .milliseconds(50))) {
            guard let claimed = claimedAt.withLock({ $0 }) else {
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await fixture.store.claim(owner: "dead-worker", lease: .milliseconds(300))?.id == job.id)
                claimedAt.withLock { $0 = .now }
                return false
            }
            guard try await fixture.status(job.id) == .queued else { return false }
            sweptAfter.withLock { $0 = .now - claimed }
            return true
        }
        let after = try #require(sweptAfter.withLock { $0 })
        #expect(after >= .milliseconds(300), "requeued before the lease ran out")
        let requeued = try #require(try await fixture.store.job(id: job.id))
        #expect(requeued.status == .queued && requeued.leaseOwner == nil && requeued.attempts == 1)
    }

    @Test(arguments: StoreKind.allCases) func aLiveLongJobKeepsItsLease(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let job = try await fixture.add()
        let processor = ScriptedProcessor { _ in .succeed(after: .seconds(7)) }
        // The job runs over twice as long as its lease; heartbeats must keep it. (The margins
        // are wide because the whole suite shares 2 cores while this runs.)
        try await fixture.run(processor, .init(workers: 1, lease: .seconds(3), heartbeat: .milliseconds(250),
                                               sweepInterval: .milliseconds(50))) {
            try await fixture.status(job.id) == .succeeded
        }
        #expect(try await fixture.store.job(id: job.id)?.attempts == 1)
        #expect(processor.startCount == 1)
    }

    @Test(arguments: StoreKind.allCases) func transientFailuresAreRetriedAndBadAudioIsNot(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let flaky = try await fixture.add()
        let bad = try await fixture.add()
        let hopeless = try await fixture.add(maxAttempts: 2)
        let processor = ScriptedProcessor { job in
            if job.id == bad.id { return .fail(TingxieError(.invalidAudio, "x.wav: not audio")) }
            if job.id == hopeless.id { return .fail(TingxieError(.ioError, "disk trouble")) }
            return job.attempts == 1 ? .fail(TingxieError(.ioError, "disk trouble")) : .succeed(after: .zero)
        }
        try await fixture.run(processor, .init(workers: 2, sweepInterval: .milliseconds(50), retryBackoff: .milliseconds(100))) {
            for id in [flaky.id, bad.id, hopeless.id] where try await fixture.status(id)?.isTerminal != true {
                return false
            }
            return true
        }
        #expect(try await fixture.store.job(id: flaky.id)?.status == .succeeded)
        #expect(try await fixture.store.job(id: flaky.id)?.attempts == 2)
        let badJob = try #require(try await fixture.store.job(id: bad.id))
        #expect(badJob.status == .failed && badJob.attempts == 1 && badJob.error?.code == .invalidAudio)
        let hopelessJob = try #require(try await fixture.store.job(id: hopeless.id))
        #expect(hopelessJob.status == .failed && hopelessJob.attempts == 2 && hopelessJob.error?.message == "disk trouble")
    }

    @Test(arguments: StoreKind.allCases) func aJobOverItsTimeLimitFails(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let job = try await fixture.add(durationS: 1)
        let processor = ScriptedProcessor { _ in .hang }
        try await fixture.run(processor, .init(workers: 1, timeoutPerAudioSecond: 0.2, minimumTimeout: .milliseconds(200))) {
            try await fixture.status(job.id) == .failed
        }
        let failed = try #require(try await fixture.store.job(id: job.id))
        #expect(failed.error?.code == .timeout)
        #expect(failed.error?.message.contains("limit of 0.4 s for 1.0 s of audio") == true)
        #expect(processor.sawCancel.withLock { $0 } == 1)
    }

    @Test(arguments: StoreKind.allCases) func shutdownRequeuesWhatIsStillRunningAfterTheGracePeriod(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let quick = try await fixture.add()
        let slow = try await fixture.add()
        let processor = ScriptedProcessor { job in job.id == quick.id ? .succeed(after: .milliseconds(300)) : .hang }
        try await fixture.run(processor, .init(workers: 2, shutdownGrace: .seconds(5))) {
            processor.startCount == 2
        }
        // Shutdown began with both running: the quick one finished within the grace period,
        // the slow one was stopped and given back without using up an attempt.
        #expect(try await fixture.status(quick.id) == .succeeded)
        let requeued = try #require(try await fixture.store.job(id: slow.id))
        #expect(requeued.status == .queued)
        #expect(requeued.attempts == 0)
        #expect(FileManager.default.fileExists(atPath: fixture.audio.url(for: slow.id).path))
    }

    @Test(arguments: StoreKind.allCases) func jobsFoundRunningAtStartAreRequeuedAndPoisonJobsGiveUp(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let orphan = try await fixture.add()
        _ = try await fixture.store.claim(owner: "previous-process", lease: fixture.deadProcessLease)
        let poison = try await fixture.add(maxAttempts: 1)
        _ = try await fixture.store.claim(owner: "previous-process-2", lease: fixture.deadProcessLease)
        let live = try await fixture.add()
        _ = try await fixture.store.claim(owner: "live-node", lease: .seconds(3600))
        if kind == .postgres { try await Task.sleep(for: fixture.deadProcessLease + .milliseconds(300)) }

        let recovered = try await fixture.store.recoverAtStart()
        #expect(recovered.first { $0.id == poison.id }?.status == .failed)
        #expect(recovered.first { $0.id == orphan.id }?.status == .queued)
        #expect(try await fixture.store.job(id: poison.id)?.error?.message.contains("gave up after 1 attempts") == true)
        // The embedded store is this process's alone, so whatever runs there is an orphan; in a
        // shared store a live lease is another node's work and stays with it.
        #expect(try await fixture.status(live.id) == (kind == .sqlite ? .queued : .running))
    }

    @Test(arguments: StoreKind.allCases) func alertsLeftOpenByAPreviousProcessAreClosedAtStart(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        _ = try await fixture.store.openAlert(cause: .memoryPressure, message: "memory is 95% used")
        #expect(IncidentSummary(try await fixture.store.incidents(since: nil, limit: 10)).openAlerts == 1)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let pool = WorkerPool(store: fixture.store, processor: ScriptedProcessor { _ in .hang }, audio: fixture.audio,
                              configuration: .init(workers: 0), logger: logger)
        let monitor = ResourceMonitor(store: fixture.store, pool: pool, source: FakeResources(), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [monitor], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<250 where IncidentSummary(try await fixture.store.incidents(since: nil, limit: 10)).openAlerts > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let incidents = try await fixture.store.incidents(since: nil, limit: 10)
        #expect(incidents.count == 1 && incidents[0].resolvedAt != nil)
    }

    @Test(arguments: StoreKind.allCases) func admissionIsExact(_ kind: StoreKind) async throws {
        let fixture = try await QueueFixture(kind)
        defer { fixture.remove() }
        let gauge = QueueGauge(limits: .init(maxQueuedJobs: 5, maxQueuedSeconds: 100))
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<12 {
                group.addTask { (try? gauge.reserve()) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 5)

        let store = fixture.store
        let first = try fixture.gauge.reserve()
        try fixture.gauge.add(seconds: 60, to: first)
        try await store.enqueue([Job(id: Job.newID(), filename: nil, bytes: 1, durationS: 60)], settling: first)
        #expect(fixture.gauge.stats.queuedJobs == 1)
        #expect(fixture.gauge.stats.queuedSeconds == 60)
        // The settled reservation no longer counts: exactly the store's queue does.
        let second = try fixture.gauge.reserve()
        #expect(throws: TingxieError.self) { try fixture.gauge.add(seconds: 100 * 3600, to: second) }
        fixture.gauge.release(second)
        fixture.gauge.release(second)
        #expect(throws: Never.self) { _ = try fixture.gauge.reserve(jobs: 999) }
    }
}
