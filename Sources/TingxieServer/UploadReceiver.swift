import Foundation
import Hummingbird
import NIOPosix
import TingxieAudio
import TingxieCore
import TingxieJobs

/// Files received in one request, stored and probed, plus the form's text fields.
struct ReceivedUpload: Sendable {
    struct File: Sendable {
        /// The generated id the file is stored under (and the job's id).
        var id: String
        var filename: String?
        var bytes: Int
        var durationS: Double
    }

    var files: [File] = []
    var fields: [String: String] = [:]
}

/// Streams uploads to disk under generated ids, enforcing the byte limit while they arrive,
/// then probes each file and enforces the duration limit before anything is queued. On any
/// failure every file of the request is deleted.
struct UploadReceiver: Sendable {
    let audio: AudioStore
    let gauge: QueueGauge
    let configuration: ServerConfiguration
    /// Where probes (ffprobe subprocesses, header reads) block.
    let threadPool: NIOThreadPool

    /// Refuses, from the headers alone, a body that says it is too large; returns the length it
    /// declares (0 when it declares none, as a chunked body does).
    func checkDeclaredLength(_ request: Request) throws -> Int {
        guard let declared = request.headers[.contentLength] else { return 0 }
        let length = try ClientNumber.integer(declared, field: "Content-Length", in: 0...Int.max)
        guard length <= configuration.maxUploadBytes else { throw tooLarge() }
        return length
    }

    /// Receives the request's files (`maxFiles` at most, from `file` parts or a raw audio body).
    /// - Parameter reservation: grown for each file after the first, and by each file's duration.
    func receive(_ request: Request, reservation: QueueGauge.Reservation, maxFiles: Int) async throws -> ReceivedUpload {
        var upload = ReceivedUpload()
        do {
            try await receive(request, into: &upload, reservation: reservation, maxFiles: maxFiles)
            for file in upload.files {
                try audio.commit(file.id)
            }
            return upload
        } catch {
            for file in upload.files { audio.remove(file.id) }
            throw error
        }
    }

    private func receive(_ request: Request, into upload: inout ReceivedUpload, reservation: QueueGauge.Reservation,
                         maxFiles: Int) async throws {
        let contentType = request.headers[.contentType] ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        var budget = ByteBudget(limit: configuration.maxUploadBytes,
                                minimumRate: (configuration.minUploadBytesPerSecond, configuration.uploadRateGrace))
        if let boundary = HeaderParameters.multipartBoundary(contentType: contentType) {
            var reader = MultipartReader(boundary: boundary, chunks: request.body.map(\.readableBytesView).makeAsyncIterator())
            var parts = 0
            while let part = try await reader.nextPart() {
                parts += 1
                guard parts <= maxFiles + 16 else {
                    throw TingxieError(.tooLarge, "too many parts in the form; at most \(maxFiles) files and a few fields are accepted")
                }
                if part.name == "file" {
                    guard upload.files.count < maxFiles else {
                        throw TingxieError(.tooLarge, "too many files; at most \(maxFiles) per request (use POST /v1/batches for several)")
                    }
                    if !upload.files.isEmpty { try gauge.extend(reservation) }
                    let id = Job.newID()
                    upload.files.append(.init(id: id, filename: Self.displayName(part.filename), bytes: 0, durationS: 0))
                    upload.files[upload.files.count - 1].bytes = try await store(id: id, budget: &budget) { try await reader.nextChunk() }
                } else {
                    let text = try await reader.text(limit: configuration.maxFieldBytes, field: part.name)
                    try budget.spend(text.utf8.count, or: tooLarge())
                    upload.fields[part.name] = text
                }
            }
        } else if mediaType.hasPrefix("audio/") || mediaType.hasPrefix("video/") || mediaType == "application/octet-stream" {
            let id = Job.newID()
            let filename = request.uri.queryParameters["filename"].map { String($0) }
            upload.files.append(.init(id: id, filename: Self.displayName(filename), bytes: 0, durationS: 0))
            var body = request.body.makeAsyncIterator()
            upload.files[0].bytes = try await store(id: id, budget: &budget) {
                try await body.next().map { ArraySlice($0.readableBytesView) }
            }
        } else {
            throw TingxieError(.unsupportedFormat, "send multipart/form-data with a \"file\" field, or the audio itself with Content-Type audio/... (got \"\(contentType.prefix(80))\")")
        }
        guard !upload.files.isEmpty else {
            throw TingxieError(.invalidArgument, "the form has no \"file\" field")
        }
        try await measure(&upload, reservation: reservation)
    }

    /// Probes each received file, checks it against the limits and adds its duration to the
    /// reservation.
    func measure(_ upload: inout ReceivedUpload, reservation: QueueGauge.Reservation) async throws {
        for index in upload.files.indices {
            let duration = try await probe(upload.files[index])
            upload.files[index].durationS = duration
            try gauge.add(seconds: duration, to: reservation)
        }
    }

