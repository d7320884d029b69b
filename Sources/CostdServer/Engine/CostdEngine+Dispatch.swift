import CostdCore
import CostdProtocol
import CostdRedis
import Dispatch
import Logging
import NIOCore

/// Calls to methods: the one table (`perform`, over ``RPCMethod``), single calls, batches and
/// notifications (`handle`), and errors as JSON-RPC errors.
extension CostdEngine {
    /// The one table of methods.
    func perform(
        _ request: RPCRequest, caller: CallerIdentity?, channel: (any Channel)? = nil, on eventLoop: any EventLoop,
        into writer: inout JSONWriter
    ) throws(RPCError) -> MethodReply {
        guard let method = RPCMethod(rawValue: request.method) else { throw .methodNotFound(request.method) }
        let params = Params(request)
        switch method {
        case .cacheGet: return try cacheGet(params, caller: caller, on: eventLoop, into: &writer)
        case .cacheSet: return try cacheSet(params, caller: caller, on: eventLoop, into: &writer)
        case .route: return try route(params, caller: caller, on: eventLoop, into: &writer)
        case .record: return .later(try record(params, caller: caller, on: eventLoop))
        case .report: return .later(try report(params, on: eventLoop))
        case .ping: ping(into: &writer)
        case .estimate: try estimate(params, into: &writer)
        case .tokens: return .later(try tokens(params, on: eventLoop))
        case .reserve: return .later(try reserve(params, caller: caller, on: eventLoop))
        case .releaseReservation: return .later(try releaseReservation(params, caller: caller, on: eventLoop))
        case .cacheDelete: return try cacheDelete(params, caller: caller, on: eventLoop)
        case .cacheFlush: return try cacheFlush(params, caller: caller, on: eventLoop)
        case .cacheRelease: return try cacheRelease(params, caller: caller, on: eventLoop)
        case .subscribe: return try subscribe(params, channel: channel, on: eventLoop)
        }
        return .written
    }

    /// Answers one call. Immediate answers are appended to `writer`; a deferred one comes back.
    func handle(
        _ call: RPCCall, caller: CallerIdentity?, channel: (any Channel)? = nil, on eventLoop: any EventLoop, into writer: inout JSONWriter
    ) -> DeferredAnswer? {
        switch call {
        case .invalid(let id, let error):
            writer.writeErrorResponse(id: id ?? .null, error: error)
            measure("invalid", succeeded: false, since: metrics == nil ? 0 : DispatchTime.now().uptimeNanoseconds)
            return nil
        case .request(let request):
            callsServed.add(1, ordering: .relaxed)
            let start = writer.bytes.count
            let startedAt = metrics == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            if let id = request.id { writer.beginResultResponse(id: id) }
            do {
                switch try perform(request, caller: caller, channel: channel, on: eventLoop, into: &writer) {
                case .written:
                    if request.id != nil { writer.endResponse() } else { writer.truncate(to: start) }
                    measure(request.method, succeeded: true, since: startedAt)
                    return nil
                case .later(let result):
                    writer.truncate(to: start)
                    if metrics != nil {
                        result.whenComplete { outcome in
                            self.measure(request.method, succeeded: (try? outcome.get()) != nil, since: startedAt)
                        }
                    }
                    return DeferredAnswer(result: result, kind: .call(id: request.id))
                }
            } catch {
                writer.truncate(to: start)
                if let id = request.id { writer.writeErrorResponse(id: id, error: error) }
                measure(request.method, succeeded: false, since: startedAt)
                return nil
            }
        }
    }

    private func measure(_ method: String, succeeded: Bool, since startedAt: UInt64) {
        guard let metrics else { return }
        metrics.request(method, succeeded: succeeded, nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - startedAt))
    }

    /// Answers a whole frame: one call or a batch. Returns nil when everything was written to
    /// `writer`, or the deferred answer.
    func handle(
        _ message: RPCMessage, caller: CallerIdentity?, channel: (any Channel)? = nil, on eventLoop: any EventLoop,
        into writer: inout JSONWriter
    ) -> DeferredAnswer? {
        switch message {
        case .unreadable(let error):
            writer.writeErrorResponse(id: .null, error: error)
            measure("invalid", succeeded: false, since: metrics == nil ? 0 : DispatchTime.now().uptimeNanoseconds)
            return nil
        case .single(let call):
            return handle(call, caller: caller, channel: channel, on: eventLoop, into: &writer)
        case .batch(let calls):
            // Each answer is gathered on its own, then joined into one array. Notifications
            // leave no element; a batch of notifications only gets no answer at all.
            var parts: [EventLoopFuture<[UInt8]>] = []
            let logger = self.logger
            for call in calls {
                var element = JSONWriter()
                if let deferred = handle(call, caller: caller, channel: channel, on: eventLoop, into: &element) {
                    parts.append(deferred.result.map { deferred.body(for: .success($0), logger: logger) }.recover {
                        deferred.body(for: .failure($0), logger: logger)
                    })
                } else {
                    parts.append(eventLoop.makeSucceededFuture(element.bytes))
                }
            }
            let joined = EventLoopFuture.whenAllSucceed(parts, on: eventLoop).map { elements -> [UInt8] in
                let answered = elements.filter { !$0.isEmpty }
                guard !answered.isEmpty else { return [] }
                var joined = JSONWriter(reservingCapacity: answered.reduce(2) { $0 + $1.count + 1 })
                joined.beginArray()
                for element in answered {
                    joined.rawJSON(element)
                    joined.comma()
                }
                joined.endArray()
                return joined.bytes
            }
            return DeferredAnswer(result: joined, kind: .frame)
        }
    }

    /// The JSON-RPC error for whatever a deferred method failed with.
    static func rpcError(_ error: any Error, logger: Logger) -> RPCError {
        switch error {
        case let error as RPCError: return error
        case let error as BudgetExceeded:
            let whose = error.budgetScope.isHost ? "" : " of \(error.budgetScope.key)"
            return RPCError(
                code: RPCError.budgetExceededCode,
                message: "budget exceeded: the \(error.scope.rawValue) budget\(whose) of $\(error.budget.decimalString) has $\((error.budget - error.spent - error.reserved).decimalString) left, $\(error.requested.decimalString) was asked for",
                data: [
                    "scope": error.budgetScope.json, "budgetPeriod": .string(error.scope.rawValue),
                    "period": .string(error.period),
                    "spentUsd": .number(JSONNumber(validatedLiteral: error.spent.decimalString)),
                    "reservedUsd": .number(JSONNumber(validatedLiteral: error.reserved.decimalString)),
                    "budgetUsd": .number(JSONNumber(validatedLiteral: error.budget.decimalString)),
                    "requestedUsd": .number(JSONNumber(validatedLiteral: error.requested.decimalString)),
                ]
            )
        case let error as RedisError:
            return .backendUnavailable("\(error)")
        case let error as SystemError:
            logger.critical("Ledger write failed; spend can no longer be recorded", metadata: ["error": "\(error)"])
            return .backendUnavailable("the ledger could not write to disk: \(error)")
        default:
            return .internalError("\(error)")
        }
    }
}
