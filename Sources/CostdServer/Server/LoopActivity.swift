import NIOCore

/// Which connections of one event loop have been busy lately, and so what share of the loop each
/// may use: the one rule of fairness between connections.
///
/// A connection is *heavy* once the frames it took in a window used more than a tenth of it, and
/// stays so while it keeps using a fortieth (and ``heavyMemory`` windows after); the others that
/// take frames are *light*. Light connections are never held back (a client answered
/// from memory, or fifty of them, each use a few percent at most). Heavy ones share the loop
/// equally: all of it when no light connection is busy (two batch jobs each get half), but only
/// `cpuShare` of it (half, by default) while light ones are, so that a flood of heavy calls leaves
/// the loop free for the calls that arrive meanwhile.
///
/// Counted in windows of ``window``; the counts used are the larger of this window's and the
/// last one's. Used only on its event loop (one per loop, made by ``SocketServer``).
final class LoopActivity: @unchecked Sendable {
    static let window: Int64 = 10_000_000
    /// Time used in one window past which a connection is heavy.
    static let heavyNanos: Int64 = window / 10

    /// One connection's note of its own use of the current window.
    struct Usage {
        var window: Int64 = -1
        var nanos: Int64 = 0
        var heavy = false
        /// The last window this connection counts as heavy in from its first frame on: a
        /// heavy connection stays heavy for ``heavyMemory`` windows after the last one in which
        /// it used a quarter of the threshold, so that one held to its part of the loop, or
        /// paused past a window, does not pass for light again.
        var heavyUntil: Int64 = -1
    }

    static let heavyMemory: Int64 = 10

    private struct Counts {
        var busy = 0
        var heavy = 0
    }

    /// Parts per million of the loop that heavy connections share while light ones are busy.
    let heavySharePPM: Int64
    private var currentWindow: Int64 = 0
    private var current = Counts()
    private var previous = Counts()

    init(heavySharePPM: Int64 = 500_000) {
        self.heavySharePPM = heavySharePPM
    }

    /// A connection took a frame that used `nanos` of the loop. Returns the share of the loop (in
    /// parts per million) its budget refills at.
    func frameTaken(nanos: Int64, usage: inout Usage, now: NIODeadline) -> Int64 {
        let window = Int64(now.uptimeNanoseconds / UInt64(LoopActivity.window))
        if window != currentWindow {
            previous = window == currentWindow + 1 ? current : Counts()
            current = Counts()
            currentWindow = window
        }
        if usage.window != window {
            usage = Usage(window: window, heavyUntil: usage.heavyUntil)
            current.busy += 1
            if window <= usage.heavyUntil {
                usage.heavy = true
                current.heavy += 1
            }
        }
        usage.nanos += nanos
        if !usage.heavy && usage.nanos > LoopActivity.heavyNanos {
            usage.heavy = true
            current.heavy += 1
        }
        if usage.heavy && usage.nanos > LoopActivity.heavyNanos / 4 {
            usage.heavyUntil = window + LoopActivity.heavyMemory
        }
        return share(heavy: usage.heavy)
    }

    /// The share of a heavy connection (light ones: the whole loop).
    private func share(heavy: Bool) -> Int64 {
        let heavyCount = max(1, current.heavy, previous.heavy)
        let busy = max(current.busy, previous.busy)
        guard heavy else { return 1_000_000 }
        let lightBusy = busy > heavyCount
        return (lightBusy ? heavySharePPM : 1_000_000) / Int64(heavyCount)
    }
}