    /// Refuses work that would leave the data folder's disk with less than the configured
    /// free space (`--min-free-disk-mb`): a full disk would fail every job and the store.
    func checkFreeDisk(for bytes: Int) throws {
        guard let free = audio.freeBytes(), free - bytes < configuration.minFreeDiskBytes else { return }
        throw TingxieError(.insufficientStorage, "the server's disk is nearly full (\(free >> 20) MB free, \(configuration.minFreeDiskBytes >> 20) MB kept free); try again later")
    }

    /// Free space is looked at again after every this many bytes received: uploads arriving
    /// side by side, or without a declared length, fill the disk as they come.
    static let diskCheckBytes = 4 << 20

    /// Writes one file's chunks to its partial path; returns its size.
    private func store(id: String, budget: inout ByteBudget,
                       next: () async throws -> ArraySlice<UInt8>?) async throws -> Int {
        let handle = try audio.createPartial(for: id)
        defer { try? handle.close() }
        var bytes = 0
        var unchecked = 0
        while let chunk = try await next() {
            try budget.spend(chunk.count, or: tooLarge())
            bytes += chunk.count
            unchecked += chunk.count
            if unchecked >= Self.diskCheckBytes {
                try checkFreeDisk(for: 0)
                unchecked = 0
            }
            try chunk.withUnsafeBytes { try handle.write(contentsOf: $0) }
        }
        return bytes
    }

    /// Reads the file's duration and checks it against the limits.
    private func probe(_ file: ReceivedUpload.File) async throws -> Double {
        let name = file.filename ?? "the upload"
        guard file.bytes > 0 else { throw TingxieError(.invalidAudio, "\(name): the file is empty") }
        let url = audio.partialURL(for: file.id)
        let duration: Double?
        do {
            duration = try await threadPool.runIfActive { try AudioDecoder.duration(of: url) }
        } catch let error as TingxieError {
            throw error.naming(url, as: name)
        }
        guard let duration else {
            throw TingxieError(.invalidAudio, "\(name): the file does not say how long it is; convert it to WAV, FLAC or MP3")
        }
        guard duration > 0 else { throw TingxieError(.invalidAudio, "\(name): the file holds no audio") }
        guard duration <= configuration.maxDurationSeconds else {
            throw TingxieError(.tooLarge, String(format: "%@: the audio is %.0f s long; this server accepts at most %.0f s", name, duration, configuration.maxDurationSeconds))
        }
        return duration
    }

    /// The error for a body over the byte limit (`what`: "upload" or "stream").
    func tooLarge(_ what: String = "upload") -> TingxieError {
        let limit = configuration.maxUploadBytes
        let shown = limit >= 1 << 20 ? "\(limit >> 20) MB" : "\(limit) bytes"
        return TingxieError(.tooLarge, "the \(what) is larger than this server's limit of \(shown)")
    }

    /// The client's file name, for display only: its last path component, without control
    /// characters, at most 255 characters.
    static func displayName(_ name: String?) -> String? {
        guard let name else { return nil }
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let clean = String(String.UnicodeScalarView(last.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }).prefix(255))
        return clean.isEmpty ? nil : clean
    }
}

/// Bytes a request may still send, and how slowly.
struct ByteBudget {
    var limit: Int
    /// Bytes per second on average, checked once the grace period has passed.
    var minimumRate: (bytesPerSecond: Int, grace: Duration)?
    var spent = 0
    let started = ContinuousClock.now

    mutating func spend(_ count: Int, or error: @autoclosure () -> TingxieError) throws {
        spent += count
        if spent > limit { throw error() }
        if let (rate, grace) = minimumRate, rate > 0 {
            let elapsed = ContinuousClock.now - started
            if elapsed > grace, Double(spent) < Double(rate) * elapsed.seconds {
                throw TingxieError(.requestTimeout, String(format: "the upload is too slow: %.0f bytes/s on average, below this server's minimum of %d; try again on a better connection", Double(spent) / elapsed.seconds, rate))
            }
        }
    }
}

extension TingxieError {
    /// The error with the stored file's name (its generated id) replaced by the client's name for it.
    /// The full path goes first (ffmpeg says `file:/…/uploads/ID.part`), so that no server path
    /// is ever shown to a client.
    func naming(_ stored: URL, as name: String) -> TingxieError {
        TingxieError(code, Self.naming(message, stored: stored, as: name))
    }

    /// `text` with the stored file's path and name replaced by the name the client gave it.
    static func naming(_ text: String, stored: URL, as name: String) -> String {
        text.replacingOccurrences(of: "file:" + stored.path, with: name)
            .replacingOccurrences(of: stored.path, with: name)
            .replacingOccurrences(of: stored.lastPathComponent, with: name)
    }
}
