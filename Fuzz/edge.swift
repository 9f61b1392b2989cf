import Foundation

/// libFuzzer target: the request target and `Host` header a client sends. The first line of the
/// input is a path, the second a Host. A canonical path has exactly one spelling (splitting it
/// on single slashes and joining the segments gives it back); a Host that is answered parses
/// to a host without port, brackets, spaces or an `@`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEdge(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    let lines = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    let path = lines[0]
    if RequestPath.isCanonical(path) {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        precondition(path == "/" + segments.joined(separator: "/"))
        precondition(!segments.contains { $0 == "." || $0 == ".." || $0.contains("%") })
    }
    let host = lines.count > 1 ? lines[1] : path
    let names = HostNames(listenHost: "127.0.0.1", publicHosts: ["asr.example.lan"])
    if let parsed = HostNames.host(ofAuthority: host) {
        precondition(!parsed.isEmpty && !parsed.contains { " @/[]".contains($0) })
        precondition(names.allows(authority: host) == (HostNames.isAlwaysAnswered(parsed) || parsed == "asr.example.lan"))
    } else {
        precondition(!names.allows(authority: host))
    }
    return 0
}
