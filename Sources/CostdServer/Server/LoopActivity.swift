import NIOCore

/// How many connections of one event loop have been taking frames lately: what a connection's
/// share of the loop depends on. A connection alone on its loop may use all of it, so a single
/// busy client is never held back; among several, each gets an equal part of half the loop, or
/// `limits.connection_cpu_share` if that is more.
///
/// Counted in windows of ``window``: a connection counts once per window in which it took a
/// frame; the figure is the larger of this window's count and the last one's. Used only on its
/// event loop (one per loop, made by ``SocketServer``).
final class LoopActivity: @unchecked Sendable {
    static let window: Int64 = 10_000_000

    private var currentWindow: Int64 = 0
    private var current = 0
    private var previous = 0

    /// A connection took a frame; `lastWindow` is that connection's own note of the last window
    /// it was counted in.
    func frameTaken(lastWindow: inout Int64, now: NIODeadline) {
        let window = Int64(now.uptimeNanoseconds / UInt64(LoopActivity.window))
        if window != currentWindow {
            previous = window == currentWindow + 1 ? current : 0
            current = 0
            currentWindow = window
        }
        if lastWindow != window {
            lastWindow = window
            current += 1
        }
    }

    /// Connections busy lately (at least 1).
    var busyConnections: Int { max(1, current, previous) }
}
