import NIOCore
import Testing

@testable import CostdRedis

@Suite("Redis connection state machine")
struct RedisConnectionStateMachineTests {
    typealias Machine = RedisConnectionStateMachine<String>

    static func at(_ millis: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(millis) * 1_000_000) }

    @Test func repliesAnswerCallsInOrderAcrossPipelinedCalls() {
        var machine = Machine()
        guard case .write = machine.send("a", replies: 2, deadline: Self.at(50)),
            case .write = machine.send("b", replies: 1, deadline: Self.at(50))
        else {
            Issue.record("an open connection must write")
            return
        }
        guard case .none = machine.receive(.integer(1)) else {
            Issue.record("a call of two commands is not done after one reply")
            return
        }
        guard case .succeed(let first, let firstReplies) = machine.receive(.integer(2)) else {
            Issue.record("the second reply completes the first call")
            return
        }
        #expect(first == "a")
        #expect(firstReplies == [.integer(1), .integer(2)])
        guard case .succeed(let second, let secondReplies) = machine.receive(.status("OK")) else {
            Issue.record("the third reply completes the second call")
            return
        }
        #expect(second == "b")
        #expect(secondReplies == [.status("OK")])
        #expect(machine.waitingCount == 0)
    }

    @Test func oneTimerIsArmedForTheEarliestDeadlineOnly() {
        var machine = Machine()
        guard case .write(let first) = machine.send("a", replies: 1, deadline: Self.at(50)),
            case .write(let later) = machine.send("b", replies: 1, deadline: Self.at(1_000)),
            case .write(let earlier) = machine.send("c", replies: 1, deadline: Self.at(20))
        else {
            Issue.record("an open connection must write")
            return
        }
        #expect(first == Self.at(50))
        #expect(later == nil, "a later deadline needs no new timer")
        #expect(earlier == Self.at(20), "an earlier deadline re-arms the timer")
    }

    @Test func aTimedOutCallsLateReplyIsDroppedNotGivenToTheNextCall() {
        var machine = Machine()
        _ = machine.send("earlier", replies: 1, deadline: Self.at(1_000))
        _ = machine.send("slow", replies: 1, deadline: Self.at(50))
        _ = machine.send("next", replies: 1, deadline: Self.at(1_000))
        // A reply arrived after "slow" was sent (the earlier call's), so Redis is busy, not stalled.
        guard case .succeed("earlier", _) = machine.receive(.null) else {
            Issue.record("the first reply is the earlier call's")
            return
        }
        guard case .fail(let failed, let next) = machine.deadlinesPassed(now: Self.at(50)) else {
            Issue.record("a call past its deadline fails, and the connection stays")
            return
        }
        #expect(failed == ["slow"])
        #expect(next == Self.at(1_000), "the timer re-arms for what still waits")
        guard case .none = machine.receive(.string(Array("late".utf8))) else {
            Issue.record("the late reply belongs to the abandoned call")
            return
        }
        guard case .succeed(let call, let replies) = machine.receive(.string(Array("mine".utf8))) else {
            Issue.record("the next reply is the next call's")
            return
        }
        #expect(call == "next")
        #expect(replies == [.string(Array("mine".utf8))])
    }

    @Test func aCallThatSawNoReplyAtAllClosesTheConnection() {
        var machine = Machine()
        _ = machine.send("first", replies: 1, deadline: Self.at(50))
        _ = machine.send("second", replies: 1, deadline: Self.at(1_000))
        guard case .failAndClose(let expired, let others) = machine.deadlinesPassed(now: Self.at(60)) else {
            Issue.record("no reply during a whole deadline means Redis is stalled")
            return
        }
        #expect(expired == ["first"])
        #expect(others == ["second"])
        #expect(machine.isClosed)
        guard case .fail(.timedOut) = machine.send("third", replies: 1, deadline: Self.at(2_000)) else {
            Issue.record("a closed connection refuses new calls with its reason")
            return
        }
    }

    @Test func nothingIsDueBeforeTheDeadlineOrAfterTheAnswer() {
        var machine = Machine()
        _ = machine.send("a", replies: 1, deadline: Self.at(50))
        guard case .fail(let early, let next) = machine.deadlinesPassed(now: Self.at(49)) else {
            Issue.record("nothing is due yet")
            return
        }
        #expect(early.isEmpty)
        #expect(next == Self.at(50))
        _ = machine.receive(.integer(7))
        guard case .fail(let late, let none) = machine.deadlinesPassed(now: Self.at(50)) else {
            Issue.record("an answered call has no deadline left")
            return
        }
        #expect(late.isEmpty)
        #expect(none == nil)
        #expect(!machine.isClosed)
    }

    @Test func aReplyNobodyAskedForClosesACommandConnection() {
        var machine = Machine()
        guard case .write = machine.send("a", replies: 1, deadline: Self.at(50)) else { return }
        _ = machine.receive(.integer(1))
        guard case .close(let error, let failing) = machine.receive(.integer(2)) else {
            Issue.record("an unexpected reply is a broken protocol")
            return
        }
        #expect(failing.isEmpty)
        #expect(error == .connection("a reply that answers no command"))
        #expect(machine.isClosed)
    }

    @Test func aSubscriberTakesUnaskedRepliesAsMessages() {
        var machine = Machine(acceptsPushes: true)
        let message = RedisReply.array([.string(Array("message".utf8)), .string(Array("ch".utf8)), .string(Array("x".utf8))])
        guard case .push(let pushed) = machine.receive(message) else {
            Issue.record("a subscriber's unasked reply is a message")
            return
        }
        #expect(pushed == message)
    }

    @Test func closingFailsEveryWaitingCallOnceAndRefusesNewOnes() {
        var machine = Machine()
        _ = machine.send("a", replies: 1, deadline: Self.at(50))
        _ = machine.send("b", replies: 3, deadline: Self.at(50))
        #expect(machine.close(.connection("gone")) == ["a", "b"])
        #expect(machine.close(.connection("again")).isEmpty)
        guard case .fail(.connection("gone")) = machine.send("c", replies: 1, deadline: Self.at(50)) else {
            Issue.record("a closed connection refuses new calls")
            return
        }
        guard case .none = machine.receive(.integer(1)) else {
            Issue.record("replies after close are ignored")
            return
        }
    }
}
