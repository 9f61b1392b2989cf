import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TingxieCore

/// Turns a job's audio into a transcript.
public protocol JobProcessor: Sendable {
    /// - Parameter progress: called with the fraction (0...1) done.
    /// - Throws: `TingxieError`; stops soon after the task is cancelled.
    func process(_ job: Job, audio: URL, progress: @escaping @Sendable (Double) -> Void) async throws -> Transcript
}

/// A fixed number of workers that claim jobs from the store, one job each at a time.
///
/// Each running job holds a lease that a heartbeat renews; a sweep requeues jobs whose lease
/// ran out (their worker is gone). Results are stored fenced by a per-claim owner token, so a
/// job that was taken over can never store a second result. Invalid audio fails at once;
/// other failures are retried with exponential backoff. Each job has a timeout scaled to its
/// audio. On graceful shutdown no new job is claimed, running ones get a grace period, and
/// whatever is still running then is given back to the queue.
public final class WorkerPool: Service {
    public struct Configuration: Sendable {
        /// Jobs run at once; 0 runs no jobs (the server only accepts them).
        public var workers: Int
        public var lease: Duration
        public var heartbeat: Duration
        /// How often expired leases are looked for, and idle workers look for due jobs.
        public var sweepInterval: Duration
        /// First retry delay; doubled for each further attempt.
        public var retryBackoff: Duration
        /// A job may run for `minimumTimeout` plus this many seconds per second of audio.
        public var timeoutPerAudioSecond: Double
        public var minimumTimeout: Duration
        /// How long running jobs may go on after shutdown begins before they are requeued.
        public var shutdownGrace: Duration

        public init(workers: Int = 1, lease: Duration = .seconds(30), heartbeat: Duration = .seconds(5),
                    sweepInterval: Duration = .seconds(2), retryBackoff: Duration = .seconds(5),
                    timeoutPerAudioSecond: Double = 1, minimumTimeout: Duration = .seconds(300),
                    shutdownGrace: Duration = .seconds(30)) {
            self.workers = max(0, workers)
            self.lease = lease
            self.heartbeat = heartbeat
            self.sweepInterval = sweepInterval
            self.retryBackoff = retryBackoff
            self.timeoutPerAudioSecond = timeoutPerAudioSecond
            self.minimumTimeout = minimumTimeout
            self.shutdownGrace = shutdownGrace
        }

        /// The longest `job` may run.
        public func timeout(for job: Job) -> Duration {
            minimumTimeout + .seconds(job.durationS * timeoutPerAudioSecond)
        }
    }

    /// What the pool reports to its observer (metrics).
    public enum Event: Sendable {
        /// A worker took the job from the queue.
        case started(Job)
        /// The job ended: succeeded (with its transcript), failed or canceled, after `running` of work.
        case finished(Job, Job.Status, Transcript?, running: Duration)
    }

    private enum Signal: Sendable { case wake, finished, stop }
    /// Why a running job was stopped before it finished.
    private enum StopReason: Sendable { case canceled, leaseLost, timeout, shutdown }
    /// The job was stopped for the reason in its `Running`.
    private struct Stopped: Error {}

    /// A job being worked on: how far it got, whether it was asked to stop and why.
    private final class Running: Sendable {
        private struct Stop {
            var reason: StopReason?
            var waiter: CheckedContinuation<Void, Never>?
        }

        let progress = Mutex(0.0)
        private let state = Mutex(Stop())

        var reason: StopReason? { state.withLock { $0.reason } }

        /// Asks the job to stop; the first reason given is kept.
        func stop(_ why: StopReason) {
            let waiter = state.withLock { state in
                if state.reason == nil { state.reason = why }
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }

        /// Returns once `stop` is called, or when the calling task is cancelled.
        func waitForStop() async {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let now = state.withLock { state in
                        if state.reason != nil || Task.isCancelled { return true }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                state.withLock { state in
                    defer { state.waiter = nil }
                    return state.waiter
                }?.resume()
            }
        }
    }

