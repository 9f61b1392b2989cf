import Foundation
import TingxieCore

/// The ONNX Runtime library Tingxie runs its own graphs on.
public enum ONNXRuntime {
    /// The loaded library's version, e.g. "1.28.2".
    public static func libraryVersion() throws -> String {
        try RuntimeAPI.shared.get().libraryVersion
    }

    /// The one environment of the process (ONNX Runtime wants a single one) and a CPU memory
    /// description for tensors over Swift-owned memory.
    final class Environment: @unchecked Sendable {
        let api: RuntimeAPI
        let env: OpaquePointer
        let cpu: OpaquePointer

        static let shared: Result<Environment, TingxieError> = Result { try Environment() }.mapError {
            $0 as? TingxieError ?? TingxieError(.modelError, "\($0)")
        }

        private init() throws {
            api = try RuntimeAPI.shared.get()
            var env: OpaquePointer?
            try api.check(api.createEnv(3, "tingxie", &env), "create its environment")  // log errors only
            var cpu: OpaquePointer?
            try api.check(api.createCPUMemoryInfo(0, 0, &cpu), "describe CPU memory")  // device allocator, default memory
            guard let env, let cpu else { throw TingxieError(.modelError, "ONNX Runtime created no environment") }
            self.env = env
            self.cpu = cpu
        }
    }
}

/// Element types a tensor over Swift memory can hold, with ONNX's type codes.
public protocol RuntimeElement: Sendable {
    static var onnxType: Int32 { get }
    static var zero: Self { get }
}

extension Float: RuntimeElement {
    public static var onnxType: Int32 { 1 }
}

extension Int64: RuntimeElement {
    public static var onnxType: Int32 { 7 }
}

extension Float16: RuntimeElement {
    public static var onnxType: Int32 { 10 }
}

/// Memory for tensors, owned by Swift and reused across runs; views (`tensor`) hand parts of it to
/// ONNX Runtime without copying.
public final class TensorStorage<Element: RuntimeElement>: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Element>

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: .zero, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    /// A tensor of `shape` over this storage from element `offset`.
    public func tensor(_ shape: [Int], offset: Int = 0) throws -> RuntimeTensor {
        try RuntimeTensor(self, shape: shape, offset: offset)
    }
}

/// An `OrtValue` viewing part of a `TensorStorage`, which it keeps alive.
public final class RuntimeTensor: @unchecked Sendable {
    let value: OpaquePointer
    public let shape: [Int]
    private let owner: AnyObject
    private let api: RuntimeAPI

    init<Element>(_ storage: TensorStorage<Element>, shape: [Int], offset: Int) throws {
        let environment = try ONNXRuntime.Environment.shared.get()
        let api = environment.api
        self.api = api
        let elements = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), offset >= 0, offset + elements <= storage.count else {
            throw TingxieError(.internalError, "a tensor of shape \(shape) at \(offset) does not fit \(storage.count) elements")
        }
        let dimensions = shape.map(Int64.init)
        var value: OpaquePointer?
        try dimensions.withUnsafeBufferPointer { dims in
            try api.check(api.createTensor(environment.cpu, UnsafeMutableRawPointer(storage.pointer + offset),
                                           elements * MemoryLayout<Element>.stride, dims.baseAddress!, dims.count, Element.onnxType, &value),
                          "make a tensor of shape \(shape)")
        }
        guard let value else { throw TingxieError(.modelError, "ONNX Runtime made no tensor of shape \(shape)") }
        self.value = value
        self.shape = shape
        owner = storage
    }

    deinit { api.releaseValue(value) }
}

/// A loaded graph. Runs go through a `RuntimeBinding`, whose inputs and outputs are tensors over
/// Swift memory, so nothing is allocated or copied per run beyond what the graph computes.
public final class RuntimeSession: @unchecked Sendable {
    let session: OpaquePointer
    let api: RuntimeAPI
    public let path: String

    /// Loads `model` with `threads` threads inside each operator and every graph optimisation.
    /// - Throws: `TingxieError(.modelNotFound)` for a missing file, `.invalidModel` for one
    ///   ONNX Runtime cannot load, with its reason.
    public init(model: URL, threads: Int) throws {
        let environment = try ONNXRuntime.Environment.shared.get()
        let api = environment.api
        self.api = api
        path = model.path
        guard FileManager.default.fileExists(atPath: model.path) else {
            throw TingxieError(.modelNotFound, "no model file at \(model.path)")
        }
        var options: OpaquePointer?
        try api.check(api.createSessionOptions(&options), "make session options")
        guard let options else { throw TingxieError(.modelError, "ONNX Runtime made no session options") }
        defer { api.releaseSessionOptions(options) }
        try api.check(api.setIntraOpThreads(options, Int32(max(1, threads))), "set \(threads) threads")
        try api.check(api.setInterOpThreads(options, 1), "set one inter-op thread")
        try api.check(api.setGraphOptimizationLevel(options, 99), "enable graph optimisations")
        var session: OpaquePointer?
        do {
            try api.check(api.createSession(environment.env, model.path, options, &session), "load \(model.lastPathComponent)")
        } catch let error as TingxieError {
            throw TingxieError(.invalidModel, error.message)
        }
        guard let session else { throw TingxieError(.invalidModel, "ONNX Runtime loaded no session from \(model.path)") }
        self.session = session
    }

    deinit { api.releaseSession(session) }

    public func binding() throws -> RuntimeBinding { try RuntimeBinding(self) }
}

/// The inputs and outputs of one session's runs, bound by name; rebinding a name replaces it.
/// Not thread-safe: one caller runs it at a time.
public final class RuntimeBinding: @unchecked Sendable {
    private let session: RuntimeSession
    private let binding: OpaquePointer
    /// The bound tensors, kept alive while bound.
    private var bound: [String: RuntimeTensor] = [:]

    init(_ session: RuntimeSession) throws {
        self.session = session
        var binding: OpaquePointer?
        try session.api.check(session.api.createBinding(session.session, &binding), "bind \(session.path)")
        guard let binding else { throw TingxieError(.modelError, "ONNX Runtime made no binding") }
        self.binding = binding
    }

    deinit { session.api.releaseBinding(binding) }

    public func input(_ name: String, _ tensor: RuntimeTensor) throws {
        try session.api.check(session.api.bindInput(binding, name, tensor.value), "bind the input \(name) \(tensor.shape)")
        bound["<" + name] = tensor
    }

    public func output(_ name: String, _ tensor: RuntimeTensor) throws {
        try session.api.check(session.api.bindOutput(binding, name, tensor.value), "bind the output \(name) \(tensor.shape)")
        bound[">" + name] = tensor
    }

    /// Runs the graph: outputs are written into their bound tensors.
    public func run() throws {
        try session.api.check(session.api.runWithBinding(session.session, nil, binding), "run \(URL(fileURLWithPath: session.path).lastPathComponent)")
    }

    /// Unbinds everything.
    public func clear() {
        session.api.clearBoundInputs(binding)
        session.api.clearBoundOutputs(binding)
        bound.removeAll()
    }
}
