import Foundation
import Synchronization

/// Shows transcription progress on stderr: a redrawn bar with an ETA on a terminal, plain
/// lines at every 10% otherwise (logs, CI).
final class ProgressReporter: Sendable {
    private struct State {
        var fractions: [Double]
        var lastDraw = ContinuousClock.now - .seconds(1)
        var lastDecile: [Int]
    }

    private let names: [String]
    private let enabled: Bool
    private let isTerminal: Bool
    private let started = ContinuousClock.now
    private let state: Mutex<State>

    init(names: [String], enabled: Bool) {
        self.names = names
        self.enabled = enabled
        isTerminal = isatty(STDERR_FILENO) == 1
        state = Mutex(State(fractions: Array(repeating: 0, count: names.count),
                            lastDecile: Array(repeating: 0, count: names.count)))
    }

    func update(_ index: Int, fraction: Double) {
        guard enabled else { return }
        state.withLock { state in
            state.fractions[index] = fraction
            if isTerminal {
                let now = ContinuousClock.now
                guard now - state.lastDraw > .milliseconds(100) else { return }
                state.lastDraw = now
                draw(state)
            } else {
                let decile = Int(fraction * 10)
                guard decile > state.lastDecile[index], decile < 10 else { return }
                state.lastDecile[index] = decile
                emit("\(names[index]): \(decile * 10)%\n")
            }
        }
    }

    func finish(_ index: Int, failed: Bool) {
        guard enabled else { return }
        state.withLock { state in
            state.fractions[index] = 1
            if isTerminal { draw(state) } else { emit("\(names[index]): \(failed ? "failed" : "done")\n") }
        }
    }

    func clear() {
        if enabled && isTerminal { emit("\r\u{1B}[2K") }
    }

    private func draw(_ state: State) {
        let overall = state.fractions.reduce(0, +) / Double(max(1, state.fractions.count))
        let width = 30
        let filled = Int(overall * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let elapsed = (ContinuousClock.now - started).components.seconds
        var eta = "--:--"
        if overall > 0.01 {
            let remaining = Int(Double(elapsed) * (1 - overall) / overall)
            eta = String(format: "%d:%02d", remaining / 60, remaining % 60)
        }
        let done = state.fractions.filter { $0 >= 1 }.count
        emit(String(format: "\r\u{1B}[2K[%@] %3d%%  %d/%d files  ETA %@", bar, Int(overall * 100), done, state.fractions.count, eta))
    }

    private func emit(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
