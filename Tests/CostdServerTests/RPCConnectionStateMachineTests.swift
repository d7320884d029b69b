import NIOCore
import Testing

@testable import CostdServer

@Suite("RPC connection state machine")
struct RPCConnectionStateMachineTests {
    typealias Machine = RPCConnectionStateMachine
    static let limits = Machine.Limits(maxInFlight: 2, idleTimeout: .seconds(300), partialFrameTimeout: .seconds(10))

    static func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds) * 1_000_000_000) }

    @Test func framesStopAndReadsAreHeldAtTheInFlightLimitThenResume() {
        var machine = Machine(limits: Self.limits, now: Self.at(0))
        machine.callDeferred()
        #expect(machine.mayTakeFrame)
        machine.callDeferred()
        #expect(!machine.mayTakeFrame, "two calls wait: no third is taken")
        let read = machine.readRequested(writable: true)
        #expect(read == .hold)
        let delivered = machine.deferredAnswered()
        #expect(delivered)
        #expect(machine.mayTakeFrame)
        let resumed = machine.mayResumeReading(writable: true)
        let resumedAgain = machine.mayResumeReading(writable: true)
        #expect(resumed, "the held read goes ahead once a call is answered")
        #expect(!resumedAgain, "and only once")
    }

    @Test func aConnectionPastItsShareIsPausedUntilTheShareHasPaidItBack() {
        // A tenth of the loop, 2 ms at once.
        var limits = Self.limits
        limits.cpuBurst = .milliseconds(2)
        var machine = Machine(limits: limits, now: Self.at(0))
        #expect(machine.worked(nanos: 1_500_000, now: Self.at(0), sharePPM: 100_000) == nil, "within the burst")
        let pause = machine.worked(nanos: 1_000_000, now: Self.at(0), sharePPM: 100_000)
        #expect(pause == .milliseconds(5), "0.5 ms overdrawn at 10% takes 5 ms to pay back")
        #expect(!machine.mayTakeFrame)
        #expect(machine.readRequested(writable: true) == .hold)
        #expect(machine.closeIfDrained() == .none)
        machine.pauseEnded(now: .uptimeNanoseconds(5_000_000))
        #expect(machine.mayTakeFrame)
        let resumed = machine.mayResumeReading(writable: true)
        #expect(resumed, "the read held by the pause goes ahead")
        // Idle time refills the budget, never past the burst.
        #expect(machine.worked(nanos: 2_000_000, now: Self.at(100), sharePPM: 100_000) == nil)
        #expect(machine.worked(nanos: 1, now: Self.at(100), sharePPM: 100_000) != nil)
    }

    @Test func heavyConnectionsShareHalfTheLoopWhileLightOnesAreBusy() {
        let activity = LoopActivity(heavySharePPM: 500_000)
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var (light, heavyA, heavyB) = (LoopActivity.Usage(), LoopActivity.Usage(), LoopActivity.Usage())
        // Alone and heavy: the whole loop.
        #expect(activity.frameTaken(nanos: 2_000_000, usage: &heavyA, now: start) == 1_000_000)
        // Two heavy ones and nobody else: half each.
        #expect(activity.frameTaken(nanos: 2_000_000, usage: &heavyB, now: start) == 500_000)
        // A light one busy too: the heavy ones share half the loop; the light one is not held.
        #expect(activity.frameTaken(nanos: 20_000, usage: &light, now: start + .milliseconds(1)) == 1_000_000)
        #expect(activity.frameTaken(nanos: 100_000, usage: &heavyA, now: start + .milliseconds(2)) == 250_000)
        // Counted once per window, and the last window still counts in the next.
        #expect(activity.frameTaken(nanos: 100_000, usage: &heavyA, now: start + .milliseconds(11)) == 250_000)
        // Two windows on, only what happened since counts: heavyA is alone again, still heavy
        // (it used a fortieth of its last windows), with the whole loop to itself.
        #expect(activity.frameTaken(nanos: 100_000, usage: &heavyA, now: start + .milliseconds(31)) == 1_000_000)
        // With a light connection busy beside it, it is held to half the loop at once, from its
        // first frame of the window: it has not passed for light.
        #expect(activity.frameTaken(nanos: 10_000, usage: &light, now: start + .milliseconds(32)) == 1_000_000)
        #expect(activity.frameTaken(nanos: 10_000, usage: &heavyA, now: start + .milliseconds(33)) == 500_000)
        // Idle for longer than it is remembered, it starts light.
        #expect(activity.frameTaken(nanos: 10_000, usage: &heavyA, now: start + .milliseconds(200)) == 1_000_000)
    }

    @Test func aSocketThatTakesNoOutputHoldsReads() {
        var machine = Machine(limits: Self.limits, now: Self.at(0))
        let read = machine.readRequested(writable: false)
        let resumedUnwritable = machine.mayResumeReading(writable: false)
        let resumedWritable = machine.mayResumeReading(writable: true)
        let readAgain = machine.readRequested(writable: true)
        #expect(read == .hold)
        #expect(!resumedUnwritable)
        #expect(resumedWritable)
        #expect(readAgain == .read)
    }

    @Test func aHalfSentFrameIsTimedFromTheLastWholeOne() {
        var machine = Machine(limits: Self.limits, now: Self.at(0))
        _ = machine.bytesReceived(now: Self.at(1))
        machine.framesTaken(bytesWaiting: true, now: Self.at(1))
        let early = machine.timerFired(now: Self.at(10), bytesBuffered: true)
        #expect(early == .checkAgain(in: .seconds(5)))
        // A whole frame at 8 s restarts the clock for the rest.
        machine.frameTaken()
        machine.framesTaken(bytesWaiting: true, now: Self.at(8))
        let notYet = machine.timerFired(now: Self.at(17), bytesBuffered: true)
        let due = machine.timerFired(now: Self.at(18), bytesBuffered: true)
        let after = machine.bytesReceived(now: Self.at(19))
        #expect(notYet == .checkAgain(in: .seconds(5)))
        #expect(due == .close(reason: "a frame stayed half-sent for 10 s"))
        #expect(machine.state == .closing)
        #expect(!after, "bytes after closing are dropped")
    }

    @Test func framesHeldBackByBackPressureAreNotTheClientsFault() {
        var machine = Machine(limits: Self.limits, now: Self.at(0))
        machine.callDeferred()
        machine.callDeferred()
        machine.framesTaken(bytesWaiting: true, now: Self.at(0))
        let later = machine.timerFired(now: Self.at(60), bytesBuffered: true)
        #expect(later == .checkAgain(in: .seconds(5)))
    }

    @Test func anIdleConnectionClosesButNotOneWaitingForAnAnswer() {
        var machine = Machine(limits: Self.limits, now: Self.at(0))
        machine.callDeferred()
        let waiting = machine.timerFired(now: Self.at(400), bytesBuffered: false)
        _ = machine.deferredAnswered()
        let idle = machine.timerFired(now: Self.at(400), bytesBuffered: false)
        let afterwards = machine.timerFired(now: Self.at(401), bytesBuffered: false)
        #expect(waiting == .checkAgain(in: .seconds(5)))
        #expect(idle == .close(reason: "idle"))
        #expect(afterwards == .stop)
    }

    @Test func drainingAnswersWhatWasReceivedThenCloses() {
        var machine = Machine(limits: Self.limits, now: Self.at(0))
        machine.callDeferred()
        let drained = machine.drain()
        let read = machine.readRequested(writable: true)
        #expect(drained == .none, "a call is still waiting")
        #expect(read == .hold, "no more reads once draining")
        #expect(machine.mayTakeFrame, "frames already received are still answered")
        let delivered = machine.deferredAnswered()
        let closing = machine.closeIfDrained()
        #expect(delivered)
        #expect(closing == .closeAfterWrites)
        #expect(machine.state == .closing)
    }

    @Test func anOversizeFrameClosesAfterItsAnswerAndLaterAnswersAreDropped() {
        var machine = Machine(limits: Self.limits, now: Self.at(0))
        machine.callDeferred()
        let tooLarge = machine.frameTooLarge()
        #expect(tooLarge == .closeAfterWrites)
        #expect(!machine.mayTakeFrame)
        let delivered = machine.deferredAnswered()
        let failedLater = machine.failed("late error")
        #expect(!delivered, "an answer after closing is dropped")
        #expect(failedLater == .none, "closing happens once")
    }
}
