import ArgumentParser

@main
struct Tingxie: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tingxie",
        abstract: "Self-hosted Mandarin speech recognition.",
        version: "0.1.0",
        subcommands: [TranscribeCommand.self, BenchCommand.self]
    )
}
