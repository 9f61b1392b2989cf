import Foundation
import Synchronization
import Testing
@testable import TingxieSherpa

/// The gate that keeps Whisper decodes with different languages or tasks apart.
struct SettingGateTests {
    /// Runs `body(index)` on `count` plain threads at once and waits for all (at most 60 s).
    func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
        let done = DispatchGroup()
        for index in 0..<count {
            done.enter()
            Thread { body(index); done.leave() }.start()
        }
        return done.wait(timeout: .now() + 60) == .success
    }

    @Test func callsWithDifferentSettingsNeverOverlap() {
        let gate = SettingGate("a")
        let state = Mutex<(running: [String: Int], overlaps: Int, appliedWhileRunning: Int, applied: [String])>(([:], 0, 0, []))
        let finished = onThreads(12) { index in
            let setting = index % 3 == 0 ? "b" : "a"
            gate.run(with: setting, apply: { new in
                state.withLock { state in
                    if state.running.values.contains(where: { $0 > 0 }) { state.appliedWhileRunning += 1 }
                    state.applied.append(new)
                }
            }) {
                state.withLock { state in
                    state.running[setting, default: 0] += 1
                    if state.running.contains(where: { $0.key != setting && $0.value > 0 }) { state.overlaps += 1 }
                }
                Thread.sleep(forTimeInterval: 0.01)
                state.withLock { $0.running[setting, default: 0] -= 1 }
            }
        }
        #expect(finished)
        let final = state.withLock { $0 }
        #expect(final.overlaps == 0)
        #expect(final.appliedWhileRunning == 0)
        #expect(final.applied.contains("b"))
    }

    @Test func callsWithTheSameSettingRunTogether() {
        let gate = SettingGate("zh")
        let inside = Atomic<Int>(0)
        let met = Atomic<Int>(0)
        let finished = onThreads(3) { _ in
            gate.run(with: "en", apply: { _ in }) {
                inside.add(1, ordering: .relaxed)
                // Each waits (boundedly) until all three are inside at once.
                for _ in 0..<500 where inside.load(ordering: .relaxed) < 3 { Thread.sleep(forTimeInterval: 0.01) }
                if inside.load(ordering: .relaxed) == 3 { met.add(1, ordering: .relaxed) }
            }
        }
        #expect(finished)
        #expect(met.load(ordering: .relaxed) == 3)
    }
}
