import Foundation
import Testing

@testable import CostdProtocol

/// Every input the fuzzer ever crashed on (Fuzz/regressions/) and the seed corpus, replayed
/// through the same entry point the fuzzer runs.
@Suite struct FuzzRegressionTests {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fuzz")
    }()

    static var inputs: [String] {
        ["regressions", "corpus"].flatMap { folder -> [String] in
            let directory = root.appendingPathComponent(folder).path
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            return names.sorted().map { directory + "/" + $0 }
        }
    }

    @Test func thereAreSeeds() {
        #expect(FuzzRegressionTests.inputs.count >= 10)
    }

    @Test(arguments: FuzzRegressionTests.inputs)
    func replays(_ path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        data.withUnsafeBytes { FuzzEntry.run($0) }
    }

    @Test func survivesHostileShapes() {
        let inputs: [[UInt8]] = [
            [],
            [0xFF, 0xFF, 0xFF, 0xFF],
            [0, 0, 0, 3] + Array("[[[".utf8),
            [0, 0, 0, 2] + [0xC3, 0x28],
            Array(String(repeating: "[", count: 5_000).utf8),
            Array("\"\\ud800\"".utf8),
            Array("a = [1, 2, { b = \"\\u0000\" }]\n[[x]]\n".utf8),
            Array("1e999999999".utf8),
            Array("-0.0e-400".utf8),
        ]
        for input in inputs { input.withUnsafeBytes { FuzzEntry.run($0) } }
    }
}
