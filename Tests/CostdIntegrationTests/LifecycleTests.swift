import CostdClient
import CostdCore
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Starting, stopping, sockets, state directories and config files.
@Suite(.timeLimit(.minutes(2))) struct LifecycleTests {
    @Test func aStaleSocketIsReplacedAndALiveOneIsRefused() throws {
        let first = TestDaemon()
        defer { first.cleanUp() }
        try first.start()
        // A second daemon on the same socket (its own state) must refuse to steal it.
        let second = TestDaemon(directory: TestDaemon.makeTemporaryDirectory(), socketPath: first.socketPath)
        defer { second.cleanUp() }
        let (status, output) = try second.startExpectingFailure()
        #expect(status != 0)
        #expect(output.contains("already listening"))
        #expect(try first.call("ping")["pong"] == true)
        // After kill -9 the socket file is left behind; the next daemon replaces it.
        first.killHard()
        #expect(FileManager.default.fileExists(atPath: first.socketPath))
        try second.start()
        #expect(try second.call("ping")["pong"] == true)
    }

    @Test func aPathThatIsNotASocketIsNeverReplaced() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        _ = FileManager.default.createFile(atPath: daemon.socketPath, contents: Data("precious".utf8))
        let (status, output) = try daemon.startExpectingFailure()
        #expect(status != 0)
        #expect(output.contains("not a socket"))
        #expect(try String(contentsOfFile: daemon.socketPath, encoding: .utf8) == "precious")
    }

    @Test func anUnknownLogFormatIsRefused() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        let (status, output) = try daemon.startExpectingFailure(extraArguments: ["--log-format", "jornal"])
        #expect(status != 0)
        #expect(output.contains("--log-format must be text or journal"))
    }

    @Test func twoDaemonsCannotShareAStateDirectory() throws {
        let first = TestDaemon()
        defer { first.cleanUp() }
        try first.start()
        let second = TestDaemon(directory: first.directory, socketPath: first.directory + "/other.sock")
        let (status, output) = try second.startExpectingFailure()
        #expect(status != 0)
        #expect(output.contains("in use by another costd"))
    }

    @Test func sigtermDrainsInFlightRequestsAndExitsZero() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start()
        let connection = try daemon.connect()
        let count = 200
        for id in 0..<count {
            try connection.send(Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"record","params":{"model":"x","costUsd":0.01}}"#.utf8))
        }
        // Wait for the first answer so the daemon has surely read the burst, then stop it.
        var answered = try connection.receiveJSON()["result"] != nil ? 1 : 0
        kill(daemon.pid!, SIGTERM)
        while let frame = try connection.receiveFrame() {
            let answer = try JSONParser.parse(frame)
            if answer["result"] != nil { answered += 1 }
        }
        let status = daemon.stop()
        #expect(status == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath), "the socket file is removed on a clean stop")
        // Every answered record is in the ledger.
        try daemon.start()
        #expect(try daemon.call("report")["totalCostUsd"]?.money == Money(usd: "0.01")! * Int64(answered))
        #expect(answered > 0)
    }

    @Test func sigintStopsCleanlyToo() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start()
        kill(daemon.pid!, SIGINT)
        daemon.process?.waitUntilExit()
        #expect(daemon.process?.terminationStatus == 0)
    }

    @Test func aConfigFileSetsRulesAndFlagsOverrideIt() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        let config = daemon.writeFile(
            "costd.toml",
            #"""
            [budget]
            daily = 3

            [routing]
            default_tier = "cheap"
            [[routing.tiers]]
            name = "cheap"
            model = "gpt-4.1-nano"
            [[routing.tiers]]
            name = "strong"
            model = "gpt-4.1"
            [routing.tasks]
            planning = "strong"
            [routing.max_tokens]
            planning = 2048

            [prices."house-model"]
            input = 1
            output = 2
            """#
        )
        try daemon.start(extraArguments: ["--config", config, "--daily-budget", "7"])
        let connection = try daemon.connect()
        let planning = try connection.call("route", ["task": "planning"])
        #expect(planning["model"] == "gpt-4.1")
        #expect(planning["maxTokens"]?.int == 2_048)
        #expect(try connection.call("route", ["task": "chat"])["model"] == "gpt-4.1-nano")
        let record = try connection.call("record", ["model": "house-model", "inputTokens": 1_000_000, "outputTokens": 1_000_000])
        #expect(record["costUsd"]?.money == .dollars(3))
        #expect(record["day"]?["budgetUsd"]?.money == .dollars(7), "--daily-budget overrides the config")
    }

    @Test func aBadConfigFileIsRejectedWithItsReason() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        let config = daemon.writeFile("costd.toml", "[budget]\ndayly = 3\n")
        let (status, output) = try daemon.startExpectingFailure(extraArguments: ["--config", config])
        #expect(status != 0)
        #expect(output.contains("unknown setting 'budget.dayly'"))
    }
}