    public let configuration: Configuration
    private let store: any JobQueue
    private let processor: any JobProcessor
    private let audio: AudioStore
    private let sharedAudio: (any SharedAudio)?
    private let logger: Logger
    private let observer: @Sendable (Event) -> Void
    private let events: AsyncStream<Signal>
    private let eventSink: AsyncStream<Signal>.Continuation
    private let throttled = Atomic<Bool>(false)
    /// Running work by claim (owner token), not by job: a job whose lease was lost and that was
    /// claimed again here runs twice for a while, and the old run's cleanup must not touch the new.
    private let running = Mutex<[String: (job: String, handle: Running)]>([:])
    private let stopping = Atomic<Bool>(false)
    /// Whether the service group itself has told the pool to shut down.
    private let notified = Atomic<Bool>(false)
    private let claims = Atomic<Int>(0)
    private let poolID = Job.newID().prefix(8)

    /// - Parameter sharedAudio: where jobs' audio is fetched from when this node has no copy.
    public init(store: any JobQueue, processor: any JobProcessor, audio: AudioStore, sharedAudio: (any SharedAudio)? = nil,
                configuration: Configuration, logger: Logger, observer: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.store = store
        self.processor = processor
        self.audio = audio
        self.sharedAudio = sharedAudio
        self.configuration = configuration
        self.logger = logger
        self.observer = observer
        (events, eventSink) = AsyncStream.makeStream(of: Signal.self)
    }

    /// While throttled, workers finish what they run but claim nothing new (memory pressure).
    public func setThrottled(_ value: Bool) {
        guard throttled.exchange(value, ordering: .relaxed) != value else { return }
        logger.warning(value ? "workers throttled: no new jobs are claimed" : "workers no longer throttled")
        if !value { eventSink.yield(.wake) }
    }

    public var isThrottled: Bool { throttled.load(ordering: .relaxed) }

    /// Tells idle workers that a job was queued.
    public func wake() {
        eventSink.yield(.wake)
    }

    /// Stops a running job that was canceled in the store. Returns whether it was running here.
    @discardableResult
    public func stopCanceled(id: String) -> Bool {
        let handles = running.withLock { $0.values.filter { $0.job == id }.map(\.handle) }
        for handle in handles { handle.stop(.canceled) }
        return !handles.isEmpty
    }

    /// Stops claiming jobs at once and gives running ones `shutdownGrace` before they are
    /// requeued. Called as soon as the server begins to shut down, ahead of everything else
    /// that drains (HTTP, webhooks); the pool's own graceful shutdown then waits for the rest.
    public func beginShutdown() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        eventSink.yield(.stop)
    }

