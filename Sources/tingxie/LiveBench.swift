import Foundation
import Synchronization
import TingxieAudio
import TingxieCore

/// Live partials: 1, 2 and 4 clients at once each stream the corpus sentences (with pauses) in
/// real time over `/v1/stream` in 2pass mode, to a `tingxie serve` child process. Prints the time
/// from each sentence's start to its first partial (p50, p95), the share of sentences that got
/// one, and the server's CPU time per second of streamed audio.
struct LiveBench: Sendable {
    let server: BenchServer
    let files: [URL]
    let seconds: Double
    let work: URL

    func run() async throws {
        let speech = try BenchStream.corpusSpeech(files)
        let audio = Array(speech.prefix(Int(seconds * 16_000)))
        say(String(format: "\n## Live partials: %.0f s of corpus sentences per client, streamed in real time (2pass), 2 workers", seconds))
        say("| clients | sentences | with a partial | first partial after sentence start, p50 | p95 | server CPU s per audio s per client |")
        say("|---:|---:|---:|---:|---:|---:|")
        try await server.run(workers: 2, work: work) { server in
            for clients in [1, 2, 4] {
                let cpuBefore = server.cpuSeconds
                let outcomes = await withTaskGroup(of: [Double?].self) { group in
                    for _ in 0..<clients { group.addTask { await Self.client(port: server.port, audio: audio) } }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                let cpu = server.cpuSeconds - cpuBefore
                let delays = outcomes.flatMap { $0 }.compactMap { $0 }.sorted()
                let sentences = outcomes.map(\.count).reduce(0, +)
                say(String(format: "| %d | %d | %d | %.2f s | %.2f s | %.3f |", clients, sentences, delays.count,
                           delays.percentile(0.5), delays.percentile(0.95), cpu / (seconds * Double(clients))))
            }
        }
    }

    /// Streams `audio` in real time; returns, per finished sentence, how long after its start
    /// (on the stream's clock) its first partial arrived, or nil if none did.
    static func client(port: Int, audio: [Int16]) async -> [Double?] {
        let state = ClientState()
        try? await BenchStream.run(port: port, name: "live", audio: audio, samples: audio.count, realTime: true,
                                   onSent: { state.sent.store($0, ordering: .relaxed) }) { json in
            let now = Double(state.sent.load(ordering: .relaxed)) / 16_000
            state.record.withLock { record in
                if json["mode"] as? String == "2pass-online" {
                    if record.first == nil { record.first = now }
                } else if json["mode"] as? String == "2pass-offline", let start = json["start_time"] as? Int {
                    record.delays.append(record.first.map { max(0, $0 - Double(start) / 1000) })
                    record.first = nil
                }
            }
        }
        return state.record.withLock { $0.delays }
    }

    /// Samples sent so far (the stream's clock), and the open sentence's first partial and each
    /// finished sentence's delay, shared by a client's sending and reading tasks.
    final class ClientState: Sendable {
        let sent = Atomic<Int>(0)
        let record = Mutex<(first: Double?, delays: [Double?])>((nil, []))
    }
}
