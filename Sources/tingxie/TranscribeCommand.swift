import ArgumentParser
import Foundation
import NIOPosix
import TingxieCore
import TingxiePipeline
import TingxieServer
import TingxieSherpa
import TingxieText

struct TranscribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcribe",
        abstract: "Transcribe audio files.",
        discussion: "One file prints its transcript to stdout; --output-dir writes NAME.FORMAT per file."
    )

    @Argument(help: "Audio files.")
    var files: [String]

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "Output format: \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: OutputFormat = .txt

    @Option(name: .long, help: "Write NAME.FORMAT for each input into this folder.")
    var outputDir: String?

    @Option(name: .long, help: "Files transcribed at once.")
    var jobs: Int = 1

    @Option(name: .long, help: "Hotwords to favour, comma-separated, each optionally with a weight (\"鲲鹏处理器 2,飞桨\").")
    var hotwords: String?

    @Option(name: .long, help: "File of hotwords, one per line, optionally `term weight`.")
    var hotwordsFile: String?

    @Option(name: .long, help: "Neighbouring sentences are decoded together in pieces of up to this many seconds when the model's timestamps can split them back (0: each alone; default the model's, 25 for Whisper, 15 for others).")
    var mergeSeconds: Double?

    @Option(name: .long, help: "Sentences more than this many seconds apart are never decoded together (default the model's, 3 for Whisper, 1 for others).")
    var mergeGap: Double?

    @Option(name: .long, help: "Detected speech a result leaves uncovered for longer than this many seconds is decoded again on its own, and reported as a gap if it still gives no text (0.1 to 30, default 1).")
    var coverageTolerance: Double = 1

    @Flag(name: .long, inversion: .prefixedNo, help: "A sentence the model gives in several timed stretches (sentences without a pause between them) becomes a segment per stretch.")
    var splitStretches = true

    @Flag(name: .long, help: "Translate into English (multilingual Whisper).")
    var translate = false

    @Flag(name: .long, help: "Do not show progress on stderr.")
    var quiet = false

    @Flag(name: .long, help: "Transcribe what can be read of a truncated or corrupt file, with a warning on stderr, instead of failing it.")
    var allowPartial = false

    /// The model's language (`--language`), translated with `--translate`.
    var options: RecognitionOptions { RecognitionOptions(task: translate ? .translate : .transcribe) }

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one audio file") }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        guard mergeSeconds.map({ (0...60).contains($0) }) ?? true else { throw ValidationError("--merge-seconds must be between 0 and 60") }
        guard mergeGap.map({ (0...30).contains($0) }) ?? true else { throw ValidationError("--merge-gap must be between 0 and 30 seconds") }
        guard (0.1...30).contains(coverageTolerance) else { throw ValidationError("--coverage-tolerance must be between 0.1 and 30 seconds") }
    }

    func run() async throws {
        // The server's allocator settings: long files stay flat in memory.
        ProcessMemory.limitArenas()
        let threadPool = NIOThreadPool(numberOfThreads: jobs)
        threadPool.start()
        let trimming = Task {
            while (try? await Task.sleep(for: .seconds(5))) != nil { ProcessMemory.trim() }
        }
        let succeeded = await transcribeAll(on: threadPool)
        trimming.cancel()
        try? await threadPool.shutdownGracefully()
        if !succeeded { throw ExitCode.failure }
    }

    /// Transcribes every file; returns whether all succeeded.
    private func transcribeAll(on threadPool: NIOThreadPool) async -> Bool {
        let output = outputDir.map { URL(fileURLWithPath: $0) }
        let pipeline: TranscriptionPipeline
        let matcher: HotwordMatcher?
        do {
            matcher = try loadHotwords()
            if let output { try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true) }
            // Merged pieces fill Whisper's window: the encoder's memory is the same for every piece,
            // so a file of hours peaks where one of a minute does. Sentences decoded alone keep
            // sherpa-onnx's shorter padding, which is faster for them.
            let recognizer = try model.loadRecognizer(tailPaddingFrames: mergeSeconds == 0 ? nil : SherpaRecognizer.whisperWindowFrames)
            try recognizer.info.check(options)
            pipeline = try TranscriptionPipeline(
                recognizer: recognizer,
                detectors: try model.loadVAD(),
                configuration: .init(language: model.language, batchSize: max(model.parallel ?? 1, recognizer.info.batchPieces),
                                     mergeTargetSeconds: mergeSeconds, mergeMaxGapSeconds: mergeGap,
                                     coverageToleranceSeconds: coverageTolerance, splitsAtStretches: splitStretches),
                punctuator: try model.loadPunctuation(for: recognizer.info),
                threadPool: threadPool
            )
        } catch {
            Self.printError("\(error)")
            return false
        }

        let progress = ProgressReporter(names: files, enabled: !quiet)
        let outcomes = await withTaskGroup(of: (Int, Result<Transcript, Error>).self) { group in
            var next = 0
            var outcomes = [Result<Transcript, Error>?](repeating: nil, count: files.count)
            func startNext() {
                guard next < files.count else { return }
                let index = next
                next += 1
                group.addTask {
                    let url = URL(fileURLWithPath: files[index])
                    do {
                        let transcript = try await pipeline.transcribe(url, hotwords: matcher, options: options, allowPartial: allowPartial) {
                            progress.update(index, fraction: $0)
                        }
                        return (index, .success(transcript))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            for _ in 0..<jobs { startNext() }
            for await (index, outcome) in group {
                progress.finish(index, failed: (try? outcome.get()) == nil)
                outcomes[index] = outcome
                switch outcome {
                case .success(let transcript):
                    for warning in transcript.warnings ?? [] { Self.printError("warning: \(warning)") }
                    do {
                        try write(transcript, for: files[index], to: output)
                    } catch {
                        Self.printError("\(files[index]): cannot write the transcript: \(error.localizedDescription)")
                        outcomes[index] = .failure(error)
                    }
                case .failure(let error):
                    // Decoding errors already name the file.
                    Self.printError("\(error)")
                }
                startNext()
            }
            return outcomes.map { $0! }
        }
        progress.clear()
        if files.count > 1 { printSummary(outcomes) }
        return !outcomes.contains { (try? $0.get()) == nil }
    }

    /// Hotwords from the file and the flag, merged; `nil` when none were given.
    private func loadHotwords() throws -> HotwordMatcher? {
        let merged = try Hotword.merge(try hotwordsFile.map(Hotword.load) ?? [],
                                       try hotwords.map { try Hotword.parse($0, source: "--hotwords") } ?? [])
        guard !merged.isEmpty else { return nil }
        return HotwordMatcher(hotwords: merged, lexicon: try Lexicon())
    }

    private func write(_ transcript: Transcript, for file: String, to output: URL?) throws {
        let rendered = format.render(transcript)
        guard let output else {
            if files.count > 1 { print("==> \(file) <==") }
            print(rendered, terminator: "")
            return
        }
        let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        try Data(rendered.utf8).write(to: output.appendingPathComponent("\(name).\(format.rawValue)"), options: .atomic)
    }

    private func printSummary(_ outcomes: [Result<Transcript, Error>]) {
        var lines = [["file", "status", "audio", "rtf", "detail"]]
        for (file, outcome) in zip(files, outcomes) {
            switch outcome {
            case .success(let transcript):
                lines.append([file, "ok", String(format: "%.1fs", transcript.durationS),
                              String(format: "%.3f", transcript.rtf), "\(transcript.segments.count) segments"])
            case .failure(let error):
                lines.append([file, "failed", "-", "-", "\(error)"])
            }
        }
        let widths = (0..<4).map { column in lines.map { $0[column].count }.max() ?? 0 }
        for line in lines {
            let padded = (0..<4).map { line[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            FileHandle.standardError.write(Data(((padded + [line[4]]).joined(separator: "  ") + "\n").utf8))
        }
        let failed = outcomes.filter { (try? $0.get()) == nil }.count
        FileHandle.standardError.write(Data("\(outcomes.count - failed) succeeded, \(failed) failed\n".utf8))
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("tingxie: \(message)\n".utf8))
    }
}
