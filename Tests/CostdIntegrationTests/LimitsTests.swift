import CostdClient
import CostdCore
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Connection limits and timeouts: what one client can make the daemon hold.
@Suite(.timeLimit(.minutes(2))) struct LimitsTests {
    @Test func aHalfClosedConnectionStillGetsItsAnswers() throws {
        try withDaemon { (daemon: TestDaemon) throws in
            let connection = try daemon.connect()
            try connection.send(Array(#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"x","costUsd":1}}"#.utf8))
            try connection.send(Array(#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#.utf8))
            connection.shutdownWrite()
            var ids: [JSONValue?] = []
            while let frame = try connection.receiveFrame() { ids.append(try JSONParser.parse(frame)["id"]) }
            #expect(ids.compactMap { $0?.int }.sorted() == [1, 2])
            #expect(try daemon.call("report")["totalCostUsd"]?.money == .dollars(1))
        }
    }

    /// The answer must not be cut short when it is larger than the socket buffer and the
    /// client reads it only after shutting its side down (NIO fails writes still queued at close).
    @Test func aHalfClosedClientThatReadsLateGetsAWholeLargeAnswer() throws {
        try withDaemon { (daemon: TestDaemon) throws in
            let value = String(repeating: "x", count: 3 << 20)
            let stored = try daemon.call("cacheSet", ["model": "m", "prompt": "p", "value": .string(value)])
            #expect(stored["stored"] == true)
            let connection = try daemon.connect()
            try connection.send(Array(#"{"jsonrpc":"2.0","id":1,"method":"cacheGet","params":{"model":"m","prompt":"p"}}"#.utf8))
            connection.shutdownWrite()
            // Read late: only once the daemon has filled the socket and queued the rest.
            #expect(eventually { connection.unreadBytes >= 64 << 10 })
            let answer = try JSONParser.parse(try #require(try connection.receiveFrame()))
            #expect(answer["result"]?["value"]?.stringValue?.utf8.count == value.utf8.count)
            #expect(try connection.receiveFrame() == nil)
        }
    }

    @Test func aHalfSentFrameIsClosedAfterItsTimeout() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start(extraArguments: ["--config", daemon.writeFile("costd.toml", "[limits]\npartial_frame_timeout = 1\n")])
        let stalled = try daemon.connect()
        try stalled.sendRaw([0, 0, 0, 50, UInt8(ascii: "{")])
        #expect(try stalled.receiveFrame() == nil, "the daemon closes a connection that stalls mid-frame")
        #expect(try daemon.call("ping")["pong"] == true)
    }

    @Test func anIdleConnectionIsClosed() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start(extraArguments: ["--config", daemon.writeFile("costd.toml", "[limits]\nidle_timeout = 1\n")])
        let idle = try daemon.connect()
        #expect(try idle.call("ping")["pong"] == true)
        #expect(try idle.receiveFrame() == nil)
    }

    @Test func oneUserCannotTakeEveryConnection() throws {
        let daemon = TestDaemon(arguments: ["--socket-mode", "0666"])
        defer { daemon.cleanUp() }
        chmod(daemon.directory, 0o755)
        try daemon.start(extraArguments: ["--config", daemon.writeFile("costd.toml", "[limits]\nmax_connections_per_user = 3\n")])
        var held: [CostdConnection] = []
        // Retry while the readiness probe's connection is still counted.
        while held.count < 3 {
            let connection = try daemon.connect()
            if (try? connection.call("ping")) != nil { held.append(connection) } else { usleep(20_000) }
        }
        let refused = try daemon.connect()
        #expect(try refused.receiveJSON().errorCode == -32005)
        // Another Unix user still gets in.
        let costctl = URL(fileURLWithPath: TestDaemon.binary).deletingLastPathComponent().path + "/costctl"
        let (status, output) = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", costctl, "ping", "--socket", daemon.socketPath])
        #expect(status == 0, "\(output)")
        // Closing one frees a place.
        held.removeLast().close()
        #expect(try eventually { (try? daemon.call("ping"))?["pong"] == true })
    }
}
