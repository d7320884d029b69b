import CostdClient
import CostdCore
import Foundation
import Testing

/// Framing, JSON-RPC envelopes and error paths, over a real socket.
@Suite(.timeLimit(.minutes(2))) struct WireProtocolTests {
    @Test func badInputGetsAnErrorAndTheConnectionStaysUsable() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            let cases: [(String, Int64)] = [
                ("{not json", -32700),
                ("\"unterminated", -32700),
                ("42", -32600),
                ("[]", -32600),
                (#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, -32600),
                (#"{"jsonrpc":"2.0","id":1}"#, -32600),
                (#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#, -32600),
                (#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#, -32601),
                (#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"cacheGet","params":{"prompt":"x"}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"cacheGet","params":{"model":5,"prompt":"x"}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"cacheSet","params":{"model":"m","prompt":"x"}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"cacheSet","params":{"model":"m","prompt":"x","value":1,"ttl":-1}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"gpt-4o","inputTokens":-1,"outputTokens":1}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"gpt-4o","inputTokens":1.5,"outputTokens":1}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"gpt-4o","inputTokens":"1","outputTokens":1}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"gpt-4o","outputTokens":1}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"gpt-4o","inputTokens":1,"outputTokens":1,"cachedInputTokens":2}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"no-such-model","inputTokens":1,"outputTokens":1}}"#, -32001),
                (#"{"jsonrpc":"2.0","id":1,"method":"report","params":{"date":"2026-02-30"}}"#, -32602),
                (#"{"jsonrpc":"2.0","id":1,"method":"report","params":{"period":"year"}}"#, -32602),
                (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), -32002),
            ]
            for (text, code) in cases {
                let answer = try connection.roundTrip(text)
                #expect(answer.errorCode == code, "\(text) → \(answer.jsonString)")
                #expect(answer["error"]?["message"]?.stringValue?.isEmpty == false)
                #expect(try connection.call("ping")["pong"] == true, "connection unusable after \(text)")
            }
            // Invalid UTF-8 inside a string.
            try connection.send(Array(#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":""#.utf8) + [0xC3, 0x28] + Array("\"}}".utf8))
            #expect(try connection.receiveJSON().errorCode == -32700)
            // The id of the bad request comes back when it could be read.
            #expect(try connection.roundTrip(#"{"jsonrpc":"2.0","id":"abc","method":"nope"}"#)["id"] == "abc")
            #expect(try connection.call("ping")["pong"] == true)
        }
    }

    @Test func anOversizeFrameClosesOnlyThatConnection() throws {
        try withDaemon(["--max-frame-bytes", "1024"]) { daemon in
            let bystander = try daemon.connect()
            #expect(try bystander.call("ping")["pong"] == true)
            let offender = try daemon.connect()
            // Announce 4 GiB and send nothing more: the header alone must be refused.
            try offender.sendRaw([0xFF, 0xFF, 0xFF, 0xFF])
            let answer = try offender.receiveJSON()
            #expect(answer.errorCode == -32002)
            #expect(answer["id"] == .null)
            #expect(answer["error"]?["data"]?["limit"]?.int == 1024)
            #expect(try offender.receiveFrame() == nil, "the connection should be closed")
            // Just over the limit, with the body sent.
            let second = try daemon.connect()
            try second.send([UInt8](repeating: 0x20, count: 1025))
            #expect(try second.receiveJSON().errorCode == -32002)
            #expect(try bystander.call("ping")["pong"] == true)
            // Exactly at the limit is fine.
            let padding = String(repeating: " ", count: 1024 - #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.utf8.count)
            #expect(try bystander.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"# + padding)["result"]?["pong"] == true)
        }
    }

    @Test func notificationsRunWithoutAnAnswer() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            try connection.send(Array(#"{"jsonrpc":"2.0","method":"record","params":{"model":"gpt-4o","inputTokens":1000,"outputTokens":0}}"#.utf8))
            try connection.send(Array(#"{"jsonrpc":"2.0","method":"nope"}"#.utf8))
            try connection.send(Array(#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#.utf8))
            // The first answer on the wire is the ping's: the notifications got none.
            #expect(try connection.receiveJSON()["id"] == 9)
            // The record was still counted (it is acknowledged to nobody, so wait for it to land).
            #expect(try eventually { try connection.call("report")["totalCostUsd"]?.money == Money(usd: "0.0025") })
        }
    }

    @Test func batches() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            let answer = try connection.roundTrip(
                #"""
                [{"jsonrpc":"2.0","id":1,"method":"ping"},
                 {"jsonrpc":"2.0","method":"ping"},
                 {"jsonrpc":"2.0","id":2,"method":"record","params":{"model":"gpt-4o-mini","inputTokens":10,"outputTokens":10}},
                 {"jsonrpc":"2.0","id":3,"method":"nope"},
                 17]
                """#
            )
            let elements = try #require(answer.arrayValue)
            #expect(elements.count == 4)
            #expect(elements[0]["result"]?["pong"] == true)
            #expect(elements[1]["result"]?["costUsd"]?.money == Money(nanos: 7_500))
            #expect(elements[2].errorCode == -32601)
            #expect(elements[3].errorCode == -32600)
            // A batch of notifications only gets no answer at all.
            try connection.send(Array(#"[{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","method":"ping"}]"#.utf8))
            #expect(try connection.roundTrip(#"{"jsonrpc":"2.0","id":"after","method":"ping"}"#)["id"] == "after")
        }
    }

    @Test func pipelinedRequestsAreAllAnsweredById() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            let count = 300
            for id in 0..<count {
                let method = id % 3 == 0 ? "record" : id % 3 == 1 ? "cacheGet" : "route"
                let params: JSONValue =
                    switch method {
                    case "record": ["model": "gpt-4o-mini", "inputTokens": 100, "outputTokens": 10]
                    case "cacheGet": ["model": "m", "prompt": .int(id)]
                    default: ["task": "classification"]
                    }
                let request: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
                try connection.send(request.encoded())
            }
            var seen = Set<Int64>()
            for _ in 0..<count {
                let answer = try connection.receiveJSON()
                #expect(answer["error"] == nil)
                seen.insert(try #require(answer["id"]?.int))
            }
            #expect(seen == Set((0..<Int64(count))))
            #expect(try connection.call("report")["requests"]?.int == Int64(count / 3))
        }
    }

    @Test func otherClientsAreNotDisturbedByAClientThatStopsReading() throws {
        try withDaemon { daemon in
            let greedy = try daemon.connect()
            // Thousands of requests, none of the answers read: the daemon must push back, not buffer forever.
            let request: [UInt8] = Array(#"{"jsonrpc":"2.0","id":1,"method":"route","params":{"task":"x"}}"#.utf8)
            let one: [UInt8] = [0, 0, 0, UInt8(request.count)] + request
            let frame = Array([[UInt8]](repeating: one, count: 2_000).joined())
            let writer = Thread {
                for _ in 0..<20 { try? greedy.sendRaw(frame) }
            }
            writer.start()
            let polite = try daemon.connect()
            for _ in 0..<50 { #expect(try polite.call("ping")["pong"] == true) }
            greedy.close()
        }
    }
}
