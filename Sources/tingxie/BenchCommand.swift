import ArgumentParser
import Foundation
import NIOPosix
import Synchronization
import TingxieAudio
import TingxieCore
import TingxiePipeline
import TingxieServer
import TingxieText

/// Prints the figures of docs/performance.md: RTF and peak memory of `tingxie transcribe` on the
/// corpus and on 1-, 10- and 60-minute files, and the service overhead over bare model calls.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed and memory on a corpus of WAV files (prints figures; asserts nothing)."
    )

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "Folder of NNN.wav files to measure on and to build long files from.")
    var corpus: String

    @Option(name: .long, parsing: .upToNextOption, help: "Lengths of the long files, in minutes.")
    var minutes: [Int] = [1, 10, 60]

    @Option(name: .long, help: "Where the long files are written (kept for the next run).")
    var workDir: String = ".build/bench"

    @Option(name: .long, help: "Repetitions of each short measurement (the longest file runs once).")
    var runs: Int = 3

    @Option(name: .long, help: "Also time hotword matching with these hotwords over the corpus's transcripts.tsv.")
    var hotwordsFile: String?

    enum Section: String, CaseIterable, ExpressibleByArgument {
        case corpus, long, overhead, server, lone, flood, soak, peers, live, cluster, steps
    }

    @Option(name: .long, parsing: .upToNextOption, help: "Which figures: \(Section.allCases.map(\.rawValue).joined(separator: ", ")) (default all but lone, flood, soak, peers, live, cluster and steps).")
    var sections: [Section] = [.corpus, .long, .overhead, .server]

    @Option(name: .long, help: "Minutes of audio each stream-flood client pushes (section flood).")
    var floodMinutes: Double = 60

    @Option(name: .long, help: "Stream-flood clients (section flood).")
    var floodClients: Int = 4

    @Option(name: .long, help: "Minutes the soak's three clients keep the server busy (section soak).")
    var soakMinutes: Double = 60

    @Option(name: .long, help: "Seconds of speech each live client streams in real time (section live).")
    var liveSeconds: Double = 60

    @Option(name: .long, help: "Long recording with a start/end/text .tsv beside it, for faster-whisper against Tingxie (section peers; repeatable).")
    var peerAudio: [String] = []

    @Option(name: .long, help: "What `scripts/setup --peers` installed: python/ with faster-whisper, whisper-base-ct2/ (section peers).")
    var peersDir: String = ".deps/peers"

    @Option(name: .long, help: "The faster-whisper runner (section peers).")
    var peerScript: String = "scripts/peers/faster_whisper_run.py"

    @Option(name: .long, help: "More Tingxie rows in the peers table: these transcribe flags added, e.g. \"--tail-padding 300\" (repeatable).")
    var peerVariant: [String] = []

    @Flag(name: .long, help: "Peers table with Tingxie's rows only (to compare its settings quickly).")
    var withoutFasterWhisper = false

    @Option(name: .long, help: "A PostgreSQL server where scratch databases may be created, postgres://USER@HOST:PORT/DB (section cluster).")
    var databaseUrl: String?

    func validate() throws {
        guard (1...20).contains(runs) else { throw ValidationError("--runs must be between 1 and 20") }
        guard floodMinutes > 0, floodMinutes <= 600, (1...4).contains(floodClients) else {
            throw ValidationError("--flood-minutes takes 0 to 600 and --flood-clients 1 to 4 (the server's stream limit)")
        }
        guard soakMinutes >= 1, soakMinutes <= 1440 else { throw ValidationError("--soak-minutes takes 1 to 1440") }
        guard liveSeconds >= 10, liveSeconds <= 3600 else { throw ValidationError("--live-seconds takes 10 to 3600") }
        guard !sections.contains(.peers) || !peerAudio.isEmpty else { throw ValidationError("section peers needs --peer-audio FILE.wav") }
        guard !sections.contains(.cluster) || databaseUrl != nil else {
            throw ValidationError("section cluster needs --database-url of a PostgreSQL server where it may create scratch databases (`make bench-cluster` starts one)")
        }
        guard !minutes.isEmpty, minutes.allSatisfy({ (1...600).contains($0) }) else {
            throw ValidationError("--minutes takes lengths between 1 and 600")
        }
    }

    func run() async throws {
        if sections.contains(.steps) {
            try StepBench(modelDirectory: try model.modelDirectory(), corpus: URL(fileURLWithPath: corpus), threads: model.threadCount).run()
            if sections == [.steps] { return }
        }
        let corpusURL = URL(fileURLWithPath: corpus)
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus)
            .filter { $0.range(of: #"^\d+\.wav$"#, options: .regularExpression) != nil }.sorted()
            .map { corpusURL.appendingPathComponent($0) }
        guard !files.isEmpty else { throw ValidationError("no NNN.wav files in \(corpus)") }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let modelDir = try model.modelDirectory().path
        let vad = try model.loadVAD().configuration.model.path
        let common = ["--model-dir", modelDir, "--vad-model", vad, "--language", model.language, "--quiet"]
            + (model.parallel.map { ["--parallel", "\($0)"] } ?? []) + (model.tailPadding.map { ["--tail-padding", "\($0)"] } ?? [])

        let audioSeconds = try files.reduce(0.0) { $0 + (try WAVReader(url: $1).duration ?? 0) }
        say("Tingxie bench: model \(modelDir), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        if let hotwordsFile { try measureHotwords(hotwordsFile, transcripts: corpusURL.appendingPathComponent("transcripts.tsv")) }
        let work = URL(fileURLWithPath: workDir)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        if sections.contains(.corpus) {
            try measureCorpus(files, audioSeconds: audioSeconds, executable: executable, common: common)
        }
        if sections.contains(.long) {
            try measureLongFiles(files, work: work, executable: executable, common: common)
        }
        if sections.contains(.overhead) {
            let overheadMinutes = minutes.contains(10) ? 10 : minutes.min()!
            try await measureOverhead(try longFile(minutes: overheadMinutes, from: files, in: work), minutes: overheadMinutes)
        }
        let server = BenchServer(executable: executable, modelArguments: ["--model-dir", modelDir, "--vad-model", vad, "--language", model.language])
        let serverBench = ServerBench(server: server, files: files, audioSeconds: audioSeconds, runs: runs, work: work)
        if sections.contains(.server) {
            try await serverBench.run()
        }
        if sections.contains(.lone) {
            try await serverBench.loneJob(try longFile(minutes: 10, from: files, in: work))
        }
        if sections.contains(.soak) {
            try await serverBench.soak(minutes: soakMinutes)
        }
        if sections.contains(.flood) {
            try await StreamFloodBench(server: server, files: files, minutes: floodMinutes, clients: floodClients, work: work).run()
        }
        if sections.contains(.live) {
            try await LiveBench(server: server, files: files, seconds: liveSeconds, work: work).run()
        }
        if sections.contains(.cluster), let databaseUrl {
            try await ClusterBench(server: server, files: files, audioSeconds: audioSeconds, databaseURL: databaseUrl, work: work).run()
        }
        for audio in sections.contains(.peers) ? peerAudio : [] {
            try PeerBench(executable: executable, modelArguments: common + ["--threads", "\(model.threadCount)"], audio: URL(fileURLWithPath: audio), runs: runs, work: work,
                          peers: URL(fileURLWithPath: peersDir), peerScript: URL(fileURLWithPath: peerScript), language: model.language,
                          variants: peerVariant.map { $0.split(separator: " ").map(String.init) }, includesFasterWhisper: !withoutFasterWhisper).run()
        }
    }

    /// One `tingxie transcribe` process over the whole corpus, with 1 and 2 threads.
    private func measureCorpus(_ files: [URL], audioSeconds: Double, executable: String, common: [String]) throws {
        say(String(format: "\n## Corpus: %d files, %.1f s of audio, one `tingxie transcribe` process (model load included)", files.count, audioSeconds))
        say("threads  wall min  wall median  RTF min  peak RSS")
        for threads in [1, 2] {
            let measured = try (0..<runs).map { _ in
                try checked(MeasuredRun.run(executable, ["transcribe"] + files.map(\.path) + common + ["--threads", "\(threads)"]))
            }
            let walls = measured.map(\.wallSeconds).sorted()
            say(String(format: "%7d  %7.2fs  %10.2fs  %7.4f  %5.0f MB", threads, walls[0], walls[walls.count / 2],
                         walls[0] / audioSeconds, Double(measured.map(\.peakRSSBytes).max()!) / 1e6))
        }
    }

    /// RTF and peak memory on long files, and how memory grows with length.
    private func measureLongFiles(_ files: [URL], work: URL, executable: String, common: [String]) throws {
        say("\n## Long files built from the corpus (speech with 0.5-3 s pauses), `tingxie transcribe --threads \(model.threadCount)`")
        say("length  wall min   RTF     peak RSS")
        var peaks: [Int: Int] = [:]
        for length in minutes.sorted() {
            let url = try longFile(minutes: length, from: files, in: work)
            let repetitions = length == minutes.max() ? 1 : runs
            let measured = try (0..<repetitions).map { _ in
                try checked(MeasuredRun.run(executable, ["transcribe", url.path] + common + ["--threads", "\(model.threadCount)"]))
            }
            let wall = measured.map(\.wallSeconds).min()!
            peaks[length] = measured.map(\.peakRSSBytes).max()!
            say(String(format: "%4d min  %7.1fs  %.4f  %5.0f MB", length, wall, wall / Double(length * 60), Double(peaks[length]!) / 1e6))
        }
        if let shortest = minutes.min(), let longest = minutes.max(), shortest != longest {
            say(String(format: "peak RSS(%d min) / peak RSS(%d min) = %.3f (goal <= 1.2)", longest, shortest,
                         Double(peaks[longest]!) / Double(peaks[shortest]!)))
        }
    }

    /// Time of the text-stage hotword matcher per sentence.
    private func measureHotwords(_ file: String, transcripts: URL) throws {
        let hotwords = try Hotword.load(file)
        let sentences = try String(contentsOf: transcripts, encoding: .utf8).split(separator: "\n")
            .compactMap { $0.split(separator: "\t").last.map(String.init) }
        let loading = ContinuousClock.now
        let matcher = HotwordMatcher(hotwords: hotwords, lexicon: try Lexicon())
        let loaded = (ContinuousClock.now - loading).seconds
        let rounds = 200
        let started = ContinuousClock.now
        for _ in 0..<rounds { for sentence in sentences { _ = matcher.apply(to: sentence) } }
        let perSentence = (ContinuousClock.now - started).seconds / Double(rounds * sentences.count)
        say(String(format: "\n## Hotwords: %d terms, %d sentences of %.0f characters on average",
                   hotwords.count, sentences.count, Double(sentences.map(\.count).reduce(0, +)) / Double(max(1, sentences.count))))
        say(String(format: "dictionaries load %.2f s; matching %.1f µs per sentence", loaded, perSentence * 1e6))
    }

    /// End-to-end pipeline time against bare model calls on exactly the pieces the pipeline fed the model.
    private func measureOverhead(_ url: URL, minutes: Int) async throws {
        say("\n## Service overhead on the \(minutes)-minute file, in one process (best of 2)")
        let recognizer = RecordingRecognizer(try model.loadRecognizer())
        let detectors = try model.loadVAD()
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        say("batch  pipeline RTF  bare RTF  overhead ratio (goal <= 1.15)")
        for batchSize in [1, 4] {
            let pipeline = try TranscriptionPipeline(recognizer: recognizer, detectors: detectors,
                                                     configuration: .init(language: model.language, batchSize: batchSize),
                                                     threadPool: pool)
            var pipelineSeconds = Double.infinity
            var bareSeconds = Double.infinity
            for _ in 0..<2 {
                recognizer.reset()
                let transcript = try await pipeline.transcribe(url)
                pipelineSeconds = min(pipelineSeconds, transcript.processingS)
                let batches = recognizer.batches
                let started = ContinuousClock.now
                try await pool.runIfActive {
                    for batch in batches { _ = try recognizer.base.recognize(batch: batch) }
                }
                bareSeconds = min(bareSeconds, (ContinuousClock.now - started).seconds)
            }
            let audio = Double(minutes * 60)
            say(String(format: "%5d  %12.4f  %8.4f  %.3f", batchSize, pipelineSeconds / audio, bareSeconds / audio, pipelineSeconds / bareSeconds))
        }
        try await pool.shutdownGracefully()
    }

    private func checked(_ run: MeasuredRun) throws -> MeasuredRun {
        guard run.status == 0 else {
            throw ValidationError("tingxie transcribe exited with status \(run.status); run it by hand with the same flags to see why")
        }
        return run
    }

    /// Loops the corpus utterances with seeded random pauses of 0.5-3 s into an N-minute WAV.
    private func longFile(minutes: Int, from files: [URL], in folder: URL) throws -> URL {
        let url = folder.appendingPathComponent("corpus-\(minutes)min.wav")
        let targetSamples = minutes * 60 * modelSampleRate
        if let existing = try? WAVReader(url: url), existing.dataBytes == targetSamples * 2 { return url }
        let utterances = try files.map { try WAVReader(url: $0).readAll() }
        let writer = try WAVWriter(url: url)
        var random = SplitMix64(seed: 20_241_124)
        var written = 0
        var index = 0
        while written < targetSamples {
            let pause = [Float](repeating: 0, count: Int((0.5 + 2.5 * random.nextUnit()) * Double(modelSampleRate)))
            let piece = Array((pause + utterances[index % utterances.count]).prefix(targetSamples - written))
            try writer.append(piece)
            written += piece.count
            index += 1
        }
        try writer.finish()
        return url
    }
}

/// Passes calls through to a recogniser and keeps the batches it was given.
final class RecordingRecognizer: Recognizer {
    let base: any Recognizer
    private let recorded = Mutex<[[[Float]]]>([])

    init(_ base: any Recognizer) { self.base = base }

    var info: ModelInfo { base.info }
    var batches: [[[Float]]] { recorded.withLock { $0 } }
    func reset() { recorded.withLock { $0.removeAll() } }

    func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
        recorded.withLock { $0.append(batch) }
        return try base.recognize(batch: batch, hotwords: hotwords, options: options)
    }
}

/// A small seeded generator, so that the long files are the same on every machine.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// Writes a line of figures at once (print is buffered when stdout is a file), so that they appear as measured.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
