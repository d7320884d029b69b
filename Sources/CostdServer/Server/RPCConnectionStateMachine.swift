import NIOCore

/// What one client connection may do next, with no I/O: ``RPCConnectionHandler`` tells it
/// what happened (bytes arrived, a frame was taken, a deferred answer came, the channel asks to
/// read, a timer fired, the client half-closed) and performs the action it returns.
///
/// The rules it holds:
/// - **Back-pressure.** At most `maxInFlight` calls wait for deferred answers; while that many
///   wait, or while the socket will not take more output, no frame is taken and the channel is
///   not asked to read, so the kernel's buffers push back on the client.
/// - **Half-sent frames.** Bytes that are not a whole frame, with room to take one, start a
///   clock; past `partialFrameTimeout` the connection is closed. Frames held back by
///   back-pressure do not count against the client.
/// - **Idle.** With nothing received, nothing buffered and nothing waiting for `idleTimeout`,
///   the connection is closed.
/// - **A share of the loop.** The time spent on a connection's frames is counted against a
///   budget that refills at the connection's share of real time (``LoopActivity`` decides it),
///   up to `cpuBurst`. A connection past it takes no frame and no read until the budget is back:
///   the event loop is shared, and a flood of heavy calls on some connections must not make the
///   others wait behind it.
/// - **Closing.** A client that half-closes, or a daemon that quiesces, gets every answer to
///   what it sent, then the connection closes (after the writes are out).
struct RPCConnectionStateMachine {
    struct Limits {
        var maxInFlight: Int
        var idleTimeout: TimeAmount?
        var partialFrameTimeout: TimeAmount
        var cpuBurst: TimeAmount = .milliseconds(2)
    }

    enum State: Equatable {
        /// Reading and answering.
        case open
        /// No more reads: answer what was received, then close.
        case draining
        /// Closing or closed: nothing more is taken or written.
        case closing
    }

    let limits: Limits
    private(set) var state: State = .open
    /// Calls waiting for deferred answers.
    private(set) var inFlight = 0
    /// Whether a read the channel asked for is being held back.
    private(set) var readHeld = false
    private var lastRead: NIODeadline
    /// When the buffered bytes last stopped being a whole number of frames.
    private var partialSince: NIODeadline?
    /// Loop time this connection may still use now (nanoseconds; negative once overdrawn).
    private var cpuBudget: Int64
    private var cpuBudgetAt: NIODeadline
    /// Until when the connection has overdrawn its share of the loop.
    private(set) var pausedUntil: NIODeadline?
    /// The share the budget refills at (parts per million), as of the last frame.
    private var sharePPM: Int64

    init(limits: Limits, now: NIODeadline) {
        self.limits = limits
        self.lastRead = now
        self.cpuBudget = limits.cpuBurst.nanoseconds
        self.cpuBudgetAt = now
        self.sharePPM = 1_000_000
    }

    /// The connection is open on its event loop (idle time counts from here).
    mutating func opened(now: NIODeadline) {
        lastRead = now
        cpuBudgetAt = now
    }

    // MARK: - Inbound

    /// Bytes arrived; false when they are to be dropped (the connection is closing).
    mutating func bytesReceived(now: NIODeadline) -> Bool {
        guard state != .closing else { return false }
        lastRead = now
        return true
    }

    /// Whether another buffered frame may be taken now.
    var mayTakeFrame: Bool { state != .closing && inFlight < limits.maxInFlight && pausedUntil == nil }

    /// A whole frame was taken: the client is making progress.
    mutating func frameTaken() {
        partialSince = nil
    }

    /// A frame took `nanos` of the loop's time; the connection's share of the loop is now
    /// `sharePPM` (parts per million). Returns how long to pause the connection when that
    /// overdraws its budget; then call ``pauseEnded(now:)`` after that long.
    mutating func worked(nanos: Int64, now: NIODeadline, sharePPM: Int64) -> TimeAmount? {
        refillBudget(now: now)
        self.sharePPM = max(1, min(1_000_000, sharePPM))
        cpuBudget -= nanos
        guard cpuBudget < 0 else { return nil }
        // Until the share has paid the overdraft back.
        let pause = TimeAmount.nanoseconds(-cpuBudget * 1_000_000 / sharePPM)
        pausedUntil = now + pause
        return pause
    }

    /// The pause is over: take frames and read again (call ``mayResumeReading(writable:)``).
    mutating func pauseEnded(now: NIODeadline) {
        pausedUntil = nil
        refillBudget(now: now)
    }

