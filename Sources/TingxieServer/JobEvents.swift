import Foundation
import Hummingbird
import NIOCore
import TingxieCore
import TingxieJobs

/// Server-sent events as OpenAI's SDK and browsers' `EventSource` read them: each event one
/// `data:` line of JSON with a `type`, then a blank line.
enum EventStream {
    static let headers: HTTPFields = [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"]

    /// An `error` event in the API's error shape (OpenAI's SDK raises it as an `APIError`).
    struct ErrorEvent: Encodable {
        var type = "error"
        var error: [String: String?]

        init(_ error: APIError, style: APIError.Style) {
            self.error = error.fields(style: style)
        }
    }

    static func write(_ events: [any Encodable], to writer: inout any ResponseBodyWriter) async throws {
        guard !events.isEmpty else { return }
        var text = ""
        for event in events {
            text += "data: " + String(decoding: try JSONResponse.encoder.encode(event), as: UTF8.self) + "\n\n"
        }
        try await writer.write(ByteBuffer(string: text))
    }

    /// A comment line: keeps proxies from closing a quiet stream and finds clients that left.
    static func keepAlive(to writer: inout any ResponseBodyWriter) async throws {
        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
    }
}

extension JobService {
    /// Follows job `id` until it ends: `update` gets the job as it is and the segments
    /// recognised since the last call (while a worker of this process runs it; at the end, the
    /// stored transcript's remaining ones), each time the job changes (`signals`) and otherwise
    /// once every `followerFallbackTick`.
    /// - Parameter departure: the client's connection; its leaving ends the following at once.
    /// - Returns: the finished job, and its transcript when it succeeded.
    /// - Throws: 404 for an unknown job; `.timeout` after `timeout`; `ClientLeft`; what `update` throws.
    func follow(_ id: String, timeout: Duration?, departure: DepartureWatcher? = nil,
                update: (Job, ArraySlice<Transcript.Segment>) async throws -> Void) async throws -> (job: Job, transcript: Transcript?) {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var cursor = RunningSegments.Cursor()
        let current = try await signals.subscribe(to: id) { ticket in
            departure?.onLeave { ticket.signal() }
            var current = try await job(id, for: .server)
            while !current.status.isTerminal {
                if departure?.hasLeft == true { throw ClientLeft() }
                try await update(current, engine.running.next(of: id, after: &cursor))
                if let deadline, ContinuousClock.now >= deadline {
                    throw TingxieError(.timeout, "job \(id) did not finish in time; it goes on: GET /v1/jobs/\(id)")
                }
                try Task.checkCancellation()
                await ticket.wait(atMost: deadline.map { min($0 - .now, Self.followerFallbackTick) } ?? Self.followerFallbackTick)
                current = try await job(id, for: .server)
            }
            return current
        }
        guard current.status == .succeeded else {
            try await update(current, [])
            return (current, nil)
        }
        // The stored transcript is the truth: the rest of its segments.
        let transcript = try await transcript(of: current)
        try await update(current, transcript.segments.dropFirst(cursor.sent))
        return (current, transcript)
    }
}

/// `GET /v1/jobs/{id}/events`: the job's progress and each segment as it is recognised, then
/// the finished job.
enum JobEvents {
    struct Progress: Encodable {
        var type = "job.progress"
        var status: String
        var progress: Double
    }

    struct Segment: Encodable {
        var type = "job.segment"
        var segment: Transcript.Segment
    }

    struct Done: Encodable {
        var type = "job.done"
        var job: JobDTO
    }

    /// Quiet streams get a keep-alive comment this often.
    static let keepAliveInterval: Duration = .seconds(15)

    /// The events of `job` as a response body; a client that leaves ends the following within
    /// the interval, not at the next keep-alive.
    static func response(for job: Job, service: JobService, context: APIRequestContext) throws -> Response {
        let place = try service.followerPlace()
        let body = ResponseBody { writer in
            defer { withExtendedLifetime(place) {} }
            var reported: (Job.Status, Double)?
            var lastWrite = ContinuousClock.now
            do {
                let (finished, _) = try await context.watchingDeparture { watcher in
                    try await service.follow(job.id, timeout: nil, departure: watcher) { current, segments in
                        var events: [any Encodable] = []
                        if reported.map({ $0 != (current.status, current.progress) }) ?? true {
                            reported = (current.status, current.progress)
                            events.append(Progress(status: current.status.rawValue, progress: JobDTO.rounded(current.progress)))
                        }
                        events += segments.map { Segment(segment: $0) }
                        if !events.isEmpty {
                            try await EventStream.write(events, to: &writer)
                            lastWrite = .now
                        } else if ContinuousClock.now - lastWrite >= keepAliveInterval {
                            try await EventStream.keepAlive(to: &writer)
                            lastWrite = .now
                        }
                    }
                }
                try await EventStream.write([Done(job: JobDTO(finished))], to: &writer)
            } catch let error as TingxieError {
                try await EventStream.write([EventStream.ErrorEvent(APIError(error), style: .tingxie)], to: &writer)
            } catch is ClientLeft {
                return
            } catch {
                // A write to a client that left fails before the watcher says so: nothing to tell.
                guard context.channel.isActive else { return }
                context.logger.error("following a job failed", metadata: ["job": "\(job.id)", "error": "\(error)"])
                let failure = APIError(.internalServerError, code: "internal_error", "following the job failed; see the server's log")
                try await EventStream.write([EventStream.ErrorEvent(failure, style: .tingxie)], to: &writer)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: EventStream.headers, body: body)
    }
}
