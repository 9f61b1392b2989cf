import Foundation

/// Uploaded audio kept where every node reaches it, without a shared file system: the shared
/// job store keeps it in the database, in chunks of bounded size, streamed in and out.
///
/// A node stores a job's audio before it queues the job and deletes its own copy; the worker
/// that claims the job copies the audio back to a local file. The store deletes the audio when
/// the job ends.
public protocol SharedAudio: Sendable {
    /// Copies the file at `url` in as the audio of job `id`, a chunk at a time.
    func storeAudio(id: String, from url: URL) async throws
    /// Writes the audio of job `id` to `url`, a chunk at a time; `false` when there is none.
    func loadAudio(id: String, to url: URL) async throws -> Bool
    /// Deletes the audio of job `id` (a job that was never queued).
    func removeAudio(id: String) async throws
    /// Bytes of audio the store holds for jobs not yet run.
    func storedAudioBytes() async throws -> Int
}
