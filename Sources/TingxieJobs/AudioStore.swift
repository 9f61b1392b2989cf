import Foundation
import TingxieCore

/// Uploaded audio on disk, named by job id only: `audio/<id>` once complete, `uploads/<id>.part`
/// while it arrives. No part of a path ever comes from a client.
public struct AudioStore: Sendable {
    public let directory: URL
    private var uploads: URL { directory.appendingPathComponent("uploads", isDirectory: true) }
    private var audio: URL { directory.appendingPathComponent("audio", isDirectory: true) }

    /// Creates the folders (readable by this user only) and deletes uploads that were cut off
    /// by a crash: every one when this process owns the folder; in a folder `shared` with other
    /// nodes, only those untouched for an hour (an upload that slow was cut off long before).
    public init(directory: URL, shared: Bool = false) throws {
        self.directory = directory
        let files = FileManager.default
        do {
            for folder in [directory, directory.appendingPathComponent("uploads"), directory.appendingPathComponent("audio")] {
                try files.createDirectory(at: folder, withIntermediateDirectories: true, attributes: Self.privateFolder)
                try files.setAttributes(Self.privateFolder, ofItemAtPath: folder.path)
            }
            let abandoned = shared ? Date().addingTimeInterval(-3600) : .distantFuture
            let uploads = directory.appendingPathComponent("uploads")
            for file in try files.contentsOfDirectory(at: uploads, includingPropertiesForKeys: [.contentModificationDateKey])
            where ((try? file.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast) < abandoned {
                try? files.removeItem(at: file)
            }
        } catch {
            throw TingxieError(.ioError, "cannot prepare the audio folder \(directory.path): \(error.localizedDescription)")
        }
    }

    /// Audio and transcripts are the users' own: folders 0700, files 0600.
    public static var privateFolder: [FileAttributeKey: Any] { [.posixPermissions: 0o700] }
    public static var privateFile: [FileAttributeKey: Any] { [.posixPermissions: 0o600] }

    /// Creates the (empty, private) file an upload for job `id` is written to.
    public func createPartial(for id: String) throws -> FileHandle {
        let url = partialURL(for: id)
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: Self.privateFile),
              let handle = FileHandle(forWritingAtPath: url.path) else {
            throw TingxieError(.ioError, "cannot store the upload")
        }
        return handle
    }

    /// Bytes free on the data folder's file system.
    /// Bytes of audio in the folder: complete files and uploads arriving.
    public func storedBytes() -> Int {
        let files = FileManager.default
        return [audio, uploads].reduce(0) { total, folder in
            let names = (try? files.contentsOfDirectory(at: folder, includingPropertiesForKeys: [.fileSizeKey])) ?? []
            return total + names.reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
        }
    }

    public func freeBytes() -> Int? {
        var stats = statvfs()
        guard statvfs(directory.path, &stats) == 0 else { return nil }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
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
