import NIOCore

/// Runs a connection's calls on its event loop: an actor whose executor is the loop, so that a
/// call starts without a hop to Swift's global pool, and each wait on the engine's futures (which
/// complete on this loop) resumes here without waking another thread. The gateway's async
/// functions are nonisolated and non-sending (the module's default), so they run where they are
/// called from.
actor GatewayWorker {
    nonisolated let unownedExecutor: UnownedSerialExecutor
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.unownedExecutor = eventLoop.executor.asUnownedSerialExecutor()
    }

    /// Serves a prepared request on the loop, then calls `done` there; called on the loop.
    nonisolated func start(
        _ preparation: sending HTTPGateway.Preparation, gateway: HTTPGateway, responder: GatewayResponder,
        done: @escaping @Sendable () -> Void
    ) -> Task<Void, Never> {
        eventLoop.preconditionInEventLoop()
        return assumeIsolated { worker in
            Task {
                await worker.serve(preparation, gateway: gateway, responder: responder)
                done()
            }
        }
    }

    private func serve(_ preparation: sending HTTPGateway.Preparation, gateway: HTTPGateway, responder: GatewayResponder) async {
        await gateway.serve(preparation, responder: responder)
    }
}
