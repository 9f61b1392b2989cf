import Foundation

/// Where Tingxie looks for models when no path is given.
public enum ModelLocations {
    /// `$TINGXIE_MODELS_DIR`, else `~/.local/share/tingxie/models`.
    public static func modelsDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let configured = environment["TINGXIE_MODELS_DIR"], !configured.isEmpty {
            return URL(fileURLWithPath: configured)
        }
        return FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".local/share/tingxie/models")
    }

    /// `$TINGXIE_VAD_MODEL`, else `vad/silero_vad.onnx` in the models directory.
    public static func vadModel(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let configured = environment["TINGXIE_VAD_MODEL"], !configured.isEmpty {
            return URL(fileURLWithPath: configured)
        }
        return modelsDirectory(environment: environment).appendingPathComponent("vad/silero_vad.onnx")
    }
}
