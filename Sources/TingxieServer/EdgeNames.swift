import Foundation

/// Request paths in their one spelling. The router ignores empty segments (`//v1/jobs` finds
/// `/v1/jobs`), so every other spelling is refused before routing and a path has one meaning.
enum RequestPath {
    /// Whether `path` is canonical: `/`, or `/`-separated segments that are not empty, `.` or
    /// `..`, with no trailing slash, no percent-encoding, no backslash and nothing outside
    /// printable ASCII.
    static func isCanonical(_ path: String) -> Bool {
        let bytes = Array(path.utf8)
        guard bytes.first == UInt8(ascii: "/") else { return false }
        if bytes.count == 1 { return true }
        guard bytes.last != UInt8(ascii: "/") else { return false }
        guard !bytes.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "\\") }) else { return false }
        return bytes.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).allSatisfy { segment in
            !segment.isEmpty && !segment.elementsEqual(".".utf8) && !segment.elementsEqual("..".utf8)
        }
    }
}

/// The host names the server answers to. A request naming any other host (a DNS-rebinding
/// domain that resolves to this machine, say) is refused before routing.
struct HostNames: Sendable {
    /// Lowercased names without a trailing dot: `--public-host` entries and the listen address.
    let names: Set<String>

    /// - Parameters:
    ///   - listenHost: the address the server listens on; a name there is answered to.
    ///   - publicHosts: names clients reach the server by (a reverse proxy's, a LAN name).
    init(listenHost: String, publicHosts: [String]) {
        names = Set(([listenHost] + publicHosts).compactMap { Self.host(ofAuthority: $0) })
    }

    /// Whether a request with this `Host` (or absolute-form authority) is answered. IP
    /// literals and `localhost` always are: no rebinding domain can be either. A request
    /// without a host comes from no browser and is answered too.
    func allows(authority: String?) -> Bool {
        guard let authority else { return true }
        guard let host = Self.host(ofAuthority: authority) else { return false }
        return Self.isAlwaysAnswered(host) || names.contains(host)
    }

    /// IP literals, `localhost` and names under `.localhost` (RFC 6761: loopback by definition).
    static func isAlwaysAnswered(_ host: String) -> Bool {
        host == "localhost" || host.hasSuffix(".localhost") || isIPLiteral(host)
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// The host of an authority (`name`, `name:port`, `[v6]`, `[v6]:port`), lowercased and
    /// without a trailing dot; `nil` when it is not one (empty, a bad port, stray characters).
    static func host(ofAuthority authority: String) -> String? {
        var rest = Substring(authority)
        let host: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            rest = rest[colon...]
        } else {
            host = rest
            rest = ""
        }
        if !rest.isEmpty {
            let port = rest.dropFirst()
            guard rest.first == ":", !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCIIDigit), Int(port)! <= 65535 else { return nil }
        }
        var name = host.lowercased()
        if name.hasSuffix("."), name.count > 1 { name.removeLast() }
        let allowed = authority.hasPrefix("[")
            ? name.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
            : name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "." || $0 == "_" }
        guard !name.isEmpty, name.count <= 253, allowed else { return nil }
        return name
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
