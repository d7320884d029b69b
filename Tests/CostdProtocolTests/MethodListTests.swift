import CostdProtocol
import Foundation
import Testing

/// The method table is the one list: every place outside Swift that names the methods must name
/// each of them, and no other.
@Suite struct MethodListTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
    }

    /// Names captured by `pattern`'s first group, in order.
    static func matches(_ pattern: String, in text: String) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            Range(match.range(at: 1), in: text).map { String(text[$0]) }
        }
    }

    @Test func protocolDocumentHasASectionForEveryMethodAndNoOther() throws {
        let document = try Self.read("docs/PROTOCOL.md")
        let methods = try #require(document.range(of: "\n## Methods\n")).upperBound
        let after = document[methods...].range(of: "\n## ")?.lowerBound ?? document.endIndex
        let documented = try Self.matches("^### `([A-Za-z]+)`", in: String(document[methods..<after]))
        #expect(Set(documented) == Set(RPCMethod.allCases.map(\.rawValue)))
        #expect(documented.count == RPCMethod.allCases.count, "each method once")
    }

    @Test func pythonClientsHaveAMethodAndParametersForEveryMethod() throws {
        let wire = try Self.read("clients/python/src/costd/_wire.py")
        let parameters = try Self.matches(#"^    "([A-Za-z]+)": \("#, in: wire)
        #expect(Set(parameters) == Set(RPCMethod.allCases.map(\.rawValue)), "METHOD_PARAMS in _wire.py")
        for file in ["clients/python/src/costd/client.py", "clients/python/src/costd/aio.py"] {
            let source = try Self.read(file)
            let defined = Set(try Self.matches(#"^    (?:async )?def ([a-z_]+)\("#, in: source))
            for method in RPCMethod.allCases {
                #expect(defined.contains(method.snakeCaseName), "\(file) lacks \(method.snakeCaseName)()")
                #expect(source.contains("call(\"\(method.rawValue)\""), "\(file) never sends \(method.rawValue)")
            }
        }
    }

    @Test func shellFunctionsCoverEveryMethod() throws {
        let script = try Self.read("clients/shell/costd.sh")
        let functions = Set(try Self.matches(#"^costd_([a-z_]+)\(\)"#, in: script))
        for method in RPCMethod.allCases {
            #expect(functions.contains(method.snakeCaseName), "costd.sh lacks costd_\(method.snakeCaseName)")
            #expect(script.contains("costd_call \(method.rawValue)"), "costd.sh never sends \(method.rawValue)")
        }
    }

    @Test func snakeCaseNamesFollowTheClientsSpelling() {
        #expect(RPCMethod.releaseReservation.snakeCaseName == "release_reservation")
        #expect(RPCMethod.cacheGet.snakeCaseName == "cache_get")
        #expect(RPCMethod.ping.snakeCaseName == "ping")
    }
}