    private mutating func refillBudget(now: NIODeadline) {
        let elapsed = (now - cpuBudgetAt).nanoseconds
        guard elapsed > 0 else { return }
        cpuBudgetAt = now
        let (product, overflow) = elapsed.multipliedReportingOverflow(by: sharePPM)
        let earned = overflow ? Int64.max / 2 : product / 1_000_000
        cpuBudget = min(limits.cpuBurst.nanoseconds, cpuBudget + earned)
    }

    /// The frames that could be taken were; `bytesWaiting` tells whether any bytes are left.
    mutating func framesTaken(bytesWaiting: Bool, now: NIODeadline) {
        if !bytesWaiting || inFlight >= limits.maxInFlight || pausedUntil != nil {
            // Nothing half-sent, or whole frames held back (back-pressure, a pause): not the client's fault.
            partialSince = nil
        } else if partialSince == nil {
            partialSince = now
        }
    }

    /// A call will be answered later.
    mutating func callDeferred() {
        inFlight += 1
    }

    /// A deferred answer is ready; false when it is to be dropped (the connection is closing).
    /// Otherwise write it, take the frames waiting, then ask ``mayResumeReading(writable:)``.
    mutating func deferredAnswered() -> Bool {
        precondition(inFlight > 0, "an answer came for no call in flight")
        inFlight -= 1
        return state != .closing
    }

    /// Whether a held read may go ahead now (after answers went out, or the socket takes
    /// output again).
    mutating func mayResumeReading(writable: Bool) -> Bool {
        guard state == .open, readHeld, inFlight < limits.maxInFlight, pausedUntil == nil, writable else { return false }
        readHeld = false
        return true
    }

    enum ReadAction: Equatable {
        case read
        case hold
    }

    /// The channel asks to read more.
    mutating func readRequested(writable: Bool) -> ReadAction {
        if state != .open || inFlight >= limits.maxInFlight || pausedUntil != nil || !writable {
            readHeld = true
            return .hold
        }
        return .read
    }

    // MARK: - Closing

    enum CloseAction: Equatable {
        case none
        /// Close once what was written is out.
        case closeAfterWrites
        /// Close now.
        case close(reason: String)
    }

    /// The client shut its sending side down, or the daemon is shutting down: answer what was
    /// received, then close.
    mutating func drain() -> CloseAction {
        guard state == .open || state == .draining else { return .none }
        state = .draining
        return closeIfDrained()
    }

    /// After frames were taken: a draining connection with nothing left in flight (and no frame
    /// left behind by a pause) closes.
    mutating func closeIfDrained() -> CloseAction {
        guard state == .draining, inFlight == 0, pausedUntil == nil else { return .none }
        state = .closing
        return .closeAfterWrites
    }

    /// A frame's header announced more than the limit: the stream cannot be resynchronised, so
    /// the error answer goes out and the connection closes.
    mutating func frameTooLarge() -> CloseAction {
        guard state != .closing else { return .none }
        state = .closing
        return .closeAfterWrites
    }

    /// Something broke (a decoding or channel error): close now.
    mutating func failed(_ reason: String) -> CloseAction {
        guard state != .closing else { return .none }
        state = .closing
        return .close(reason: reason)
    }

    // MARK: - Timeouts

    enum TimeoutAction: Equatable {
        case close(reason: String)
        /// Check again after this long.
        case checkAgain(in: TimeAmount)
        /// Closing: no more checks.
        case stop
    }

    /// The one timer of the connection fired. `bytesBuffered`: received bytes not yet taken.
    mutating func timerFired(now: NIODeadline, bytesBuffered: Bool) -> TimeoutAction {
        guard state != .closing else { return .stop }
        if let partialSince, now - partialSince >= limits.partialFrameTimeout {
            state = .closing
            return .close(reason: "a frame stayed half-sent for \(limits.partialFrameTimeout.nanoseconds / 1_000_000_000) s")
        }
        if let idleTimeout = limits.idleTimeout, inFlight == 0, !bytesBuffered, now - lastRead >= idleTimeout {
            state = .closing
            return .close(reason: "idle")
        }
        return .checkAgain(in: checkInterval)
    }

    /// How often the timer looks: half the shortest timeout, so each is noticed within 1.5x.
    var checkInterval: TimeAmount {
        var interval = limits.partialFrameTimeout
        if let idleTimeout = limits.idleTimeout, idleTimeout < interval { interval = idleTimeout }
        return .nanoseconds(interval.nanoseconds / 2)
    }
}