    /// Whether the pool has stopped claiming jobs (shutdown began).
    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Jobs running in this pool now.
    public var runningCount: Int { running.withLock { $0.count } }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.recoverAtStart() }
        // Jobs already queued start without waiting for the first tick.
        eventSink.yield(.wake)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.tick() }
                var busy = 0
                for await event in events {
                    switch event {
                    case .finished: busy -= 1
                    case .stop:
                        let grace = configuration.shutdownGrace
                        group.addTask {
                            try? await Task.sleep(for: grace)
                            self.stopAll(.shutdown)
                        }
                    case .wake: break
                    }
                    if stopping.load(ordering: .relaxed) {
                        if busy == 0 { break }
                        continue
                    }
                    while busy < configuration.workers, !isThrottled, let (job, owner) = await claimNext() {
                        busy += 1
                        startJob(job, owner: owner, in: &group)
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.notified.store(true, ordering: .relaxed)
            self.beginShutdown()
        }
        stopAll(.shutdown)
        // Told early (`beginShutdown`): a service that returned before its own turn would end
        // the group abruptly, so the pool stays until its turn comes.
        if !notified.load(ordering: .relaxed) { try? await gracefulShutdown() }
    }

    /// Gives back the jobs that no live worker holds before any is claimed, trying again with
    /// backoff while the store cannot be reached.
    private func recoverAtStart() async {
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                for job in try await store.recoverAtStart() {
                    logger.warning("job requeued after restart", metadata: ["job": "\(job.id)", "status": "\(job.status)"])
                    recovered(job)
                }
                return
            } catch {
                logger.error("cannot look for jobs left running; trying again", metadata: ["error": "\(error)", "retry_in_s": "\(delay.seconds)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
    }

    private func startJob(_ job: Job, owner: String, in group: inout TaskGroup<Void>) {
        let handle = Running()
        running.withLock { $0[owner] = (job.id, handle) }
        observer(.started(job))
        group.addTask {
            await self.execute(job, owner: owner, handle: handle)
            self.running.withLock { _ = $0.removeValue(forKey: owner) }
            self.eventSink.yield(.finished)
        }
    }

    /// Claims the next due job under a new owner token (one per claim, so a job taken over and
    /// claimed again by this same pool is still told apart from its earlier run).
    private func claimNext() async -> (Job, String)? {
        let owner = "\(poolID)-\(claims.add(1, ordering: .relaxed).newValue)"
        do {
            return try await store.claim(owner: owner, lease: configuration.lease).map { ($0, owner) }
        } catch {
            logger.error("cannot claim a job: \(error)")
            return nil
        }
    }

    /// Wakes the dispatcher now and then (for retries coming due) and sweeps expired leases.
    private func tick() async {
        var sinceSweep = Duration.zero
        let interval = configuration.sweepInterval
        while (try? await Task.sleep(for: interval)) != nil {
            sinceSweep += interval
            do {
                for job in try await store.recoverExpiredLeases() {
                    logger.warning("job's lease expired", metadata: ["job": "\(job.id)", "status": "\(job.status)"])
                    recovered(job)
                }
            } catch {
                logger.error("lease sweep failed: \(error)")
            }
            eventSink.yield(.wake)
        }
    }

    /// A job taken back from a dead worker: requeued, or failed when out of attempts.
    private func recovered(_ job: Job) {
        guard job.status.isTerminal else { return }
        audio.remove(job.id)
        observer(.finished(job, job.status, nil, running: .zero))
    }

    private func stopAll(_ reason: StopReason) {
        for entry in running.withLock({ Array($0.values) }) { entry.handle.stop(reason) }
    }

    // MARK: One job

    private func execute(_ claimed: Job, owner: String, handle: Running) async {
        var log = logger
        log[metadataKey: "job"] = "\(claimed.id)"
        if let filename = claimed.filename { log[metadataKey: "filename"] = "\(filename)" }
        log.info("job started", metadata: ["attempt": "\(claimed.attempts)", "duration_s": "\(claimed.durationS)"])
        let started = ContinuousClock.now
        let timeout = configuration.timeout(for: claimed)
        let outcome: Result<Transcript, any Error> = await withTaskGroup(of: Result<Transcript, any Error>?.self) { group in
            group.addTask {
                do {
                    let url = try await self.localAudio(of: claimed)
                    return .success(try await self.processor.process(claimed, audio: url) { value in
                        handle.progress.withLock { $0 = max($0, value) }
                    })
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                while (try? await Task.sleep(for: self.configuration.heartbeat)) != nil {
                    let fraction = handle.progress.withLock { $0 }
                    let held = (try? await self.store.heartbeat(id: claimed.id, owner: owner, progress: fraction,
                                                                lease: self.configuration.lease)) ?? true
                    if !held {
                        // Canceled, perhaps through another node; else taken over after the lease ran out.
                        let now = try? await self.store.job(id: claimed.id)
                        handle.stop(now?.status == .canceled ? .canceled : .leaseLost)
                        return nil
                    }
                }
                return nil
            }
            group.addTask {
                guard (try? await Task.sleep(for: timeout)) != nil else { return nil }
                handle.stop(.timeout)
                return nil
            }
            // Stops (cancel, timeout, lost lease, shutdown) end the wait for the decode; the
            // decode is then cancelled with the rest of the group.
            group.addTask {
                await handle.waitForStop()
                return handle.reason == nil ? nil : .failure(Stopped())
            }
            var first: Result<Transcript, any Error>?
            while first == nil, let next = await group.next() {
                first = next
            }
            group.cancelAll()
            // The decode's own answer wins unless the job was stopped for a reason of ours.
            while let next = await group.next() {
                if case .some(.success) = next { first = next }
            }
            return first ?? .failure(CancellationError())
        }
        if let ended = await settle(claimed, owner: owner, outcome: outcome, reason: handle.reason, timeout: timeout, log: log) {
            observer(.finished(claimed, ended, try? outcome.get(), running: .now - started))
        }
        // The shared store keeps the audio for whoever runs the job next; a later run of the
        // same job on this node (after this one lost its lease) keeps its copy.
        if sharedAudio != nil, !runsAgain(claimed.id, besides: owner) { audio.remove(claimed.id) }
    }

    /// Whether another claim of job `id` than `owner`'s runs in this pool now.
    private func runsAgain(_ id: String, besides owner: String) -> Bool {
        running.withLock { $0.contains { $0.key != owner && $0.value.job == id } }
    }

    /// The job's audio as a local file: this node's copy, else one fetched from the shared store.
    private func localAudio(of job: Job) async throws -> URL {
        let url = audio.url(for: job.id)
        guard let sharedAudio, !FileManager.default.fileExists(atPath: url.path) else { return url }
        guard try await sharedAudio.loadAudio(id: job.id, to: audio.partialURL(for: job.id)) else {
            audio.remove(job.id)
            throw TingxieError(.fileNotFound, "the job's audio is no longer in the shared store")
        }
        try audio.commit(job.id)
        return url
    }

    /// Records how the job ended. Returns its final status, or `nil` when it goes on (requeued,
    /// retried, or taken over by another worker).
    private func settle(_ job: Job, owner: String, outcome: Result<Transcript, any Error>, reason: StopReason?,
                        timeout: Duration, log: Logger) async -> Job.Status? {
        do {
            switch (outcome, reason) {
            case (.success(let transcript), _) where reason != .canceled && reason != .leaseLost:
                guard try await persist({ try await self.store.complete(id: job.id, owner: owner, transcript: transcript) }) else {
                    log.warning("job no longer held by this worker; result discarded")
                    return nil
                }
                log.info("job succeeded", metadata: ["rtf": "\(transcript.rtf)"])
                audio.remove(job.id)
                return .succeeded
            case (_, .canceled?):
                log.info("job canceled")
                audio.remove(job.id)
                return .canceled
            case (_, .leaseLost?):
                log.warning("job's lease was lost; another worker owns it now")
            case (_, .shutdown?):
                try await persist { try await self.store.release(id: job.id, owner: owner) }
                log.info("job requeued at shutdown")
            case (_, .timeout?):
                let error = TingxieError(.timeout, String(format: "the job took longer than its limit of %.1f s for %.1f s of audio", timeout.seconds, job.durationS))
                guard try await persist({ try await self.store.fail(id: job.id, owner: owner, error: error, retryAt: nil) }) else {
                    log.warning("job timed out but is no longer held by this worker; left to its new owner")
                    return nil
                }
                log.error("job timed out", metadata: ["code": "timeout"])
                audio.remove(job.id)
                return .failed
            case (.failure(let error), nil):
                return try await fail(job, owner: owner, error: error, log: log)
            case (.success, _):
                break
            }
        } catch {
            log.error("cannot record the job's outcome: \(error)")
        }
        return nil
    }

    /// Records an outcome, trying again while the store is away (a database restarting) for
    /// up to a lease's length, so that a moment's outage does not throw the work away. Safe to
    /// repeat: the write is fenced by the claim's owner token.
    private func persist<T: Sendable>(_ write: @Sendable () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + configuration.lease
        var delay = Duration.milliseconds(200)
        while true {
            do {
                return try await write()
            } catch let error as TingxieError where error.code == .notReady && ContinuousClock.now + delay < deadline {
                logger.warning("cannot record a job's outcome yet; trying again", metadata: ["error": "\(error.message)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func fail(_ job: Job, owner: String, error: any Error, log: Logger) async throws -> Job.Status? {
        let tingxieError = error as? TingxieError ?? TingxieError(.internalError, "\(error)")
        let permanent: Set<TingxieError.Code> = [.invalidAudio, .unsupportedFormat, .decodeError, .audioTruncated, .audioCorrupt,
                                                 .fileNotFound, .invalidArgument]
        if !permanent.contains(tingxieError.code), job.attempts < job.maxAttempts {
            let delay = configuration.retryBackoff * (1 << min(job.attempts - 1, 10))
            if try await persist({ try await self.store.fail(id: job.id, owner: owner, error: tingxieError, retryAt: Date().addingTimeInterval(delay.seconds)) }) {
                log.warning("job failed; will retry", metadata: ["error": "\(tingxieError.message)", "retry_in_s": "\(delay.seconds)"])
            } else {
                log.warning("job failed but is no longer held by this worker; left to its new owner")
            }
            return nil
        }
        // A job this worker no longer holds is another's now: not failed, its audio kept.
        guard try await persist({ try await self.store.fail(id: job.id, owner: owner, error: tingxieError, retryAt: nil) }) else {
            log.warning("job failed but is no longer held by this worker; left to its new owner")
            return nil
        }
        log.error("job failed", metadata: ["code": "\(tingxieError.code.rawValue)", "error": "\(tingxieError.message)"])
        audio.remove(job.id)
        return .failed
    }
}
