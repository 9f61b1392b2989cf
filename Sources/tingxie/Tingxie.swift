import ArgumentParser
import TingxieCore

@main
struct Tingxie: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tingxie",
        abstract: "Self-hosted Mandarin speech recognition.",
        version: tingxieVersion,
        subcommands: [ServeCommand.self, WorkerCommand.self, TranscribeCommand.self, ModelsCommand.self, IncidentsCommand.self, LogsCommand.self, BenchCommand.self]
    )
}
