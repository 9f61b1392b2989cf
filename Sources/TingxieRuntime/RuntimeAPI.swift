#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TingxieCore

/// ONNX Runtime's C API, reached without its header: `OrtGetApiBase` is the library's one exported
/// entry point, and every other function is a slot of the `OrtApi` table it hands out. The table is
/// append-only across releases (ONNX Runtime's ABI promise), so a slot's index and signature, read
/// from the published header at API version 28, hold for every later library. Only the slots
/// Tingxie uses are declared, each cast to its C function type.
struct RuntimeAPI: @unchecked Sendable {
    /// The table version asked for: ONNX Runtime 1.28, the library sherpa-onnx-core 2.0.1 ships.
    static let version: UInt32 = 28

    typealias Status = OpaquePointer
    typealias CreateEnv = @convention(c) (Int32, UnsafePointer<CChar>, UnsafeMutablePointer<OpaquePointer?>) -> Status?
    typealias CreateSession = @convention(c) (OpaquePointer, UnsafePointer<CChar>, OpaquePointer, UnsafeMutablePointer<OpaquePointer?>) -> Status?
    typealias CreateOut = @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status?
    typealias SetInt = @convention(c) (OpaquePointer, Int32) -> Status?
    typealias CreateMemoryInfo = @convention(c) (Int32, Int32, UnsafeMutablePointer<OpaquePointer?>) -> Status?
    typealias CreateTensor = @convention(c) (OpaquePointer, UnsafeMutableRawPointer, Int, UnsafePointer<Int64>, Int, Int32,
                                             UnsafeMutablePointer<OpaquePointer?>) -> Status?
    typealias CreateBinding = @convention(c) (OpaquePointer, UnsafeMutablePointer<OpaquePointer?>) -> Status?
    typealias Bind = @convention(c) (OpaquePointer, UnsafePointer<CChar>, OpaquePointer) -> Status?
    typealias RunWithBinding = @convention(c) (OpaquePointer, OpaquePointer?, OpaquePointer) -> Status?
    typealias Clear = @convention(c) (OpaquePointer) -> Void
    typealias Release = @convention(c) (OpaquePointer?) -> Void
    typealias ErrorMessage = @convention(c) (Status) -> UnsafePointer<CChar>?

    /// `OrtApiBase.GetVersionString()`: the library's own version, e.g. "1.28.2".
    let libraryVersion: String
    let errorMessage: ErrorMessage
    let createEnv: CreateEnv
    let createSession: CreateSession
    let createSessionOptions: CreateOut
    let setGraphOptimizationLevel: SetInt
    let setIntraOpThreads: SetInt
    let setInterOpThreads: SetInt
    let createTensor: CreateTensor
    let createCPUMemoryInfo: CreateMemoryInfo
    let releaseEnv: Release
    let releaseStatus: Release
    let releaseMemoryInfo: Release
    let releaseSession: Release
    let releaseValue: Release
    let releaseSessionOptions: Release
    let runWithBinding: RunWithBinding
    let createBinding: CreateBinding
    let releaseBinding: Release
    let bindInput: Bind
    let bindOutput: Bind
    let clearBoundInputs: Clear
    let clearBoundOutputs: Clear

    /// The table of the library already loaded with sherpa-onnx (or found on the run path).
    static let shared: Result<RuntimeAPI, TingxieError> = Result { try RuntimeAPI() }.mapError {
        $0 as? TingxieError ?? TingxieError(.modelError, "\($0)")
    }

    private init() throws {
        guard let library = dlopen("libonnxruntime.so", RTLD_NOW) ?? dlopen("libonnxruntime.dylib", RTLD_NOW),
              let entry = dlsym(library, "OrtGetApiBase")
        else {
            throw TingxieError(.modelError, "ONNX Runtime is not loadable (libonnxruntime.so with OrtGetApiBase); run scripts/setup")
        }
        typealias GetApiBase = @convention(c) () -> UnsafeRawPointer?
        typealias GetApi = @convention(c) (UInt32) -> UnsafeRawPointer?
        typealias GetVersionString = @convention(c) () -> UnsafePointer<CChar>?
        guard let base = unsafeBitCast(entry, to: GetApiBase.self)() else {
            throw TingxieError(.modelError, "ONNX Runtime's OrtGetApiBase returned nothing")
        }
        // struct OrtApiBase { GetApi; GetVersionString; }
        let getApi = unsafeBitCast(base.load(as: UnsafeRawPointer.self), to: GetApi.self)
        let getVersion = unsafeBitCast(base.load(fromByteOffset: MemoryLayout<UnsafeRawPointer>.stride, as: UnsafeRawPointer.self),
                                       to: GetVersionString.self)
        libraryVersion = getVersion().map { String(cString: $0) } ?? "unknown"
        guard let table = getApi(Self.version) else {
            throw TingxieError(.modelError, "ONNX Runtime \(libraryVersion) does not offer API version \(Self.version) (1.28 or later is needed)")
        }
        func slot<F>(_ index: Int, _ type: F.Type) -> F {
            unsafeBitCast(table.load(fromByteOffset: index * MemoryLayout<UnsafeRawPointer>.stride, as: UnsafeRawPointer.self), to: type)
        }
        // Indices of `struct OrtApi` in onnxruntime_c_api.h (API 28).
        errorMessage = slot(2, ErrorMessage.self)
        createEnv = slot(3, CreateEnv.self)
        createSession = slot(7, CreateSession.self)
        createSessionOptions = slot(10, CreateOut.self)
        setGraphOptimizationLevel = slot(23, SetInt.self)
        setIntraOpThreads = slot(24, SetInt.self)
        setInterOpThreads = slot(25, SetInt.self)
        createTensor = slot(49, CreateTensor.self)
        createCPUMemoryInfo = slot(69, CreateMemoryInfo.self)
        releaseEnv = slot(92, Release.self)
        releaseStatus = slot(93, Release.self)
        releaseMemoryInfo = slot(94, Release.self)
        releaseSession = slot(95, Release.self)
        releaseValue = slot(96, Release.self)
        releaseSessionOptions = slot(100, Release.self)
        runWithBinding = slot(133, RunWithBinding.self)
        createBinding = slot(134, CreateBinding.self)
        releaseBinding = slot(135, Release.self)
        bindInput = slot(136, Bind.self)
        bindOutput = slot(137, Bind.self)
        clearBoundInputs = slot(141, Clear.self)
        clearBoundOutputs = slot(142, Clear.self)
    }

    /// Throws a returned status as a `TingxieError` with the library's message, `doing` what.
    func check(_ status: Status?, _ doing: @autoclosure () -> String) throws {
        guard let status else { return }
        let message = errorMessage(status).map { String(cString: $0) } ?? "no message"
        releaseStatus(status)
        throw TingxieError(.modelError, "ONNX Runtime could not \(doing()): \(message)")
    }
}
