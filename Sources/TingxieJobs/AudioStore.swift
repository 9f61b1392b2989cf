import Foundation
import TingxieCore

/// Uploaded audio on disk, named by job id only: `audio/<id>` once complete, `uploads/<id>.part`
/// while it arrives. No part of a path ever comes from a client.
public struct AudioStore: Sendable {
    public let directory: URL
    private var uploads: URL { directory.appendingPathComponent("uploads", isDirectory: true) }
    private var audio: URL { directory.appendingPathComponent("audio", isDirectory: true) }

    /// Creates the folders and deletes uploads that were cut off by a crash.
    public init(directory: URL) throws {
        self.directory = directory
        let files = FileManager.default
        do {
            try files.createDirectory(at: directory.appendingPathComponent("uploads"), withIntermediateDirectories: true)
            try files.createDirectory(at: directory.appendingPathComponent("audio"), withIntermediateDirectories: true)
            for name in try files.contentsOfDirectory(atPath: directory.appendingPathComponent("uploads").path) {
                try? files.removeItem(at: directory.appendingPathComponent("uploads").appendingPathComponent(name))
            }
        } catch {
            throw TingxieError(.ioError, "cannot prepare the audio folder \(directory.path): \(error.localizedDescription)")
        }
    }

    /// Where the audio of job `id` is kept.
    public func url(for id: String) -> URL {
        precondition(Job.isValidID(id), "audio is stored under generated ids only")
        return audio.appendingPathComponent(id)
    }

    /// Where the upload for job `id` is written while it arrives.
    public func partialURL(for id: String) -> URL {
        precondition(Job.isValidID(id), "audio is stored under generated ids only")
        return uploads.appendingPathComponent(id + ".part")
    }

    /// Moves a finished upload into place.
    public func commit(_ id: String) throws {
        do {
            try FileManager.default.moveItem(at: partialURL(for: id), to: url(for: id))
        } catch {
            throw TingxieError(.ioError, "cannot store the upload: \(error.localizedDescription)")
        }
    }

    /// Ids of the stored audio files last written before `date`.
    public func ids(writtenBefore date: Date) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(at: audio, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        return files.filter { url in
            Job.isValidID(url.lastPathComponent)
                && ((try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantFuture) < date
        }.map(\.lastPathComponent)
    }

    /// Deletes the audio of job `id`, complete or partial, if there is any.
    public func remove(_ id: String) {
        try? FileManager.default.removeItem(at: partialURL(for: id))
        try? FileManager.default.removeItem(at: url(for: id))
    }
}
